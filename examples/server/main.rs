//! The CineFlow server: CineFlow's REST API (`/api/v1`) on the library, so CineFlow's React
//! console and its clients switch without a change.
//!
//! ```text
//! cargo run --example server
//! ```
//!
//! Listens on `127.0.0.1:8088` (the console's default `VITE_API_BASE` is
//! `http://127.0.0.1:8088/api/v1`), keeps its state in `cineflow.db` (SQLite, as the
//! quickstart), writes videos to `cineflow-output/` and uploaded start images to
//! `cineflow-uploads/` (served under `/uploads/`).
//!
//! Environment (all optional):
//! - `CINEFLOW_SERVER_ADDR` (default `127.0.0.1:8088`);
//! - `CINEFLOW_SERVER_TOKEN` (or CineFlow's `AUTH_TOKEN`): the Bearer token clients must send.
//!   Without one the server refuses to listen on anything but loopback, unless
//!   `CINEFLOW_SERVER_ALLOW_OPEN=1`;
//! - `CINEFLOW_STORE_URL` (default `sqlite://cineflow.db`; `postgres://…` to share one database
//!   with other server and worker processes), `CINEFLOW_OUTPUT_DIR`, `CINEFLOW_UPLOAD_DIR`,
//!   `CINEFLOW_MAX_UPLOAD_BYTES` (default 10 MiB);
//! - `CINEFLOW_CORS_ORIGINS`: browser origins allowed to call the API, e.g. the console's dev
//!   server `http://localhost:5173` (comma-separated, `*` for any; default none);
//! - `CINEFLOW_RETENTION_DAYS`: delete finished runs older than this many days, with their
//!   videos and sidecars, once an hour (default: keep everything);
//! - `CINEFLOW_SERVER_RUN_TASKS=0`: create runs but leave their tasks to worker processes;
//! - `CINEFLOW_CALLBACK_BASE_URL` (this server's public URL up to `/api/v1`) and
//!   `CINEFLOW_CALLBACK_PROVIDERS` (comma-separated provider ids): submits of those providers
//!   ask the vendor to call back to `POST /api/v1/callbacks/{provider}`, which wakes the task at
//!   once; polling stays as the safety net. Only runs this process drives ask for callbacks
//!   (`examples/worker.rs` processes poll). Default: off;
//! - `CINEFLOW_ROUTER_CONFIG`: a router configuration file (TOML or JSON) replacing the default
//!   catalog, in which `sora2` and `sora2pro` are aliases of `seedance-2`;
//! - Seedance 2.0: `CINEFLOW_SEEDANCE_API_KEY` (or `ARK_API_KEY`), with
//!   `CINEFLOW_SEEDANCE_PRESET=ark` for Volcengine Ark (default BytePlus ModelArk). Without a
//!   key, `seedance-2` (and so `sora2`/`sora2pro`) is served by the local ffmpeg renderer, or by
//!   `MockProvider` when ffmpeg is missing — no vendor is paid.

use std::error::Error;
use std::sync::Arc;

use cineflow::core::{LocalDirSink, Orchestrator, OrchestratorConfig};

#[path = "app.rs"]
mod app;

use app::config::ServerConfig;
use app::state::AppState;

#[tokio::main]
async fn main() -> Result<(), Box<dyn Error>> {
    let config = ServerConfig::from_env()?;
    config.check_bind(config.addr)?;
    let store = cineflow::store::connect(&config.store_url).await?;
    let orch = Orchestrator::builder()
        .store(store)
        .sink(Arc::new(LocalDirSink::new(&config.output_dir)))
        .router(app::providers::router(app::providers::default_catalog()).await?)
        .config(OrchestratorConfig::default().with_callbacks(config.callbacks.clone()))
        .build()?;
    if config.run_tasks {
        for handle in orch.resume().await? {
            println!("resuming run {}", handle.run_id());
        }
    }
    let listener = app::bind(&config).await?;
    println!(
        "listening on http://{}/api/v1 (store {}, auth {})",
        listener.local_addr()?,
        config.store_url,
        if config.token.is_some() {
            "Bearer"
        } else {
            "off"
        }
    );
    let shutdown = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    let state = AppState::new(orch, config);
    app::retention::spawn(state.clone());
    app::serve(listener, state, shutdown).await?;
    Ok(())
}
