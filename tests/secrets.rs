//! Issue 13, defect 2: "the API key is stored in clear". A vendor echoes the key in its job
//! answers (a failed job's message, a succeeded job's debug field, an object key, JSON-escaped);
//! through the real OpenAI-compatible adapter, orchestrator, `SqliteStore` and `LocalDirSink`,
//! the key must end up nowhere: not in the database files, the stored tasks (`Debug` and
//! JSON), the sidecars or videos on disk, nor the run's events.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::Duration;

use cineflow::core::mock::SAMPLE_MP4;
use cineflow::core::{
    Event, EventKind, LocalDirSink, ModelId, Orchestrator, OrchestratorConfig, Router, RunSpec,
    Storyboard, TaskQuery, TaskStatus,
};
use cineflow::providers::ApiKeyBuilder;
use cineflow::providers::openai_compat::OpenAiCompat;
use futures::StreamExt;
use serde_json::{Value, json};
use wiremock::matchers::{body_partial_json, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

mod common;

use common::files;

/// The key, with a `/` that JSON may write as `\/`.
const KEY: &str = "sk-facade-echo/SECRET+2468";

/// `body` as JSON text, with `@ESCAPED@` replaced by the key written `\/`.
fn echoed(body: &Value) -> ResponseTemplate {
    let text = body
        .to_string()
        .replace("@ESCAPED@", &KEY.replace('/', "\\/"));
    ResponseTemplate::new(200).set_body_raw(text, "application/json")
}

/// A Video object echoing the key three ways.
fn video(id: &str, status: &str, extra: Value) -> Value {
    let mut v = json!({
        "id": id, "object": "video", "model": "sora-2", "status": status, "progress": 0,
        "created_at": 1_712_697_600, "seconds": "4", "size": "720x1280",
        "echo": format!("you sent Bearer {KEY}"),
        "debug": "Authorization: Bearer @ESCAPED@",
        KEY: "the key as an object key",
    });
    v.as_object_mut()
        .unwrap()
        .extend(extra.as_object().unwrap().clone());
    v
}

async fn vendor() -> MockServer {
    let server = MockServer::start().await;
    for (prompt, id) in [("Shot ok.", "vid_ok"), ("Shot refused.", "vid_failed")] {
        Mock::given(method("POST"))
            .and(path("/v1/videos"))
            .and(body_partial_json(json!({"prompt": prompt})))
            .respond_with(echoed(&video(id, "queued", json!({}))))
            .mount(&server)
            .await;
    }
    Mock::given(method("GET"))
        .and(path("/v1/videos/vid_ok"))
        .respond_with(echoed(&video(
            "vid_ok",
            "completed",
            json!({"progress": 100, "expires_at": null}),
        )))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/v1/videos/vid_ok/content"))
        .respond_with(
            ResponseTemplate::new(200)
                .insert_header("content-type", "video/mp4")
                .set_body_bytes(SAMPLE_MP4),
        )
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/v1/videos/vid_failed"))
        .respond_with(echoed(&video(
            "vid_failed",
            "failed",
            json!({"error": {"code": "moderation_blocked",
                             "message": format!("refused; you sent Bearer {KEY} (@ESCAPED@)")}}),
        )))
        .mount(&server)
        .await;
    server
}

fn config() -> OrchestratorConfig {
    let mut c = OrchestratorConfig::default();
    c.poll.initial = Duration::from_millis(10);
    c.poll.min = Duration::from_millis(10);
    c.poll.max = Duration::from_millis(50);
    c.retry_min_delay = Duration::from_millis(10);
    c.retry_max_delay = Duration::from_millis(50);
    c
}

/// Fails when `text` holds the key, plainly or JSON-escaped.
fn assert_clean(what: &str, text: &str) {
    for form in [KEY.to_owned(), KEY.replace('/', "\\/")] {
        assert!(
            !text.contains(&form),
            "{what} holds the key ({form}): {text}"
        );
    }
}

#[tokio::test]
async fn an_echoed_api_key_is_stored_nowhere_in_the_database_tasks_sidecars_or_events() {
    let server = vendor().await;
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("cineflow.sqlite");
    let store = cineflow::store::connect(&format!("sqlite://{}", db.display()))
        .await
        .unwrap();
    let provider = OpenAiCompat::custom(format!("{}/v1", server.uri()))
        .with_api_key(KEY)
        .build()
        .unwrap();
    let model = ModelId::new("sora2").unwrap();
    let orch = Orchestrator::builder()
        .store(store.clone())
        .sink(Arc::new(LocalDirSink::new(dir.path().join("out"))))
        .router(Router::new().route(model.clone(), Arc::new(provider), "sora-2"))
        .config(config())
        .build()
        .unwrap();
    let sb = Storyboard::from_json(
        r#"{"segments":[
            {"segment_index":1,"prompt_text":"Shot ok.","duration_seconds":4,"resolution":"vertical"},
            {"segment_index":2,"prompt_text":"Shot refused.","duration_seconds":4,"resolution":"vertical"}
        ]}"#,
    )
    .unwrap();
    orch.add_storyboard(&sb).await.unwrap();
    let run = orch.create_run(RunSpec::new(sb.id, model)).await.unwrap();
    let mut handle = orch.start(run.id).await.unwrap();
    let events = handle.events();
    let run = handle.wait().await.unwrap();
    let events: Vec<Event> = events
        .take_while(|e| futures::future::ready(!matches!(e.kind, EventKind::RunFinished { .. })))
        .collect()
        .await;

    let tasks = store
        .list_tasks(&TaskQuery::for_run(run.id))
        .await
        .unwrap()
        .items;
    let mut statuses: Vec<TaskStatus> = tasks.iter().map(|t| t.status).collect();
    statuses.sort_by_key(|s| s.to_string());
    assert_eq!(statuses, [TaskStatus::Completed, TaskStatus::Failed]);
    for task in &tasks {
        assert_clean("a task's Debug", &format!("{task:?}"));
        assert_clean("a task's JSON", &serde_json::to_string(task).unwrap());
        let payload = &task.attempts[0].vendor_payload;
        assert!(
            payload.to_string().contains("[REDACTED]"),
            "the vendor payload is kept, redacted: {payload}"
        );
    }
    for event in &events {
        assert_clean("an event", &format!("{event:?}"));
        assert_clean("an event's JSON", &serde_json::to_string(event).unwrap());
    }
    // The database (and its WAL), both sidecars and the video.
    let on_disk = files(dir.path());
    assert!(
        on_disk.iter().filter(|p| p.ends_with(".json")).count() >= 2,
        "both tasks have a sidecar: {on_disk:?}"
    );
    for file in on_disk {
        let bytes = std::fs::read(&file).unwrap();
        assert_clean(&file, &String::from_utf8_lossy(&bytes));
    }
}
