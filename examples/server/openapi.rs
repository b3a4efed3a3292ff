//! The OpenAPI document, generated from the handlers' `#[utoipa::path]` annotations: every
//! route is registered from its annotation (`utoipa_axum::routes!`), so the routes and the
//! document cannot disagree. Served at `GET /api/v1/openapi.json`.

use axum::Json;
use serde::Deserialize;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{IntoParams, Modify, OpenApi};

/// The document's header: title, the `/api/v1` server, Bearer security, tags.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "cineflow server",
        description = "CineFlow's REST API (/api/v1) served by the cineflow library, plus cancel, \
                       live progress (SSE), stats and health. page_size goes up to 500 (CineFlow's \
                       console asks for 200; CineFlow's draft said 100)."
    ),
    servers((url = "/api/v1")),
    modifiers(&Bearer),
    security(("bearer" = [])),
    tags(
        (name = "storyboards"), (name = "segments"), (name = "runs"), (name = "tasks"),
        (name = "models"), (name = "providers"), (name = "admin"), (name = "ops"),
        (name = "callbacks")
    )
)]
pub(crate) struct ApiDoc;

/// Adds the `bearer` security scheme.
struct Bearer;

impl Modify for Bearer {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

/// The query of every list: read by `input::Params`, described here for the document.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(
    dead_code,
    reason = "describes the query `input::Params` reads, for the document"
)]
pub(crate) struct ListQuery {
    /// 1-based page. Default 1.
    page: Option<u32>,
    /// Items per page, 1..=500. Default 20.
    page_size: Option<u32>,
    /// Sort key (each list names its own; an unknown key is a 400).
    sort: Option<String>,
    /// `asc` or `desc`.
    order: Option<String>,
}

/// The document of every route under `/api/v1`.
pub(crate) fn document() -> utoipa::openapi::OpenApi {
    crate::app::routes::api()
        .merge(crate::app::routes::callbacks::routes())
        .into_openapi()
}

/// `GET /openapi.json`: this document.
#[utoipa::path(get, path = "/openapi.json", tag = "ops",
    responses((status = 200, description = "The OpenAPI 3.1 document", body = Object)))]
pub(crate) async fn serve_document() -> Json<utoipa::openapi::OpenApi> {
    Json(document())
}
