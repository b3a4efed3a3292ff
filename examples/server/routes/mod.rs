//! Every route under `/api/v1`.

use axum::Json;
use axum::Router;
use axum::http::StatusCode;
use axum::routing::post;
use serde_json::{Value, json};

use crate::app::error::ApiError;
use crate::app::input::JsonObject;
use crate::app::state::AppState;

mod catalog;
mod events;
mod ops;
mod runs;
mod storyboards;

/// The `/api/v1` routes (authentication is layered on by the caller).
pub(crate) fn api() -> Router<AppState> {
    Router::new()
        .merge(storyboards::routes())
        .merge(runs::routes())
        .merge(catalog::routes())
        .merge(events::routes())
        .merge(ops::routes())
        .route("/client-events", post(client_event))
        .fallback(|| async {
            ApiError {
                status: StatusCode::NOT_FOUND,
                code: "not_found",
                message: "no such route".into(),
                details: json!({}),
            }
        })
}

/// `POST /client-events`: a console's telemetry event (a JSON object), logged by its `type`
/// (or `event`) name; its content is not logged (it may carry user text).
async fn client_event(JsonObject(body): JsonObject) -> (StatusCode, Json<Value>) {
    let name: String = ["type", "event", "name"]
        .iter()
        .find_map(|k| body.get(*k).and_then(Value::as_str))
        .unwrap_or("unnamed")
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
        .take(64)
        .collect();
    tracing::info!(event = %name, fields = body.len(), "client event");
    (
        StatusCode::ACCEPTED,
        Json(json!({ "accepted": true, "event": name })),
    )
}
