//! Configuring a [`LocalRenderer`] and finding the ffmpeg binary.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use cineflow_core::{Error, ProviderId};
use tokio::sync::{OnceCell, Semaphore};
use tokio_util::sync::CancellationToken;

use super::{
    Config, DEFAULT_FPS, DEFAULT_ID, DEFAULT_PRESET, FFMPEG_ENV, Inner, LocalRenderer, Shared,
    WORK_DIR_ENV,
};

const X264_PRESETS: [&str; 10] = [
    "ultrafast",
    "superfast",
    "veryfast",
    "faster",
    "fast",
    "medium",
    "slow",
    "slower",
    "veryslow",
    "placebo",
];

/// Configures a [`LocalRenderer`]. Start with [`LocalRenderer::builder`] or
/// [`LocalRendererBuilder::from_env`].
#[derive(Debug, Clone, Default)]
pub struct LocalRendererBuilder {
    ffmpeg: Option<PathBuf>,
    work_dir: Option<PathBuf>,
    id: Option<String>,
    max_parallel: Option<usize>,
    fps: Option<u32>,
    preset: Option<String>,
    font: Option<PathBuf>,
}

impl LocalRendererBuilder {
    /// A builder with every setting at its default (see each `with_*` method).
    pub fn new() -> Self {
        Self::default()
    }

    /// A builder that takes the ffmpeg binary from `CINEFLOW_FFMPEG` and the work dir from
    /// `CINEFLOW_LOCAL_WORK_DIR` when they are set and not empty.
    pub fn from_env() -> Self {
        let var = |name| std::env::var_os(name).filter(|v| !v.is_empty());
        Self {
            ffmpeg: var(FFMPEG_ENV).map(PathBuf::from),
            work_dir: var(WORK_DIR_ENV).map(PathBuf::from),
            ..Self::default()
        }
    }

    /// The ffmpeg binary: a path, or a bare name looked up on `PATH`. Default: `CINEFLOW_FFMPEG`
    /// if set, else `ffmpeg` on `PATH`.
    pub fn with_ffmpeg(mut self, ffmpeg: impl Into<PathBuf>) -> Self {
        self.ffmpeg = Some(ffmpeg.into());
        self
    }

    /// Where renders are written and kept until [`cleanup`](LocalRenderer::cleanup) (created on
    /// first submit; made absolute at build). Default: `cineflow-local-render` under the system
    /// temp dir.
    pub fn with_work_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.work_dir = Some(dir.into());
        self
    }

    /// The provider id (a slug). Default: [`DEFAULT_ID`] (`local`).
    pub fn with_id(mut self, id: &str) -> Self {
        self.id = Some(id.to_owned());
        self
    }

    /// How many renders run at once; more are queued. Default: the number of CPUs.
    pub fn with_max_parallel(mut self, n: usize) -> Self {
        self.max_parallel = Some(n);
        self
    }

    /// Frames per second, 1–60. Default: [`DEFAULT_FPS`] (24).
    pub fn with_fps(mut self, fps: u32) -> Self {
        self.fps = Some(fps);
        self
    }

    /// The x264 preset (`ultrafast` … `placebo`): slower presets give smaller files. Default:
    /// [`DEFAULT_PRESET`] (`ultrafast`).
    pub fn with_preset(mut self, preset: &str) -> Self {
        self.preset = Some(preset.to_owned());
        self
    }

    /// The font file for the prompt text. Default: DejaVu Sans from a well-known path, else
    /// fontconfig's `sans-serif`, else ffmpeg's own default; prompts with CJK characters use a
    /// font with CJK glyphs when fontconfig knows one.
    pub fn with_font(mut self, font: impl Into<PathBuf>) -> Self {
        self.font = Some(font.into());
        self
    }

    /// Checks the settings and finds ffmpeg. Spawns no process: whether this ffmpeg build can
    /// draw text is found out on the first render (without `drawtext` the card is plain).
    ///
    /// # Errors
    ///
    /// - [`Error::Config`] when no ffmpeg binary can be found (the message names the install
    ///   command and `CINEFLOW_FFMPEG`), or when the work dir cannot be made absolute.
    /// - [`Error::InvalidId`] for a bad id; [`Error::InvalidInput`] for `max_parallel` 0, an
    ///   fps outside 1–60 or an unknown preset.
    pub fn build(self) -> Result<LocalRenderer, Error> {
        let id = ProviderId::new(self.id.as_deref().unwrap_or(DEFAULT_ID))?;
        let max_parallel = match self.max_parallel {
            Some(0) => return Err(Error::invalid_input("max_parallel", "must be at least 1")),
            Some(n) => n,
            None => std::thread::available_parallelism().map_or(2, usize::from),
        };
        let fps = self.fps.unwrap_or(DEFAULT_FPS);
        if !(1..=60).contains(&fps) {
            return Err(Error::invalid_input(
                "fps",
                format!("{fps} is not in 1..=60"),
            ));
        }
        let preset = self.preset.unwrap_or_else(|| DEFAULT_PRESET.to_owned());
        if !X264_PRESETS.contains(&preset.as_str()) {
            return Err(Error::invalid_input(
                "preset",
                format!("{preset:?} is not one of {X264_PRESETS:?}"),
            ));
        }
        let ffmpeg = resolve_ffmpeg(self.ffmpeg)?;
        let work_dir = self
            .work_dir
            .unwrap_or_else(|| std::env::temp_dir().join("cineflow-local-render"));
        let work_dir = std::path::absolute(&work_dir).map_err(|e| {
            Error::Config(format!(
                "local renderer work dir {}: {e}",
                work_dir.display()
            ))
        })?;

        let shutdown = CancellationToken::new();
        let shared = Arc::new(Shared {
            config: Config {
                ffmpeg,
                work_dir,
                fps,
                preset,
                font: self.font,
            },
            jobs: Mutex::new(HashMap::new()),
            permits: Semaphore::new(max_parallel),
            probe: OnceCell::new(),
            shutdown: shutdown.clone(),
        });
        let capabilities = super::spec::capabilities();
        Ok(LocalRenderer {
            inner: Arc::new(Inner {
                id,
                capabilities,
                max_parallel,
                shared,
                _shutdown: shutdown.drop_guard(),
            }),
        })
    }
}

/// Finds the ffmpeg binary: `explicit`, else `CINEFLOW_FFMPEG`, else `ffmpeg` on `PATH`.
pub(super) fn resolve_ffmpeg(explicit: Option<PathBuf>) -> Result<PathBuf, Error> {
    let (wanted, from) = match explicit {
        Some(p) => (p, "configured"),
        None => match std::env::var_os(FFMPEG_ENV).filter(|v| !v.is_empty()) {
            Some(p) => (PathBuf::from(p), FFMPEG_ENV),
            None => (PathBuf::from("ffmpeg"), "PATH"),
        },
    };
    find_executable(&wanted).ok_or_else(|| {
        Error::Config(format!(
            "ffmpeg not found ({from}: {}): install it with `apt-get install ffmpeg` \
             (Debian/Ubuntu) or `brew install ffmpeg` (macOS), or set {FFMPEG_ENV} to the \
             ffmpeg binary",
            wanted.display()
        ))
    })
}

/// `name` itself when it is a path to an executable file, else the first match on `PATH`.
fn find_executable(name: &Path) -> Option<PathBuf> {
    if name.components().count() > 1 || name.is_absolute() {
        return is_executable(name).then(|| name.to_path_buf());
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path).find_map(|dir| {
        let candidate = dir.join(name);
        if is_executable(&candidate) {
            return Some(candidate);
        }
        if cfg!(windows) {
            let exe = candidate.with_extension("exe");
            if is_executable(&exe) {
                return Some(exe);
            }
        }
        None
    })
}

fn is_executable(path: &Path) -> bool {
    let Ok(meta) = std::fs::metadata(path) else {
        return false;
    };
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        meta.is_file() && meta.permissions().mode() & 0o111 != 0
    }
    #[cfg(not(unix))]
    {
        meta.is_file()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bare_name_is_looked_up_on_path_and_a_missing_path_is_not_found() {
        assert!(find_executable(Path::new("/nonexistent/ffmpeg")).is_none());
        assert!(find_executable(Path::new("surely-not-a-real-binary-cineflow")).is_none());
        #[cfg(unix)]
        assert!(find_executable(Path::new("sh")).is_some());
    }

    #[test]
    fn bad_settings_are_rejected_at_build() {
        let b = || LocalRenderer::builder().with_ffmpeg("/bin/sh");
        assert_eq!(
            b().with_max_parallel(0).build().unwrap_err().kind(),
            cineflow_core::ErrorKind::InvalidInput
        );
        assert!(b().with_fps(0).build().is_err());
        assert!(b().with_fps(61).build().is_err());
        assert!(b().with_preset("warp-speed").build().is_err());
        assert!(b().with_id("Not A Slug").build().is_err());
        let r = b().with_work_dir("relative/dir").build().unwrap();
        assert!(r.work_dir().is_absolute());
        let dbg = format!("{r:?}");
        assert!(
            dbg.contains("LocalRenderer") && dbg.contains("max_parallel"),
            "{dbg}"
        );
    }
}
