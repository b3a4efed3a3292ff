//! The harness's flags.

use std::num::NonZeroU32;
use std::time::Duration;

use cineflow_testkit::Protocol;

use super::*;

/// Where the fake vendor runs.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum VendorMode {
    /// This executable, re-started in vendor mode.
    Process,
    /// The testkit's `fake-vendor` binary at this path.
    Binary(String),
    /// A runtime of its own inside this process.
    InProcess,
}

/// Where videos go.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum SinkMode {
    Hash,
    Dir,
}

/// The parsed command line.
#[derive(Debug, Clone)]
pub(crate) struct Opts {
    pub(crate) tasks: usize,
    pub(crate) concurrency: usize,
    pub(crate) job_secs: f64,
    /// `None`: `MockProvider`, in process, no HTTP.
    pub(crate) protocol: Option<Protocol>,
    pub(crate) json: bool,
    pub(crate) video_bytes: u64,
    pub(crate) job_jitter: f64,
    pub(crate) poll_after_ms: Option<u64>,
    pub(crate) store: String,
    pub(crate) sink: SinkMode,
    pub(crate) vendor: VendorMode,
    pub(crate) timeout: Duration,
    pub(crate) rss_timeline: bool,
    /// Where to write the vendor's ledger (every job's times) after the run.
    pub(crate) ledger_out: Option<String>,
    pub(crate) max_calls: Option<NonZeroU32>,
    /// Share of submits, polls and list reads the fake vendor answers 429.
    pub(crate) rate_limit_rate: f64,
    pub(crate) retry_after_ms: u64,
    /// `--webhooks`: the vendor calls back to a loopback receiver feeding the orchestrator.
    pub(crate) webhooks: bool,
    /// `--confirm-one-by-one`: callbacks' claims confirmed by one poll per job, not in batches
    /// from the job list (`CallbackConfig::confirm_in_batches` off).
    pub(crate) confirm_one_by_one: bool,
    /// Share of callbacks the fake vendor loses (`--callback-loss`).
    pub(crate) callback_loss: f64,
    /// The first poll of a job that calls back, after its submit (`--first-poll-secs`).
    pub(crate) first_poll: Option<Duration>,
    /// Worker processes (`--workers`); 0: this process runs the run.
    pub(crate) workers: usize,
    /// The lease length of the workers (`--lease-secs`).
    pub(crate) lease_ttl: Duration,
}

impl Opts {
    /// The provider's cap on calls at once: `--max-calls`, else the library's default, except
    /// with the mock (its calls sleep instead of holding connections): none.
    pub(crate) fn calls_cap(&self) -> Option<NonZeroU32> {
        match (self.max_calls, self.protocol) {
            (Some(n), _) => Some(n),
            (None, None) => Some(NonZeroU32::MAX),
            (None, Some(_)) => None,
        }
    }

    /// `Ok(None)` for `--help`.
    pub(crate) fn parse(args: impl Iterator<Item = String>) -> Result<Option<Self>, String> {
        let mut tasks = 100usize;
        let mut concurrency: Option<usize> = None;
        let mut job_secs = 5.0f64;
        let mut protocol = Some(Protocol::SoraHk);
        let mut json = false;
        let mut video_mb: f64 = 64.0 / 1024.0;
        let mut job_jitter = 0.0f64;
        let mut poll_after_ms = Some(1000u64);
        let mut store = "memory".to_owned();
        let mut sink = SinkMode::Hash;
        let mut vendor = VendorMode::Process;
        let mut vendor_bin: Option<String> = None;
        let mut timeout_secs: Option<f64> = None;
        let mut rss_timeline = false;
        let mut ledger_out = None;
        let mut max_calls: Option<NonZeroU32> = None;
        let mut rate_limit_rate = 0.0f64;
        let mut retry_after_ms = 1000u64;
        let mut webhooks = false;
        let mut confirm_one_by_one = false;
        let mut callback_loss = 0.0f64;
        let mut first_poll_secs: Option<f64> = None;
        let mut workers = 0usize;
        let mut lease_secs = 30.0f64;
        let mut args = args.peekable();
        while let Some(arg) = args.next() {
            let (flag, inline) = match arg.split_once('=') {
                Some((f, v)) if f.starts_with("--") => (f.to_owned(), Some(v.to_owned())),
                _ => (arg, None),
            };
            let mut value = || -> Result<String, String> {
                match &inline {
                    Some(v) => Ok(v.clone()),
                    None => args
                        .next()
                        .filter(|v| !v.starts_with("--"))
                        .ok_or_else(|| format!("{flag} needs a value")),
                }
            };
            match flag.as_str() {
                "-h" | "--help" => return Ok(None),
                "--json" => json = true,
                "--webhooks" => webhooks = true,
                "--confirm-one-by-one" => confirm_one_by_one = true,
                "--callback-loss" => callback_loss = number(&flag, &value()?)?,
                "--first-poll-secs" => first_poll_secs = Some(number(&flag, &value()?)?),
                "--rss-timeline" => rss_timeline = true,
                "--ledger-out" => ledger_out = Some(value()?),
                "--max-calls" => {
                    let n: u32 = number(&flag, &value()?)?;
                    max_calls = Some(NonZeroU32::new(n).ok_or("--max-calls must be at least 1")?);
                }
                "--tasks" => tasks = number(&flag, &value()?)?,
                "--concurrency" => concurrency = Some(number(&flag, &value()?)?),
                "--job-secs" => job_secs = number(&flag, &value()?)?,
                "--protocol" => {
                    protocol = match value()?.as_str() {
                        "sorahk" => Some(Protocol::SoraHk),
                        "openai" => Some(Protocol::OpenAi),
                        "seedance" => Some(Protocol::Seedance),
                        "kling" => Some(Protocol::Kling),
                        "wan" => Some(Protocol::Wan),
                        "minimax" => Some(Protocol::Minimax),
                        "fal" => Some(Protocol::Fal),
                        "openrouter" => Some(Protocol::OpenRouter),
                        "mock" => None,
                        other => {
                            return Err(format!(
                                "--protocol: {other:?} is not one of sorahk, openai, seedance, kling, wan, minimax, fal, openrouter, mock"
                            ));
                        }
                    }
                }
                "--video-mb" => video_mb = number(&flag, &value()?)?,
                "--job-jitter" => job_jitter = number(&flag, &value()?)?,
                "--poll-after-ms" => {
                    let v = value()?;
                    poll_after_ms = if v == "off" {
                        None
                    } else {
                        Some(number(&flag, &v)?)
                    };
                }
                "--store" => store = value()?,
                "--sink" => {
                    sink = match value()?.as_str() {
                        "hash" => SinkMode::Hash,
                        "dir" => SinkMode::Dir,
                        other => return Err(format!("--sink: {other:?} is not one of hash, dir")),
                    }
                }
                "--vendor" => {
                    vendor = match value()?.as_str() {
                        "process" => VendorMode::Process,
                        "in-process" => VendorMode::InProcess,
                        other => {
                            return Err(format!(
                                "--vendor: {other:?} is not one of process, in-process"
                            ));
                        }
                    }
                }
                "--vendor-bin" => vendor_bin = Some(value()?),
                "--timeout-secs" => timeout_secs = Some(number(&flag, &value()?)?),
                "--rate-limit-rate" => rate_limit_rate = number(&flag, &value()?)?,
                "--retry-after-ms" => retry_after_ms = number(&flag, &value()?)?,
                "--workers" => workers = number(&flag, &value()?)?,
                "--lease-secs" => lease_secs = number(&flag, &value()?)?,
                other => return Err(format!("unknown flag {other:?}")),
            }
        }
        let max = cineflow::core::run::MAX_CONCURRENCY;
        if tasks == 0 {
            return Err("--tasks must be at least 1".into());
        }
        let concurrency = concurrency.unwrap_or(tasks.min(max));
        if !(1..=max).contains(&concurrency) {
            return Err(format!(
                "--concurrency must be between 1 and {max}, got {concurrency}"
            ));
        }
        if !(job_secs.is_finite() && job_secs > 0.0 && job_secs <= 86_400.0) {
            return Err(format!(
                "--job-secs must be > 0 and at most 86400, got {job_secs}"
            ));
        }
        if !(0.0..1.0).contains(&job_jitter) {
            return Err(format!("--job-jitter must be in [0, 1), got {job_jitter}"));
        }
        // At least the 40-byte MP4 header; at most 64 GiB.
        if !(video_mb.is_finite() && video_mb * MIB >= 40.0 && video_mb <= 65_536.0) {
            return Err(format!(
                "--video-mb must be between 0.0001 (40 bytes) and 65536, got {video_mb}"
            ));
        }
        if !(0.0..1.0).contains(&rate_limit_rate) {
            return Err(format!(
                "--rate-limit-rate must be in [0, 1), got {rate_limit_rate}"
            ));
        }
        if rate_limit_rate > 0.0 && protocol.is_none() {
            return Err(
                "--rate-limit-rate needs the fake vendor (--protocol sorahk or openai)".into(),
            );
        }
        if webhooks
            && !matches!(
                protocol,
                Some(
                    Protocol::Seedance
                        | Protocol::Kling
                        | Protocol::Minimax
                        | Protocol::Fal
                        | Protocol::OpenRouter
                )
            )
        {
            return Err(
                "--webhooks needs a vendor that calls back: --protocol seedance, kling, minimax, fal or openrouter"
                    .into(),
            );
        }
        if !(0.0..1.0).contains(&callback_loss) {
            return Err(format!(
                "--callback-loss must be in [0, 1), got {callback_loss}"
            ));
        }
        if callback_loss > 0.0 && !webhooks {
            return Err("--callback-loss needs --webhooks".into());
        }
        if confirm_one_by_one && !webhooks {
            return Err("--confirm-one-by-one needs --webhooks".into());
        }
        let first_poll = match first_poll_secs {
            Some(s) if !(s.is_finite() && s > 0.0) => {
                return Err(format!("--first-poll-secs must be > 0, got {s}"));
            }
            s => s.map(Duration::from_secs_f64),
        };
        if workers > 0 {
            if webhooks {
                return Err("--webhooks and --workers do not go together (the receiver feeds this process's orchestrator)".into());
            }
            if !store.starts_with("postgres") {
                return Err("--workers needs a shared store: --store postgres://…".into());
            }
            if protocol.is_none() || vendor == VendorMode::InProcess {
                return Err(
                    "--workers needs the fake vendor in a process of its own (a --protocol other than mock, --vendor process)".into(),
                );
            }
            if workers > concurrency {
                return Err(format!(
                    "--workers {workers} is more than --concurrency {concurrency}"
                ));
            }
        }
        if !(lease_secs.is_finite() && (1.0..=3600.0).contains(&lease_secs)) {
            return Err(format!(
                "--lease-secs must be between 1 and 3600, got {lease_secs}"
            ));
        }
        if let Some(path) = vendor_bin {
            if vendor == VendorMode::InProcess {
                return Err("--vendor-bin and --vendor in-process exclude each other".into());
            }
            vendor = VendorMode::Binary(path);
        }
        let ideal = ideal_wall_secs(tasks, concurrency, job_secs);
        let timeout_secs = timeout_secs.unwrap_or(4.0 * ideal + 120.0);
        if !(timeout_secs.is_finite() && timeout_secs > 0.0) {
            return Err(format!("--timeout-secs must be > 0, got {timeout_secs}"));
        }
        Ok(Some(Self {
            tasks,
            concurrency,
            job_secs,
            protocol,
            json,
            video_bytes: (video_mb * MIB).round() as u64,
            job_jitter,
            poll_after_ms,
            store,
            sink,
            vendor,
            timeout: Duration::from_secs_f64(timeout_secs),
            rss_timeline,
            ledger_out,
            max_calls,
            rate_limit_rate,
            retry_after_ms,
            webhooks,
            confirm_one_by_one,
            callback_loss,
            first_poll,
            workers,
            lease_ttl: Duration::from_secs_f64(lease_secs),
        }))
    }
}

pub(crate) fn number<T: std::str::FromStr>(flag: &str, v: &str) -> Result<T, String> {
    v.trim()
        .parse()
        .map_err(|_| format!("{flag}: {v:?} is not a valid number"))
}

/// ⌈N / C⌉ · S: the wall time if every task took exactly the job's duration.
pub(crate) fn ideal_wall_secs(tasks: usize, concurrency: usize, job_secs: f64) -> f64 {
    tasks.div_ceil(concurrency) as f64 * job_secs
}

// ---------------------------------------------------------------------------------------------
// The fake vendor.
