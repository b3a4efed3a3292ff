//! The server example's `POST /api/v1/callbacks/{provider}` over real HTTP on loopback, with the
//! MiniMax adapter (never called: the attempt is put on record directly): no Bearer token
//! needed, MiniMax's challenge echoed, forged callbacks refused with their reason, a body
//! over the limit refused, a genuine report acknowledged.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../examples/server/app.rs"]
#[allow(dead_code)]
mod app;

use std::sync::Arc;

use cineflow::core::callback::{AttemptRef, CallbackToken, CallbackUrl};
use cineflow::core::{
    Attempt, ModelId, Orchestrator, OrchestratorConfig, ProviderId, Router, RunSpec, Storyboard,
    TaskQuery, TaskStatus, VideoProvider,
};
use cineflow::providers::minimax::Minimax;
use cineflow::providers::{ApiKeyBuilder, HttpBuilder};
use reqwest::StatusCode;
use serde_json::{Value, json};
use time::OffsetDateTime;

use crate::app::config::{ServerConfig, Token};
use crate::app::routes::callbacks::MAX_CALLBACK_BYTES;
use crate::app::state::AppState;

const BEARER: &str = "server-token";

struct Server {
    base: String,
    /// The attempt's callback URL, path and query (`/api/v1/callbacks/minimax?…`).
    path: String,
    token: String,
    _stop: tokio::sync::oneshot::Sender<()>,
    _dir: tempfile::TempDir,
}

/// A server whose orchestrator routes `hailuo` to MiniMax with callbacks on, and one task
/// whose attempt 1 is on record (submitting, no job) with a callback token.
async fn server() -> Server {
    let dir = tempfile::tempdir().unwrap();
    let mut config = ServerConfig::local(dir.path());
    config.addr = "127.0.0.1:0".parse().unwrap();
    config.token = Token::new(BEARER);
    let minimax: Arc<dyn VideoProvider> = Arc::new(
        Minimax::intl()
            .with_api_key("mm-SECRET")
            .with_base_url("http://127.0.0.1:9")
            .build()
            .unwrap(),
    );
    let provider = ProviderId::new("minimax").unwrap();
    assert_eq!(minimax.id(), &provider);
    let model = ModelId::new("hailuo").unwrap();
    let mut oc = OrchestratorConfig::default();
    oc.callbacks.public_base_url = Some("https://cineflow.example/api/v1".into());
    oc.callbacks.providers = vec![provider.clone()];
    let orch = Orchestrator::builder()
        .router(Router::new().route(model.clone(), minimax, "MiniMax-Hailuo-02"))
        .config(oc)
        .build()
        .unwrap();
    let sb = Storyboard::from_json(r#"{"segments":[{"segment_index":1,"prompt_text":"A kite."}]}"#)
        .unwrap();
    orch.add_storyboard(&sb).await.unwrap();
    let run = orch.create_run(RunSpec::new(sb.id, model)).await.unwrap();
    let store = orch.store();
    let mut task = store
        .list_tasks(&TaskQuery::for_run(run.id))
        .await
        .unwrap()
        .items[0]
        .clone();
    let token = CallbackToken::generate();
    let attempt = AttemptRef::new(task.id, 1);
    let url = CallbackUrl::new(
        "https://cineflow.example/api/v1",
        &provider,
        attempt,
        &token,
    )
    .unwrap();
    task.attempts.push(
        Attempt::new(
            1,
            provider,
            "MiniMax-Hailuo-02",
            attempt.to_string(),
            OffsetDateTime::now_utc(),
        )
        .with_reason("test".into())
        .with_vendor_payload(Value::Null)
        .with_callback_token_hash(token.hash()),
    );
    task.status = TaskStatus::Submitting;
    store.update_task(&task).await.unwrap();
    let listener = app::bind(&config).await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(app::serve(listener, AppState::new(orch, config), async {
        let _ = stopped.await;
    }));
    Server {
        base,
        path: url.as_str().replace("https://cineflow.example", ""),
        token: token.expose().to_owned(),
        _stop: stop,
        _dir: dir,
    }
}

impl Server {
    async fn post(&self, path: &str, body: impl Into<reqwest::Body>) -> (StatusCode, String) {
        let res = reqwest::Client::new()
            .post(format!("{}{path}", self.base))
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap();
        (res.status(), res.text().await.unwrap())
    }
}

#[tokio::test]
async fn the_minimax_challenge_is_answered_without_a_bearer_token() {
    let s = server().await;
    let (status, body) = s.post(&s.path, r#"{"challenge":"c-42"}"#).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        serde_json::from_str::<Value>(&body).unwrap(),
        json!({"challenge": "c-42"})
    );
    // Other routes still want the Bearer token.
    let res = reqwest::get(format!("{}/api/v1/stats", s.base))
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn a_genuine_report_is_acknowledged_and_forged_ones_are_refused_with_their_reason() {
    let s = server().await;
    let report = r#"{"task_id":"106","status":"success","file_id":"F"}"#;
    let (status, body) = s.post(&s.path, report).await;
    assert_eq!(status, StatusCode::OK, "{body}");

    let wrong = s.path.replace(&s.token, &"0".repeat(64));
    let missing = s.path.replace(&format!("&cf_token={}", s.token), "");
    let other = s.path.replace("/callbacks/minimax", "/callbacks/nobody");
    for (path, want, code) in [
        (wrong, StatusCode::UNAUTHORIZED, "wrong_token"),
        (missing, StatusCode::UNAUTHORIZED, "missing_token"),
        (other, StatusCode::NOT_FOUND, "unknown_provider"),
    ] {
        let (status, body) = s.post(&path, report).await;
        assert_eq!(status, want, "{body}");
        let body: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(body["code"], code, "{body}");
        assert!(!body.to_string().contains(&s.token), "{body}");
    }
    let (status, body) = s.post(&s.path, r#"{"status":"success"}"#).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(body.contains("task_id"), "{body}");
}

#[tokio::test]
async fn a_callback_body_over_the_limit_is_refused() {
    let s = server().await;
    let big = format!(r#"{{"pad":"{}"}}"#, "x".repeat(MAX_CALLBACK_BYTES));
    let (status, body) = s.post(&s.path, big).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{body}");
}

#[test]
fn the_server_reads_its_callback_settings_and_refuses_half_of_them() {
    use crate::app::config::callbacks;
    let off = callbacks(None, None).unwrap();
    assert!(off.public_base_url.is_none() && off.providers.is_empty());

    let on = callbacks(
        Some("https://cineflow.example/api/v1/".into()),
        Some("minimax, seedance".into()),
    )
    .unwrap();
    assert_eq!(
        on.public_base_url.as_deref(),
        Some("https://cineflow.example/api/v1")
    );
    assert!(on.enabled_for(&ProviderId::new("minimax").unwrap()));
    assert!(on.enabled_for(&ProviderId::new("seedance").unwrap()));
    assert!(!on.enabled_for(&ProviderId::new("kling").unwrap()));

    let e = callbacks(Some("https://cineflow.example/api/v1".into()), None).unwrap_err();
    assert!(e.contains("CINEFLOW_CALLBACK_PROVIDERS"), "{e}");
    let e = callbacks(None, Some("minimax".into())).unwrap_err();
    assert!(e.contains("CINEFLOW_CALLBACK_BASE_URL"), "{e}");
    let e = callbacks(Some("https://x.example".into()), Some("Mini Max".into())).unwrap_err();
    assert!(
        e.contains("CINEFLOW_CALLBACK_PROVIDERS") && e.contains("Mini Max"),
        "{e}"
    );
}
