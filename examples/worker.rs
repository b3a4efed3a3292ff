//! A worker process for the server example: claims the tasks of every run from a shared store
//! and works on them, so the API process (`cargo run --example server` with
//! `CINEFLOW_SERVER_RUN_TASKS=0`) only answers requests.
//!
//! ```text
//! CINEFLOW_STORE_URL=postgres://postgres@127.0.0.1:5432/cineflow \
//!   cargo run --example worker
//! ```
//!
//! Run as many as you like, on as many machines as share the database (and the output folder,
//! or an object-storage sink): each task is claimed with a lease, kept alive by heartbeat, and
//! every write is fenced by it; a worker that dies has its tasks taken over by the others once
//! its leases lapse (`CINEFLOW_WORKER_LEASE_SECS`, default 30). Ctrl-C stops claiming, lets the
//! tasks in hand finish, and exits.
//!
//! Environment: `CINEFLOW_STORE_URL` (required: a store every process shares — Postgres; a
//! SQLite file only works on one machine), `CINEFLOW_OUTPUT_DIR` (default `cineflow-output`),
//! `CINEFLOW_WORKER_ID` (default `worker-<pid>`), `CINEFLOW_WORKER_CONCURRENCY` (tasks at once,
//! default 16), and the provider variables of the server example (`CINEFLOW_SEEDANCE_API_KEY`,
//! `CINEFLOW_ROUTER_CONFIG`, …). Without a vendor key the tasks go to a local stand-in (ffmpeg or
//! `MockProvider`) whose jobs live in this process only.

use std::error::Error;
use std::sync::Arc;
use std::time::Duration;

use cineflow::core::orchestrator::WorkerOptions;
use cineflow::core::{LocalDirSink, Orchestrator, OrchestratorConfig};

#[path = "server/providers.rs"]
mod providers;

fn var(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

fn number(name: &str, default: u64) -> Result<u64, String> {
    var(name).map_or(Ok(default), |v| {
        v.parse()
            .ok()
            .filter(|n| *n > 0)
            .ok_or_else(|| format!("{name}={v:?}: not a positive integer"))
    })
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn Error>> {
    let store_url = var("CINEFLOW_STORE_URL")
        .ok_or("CINEFLOW_STORE_URL is required: the database the API and the workers share")?;
    let out = var("CINEFLOW_OUTPUT_DIR").unwrap_or_else(|| "cineflow-output".into());
    let id = var("CINEFLOW_WORKER_ID").unwrap_or_else(|| format!("worker-{}", std::process::id()));
    let concurrency = usize::try_from(number("CINEFLOW_WORKER_CONCURRENCY", 16)?)?;
    let lease_ttl = Duration::from_secs(number("CINEFLOW_WORKER_LEASE_SECS", 30)?);

    let store = cineflow::store::connect(&store_url).await?;
    let orch = Orchestrator::builder()
        .store(store)
        .sink(Arc::new(LocalDirSink::new(&out)))
        .router(providers::router(providers::default_catalog()).await?)
        .config(OrchestratorConfig::default())
        .build()?;
    let options = WorkerOptions::default()
        .with_lease_ttl(lease_ttl)
        .with_concurrency(concurrency)
        .with_idle_wait(Duration::from_millis(500));
    let worker = orch.worker(id.clone(), options);
    println!("{id}: claiming tasks from {store_url}, {concurrency} at a time, output in {out}");
    tokio::signal::ctrl_c().await?;
    println!("{id}: stopping: no new claims; the tasks in hand finish");
    worker.stop();
    worker.wait().await?;
    Ok(())
}
