//! A film from takes: clips joined in order into one MP4, and the edit list that says what
//! went where.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::{ClipInfo, Ffmpeg, commit, sha256_file, temp_beside};
use crate::error::{Error, Result};
use crate::ids::TaskId;

/// One shot of a film: take `take` of segment `segment_index`, stored at `file`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Clip {
    /// The segment's 1-based index.
    pub segment_index: u32,
    /// Which take of the segment (its task's `version_index`).
    pub take: u32,
    /// The task that made it, when known.
    pub task_id: Option<TaskId>,
    /// The video file.
    pub file: PathBuf,
}

impl Clip {
    /// Take `take` of segment `segment_index`, at `file`.
    pub fn new(segment_index: u32, take: u32, file: impl Into<PathBuf>) -> Self {
        Self {
            segment_index,
            take,
            task_id: None,
            file: file.into(),
        }
    }

    /// Records the task that made the clip.
    pub fn with_task(mut self, task_id: TaskId) -> Self {
        self.task_id = Some(task_id);
        self
    }
}

/// How [`assemble`] joins clips.
#[derive(Debug, Clone, Default, PartialEq)]
#[non_exhaustive]
pub struct AssembleOptions {
    /// A crossfade between consecutive clips (video and sound); it must be shorter than every
    /// clip. `None` (the default): hard cuts.
    pub crossfade: Option<Duration>,
    /// The programs to run.
    pub ffmpeg: Ffmpeg,
    /// The take chosen per segment index, for
    /// [`Orchestrator::assemble`](crate::Orchestrator::assemble) (a segment not named here:
    /// take 1).
    pub takes: BTreeMap<u32, u32>,
}

impl AssembleOptions {
    /// Hard cuts, `ffmpeg` / `ffprobe` from [`Ffmpeg::from_env`].
    pub fn new() -> Self {
        Self {
            crossfade: None,
            ffmpeg: Ffmpeg::from_env(),
            takes: BTreeMap::new(),
        }
    }

    /// Uses take `take` (a task's `version_index`) of segment `segment_index`.
    pub fn with_take(mut self, segment_index: u32, take: u32) -> Self {
        self.takes.insert(segment_index, take);
        self
    }

    /// Crossfades consecutive clips over `d`.
    pub fn with_crossfade(mut self, d: Duration) -> Self {
        self.crossfade = Some(d);
        self
    }

    /// Runs these programs.
    pub fn with_ffmpeg(mut self, ffmpeg: Ffmpeg) -> Self {
        self.ffmpeg = ffmpeg;
        self
    }
}

/// What [`assemble`] made: the film and, in order, where each clip sits in it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EditList {
    /// The film's path.
    pub film: String,
    /// Its length in seconds.
    pub duration_s: f64,
    /// Hex sha256 of the film.
    pub sha256: String,
    /// Whether the clips were re-encoded (their codecs, sizes or frame rates differ, or they
    /// crossfade) rather than joined by a stream copy.
    pub reencoded: bool,
    /// The crossfade between clips, in seconds.
    pub crossfade_s: Option<f64>,
    /// Each clip, in film order.
    pub clips: Vec<EditEntry>,
}

/// One clip's place in a film.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EditEntry {
    /// The segment's 1-based index.
    pub segment_index: u32,
    /// The take used.
    pub take: u32,
    /// The task that made it, when known.
    pub task_id: Option<TaskId>,
    /// The clip's file.
    pub file: String,
    /// Where it starts in the film, in seconds.
    pub in_s: f64,
    /// Where it ends in the film, in seconds.
    pub out_s: f64,
    /// Hex sha256 of the clip's file.
    pub sha256: String,
}

impl EditList {
    /// Where the edit list of `film` is written: `film.mp4` → `film.edl.json`.
    pub fn path_for(film: &Path) -> PathBuf {
        film.with_extension("edl.json")
    }
}

/// Joins `clips`, in the order given, into the MP4 `film`, and writes its edit list beside it
/// ([`EditList::path_for`]). Clips of one codec, size, frame rate and sound layout are joined
/// by a stream copy (no quality loss); otherwise, or with a crossfade, every clip is scaled
/// (letterboxed) to the first clip's size and frame rate and re-encoded as H.264 (+ AAC when
/// any clip has sound; clips without get silence). Both files are written under a temporary
/// name, flushed and renamed, so a crash leaves either the old film or the new one.
pub async fn assemble(clips: &[Clip], film: &Path, options: &AssembleOptions) -> Result<EditList> {
    if clips.is_empty() {
        return Err(Error::invalid_input("clips", "no clip to assemble"));
    }
    let tool = &options.ffmpeg;
    let mut infos = Vec::with_capacity(clips.len());
    let mut hashes = Vec::with_capacity(clips.len());
    for clip in clips {
        infos.push(ClipInfo::probe(tool, &clip.file).await?);
        hashes.push(sha256_file(&clip.file).await?);
    }
    let fade = options.crossfade.map(|d| d.as_secs_f64());
    if let Some(f) = fade {
        let shortest = infos.iter().map(|i| i.duration_s).fold(f64::MAX, f64::min);
        if !(f > 0.0 && f < shortest) {
            return Err(Error::invalid_input(
                "crossfade",
                format!(
                    "must be longer than 0 s and shorter than the shortest clip ({shortest:.3} s), got {f:.3} s"
                ),
            ));
        }
    }
    let copy = fade.is_none() && infos.iter().all(|i| i.joins_by_copy_with(&infos[0]));
    if let Some(dir) = film.parent().filter(|d| !d.as_os_str().is_empty()) {
        tokio::fs::create_dir_all(dir)
            .await
            .map_err(|e| Error::media(format!("creating {}", dir.display()), e))?;
    }
    let tmp = temp_beside(film, ".mp4");
    let made = if copy {
        join_by_copy(tool, clips, &tmp).await
    } else {
        reencode(tool, clips, &infos, fade, &tmp).await
    };
    if let Err(e) = made {
        let _ = tokio::fs::remove_file(&tmp).await;
        return Err(e);
    }
    commit(&tmp, film).await?;

    let out = ClipInfo::probe(tool, film).await?;
    let mut entries = Vec::with_capacity(clips.len());
    let mut at = 0.0;
    for ((clip, info), sha256) in clips.iter().zip(&infos).zip(hashes) {
        entries.push(EditEntry {
            segment_index: clip.segment_index,
            take: clip.take,
            task_id: clip.task_id,
            file: clip.file.display().to_string(),
            in_s: at,
            out_s: at + info.duration_s,
            sha256,
        });
        at += info.duration_s - fade.unwrap_or(0.0);
    }
    let list = EditList {
        film: film.display().to_string(),
        duration_s: out.duration_s,
        sha256: sha256_file(film).await?,
        reencoded: !copy,
        crossfade_s: fade,
        clips: entries,
    };
    let edl = EditList::path_for(film);
    let edl_tmp = temp_beside(&edl, ".json");
    let json = serde_json::to_vec_pretty(&list)
        .map_err(|e| Error::media("serializing the edit list", e))?;
    tokio::fs::write(&edl_tmp, json)
        .await
        .map_err(|e| Error::media(format!("writing {}", edl_tmp.display()), e))?;
    commit(&edl_tmp, &edl).await?;
    Ok(list)
}

/// The concat demuxer with a stream copy.
async fn join_by_copy(tool: &Ffmpeg, clips: &[Clip], out: &Path) -> Result<()> {
    let mut list = String::new();
    for clip in clips {
        let abs = std::path::absolute(&clip.file)
            .map_err(|e| Error::media(format!("resolving {}", clip.file.display()), e))?;
        // The concat list quotes with '…'; a quote inside is written '\''.
        let quoted = abs.to_string_lossy().replace('\'', r"'\''");
        let _ = writeln!(list, "file '{quoted}'");
    }
    let list_path = temp_beside(out, ".concat.txt");
    tokio::fs::write(&list_path, list)
        .await
        .map_err(|e| Error::media(format!("writing {}", list_path.display()), e))?;
    let result = tool
        .run_ffmpeg([
            "-f".as_ref(),
            "concat".as_ref(),
            "-safe".as_ref(),
            "0".as_ref(),
            "-i".as_ref(),
            list_path.as_os_str(),
            "-map".as_ref(),
            "0".as_ref(),
            "-c".as_ref(),
            "copy".as_ref(),
            "-movflags".as_ref(),
            "+faststart".as_ref(),
            "-f".as_ref(),
            "mp4".as_ref(),
            out.as_os_str(),
        ])
        .await;
    let _ = tokio::fs::remove_file(&list_path).await;
    result.map(drop)
}

/// Every clip scaled to the first one's size and frame rate, joined (or crossfaded) and
/// encoded once.
async fn reencode(
    tool: &Ffmpeg,
    clips: &[Clip],
    infos: &[ClipInfo],
    fade: Option<f64>,
    out: &Path,
) -> Result<()> {
    let (w, h, fps) = (infos[0].width, infos[0].height, &infos[0].frame_rate);
    let sound = infos.iter().any(|i| i.audio_codec.is_some());
    let mut graph = String::new();
    for (i, info) in infos.iter().enumerate() {
        let _ = write!(
            graph,
            "[{i}:v:0]scale={w}:{h}:force_original_aspect_ratio=decrease,pad={w}:{h}:(ow-iw)/2:(oh-ih)/2,setsar=1,fps={fps},format=yuv420p,settb=AVTB[v{i}];"
        );
        if sound {
            if info.audio_codec.is_some() {
                let _ = write!(
                    graph,
                    "[{i}:a:0]aformat=sample_rates=48000:channel_layouts=stereo,asettb=AVTB[a{i}];"
                );
            } else {
                let _ = write!(
                    graph,
                    "anullsrc=r=48000:cl=stereo,atrim=duration={:.6}[a{i}];",
                    info.duration_s
                );
            }
        }
    }
    let n = infos.len();
    match fade {
        None => {
            for i in 0..n {
                let _ = write!(graph, "[v{i}]");
                if sound {
                    let _ = write!(graph, "[a{i}]");
                }
            }
            let _ = write!(graph, "concat=n={n}:v=1:a={}[v]", u8::from(sound));
            if sound {
                graph.push_str("[a]");
            }
        }
        Some(f) => {
            let (mut v, mut a) = ("v0".to_owned(), "a0".to_owned());
            let mut offset = 0.0;
            // Clip `i` fades in as clip `i - 1` (`prev`) fades out.
            for (prev_index, prev) in infos.iter().enumerate().take(n - 1) {
                let i = prev_index + 1;
                offset += prev.duration_s - f;
                let last = i == n - 1;
                let nv = if last {
                    "v".to_owned()
                } else {
                    format!("x{i}")
                };
                let _ = write!(
                    graph,
                    "[{v}][v{i}]xfade=transition=fade:duration={f:.6}:offset={offset:.6}[{nv}];"
                );
                v = nv;
                if sound {
                    let na = if last {
                        "a".to_owned()
                    } else {
                        format!("y{i}")
                    };
                    let _ = write!(graph, "[{a}][a{i}]acrossfade=d={f:.6}[{na}];");
                    a = na;
                }
            }
            if n == 1 {
                let _ = write!(graph, "[v0]null[v];");
                if sound {
                    let _ = write!(graph, "[a0]anull[a];");
                }
            }
            while graph.ends_with(';') {
                graph.pop();
            }
        }
    }
    let mut args: Vec<std::ffi::OsString> = Vec::new();
    for clip in clips {
        args.push("-i".into());
        args.push(clip.file.as_os_str().to_owned());
    }
    for a in ["-filter_complex", &graph, "-map", "[v]"] {
        args.push(a.into());
    }
    if sound {
        for a in ["-map", "[a]", "-c:a", "aac", "-b:a", "192k"] {
            args.push(a.into());
        }
    }
    for a in [
        "-c:v",
        "libx264",
        "-preset",
        "veryfast",
        "-crf",
        "18",
        "-pix_fmt",
        "yuv420p",
        "-movflags",
        "+faststart",
        "-f",
        "mp4",
    ] {
        args.push(a.into());
    }
    args.push(out.as_os_str().to_owned());
    tool.run_ffmpeg(args).await.map(drop)
}
