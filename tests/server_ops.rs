//! The server example's additions to CineFlow's API, over real HTTP on loopback: live progress
//! as Server-Sent Events (snapshot, every change, replay after a disconnect, keep-alive),
//! cancel of a task and of a run, stats and health.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../examples/server/app.rs"]
#[allow(dead_code)]
mod app;
mod delegating;
mod server_support;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use app::config::ServerConfig;
use cineflow::core::mock::{MockProvider, Step};
use cineflow::core::store::TaskQuery;
use cineflow::core::{
    LocalDirSink, ModelId, Orchestrator, OrchestratorConfig, ProviderId, ProviderSettings, Router,
    RouterConfig, RunId, VideoProvider,
};
use delegating::{Delegating, Hooks};
use reqwest::StatusCode;
use serde_json::{Value, json};
use server_support::{Server, Sse, SseReader, TOKEN, start_on, start_wrapped};

fn mock(timeline: Vec<Step>) -> MockProvider {
    MockProvider::new("mock").unwrap().with_timeline(timeline)
}

/// A server over `mock` whose runs wait for the test to start them, with fast SSE reads.
async fn server(mock: MockProvider, run_tasks: bool) -> Server {
    start_on(Some(TOKEN), mock, RouterConfig::default(), |c| {
        c.run_tasks = run_tasks;
        c.sse_poll = Duration::from_millis(10);
        c.sse_keep_alive = Duration::from_millis(50);
    })
    .await
}

/// Creates a run of the demo storyboard's two segments and returns its id.
async fn run(s: &Server, gen_count: u32) -> String {
    let sb = s.demo_storyboard().await;
    let (status, run) = s
        .post(
            "/runs",
            json!({"storyboard_id": sb, "model_id": "sora2", "gen_count": gen_count}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{run}");
    run["id"].as_str().unwrap().to_owned()
}

/// Reads events until a `run` event with a terminal state; returns the last state of each
/// task seen, and the events in order.
async fn until_finished(
    sse: &mut SseReader,
) -> (
    BTreeMap<String, String>,
    Vec<(String, Option<String>, Value)>,
) {
    let mut tasks = BTreeMap::new();
    let mut seen = Vec::new();
    loop {
        let (name, id, data) = sse.next_event().await;
        seen.push((name.clone(), id, data.clone()));
        match name.as_str() {
            "task" => {
                tasks.insert(
                    data["id"].as_str().unwrap().to_owned(),
                    data["state"].as_str().unwrap().to_owned(),
                );
            }
            "run" if !matches!(data["state"].as_str(), Some("pending" | "running")) => {
                return (tasks, seen);
            }
            _ => {}
        }
    }
}

#[tokio::test]
async fn sse_sends_a_snapshot_then_every_change_and_replays_after_a_disconnect() {
    let s = server(mock(Step::default_timeline()), false).await;
    let run_id = run(&s, 2).await;
    let mut sse = SseReader::open(&s, &run_id, None).await;
    let (name, first_id, snapshot) = sse.next_event().await;
    assert_eq!(name, "snapshot");
    assert!(first_id.is_some());
    assert_eq!(snapshot["run"]["state"], "pending");
    assert_eq!(snapshot["tasks_total"], 4);
    assert_eq!(snapshot["tasks"].as_array().unwrap().len(), 4);

    s.orch
        .start(run_id.parse::<RunId>().unwrap())
        .await
        .unwrap();
    let (tasks, events) = until_finished(&mut sse).await;
    assert_eq!(tasks.len(), 4, "every task's changes were sent: {events:?}");
    assert!(tasks.values().all(|st| st == "completed"), "{tasks:?}");
    let ids: Vec<&String> = events.iter().filter_map(|(_, id, _)| id.as_ref()).collect();
    assert!(
        ids.windows(2).all(|w| order_key(w[0]) <= order_key(w[1])),
        "ids are ordered: {ids:?}"
    );

    // A keep-alive comment once the stream is idle.
    loop {
        if let Sse::Comment(c) = sse.next().await {
            assert_eq!(c, "keep-alive");
            break;
        }
    }
    drop(sse);

    // Reconnecting from the first event id replays every task changed since, with no snapshot.
    let mut again = SseReader::open(&s, &run_id, first_id.as_deref()).await;
    let (tasks, events) = until_finished(&mut again).await;
    assert!(events.iter().all(|(n, _, _)| n != "snapshot"), "{events:?}");
    assert_eq!(tasks.len(), 4, "{events:?}");
    assert!(tasks.values().all(|st| st == "completed"));

    // An id this server did not send is a 400 naming the header.
    let res = s
        .req(
            reqwest::Method::GET,
            &format!("/api/v1/runs/{run_id}/events"),
        )
        .header("Last-Event-ID", "yesterday")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["details"]["field"], "Last-Event-ID");
}

/// The store order of an event id `{ns}-{task}`.
fn order_key(id: &str) -> (i128, String) {
    let (ns, task) = id.split_once('-').unwrap();
    (ns.parse().unwrap(), task.to_owned())
}

/// Polls `GET {path}` until `field` is `want` (bounded, not timed).
async fn until(s: &Server, path: &str, field: &str, want: &str) -> Value {
    for _ in 0..2000 {
        let (_, v) = s.get(path).await;
        if v[field] == want {
            return v;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("{path}: {field} never became {want}");
}

#[tokio::test]
async fn a_task_and_then_its_run_are_cancelled_through_the_api() {
    // Jobs that stay queued at the vendor until cancelled.
    let s = server(mock(Vec::new()), true).await;
    let run_id = run(&s, 1).await;
    let tasks = s.tasks(&run_id, "sort=segment_index").await;
    let (t1, t2) = (
        tasks[0]["id"].as_str().unwrap(),
        tasks[1]["id"].as_str().unwrap(),
    );
    until(&s, &format!("/tasks/{t1}"), "state", "queued").await;

    let (status, body) = s.post(&format!("/tasks/{t1}/cancel"), json!({})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let t = until(&s, &format!("/tasks/{t1}"), "state", "cancelled").await;
    assert_eq!(
        t["status"], "failed",
        "CineFlow's vocabulary has no cancelled"
    );
    assert_eq!(
        s.get(&format!("/tasks/{t2}")).await.1["state"],
        "queued",
        "the other task goes on"
    );

    let (status, body) = s.post(&format!("/runs/{run_id}/cancel"), json!({})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let r = until(&s, &format!("/runs/{run_id}"), "state", "cancelled").await;
    assert_eq!(r["counts"]["cancelled"], 2, "{r}");
    until(&s, &format!("/tasks/{t2}"), "state", "cancelled").await;
    assert!(s.mock.cancels() >= 2, "the vendor jobs were cancelled too");
    assert_eq!(s.mock.submits(), 2);
    let (status, body) = s
        .post(&format!("/runs/{}/cancel", "f".repeat(32)), json!({}))
        .await;
    server_support::assert_envelope(status, &body, StatusCode::NOT_FOUND, "not_found");
}

#[tokio::test]
async fn stats_count_tasks_by_status_and_provider_with_the_estimated_cost() {
    let mut priced = RouterConfig::default();
    let settings = ProviderSettings::default().with_price(
        serde_json::from_value(json!({"per_video": 0.5, "per_second": 0.0, "currency": "USD"}))
            .unwrap(),
    );
    priced
        .providers
        .insert(ProviderId::new("mock").unwrap(), settings);
    let s = start_on(Some(TOKEN), mock(Step::default_timeline()), priced, |_| {}).await;
    let run_id = run(&s, 1).await;
    until(&s, &format!("/runs/{run_id}"), "state", "completed").await;
    let (status, stats) = s.get("/stats").await;
    assert_eq!(status, StatusCode::OK, "{stats}");
    assert_eq!(stats["tasks"]["total"], 2);
    assert_eq!(stats["tasks"]["by_status"]["completed"], 2);
    assert_eq!(stats["tasks"]["by_provider"]["mock"], 2);
    assert_eq!(stats["runs"]["by_status"]["completed"], 1);
    assert_eq!(stats["runs"]["by_status"]["running"], 0);
    assert_eq!(stats["cost"]["attempts"], 2);
    assert_eq!(stats["cost"]["estimated"]["USD"], 1.0, "{stats}");
}

#[tokio::test]
async fn health_reports_the_store_the_sink_and_each_providers_breaker() {
    let s = server(mock(Step::default_timeline()), true).await;
    let (status, h) = s.get("/health").await;
    assert_eq!(status, StatusCode::OK, "{h}");
    assert_eq!(h["status"], "ok");
    assert_eq!(h["store"]["ok"], true);
    assert_eq!(h["sink"]["ok"], true);
    assert_eq!(h["providers"]["mock"]["breaker"], "closed");
    assert_eq!(h["providers"]["mock"]["in_flight"], 0);
    let anonymous = s
        .http
        .get(format!("{}/api/v1/health", s.base))
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED);
}

/// Every route CineFlow's API has (its design notes and console), and the additions.
const EXPECTED: &[(&str, &str)] = &[
    ("post", "/storyboards"),
    ("get", "/storyboards"),
    ("get", "/storyboards/{id}"),
    ("get", "/storyboards/{id}/segments"),
    ("patch", "/segments/{id}"),
    ("post", "/segments/{id}/assets/start-image"),
    ("get", "/models"),
    ("get", "/models/{id}"),
    ("get", "/providers"),
    ("get", "/providers/{id}"),
    ("get", "/providers/{id}/capabilities"),
    ("get", "/admin/models"),
    ("get", "/admin/models/{id}"),
    ("patch", "/admin/models/{id}"),
    ("patch", "/admin/models/{id}/providers/{provider_id}"),
    ("get", "/admin/providers"),
    ("get", "/admin/providers/{id}"),
    ("patch", "/admin/providers/{id}"),
    ("post", "/runs"),
    ("get", "/runs"),
    ("get", "/runs/{id}"),
    ("get", "/runs/{id}/tasks"),
    ("get", "/tasks/{id}"),
    ("get", "/tasks/{id}/metadata"),
    ("get", "/tasks/{id}/download"),
    ("post", "/tasks/{id}/retry"),
    ("post", "/client-events"),
    ("post", "/runs/{id}/cancel"),
    ("post", "/tasks/{id}/cancel"),
    ("get", "/runs/{id}/events"),
    ("get", "/stats"),
    ("get", "/health"),
    ("get", "/openapi.json"),
    ("post", "/callbacks/{provider}"),
];

#[tokio::test]
async fn the_openapi_document_has_every_routed_path_and_every_documented_path_is_routed() {
    let s = server(mock(Step::default_timeline()), true).await;
    let (status, doc) = s.get("/openapi.json").await;
    assert_eq!(status, StatusCode::OK, "{doc}");
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    assert_eq!(doc["servers"][0]["url"], "/api/v1");
    assert_eq!(
        doc["components"]["securitySchemes"]["bearer"]["scheme"],
        "bearer"
    );
    let mut documented: Vec<(String, String)> = Vec::new();
    for (path, ops) in doc["paths"].as_object().unwrap() {
        for method in ops.as_object().unwrap().keys() {
            documented.push((method.clone(), path.clone()));
        }
    }
    documented.sort();
    let mut expected: Vec<(String, String)> = EXPECTED
        .iter()
        .map(|(m, p)| ((*m).to_owned(), (*p).to_owned()))
        .collect();
    expected.sort();
    assert_eq!(
        documented, expected,
        "the document lists exactly the served routes"
    );

    // Every documented operation is routed: none gets the fallback's 404 or a 405.
    for (method, path) in &documented {
        let id = if path.starts_with("/models") || path.starts_with("/admin/models") {
            "sora2".to_owned()
        } else if path.contains("providers/") {
            "mock".to_owned()
        } else {
            "0".repeat(32)
        };
        let url = format!(
            "/api/v1{}",
            path.replace("{id}", &id).replace("{provider_id}", "mock")
        );
        let m = reqwest::Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
        let mut r = s.req(m, &url);
        if method != "get" {
            r = r.json(&json!({}));
        }
        let res = r.send().await.unwrap();
        let status = res.status();
        assert_ne!(status, StatusCode::METHOD_NOT_ALLOWED, "{method} {path}");
        if status == StatusCode::NOT_FOUND {
            let body: Value = res.json().await.unwrap();
            assert_ne!(body["message"], "no such route", "{method} {path}");
        }
    }
    let (status, body) = s.get("/nowhere").await;
    assert_eq!(
        (status, &body["message"]),
        (StatusCode::NOT_FOUND, &json!("no such route"))
    );

    // Routes are only ever registered from their annotations (`routes!`), never beside the
    // document with axum's `route`.
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/server");
    let mut sources = vec![dir.join("app.rs")];
    for e in std::fs::read_dir(dir.join("routes")).unwrap() {
        sources.push(e.unwrap().path());
    }
    for file in sources {
        let text = std::fs::read_to_string(&file).unwrap();
        assert!(
            !text.contains(".route("),
            "{} registers a route outside the document",
            file.display()
        );
    }
}

#[tokio::test]
async fn cors_lets_the_configured_console_origin_in_and_no_other() {
    let console = "http://localhost:5173";
    let s = start_on(
        Some(TOKEN),
        mock(Step::default_timeline()),
        RouterConfig::default(),
        |c| {
            c.cors_origins = vec![console.to_owned()];
        },
    )
    .await;
    let preflight = |origin: &str| {
        s.http
            .request(reqwest::Method::OPTIONS, format!("{}/api/v1/runs", s.base))
            .header("Origin", origin)
            .header("Access-Control-Request-Method", "POST")
            .header(
                "Access-Control-Request-Headers",
                "authorization,content-type",
            )
            .send()
    };
    let ok = preflight(console).await.unwrap();
    assert_eq!(ok.status(), StatusCode::OK, "a preflight needs no token");
    assert_eq!(ok.headers()["access-control-allow-origin"], console);
    let methods = ok.headers()["access-control-allow-methods"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        methods.contains("PATCH") && methods.contains("POST"),
        "{methods}"
    );
    let other = preflight("http://evil.example").await.unwrap();
    assert!(other.headers().get("access-control-allow-origin").is_none());
    let get = s
        .req(reqwest::Method::GET, "/api/v1/runs")
        .header("Origin", console)
        .send()
        .await
        .unwrap();
    assert_eq!(get.status(), StatusCode::OK);
    assert_eq!(get.headers()["access-control-allow-origin"], console);

    let closed = server(mock(Step::default_timeline()), true).await;
    let res = closed
        .req(reqwest::Method::GET, "/api/v1/runs")
        .header("Origin", console)
        .send()
        .await
        .unwrap();
    assert!(
        res.headers().get("access-control-allow-origin").is_none(),
        "no CORS unless configured"
    );
}

#[tokio::test]
async fn retention_deletes_finished_runs_older_than_the_setting_with_their_files_and_nothing_else()
{
    // The second run's jobs (the 3rd and 4th submitted) stay queued at the vendor.
    let vendor = mock(Step::default_timeline())
        .with_job_timeline(3, vec![Step::Queued])
        .with_job_timeline(4, vec![Step::Queued]);
    let s = start_on(Some(TOKEN), vendor, RouterConfig::default(), |c| {
        c.retention_days = Some(2);
    })
    .await;
    let finished = run(&s, 1).await;
    until(&s, &format!("/runs/{finished}"), "state", "completed").await;
    let tasks = s.tasks(&finished, "").await;
    let video = s
        .orch
        .store()
        .get_task(tasks[0]["id"].as_str().unwrap().parse().unwrap())
        .await
        .unwrap();
    let video = std::path::PathBuf::from(&video.artifact.unwrap().location);
    assert!(video.is_file());
    let going = run(&s, 1).await;
    until(&s, &format!("/runs/{going}"), "state", "running").await;
    let state = app::state::AppState::new(s.orch.clone(), s.config.clone());
    let now = time::OffsetDateTime::now_utc();

    let young = app::retention::sweep(&state, now).await.unwrap();
    assert!(young.is_empty(), "nothing is 2 days old yet: {young:?}");
    let later = now + time::Duration::days(3);
    let deleted = app::retention::sweep(&state, later).await.unwrap();
    assert_eq!(
        deleted,
        vec![finished.parse::<RunId>().unwrap()],
        "only the finished run"
    );
    let (status, body) = s.get(&format!("/runs/{finished}")).await;
    server_support::assert_envelope(status, &body, StatusCode::NOT_FOUND, "not_found");
    let (status, _) = s
        .get(&format!("/tasks/{}", tasks[0]["id"].as_str().unwrap()))
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(!video.exists(), "its video is deleted");
    assert!(!video.with_extension("json").exists(), "and its sidecar");
    assert_eq!(
        s.get(&format!("/runs/{going}")).await.0,
        StatusCode::OK,
        "the running run stays"
    );
    assert!(
        s.get("/storyboards").await.1["total"].as_u64().unwrap() >= 1,
        "storyboards stay"
    );

    let mut off = s.config.clone();
    off.retention_days = None;
    let off = app::state::AppState::new(s.orch.clone(), off);
    assert!(
        app::retention::sweep(&off, later + time::Duration::days(365))
            .await
            .unwrap()
            .is_empty()
    );
}

/// Counts the reads of a whole run (`list_tasks` of one run without a status filter) and the
/// filtered ones.
#[derive(Debug, Default)]
struct Counting {
    whole_run_reads: AtomicU64,
    filtered_reads: AtomicU64,
}

impl Hooks for Counting {
    fn list_tasks(&self, query: &TaskQuery) {
        if query.run_id.is_some() {
            let counter = if query.status.is_empty() {
                &self.whole_run_reads
            } else {
                &self.filtered_reads
            };
            counter.fetch_add(1, Ordering::SeqCst);
        }
    }
}

/// A server whose runs wait for the test, with fast SSE ticks (`tweak` for more), over a store
/// with the hooks `hooks` makes from the server's own store.
async fn hooked_server<H: Hooks>(
    hooks: impl FnOnce(Arc<dyn cineflow::core::Store>) -> H,
    tweak: impl FnOnce(&mut ServerConfig),
) -> (Server, Arc<Delegating<H>>) {
    let made = Arc::new(OnceLock::<Arc<Delegating<H>>>::new());
    let slot = Arc::clone(&made);
    let s = start_wrapped(
        Some(TOKEN),
        mock(Step::default_timeline()),
        RouterConfig::default(),
        |c| {
            c.run_tasks = false;
            c.sse_poll = Duration::from_millis(10);
            tweak(c);
        },
        move |inner| {
            let c = Arc::new(Delegating::new(Arc::clone(&inner), hooks(inner)));
            slot.set(Arc::clone(&c)).unwrap();
            c
        },
    )
    .await;
    let store = Arc::clone(made.get().unwrap());
    (s, store)
}

#[tokio::test]
async fn sse_streams_share_one_watcher_that_never_rereads_the_whole_run_per_tick() {
    let (s, store) = hooked_server(
        |_| Counting::default(),
        |c| {
            c.sse_store_read = Duration::from_millis(10);
            // Never within this test: only the unfinished tasks are read.
            c.sse_full_read = Duration::from_secs(3600);
        },
    )
    .await;
    let counting = &store.hooks;
    let run_id = run(&s, 2).await;
    let mut streams = Vec::new();
    for _ in 0..3 {
        let mut sse = SseReader::open(&s, &run_id, None).await;
        assert_eq!(sse.next_event().await.0, "snapshot");
        streams.push(sse);
    }
    let connected = counting.whole_run_reads.load(Ordering::SeqCst);
    let filtered = counting.filtered_reads.load(Ordering::SeqCst);

    // Another process (an orchestrator on the same database, not the server's) runs the run.
    let provider: Arc<dyn VideoProvider> = Arc::new(s.mock.clone());
    let router = Router::from_config(app::providers::default_catalog()).route(
        ModelId::new("seedance-2").unwrap(),
        provider,
        "mock-video-1",
    );
    let mut oc = OrchestratorConfig::default();
    (oc.poll.initial, oc.poll.min, oc.poll.max) = (
        Duration::from_millis(10),
        Duration::from_millis(10),
        Duration::from_millis(50),
    );
    let worker = Orchestrator::builder()
        .store(Arc::clone(&s.store))
        .sink(Arc::new(LocalDirSink::new(&s.config.output_dir)))
        .router(router)
        .config(oc)
        .build()
        .unwrap();
    worker
        .start(run_id.parse::<RunId>().unwrap())
        .await
        .unwrap();
    for sse in &mut streams {
        let (tasks, events) = until_finished(sse).await;
        assert_eq!(tasks.len(), 4, "every task's changes were sent: {events:?}");
        assert!(tasks.values().all(|st| st == "completed"), "{tasks:?}");
    }
    assert_eq!(
        counting.whole_run_reads.load(Ordering::SeqCst),
        connected,
        "after the connects, nothing re-read the whole run"
    );
    assert!(
        counting.filtered_reads.load(Ordering::SeqCst) > filtered,
        "the watcher read the unfinished tasks"
    );
}

/// Cancels every task of the run and the run itself, directly in the store, just before the
/// next `get_run` once armed: a change made between a watcher's read of the tasks and its
/// read of the run.
#[derive(Debug, Default)]
struct FinishOnGetRun {
    store: OnceLock<Arc<dyn cineflow::core::Store>>,
    armed: std::sync::atomic::AtomicBool,
}

#[async_trait::async_trait]
impl Hooks for FinishOnGetRun {
    async fn get_run(&self, id: RunId) {
        if !self.armed.swap(false, Ordering::SeqCst) {
            return;
        }
        let store = self.store.get().unwrap();
        let q = TaskQuery::default().with_run_id(id);
        for mut t in store.list_tasks(&q).await.unwrap().items {
            t.set_status(cineflow::core::TaskStatus::Cancelled).unwrap();
            store.update_task(&t).await.unwrap();
        }
        let mut run = store.get_run(id).await.unwrap();
        run.status = cineflow::core::RunStatus::Cancelled;
        store.update_run(&run).await.unwrap();
    }
}

#[tokio::test]
async fn a_run_event_never_says_the_run_ended_before_the_events_of_its_tasks_ends() {
    let (s, store) = hooked_server(
        |inner| FinishOnGetRun {
            store: OnceLock::from(inner),
            ..FinishOnGetRun::default()
        },
        |_| {},
    )
    .await;
    let hooks = &store.hooks;
    let run_id = run(&s, 2).await;
    let mut sse = SseReader::open(&s, &run_id, None).await;
    assert_eq!(sse.next_event().await.0, "snapshot");
    // The watcher's next tick: the run and its tasks end while it reads them.
    hooks.armed.store(true, Ordering::SeqCst);
    let (tasks, events) = until_finished(&mut sse).await;
    assert_eq!(
        tasks.len(),
        4,
        "every task's end came before the run's: {events:?}"
    );
    assert!(tasks.values().all(|st| st == "cancelled"), "{tasks:?}");
}
