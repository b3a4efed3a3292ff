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
//! Flags: `--tasks N` (100), `--concurrency C` (N, at most 100,000), `--job-secs S` (5),
//! `--protocol sorahk|openai|seedance|kling|wan|minimax|fal|openrouter|mock` (sorahk), `--json`, `--video-mb M` (0.0625 = 64 KiB),
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
//! `final_submit_limit` (the provider's adaptive cap on submits in progress at the end), and
//! the floor no orchestrator honouring every `Retry-After` can beat (`floor.rs`: a perfect
//! scheduler — no overhead, every end seen at once, only the submits refused — by Monte Carlo
//! over the same N, C, S, rate and wait): `floor_wall_secs` (its median), `floor_wall_p90_secs`,
//! `floor_share_at_1_25` (the share of its runs taking 1.25 × ideal or more) and
//! `wall_vs_floor`.
//! Where the time went, in seconds after the run started (from the ledger):
//! `first_wave_submitted_secs` (the C-th job made), `last_submitted_secs` (the last job made)
//! and `last_detected_secs` (the last job's end reported by a poll); `wall_secs` minus the
//! last is the last download. With `--protocol mock` the first two come from the mock (a job
//! is made when its submit call returns). The download burst, from the sink (every mode):
//! `downloads_first_started_secs` and `downloads_last_started_secs` (the first and last video
//! whose body began to reach the sink) and `downloads_last_ended_secs` (the last one stored).
//! `store_calls_per_task_by_method`: the store's calls by method per task (the storyboard's
//! and the run's creation included). `--ledger-out PATH` writes the vendor's ledger (every
//! job's times) there, with the run's start (`started_unix_nanos`).
//!
//! Workers: `--workers N` (with `--store postgres://…`) leaves the run to N worker processes
//! (this executable re-started in worker mode, each an `Orchestrator::worker` claiming from the
//! shared store with leases of `--lease-secs` (30), working on its share of C tasks at once,
//! all against the one fake vendor); this process creates the run and follows it through the
//! store until every task has ended. The report adds each worker's peak RSS and CPU
//! (`worker_peak_rss_mb`, `worker_cpu_secs`), the workers' store calls by method
//! (`worker_store_calls`, and per task: `store_calls_per_task`,
//! `store_calls_per_task_by_method`; each Postgres store call is one statement, except list
//! reads and conflicted writes), what the database counted (`pg_transactions_per_task`:
//! `xact_commit + xact_rollback` of the database in `pg_stat_database`, this process's few
//! included; `pg_tuples_written_per_task`) and `pg_cpu_secs`, the CPU of every `postgres`
//! process on the machine during the run (other databases' included).
//!
//! Diagnostics: `--protocol mock` replaces the fake vendor and the adapters with
//! `MockProvider` in process (each call takes S/3; no HTTP, no ledger), which isolates what
//! the orchestrator and the store cost; `--max-calls N` sets the provider's
//! [`max_concurrent_calls`](cineflow::core::ProviderSettings::max_concurrent_calls) (default
//! the library's, 256: at most that many vendor calls, so HTTP/1.1 connections, at once; with
//! `--protocol mock`, whose every call sleeps S/3, no cap unless given);
//! `--rss-timeline` prints `VmRSS` every 250 ms on stderr.
//!
//! Webhooks: `--webhooks` (with `--protocol seedance|kling|minimax|fal|openrouter`) runs a small
//! loopback receiver in this process (`POST /callbacks/{provider}` →
//! `Orchestrator::handle_callback`, as the server example does) and turns callbacks on for the
//! provider with the receiver as the public base URL: the fake vendor calls back when a job
//! ends (MiniMax's challenge first; fal and OpenRouter signed). A token vendor's callback wakes
//! the task, which polls once to confirm; a signed one (fal, OpenRouter) is taken as the poll
//! answer — its end then counts as detected when the receiver handed it over. The claims of
//! token vendors are confirmed in batches from the job list (`--confirm-one-by-one`: one poll
//! per job instead). Safety-net polling starts at `--first-poll-secs` (default: the job's
//! length + 30 s, at least the library's 60 s). `--callback-loss F` makes the vendor lose that
//! share of callbacks (those tasks complete by polling). The report adds `callbacks_sent`, `callbacks_lost` (vendor),
//! `callbacks_received`, `callbacks_woke`, `callbacks_rejected` (receiver) and
//! `detected_by_callback`.
//!
//! No environment variables are read.

// `cargo test` builds the harness for the tests of its modules: what only `main` reaches is
// unused there.
#![cfg_attr(test, allow(dead_code))]

use std::error::Error;
use std::fmt::Write as _;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use cineflow::core::mock::{MockProvider, Step};
use cineflow::core::router::RouterConfig;
use cineflow::core::sink::ArtifactSink;
use cineflow::core::{
    CallbackConfig, DEFAULT_MAX_CONCURRENT_CALLS, LocalDirSink, MemoryStore, ModelId, Orchestrator,
    OrchestratorConfig, ProviderSettings, Router, RunSpec, Store, VideoProvider,
};
use cineflow_testkit::Protocol;
use serde_json::{Value, json};

mod floor;
mod hooks;
mod measure;
mod opts;
mod vendor;
mod workers;

use hooks::*;
use measure::*;
use opts::*;
use vendor::*;

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
    if args.peek().map(String::as_str) == Some(workers::WORKER_MODE) {
        args.next();
        return workers::worker_main(args);
    }
    let flags: Vec<String> = args.collect();
    let opts = match Opts::parse(flags.iter().cloned()) {
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
    match run(&opts, &flags) {
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

/// Prints the module docs; a closed stdout (`--help | head`) ends the listing quietly.
fn print_help() {
    use std::io::Write as _;
    const SRC: &str = include_str!("main.rs");
    let mut out = std::io::stdout().lock();
    for line in SRC.lines().take_while(|l| l.starts_with("//!")) {
        let line = line.trim_start_matches("//!");
        if writeln!(out, "{}", line.strip_prefix(' ').unwrap_or(line)).is_err() {
            return;
        }
    }
}

fn run(o: &Opts, flags: &[String]) -> Result<Value, BoxError> {
    let vendor = match o.protocol {
        Some(_) => Some(Vendor::start(o)?),
        None => None,
    };
    let result = match &vendor {
        Some(v) if o.workers > 0 => workers::run_workers(o, v, flags),
        _ => run_with(o, vendor.as_ref()),
    };
    if let Some(v) = vendor {
        v.stop();
    }
    result
}

/// An orchestrator for the harness's run: the provider (the fake vendor's adapter, or the mock)
/// on a catalog with the harness's cap on calls, the store and the sink.
pub(crate) struct Setup {
    pub(crate) orch: Orchestrator,
    pub(crate) model: ModelId,
    pub(crate) provider_id: cineflow::core::ProviderId,
    pub(crate) mock: Option<Arc<MockProvider>>,
    /// The run's sink, timing the downloads.
    pub(crate) timed: Arc<TimedSink>,
    /// The output folder of `--sink dir`, removed when dropped.
    pub(crate) _out_dir: Option<tempfile::TempDir>,
}

/// The store `--store` names.
pub(crate) async fn open_store(o: &Opts) -> Result<Arc<dyn Store>, BoxError> {
    Ok(if o.store == "memory" || o.store == "memory://" {
        Arc::new(MemoryStore::new())
    } else {
        cineflow::store::connect(&o.store)
            .await
            .map_err(|e| format!("--store {}: {e}", o.store))?
    })
}

/// Builds the orchestrator of the run on `store`, working on at most `max_concurrency` tasks.
pub(crate) async fn setup(
    o: &Opts,
    vendor: Option<&Vendor>,
    store: Arc<dyn Store>,
    max_concurrency: usize,
    receiver: Option<&Receiver>,
) -> Result<Setup, BoxError> {
    // With the mock, each call (submit, poll, download) takes a third of the job.
    let mock = match vendor {
        None => Some(Arc::new(
            MockProvider::new("mock")?
                .with_latency(Duration::from_secs_f64(o.job_secs / 3.0))
                .with_timeline(vec![Step::Succeeded]),
        )),
        Some(_) => None,
    };
    let (provider, vendor_model): (Arc<dyn VideoProvider>, &str) = match (vendor, o.protocol, &mock)
    {
        (Some(v), Some(p), _) => provider(v, p).await?,
        (_, _, Some(m)) => (Arc::clone(m) as Arc<dyn VideoProvider>, "mock"),
        _ => return Err("no vendor for this protocol".into()),
    };
    let mut catalog = RouterConfig::default();
    catalog.providers.insert(provider.id().clone(), {
        let mut settings = ProviderSettings::default();
        settings.max_concurrent_calls = o.calls_cap();
        settings
    });
    let out_dir = match o.sink {
        SinkMode::Dir => Some(tempfile::tempdir()?),
        SinkMode::Hash => None,
    };
    let sink: Arc<dyn ArtifactSink> = match &out_dir {
        Some(d) => Arc::new(LocalDirSink::new(d.path())),
        None => Arc::new(HashingSink),
    };
    let timed = Arc::new(TimedSink::new(sink));
    let provider_id = provider.id().clone();
    let callbacks = match receiver {
        Some(r) => {
            let defaults = CallbackConfig::default();
            // The first safety-net poll after the predicted end + 30 s (at least the
            // library's default).
            let predicted = Duration::from_secs_f64(o.job_secs) + Duration::from_secs(30);
            let first_poll = o.first_poll.unwrap_or(predicted.max(defaults.first_poll));
            defaults
                .with_public_base_url(r.base_url())
                .with_providers(vec![provider_id.clone()])
                .with_first_poll(first_poll)
                .with_confirm_in_batches(!o.confirm_one_by_one)
        }
        None => CallbackConfig::default(),
    };
    let config = OrchestratorConfig::default()
        .with_max_concurrency(max_concurrency)
        .with_callbacks(callbacks);
    let model = ModelId::new("sora2")?;
    let orch = Orchestrator::builder()
        .store(store)
        .sink(Arc::clone(&timed) as Arc<dyn ArtifactSink>)
        .router(Router::from_config(catalog).route(model.clone(), provider, vendor_model))
        .config(config)
        .build()?;
    if let Some(r) = receiver {
        r.set(orch.clone());
    }
    Ok(Setup {
        orch,
        model,
        provider_id,
        mock,
        timed,
        _out_dir: out_dir,
    })
}

fn run_with(o: &Opts, vendor: Option<&Vendor>) -> Result<Value, BoxError> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(async {
        // Signed vendors' callbacks carry the result: taken as the poll answer.
        let conclusive = matches!(o.protocol, Some(Protocol::Fal | Protocol::OpenRouter));
        let receiver = match o.webhooks {
            true => Some(Receiver::start(conclusive).await?),
            false => None,
        };
        // Counted per method: `store_calls_per_task_by_method` in the report.
        let counting = Arc::new(cineflow::core::store::CountingStore::new(open_store(o).await?));
        let store: Arc<dyn Store> = counting.clone();
        let Setup {
            orch,
            model,
            provider_id,
            mock,
            timed,
            _out_dir,
        } = setup(o, vendor, store, o.concurrency, receiver.as_ref()).await?;
        let sb = storyboard(o.tasks, o.protocol)?;
        orch.add_storyboard(&sb).await?;
        let run = orch
            .create_run(RunSpec::new(sb.id, model).with_concurrency(o.concurrency))
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
        let downloads = timed.downloads(started);
        let hooks = receiver.map(Receiver::stop).unwrap_or_default();
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
                measure::write_ledger(o.ledger_out.as_deref(), started_utc, &ledger)?;
                Counted::from_ledger(&ledger, started_utc, o.concurrency, &hooks.detected)
            }
            (None, Some(m)) => {
                // The mock makes a job when its submit call returns (S/3 after it was sent).
                let made: Vec<f64> = m
                    .jobs_created_at()
                    .into_iter()
                    .map(|t| (t - started_utc).as_seconds_f64())
                    .collect();
                Counted {
                    submits: m.submits(),
                    polls: m.polls(),
                    downloads: m.downloads(),
                    first_wave_created: made.get(o.concurrency.max(1) - 1).copied(),
                    last_created: made.last().copied(),
                    ..Counted::default()
                }
            }
            (None, None) => Counted::default(),
        };
        let n = o.tasks as f64;
        let ideal = ideal_wall_secs(o.tasks, o.concurrency, o.job_secs);
        let opt = |x: Option<f64>| x.map_or(Value::Null, |v| json!(round(v, 3)));
        let mut report = json!({
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
            "store_calls_per_task_by_method": workers::calls_per_task(&workers::counts(&counting), n),
            "nproc": std::thread::available_parallelism().map_or(0, usize::from),
        });
        // The download burst (one macro call cannot take every field: its recursion limit).
        let bursts = json!({
            "downloads_first_started_secs": opt(downloads.first_started),
            "downloads_last_started_secs": opt(downloads.last_started),
            "downloads_last_ended_secs": opt(downloads.last_ended),
        });
        let webhooks = json!({
            "webhooks": o.webhooks,
            "confirm_in_batches": o.webhooks && !o.confirm_one_by_one,
            "callback_loss": o.callback_loss,
            "callbacks_sent": counted.callbacks_sent,
            "callbacks_lost": counted.callbacks_lost,
            "callbacks_received": hooks.received,
            "callbacks_woke": hooks.woke,
            "callbacks_answered": hooks.answered,
            "callbacks_ignored": hooks.ignored + hooks.not_followed,
            "callbacks_rejected": hooks.rejected.values().sum::<u64>(),
            "detected_by_callback": hooks.detected.len(),
        });
        // What a perfect scheduler would need under the same refusals (`floor`).
        let floor = if o.rate_limit_rate > 0.0 {
            let draws = (2_000_000 / o.tasks.max(1)).clamp(20, 1000);
            let f = floor::refusal_floor(
                o.tasks,
                o.concurrency,
                o.job_secs,
                o.rate_limit_rate,
                o.retry_after_ms as f64 / 1000.0,
                1.25,
                draws,
            );
            json!({
                "floor_wall_secs": round(f.median_secs, 3),
                "floor_wall_p90_secs": round(f.p90_secs, 3),
                "floor_share_at_1_25": round(f.share_at_bound, 3),
                "wall_vs_floor": round(wall / f.median_secs, 4),
            })
        } else {
            json!({})
        };
        for more in [bursts, webhooks, floor] {
            if let (Value::Object(r), Value::Object(m)) = (&mut report, more) {
                r.extend(m);
            }
        }
        Ok(report)
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
        "  rate limits    {} answered 429 ({} of submits, polls and list reads), {} submits sent per task, cap on submits at the end {}",
        f("rate_limited"),
        f("rate_limit_rate"),
        f("submit_attempts_per_task"),
        f("final_submit_limit")
    );
    if r.get("floor_wall_secs").is_some() {
        let _ = writeln!(
            s,
            "  floor          a perfect scheduler under the same refusals: {} s (median; p90 {} s), {} of its runs at 1.25 x ideal or more; this run {} x that",
            f("floor_wall_secs"),
            f("floor_wall_p90_secs"),
            f("floor_share_at_1_25"),
            f("wall_vs_floor")
        );
    }
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
        "  downloads      first started at {} s, last started at {} s, last ended at {} s",
        f("downloads_first_started_secs"),
        f("downloads_last_started_secs"),
        f("downloads_last_ended_secs")
    );
    if r["webhooks"] == true {
        let _ = writeln!(
            s,
            "  webhooks       {} sent by the vendor ({} lost), {} received: {} woke a task, {} handshakes, {} ignored, {} rejected; {} ends detected by a signed callback",
            f("callbacks_sent"),
            f("callbacks_lost"),
            f("callbacks_received"),
            f("callbacks_woke"),
            f("callbacks_answered"),
            f("callbacks_ignored"),
            f("callbacks_rejected"),
            f("detected_by_callback")
        );
    }
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
