//! The server's building blocks, shared by `main.rs` and `tests/server.rs` (one copy of the
//! code): settings, state, errors, authentication and the routes, assembled by [`build_app`].

use std::future::Future;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::{HeaderName, HeaderValue, Method, header};
use axum::middleware;
use tokio::net::TcpListener;
use tower_http::cors::{AllowOrigin, CorsLayer};
use tower_http::services::ServeDir;

pub(crate) mod auth;
pub(crate) mod config;
pub(crate) mod error;
pub(crate) mod input;
pub(crate) mod openapi;
pub(crate) mod providers;
pub(crate) mod retention;
pub(crate) mod routes;
pub(crate) mod state;
pub(crate) mod views;

use config::ServerConfig;
use state::AppState;

/// The whole application: `/api/v1/…` behind Bearer authentication, uploaded start images
/// under `/uploads/…` (server-chosen random names), and a body limit on every request.
pub(crate) fn build_app(state: AppState) -> Router {
    let config = state.config.clone();
    let (api, _document) = routes::api().split_for_parts();
    // Vendor callbacks carry their own proof (the attempt's token, a signature), never the
    // Bearer token: merged after the authentication layer (they read at most
    // `MAX_CALLBACK_BYTES` of a body).
    let (callbacks, _document) = routes::callbacks::routes().split_for_parts();
    let api = api
        .fallback(routes::no_such_route)
        .layer(middleware::from_fn_with_state(
            state.clone(),
            auth::require_bearer,
        ))
        .merge(callbacks);
    let app = Router::new()
        .nest("/api/v1", api)
        .nest_service("/uploads", ServeDir::new(&config.upload_dir))
        .layer(DefaultBodyLimit::max(config.max_upload_bytes));
    match cors(&config.cors_origins) {
        Some(layer) => app.layer(layer),
        None => app,
    }
    .with_state(state)
}

/// CORS for the configured browser origins (outermost, so preflights never meet the token
/// check); `None` without any.
fn cors(origins: &[String]) -> Option<CorsLayer> {
    if origins.is_empty() {
        return None;
    }
    let allow = if origins.iter().any(|o| o == "*") {
        AllowOrigin::any()
    } else {
        AllowOrigin::list(origins.iter().filter_map(|o| HeaderValue::from_str(o).ok()))
    };
    Some(
        CorsLayer::new()
            .allow_origin(allow)
            .allow_methods([Method::GET, Method::POST, Method::PATCH, Method::OPTIONS])
            .allow_headers([
                header::AUTHORIZATION,
                header::CONTENT_TYPE,
                HeaderName::from_static("last-event-id"),
            ]),
    )
}

/// Binds `config.addr`, refusing a non-loopback address without a token unless told.
///
/// # Errors
/// The refusal, or the bind error.
pub(crate) async fn bind(config: &ServerConfig) -> Result<TcpListener, String> {
    config.check_bind(config.addr)?;
    TcpListener::bind(config.addr)
        .await
        .map_err(|e| format!("binding {}: {e}", config.addr))
}

/// Serves `state` on `listener` until `shutdown` completes.
///
/// # Errors
/// An I/O error of the listener.
pub(crate) async fn serve(
    listener: TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, build_app(state))
        .with_graceful_shutdown(shutdown)
        .await
}
