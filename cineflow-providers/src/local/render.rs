//! Running ffmpeg: probing the binary, building the command line, and one render job.

use std::collections::VecDeque;
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::time::Instant;

use cineflow_core::ErrorCode;
use cineflow_core::provider::ProviderError;
use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};
use tokio::process::Command;
use tokio_util::sync::CancellationToken;

use super::text::{escape_filter_value, is_cjk, wrap};
use super::{Phase, Shared};

/// Background colour of the card.
const BACKGROUND: &str = "0x1d2433";
/// How much of a first frame's brightness is kept behind the title (45 %).
const DIM: &str = "0.45";
/// Colour of the accent bar at the bottom.
const ACCENT: &str = "0x4f8cff";
/// Lines of ffmpeg's stderr kept for error messages.
const STDERR_LINES: usize = 20;
/// Longest stderr line kept, in bytes.
const STDERR_LINE_BYTES: usize = 400;

/// Well-known locations of a sans-serif font, tried before asking fontconfig.
const FONT_CANDIDATES: &[&str] = &[
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/TTF/DejaVuSans.ttf",
    "/usr/share/fonts/dejavu-sans-fonts/DejaVuSans.ttf",
    "/usr/local/share/fonts/DejaVuSans.ttf",
    "/opt/homebrew/share/fonts/DejaVuSans.ttf",
    "/Library/Fonts/Arial Unicode.ttf",
    "/System/Library/Fonts/Supplemental/Arial.ttf",
    "C:\\Windows\\Fonts\\arial.ttf",
];

/// What the ffmpeg binary and the machine offer; found once per renderer.
#[derive(Debug, Clone, Default)]
pub(super) struct Probe {
    /// Whether this ffmpeg build has the `drawtext` filter (needs libfreetype).
    pub(super) drawtext: bool,
    /// A font file for Latin text, if one was found.
    pub(super) font: Option<PathBuf>,
    /// A font file with CJK glyphs, if fontconfig knows one.
    pub(super) cjk_font: Option<PathBuf>,
}

impl Probe {
    /// Asks ffmpeg for its filters and looks for fonts. Never fails: what cannot be found is
    /// left out (a missing ffmpeg shows up as a clear error when the render starts).
    pub(super) async fn run(ffmpeg: &Path, font_override: Option<&Path>) -> Probe {
        let drawtext = match Command::new(ffmpeg)
            .args(["-hide_banner", "-filters"])
            .stdin(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .output()
            .await
        {
            Ok(out) => String::from_utf8_lossy(&out.stdout)
                .lines()
                .any(|l| l.split_whitespace().nth(1) == Some("drawtext")),
            Err(e) => {
                tracing::debug!(error = %e, "could not list ffmpeg filters");
                false
            }
        };
        let font = match font_override {
            Some(f) => Some(f.to_path_buf()),
            None => find_font().await,
        };
        let cjk_font = fc_first(&["fc-list", "-f", "%{file}\n", ":lang=zh"]).await;
        let probe = Probe {
            drawtext,
            font,
            cjk_font,
        };
        tracing::debug!(?probe, "probed ffmpeg");
        probe
    }
}

async fn find_font() -> Option<PathBuf> {
    for candidate in FONT_CANDIDATES {
        if tokio::fs::metadata(candidate)
            .await
            .is_ok_and(|m| m.is_file())
        {
            return Some(PathBuf::from(candidate));
        }
    }
    fc_first(&["fc-match", "-f", "%{file}", "sans-serif"]).await
}

/// Runs a fontconfig tool and returns the first existing file it prints.
async fn fc_first(cmd: &[&str]) -> Option<PathBuf> {
    let (program, args) = cmd.split_first()?;
    let out = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .output()
        .await
        .ok()?;
    if !out.status.success() {
        return None;
    }
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let path = PathBuf::from(line.trim());
        if !line.trim().is_empty() && tokio::fs::metadata(&path).await.is_ok_and(|m| m.is_file()) {
            return Some(path);
        }
    }
    None
}

/// Everything one render needs, fixed at submit time.
#[derive(Debug, Clone)]
pub(super) struct RenderSpec {
    pub(super) prompt: String,
    pub(super) duration_s: u32,
    pub(super) width: u32,
    pub(super) height: u32,
    /// The first frame, a file in the work dir, drawn darkened behind the title.
    pub(super) background: Option<String>,
}

/// File names of a job inside the work dir (job ids are validated: `local-` + 32 hex digits).
pub(super) fn output_name(job: &str) -> String {
    format!("{job}.mp4")
}

pub(super) fn part_name(job: &str) -> String {
    format!("{job}.mp4.part")
}

pub(super) fn text_name(job: &str) -> String {
    format!("{job}.txt")
}

/// The ffmpeg arguments for one render. File names are relative: ffmpeg runs in the work dir,
/// so the text file's name needs no escaping.
pub(super) fn ffmpeg_args(
    job: &str,
    spec: &RenderSpec,
    fps: u32,
    preset: &str,
    probe: &Probe,
) -> Vec<OsString> {
    let (w, h, d) = (spec.width, spec.height, spec.duration_s);
    let short_side = w.min(h);
    let font_size = short_side / 18; // 40 px at 720p
    let mut filters = Vec::new();
    let input: Vec<String> = match &spec.background {
        // The image covers the frame (scaled up, centre cropped), darkened so the title reads.
        Some(image) => {
            filters.push(format!(
                "scale={w}:{h}:force_original_aspect_ratio=increase,crop={w}:{h},setsar=1,\
                 colorchannelmixer=rr={DIM}:gg={DIM}:bb={DIM},format=yuv420p"
            ));
            vec![
                "-f".into(),
                "image2".into(),
                "-loop".into(),
                "1".into(),
                "-framerate".into(),
                fps.to_string(),
                "-i".into(),
                image.clone(),
            ]
        }
        None => vec![
            "-f".into(),
            "lavfi".into(),
            "-i".into(),
            format!("color=c={BACKGROUND}:s={w}x{h}:r={fps}:d={d}"),
        ],
    };
    filters.push(format!(
        "drawbox=x=0:y=ih-{bar}:w=iw:h={bar}:color={ACCENT}:t=fill",
        bar = (short_side / 72).max(2)
    ));
    if probe.drawtext {
        let wants_cjk = spec.prompt.chars().any(is_cjk);
        let font = match (&probe.cjk_font, &probe.font) {
            (Some(cjk), _) if wants_cjk => Some(cjk),
            (_, font) => font.as_ref(),
        };
        let fontfile = font
            .map(|f| format!(":fontfile={}", escape_filter_value(&f.to_string_lossy())))
            .unwrap_or_default();
        filters.push(format!(
            "drawtext=textfile={text}:expansion=none{fontfile}:fontcolor=white:fontsize={font_size}\
             :line_spacing={spacing}:x=(w-text_w)/2:y=(h-text_h)/2",
            text = text_name(job),
            spacing = font_size / 3,
        ));
        filters.push(format!(
            "drawtext=text={timer}{fontfile}:fontcolor=0x8b95a7:fontsize={small}\
             :x=(w-text_w)/2:y=h-text_h-{margin}",
            timer = escape_filter_value("%{pts:hms}"),
            small = font_size * 3 / 5,
            margin = short_side / 18,
        ));
    }
    let mut args: Vec<String> = vec![
        "-hide_banner".into(),
        "-nostdin".into(),
        "-nostats".into(),
        "-loglevel".into(),
        "error".into(),
        "-progress".into(),
        "pipe:1".into(),
        "-y".into(),
    ];
    args.extend(input);
    args.extend([
        "-vf".into(),
        filters.join(","),
        "-t".into(),
        d.to_string(),
        "-an".into(),
        "-c:v".into(),
        "libx264".into(),
        "-preset".into(),
        preset.into(),
        "-tune".into(),
        "stillimage".into(),
        "-pix_fmt".into(),
        "yuv420p".into(),
        "-movflags".into(),
        "+faststart".into(),
        "-f".into(),
        "mp4".into(),
        part_name(job),
    ]);
    args.into_iter().map(OsString::from).collect()
}

/// Columns and lines of prompt text that fit a card of this size (see the font size above).
pub(super) fn text_box(width: u32, height: u32) -> (usize, usize) {
    let font_size = f64::from(width.min(height) / 18);
    let cols = (f64::from(width) * 0.86 / (font_size * 0.6)) as usize;
    let lines = (f64::from(height) * 0.72 / (font_size * 1.34)) as usize;
    (cols, lines)
}

/// How a render ended.
#[derive(Debug)]
pub(super) enum Outcome {
    /// `<job>.mp4` is in place.
    Succeeded,
    /// ffmpeg could not run or failed.
    Failed(ProviderError),
    /// Cancelled; partial files are gone.
    Cancelled,
    /// Cancelled before any file was written: there is nothing to remove, and removing the
    /// job's files could take them from another renderer on the same folder that renders it
    /// again (a process taking over after this one stopped).
    NotStarted,
}

/// Runs one job to its end and records the result. `done` is cancelled when this returns (or
/// is dropped), which is what [`cancel`](super::LocalRenderer) waits for.
pub(super) async fn run_job(
    shared: Arc<Shared>,
    job: String,
    spec: RenderSpec,
    cancel: CancellationToken,
    done: CancellationToken,
) {
    let _done = done.drop_guard();
    let outcome = render(&shared, &job, &spec, &cancel).await;
    // `final_`: the job will not be rendered again (it ended, or was cancelled or forgotten on
    // purpose rather than by the renderer shutting down), so its first frame can go.
    let (keep, final_) = {
        let mut jobs = shared.lock();
        match jobs.get_mut(&job) {
            Some(entry) => {
                // Releases this job's node in the renderer's shutdown token tree.
                entry.cancel = CancellationToken::new();
                // Cancelled while finishing: do not resurrect it.
                if matches!(entry.phase, Phase::Cancelled) {
                    (false, true)
                } else {
                    entry.phase = match &outcome {
                        Outcome::Succeeded => Phase::Succeeded,
                        Outcome::Failed(e) => Phase::Failed(e.clone()),
                        Outcome::Cancelled | Outcome::NotStarted => Phase::Cancelled,
                    };
                    let ended = matches!(outcome, Outcome::Succeeded | Outcome::Failed(_));
                    (matches!(outcome, Outcome::Succeeded), ended)
                }
            }
            // Forgotten (cleanup) while rendering.
            None => (false, true),
        }
    };
    if matches!(outcome, Outcome::NotStarted) {
        tracing::debug!(job, "local render cancelled before it started");
        return;
    }
    let dir = &shared.config.work_dir;
    remove_quietly(&dir.join(text_name(&job))).await;
    remove_quietly(&dir.join(part_name(&job))).await;
    if !keep {
        remove_quietly(&dir.join(output_name(&job))).await;
    }
    if final_ && let Some(image) = &spec.background {
        remove_quietly(&dir.join(image)).await;
    }
    match outcome {
        Outcome::Succeeded if keep => tracing::debug!(job, "local render finished"),
        Outcome::Failed(e) => tracing::warn!(job, error = %e, "local render failed"),
        _ => tracing::debug!(job, "local render cancelled"),
    }
}

pub(super) async fn remove_quietly(path: &Path) {
    match tokio::fs::remove_file(path).await {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            tracing::warn!(path = %path.display(), error = %e, "could not remove a render file");
        }
        _ => {}
    }
}

fn internal(message: impl Into<String>) -> ProviderError {
    ProviderError::new(ErrorCode::Internal, message)
}

async fn render(
    shared: &Shared,
    job: &str,
    spec: &RenderSpec,
    cancel: &CancellationToken,
) -> Outcome {
    let config = &shared.config;
    let _permit = tokio::select! {
        biased;
        () = cancel.cancelled() => return Outcome::NotStarted,
        permit = shared.permits.acquire() => match permit {
            Ok(p) => p,
            Err(_) => return Outcome::NotStarted,
        },
    };
    let probe = shared
        .probe
        .get_or_init(|| Probe::run(&config.ffmpeg, config.font.as_deref()))
        .await;
    if cancel.is_cancelled() {
        return Outcome::NotStarted;
    }

    let (cols, lines) = text_box(spec.width, spec.height);
    let text = wrap(&spec.prompt, cols, lines);
    let text_path = config.work_dir.join(text_name(job));
    if let Err(e) = tokio::fs::write(&text_path, text.as_bytes()).await {
        return Outcome::Failed(
            internal(format!(
                "could not write the title text to {}",
                text_path.display()
            ))
            .with_source(e),
        );
    }

    if let Some(image) = &spec.background {
        let path = config.work_dir.join(image);
        if !tokio::fs::metadata(&path).await.is_ok_and(|m| m.is_file()) {
            return Outcome::Failed(
                internal(format!(
                    "the first frame {} is gone: the job cannot be rendered again",
                    path.display()
                ))
                .with_retryable(false),
            );
        }
    }
    let args = ffmpeg_args(job, spec, config.fps, &config.preset, probe);
    let mut child = match Command::new(&config.ffmpeg)
        .args(&args)
        .current_dir(&config.work_dir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
    {
        Ok(child) => child,
        Err(e) => {
            return Outcome::Failed(
                internal(format!(
                    "could not start ffmpeg at {}: {e}",
                    config.ffmpeg.display()
                ))
                .with_source(e),
            );
        }
    };
    let started = Instant::now();
    if let Some(entry) = shared
        .lock()
        .get_mut(job)
        .filter(|e| matches!(e.phase, Phase::Queued))
    {
        entry.phase = Phase::Running {
            progress: None,
            started,
        };
    }

    let stdout = child.stdout.take();
    let stderr = child.stderr.take();
    let total_us = u64::from(spec.duration_s) * 1_000_000;
    let finished = {
        let wait = async {
            tokio::join!(
                child.wait(),
                read_progress(stdout, shared, job, total_us),
                read_tail(stderr),
            )
        };
        tokio::select! {
            biased;
            () = cancel.cancelled() => None,
            (status, (), tail) = wait => Some((status, tail)),
        }
    };
    let Some((status, tail)) = finished else {
        if let Err(e) = child.kill().await {
            tracing::warn!(job, error = %e, "could not kill ffmpeg");
        }
        return Outcome::Cancelled;
    };
    let status = match status {
        Ok(s) => s,
        Err(e) => return Outcome::Failed(internal("could not wait for ffmpeg").with_source(e)),
    };
    if !status.success() {
        let last = tail.back().cloned().unwrap_or_default();
        let tail: Vec<String> = tail.into_iter().collect();
        return Outcome::Failed(
            internal(format!("ffmpeg failed ({status}): {last}")).with_raw(tail.join("\n")),
        );
    }
    let part = config.work_dir.join(part_name(job));
    let output = config.work_dir.join(output_name(job));
    match tokio::fs::rename(&part, &output).await {
        Ok(()) => Outcome::Succeeded,
        Err(e) => Outcome::Failed(
            internal(format!("could not move the render to {}", output.display())).with_source(e),
        ),
    }
}

/// Follows `-progress pipe:1` (`out_time_us=…` lines) and records the percentage done.
async fn read_progress(
    stdout: Option<impl AsyncRead + Unpin>,
    shared: &Shared,
    job: &str,
    total_us: u64,
) {
    let Some(stdout) = stdout else { return };
    let mut lines = BufReader::new(stdout).lines();
    while let Ok(Some(line)) = lines.next_line().await {
        // `out_time_ms` is in microseconds too (a long-standing ffmpeg misnomer).
        let Some(value) = line
            .strip_prefix("out_time_us=")
            .or_else(|| line.strip_prefix("out_time_ms="))
        else {
            continue;
        };
        let Ok(us) = value.trim().parse::<u64>() else {
            continue;
        };
        let percent = (us.saturating_mul(100) / total_us.max(1)).min(99) as u8;
        if let Some(Phase::Running { progress, .. }) =
            shared.lock().get_mut(job).map(|e| &mut e.phase)
        {
            *progress = Some(percent.max(progress.unwrap_or(0)));
        }
    }
}

/// Keeps the last lines of ffmpeg's stderr (bounded in count and length).
async fn read_tail(stderr: Option<impl AsyncRead + Unpin>) -> VecDeque<String> {
    let mut tail = VecDeque::with_capacity(STDERR_LINES);
    let Some(stderr) = stderr else { return tail };
    let mut reader = BufReader::new(stderr);
    let mut buf = Vec::new();
    loop {
        buf.clear();
        match reader.read_until(b'\n', &mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(_) => {
                let mut line = String::from_utf8_lossy(&buf).trim_end().to_owned();
                if line.is_empty() {
                    continue;
                }
                if line.len() > STDERR_LINE_BYTES {
                    let mut cut = STDERR_LINE_BYTES;
                    while !line.is_char_boundary(cut) {
                        cut -= 1;
                    }
                    line.truncate(cut);
                    line.push('…');
                }
                if tail.len() == STDERR_LINES {
                    tail.pop_front();
                }
                tail.push_back(line);
            }
        }
    }
    tail
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> RenderSpec {
        RenderSpec {
            prompt: "hello".into(),
            duration_s: 4,
            width: 720,
            height: 1280,
            background: None,
        }
    }

    #[test]
    fn the_command_line_asks_for_faststart_h264_at_the_requested_size() {
        let probe = Probe {
            drawtext: true,
            font: Some(PathBuf::from("/fonts/My Font's:1.ttf")),
            cjk_font: None,
        };
        let args: Vec<String> = ffmpeg_args("local-abc", &spec(), 24, "ultrafast", &probe)
            .into_iter()
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        let joined = args.join(" ");
        assert!(
            joined.contains("color=c=0x1d2433:s=720x1280:r=24:d=4"),
            "{joined}"
        );
        assert!(joined.contains("-pix_fmt yuv420p"));
        assert!(joined.contains("-movflags +faststart"));
        assert!(joined.contains("-c:v libx264 -preset ultrafast"));
        assert!(joined.contains("textfile=local-abc.txt:expansion=none"));
        assert!(
            joined.contains(r"fontfile=/fonts/My Font\\\'s\\:1.ttf"),
            "{joined}"
        );
        assert_eq!(args.last().map(String::as_str), Some("local-abc.mp4.part"));
    }

    #[test]
    fn a_first_frame_is_looped_scaled_to_cover_and_dimmed_instead_of_the_plain_card() {
        let mut s = spec();
        s.background = Some("local-abc.frame.jpg".into());
        let joined = ffmpeg_args("local-abc", &s, 30, "ultrafast", &Probe::default())
            .into_iter()
            .map(|a| a.to_string_lossy().into_owned())
            .collect::<Vec<_>>()
            .join(" ");
        assert!(
            joined.contains("-f image2 -loop 1 -framerate 30 -i local-abc.frame.jpg"),
            "{joined}"
        );
        assert!(!joined.contains("lavfi"), "{joined}");
        assert!(
            joined.contains(
                "scale=720:1280:force_original_aspect_ratio=increase,crop=720:1280,setsar=1,\
                 colorchannelmixer=rr=0.45:gg=0.45:bb=0.45"
            ),
            "{joined}"
        );
        assert!(joined.contains("-t 4 "), "{joined}");
    }

    #[test]
    fn without_drawtext_the_card_is_plain() {
        let args: Vec<String> =
            ffmpeg_args("local-abc", &spec(), 24, "ultrafast", &Probe::default())
                .into_iter()
                .map(|a| a.to_string_lossy().into_owned())
                .collect();
        assert!(!args.join(" ").contains("drawtext"));
    }

    #[test]
    fn a_cjk_prompt_uses_a_cjk_font_when_one_exists() {
        let probe = Probe {
            drawtext: true,
            font: Some(PathBuf::from("/latin.ttf")),
            cjk_font: Some(PathBuf::from("/cjk.ttc")),
        };
        let mut s = spec();
        s.prompt = "小美 walks in".into();
        let joined = ffmpeg_args("local-abc", &s, 24, "ultrafast", &probe)
            .into_iter()
            .map(|a| a.to_string_lossy().into_owned())
            .collect::<Vec<_>>()
            .join(" ");
        assert!(joined.contains("fontfile=/cjk.ttc"), "{joined}");
        assert!(!joined.contains("/latin.ttf"));
    }

    #[test]
    fn the_text_box_fits_both_orientations() {
        let (hc, hl) = text_box(1280, 720);
        let (vc, vl) = text_box(720, 1280);
        assert!(hc > vc && vl > hl, "{hc}x{hl} vs {vc}x{vl}");
        assert!((20..60).contains(&vc) && (5..30).contains(&hl));
    }
}
