//! Load harness: N tasks at concurrency C through the real adapters and the real orchestrator,
//! against the fake vendor of `cineflow-testkit`, with the vendor's ledger as the judge.
//!
//! ```text
//! cargo run --release --example loadtest -- --tasks 2000 --concurrency 500 --job-secs 5 --protocol sorahk --json
//! ```
//!
//! It prints one JSON object (`--json`) or a readable summary: `tasks`, `completed`,
//! `wall_secs`, `ideal_wall_secs` (⌈N/C⌉·S), `submits_per_task`, `polls_per_task`,
//! `downloads_per_task` and `mean_detect_lag_secs` (job finished at the vendor → a status poll
//! reported it; from the ledger), `peak_rss_mb` and `cpu_secs` of this process, and more.
//!
//! What is measured:
//! - **Vendor** (`--vendor`): by default the fake vendor runs in a **separate OS process** (this
//!   executable re-started in vendor mode, which runs `cineflow_testkit::cli`, the `fake-vendor`
//!   binary's own command line), so `peak_rss_mb` (`VmHWM`) and `cpu_secs` (`utime + stime`
//!   from `/proc/self/stat`) are the orchestrator's alone; the vendor's own are reported as
//!   `vendor_peak_rss_mb` and `vendor_cpu_secs`. `--vendor in-process` runs it on its own
//!   runtime in this process instead (its memory and CPU are then included);
//!   `--vendor-bin PATH` runs the testkit's `fake-vendor` binary
//!   (`cargo build --release -p cineflow-testkit --bin fake-vendor`, then
//!   `--vendor-bin target/release/fake-vendor`). Both processes share the machine's cores.
//! - **Store** (`--store`): `memory` (default) or any `cineflow_store::connect` URL
//!   (`sqlite:///tmp/load.db`, `postgres://…`; `file:///tmp/load` with `--features file`).
//! - **Sink** (`--sink`): `hash` (default) streams each video through sha256 and drops it (what
//!   is measured is the orchestrator, not the disk); `dir` writes videos and sidecars into a
//!   temporary directory with `LocalDirSink` (fsync and rename included), removed at the end.
//! - **RSS**: `baseline_rss_mb` is `VmRSS` just before the run starts, `peak_rss_mb` the
//!   process's `VmHWM` when it ends, `rss_growth_mb` their difference (e.g. one task with
//!   `--video-mb 200` shows what a 200 MB download costs in memory). The ledger is fetched
//!   after these are read.
//! - **Polling**: the orchestrator's default [`PollPolicy`](cineflow::core::PollPolicy); only
//!   `max_concurrency` is raised to C.
//!
//! Flags: `--tasks N` (100), `--concurrency C` (N, at most 10,000), `--job-secs S` (5),
//! `--protocol sorahk|openai|mock` (sorahk), `--json`, `--video-mb M` (0.0625 = 64 KiB),
//! `--job-jitter F` (0: every job takes exactly S), `--poll-after-ms N|off` (the fake's
//! OpenAI `openai-poll-after-ms` hint, 1000), `--store URL` (memory), `--sink hash|dir`
//! (hash), `--vendor process|in-process` (process), `--vendor-bin PATH`, `--timeout-secs T`
//! (4 × ideal + 120). The process exits 1 when not every task completed, 2 on bad flags.
//!
//! Faults: `--rate-limit-rate F` (0) makes the fake vendor answer that share of submits,
//! polls and list reads (the status sweeps) with 429 and `Retry-After` (no job is created by a refused submit);
//! `--retry-after-ms N` (1000) is the wait it asks for (`Retry-After` in whole seconds,
//! rounded up, and `retry-after-ms`). The report then counts `rate_limited` (429s answered),
//! `submit_attempts_per_task` (submits sent, refused ones included) next to
//! `submits_per_task` (submits accepted: vendor jobs, so what was paid) and
//! `final_submit_limit` (the provider's adaptive cap on submits in progress at the end).
//! Where the time went, in seconds after the run started (from the ledger):
//! `first_wave_submitted_secs` (the C-th job made), `last_submitted_secs` (the last job made)
//! and `last_detected_secs` (the last job's end reported by a poll); `wall_secs` minus the
//! last is the last download. `--ledger-out PATH` writes the vendor's ledger (every job's
//! times) there, with the run's start (`started_unix_nanos`).
//!
//! Diagnostics: `--protocol mock` replaces the fake vendor and the adapters with
//! `MockProvider` in process (each call takes S/3; no HTTP, no ledger), which isolates what
//! the orchestrator and the store cost; `--max-calls N` sets the provider's
//! [`max_concurrent_calls`](cineflow::core::ProviderSettings::max_concurrent_calls) (default
//! the library's, 256: at most that many vendor calls, so HTTP/1.1 connections, at once; with
//! `--protocol mock`, whose every call sleeps S/3, no cap unless given);
//! `--rss-timeline` prints `VmRSS` every 250 ms on stderr.
//!
//! No environment variables are read.

use std::error::Error;
use std::fmt::Write as _;
use std::io::{BufRead, BufReader};
use std::num::NonZeroU32;
use std::process::{Child, ChildStdin, Command, ExitCode, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use cineflow::core::mock::{MockProvider, Step};
use cineflow::core::router::RouterConfig;
use cineflow::core::sink::{ArtifactKey, ArtifactSink, StoredVideo};
use cineflow::core::{
    ByteStream, DEFAULT_MAX_CONCURRENT_CALLS, LocalDirSink, MemoryStore, ModelId, Orchestrator,
    OrchestratorConfig, ProviderSettings, Router, RunSpec, Store, Storyboard, VideoProvider,
};
use cineflow::providers::openai_compat::OpenAiCompat;
use cineflow::providers::sorahk::SoraHk;
use cineflow::providers::{ApiKeyBuilder, HttpBuilder};
use cineflow_testkit::{Endpoint, FakeVendor, Faults, Ledger, Protocol, RateLimitFault};
use futures::StreamExt;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

type BoxError = Box<dyn Error + Send + Sync>;

/// The hidden first argument that turns this executable into the fake vendor.
const VENDOR_MODE: &str = "--as-fake-vendor";
const MIB: f64 = 1024.0 * 1024.0;

fn main() -> ExitCode {
    let mut args = std::env::args().skip(1).peekable();
    if args.peek().map(String::as_str) == Some(VENDOR_MODE) {
        args.next();
        return cineflow_testkit::cli::run(args);
    }
    let opts = match Opts::parse(args) {
        Ok(Some(o)) => o,
        Ok(None) => {
            print_help();
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("loadtest: {e}\n(run with --help for the flags)");
            return ExitCode::from(2);
        }
    };
    match run(&opts) {
        Ok(report) => {
            if opts.json {
                println!("{report}");
            } else {
                print!("{}", summary(&report));
            }
            let all = report["completed"] == report["tasks"];
            if all {
                ExitCode::SUCCESS
            } else {
                eprintln!("loadtest: not every task completed");
                ExitCode::FAILURE
            }
        }
        Err(e) => {
            eprintln!("loadtest: {e}");
            ExitCode::FAILURE
        }
    }
}

fn print_help() {
    const SRC: &str = include_str!("loadtest.rs");
    for line in SRC.lines().take_while(|l| l.starts_with("//!")) {
        let line = line.trim_start_matches("//!");
        println!("{}", line.strip_prefix(' ').unwrap_or(line));
    }
}

/// Where the fake vendor runs.
#[derive(Debug, Clone, PartialEq)]
enum VendorMode {
    /// This executable, re-started in vendor mode.
    Process,
    /// The testkit's `fake-vendor` binary at this path.
    Binary(String),
    /// A runtime of its own inside this process.
    InProcess,
}

/// Where videos go.
#[derive(Debug, Clone, Copy, PartialEq)]
enum SinkMode {
    Hash,
    Dir,
}

/// The parsed command line.
#[derive(Debug, Clone)]
struct Opts {
    tasks: usize,
    concurrency: usize,
    job_secs: f64,
    /// `None`: `MockProvider`, in process, no HTTP.
    protocol: Option<Protocol>,
    json: bool,
    video_bytes: u64,
    job_jitter: f64,
    poll_after_ms: Option<u64>,
    store: String,
    sink: SinkMode,
    vendor: VendorMode,
    timeout: Duration,
    rss_timeline: bool,
    /// Where to write the vendor's ledger (every job's times) after the run.
    ledger_out: Option<String>,
    max_calls: Option<NonZeroU32>,
    /// Share of submits and polls the fake vendor answers 429.
    rate_limit_rate: f64,
    retry_after_ms: u64,
}

impl Opts {
    /// The provider's cap on calls at once: `--max-calls`, else the library's default, except
    /// with the mock (its calls sleep instead of holding connections): none.
    fn calls_cap(&self) -> Option<NonZeroU32> {
        match (self.max_calls, self.protocol) {
            (Some(n), _) => Some(n),
            (None, None) => Some(NonZeroU32::MAX),
            (None, Some(_)) => None,
        }
    }

    /// `Ok(None)` for `--help`.
    fn parse(args: impl Iterator<Item = String>) -> Result<Option<Self>, String> {
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
                        "mock" => None,
                        other => {
                            return Err(format!(
                                "--protocol: {other:?} is not one of sorahk, openai, mock"
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
        }))
    }
}

fn number<T: std::str::FromStr>(flag: &str, v: &str) -> Result<T, String> {
    v.trim()
        .parse()
        .map_err(|_| format!("{flag}: {v:?} is not a valid number"))
}

/// ⌈N / C⌉ · S: the wall time if every task took exactly the job's duration.
fn ideal_wall_secs(tasks: usize, concurrency: usize, job_secs: f64) -> f64 {
    tasks.div_ceil(concurrency) as f64 * job_secs
}

// ---------------------------------------------------------------------------------------------
// The fake vendor.

/// The fake vendor's flags ([`cineflow_testkit::cli`]: this executable's vendor mode and the
/// `fake-vendor` binary are the same command line).
fn vendor_flags(o: &Opts) -> Vec<String> {
    let mut flags = vec![
        "--port".into(),
        "0".into(),
        "--job-secs".into(),
        o.job_secs.to_string(),
        "--job-secs-jitter".into(),
        o.job_jitter.to_string(),
        "--video-bytes".into(),
        o.video_bytes.to_string(),
        "--poll-after-ms".into(),
        o.poll_after_ms.map_or("off".into(), |ms| ms.to_string()),
    ];
    if o.rate_limit_rate > 0.0 {
        flags.extend([
            "--fault-rate-limit".into(),
            o.rate_limit_rate.to_string(),
            "--fault-rate-limit-on".into(),
            "submit,poll,list".into(),
            "--retry-after-ms".into(),
            o.retry_after_ms.to_string(),
        ]);
    }
    flags
}

/// The fake vendor's faults (`--rate-limit-rate`), for the in-process vendor.
fn vendor_faults(o: &Opts) -> Faults {
    let mut faults = Faults::none();
    faults.rate_limit = RateLimitFault {
        probability: o.rate_limit_rate,
        on: vec![Endpoint::Submit, Endpoint::Poll, Endpoint::List],
        retry_after_ms: o.retry_after_ms,
        ..RateLimitFault::default()
    };
    faults
}

/// A running fake vendor, wherever it runs.
enum Vendor {
    /// A child process; dropping `stdin` tells it to exit.
    Child {
        child: Child,
        stdin: Option<ChildStdin>,
        ready: Value,
        /// `process` (this executable) or `process: fake-vendor binary`.
        kind: &'static str,
    },
    /// In this process, on its own runtime.
    InProcess {
        fake: FakeVendor,
        runtime: tokio::runtime::Runtime,
    },
}

impl Vendor {
    fn start(o: &Opts) -> Result<Self, BoxError> {
        let kind = match &o.vendor {
            VendorMode::Binary(_) => "process: fake-vendor binary",
            _ => "process",
        };
        let mut cmd = match &o.vendor {
            VendorMode::InProcess => {
                let runtime = tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(2)
                    .thread_name("fake-vendor")
                    .enable_all()
                    .build()?;
                let builder = FakeVendor::builder()
                    .with_job_secs(o.job_secs)
                    .with_job_jitter(o.job_jitter)
                    .with_video_bytes(o.video_bytes)
                    .with_poll_after_ms(o.poll_after_ms)
                    .with_faults(vendor_faults(o));
                let fake = runtime.block_on(builder.start())?;
                return Ok(Vendor::InProcess { fake, runtime });
            }
            VendorMode::Process => {
                let mut c = Command::new(std::env::current_exe()?);
                c.arg(VENDOR_MODE);
                c
            }
            VendorMode::Binary(path) => Command::new(path),
        };
        let mut child = cmd
            .args(vendor_flags(o))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(|e| match &o.vendor {
                VendorMode::Binary(path) => format!("cannot start the fake vendor {path}: {e}"),
                _ => format!("cannot start the fake vendor (this executable): {e}"),
            })?;
        let stdin = child.stdin.take();
        let mut line = String::new();
        if let Some(out) = child.stdout.take() {
            BufReader::new(out).read_line(&mut line)?;
        }
        let ready: Value = match serde_json::from_str(line.trim()) {
            Ok(v @ Value::Object(_)) => v,
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!("the fake vendor did not report ready (got {line:?})").into());
            }
        };
        Ok(Vendor::Child {
            child,
            stdin,
            ready,
            kind,
        })
    }

    fn kind(&self) -> &'static str {
        match self {
            Vendor::Child { kind, .. } => kind,
            Vendor::InProcess { .. } => "in-process",
        }
    }

    fn base_url(&self, p: Protocol) -> Result<String, BoxError> {
        match self {
            Vendor::InProcess { fake, .. } => Ok(fake.base_url(p)),
            Vendor::Child { ready, .. } => {
                let key = match p {
                    Protocol::OpenAi => "openai_base_url",
                    Protocol::SoraHk => "sorahk_base_url",
                };
                ready[key]
                    .as_str()
                    .map(str::to_owned)
                    .ok_or_else(|| format!("the ready line has no {key}").into())
            }
        }
    }

    fn key(&self) -> String {
        match self {
            Vendor::InProcess { fake, .. } => fake.key().to_owned(),
            // Both vendor modes start with the default key.
            Vendor::Child { .. } => "fake-key".to_owned(),
        }
    }

    /// The child's peak RSS (MiB) and CPU seconds, while it is alive.
    fn child_usage(&self) -> Option<(f64, f64)> {
        match self {
            Vendor::Child { child, .. } => {
                let pid = child.id().to_string();
                Some((peak_rss_mb(&pid).ok()?, cpu_secs(&pid).ok()?))
            }
            Vendor::InProcess { .. } => None,
        }
    }

    async fn ledger(&self, http: &reqwest::Client) -> Result<Ledger, BoxError> {
        match self {
            Vendor::InProcess { fake, .. } => Ok(fake.ledger()),
            Vendor::Child { ready, .. } => {
                let url = ready["ledger_url"]
                    .as_str()
                    .ok_or("the ready line has no ledger_url")?;
                let body = http
                    .get(url)
                    .send()
                    .await?
                    .error_for_status()?
                    .bytes()
                    .await?;
                Ok(serde_json::from_slice(&body)?)
            }
        }
    }

    fn stop(self) {
        match self {
            Vendor::Child {
                mut child,
                mut stdin,
                ..
            } => {
                drop(stdin.take());
                let deadline = Instant::now() + Duration::from_secs(5);
                loop {
                    match child.try_wait() {
                        Ok(Some(_)) => break,
                        Ok(None) if Instant::now() < deadline => {
                            std::thread::sleep(Duration::from_millis(20));
                        }
                        _ => {
                            let _ = child.kill();
                            let _ = child.wait();
                            break;
                        }
                    }
                }
            }
            Vendor::InProcess { fake, runtime } => {
                runtime.block_on(fake.shutdown());
                runtime.shutdown_timeout(Duration::from_secs(2));
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Process statistics (Linux /proc).

fn proc_status_kb(pid: &str, field: &str) -> Result<f64, BoxError> {
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
fn peak_rss_mb(pid: &str) -> Result<f64, BoxError> {
    Ok(proc_status_kb(pid, "VmHWM:")? / 1024.0)
}

/// `VmRSS`: the resident set size now, in MiB.
fn rss_mb(pid: &str) -> Result<f64, BoxError> {
    Ok(proc_status_kb(pid, "VmRSS:")? / 1024.0)
}

/// `utime + stime` of every thread, in seconds (Linux's USER_HZ is 100 on every platform it
/// supports).
fn cpu_secs(pid: &str) -> Result<f64, BoxError> {
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
struct RssSampler {
    stop: Arc<std::sync::atomic::AtomicBool>,
    thread: std::thread::JoinHandle<String>,
}

impl RssSampler {
    fn start(t0: Instant) -> Self {
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

    fn stop(self) -> String {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        self.thread.join().unwrap_or_default()
    }
}

// ---------------------------------------------------------------------------------------------
// The run.

/// Streams each video through sha256 and drops it: measures the orchestrator, not the disk.
#[derive(Debug)]
struct HashingSink;

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

/// A storyboard of `n` segments with distinct prompts, at a duration the protocol accepts.
fn storyboard(n: usize, protocol: Option<Protocol>) -> Result<Storyboard, BoxError> {
    let duration = match protocol {
        Some(Protocol::OpenAi) => 4,
        Some(Protocol::SoraHk) | None => 10,
    };
    let mut json = String::from(r#"{"segments":["#);
    for i in 1..=n {
        if i > 1 {
            json.push(',');
        }
        write!(
            json,
            r#"{{"segment_index":{i},"prompt_text":"Load shot {i}: a lighthouse at dusk.","duration_seconds":{duration},"resolution":"vertical"}}"#
        )?;
    }
    json.push_str("]}");
    Ok(Storyboard::from_json(&json)?)
}

fn provider(
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
    })
}

/// Detection lags (seconds) of every job whose end a poll reported.
fn detect_lags(ledger: &Ledger) -> Vec<f64> {
    let mut lags: Vec<f64> = ledger
        .jobs
        .iter()
        .filter_map(|j| Some((j.detected_at? - j.completed_at?).as_seconds_f64()))
        .collect();
    lags.sort_by(f64::total_cmp);
    lags
}

fn percentile(sorted: &[f64], p: f64) -> Option<f64> {
    if sorted.is_empty() {
        return None;
    }
    let i = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted.get(i).copied()
}

fn round(x: f64, digits: i32) -> f64 {
    let f = 10f64.powi(digits);
    (x * f).round() / f
}

fn run(o: &Opts) -> Result<Value, BoxError> {
    let vendor = match o.protocol {
        Some(_) => Some(Vendor::start(o)?),
        None => None,
    };
    let result = run_with(o, vendor.as_ref());
    if let Some(v) = vendor {
        v.stop();
    }
    result
}

/// What the vendor (or the mock) counted.
#[derive(Debug, Default)]
struct Counted {
    submits: u64,
    polls: u64,
    downloads: u64,
    rejected_submits: u64,
    submit_attempts: u64,
    rate_limited: u64,
    paid_twice: usize,
    downloaded_bytes: u64,
    mean_lag: Option<f64>,
    /// Sorted.
    lags: Vec<f64>,
    /// Seconds after the run started: the C-th job created (the first wave accepted), the
    /// last job created, the last job's end reported by a poll.
    first_wave_created: Option<f64>,
    last_created: Option<f64>,
    last_detected: Option<f64>,
}

impl Counted {
    fn from_ledger(ledger: &Ledger, started: time::OffsetDateTime, wave: usize) -> Self {
        let since = |t: time::OffsetDateTime| (t - started).as_seconds_f64();
        let mut created: Vec<f64> = ledger.jobs.iter().map(|j| since(j.created_at)).collect();
        created.sort_by(f64::total_cmp);
        let last_detected = ledger
            .jobs
            .iter()
            .filter_map(|j| j.detected_at.map(since))
            .max_by(f64::total_cmp);
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
            mean_lag: ledger.mean_detect_lag_secs(),
            lags: detect_lags(ledger),
        }
    }
}

fn run_with(o: &Opts, vendor: Option<&Vendor>) -> Result<Value, BoxError> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(async {
        // With the mock, each call (submit, poll, download) takes a third of the job.
        let mock = match vendor {
            None => Some(Arc::new(
                MockProvider::new("mock")?
                    .with_latency(Duration::from_secs_f64(o.job_secs / 3.0))
                    .with_timeline(vec![Step::Succeeded]),
            )),
            Some(_) => None,
        };
        let (provider, vendor_model): (Arc<dyn VideoProvider>, &str) =
            match (vendor, o.protocol, &mock) {
                (Some(v), Some(p), _) => provider(v, p)?,
                (_, _, Some(m)) => (Arc::clone(m) as Arc<dyn VideoProvider>, "mock"),
                _ => return Err("no vendor for this protocol".into()),
            };
        let mut catalog = RouterConfig::default();
        catalog.providers.insert(
            provider.id().clone(),
            ProviderSettings {
                max_concurrent_calls: o.calls_cap(),
                ..ProviderSettings::default()
            },
        );
        let store: Arc<dyn Store> = if o.store == "memory" || o.store == "memory://" {
            Arc::new(MemoryStore::new())
        } else {
            cineflow::store::connect(&o.store)
                .await
                .map_err(|e| format!("--store {}: {e}", o.store))?
        };
        let out_dir = match o.sink {
            SinkMode::Dir => Some(tempfile::tempdir()?),
            SinkMode::Hash => None,
        };
        let sink: Arc<dyn ArtifactSink> = match &out_dir {
            Some(d) => Arc::new(LocalDirSink::new(d.path())),
            None => Arc::new(HashingSink),
        };
        let config = OrchestratorConfig {
            max_concurrency: o.concurrency,
            ..OrchestratorConfig::default()
        };
        let model = ModelId::new("sora2")?;
        let provider_id = provider.id().clone();
        let orch = Orchestrator::builder()
            .store(store)
            .sink(sink)
            .router(Router::from_config(catalog).route(model.clone(), provider, vendor_model))
            .config(config)
            .build()?;
        let sb = storyboard(o.tasks, o.protocol)?;
        orch.add_storyboard(&sb).await?;
        let run = orch
            .create_run(RunSpec::new(sb.id, model).concurrency(o.concurrency))
            .await?;
        drop(sb);

        let me = "self";
        let baseline_rss = rss_mb(me)?;
        let cpu_before = cpu_secs(me)?;
        let started = Instant::now();
        let started_utc = time::OffsetDateTime::now_utc();
        let sampler = o.rss_timeline.then(|| RssSampler::start(started));
        let handle = orch.start(run.id).await?;
        let finished = tokio::time::timeout(o.timeout, handle.wait()).await;
        let wall = started.elapsed().as_secs_f64();
        let cpu = cpu_secs(me)? - cpu_before;
        let peak_rss = peak_rss_mb(me)?;
        let vendor_usage = vendor.and_then(Vendor::child_usage);
        if let Some(sampler) = sampler {
            eprint!("{}", sampler.stop());
        }
        let run = match finished {
            Ok(r) => r?,
            Err(_) => {
                return Err(format!(
                    "the run did not finish within --timeout-secs {:.0}",
                    o.timeout.as_secs_f64()
                )
                .into());
            }
        };

        // Read after the measurements: a ledger of 10,000 jobs is several MB of JSON.
        let counted = match (vendor, &mock) {
            (Some(v), _) => {
                let ledger = v.ledger(&reqwest::Client::new()).await?;
                if let Some(path) = &o.ledger_out {
                    let out = json!({
                        "started_unix_nanos": started_utc.unix_timestamp_nanos().to_string(),
                        "ledger": ledger,
                    });
                    std::fs::write(path, serde_json::to_vec(&out)?)?;
                }
                Counted::from_ledger(&ledger, started_utc, o.concurrency)
            }
            (None, Some(m)) => Counted {
                submits: m.submits(),
                polls: m.polls(),
                downloads: m.downloads(),
                ..Counted::default()
            },
            (None, None) => Counted::default(),
        };
        let n = o.tasks as f64;
        let ideal = ideal_wall_secs(o.tasks, o.concurrency, o.job_secs);
        let opt = |x: Option<f64>| x.map_or(Value::Null, |v| json!(round(v, 3)));
        Ok(json!({
            "protocol": o.protocol.map_or("mock", Protocol::as_str),
            "vendor": vendor.map_or("none: MockProvider in process, no HTTP", Vendor::kind),
            "store": if o.store.starts_with("memory") { "memory" } else { o.store.split("://").next().unwrap_or("?") },
            "sink": match o.sink { SinkMode::Hash => "hash", SinkMode::Dir => "dir" },
            "tasks": o.tasks,
            "concurrency": o.concurrency,
            "job_secs": o.job_secs,
            "job_jitter": o.job_jitter,
            "video_bytes": o.video_bytes,
            "completed": run.counts.completed,
            "failed": run.counts.total - run.counts.completed,
            "run_status": run.status.to_string(),
            "wall_secs": round(wall, 3),
            "ideal_wall_secs": round(ideal, 3),
            "wall_ratio": round(wall / ideal, 4),
            "submits_per_task": round(counted.submits as f64 / n, 4),
            "submit_attempts_per_task": round(counted.submit_attempts as f64 / n, 4),
            "polls_per_task": round(counted.polls as f64 / n, 3),
            "downloads_per_task": round(counted.downloads as f64 / n, 4),
            "mean_detect_lag_secs": opt(counted.mean_lag),
            "p95_detect_lag_secs": opt(percentile(&counted.lags, 0.95)),
            "max_detect_lag_secs": opt(counted.lags.last().copied()),
            "first_wave_submitted_secs": opt(counted.first_wave_created),
            "last_submitted_secs": opt(counted.last_created),
            "last_detected_secs": opt(counted.last_detected),
            "rejected_submits": counted.rejected_submits,
            "rate_limit_rate": o.rate_limit_rate,
            "rate_limited": counted.rate_limited,
            "final_submit_limit": orch.router().submit_limit(&provider_id),
            "paid_twice": counted.paid_twice,
            "downloaded_mb": round(counted.downloaded_bytes as f64 / MIB, 3),
            "baseline_rss_mb": round(baseline_rss, 1),
            "peak_rss_mb": round(peak_rss, 1),
            "rss_growth_mb": round(peak_rss - baseline_rss, 1),
            "cpu_secs": round(cpu, 2),
            "cpu_ms_per_task": round(cpu * 1000.0 / n, 3),
            "vendor_peak_rss_mb": vendor_usage.map(|u| round(u.0, 1)),
            "vendor_cpu_secs": opt(vendor_usage.map(|u| u.1)),
            "max_concurrent_calls": o.calls_cap().unwrap_or(DEFAULT_MAX_CONCURRENT_CALLS).get(),
            "nproc": std::thread::available_parallelism().map_or(0, usize::from),
        }))
    })
}

fn summary(r: &Value) -> String {
    let f = |k: &str| r[k].to_string();
    let mut s = String::new();
    let _ = writeln!(
        s,
        "loadtest: {} tasks at concurrency {}, {} s jobs, {} protocol, vendor {}, store {}, sink {}",
        f("tasks"),
        f("concurrency"),
        f("job_secs"),
        r["protocol"].as_str().unwrap_or("?"),
        r["vendor"].as_str().unwrap_or("?"),
        r["store"].as_str().unwrap_or("?"),
        r["sink"].as_str().unwrap_or("?"),
    );
    let _ = writeln!(
        s,
        "  completed      {} of {} ({})",
        f("completed"),
        f("tasks"),
        r["run_status"].as_str().unwrap_or("?")
    );
    let _ = writeln!(
        s,
        "  wall           {} s (ideal {} s, ratio {})",
        f("wall_secs"),
        f("ideal_wall_secs"),
        f("wall_ratio")
    );
    let _ = writeln!(
        s,
        "  per task       {} submits, {} polls, {} downloads",
        f("submits_per_task"),
        f("polls_per_task"),
        f("downloads_per_task")
    );
    let _ = writeln!(
        s,
        "  rate limits    {} answered 429 ({} of submits and polls), {} submits sent per task, cap on submits at the end {}",
        f("rate_limited"),
        f("rate_limit_rate"),
        f("submit_attempts_per_task"),
        f("final_submit_limit")
    );
    let _ = writeln!(
        s,
        "  timeline       first {} jobs made by {} s, last job made at {} s, last end seen at {} s",
        f("concurrency"),
        f("first_wave_submitted_secs"),
        f("last_submitted_secs"),
        f("last_detected_secs")
    );
    let _ = writeln!(
        s,
        "  detection lag  mean {} s, p95 {} s, max {} s",
        f("mean_detect_lag_secs"),
        f("p95_detect_lag_secs"),
        f("max_detect_lag_secs")
    );
    let _ = writeln!(
        s,
        "  memory         peak RSS {} MB (baseline {} MB, growth {} MB)",
        f("peak_rss_mb"),
        f("baseline_rss_mb"),
        f("rss_growth_mb")
    );
    let _ = writeln!(
        s,
        "  cpu            {} s ({} ms per task)",
        f("cpu_secs"),
        f("cpu_ms_per_task")
    );
    let _ = writeln!(
        s,
        "  vendor         peak RSS {} MB, cpu {} s; {} MB served, {} prompts paid twice",
        f("vendor_peak_rss_mb"),
        f("vendor_cpu_secs"),
        f("downloaded_mb"),
        f("paid_twice")
    );
    s
}
