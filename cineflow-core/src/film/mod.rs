//! Films from shots: the last frame of a clip ([`FrameExtractor`], [`FfmpegFrames`]) and a run's
//! takes assembled into one MP4 with its edit list ([`assemble`]).
//!
//! Both run the `ffmpeg` / `ffprobe` programs ([`Ffmpeg`]) as child processes: nothing blocks
//! the runtime, every output is bounded, and a missing or failing tool is an
//! [`Error::Media`] that says which program and why.

mod assemble;
mod frames;
mod probe;

use std::path::{Path, PathBuf};
use std::process::Stdio;

use tokio::io::AsyncReadExt;
use tokio::process::Command;

use crate::error::{Error, Result};

pub use assemble::{AssembleOptions, Clip, EditEntry, EditList, assemble};
pub use frames::{FfmpegFrames, FrameExtractor, MAX_FRAME_BYTES};
pub use probe::ClipInfo;

/// Most bytes read from a tool's standard output or error.
const MAX_TOOL_OUTPUT: usize = 1 << 20;

/// Where the `ffmpeg` and `ffprobe` programs are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ffmpeg {
    ffmpeg: PathBuf,
    ffprobe: PathBuf,
}

impl Default for Ffmpeg {
    fn default() -> Self {
        Self::new("ffmpeg", "ffprobe")
    }
}

impl Ffmpeg {
    /// These two programs (a name is looked up on `PATH`).
    pub fn new(ffmpeg: impl Into<PathBuf>, ffprobe: impl Into<PathBuf>) -> Self {
        Self {
            ffmpeg: ffmpeg.into(),
            ffprobe: ffprobe.into(),
        }
    }

    /// `CINEFLOW_FFMPEG` and `CINEFLOW_FFPROBE` when set, else `ffmpeg` and `ffprobe` on `PATH`
    /// (an `ffprobe` beside a configured `ffmpeg` when only that one is set).
    pub fn from_env() -> Self {
        let var = |k: &str| {
            std::env::var_os(k)
                .filter(|v| !v.is_empty())
                .map(PathBuf::from)
        };
        let ffmpeg = var("CINEFLOW_FFMPEG").unwrap_or_else(|| "ffmpeg".into());
        let ffprobe = var("CINEFLOW_FFPROBE").unwrap_or_else(|| match ffmpeg.parent() {
            Some(dir) if !dir.as_os_str().is_empty() => dir.join("ffprobe"),
            _ => "ffprobe".into(),
        });
        Self { ffmpeg, ffprobe }
    }

    /// The `ffmpeg` program.
    pub fn ffmpeg(&self) -> &Path {
        &self.ffmpeg
    }

    /// The `ffprobe` program.
    pub fn ffprobe(&self) -> &Path {
        &self.ffprobe
    }

    /// Whether both programs start (`-version`).
    pub async fn is_available(&self) -> bool {
        for program in [&self.ffmpeg, &self.ffprobe] {
            if run(program, ["-version"]).await.is_err() {
                return false;
            }
        }
        true
    }

    /// Runs `ffmpeg` with `args` (quiet, never interactive); its standard output.
    pub(crate) async fn run_ffmpeg<I, S>(&self, args: I) -> Result<Vec<u8>>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<std::ffi::OsStr>,
    {
        let mut all: Vec<std::ffi::OsString> =
            ["-hide_banner", "-nostdin", "-loglevel", "error", "-y"]
                .into_iter()
                .map(Into::into)
                .collect();
        all.extend(args.into_iter().map(|a| a.as_ref().to_owned()));
        run(&self.ffmpeg, all).await
    }

    /// Runs `ffprobe` with `args`; its standard output.
    pub(crate) async fn run_ffprobe<I, S>(&self, args: I) -> Result<Vec<u8>>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<std::ffi::OsStr>,
    {
        let mut all: Vec<std::ffi::OsString> = ["-hide_banner", "-loglevel", "error"]
            .into_iter()
            .map(Into::into)
            .collect();
        all.extend(args.into_iter().map(|a| a.as_ref().to_owned()));
        run(&self.ffprobe, all).await
    }
}

/// Runs `program` with `args`; its standard output (at most [`MAX_TOOL_OUTPUT`] bytes), or an
/// error with the end of its standard error.
async fn run<I, S>(program: &Path, args: I) -> Result<Vec<u8>>
where
    I: IntoIterator<Item = S>,
    S: AsRef<std::ffi::OsStr>,
{
    let name = program.display().to_string();
    let mut child = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| Error::media(format!("could not start {name}"), e))?;
    let (Some(stdout), Some(stderr)) = (child.stdout.take(), child.stderr.take()) else {
        return Err(Error::media(
            format!("{name}: no output pipes"),
            std::io::Error::other("pipes missing"),
        ));
    };
    let (out, err, status) = tokio::join!(bounded(stdout), bounded(stderr), child.wait());
    let status = status.map_err(|e| Error::media(format!("{name} did not finish"), e))?;
    let out = out.map_err(|e| Error::media(format!("reading {name}'s output"), e))?;
    let err = err.unwrap_or_default();
    if !status.success() {
        let text = String::from_utf8_lossy(&err);
        let tail: String = text
            .trim()
            .lines()
            .rev()
            .take(3)
            .collect::<Vec<_>>()
            .join(" | ");
        return Err(Error::media(
            format!("{name} failed ({status}): {tail}"),
            std::io::Error::other(status.to_string()),
        ));
    }
    if out.len() > MAX_TOOL_OUTPUT {
        return Err(Error::media(
            format!("{name} wrote more than {MAX_TOOL_OUTPUT} bytes"),
            std::io::Error::other("output too large"),
        ));
    }
    Ok(out)
}

/// `r` up to one byte more than [`MAX_TOOL_OUTPUT`] (telling an overflow from a full buffer);
/// the rest is read and dropped, so the tool never blocks on a full pipe.
async fn bounded(mut r: impl tokio::io::AsyncRead + Unpin) -> std::io::Result<Vec<u8>> {
    let mut buf = Vec::new();
    (&mut r)
        .take(MAX_TOOL_OUTPUT as u64 + 1)
        .read_to_end(&mut buf)
        .await?;
    tokio::io::copy(&mut r, &mut tokio::io::sink()).await?;
    Ok(buf)
}

/// Hex sha256 of the file at `path`, read in chunks.
pub(crate) async fn sha256_file(path: &Path) -> Result<String> {
    use sha2::{Digest, Sha256};
    let mut file = tokio::fs::File::open(path)
        .await
        .map_err(|e| Error::media(format!("opening {}", path.display()), e))?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = file
            .read(&mut buf)
            .await
            .map_err(|e| Error::media(format!("reading {}", path.display()), e))?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(crate::sink::hex(&hasher.finalize()))
}

/// A fresh path beside `target` for a temporary file with `suffix` (same folder, so a rename
/// onto `target` is atomic).
pub(crate) fn temp_beside(target: &Path, suffix: &str) -> PathBuf {
    let name = target
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    target.with_file_name(format!(".{name}.{}{suffix}", uuid::Uuid::new_v4().simple()))
}

/// Flushes `tmp` to disk and renames it onto `target`, then flushes the folder (temp name,
/// fsync, rename).
pub(crate) async fn commit(tmp: &Path, target: &Path) -> Result<()> {
    let io = |what: String| move |e: std::io::Error| Error::media(what, e);
    let file = tokio::fs::OpenOptions::new()
        .read(true)
        .open(tmp)
        .await
        .map_err(io(format!("opening {}", tmp.display())))?;
    file.sync_all()
        .await
        .map_err(io(format!("flushing {}", tmp.display())))?;
    drop(file);
    tokio::fs::rename(tmp, target)
        .await
        .map_err(io(format!("renaming onto {}", target.display())))?;
    if let Some(dir) = target.parent().filter(|d| !d.as_os_str().is_empty())
        && let Ok(d) = tokio::fs::File::open(dir).await
    {
        // Best effort: not every platform can flush a folder.
        let _ = d.sync_all().await;
    }
    Ok(())
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_tool_writing_more_than_the_limit_is_an_error_and_never_blocks_on_its_pipe() {
        let many = (4 * MAX_TOOL_OUTPUT).to_string();
        let e = run(Path::new("head"), ["-c", many.as_str(), "/dev/zero"])
            .await
            .unwrap_err();
        assert!(e.to_string().contains("wrote more than"), "{e}");
        let out = run(Path::new("printf"), ["abc"]).await.unwrap();
        assert_eq!(out, b"abc");
        let e = run(Path::new("false"), Vec::<&str>::new())
            .await
            .unwrap_err();
        assert!(e.to_string().contains("failed"), "{e}");
    }

    #[tokio::test]
    async fn commit_renames_the_temporary_file_onto_the_target() {
        let dir = std::env::temp_dir().join(format!("cf-film-{}", uuid::Uuid::new_v4()));
        tokio::fs::create_dir_all(&dir).await.unwrap();
        let target = dir.join("film.mp4");
        let tmp = temp_beside(&target, ".mp4");
        assert_eq!(tmp.parent(), Some(dir.as_path()));
        tokio::fs::write(&tmp, b"new").await.unwrap();
        commit(&tmp, &target).await.unwrap();
        assert_eq!(tokio::fs::read(&target).await.unwrap(), b"new");
        assert!(!tmp.exists());
        assert_eq!(
            sha256_file(&target).await.unwrap(),
            "11507a0e2f5e69d5dfa40a62a1bd7b6ee57e6bcd85c67c9b8431b36fff21c437"
        );
        tokio::fs::remove_dir_all(&dir).await.unwrap();
    }
}
