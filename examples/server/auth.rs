//! Bearer authentication: the configured token, compared in constant time.

use axum::extract::{Request, State};
use axum::http::header;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use subtle::ConstantTimeEq;

use crate::app::error::ApiError;
use crate::app::state::AppState;

/// Lets a request through when no token is configured or it carries
/// `Authorization: Bearer <token>`; otherwise 401 with `WWW-Authenticate: Bearer`. The token is
/// never logged.
pub(crate) async fn require_bearer(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Response {
    let Some(token) = &state.config.token else {
        return next.run(request).await;
    };
    let sent = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            let (scheme, rest) = v.split_once(' ')?;
            scheme.eq_ignore_ascii_case("bearer").then(|| rest.trim())
        });
    match sent {
        Some(s) if bool::from(s.as_bytes().ct_eq(token.expose())) => next.run(request).await,
        _ => ApiError::unauthorized().into_response(),
    }
}
