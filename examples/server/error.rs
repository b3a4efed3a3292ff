//! The error envelope `{code, message, details}` with CineFlow's codes.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use cineflow::core::{Error, ErrorKind};
use serde::Serialize;
use serde_json::{Value, json};
use utoipa::ToSchema;

/// The error body of every failed request.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct Envelope {
    /// CineFlow's code: `validation_error`, `unauthorized`, `not_found`, `conflict`,
    /// `no_provider`, `server_error`.
    code: &'static str,
    /// What went wrong, for people.
    message: String,
    /// An object; for bad input `field` names the offending field.
    #[schema(value_type = Object)]
    details: Value,
}

/// An API error: its status, CineFlow's code, a message and details (always an object).
#[derive(Debug)]
pub(crate) struct ApiError {
    pub(crate) status: StatusCode,
    pub(crate) code: &'static str,
    pub(crate) message: String,
    pub(crate) details: Value,
}

/// A handler result.
pub(crate) type ApiResult<T> = Result<T, ApiError>;

impl ApiError {
    /// 400 `validation_error` naming `field`.
    pub(crate) fn invalid(field: &str, reason: impl Into<String>) -> Self {
        let reason = reason.into();
        Self {
            status: StatusCode::BAD_REQUEST,
            code: "validation_error",
            message: format!("{field}: {reason}"),
            details: json!({ "field": field, "reason": reason }),
        }
    }

    /// 404 `not_found`.
    pub(crate) fn not_found(what: &str, id: impl std::fmt::Display) -> Self {
        Self {
            status: StatusCode::NOT_FOUND,
            code: "not_found",
            message: format!("{what} {id} not found"),
            details: json!({ "entity": what, "id": id.to_string() }),
        }
    }

    /// 401 `unauthorized`.
    pub(crate) fn unauthorized() -> Self {
        Self {
            status: StatusCode::UNAUTHORIZED,
            code: "unauthorized",
            message: "missing or invalid Bearer token".into(),
            details: json!({}),
        }
    }

    /// 500 `server_error`, with the cause logged (not sent).
    pub(crate) fn internal(what: &str, cause: impl std::fmt::Display) -> Self {
        tracing::error!(error = %cause, "{what}");
        Self {
            status: StatusCode::INTERNAL_SERVER_ERROR,
            code: "server_error",
            message: format!("{what} failed"),
            details: json!({}),
        }
    }
}

impl From<Error> for ApiError {
    fn from(e: Error) -> Self {
        let message = e.to_string();
        let (status, code, details) = match (&e, e.kind()) {
            (Error::InvalidStoryboard { violations }, _) => (
                StatusCode::BAD_REQUEST,
                "validation_error",
                json!({ "violations": violations.iter().map(|v| json!({"path": v.path, "message": v.message})).collect::<Vec<_>>() }),
            ),
            (Error::InvalidInput { field, reason }, _) => (
                StatusCode::BAD_REQUEST,
                "validation_error",
                json!({ "field": field, "reason": reason }),
            ),
            (Error::InvalidRange { input, bad_parts }, _) => (
                StatusCode::BAD_REQUEST,
                "validation_error",
                json!({ "field": "range", "input": input, "bad_parts": bad_parts }),
            ),
            (_, ErrorKind::InvalidInput) => {
                (StatusCode::BAD_REQUEST, "validation_error", json!({}))
            }
            (Error::NotFound { entity, id }, _) => (
                StatusCode::NOT_FOUND,
                "not_found",
                json!({ "entity": entity, "id": id }),
            ),
            (Error::IllegalTransition { entity, from, to }, _) => (
                StatusCode::CONFLICT,
                "conflict",
                json!({ "entity": entity, "from": from, "to": to }),
            ),
            (_, ErrorKind::Conflict | ErrorKind::LeaseLost) => {
                (StatusCode::CONFLICT, "conflict", json!({}))
            }
            (Error::NoProvider { model, reason }, _) => (
                StatusCode::BAD_REQUEST,
                "no_provider",
                json!({ "model": model, "reason": reason }),
            ),
            _ => return ApiError::internal("request", e),
        };
        Self {
            status,
            code,
            message,
            details,
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = Envelope {
            code: self.code,
            message: self.message,
            details: self.details,
        };
        let mut response = (self.status, axum::Json(body)).into_response();
        if self.status == StatusCode::UNAUTHORIZED {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        response
    }
}
