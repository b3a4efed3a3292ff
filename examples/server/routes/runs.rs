//! Runs and their tasks: create, list, detail, metadata, download, retry, cancel.

use axum::Json;
use axum::extract::{Path as UrlPath, Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use cineflow::core::{
    ErrorCode, ModelId, PageRequest, Run, RunId, RunQuery, RunSpec, RunStatus, SegmentRange,
    SortOrder, StoryboardId, Strategy, TaskId, TaskQuery, TaskSort,
};
use serde_json::{Value, json};
use time::OffsetDateTime;
use tower::ServiceExt;
use tower_http::services::ServeFile;

use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::app::error::{ApiError, ApiResult, Envelope};
use crate::app::input::{Fields, JsonObject, Params, id};
use crate::app::openapi::ListQuery;
use crate::app::retention::file_under;
use crate::app::state::AppState;
use crate::app::views;

/// The routes of this module.
pub(crate) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create, list))
        .routes(routes!(detail))
        .routes(routes!(cancel_run))
        .routes(routes!(tasks))
        .routes(routes!(task))
        .routes(routes!(metadata))
        .routes(routes!(download))
        .routes(routes!(retry))
        .routes(routes!(cancel_task))
}

/// The spec a CineFlow `RunCreateRequest` asks for.
fn run_spec(body: &serde_json::Map<String, Value>) -> ApiResult<RunSpec> {
    let sb: StoryboardId = body
        .string("storyboard_id")?
        .ok_or_else(|| ApiError::invalid("storyboard_id", "required"))
        .and_then(|s| id(&s).map_err(|_| ApiError::invalid("storyboard_id", "not an id")))?;
    let model = body
        .string("model_id")?
        .ok_or_else(|| ApiError::invalid("model_id", "required"))?;
    let model = ModelId::new(model).map_err(|e| ApiError::invalid("model_id", e.to_string()))?;
    let mut spec = RunSpec::new(sb, model);
    if let Some(n) = body.u32("gen_count")? {
        spec = spec.with_gen_count(n);
    }
    if let Some(n) = body.u32("concurrency")? {
        spec = spec.with_concurrency(n as usize);
    }
    if let Some(r) = body.string("range")? {
        spec = spec.with_range(SegmentRange::parse(&r)?);
    }
    if let Some(d) = body.bool("dry_run")? {
        spec = spec.with_dry_run(d);
    }
    if let Some(s) = body.parsed::<Strategy>(
        "routing_strategy",
        "default, failover, weighted, cost, latency, quota, manual, priority, least_busy or cheapest",
    )? {
        spec = spec.with_strategy(s);
    }
    if let Some(b) = body.present("budget") {
        spec = spec.with_budget(
            b.as_f64()
                .ok_or_else(|| ApiError::invalid("budget", "expected a number"))?,
        );
    }
    // CineFlow's output modes write into folders a client names; this server writes every
    // video into its own output folder only, so anything but `centralized` is refused.
    match body.string("output_mode")?.as_deref() {
        None | Some("centralized") => {}
        Some(other) => {
            return Err(ApiError::invalid(
                "output_mode",
                format!(
                    "only \"centralized\" is served (got {other:?}): videos go to the server's output folder"
                ),
            ));
        }
    }
    if body.present("output_path").is_some() {
        return Err(ApiError::invalid(
            "output_path",
            "not served: videos go to the server's output folder",
        ));
    }
    // `force` (CineFlow: overwrite existing outputs) is accepted either way: every task writes
    // new files of its own and never overwrites another's.
    body.bool("force")?;
    Ok(spec)
}

/// `POST /runs`: creates the run (and starts it unless this process leaves runs to workers).
#[utoipa::path(post, path = "/runs", tag = "runs", summary = "Create (and start) a run: storyboard_id, model_id, gen_count, concurrency, range, dry_run, routing_strategy, budget",
    responses((status = 201, description = "The run", body = Object), (status = 400, description = "Bad input, naming the field", body = Envelope), (status = 401, description = "No or wrong Bearer token", body = Envelope), (status = 404, description = "Not found", body = Envelope)))]
async fn create(
    State(state): State<AppState>,
    JsonObject(body): JsonObject,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let spec = run_spec(&body)?;
    let run = state.orch.create_run(spec).await?;
    if state.config.run_tasks {
        state.orch.start(run.id).await?;
    }
    let mut v = views::run(&run, &run.counts);
    if run.spec.dry_run
        && let Ok(est) = state.orch.estimate_cost(run.id).await
    {
        v["cost_estimate"] =
            json!({"total": est.total, "priced_tasks": est.priced, "unpriced_tasks": est.unpriced});
    }
    Ok((StatusCode::CREATED, Json(v)))
}

/// A `status` filter of runs: cineflow's names, and CineFlow's `queued` for `pending`.
fn run_status(params: &Params) -> ApiResult<Option<RunStatus>> {
    params
        .str("status")
        .map(|s| match s {
            "queued" => Ok(RunStatus::Pending),
            other => other.parse().map_err(|_| {
                ApiError::invalid(
                    "status",
                    format!("unknown run status {other:?}; one of queued, pending, running, completed, partially_failed, failed, cancelled"),
                )
            }),
        })
        .transpose()
}

/// `GET /runs?page&page_size&sort=created_at&order&status&storyboard_id`.
#[utoipa::path(get, path = "/runs", tag = "runs", summary = "List runs (sort: created_at)", params(ListQuery, ("status" = Option<String>, Query, description = "queued, pending, running, completed, partially_failed, failed, cancelled"), ("storyboard_id" = Option<String>, Query)),
    responses((status = 200, description = "{items, page, page_size, total}", body = Object), (status = 400, description = "Bad input, naming the field", body = Envelope), (status = 401, description = "No or wrong Bearer token", body = Envelope), (status = 404, description = "Not found", body = Envelope)))]
async fn list(State(state): State<AppState>, params: Params) -> ApiResult<Json<Value>> {
    let page = params.page()?;
    params.sort(&["created_at"])?;
    let order = params.order(SortOrder::Desc)?;
    let storyboard_id = params
        .str("storyboard_id")
        .map(|s| id::<StoryboardId>(s).map_err(|_| ApiError::invalid("storyboard_id", "not an id")))
        .transpose()?;
    let mut query = RunQuery::default().with_page(page);
    query.status = run_status(&params)?;
    query.storyboard_id = storyboard_id;
    let body = |r: &Run| views::run(r, &r.counts);
    if order == SortOrder::Desc {
        return Ok(Json(views::page(
            state.store().list_runs(&query).await?,
            body,
        )));
    }
    // The store lists newest first; oldest first is the whole list reversed.
    let mut all = Vec::new();
    let mut n = 1;
    loop {
        let q = query
            .clone()
            .with_page(PageRequest::new(n, PageRequest::MAX_PAGE_SIZE));
        let p = state.store().list_runs(&q).await?;
        let got = p.items.len();
        all.extend(p.items);
        if got == 0 || all.len() as u64 >= p.total {
            break;
        }
        n += 1;
    }
    all.reverse();
    Ok(Json(views::page(page.slice(all), body)))
}

/// `GET /runs/{id}` with live counts.
#[utoipa::path(get, path = "/runs/{id}", tag = "runs", summary = "A run with live counts", params(("id" = String, Path, description = "The run id")),
    responses((status = 200, description = "OK", body = Object), (status = 400, description = "Bad input, naming the field", body = Envelope), (status = 401, description = "No or wrong Bearer token", body = Envelope), (status = 404, description = "Not found", body = Envelope)))]
async fn detail(
    State(state): State<AppState>,
    UrlPath(raw): UrlPath<String>,
) -> ApiResult<Json<Value>> {
    let run = state.store().get_run(id::<RunId>(&raw)?).await?;
    let counts = state.store().run_counts(run.id).await?;
    Ok(Json(views::run(&run, &counts)))
}

/// `POST /runs/{id}/cancel`: every task stops and becomes `cancelled`.
#[utoipa::path(post, path = "/runs/{id}/cancel", tag = "runs", summary = "Cancel a run: every task stops", params(("id" = String, Path, description = "The run id")),
    responses((status = 200, description = "OK", body = Object), (status = 400, description = "Bad input, naming the field", body = Envelope), (status = 401, description = "No or wrong Bearer token", body = Envelope), (status = 404, description = "Not found", body = Envelope)))]
async fn cancel_run(
    State(state): State<AppState>,
    UrlPath(raw): UrlPath<String>,
) -> ApiResult<Json<Value>> {
    let run_id = id::<RunId>(&raw)?;
    state.store().get_run(run_id).await?;
    state.orch.cancel_run(run_id).await?;
    let run = state.store().get_run(run_id).await?;
    let counts = state.store().run_counts(run_id).await?;
    Ok(Json(views::run(&run, &counts)))
}

/// `GET /runs/{id}/tasks?page&page_size&sort=segment_index|created_at&order&status&segment_index&error_code&retryable`.
#[utoipa::path(get, path = "/runs/{id}/tasks", tag = "runs", summary = "A run's tasks (sort: segment_index, created_at)", params(("id" = String, Path, description = "The run id"), ListQuery, ("status" = Option<String>, Query, description = "Comma list: CineFlow statuses (queued, running, completed, failed, download_failed) or cineflow's"), ("segment_index" = Option<u32>, Query), ("error_code" = Option<String>, Query), ("retryable" = Option<bool>, Query)),
    responses((status = 200, description = "{items, page, page_size, total}", body = Object), (status = 400, description = "Bad input, naming the field", body = Envelope), (status = 401, description = "No or wrong Bearer token", body = Envelope), (status = 404, description = "Not found", body = Envelope)))]
async fn tasks(
    State(state): State<AppState>,
    UrlPath(raw): UrlPath<String>,
    params: Params,
) -> ApiResult<Json<Value>> {
    let run_id = id::<RunId>(&raw)?;
    let sort = match params.sort(&["segment_index", "created_at"])? {
        "created_at" => TaskSort::CreatedAt,
        _ => TaskSort::SegmentIndex,
    };
    let mut status = Vec::new();
    for s in params
        .str("status")
        .unwrap_or_default()
        .split(',')
        .filter(|s| !s.is_empty())
    {
        status.extend(views::task_status_filter(s).ok_or_else(|| {
            ApiError::invalid(
                "status",
                format!("unknown task status {s:?}; one of queued, running, completed, failed, download_failed, pending, submitting, downloading, cancelled, interrupted"),
            )
        })?);
    }
    let error_code = params
        .str("error_code")
        .map(|c| {
            c.parse::<ErrorCode>().map_err(|_| {
                ApiError::invalid(
                    "error_code",
                    format!(
                        "unknown error code {c:?}; one of {}",
                        ErrorCode::ALL.map(ErrorCode::as_str).join(", ")
                    ),
                )
            })
        })
        .transpose()?;
    let mut query = TaskQuery::default()
        .with_run_id(run_id)
        .with_status(status)
        .with_sort(sort)
        .with_order(params.order(SortOrder::Asc)?)
        .with_page(params.page()?);
    query.retryable = params.bool("retryable")?;
    query.error_code = error_code;
    query.segment_index = params.parse("segment_index", "a segment index (integer >= 1)")?;
    let p = state.store().list_tasks(&query).await?;
    if p.total == 0 {
        // No task: a run without any (none exists) or an unknown run (404).
        state.store().get_run(run_id).await?;
    }
    Ok(Json(views::page(p, views::task)))
}

/// `GET /tasks/{id}`.
#[utoipa::path(get, path = "/tasks/{id}", tag = "tasks", summary = "A task", params(("id" = String, Path, description = "The task id")),
    responses((status = 200, description = "OK", body = Object), (status = 400, description = "Bad input, naming the field", body = Envelope), (status = 401, description = "No or wrong Bearer token", body = Envelope), (status = 404, description = "Not found", body = Envelope)))]
async fn task(
    State(state): State<AppState>,
    UrlPath(raw): UrlPath<String>,
) -> ApiResult<Json<Value>> {
    let t = state.store().get_task(id::<TaskId>(&raw)?).await?;
    Ok(Json(views::task(&t)))
}

/// `GET /tasks/{id}/metadata`: the stored sidecar, else the sidecar as it would be written now
/// (dry runs, failed tasks).
#[utoipa::path(get, path = "/tasks/{id}/metadata", tag = "tasks", summary = "A task's sidecar JSON", params(("id" = String, Path, description = "The task id")),
    responses((status = 200, description = "OK", body = Object), (status = 400, description = "Bad input, naming the field", body = Envelope), (status = 401, description = "No or wrong Bearer token", body = Envelope), (status = 404, description = "Not found", body = Envelope)))]
async fn metadata(
    State(state): State<AppState>,
    UrlPath(raw): UrlPath<String>,
) -> ApiResult<Json<Value>> {
    let t = state.store().get_task(id::<TaskId>(&raw)?).await?;
    if let Some(path) = t.artifact.as_ref().and_then(|a| a.sidecar.as_deref())
        && let Some(file) = file_under(&state.config.output_dir, path).await
    {
        let bytes = tokio::fs::read(&file)
            .await
            .map_err(|e| ApiError::internal("reading the sidecar", e))?;
        if let Ok(v) = serde_json::from_slice::<Value>(&bytes) {
            return Ok(Json(v));
        }
    }
    Ok(Json(cineflow::core::sink::sidecar(&t)))
}

/// `GET /tasks/{id}/download`: the stored video (with `Range` support), else a redirect to the
/// vendor's URL while it is valid, else 404.
#[utoipa::path(get, path = "/tasks/{id}/download", tag = "tasks", summary = "A task's video (Range supported), else a redirect to the vendor's URL, else 404", params(("id" = String, Path, description = "The task id")),
    responses((status = 200, description = "The video", body = Object), (status = 400, description = "Bad input, naming the field", body = Envelope), (status = 401, description = "No or wrong Bearer token", body = Envelope), (status = 404, description = "Not found", body = Envelope), (status = 206, description = "Part of the video"), (status = 307, description = "The vendor's still valid URL")))]
async fn download(
    State(state): State<AppState>,
    UrlPath(raw): UrlPath<String>,
    req: Request,
) -> ApiResult<Response> {
    let t = state.store().get_task(id::<TaskId>(&raw)?).await?;
    if let Some(a) = &t.artifact
        && let Some(file) = file_under(&state.config.output_dir, &a.location).await
    {
        let served = ServeFile::new(file).oneshot(req).await;
        return match served {
            Ok(r) => Ok(r.into_response()),
            Err(e) => Err(ApiError::internal("serving the video", e)),
        };
    }
    let now = OffsetDateTime::now_utc();
    let vendor = t
        .attempts
        .iter()
        .rev()
        .filter_map(|a| a.asset.as_ref())
        .find(|asset| {
            (asset.url.starts_with("https://") || asset.url.starts_with("http://"))
                && asset.expires_at.is_none_or(|e| e > now)
        });
    if let Some(asset) = vendor {
        return Ok(Redirect::to(asset.url.as_str()).into_response());
    }
    Err(ApiError {
        status: StatusCode::NOT_FOUND,
        code: "not_found",
        message: format!(
            "task {} has no video to download (status {})",
            t.id, t.status
        ),
        details: json!({"entity": "video", "id": t.id, "status": t.status}),
    })
}

/// `POST /tasks/{id}/retry`.
#[utoipa::path(post, path = "/tasks/{id}/retry", tag = "tasks", summary = "Retry a task that ended without a video", params(("id" = String, Path, description = "The task id")),
    responses((status = 200, description = "OK", body = Object), (status = 400, description = "Bad input, naming the field", body = Envelope), (status = 401, description = "No or wrong Bearer token", body = Envelope), (status = 404, description = "Not found", body = Envelope), (status = 409, description = "The task is not retryable (e.g. completed)", body = Envelope)))]
async fn retry(
    State(state): State<AppState>,
    UrlPath(raw): UrlPath<String>,
) -> ApiResult<Json<Value>> {
    let task_id = id::<TaskId>(&raw)?;
    state.orch.retry_task(task_id).await?;
    let t = state.store().get_task(task_id).await?;
    Ok(Json(views::task(&t)))
}

/// `POST /tasks/{id}/cancel`.
#[utoipa::path(post, path = "/tasks/{id}/cancel", tag = "tasks", summary = "Cancel a task", params(("id" = String, Path, description = "The task id")),
    responses((status = 200, description = "OK", body = Object), (status = 400, description = "Bad input, naming the field", body = Envelope), (status = 401, description = "No or wrong Bearer token", body = Envelope), (status = 404, description = "Not found", body = Envelope)))]
async fn cancel_task(
    State(state): State<AppState>,
    UrlPath(raw): UrlPath<String>,
) -> ApiResult<Json<Value>> {
    let task_id = id::<TaskId>(&raw)?;
    state.store().get_task(task_id).await?;
    state.orch.cancel_task(task_id).await?;
    let t = state.store().get_task(task_id).await?;
    Ok(Json(views::task(&t)))
}
