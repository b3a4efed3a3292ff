//! `POST /callbacks/{provider}`: vendor callbacks (webhooks), outside Bearer authentication
//! (vendors do not have the token): each is authenticated by the attempt's secret token in its
//! URL and, for vendors that sign, by the signature (`Orchestrator::handle_callback`).
//!
//! Answers each vendor the way it expects: the handshake's answer (MiniMax's
//! `{"challenge": …}`), `200` for any verified callback (late and duplicate ones too, so the
//! vendor stops retrying), or the rejection's status (401 bad token or signature, 404 unknown
//! provider or attempt, 400 malformed, 413 too large, 503 when the store cannot be read, so the
//! vendor retries) with the error envelope. Bodies are read up to [`MAX_CALLBACK_BYTES`].

use axum::body::Body;
use axum::extract::{Path, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use cineflow::core::callback::{CallbackRejection, CallbackRequest, RejectionKind};
use serde_json::json;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::app::error::{ApiError, Envelope};
use crate::app::state::AppState;

/// The largest callback body read (vendors send a task object, well under this; Luma's
/// passthrough payload is at most 1 MB).
pub(crate) const MAX_CALLBACK_BYTES: usize = 2 << 20;

/// The routes of this module (mounted outside Bearer authentication).
pub(crate) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(callback))
}

/// `POST /callbacks/{provider}`: a vendor's callback for one attempt
/// (`?cf_attempt=…&cf_token=…`, as the orchestrator put it in the attempt's callback URL).
#[utoipa::path(post, path = "/callbacks/{provider}", tag = "callbacks",
    summary = "A vendor's callback (webhook) for one attempt: authenticated by the attempt's token and the vendor's signature, not by Bearer",
    security(()),
    params(("provider" = String, Path, description = "The provider id the callback URL names")),
    request_body(content = Object, description = "The vendor's body, as it sends it (raw bytes are verified)"),
    responses(
        (status = 200, description = "Verified: acknowledged, or the handshake's answer (MiniMax's challenge)", body = Object),
        (status = 400, description = "Malformed: the error names the field", body = Envelope),
        (status = 401, description = "Missing or wrong token, bad signature or stale timestamp", body = Envelope),
        (status = 404, description = "Unknown provider or attempt, or a provider taking no callbacks", body = Envelope),
        (status = 405, description = "Not a POST", body = Envelope),
        (status = 413, description = "Body over the limit", body = Envelope),
        (status = 503, description = "The store cannot be read: try again", body = Envelope)))]
async fn callback(
    State(state): State<AppState>,
    Path(provider): Path<String>,
    request: Request,
) -> Response {
    let (parts, body) = request.into_parts();
    let url = parts
        .uri
        .path_and_query()
        .map_or_else(|| parts.uri.path().to_owned(), |pq| pq.as_str().to_owned());
    let body = match axum::body::to_bytes(Body::new(body), MAX_CALLBACK_BYTES).await {
        Ok(b) => b,
        Err(_) => {
            return rejected(
                &provider,
                &CallbackRejection::new(
                    RejectionKind::TooLarge,
                    format!("the body is over {MAX_CALLBACK_BYTES} bytes or was cut short"),
                ),
            );
        }
    };
    let mut req = CallbackRequest::new(parts.method.as_str(), url).with_body(body);
    for (name, value) in &parts.headers {
        req = req.with_header(
            name.as_str(),
            String::from_utf8_lossy(value.as_bytes()).into_owned(),
        );
    }
    match state.orch.handle_callback(&provider, &req).await {
        Ok(outcome) => {
            tracing::debug!(%provider, attempt = %outcome.attempt, effect = ?outcome.effect, "callback accepted");
            let status = StatusCode::from_u16(outcome.reply.status).unwrap_or(StatusCode::OK);
            let mut response = (status, outcome.reply.body).into_response();
            if let Some(ct) = outcome.reply.content_type {
                response
                    .headers_mut()
                    .insert(header::CONTENT_TYPE, HeaderValue::from_static(ct));
            }
            response
        }
        Err(r) => rejected(&provider, &r),
    }
}

/// The rejection as the error envelope, logged without the URL (its query holds the token).
fn rejected(provider: &str, r: &CallbackRejection) -> Response {
    tracing::warn!(%provider, kind = r.kind().as_str(), reason = r.reason(), "callback rejected");
    ApiError {
        status: StatusCode::from_u16(r.http_status()).unwrap_or(StatusCode::BAD_REQUEST),
        code: r.kind().as_str(),
        message: r.reason().to_owned(),
        details: json!({}),
    }
    .into_response()
}
