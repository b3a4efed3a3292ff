//! The server's settings, read from the environment.

use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use cineflow::core::{CallbackConfig, ProviderId};

/// Largest upload accepted unless `CINEFLOW_MAX_UPLOAD_BYTES` says otherwise: 10 MiB.
pub(crate) const DEFAULT_MAX_UPLOAD_BYTES: usize = 10 * 1024 * 1024;

/// The Bearer token clients must send. `Debug` never shows it.
#[derive(Clone)]
pub(crate) struct Token(String);

impl Token {
    /// A token; `None` for an empty or blank value.
    pub(crate) fn new(value: impl Into<String>) -> Option<Self> {
        let value = value.into();
        (!value.trim().is_empty()).then_some(Self(value))
    }

    /// The secret, for the constant-time comparison only.
    pub(crate) fn expose(&self) -> &[u8] {
        self.0.as_bytes()
    }
}

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Token(<redacted>)")
    }
}

/// Everything the server needs besides the orchestrator.
#[derive(Debug, Clone)]
pub(crate) struct ServerConfig {
    /// Where to listen (`CINEFLOW_SERVER_ADDR`, default `127.0.0.1:8088`, the console's default).
    pub(crate) addr: SocketAddr,
    /// The Bearer token (`CINEFLOW_SERVER_TOKEN`, or CineFlow's `AUTH_TOKEN`). Default none:
    /// no authentication, and then the server only binds to a loopback address.
    pub(crate) token: Option<Token>,
    /// Bind to a non-loopback address without a token (`CINEFLOW_SERVER_ALLOW_OPEN=1`).
    /// Default false.
    pub(crate) allow_open: bool,
    /// The store (`CINEFLOW_STORE_URL`, default `sqlite://cineflow.db`, as the quickstart).
    pub(crate) store_url: String,
    /// Where videos and sidecars go (`CINEFLOW_OUTPUT_DIR`, default `cineflow-output`).
    pub(crate) output_dir: PathBuf,
    /// Where uploaded start images go, served under `/uploads/` (`CINEFLOW_UPLOAD_DIR`,
    /// default `cineflow-uploads`).
    pub(crate) upload_dir: PathBuf,
    /// Largest upload or JSON body, in bytes (`CINEFLOW_MAX_UPLOAD_BYTES`, default 10 MiB).
    pub(crate) max_upload_bytes: usize,
    /// Whether this process drives the runs it creates (`CINEFLOW_SERVER_RUN_TASKS`, default
    /// true). Set it to `0` when `examples/worker.rs` processes share a Postgres store.
    pub(crate) run_tasks: bool,
    /// How often SSE streams get a run's changes (`CINEFLOW_SSE_POLL_MS`, default 500 ms): the
    /// tasks this process changed are read then, one by one.
    pub(crate) sse_poll: Duration,
    /// How often a run's unfinished tasks are read from the store for SSE streams, to see
    /// what other processes did (`CINEFLOW_SSE_STORE_READ_MS`, default 2 s).
    pub(crate) sse_store_read: Duration,
    /// How often all a run's tasks are read for SSE streams, to see changes other processes
    /// made to finished tasks (`CINEFLOW_SSE_FULL_READ_MS`, default 30 s).
    pub(crate) sse_full_read: Duration,
    /// How often an idle SSE stream sends a keep-alive comment. Default 15 s.
    pub(crate) sse_keep_alive: Duration,
    /// Browser origins allowed to call the API (CORS), e.g. the console's
    /// `http://localhost:5173` (`CINEFLOW_CORS_ORIGINS`, comma-separated; `*` for any). Default
    /// none: no CORS headers (same-origin or a reverse proxy).
    pub(crate) cors_origins: Vec<String>,
    /// Delete finished runs older than this many days, with their files
    /// (`CINEFLOW_RETENTION_DAYS`). Default none: keep everything.
    pub(crate) retention_days: Option<u32>,
    /// Vendor callbacks (webhooks): the server's public URL up to `/api/v1`
    /// (`CINEFLOW_CALLBACK_BASE_URL`, e.g. `https://cineflow.example/api/v1`) and the providers
    /// whose submits ask for them (`CINEFLOW_CALLBACK_PROVIDERS`, comma-separated provider ids).
    /// Default: off (polling only).
    pub(crate) callbacks: CallbackConfig,
}

impl ServerConfig {
    /// Defaults for a loopback server with its folders under `root`.
    pub(crate) fn local(root: impl Into<PathBuf>) -> Self {
        let root = root.into();
        Self {
            addr: SocketAddr::from(([127, 0, 0, 1], 8088)),
            token: None,
            allow_open: false,
            store_url: "sqlite://cineflow.db".into(),
            output_dir: root.join("cineflow-output"),
            upload_dir: root.join("cineflow-uploads"),
            max_upload_bytes: DEFAULT_MAX_UPLOAD_BYTES,
            run_tasks: true,
            sse_poll: Duration::from_millis(500),
            sse_store_read: Duration::from_secs(2),
            sse_full_read: Duration::from_secs(30),
            sse_keep_alive: Duration::from_secs(15),
            cors_origins: Vec::new(),
            retention_days: None,
            callbacks: CallbackConfig::default(),
        }
    }

    /// Reads the environment (see each field for its variable and default).
    ///
    /// # Errors
    /// A variable that is set but cannot be read, naming it.
    pub(crate) fn from_env() -> Result<Self, String> {
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
        let mut c = Self::local(".");
        c.output_dir = "cineflow-output".into();
        c.upload_dir = "cineflow-uploads".into();
        if let Some(a) = var("CINEFLOW_SERVER_ADDR") {
            c.addr = a
                .parse()
                .map_err(|e| format!("CINEFLOW_SERVER_ADDR={a:?}: {e}"))?;
        }
        c.token = var("CINEFLOW_SERVER_TOKEN")
            .or_else(|| var("AUTH_TOKEN"))
            .and_then(Token::new);
        c.allow_open = flag(
            var("CINEFLOW_SERVER_ALLOW_OPEN"),
            "CINEFLOW_SERVER_ALLOW_OPEN",
        )?;
        if let Some(u) = var("CINEFLOW_STORE_URL") {
            c.store_url = u;
        }
        if let Some(d) = var("CINEFLOW_OUTPUT_DIR") {
            c.output_dir = d.into();
        }
        if let Some(d) = var("CINEFLOW_UPLOAD_DIR") {
            c.upload_dir = d.into();
        }
        if let Some(n) = var("CINEFLOW_MAX_UPLOAD_BYTES") {
            c.max_upload_bytes = n.parse().ok().filter(|n| *n > 0).ok_or_else(|| {
                format!("CINEFLOW_MAX_UPLOAD_BYTES={n:?}: not a positive integer")
            })?;
        }
        if let Some(v) = var("CINEFLOW_SERVER_RUN_TASKS") {
            c.run_tasks = flag(Some(v), "CINEFLOW_SERVER_RUN_TASKS")?;
        }
        if let Some(o) = var("CINEFLOW_CORS_ORIGINS") {
            c.cors_origins = o
                .split(',')
                .map(|s| s.trim().trim_end_matches('/').to_owned())
                .filter(|s| !s.is_empty())
                .collect();
            for origin in &c.cors_origins {
                let ok = origin == "*"
                    || ((origin.starts_with("http://") || origin.starts_with("https://"))
                        && origin.parse::<axum::http::HeaderValue>().is_ok());
                if !ok {
                    return Err(format!(
                        "CINEFLOW_CORS_ORIGINS: {origin:?} is not an origin (http(s)://host[:port]) or *"
                    ));
                }
            }
        }
        if let Some(n) = var("CINEFLOW_RETENTION_DAYS") {
            c.retention_days =
                Some(n.parse().ok().filter(|n| *n > 0).ok_or_else(|| {
                    format!("CINEFLOW_RETENTION_DAYS={n:?}: not a positive integer")
                })?);
        }
        for (name, field) in [
            ("CINEFLOW_SSE_POLL_MS", &mut c.sse_poll),
            ("CINEFLOW_SSE_STORE_READ_MS", &mut c.sse_store_read),
            ("CINEFLOW_SSE_FULL_READ_MS", &mut c.sse_full_read),
        ] {
            if let Some(n) = var(name) {
                *field = Duration::from_millis(
                    n.parse()
                        .ok()
                        .filter(|n| *n > 0)
                        .ok_or_else(|| format!("{name}={n:?}: not a positive integer"))?,
                );
            }
        }
        c.callbacks = callbacks(
            var("CINEFLOW_CALLBACK_BASE_URL"),
            var("CINEFLOW_CALLBACK_PROVIDERS"),
        )?;
        Ok(c)
    }

    /// Refuses to listen on a non-loopback address without a token, unless told to.
    ///
    /// # Errors
    /// The reason, naming the variables that change it.
    pub(crate) fn check_bind(&self, addr: SocketAddr) -> Result<(), String> {
        if self.token.is_none() && !self.allow_open && !addr.ip().is_loopback() {
            return Err(format!(
                "refusing to listen on {addr} without authentication: set CINEFLOW_SERVER_TOKEN, \
                 or bind to 127.0.0.1, or set CINEFLOW_SERVER_ALLOW_OPEN=1 to serve anyone who \
                 can reach it"
            ));
        }
        Ok(())
    }
}

/// `1|true|yes` / `0|false|no`; unset is false.
fn flag(value: Option<String>, name: &str) -> Result<bool, String> {
    match value.as_deref().map(str::to_ascii_lowercase).as_deref() {
        None | Some("0" | "false" | "no") => Ok(false),
        Some("1" | "true" | "yes") => Ok(true),
        Some(other) => Err(format!("{name}={other:?}: expected 1 or 0")),
    }
}

/// The callback settings from `CINEFLOW_CALLBACK_BASE_URL` and `CINEFLOW_CALLBACK_PROVIDERS`
/// (the orchestrator checks the URL when it is built).
///
/// # Errors
/// A provider list without a base URL, or a provider id that is not one, naming the variable.
pub(crate) fn callbacks(
    base_url: Option<String>,
    providers: Option<String>,
) -> Result<CallbackConfig, String> {
    let mut c = CallbackConfig::default();
    let Some(list) = providers else {
        return match base_url {
            Some(_) => Err(
                "CINEFLOW_CALLBACK_BASE_URL is set but CINEFLOW_CALLBACK_PROVIDERS \
                 names no provider (comma-separated provider ids)"
                    .into(),
            ),
            None => Ok(c),
        };
    };
    let Some(base) = base_url else {
        return Err(
            "CINEFLOW_CALLBACK_PROVIDERS needs CINEFLOW_CALLBACK_BASE_URL (the server's public \
             URL up to /api/v1)"
                .into(),
        );
    };
    for id in list.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let id =
            ProviderId::new(id).map_err(|e| format!("CINEFLOW_CALLBACK_PROVIDERS: {id:?}: {e}"))?;
        c.providers.push(id);
    }
    c.public_base_url = Some(base.trim_end_matches('/').to_owned());
    Ok(c)
}
