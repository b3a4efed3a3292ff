//! `--webhooks`: a small loopback receiver feeding the orchestrator's callback API, as a server
//! would (`POST /callbacks/{provider}` → `Orchestrator::handle_callback`).

use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex, PoisonError};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use cineflow::core::Orchestrator;
use cineflow::core::callback::{CallbackEffect, CallbackRequest};
use tokio::sync::OnceCell;

use super::*;

/// The most bytes of a callback body read (a server's body-size limit).
const MAX_BODY: usize = 1024 * 1024;

/// What the receiver saw.
#[derive(Debug, Default)]
pub(crate) struct HookStats {
    pub(crate) received: u64,
    pub(crate) rejected: HashMap<&'static str, u64>,
    pub(crate) woke: u64,
    pub(crate) answered: u64,
    pub(crate) ignored: u64,
    pub(crate) not_followed: u64,
    /// When a conclusive claim of an ended job was handed to its task, by vendor job id (the
    /// first time): the job's end was detected then, without a poll.
    pub(crate) detected: HashMap<String, time::OffsetDateTime>,
}

#[derive(Clone)]
struct Shared {
    orch: Arc<OnceCell<Orchestrator>>,
    stats: Arc<Mutex<HookStats>>,
    /// Whether the provider's claims are signed results taken as poll answers.
    conclusive: bool,
}

/// The receiver: listening before the orchestrator exists (its URL goes into the
/// orchestrator's configuration), serving once [`set`](Self::set) hands it the orchestrator.
pub(crate) struct Receiver {
    pub(crate) addr: SocketAddr,
    orch: Arc<OnceCell<Orchestrator>>,
    pub(crate) stats: Arc<Mutex<HookStats>>,
    task: tokio::task::JoinHandle<()>,
}

impl Receiver {
    /// Binds `127.0.0.1:0` and serves.
    pub(crate) async fn start(conclusive: bool) -> Result<Self, BoxError> {
        let listener = tokio::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await?;
        let addr = listener.local_addr()?;
        let shared = Shared {
            orch: Arc::new(OnceCell::new()),
            stats: Arc::default(),
            conclusive,
        };
        let app = Router::new()
            .route("/callbacks/{provider}", axum::routing::any(receive))
            .layer(axum::extract::DefaultBodyLimit::max(MAX_BODY))
            .with_state(shared.clone());
        let task = tokio::spawn(async move {
            if let Err(e) = axum::serve(listener, app).await {
                eprintln!("loadtest: the webhook receiver failed: {e}");
            }
        });
        Ok(Self {
            addr,
            orch: shared.orch,
            stats: shared.stats,
            task,
        })
    }

    /// The public base URL to configure: `http://127.0.0.1:PORT`.
    pub(crate) fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub(crate) fn set(&self, orch: Orchestrator) {
        let _ = self.orch.set(orch);
    }

    pub(crate) fn stop(self) -> HookStats {
        self.task.abort();
        std::mem::take(&mut *self.stats.lock().unwrap_or_else(PoisonError::into_inner))
    }
}

async fn receive(
    State(s): State<Shared>,
    Path(provider): Path<String>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let lock = || s.stats.lock().unwrap_or_else(PoisonError::into_inner);
    lock().received += 1;
    let Some(orch) = s.orch.get() else {
        return StatusCode::SERVICE_UNAVAILABLE.into_response();
    };
    let url = uri.path_and_query().map_or("/", |p| p.as_str());
    let req = headers
        .iter()
        .filter_map(|(k, v)| Some((k.as_str(), v.to_str().ok()?)))
        .fold(CallbackRequest::new(method.as_str(), url), |r, (k, v)| {
            r.with_header(k, v)
        })
        .with_body(body);
    match orch.handle_callback(&provider, &req).await {
        Ok(outcome) => {
            let mut st = lock();
            match &outcome.effect {
                CallbackEffect::Woke => {
                    st.woke += 1;
                    let ended = outcome.claimed.as_ref().is_some_and(|c| c.is_terminal());
                    if s.conclusive
                        && ended
                        && let Some(id) = &outcome.vendor_job_id
                    {
                        st.detected
                            .entry(id.clone())
                            .or_insert_with(time::OffsetDateTime::now_utc);
                    }
                }
                CallbackEffect::Answered => st.answered += 1,
                CallbackEffect::NotFollowed => st.not_followed += 1,
                _ => st.ignored += 1,
            }
            drop(st);
            let r = outcome.reply;
            let mut resp = (
                StatusCode::from_u16(r.status).unwrap_or(StatusCode::OK),
                r.body,
            )
                .into_response();
            if let Some(ct) = r.content_type
                && let Ok(v) = ct.parse()
            {
                resp.headers_mut().insert("content-type", v);
            }
            resp
        }
        Err(e) => {
            *lock().rejected.entry(e.kind().as_str()).or_default() += 1;
            (
                StatusCode::from_u16(e.http_status()).unwrap_or(StatusCode::BAD_REQUEST),
                e.kind().as_str(),
            )
                .into_response()
        }
    }
}
