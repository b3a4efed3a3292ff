//! Load on the server example's two hottest reads, on loopback: `GET /runs/{id}/tasks?page_size=50`
//! and `GET /tasks/{id}`, with 10,000 tasks stored and a 500-task run in progress.
//!
//! ```text
//! cargo run --release --example server_load -- --store sqlite:///tmp/load.db --secs 10 --clients 32
//! ```
//!
//! The server (the example's own `app.rs`, Bearer auth on) and the load clients run in this
//! process and share the machine's cores. It stores a run of 10,000 tasks (`--stored`, not
//! started), starts a run of 500 (`--in-progress`) on `MockProvider` jobs that stay running
//! (progress 1 % per poll, each poll a store write) so it is in progress throughout, then
//! `--clients` loops send the two requests alternately for `--secs` seconds (pages and task ids
//! drawn at random among the stored run's) and report per endpoint the requests per second,
//! p50, p99 and the worst latency, and the errors (any status but 200).
//!
//! Flags: `--store URL` (default a SQLite file in a temporary folder; `postgres://…` for
//! Postgres, e.g. with `options%5Bsearch_path%5D=<schema>` to keep it apart), `--stored N`
//! (10,000: 100 segments × N/100 versions), `--in-progress N` (500), `--secs S` (10),
//! `--clients C` (32), `--poll-secs P` (default: the library's `PollPolicy`, 2 s growing to
//! 30 s; `--poll-secs 1` polls every job every second: a store write per task per second),
//! `--only list|task|both` (default both, alternately: each route then gets half the
//! requests; `list` or `task` loads one route alone, to measure what it holds by itself),
//! `--json`. Exits 1 when a request failed.

use std::error::Error;
use std::sync::Arc;
use std::time::{Duration, Instant};

use cineflow::core::mock::{MockProvider, Step};
use cineflow::core::{
    LocalDirSink, ModelId, Orchestrator, OrchestratorConfig, Router, RunSpec, Storyboard, TaskId,
    TaskQuery, VideoProvider,
};
use serde_json::json;

#[path = "server/app.rs"]
#[allow(
    dead_code,
    reason = "the load uses the server, not every part of its configuration"
)]
mod app;

use app::config::{ServerConfig, Token};
use app::state::AppState;

struct Opts {
    store: Option<String>,
    stored: u32,
    in_progress: u32,
    secs: u64,
    clients: usize,
    poll_secs: Option<u64>,
    /// Which requests the clients send: both alternately, or one route only.
    only: Only,
    json: bool,
}

/// The routes a load sends.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Only {
    Both,
    List,
    Task,
}

fn opts() -> Result<Opts, String> {
    let mut o = Opts {
        store: None,
        stored: 10_000,
        in_progress: 500,
        secs: 10,
        clients: 32,
        poll_secs: None,
        only: Only::Both,
        json: false,
    };
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut value = |name: &str| args.next().ok_or(format!("{name} needs a value"));
        let num = |name: &str, v: String| v.parse::<u64>().map_err(|_| format!("{name}: {v:?}"));
        match a.as_str() {
            "--store" => o.store = Some(value("--store")?),
            "--stored" => {
                o.stored = u32::try_from(num("--stored", value("--stored")?)?)
                    .map_err(|e| e.to_string())?
            }
            "--in-progress" => {
                o.in_progress = u32::try_from(num("--in-progress", value("--in-progress")?)?)
                    .map_err(|e| e.to_string())?
            }
            "--secs" => o.secs = num("--secs", value("--secs")?)?,
            "--clients" => {
                o.clients = usize::try_from(num("--clients", value("--clients")?)?)
                    .map_err(|e| e.to_string())?
            }
            "--poll-secs" => o.poll_secs = Some(num("--poll-secs", value("--poll-secs")?)?),
            "--only" => {
                o.only = match value("--only")?.as_str() {
                    "list" => Only::List,
                    "task" => Only::Task,
                    "both" => Only::Both,
                    v => return Err(format!("--only: {v:?} (list, task or both)")),
                }
            }
            "--json" => o.json = true,
            other => return Err(format!("unknown flag {other}")),
        }
    }
    let hundreds = |n: u32| n >= 100 && n.is_multiple_of(100);
    if !hundreds(o.stored) || o.stored > 10_000 || !hundreds(o.in_progress) {
        return Err(
            "--stored and --in-progress must be multiples of 100 (from 100; --stored up to 10,000)"
                .into(),
        );
    }
    Ok(o)
}

/// `n` numbered shots.
fn shots(n: u32) -> Result<Storyboard, cineflow::core::Error> {
    let segs: Vec<_> = (1..=n)
        .map(|i| json!({"segment_index": i, "prompt_text": format!("Load shot {i}.")}))
        .collect();
    Storyboard::from_json(&json!({ "segments": segs }).to_string())
}

/// Latencies of one endpoint.
#[derive(Default)]
struct Samples {
    latencies: Vec<Duration>,
    errors: u64,
}

impl Samples {
    fn report(&mut self, secs: f64) -> serde_json::Value {
        self.latencies.sort();
        let at = |q: f64| {
            let i = ((self.latencies.len() as f64 * q).ceil() as usize).saturating_sub(1);
            self.latencies
                .get(i)
                .map_or(0.0, |d| d.as_secs_f64() * 1000.0)
        };
        json!({
            "requests": self.latencies.len(),
            "rps": (self.latencies.len() as f64 / secs).round(),
            "p50_ms": (at(0.50) * 100.0).round() / 100.0,
            "p99_ms": (at(0.99) * 100.0).round() / 100.0,
            "max_ms": (at(1.0) * 100.0).round() / 100.0,
            "errors": self.errors,
        })
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn Error>> {
    let o = match opts() {
        Ok(o) => o,
        Err(e) => {
            eprintln!("server_load: {e}");
            std::process::exit(2);
        }
    };
    let dir = tempfile::tempdir()?;
    let store_url = o
        .store
        .clone()
        .unwrap_or_else(|| format!("sqlite://{}", dir.path().join("load.db").display()));
    let store = cineflow::store::connect(&store_url).await?;

    // Jobs that stay running: one progress step per poll, for longer than the measurement.
    let steps = (1..=99).map(Step::Running).collect();
    let mock = MockProvider::new("mock")?.with_timeline(steps);
    let provider: Arc<dyn VideoProvider> = Arc::new(mock);
    let model = ModelId::new("seedance-2")?;
    let router = Router::from_config(app::providers::default_catalog()).route(
        model,
        provider,
        "mock-video-1",
    );
    let mut oc = OrchestratorConfig::default().with_max_concurrency(o.in_progress as usize);
    if let Some(secs) = o.poll_secs {
        let every = Duration::from_secs(secs.max(1));
        (oc.poll.initial, oc.poll.min, oc.poll.max) = (every, every, every);
    }
    let mut config = ServerConfig::local(dir.path());
    config.addr = "127.0.0.1:0".parse()?;
    config.token = Token::new("load-token");
    let orch = Orchestrator::builder()
        .store(Arc::clone(&store))
        .sink(Arc::new(LocalDirSink::new(&config.output_dir)))
        .router(router)
        .config(oc)
        .build()?;

    let sora2 = ModelId::new("sora2")?;
    let seeded = Instant::now();
    let stored_sb = shots(100)?;
    orch.add_storyboard(&stored_sb).await?;
    let stored = orch
        .create_run(RunSpec::new(stored_sb.id, sora2.clone()).with_gen_count(o.stored / 100))
        .await?;
    let ids: Vec<TaskId> = store
        .list_tasks(&TaskQuery::for_run(stored.id))
        .await?
        .items
        .iter()
        .map(|t| t.id)
        .collect();
    let live_sb = shots(o.in_progress / 100)?;
    orch.add_storyboard(&live_sb).await?;
    let live = orch
        .create_run(
            RunSpec::new(live_sb.id, sora2)
                .with_gen_count(100)
                .with_concurrency(o.in_progress as usize),
        )
        .await?;
    let _running = orch.start(live.id).await?;
    eprintln!(
        "stored {} tasks and started a {}-task run in {:.1} s ({store_url})",
        o.stored,
        o.in_progress,
        seeded.elapsed().as_secs_f64()
    );

    let listener = app::bind(&config).await?;
    let base = format!("http://{}/api/v1", listener.local_addr()?);
    tokio::spawn(app::serve(
        listener,
        AppState::new(orch.clone(), config),
        std::future::pending(),
    ));
    // Let the run get going: every task submitted and polled.
    tokio::time::sleep(Duration::from_secs(3)).await;

    let http = reqwest::Client::new();
    let pages = o.stored / 50;
    let ids = Arc::new(ids);
    let until = Instant::now() + Duration::from_secs(o.secs);
    let started = Instant::now();
    let mut clients = Vec::new();
    for c in 0..o.clients {
        let (http, base, ids) = (http.clone(), base.clone(), Arc::clone(&ids));
        let (run, only) = (stored.id, o.only);
        clients.push(tokio::spawn(async move {
            let mut rng = fastrand_seed(c as u64);
            let (mut list, mut one) = (Samples::default(), Samples::default());
            let mut n = 0u64;
            while Instant::now() < until {
                n += 1;
                let list_next = match only {
                    Only::Both => n.is_multiple_of(2),
                    Only::List => true,
                    Only::Task => false,
                };
                let (url, samples) = if list_next {
                    let page = 1 + rng() % u64::from(pages);
                    (
                        format!("{base}/runs/{run}/tasks?page={page}&page_size=50"),
                        &mut list,
                    )
                } else {
                    let id = ids[(rng() % ids.len() as u64) as usize];
                    (format!("{base}/tasks/{id}"), &mut one)
                };
                let t0 = Instant::now();
                let ok = match http.get(&url).bearer_auth("load-token").send().await {
                    Ok(r) => r.status() == reqwest::StatusCode::OK && r.bytes().await.is_ok(),
                    Err(_) => false,
                };
                samples.latencies.push(t0.elapsed());
                if !ok {
                    samples.errors += 1;
                }
            }
            (list, one)
        }));
    }
    let (mut list, mut one) = (Samples::default(), Samples::default());
    for c in clients {
        let (l, t) = c.await?;
        list.latencies.extend(l.latencies);
        list.errors += l.errors;
        one.latencies.extend(t.latencies);
        one.errors += t.errors;
    }
    let secs = started.elapsed().as_secs_f64();
    let in_progress = store.run_counts(live.id).await?;
    let report = json!({
        "store": store_url.split("://").next().unwrap_or_default(),
        "stored_tasks": o.stored,
        "in_progress_tasks": in_progress.in_progress,
        "clients": o.clients,
        "only": match o.only { Only::Both => "both", Only::List => "list", Only::Task => "task" },
        "poll_secs": o.poll_secs,
        "secs": (secs * 10.0).round() / 10.0,
        "list_tasks_page_50": list.report(secs),
        "get_task": one.report(secs),
        "total_rps": ((list.latencies.len() + one.latencies.len()) as f64 / secs).round(),
    });
    if o.json {
        println!("{report}");
    } else {
        println!("{}", serde_json::to_string_pretty(&report)?);
    }
    orch.cancel_run(live.id).await?;
    if list.errors + one.errors > 0 {
        std::process::exit(1);
    }
    Ok(())
}

/// A small seeded random source (splitmix64) per client.
fn fastrand_seed(seed: u64) -> impl FnMut() -> u64 {
    let mut s = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ 0x5bd1_e995;
    move || {
        s = s.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = s;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
}
