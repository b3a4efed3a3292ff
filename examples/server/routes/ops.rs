//! Operations: `GET /stats` and `GET /health`.

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use cineflow::core::{PageRequest, RunQuery, TaskQuery, TaskSort};
use serde_json::{Value, json};

use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::app::error::{ApiResult, Envelope};
use crate::app::state::AppState;

/// The routes of this module.
pub(crate) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(stats))
        .routes(routes!(health))
        .routes(routes!(crate::app::openapi::serve_document))
}

/// Money per currency.
type Sums = BTreeMap<String, f64>;

fn add(sums: &mut Sums, currency: &str, amount: f64) {
    *sums.entry(currency.to_owned()).or_default() += amount;
}

/// `GET /stats`: tasks by status and by provider (of their last attempt), runs by status, and
/// the estimated cost (at submit) next to the cost the vendors reported, per currency, over
/// every attempt. Reads every task: meant for dashboards, not for tight loops.
#[utoipa::path(get, path = "/stats", tag = "ops", summary = "Tasks by status and provider, runs by status, estimated vs reported cost",
    responses((status = 200, description = "OK", body = Object), (status = 400, description = "Bad input, naming the field", body = Envelope), (status = 401, description = "No or wrong Bearer token", body = Envelope), (status = 404, description = "Not found", body = Envelope)))]
async fn stats(State(state): State<AppState>) -> ApiResult<Json<Value>> {
    let store = state.store();
    let mut by_status: BTreeMap<&'static str, u64> = BTreeMap::new();
    let mut by_provider: BTreeMap<String, u64> = BTreeMap::new();
    let (mut estimated, mut reported) = (Sums::new(), Sums::new());
    let (mut attempts, mut unpriced, mut total) = (0u64, 0u64, 0u64);
    let mut page = 1;
    loop {
        let q = TaskQuery::default()
            .with_sort(TaskSort::CreatedAt)
            .with_page(PageRequest::new(page, PageRequest::MAX_PAGE_SIZE));
        let p = store.list_tasks(&q).await?;
        let n = p.items.len();
        for t in &p.items {
            total += 1;
            *by_status.entry(t.status.as_str()).or_default() += 1;
            if let Some(a) = t.current_attempt() {
                *by_provider.entry(a.provider.to_string()).or_default() += 1;
            }
            for a in &t.attempts {
                attempts += 1;
                let cost = a.cost.as_ref();
                match cost.and_then(|c| c.price.as_ref().zip(c.estimate)) {
                    Some((price, e)) => add(&mut estimated, &price.currency, e),
                    None => unpriced += 1,
                }
                if let Some((price, r)) = cost.and_then(|c| c.price.as_ref().zip(c.reported_cost)) {
                    add(&mut reported, &price.currency, r);
                }
            }
        }
        if n == 0 || u64::from(page) * u64::from(PageRequest::MAX_PAGE_SIZE) >= p.total {
            break;
        }
        page += 1;
    }
    let mut runs: BTreeMap<&'static str, u64> = BTreeMap::new();
    for s in cineflow::core::RunStatus::ALL {
        let q = RunQuery::default()
            .with_status(s)
            .with_page(PageRequest::new(1, 1));
        runs.insert(s.as_str(), store.list_runs(&q).await?.total);
    }
    Ok(Json(json!({
        "tasks": { "total": total, "by_status": by_status, "by_provider": by_provider },
        "runs": { "by_status": runs },
        "cost": {
            "attempts": attempts,
            "unpriced_attempts": unpriced,
            "estimated": estimated,
            "reported": reported,
        },
    })))
}

/// `GET /health`: the store (a read), the sink's folder (writable), and each provider's
/// breaker and jobs in flight. 503 when the store or the sink is not usable.
#[utoipa::path(get, path = "/health", tag = "ops", summary = "The store, the sink and each provider's breaker",
    responses((status = 200, description = "Healthy", body = Object), (status = 400, description = "Bad input, naming the field", body = Envelope), (status = 401, description = "No or wrong Bearer token", body = Envelope), (status = 404, description = "Not found", body = Envelope), (status = 503, description = "The store or the sink is not usable", body = Object)))]
async fn health(State(state): State<AppState>) -> (StatusCode, Json<Value>) {
    let store = match state.store().list_runs(&RunQuery::default()).await {
        Ok(_) => json!({"ok": true}),
        Err(e) => json!({"ok": false, "error": e.to_string()}),
    };
    let dir = &state.config.output_dir;
    let sink = match tokio::fs::create_dir_all(dir).await {
        Ok(()) => match tokio::fs::metadata(dir).await {
            Ok(m) if !m.permissions().readonly() => json!({"ok": true}),
            Ok(_) => json!({"ok": false, "error": "the output folder is read-only"}),
            Err(e) => json!({"ok": false, "error": e.to_string()}),
        },
        Err(e) => json!({"ok": false, "error": e.to_string()}),
    };
    let router = state.orch.router();
    let cfg = router.config();
    let mut providers = BTreeMap::new();
    for m in cfg.models.values() {
        for r in &m.routes {
            if router.provider_by_id(&r.provider).is_some() {
                providers.insert(
                    r.provider.to_string(),
                    json!({
                        "enabled": cfg.providers.get(&r.provider).is_none_or(|s| s.enabled),
                        "breaker": if router.is_open(&r.provider) { "open" } else { "closed" },
                        "in_flight": router.in_flight(&r.provider),
                    }),
                );
            }
        }
    }
    let ok = store["ok"] == true && sink["ok"] == true;
    let status = if ok {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (
        status,
        Json(json!({
            "status": if ok { "ok" } else { "degraded" },
            "store": store,
            "sink": sink,
            "providers": providers,
            "runs_tasks": state.config.run_tasks,
        })),
    )
}
