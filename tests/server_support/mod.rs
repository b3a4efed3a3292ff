//! Shared by the server tests (`server`, `server_ops`): a server example on loopback over
//! SQLite in a temporary folder with `MockProvider` behind `seedance-2`, an HTTP client that
//! sends its token, and a Server-Sent Events reader.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::Duration;

use cineflow::core::mock::{MockProvider, Step};
use cineflow::core::{
    LocalDirSink, ModelId, Orchestrator, OrchestratorConfig, Router, RouterConfig, Store,
    VideoProvider,
};
use futures::StreamExt;
use reqwest::{Method, StatusCode, multipart};
use serde_json::Value;

use crate::app;
use crate::app::config::{ServerConfig, Token};
use crate::app::state::AppState;

/// CineFlow's demo storyboard (2 segments).
pub(crate) const DEMO: &str = include_str!("../../examples/storyboards/cineflow_demo.json");
/// The Bearer token of the servers [`start`] starts.
pub(crate) const TOKEN: &str = "test-token";
/// Download tries per attempt in these tests.
pub(crate) const DOWNLOAD_TRIES: u32 = 2;

/// A server on `127.0.0.1:0` over SQLite in a temporary folder, `seedance-2` (and so the
/// `sora2` / `sora2pro` aliases) served by a `MockProvider`.
pub(crate) struct Server {
    pub(crate) base: String,
    pub(crate) http: reqwest::Client,
    pub(crate) token: Option<String>,
    pub(crate) mock: MockProvider,
    pub(crate) orch: Orchestrator,
    /// The store, without the wrapper [`start_wrapped`] put around the server's.
    pub(crate) store: Arc<dyn Store>,
    pub(crate) config: ServerConfig,
    pub(crate) dir: tempfile::TempDir,
    pub(crate) stop: Option<tokio::sync::oneshot::Sender<()>>,
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

pub(crate) async fn start_with(
    token: Option<&str>,
    tweak: impl FnOnce(&mut ServerConfig),
) -> Server {
    let mock = MockProvider::new("mock").unwrap().with_timeline(vec![
        Step::Queued,
        Step::Running(50),
        Step::Succeeded,
    ]);
    start_on(token, mock, RouterConfig::default(), tweak).await
}

/// A server whose `seedance-2` is served by `mock`, with `providers` settings (e.g. prices)
/// added to the default catalog.
pub(crate) async fn start_on(
    token: Option<&str>,
    mock: MockProvider,
    providers: RouterConfig,
    tweak: impl FnOnce(&mut ServerConfig),
) -> Server {
    start_wrapped(token, mock, providers, tweak, |store| store).await
}

/// [`start_on`], with the server's store wrapped by `wrap` (e.g. to count its reads).
pub(crate) async fn start_wrapped(
    token: Option<&str>,
    mock: MockProvider,
    providers: RouterConfig,
    tweak: impl FnOnce(&mut ServerConfig),
    wrap: impl FnOnce(Arc<dyn Store>) -> Arc<dyn Store>,
) -> Server {
    let dir = tempfile::tempdir().unwrap();
    let mut config = ServerConfig::local(dir.path());
    config.addr = "127.0.0.1:0".parse().unwrap();
    config.token = token.and_then(Token::new);
    config.store_url = format!("sqlite://{}", dir.path().join("cineflow.db").display());
    tweak(&mut config);
    let provider: Arc<dyn VideoProvider> = Arc::new(mock.clone());
    let mut catalog = app::providers::default_catalog();
    catalog.providers.extend(providers.providers);
    let router = Router::from_config(catalog).route(
        ModelId::new("seedance-2").unwrap(),
        provider,
        "mock-video-1",
    );
    let mut oc = OrchestratorConfig::default();
    oc.poll.initial = Duration::from_millis(10);
    oc.poll.min = Duration::from_millis(10);
    oc.poll.max = Duration::from_millis(50);
    oc.download_tries = DOWNLOAD_TRIES;
    let store = cineflow::store::connect(&config.store_url).await.unwrap();
    let orch = Orchestrator::builder()
        .store(wrap(Arc::clone(&store)))
        .sink(Arc::new(LocalDirSink::new(&config.output_dir)))
        .router(router)
        .config(oc)
        .build()
        .unwrap();
    let listener = app::bind(&config).await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let state = AppState::new(orch.clone(), config.clone());
    tokio::spawn(app::serve(listener, state, async {
        let _ = stopped.await;
    }));
    Server {
        base,
        http: reqwest::Client::new(),
        token: token.map(str::to_owned),
        mock,
        orch,
        store,
        config,
        dir,
        stop: Some(stop),
    }
}

pub(crate) async fn start() -> Server {
    start_with(Some(TOKEN), |_| {}).await
}

impl Server {
    pub(crate) fn req(&self, method: Method, path: &str) -> reqwest::RequestBuilder {
        let r = self.http.request(method, format!("{}{path}", self.base));
        match &self.token {
            Some(t) => r.bearer_auth(t),
            None => r,
        }
    }

    pub(crate) async fn send(&self, r: reqwest::RequestBuilder) -> (StatusCode, Value) {
        let res = r.send().await.unwrap();
        let status = res.status();
        let text = res.text().await.unwrap();
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    pub(crate) async fn get(&self, path: &str) -> (StatusCode, Value) {
        self.send(self.req(Method::GET, &format!("/api/v1{path}")))
            .await
    }

    pub(crate) async fn post(&self, path: &str, body: Value) -> (StatusCode, Value) {
        self.send(
            self.req(Method::POST, &format!("/api/v1{path}"))
                .json(&body),
        )
        .await
    }

    pub(crate) async fn patch(&self, path: &str, body: Value) -> (StatusCode, Value) {
        self.send(
            self.req(Method::PATCH, &format!("/api/v1{path}"))
                .json(&body),
        )
        .await
    }

    pub(crate) async fn upload(
        &self,
        path: &str,
        name: &str,
        bytes: Vec<u8>,
    ) -> (StatusCode, Value) {
        let form = multipart::Form::new().part(
            "file",
            multipart::Part::bytes(bytes).file_name(name.to_owned()),
        );
        self.send(
            self.req(Method::POST, &format!("/api/v1{path}"))
                .multipart(form),
        )
        .await
    }

    /// Uploads CineFlow's demo storyboard (2 segments) and returns its id.
    pub(crate) async fn demo_storyboard(&self) -> String {
        let (status, sb) = self
            .upload(
                "/storyboards",
                "storyboard_demo.json",
                DEMO.as_bytes().to_vec(),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{sb}");
        sb["id"].as_str().unwrap().to_owned()
    }

    /// Polls `GET /runs/{id}` until its CineFlow status is terminal (bounded, not timed).
    pub(crate) async fn wait_run(&self, run: &str) -> Value {
        for _ in 0..2000 {
            let (_, r) = self.get(&format!("/runs/{run}")).await;
            if !matches!(r["state"].as_str(), Some("pending" | "running")) {
                return r;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("run {run} did not finish");
    }

    /// Polls `GET /tasks/{id}` until the task is terminal (bounded, not timed).
    pub(crate) async fn wait_task(&self, task: &str) -> Value {
        for _ in 0..2000 {
            let (_, t) = self.get(&format!("/tasks/{task}")).await;
            if matches!(
                t["state"].as_str(),
                Some("completed" | "failed" | "download_failed" | "cancelled" | "interrupted")
            ) {
                return t;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("task {task} did not finish");
    }

    /// The run's tasks, by segment index.
    pub(crate) async fn tasks(&self, run: &str, query: &str) -> Vec<Value> {
        let (status, p) = self.get(&format!("/runs/{run}/tasks?{query}")).await;
        assert_eq!(status, StatusCode::OK, "{p}");
        p["items"].as_array().unwrap().clone()
    }
}

pub(crate) fn assert_envelope(status: StatusCode, body: &Value, want: StatusCode, code: &str) {
    assert_eq!(status, want, "{body}");
    assert_eq!(body["code"], code, "{body}");
    assert!(
        body["message"].as_str().is_some_and(|m| !m.is_empty()),
        "{body}"
    );
    assert!(body["details"].is_object(), "{body}");
}

pub(crate) fn assert_names_field(status: StatusCode, body: &Value, field: &str) {
    assert_envelope(status, body, StatusCode::BAD_REQUEST, "validation_error");
    assert_eq!(body["details"]["field"], field, "{body}");
}

/// One Server-Sent Event: its `event`, `id` and `data` (JSON), or a comment.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Sse {
    /// An event.
    Event {
        /// `event:`.
        name: String,
        /// `id:`.
        id: Option<String>,
        /// `data:`, parsed.
        data: Value,
    },
    /// A `:` comment (keep-alive).
    Comment(String),
}

/// Reads a `text/event-stream` response frame by frame.
pub(crate) struct SseReader {
    body: futures::stream::BoxStream<'static, reqwest::Result<bytes::Bytes>>,
    buf: String,
}

impl SseReader {
    /// Opens `GET /api/v1/runs/{run}/events`, with `Last-Event-ID` if given.
    pub(crate) async fn open(s: &Server, run: &str, last_event_id: Option<&str>) -> Self {
        let mut r = s.req(Method::GET, &format!("/api/v1/runs/{run}/events"));
        if let Some(id) = last_event_id {
            r = r.header("Last-Event-ID", id);
        }
        Self::send(r).await
    }

    /// Sends a prepared `GET …/events` request.
    pub(crate) async fn send(r: reqwest::RequestBuilder) -> Self {
        let res = r.send().await.unwrap();
        assert_eq!(res.status(), StatusCode::OK);
        assert_eq!(res.headers()["content-type"], "text/event-stream");
        Self {
            body: res.bytes_stream().boxed(),
            buf: String::new(),
        }
    }

    /// The next frame (event or comment).
    pub(crate) async fn next(&mut self) -> Sse {
        loop {
            if let Some(end) = self.buf.find("\n\n") {
                let frame: String = self.buf.drain(..end + 2).collect();
                let (mut name, mut id, mut data, mut comment) =
                    (String::new(), None, String::new(), None);
                for line in frame.lines() {
                    if let Some(c) = line.strip_prefix(':') {
                        comment = Some(c.trim().to_owned());
                    } else if let Some((k, v)) = line.split_once(':') {
                        let v = v.strip_prefix(' ').unwrap_or(v);
                        match k {
                            "event" => name = v.to_owned(),
                            "id" => id = Some(v.to_owned()),
                            "data" => data.push_str(v),
                            _ => {}
                        }
                    }
                }
                if data.is_empty() {
                    if let Some(c) = comment {
                        return Sse::Comment(c);
                    }
                    continue;
                }
                return Sse::Event {
                    name,
                    id,
                    data: serde_json::from_str(&data).unwrap(),
                };
            }
            let chunk = self.body.next().await.expect("the stream ended").unwrap();
            self.buf.push_str(std::str::from_utf8(&chunk).unwrap());
        }
    }

    /// The next event, skipping comments.
    pub(crate) async fn next_event(&mut self) -> (String, Option<String>, Value) {
        loop {
            if let Sse::Event { name, id, data } = self.next().await {
                return (name, id, data);
            }
        }
    }
}
