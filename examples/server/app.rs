//! The server's building blocks, shared by `main.rs` and `tests/server.rs` (one copy of the
//! code): settings, state, errors, authentication and the routes, assembled by [`build_app`].

use std::future::Future;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::middleware;
use cineflow::core::{ModelId, RouterConfig};
use tokio::net::TcpListener;
use tower_http::services::ServeDir;

pub(crate) mod auth;
pub(crate) mod config;
pub(crate) mod error;
pub(crate) mod input;
pub(crate) mod openapi;
pub(crate) mod routes;
pub(crate) mod state;
pub(crate) mod views;

use config::ServerConfig;
use state::AppState;

/// The logical models CineFlow's clients name, and the living model each runs on by default.
pub(crate) const CINEFLOW_ALIASES: [(&str, &str); 2] =
    [("sora2", "seedance-2"), ("sora2pro", "seedance-2")];

/// The default catalog (living models and CineFlow's retired Sora models) with `sora2` and
/// `sora2pro` as explicit aliases onto Seedance 2.0, so CineFlow's console and storyboards keep
/// working. A deployment drops the aliases with its own router configuration.
pub(crate) fn default_catalog() -> RouterConfig {
    let mut cfg = RouterConfig::default_catalog();
    for (from, to) in CINEFLOW_ALIASES {
        if let (Ok(from), Ok(to)) = (ModelId::new(from), ModelId::new(to)) {
            cfg.aliases.insert(from, to);
        }
    }
    cfg
}

/// The whole application: `/api/v1/…` behind Bearer authentication, uploaded start images
/// under `/uploads/…` (server-chosen random names), and a body limit on every request.
pub(crate) fn build_app(state: AppState) -> Router {
    let config = state.config.clone();
    let (api, _document) = routes::api().split_for_parts();
    let api = api
        .fallback(routes::no_such_route)
        .layer(middleware::from_fn_with_state(
            state.clone(),
            auth::require_bearer,
        ));
    Router::new()
        .nest("/api/v1", api)
        .nest_service("/uploads", ServeDir::new(&config.upload_dir))
        .layer(DefaultBodyLimit::max(config.max_upload_bytes))
        .with_state(state)
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
