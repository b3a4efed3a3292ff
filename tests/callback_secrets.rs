//! Issue 20: "the secret never appears in logs or errors". Every vendor that calls back —
//! Seedance, Kling and MiniMax (a per-attempt token in the callback URL), fal (ED25519 against
//! its JWKS) and OpenRouter (HMAC) — through its real adapter, the orchestrator and a loopback
//! receiver, against the fake vendor forging a callback before every genuine one: nothing
//! logged (every event's and span's fields, at every level), no rejection (its text and
//! `Debug`), no run event and no stored task holds an API key, Kling's secret key,
//! OpenRouter's signing secret or any attempt's callback token.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::fmt::Write as _;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use cineflow::core::callback::{CallbackEffect, CallbackRequest};
use cineflow::core::{
    MemoryStore, ModelId, Orchestrator, OrchestratorConfig, Router, RunSpec, RunStatus, Store,
    Storyboard, TaskQuery, TaskStatus, VideoProvider,
};
use cineflow::providers::fal::Fal;
use cineflow::providers::kling::Kling;
use cineflow::providers::minimax::Minimax;
use cineflow::providers::openrouter::OpenRouter;
use cineflow::providers::seedance::Seedance;
use cineflow::providers::{ApiKeyBuilder, HttpBuilder};
use cineflow_testkit::{CallbackFaults, FakeVendor, Faults, KLING_ACCESS_KEY, Protocol, Trigger};
use tokio::sync::OnceCell;
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Metadata, Subscriber};

/// The key the fake vendor expects (Kling's secret key too).
const KEY: &str = "sk-CALLBACK-SECRET-7f3a9c";
/// OpenRouter's webhook signing secret.
const SIGNING_SECRET: &str = "whsec-CALLBACK-SIGNING-5b2e";

/// Everything logged on this thread: each event's and span's fields, as text.
#[derive(Clone, Default)]
struct Captured {
    text: Arc<Mutex<String>>,
    next_span: Arc<AtomicU64>,
}

struct Fields<'a>(&'a mut String);

impl Visit for Fields<'_> {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        let _ = write!(self.0, " {}={value:?}", field.name());
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        let _ = write!(self.0, " {}={value}", field.name());
    }
}

impl Subscriber for Captured {
    fn enabled(&self, _: &Metadata<'_>) -> bool {
        true
    }

    fn max_level_hint(&self) -> Option<tracing::level_filters::LevelFilter> {
        Some(tracing::level_filters::LevelFilter::TRACE)
    }

    fn new_span(&self, span: &Attributes<'_>) -> Id {
        let mut text = self.text.lock().unwrap();
        let _ = write!(text, "\nspan {}:", span.metadata().name());
        span.record(&mut Fields(&mut text));
        Id::from_u64(self.next_span.fetch_add(1, Ordering::Relaxed) + 1)
    }

    fn record(&self, _: &Id, values: &Record<'_>) {
        values.record(&mut Fields(&mut self.text.lock().unwrap()));
    }

    fn record_follows_from(&self, _: &Id, _: &Id) {}

    fn event(&self, event: &Event<'_>) {
        let mut text = self.text.lock().unwrap();
        let _ = write!(
            text,
            "\n{} {}:",
            event.metadata().level(),
            event.metadata().target()
        );
        event.record(&mut Fields(&mut text));
    }

    fn enter(&self, _: &Id) {}

    fn exit(&self, _: &Id) {}
}

/// What the receiver saw: the tokens of the callback URLs it was called at, and the text and
/// `Debug` of every rejection.
#[derive(Default)]
struct Seen {
    tokens: Vec<String>,
    rejections: Vec<String>,
    woke: usize,
}

#[derive(Clone)]
struct Hub {
    orch: Arc<OnceCell<Orchestrator>>,
    seen: Arc<Mutex<Seen>>,
}

async fn receive(
    State(hub): State<Hub>,
    Path(provider): Path<String>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let url = uri.path_and_query().map_or("/", |p| p.as_str());
    if let Some(token) = uri
        .query()
        .and_then(|q| q.split('&').find_map(|kv| kv.strip_prefix("cf_token=")))
    {
        hub.seen.lock().unwrap().tokens.push(token.to_owned());
    }
    let req = headers
        .iter()
        .filter_map(|(k, v)| Some((k.as_str(), v.to_str().ok()?)))
        .fold(CallbackRequest::new("POST", url), |r, (k, v)| {
            r.with_header(k, v)
        })
        .with_body(body);
    let orch = hub.orch.get().expect("the orchestrator");
    match orch.handle_callback(&provider, &req).await {
        Ok(outcome) => {
            if outcome.effect == CallbackEffect::Woke {
                hub.seen.lock().unwrap().woke += 1;
            }
            let reply = outcome.reply;
            (StatusCode::from_u16(reply.status).unwrap(), reply.body).into_response()
        }
        Err(e) => {
            hub.seen
                .lock()
                .unwrap()
                .rejections
                .push(format!("{e} {e:?}"));
            StatusCode::from_u16(e.http_status())
                .unwrap()
                .into_response()
        }
    }
}

/// A loopback receiver feeding the orchestrator set later into `hub.orch`.
async fn receiver(hub: Hub) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .await
        .unwrap();
    let addr = listener.local_addr().unwrap();
    let app = axum::Router::new()
        .route("/callbacks/{provider}", axum::routing::post(receive))
        .with_state(hub);
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    addr
}

/// The adapter of `p` on `fake`, and the vendor model to route to.
async fn adapter(fake: &FakeVendor, p: Protocol) -> (Arc<dyn VideoProvider>, &'static str) {
    let base = fake.base_url(p);
    match p {
        Protocol::Seedance => (
            Arc::new(
                Seedance::ark()
                    .with_base_url(base)
                    .with_api_key(KEY)
                    .build()
                    .unwrap(),
            ),
            "doubao-seedance-2-0-260128",
        ),
        Protocol::Kling => (
            Arc::new(
                Kling::intl()
                    .with_base_url(base)
                    .with_credentials(KLING_ACCESS_KEY, KEY)
                    .build()
                    .unwrap(),
            ),
            "kling-v3",
        ),
        Protocol::Minimax => (
            Arc::new(
                Minimax::intl()
                    .with_base_url(base)
                    .with_api_key(KEY)
                    .build()
                    .unwrap(),
            ),
            "MiniMax-Hailuo-02",
        ),
        Protocol::Fal => (
            Arc::new(
                Fal::builder()
                    .with_base_url(base)
                    .with_platform_url(fake.fal_platform_url())
                    .with_jwks_url(fake.fal_jwks_url())
                    .with_api_key(KEY)
                    .build()
                    .unwrap(),
            ),
            "fal-ai/veo3.1",
        ),
        Protocol::OpenRouter => (
            Arc::new(
                OpenRouter::builder()
                    .with_base_url(base)
                    .with_api_key(KEY)
                    .with_webhook_secret(SIGNING_SECRET)
                    .connect()
                    .await
                    .unwrap(),
            ),
            "google/veo-3.1",
        ),
        other => panic!("{other:?} does not call back"),
    }
}

/// Runs two shots on `p` with callbacks on and every callback preceded by a forgery; answers
/// what could hold a secret (the run's events, the stored tasks) and what the receiver saw.
async fn run(p: Protocol) -> (String, Seen) {
    let faults = Faults {
        callbacks: CallbackFaults {
            forged: Trigger::always(),
            ..CallbackFaults::default()
        },
        ..Faults::default()
    };
    let config = cineflow_testkit::Config {
        openrouter_webhook_secret: SIGNING_SECRET.into(),
        ..cineflow_testkit::Config::default()
    };
    let fake = FakeVendor::builder()
        .with_config(config)
        .with_key(KEY)
        .with_job_secs(0.3)
        .with_faults(faults)
        .start()
        .await
        .unwrap();
    let hub = Hub {
        orch: Arc::new(OnceCell::new()),
        seen: Arc::default(),
    };
    let addr = receiver(hub.clone()).await;
    let (provider, vendor_model) = adapter(&fake, p).await;
    let pid = provider.id().clone();
    let model = ModelId::new("shot").unwrap();
    let mut oc = OrchestratorConfig::default();
    oc.callbacks.public_base_url = Some(format!("http://{addr}"));
    oc.callbacks.providers = vec![pid];
    oc.callbacks.first_poll = Duration::from_secs(20);
    let store = Arc::new(MemoryStore::new());
    let orch = Orchestrator::builder()
        .router(Router::new().route(model.clone(), provider, vendor_model))
        .store(store.clone())
        .sink(Arc::new(cineflow::core::MemorySink::new()))
        .config(oc)
        .build()
        .unwrap();
    hub.orch.set(orch.clone()).ok().unwrap();
    // Veo 3.1 (fal, OpenRouter) renders 4, 6 or 8 s; the others take the default 10 s.
    let secs = if matches!(p, Protocol::Fal | Protocol::OpenRouter) {
        4
    } else {
        10
    };
    let sb = Storyboard::from_json(&format!(
        r#"{{"segments":[
            {{"segment_index":1,"prompt_text":"A kite over the sea.","duration_seconds":{secs}}},
            {{"segment_index":2,"prompt_text":"A lighthouse at dusk.","duration_seconds":{secs}}}]}}"#
    ))
    .unwrap();
    orch.add_storyboard(&sb).await.unwrap();
    let run = orch.create_run(RunSpec::new(sb.id, model)).await.unwrap();
    let mut events = orch.subscribe();
    let done = orch.start(run.id).await.unwrap().wait().await.unwrap();
    let tasks = store.list_tasks(&TaskQuery::for_run(run.id)).await.unwrap();
    assert_eq!(
        done.status,
        RunStatus::Completed,
        "{p:?}: {:?}",
        tasks.items.iter().map(|t| &t.error).collect::<Vec<_>>()
    );
    let mut kept = String::new();
    while let Ok(ev) = events.try_recv() {
        let _ = write!(kept, "\n{ev:?} {}", serde_json::to_string(&ev).unwrap());
    }
    for t in &tasks.items {
        assert_eq!(t.status, TaskStatus::Completed, "{p:?}");
        let _ = write!(kept, "\n{t:?} {}", serde_json::to_string(t).unwrap());
    }
    let seen = std::mem::take(&mut *hub.seen.lock().unwrap());
    (kept, seen)
}

#[tokio::test]
async fn no_secret_of_a_vendor_that_calls_back_appears_in_logs_rejections_events_or_tasks() {
    let captured = Captured::default();
    let _guard = tracing::subscriber::set_default(captured.clone());
    for p in [
        Protocol::Seedance,
        Protocol::Kling,
        Protocol::Minimax,
        Protocol::Fal,
        Protocol::OpenRouter,
    ] {
        let (kept, seen) = run(p).await;
        // The callbacks really came, forged ones first, and were refused with their reasons.
        assert!(seen.woke >= 2, "{p:?}: {} callbacks woke a task", seen.woke);
        assert!(
            seen.rejections.len() >= 2,
            "{p:?}: {} forgeries refused",
            seen.rejections.len()
        );
        let logs = captured.text.lock().unwrap().clone();
        assert!(
            logs.contains("woken by a callback"),
            "the capture sees the orchestrator's debug logs"
        );
        let rejections = seen.rejections.join("\n");
        let mut secrets = vec![KEY.to_owned(), SIGNING_SECRET.to_owned()];
        // The genuine tokens (the forgeries carry a replaced one).
        secrets.extend(seen.tokens.iter().filter(|t| t.len() >= 32).cloned());
        assert!(secrets.len() > 2, "{p:?}: no token seen");
        for secret in &secrets {
            for (what, text) in [
                ("the logs", &logs),
                ("a rejection", &rejections),
                ("an event or a task", &kept),
            ] {
                assert!(
                    !text.contains(secret.as_str()),
                    "{p:?}: a secret ({}…) is in {what}",
                    &secret[..6]
                );
            }
        }
    }
}
