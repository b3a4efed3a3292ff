//! `GET /runs/{id}/events`: a run's progress as Server-Sent Events.
//!
//! The stream reads the store as a change feed (every `sse_poll`): it sees what any process
//! sharing the store did — this server's own runs, other servers', and workers'. Events:
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

use axum::extract::{Path as UrlPath, State};
use axum::http::HeaderMap;
use axum::response::sse::{Event, KeepAlive, Sse};
use cineflow::core::{PageRequest, RunCounts, RunId, RunStatus, Task, TaskId, TaskQuery, TaskSort};
use futures::Stream;
use serde_json::{Value, json};

use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::app::error::{ApiError, ApiResult, Envelope};
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

/// What one stream remembers between reads of the store.
struct Feed {
    state: AppState,
    run_id: RunId,
    /// The revision of each task as last sent (or as known at connect).
    seen: HashMap<TaskId, u64>,
    /// The run's status and counts as last sent.
    run: Option<(RunStatus, RunCounts)>,
    cursor: Option<Cursor>,
    queue: VecDeque<Event>,
    /// Whether the next read happens right away (the first one).
    first: bool,
}

impl Feed {
    async fn all_tasks(&self) -> cineflow::core::Result<Vec<Task>> {
        let mut out = Vec::new();
        let mut page = 1;
        loop {
            let q = TaskQuery {
                run_id: Some(self.run_id),
                sort: TaskSort::CreatedAt,
                page: PageRequest::new(page, PageRequest::MAX_PAGE_SIZE),
                ..TaskQuery::default()
            };
            let p = self.state.store().list_tasks(&q).await?;
            let n = p.items.len();
            out.extend(p.items);
            if n == 0 || out.len() as u64 >= p.total {
                return Ok(out);
            }
            page += 1;
        }
    }

    /// Reads the store and queues an event per change.
    async fn read(&mut self) -> cineflow::core::Result<()> {
        let run = self.state.store().get_run(self.run_id).await?;
        let mut tasks = self.all_tasks().await?;
        tasks.sort_by_key(cursor_of);
        let mut counts = RunCounts::default();
        for t in &tasks {
            counts.add(t.status);
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
                .push_back(e.json_data(views::run(&run, &counts)).unwrap_or_default());
        }
        Ok(())
    }

    /// The snapshot: the run and its first 1000 tasks; every task counts as seen.
    async fn snapshot(&mut self) -> cineflow::core::Result<Event> {
        let run = self.state.store().get_run(self.run_id).await?;
        let tasks = self.all_tasks().await?;
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

    /// The tasks changed before `since` (minus the grace window) count as seen.
    async fn resume_from(&mut self, since: Cursor) -> cineflow::core::Result<()> {
        let floor = (since.0 - REPLAY_GRACE_NS, since.1);
        for t in self.all_tasks().await? {
            if cursor_of(&t) <= floor {
                self.seen.insert(t.id, t.revision);
            }
        }
        self.cursor = Some(since);
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
    let mut feed = Feed {
        state,
        run_id,
        seen: HashMap::new(),
        run: None,
        cursor: None,
        queue: VecDeque::new(),
        first: true,
    };
    match last {
        Some(c) => feed.resume_from(c).await?,
        None => {
            let snapshot = feed.snapshot().await?;
            feed.queue.push_back(snapshot);
            feed.first = false;
        }
    }
    let stream = futures::stream::unfold(feed, |mut feed| async move {
        loop {
            if let Some(e) = feed.queue.pop_front() {
                return Some((Ok(e), feed));
            }
            if !std::mem::take(&mut feed.first) {
                tokio::time::sleep(feed.state.config.sse_poll).await;
            }
            if let Err(e) = feed.read().await {
                tracing::warn!(run = %feed.run_id, error = %e, "SSE: reading the store failed");
            }
        }
    });
    Ok(Sse::new(stream).keep_alive(KeepAlive::new().interval(keep_alive).text("keep-alive")))
}
