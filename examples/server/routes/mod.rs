//! Every route under `/api/v1`.

use axum::Json;
use axum::http::StatusCode;
use serde_json::{Value, json};
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::app::error::{ApiError, Envelope};
use crate::app::input::JsonObject;
use crate::app::openapi::ApiDoc;
use crate::app::state::AppState;

pub(crate) mod callbacks;
mod catalog;
mod events;
mod ops;
mod runs;
mod storyboards;

/// The `/api/v1` routes and their OpenAPI document (authentication is layered on by the
/// caller). Every route is registered from its `#[utoipa::path]` annotation.
pub(crate) fn api() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .merge(storyboards::routes())
        .merge(runs::routes())
        .merge(catalog::routes())
        .merge(events::routes())
        .merge(ops::routes())
        .routes(routes!(client_event))
}

/// What an unknown path under `/api/v1` gets: the 404 envelope.
pub(crate) async fn no_such_route() -> ApiError {
    ApiError {
        status: StatusCode::NOT_FOUND,
        code: "not_found",
        message: "no such route".into(),
        details: json!({}),
    }
}

/// `POST /client-events`: a console's telemetry event (a JSON object), logged by its `type`
/// (or `event`) name; its content is not logged (it may carry user text).
#[utoipa::path(post, path = "/client-events", tag = "ops", summary = "A console's telemetry event (a JSON object), logged by name",
    responses((status = 202, description = "Accepted", body = Object), (status = 400, description = "Bad input, naming the field", body = Envelope), (status = 401, description = "No or wrong Bearer token", body = Envelope), (status = 404, description = "Not found", body = Envelope)))]
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
