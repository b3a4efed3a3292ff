//! `GET /runs/{id}/events`: a run's progress as Server-Sent Events.
//!
//! Streams follow the run's shared watcher ([`crate::app::feeds`]): it sees what any process
//! sharing the store did — this server's own runs, other servers', and workers' — and N streams
//! on a run cost one watcher reading only what changed. On Postgres the store itself is the
//! change feed (no `LISTEN/NOTIFY`). Events:
//! - `snapshot` on connect (without `Last-Event-ID`): the run, its counts and its first 1000
//!   tasks;
//! - `task` whenever a task changed (its revision moved): the task as `GET /tasks/{id}` shows it;
//! - `run` whenever the run's status or counts changed.
//!
//! Each event's `id` is `{updated_at in ns}-{task id}` of the newest task change sent so far,
//! so events are ordered as the store stamped them. A client reconnecting with `Last-Event-ID`
//! gets every task changed since then again (with a 2 s grace window, as writers in other
//! processes stamp before they commit): each `task` event carries the task's whole state, so a
//! repeat is harmless. An idle stream sends a keep-alive comment every `sse_keep_alive`.

use std::collections::{HashMap, VecDeque};
use std::convert::Infallible;
use std::sync::Arc;

use axum::extract::{Path as UrlPath, State};
use axum::http::HeaderMap;
use axum::response::sse::{Event, KeepAlive, Sse};
use cineflow::core::{Run, RunCounts, RunId, RunStatus, Task, TaskId};
use futures::Stream;
use serde_json::{Value, json};
use tokio::sync::broadcast;

use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::app::error::{ApiError, ApiResult, Envelope};
use crate::app::feeds::{Tick, read_tasks};
use crate::app::input::id;
use crate::app::state::AppState;
use crate::app::views;

/// The routes of this module.
pub(crate) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(events))
}

/// Where a stream is in the store's order of changes: `(updated_at ns, task id)`.
type Cursor = (i128, TaskId);

/// How far back a replay reaches before the client's `Last-Event-ID`, in ns.
const REPLAY_GRACE_NS: i128 = 2_000_000_000;

fn cursor_of(t: &Task) -> Cursor {
    (t.updated_at.unix_timestamp_nanos(), t.id)
}

fn event_id(c: &Cursor) -> String {
    format!("{}-{}", c.0, c.1)
}

/// A `Last-Event-ID` this server sent, else 400 naming the header.
fn parse_cursor(raw: &str) -> ApiResult<Cursor> {
    let bad = || {
        ApiError::invalid(
            "Last-Event-ID",
            format!("{raw:?} is not an event id of this stream"),
        )
    };
    let (ns, task) = raw.split_once('-').ok_or_else(bad)?;
    Ok((
        ns.parse().map_err(|_| bad())?,
        task.parse().map_err(|_| bad())?,
    ))
}

/// What one stream remembers between ticks.
struct Feed {
    state: AppState,
    run_id: RunId,
    /// The revision of each task as last sent (or as known at connect).
    seen: HashMap<TaskId, u64>,
    /// The run's status and counts as last sent.
    run: Option<(RunStatus, RunCounts)>,
    cursor: Option<Cursor>,
    queue: VecDeque<Event>,
    /// The run's watcher.
    ticks: broadcast::Receiver<Arc<Tick>>,
}

impl Feed {
    /// Queues an event per task of `tasks` not sent at its revision yet (in the store's order
    /// of changes), and one for the run if its status or counts changed.
    fn apply(&mut self, mut tasks: Vec<&Task>, run: &Run, counts: RunCounts) {
        tasks.sort_by_key(|t| cursor_of(t));
        for t in tasks {
            if self.seen.get(&t.id) == Some(&t.revision) {
                continue;
            }
            self.seen.insert(t.id, t.revision);
            let c = cursor_of(t);
            if self.cursor.is_none_or(|old| c > old) {
                self.cursor = Some(c);
            }
            let id = event_id(&self.cursor.unwrap_or(c));
            self.queue.push_back(
                Event::default()
                    .event("task")
                    .id(id)
                    .json_data(views::task(t))
                    .unwrap_or_default(),
            );
        }
        if self.run != Some((run.status, counts)) {
            self.run = Some((run.status, counts));
            let mut e = Event::default().event("run");
            if let Some(c) = &self.cursor {
                e = e.id(event_id(c));
            }
            self.queue
                .push_back(e.json_data(views::run(run, &counts)).unwrap_or_default());
        }
    }

    /// Reads the whole run (a stream that fell behind its watcher) and queues what changed.
    async fn read(&mut self) -> cineflow::core::Result<()> {
        let run = self.state.store().get_run(self.run_id).await?;
        let tasks = read_tasks(&self.state.orch, self.run_id, &[]).await?;
        let mut counts = RunCounts::default();
        for t in &tasks {
            counts.add(t.status);
        }
        self.apply(tasks.iter().collect(), &run, counts);
        Ok(())
    }

    /// Waits for the watcher's next tick and queues its events; false once the watcher is
    /// gone.
    async fn next_tick(&mut self) -> bool {
        match self.ticks.recv().await {
            Ok(tick) => {
                self.apply(tick.tasks.iter().collect(), &tick.run, tick.counts);
                true
            }
            Err(broadcast::error::RecvError::Lagged(_)) => {
                if let Err(e) = self.read().await {
                    tracing::warn!(run = %self.run_id, error = %e, "SSE: reading the store failed");
                }
                true
            }
            Err(broadcast::error::RecvError::Closed) => false,
        }
    }

    /// The snapshot: the run and its first 1000 tasks; every task counts as seen.
    async fn snapshot(&mut self) -> cineflow::core::Result<Event> {
        let run = self.state.store().get_run(self.run_id).await?;
        let tasks = read_tasks(&self.state.orch, self.run_id, &[]).await?;
        let mut counts = RunCounts::default();
        for t in &tasks {
            counts.add(t.status);
            self.seen.insert(t.id, t.revision);
            let c = cursor_of(t);
            if self.cursor.is_none_or(|old| c > old) {
                self.cursor = Some(c);
            }
        }
        self.run = Some((run.status, counts));
        let mut first: Vec<&Task> = tasks.iter().collect();
        first.sort_by_key(|t| (t.segment_index, t.version_index));
        let data: Value = json!({
            "run": views::run(&run, &counts),
            "tasks": first.iter().take(1000).map(|t| views::task(t)).collect::<Vec<_>>(),
            "tasks_total": tasks.len(),
        });
        let mut e = Event::default().event("snapshot");
        if let Some(c) = &self.cursor {
            e = e.id(event_id(c));
        }
        Ok(e.json_data(data).unwrap_or_default())
    }

    /// Queues the tasks changed since `since` (minus the grace window) and the run; the other
    /// tasks count as seen.
    async fn resume_from(&mut self, since: Cursor) -> cineflow::core::Result<()> {
        let floor = (since.0 - REPLAY_GRACE_NS, since.1);
        let run = self.state.store().get_run(self.run_id).await?;
        let tasks = read_tasks(&self.state.orch, self.run_id, &[]).await?;
        let mut counts = RunCounts::default();
        for t in &tasks {
            counts.add(t.status);
            if cursor_of(t) <= floor {
                self.seen.insert(t.id, t.revision);
            }
        }
        self.cursor = Some(since);
        self.apply(tasks.iter().collect(), &run, counts);
        Ok(())
    }
}

/// `GET /runs/{id}/events` (see the module docs).
#[utoipa::path(get, path = "/runs/{id}/events", tag = "runs", summary = "A run's progress as Server-Sent Events (snapshot, task, run; Last-Event-ID replays)", params(("id" = String, Path, description = "The run id"), ("Last-Event-ID" = Option<String>, Header)),
    responses((status = 200, description = "text/event-stream", body = Object), (status = 400, description = "Bad input, naming the field", body = Envelope), (status = 401, description = "No or wrong Bearer token", body = Envelope), (status = 404, description = "Not found", body = Envelope)))]
async fn events(
    State(state): State<AppState>,
    UrlPath(raw): UrlPath<String>,
    headers: HeaderMap,
) -> ApiResult<Sse<impl Stream<Item = Result<Event, Infallible>>>> {
    let run_id = id::<RunId>(&raw)?;
    state.store().get_run(run_id).await?;
    let last = headers
        .get("last-event-id")
        .map(|v| {
            v.to_str()
                .map_err(|_| ApiError::invalid("Last-Event-ID", "not text"))
        })
        .transpose()?
        .map(parse_cursor)
        .transpose()?;
    let keep_alive = state.config.sse_keep_alive;
    // Follow the watcher before reading the store, so that no change falls between the two.
    let ticks = state.feeds.subscribe(&state.orch, &state.config, run_id);
    let mut feed = Feed {
        state,
        run_id,
        seen: HashMap::new(),
        run: None,
        cursor: None,
        queue: VecDeque::new(),
        ticks,
    };
    match last {
        Some(c) => feed.resume_from(c).await?,
        None => {
            let snapshot = feed.snapshot().await?;
            feed.queue.push_back(snapshot);
        }
    }
    let stream = futures::stream::unfold(feed, |mut feed| async move {
        loop {
            if let Some(e) = feed.queue.pop_front() {
                return Some((Ok(e), feed));
            }
            if !feed.next_tick().await {
                return None;
            }
        }
    });
    Ok(Sse::new(stream).keep_alive(KeepAlive::new().interval(keep_alive).text("keep-alive")))
}
