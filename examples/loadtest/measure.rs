//! What the harness measures: memory and CPU of a process, the hashing sink, the ledger's counts.

use std::fmt::Write as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use bytes::Bytes;
use cineflow::core::sink::{ArtifactKey, ArtifactSink, StoredVideo};
use cineflow::core::{ByteStream, ErrorCode, FrameFormat, Storyboard, VideoProvider};
use cineflow::providers::fal::Fal;
use cineflow::providers::kling::Kling;
use cineflow::providers::minimax::Minimax;
use cineflow::providers::openai_compat::OpenAiCompat;
use cineflow::providers::openrouter::OpenRouter;
use cineflow::providers::seedance::Seedance;
use cineflow::providers::sorahk::SoraHk;
use cineflow::providers::wan::Wan;
use cineflow::providers::{ApiKeyBuilder, HttpBuilder};
use cineflow_testkit::{Ledger, Protocol};
use futures::StreamExt;
use serde_json::Value;
use sha2::{Digest, Sha256};

use super::*;

pub(crate) fn proc_status_kb(pid: &str, field: &str) -> Result<f64, BoxError> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let line = status
        .lines()
        .find(|l| l.starts_with(field))
        .ok_or_else(|| format!("/proc/{pid}/status has no {field}"))?;
    let kb: f64 = line
        .trim_start_matches(field)
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()?;
    Ok(kb)
}

/// `VmHWM`: the peak resident set size, in MiB.
pub(crate) fn peak_rss_mb(pid: &str) -> Result<f64, BoxError> {
    Ok(proc_status_kb(pid, "VmHWM:")? / 1024.0)
}

/// `VmRSS`: the resident set size now, in MiB.
pub(crate) fn rss_mb(pid: &str) -> Result<f64, BoxError> {
    Ok(proc_status_kb(pid, "VmRSS:")? / 1024.0)
}

/// `utime + stime` of every thread, in seconds (Linux's USER_HZ is 100 on every platform it
/// supports).
pub(crate) fn cpu_secs(pid: &str) -> Result<f64, BoxError> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    // Fields after the command name (which may hold spaces) start at `state`, field 3.
    let rest = stat
        .rsplit_once(')')
        .map(|(_, r)| r)
        .ok_or("unexpected /proc/self/stat")?;
    let f: Vec<&str> = rest.split_whitespace().collect();
    let (utime, stime): (f64, f64) = match (f.get(11), f.get(12)) {
        (Some(u), Some(s)) => (u.parse()?, s.parse()?),
        _ => return Err("unexpected /proc/self/stat".into()),
    };
    Ok((utime + stime) / 100.0)
}

/// Samples `VmRSS` every 250 ms on a thread of its own (`--rss-timeline`, on stderr).
pub(crate) struct RssSampler {
    pub(crate) stop: Arc<std::sync::atomic::AtomicBool>,
    pub(crate) thread: std::thread::JoinHandle<String>,
}

impl RssSampler {
    pub(crate) fn start(t0: Instant) -> Self {
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        let thread = std::thread::spawn(move || {
            let mut out = String::from("rss timeline (s: MiB):");
            while !flag.load(std::sync::atomic::Ordering::Relaxed) {
                if let Ok(mb) = rss_mb("self") {
                    let _ = write!(out, " {:.2}:{mb:.0}", t0.elapsed().as_secs_f64());
                }
                std::thread::sleep(Duration::from_millis(250));
            }
            out.push('\n');
            out
        });
        Self { stop, thread }
    }

    pub(crate) fn stop(self) -> String {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        self.thread.join().unwrap_or_default()
    }
}

// ---------------------------------------------------------------------------------------------
// The run.

/// Streams each video through sha256 and drops it: measures the orchestrator, not the disk.
#[derive(Debug)]
pub(crate) struct HashingSink;

#[async_trait]
impl ArtifactSink for HashingSink {
    async fn put_video(
        &self,
        _key: &ArtifactKey,
        mut body: ByteStream,
    ) -> cineflow::core::Result<StoredVideo> {
        let mut h = Sha256::new();
        let mut n = 0u64;
        while let Some(chunk) = body.next().await {
            let chunk = chunk?;
            n += chunk.len() as u64;
            h.update(&chunk);
        }
        Ok(StoredVideo {
            location: "discarded".into(),
            sha256: format!("{:x}", h.finalize()),
            size_bytes: n,
        })
    }

    async fn put_sidecar(
        &self,
        _key: &ArtifactKey,
        _sidecar: &Value,
    ) -> cineflow::core::Result<String> {
        Ok("discarded".into())
    }
}

/// When the run's downloads started and ended: every video passes through this wrapper of the
/// run's sink, which notes the first and last start of a `put_video` and the last end of one
/// (the download burst; `put_video` starts once the vendor's answer to the download began).
#[derive(Debug)]
pub(crate) struct TimedSink {
    inner: Arc<dyn ArtifactSink>,
    /// Times are nanoseconds after this instant, plus one (0: none yet).
    origin: Instant,
    first_start: AtomicU64,
    last_start: AtomicU64,
    last_end: AtomicU64,
}

/// The download burst, in seconds after the run started.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct Downloads {
    pub(crate) first_started: Option<f64>,
    pub(crate) last_started: Option<f64>,
    pub(crate) last_ended: Option<f64>,
}

impl TimedSink {
    pub(crate) fn new(inner: Arc<dyn ArtifactSink>) -> Self {
        Self {
            inner,
            origin: Instant::now(),
            first_start: AtomicU64::new(0),
            last_start: AtomicU64::new(0),
            last_end: AtomicU64::new(0),
        }
    }

    fn now(&self) -> u64 {
        u64::try_from(self.origin.elapsed().as_nanos()).unwrap_or(u64::MAX - 1) + 1
    }

    /// The burst, relative to `started` (the run's start).
    pub(crate) fn downloads(&self, started: Instant) -> Downloads {
        let offset = started.saturating_duration_since(self.origin).as_secs_f64();
        let at = |a: &AtomicU64| match a.load(Ordering::SeqCst) {
            0 => None,
            n => Some((n - 1) as f64 / 1e9 - offset),
        };
        Downloads {
            first_started: at(&self.first_start),
            last_started: at(&self.last_start),
            last_ended: at(&self.last_end),
        }
    }
}

#[async_trait]
impl ArtifactSink for TimedSink {
    async fn put_video(
        &self,
        key: &ArtifactKey,
        body: ByteStream,
    ) -> cineflow::core::Result<StoredVideo> {
        let started = self.now();
        // The first start is the first one noted; later ones only move the last.
        let _ = self
            .first_start
            .compare_exchange(0, started, Ordering::SeqCst, Ordering::SeqCst);
        self.last_start.fetch_max(started, Ordering::SeqCst);
        let stored = self.inner.put_video(key, body).await;
        self.last_end.fetch_max(self.now(), Ordering::SeqCst);
        stored
    }

    async fn put_sidecar(
        &self,
        key: &ArtifactKey,
        sidecar: &Value,
    ) -> cineflow::core::Result<String> {
        self.inner.put_sidecar(key, sidecar).await
    }

    async fn put_last_frame(
        &self,
        key: &ArtifactKey,
        format: FrameFormat,
        image: Bytes,
    ) -> cineflow::core::Result<StoredVideo> {
        self.inner.put_last_frame(key, format, image).await
    }

    async fn cleanup_partial(&self, key: &ArtifactKey) -> cineflow::core::Result<()> {
        self.inner.cleanup_partial(key).await
    }

    fn failure_code(&self) -> ErrorCode {
        self.inner.failure_code()
    }
}

/// A storyboard of `n` segments with distinct prompts, at a duration the protocol accepts.
pub(crate) fn storyboard(n: usize, protocol: Option<Protocol>) -> Result<Storyboard, BoxError> {
    let duration = match protocol {
        Some(Protocol::OpenAi) => 4,
        Some(Protocol::Seedance | Protocol::Kling | Protocol::Wan) => 5,
        Some(Protocol::Minimax) => 6,
        // Veo 3.1 on fal and OpenRouter: 4, 6 or 8 s.
        Some(Protocol::Fal | Protocol::OpenRouter) => 4,
        Some(Protocol::SoraHk) | None => 10,
    };
    // MiniMax's V1 models render text prompts in landscape only.
    let orientation = match protocol {
        Some(Protocol::Minimax) => "horizontal",
        _ => "vertical",
    };
    let mut json = String::from(r#"{"segments":["#);
    for i in 1..=n {
        if i > 1 {
            json.push(',');
        }
        write!(
            json,
            r#"{{"segment_index":{i},"prompt_text":"Load shot {i}: a lighthouse at dusk.","duration_seconds":{duration},"resolution":"{orientation}"}}"#
        )?;
    }
    json.push_str("]}");
    Ok(Storyboard::from_json(&json)?)
}

pub(crate) async fn provider(
    vendor: &Vendor,
    protocol: Protocol,
) -> Result<(Arc<dyn VideoProvider>, &'static str), BoxError> {
    let base = vendor.base_url(protocol)?;
    Ok(match protocol {
        Protocol::OpenAi => (
            Arc::new(
                OpenAiCompat::custom(base)
                    .with_api_key(vendor.key())
                    .build()?,
            ),
            "sora-2",
        ),
        Protocol::SoraHk => (
            Arc::new(
                SoraHk::builder()
                    .with_base_url(base)
                    .with_api_key(vendor.key())
                    .build()?,
            ),
            "sora2",
        ),
        Protocol::Seedance => (
            Arc::new(
                Seedance::ark()
                    .with_base_url(base)
                    .with_api_key(vendor.key())
                    .build()?,
            ),
            "doubao-seedance-2-0-260128",
        ),
        Protocol::Kling => (
            Arc::new(
                Kling::intl()
                    .with_base_url(base)
                    .with_credentials(cineflow_testkit::KLING_ACCESS_KEY, vendor.key())
                    .build()?,
            ),
            "kling-v3",
        ),
        Protocol::Wan => (
            Arc::new(
                Wan::beijing()
                    .with_base_url(base)
                    .with_api_key(vendor.key())
                    .build()?,
            ),
            "wan2.6-t2v",
        ),
        Protocol::Minimax => (
            Arc::new(
                Minimax::intl()
                    .with_base_url(base)
                    .with_api_key(vendor.key())
                    .build()?,
            ),
            "MiniMax-Hailuo-02",
        ),
        Protocol::Fal => (
            Arc::new(
                Fal::builder()
                    .with_base_url(base)
                    .with_platform_url(vendor.fal_platform_url()?)
                    .with_jwks_url(vendor.fal_jwks_url()?)
                    .with_api_key(vendor.key())
                    .build()?,
            ),
            "fal-ai/veo3.1",
        ),
        // The capabilities come from the fake's models list.
        Protocol::OpenRouter => (
            Arc::new(
                OpenRouter::builder()
                    .with_base_url(base)
                    .with_api_key(vendor.key())
                    // The fake vendor's default signing secret (both vendor modes start with it).
                    .with_webhook_secret(OPENROUTER_WEBHOOK_SECRET)
                    .connect()
                    .await?,
            ),
            "google/veo-3.1",
        ),
    })
}

/// The fake vendor's default OpenRouter webhook signing secret.
pub(crate) const OPENROUTER_WEBHOOK_SECRET: &str = "fake-openrouter-webhook-secret";

/// Writes `ledger` to `path` (`--ledger-out`), if given, with the run's start
/// (`started_unix_nanos`).
pub(crate) fn write_ledger(
    path: Option<&str>,
    started_utc: time::OffsetDateTime,
    ledger: &Ledger,
) -> std::io::Result<()> {
    let Some(path) = path else { return Ok(()) };
    let out = serde_json::json!({
        "started_unix_nanos": started_utc.unix_timestamp_nanos().to_string(),
        "ledger": ledger,
    });
    std::fs::write(path, serde_json::to_vec(&out)?)
}

/// Detection lags (seconds) of every job whose end a poll reported, or a signed callback
/// (`by_callback`: when the receiver handed a conclusive claim of the job's end to its task),
/// whichever came first.
pub(crate) fn detect_lags(
    ledger: &Ledger,
    by_callback: &std::collections::HashMap<String, time::OffsetDateTime>,
) -> Vec<f64> {
    let mut lags: Vec<f64> = ledger
        .jobs
        .iter()
        .filter_map(|j| {
            let detected = match (j.detected_at, by_callback.get(&j.id).copied()) {
                (Some(a), Some(b)) => a.min(b),
                (a, b) => a.or(b)?,
            };
            Some((detected - j.completed_at?).as_seconds_f64())
        })
        .collect();
    lags.sort_by(f64::total_cmp);
    lags
}

pub(crate) fn percentile(sorted: &[f64], p: f64) -> Option<f64> {
    if sorted.is_empty() {
        return None;
    }
    let i = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted.get(i).copied()
}

pub(crate) fn round(x: f64, digits: i32) -> f64 {
    let f = 10f64.powi(digits);
    (x * f).round() / f
}

/// What the vendor (or the mock) counted.
#[derive(Debug, Default)]
pub(crate) struct Counted {
    pub(crate) submits: u64,
    pub(crate) polls: u64,
    pub(crate) downloads: u64,
    pub(crate) rejected_submits: u64,
    pub(crate) submit_attempts: u64,
    pub(crate) rate_limited: u64,
    pub(crate) paid_twice: usize,
    pub(crate) downloaded_bytes: u64,
    pub(crate) callbacks_sent: u64,
    pub(crate) callbacks_lost: u64,
    pub(crate) mean_lag: Option<f64>,
    /// Sorted.
    pub(crate) lags: Vec<f64>,
    /// Seconds after the run started: the C-th job created (the first wave accepted), the
    /// last job created, the last job's end reported by a poll.
    pub(crate) first_wave_created: Option<f64>,
    pub(crate) last_created: Option<f64>,
    pub(crate) last_detected: Option<f64>,
}

impl Counted {
    pub(crate) fn from_ledger(
        ledger: &Ledger,
        started: time::OffsetDateTime,
        wave: usize,
        by_callback: &std::collections::HashMap<String, time::OffsetDateTime>,
    ) -> Self {
        let since = |t: time::OffsetDateTime| (t - started).as_seconds_f64();
        let mut created: Vec<f64> = ledger.jobs.iter().map(|j| since(j.created_at)).collect();
        created.sort_by(f64::total_cmp);
        let last_detected = ledger
            .jobs
            .iter()
            .filter_map(|j| {
                let hook = by_callback.get(&j.id).copied();
                match (j.detected_at, hook) {
                    (Some(a), Some(b)) => Some(a.min(b)),
                    (a, b) => a.or(b),
                }
                .map(since)
            })
            .max_by(f64::total_cmp);
        let lags = detect_lags(ledger, by_callback);
        Self {
            first_wave_created: created.get(wave.max(1) - 1).copied(),
            last_created: created.last().copied(),
            last_detected,
            submits: ledger.total.submits,
            polls: ledger.total.polls,
            downloads: ledger.total.downloads,
            rejected_submits: ledger.total.rejected_submits,
            submit_attempts: ledger.total.submit_attempts,
            rate_limited: ledger.total.rate_limited,
            paid_twice: ledger.duplicate_prompts().len(),
            downloaded_bytes: ledger.total.downloaded_bytes,
            callbacks_sent: ledger.total.callbacks_sent,
            callbacks_lost: ledger.total.callbacks_lost,
            mean_lag: (!lags.is_empty()).then(|| lags.iter().sum::<f64>() / lags.len() as f64),
            lags,
        }
    }
}
