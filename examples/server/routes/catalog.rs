//! Logical models and providers, and the admin routes that edit the live router.

use std::collections::BTreeSet;

use axum::Json;
use axum::extract::{Path as UrlPath, State};
use cineflow::core::{Durations, ModelId, ProviderId, RouterConfig, SortOrder};
use serde_json::{Value, json};

use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::app::error::{ApiError, ApiResult, Envelope};
use crate::app::input::{Fields, JsonObject, Params};
use crate::app::openapi::ListQuery;
use crate::app::state::AppState;
use crate::app::views;

/// The routes of this module.
pub(crate) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_models))
        .routes(routes!(model))
        .routes(routes!(list_models_admin))
        .routes(routes!(model_admin, patch_model))
        .routes(routes!(patch_model_provider))
        .routes(routes!(list_providers))
        .routes(routes!(provider))
        .routes(routes!(capabilities))
        .routes(routes!(list_providers_admin))
        .routes(routes!(provider_admin, patch_provider))
}

/// Every logical model id: the catalog's models and its aliases.
fn model_ids(cfg: &RouterConfig) -> BTreeSet<ModelId> {
    cfg.models
        .keys()
        .chain(cfg.aliases.keys())
        .cloned()
        .collect()
}

/// A model (`admin`: with its provider map and routes).
fn model_json(state: &AppState, cfg: &RouterConfig, id: &ModelId, admin: bool) -> Value {
    let router = state.orch.router();
    let alias_of = cfg.aliases.get(id);
    let own = cfg.models.get(alias_of.unwrap_or(id));
    let enabled = own.is_some_and(|m| m.enabled);
    let retired_on = cfg.retirement(id).map(|d| d.to_string());
    let available = router.resolve_model(id).is_ok_and(|m| {
        cfg.models.get(&m).is_some_and(|mc| {
            mc.enabled
                && mc
                    .routes
                    .iter()
                    .any(|r| r.enabled && router.provider_by_id(&r.provider).is_some())
        })
    });
    let description = match (alias_of, &retired_on) {
        (Some(t), _) => format!("alias: runs on {t}"),
        (None, Some(d)) => format!("retired on {d}"),
        (None, None) => format!("logical model {id}"),
    };
    let mut v = json!({
        "id": id,
        "display_name": id,
        "description": description,
        "enabled": enabled,
        "alias_of": alias_of,
        "retired_on": retired_on,
        "available": available,
    });
    if admin {
        let routes = own.map(|m| m.routes.as_slice()).unwrap_or_default();
        v["provider_map"] = routes
            .iter()
            .map(|r| (r.provider.to_string(), json!(r.vendor_models)))
            .collect::<serde_json::Map<_, _>>()
            .into();
        v["routes"] = json!(routes);
    }
    v
}

/// A page of models, filtered by `enabled`, sorted by `id`.
fn models_page(state: &AppState, params: &Params, admin: bool) -> ApiResult<Value> {
    let page = params.page()?;
    params.sort(&["id"])?;
    let order = params.order(SortOrder::Asc)?;
    let enabled = params.bool("enabled")?;
    let cfg = state.orch.router().config();
    let mut items: Vec<Value> = model_ids(&cfg)
        .iter()
        .map(|id| model_json(state, &cfg, id, admin))
        .filter(|m| enabled.is_none_or(|e| m["enabled"] == e))
        .collect();
    if order == SortOrder::Desc {
        items.reverse();
    }
    Ok(views::page(page.slice(items), Clone::clone))
}

/// A model id of the catalog, else 404.
fn known_model(cfg: &RouterConfig, raw: &str) -> ApiResult<ModelId> {
    ModelId::new(raw)
        .ok()
        .filter(|id| model_ids(cfg).contains(id))
        .ok_or_else(|| ApiError::not_found("model", raw))
}

#[utoipa::path(get, path = "/models", tag = "models", summary = "Logical models, with the aliases (sort: id)", params(ListQuery, ("enabled" = Option<bool>, Query)),
    responses((status = 200, description = "{items, page, page_size, total}", body = Object), (status = 400, description = "Bad input, naming the field", body = Envelope), (status = 401, description = "No or wrong Bearer token", body = Envelope), (status = 404, description = "Not found", body = Envelope)))]
async fn list_models(State(state): State<AppState>, params: Params) -> ApiResult<Json<Value>> {
    models_page(&state, &params, false).map(Json)
}

#[utoipa::path(get, path = "/admin/models", tag = "admin", summary = "Logical models with their provider maps and routes", params(ListQuery, ("enabled" = Option<bool>, Query)),
    responses((status = 200, description = "{items, page, page_size, total}", body = Object), (status = 400, description = "Bad input, naming the field", body = Envelope), (status = 401, description = "No or wrong Bearer token", body = Envelope), (status = 404, description = "Not found", body = Envelope)))]
async fn list_models_admin(
    State(state): State<AppState>,
    params: Params,
) -> ApiResult<Json<Value>> {
    models_page(&state, &params, true).map(Json)
}

#[utoipa::path(get, path = "/models/{id}", tag = "models", summary = "A logical model", params(("id" = String, Path, description = "The model id")),
    responses((status = 200, description = "OK", body = Object), (status = 400, description = "Bad input, naming the field", body = Envelope), (status = 401, description = "No or wrong Bearer token", body = Envelope), (status = 404, description = "Not found", body = Envelope)))]
async fn model(
    State(state): State<AppState>,
    UrlPath(raw): UrlPath<String>,
) -> ApiResult<Json<Value>> {
    let cfg = state.orch.router().config();
    let id = known_model(&cfg, &raw)?;
    Ok(Json(model_json(&state, &cfg, &id, false)))
}

#[utoipa::path(get, path = "/admin/models/{id}", tag = "admin", summary = "A logical model with its provider map and routes", params(("id" = String, Path, description = "The model id")),
    responses((status = 200, description = "OK", body = Object), (status = 400, description = "Bad input, naming the field", body = Envelope), (status = 401, description = "No or wrong Bearer token", body = Envelope), (status = 404, description = "Not found", body = Envelope)))]
async fn model_admin(
    State(state): State<AppState>,
    UrlPath(raw): UrlPath<String>,
) -> ApiResult<Json<Value>> {
    let cfg = state.orch.router().config();
    let id = known_model(&cfg, &raw)?;
    Ok(Json(model_json(&state, &cfg, &id, true)))
}

/// `PATCH /admin/models/{id}` `{enabled}`: enables or disables the model (an alias: its
/// target) in the live router; runs in flight finish.
#[utoipa::path(patch, path = "/admin/models/{id}", tag = "admin", summary = "Enable or disable a model (an alias: its target) in the live router", params(("id" = String, Path, description = "The model id")),
    responses((status = 200, description = "OK", body = Object), (status = 400, description = "Bad input, naming the field", body = Envelope), (status = 401, description = "No or wrong Bearer token", body = Envelope), (status = 404, description = "Not found", body = Envelope)))]
async fn patch_model(
    State(state): State<AppState>,
    UrlPath(raw): UrlPath<String>,
    JsonObject(body): JsonObject,
) -> ApiResult<Json<Value>> {
    let cfg = state.orch.router().config();
    let id = known_model(&cfg, &raw)?;
    let enabled = body.bool("enabled")?;
    if let Some(e) = enabled {
        let target = cfg.aliases.get(&id).unwrap_or(&id);
        state.orch.router().set_model_enabled(target, e)?;
    }
    let cfg = state.orch.router().config();
    Ok(Json(model_json(&state, &cfg, &id, true)))
}

/// The registered providers, by id.
fn provider_ids(state: &AppState, cfg: &RouterConfig) -> BTreeSet<ProviderId> {
    cfg.models
        .values()
        .flat_map(|m| m.routes.iter().map(|r| r.provider.clone()))
        .chain(cfg.providers.keys().cloned())
        .filter(|p| state.orch.router().provider_by_id(p).is_some())
        .collect()
}

/// A registered provider id, else 404.
fn known_provider(state: &AppState, cfg: &RouterConfig, raw: &str) -> ApiResult<ProviderId> {
    ProviderId::new(raw)
        .ok()
        .filter(|id| provider_ids(state, cfg).contains(id))
        .ok_or_else(|| ApiError::not_found("provider", raw))
}

/// Seconds a duration set lists (a range: every second of it).
fn seconds(d: &Durations) -> Vec<u32> {
    match d {
        Durations::Set(s) => s.clone(),
        Durations::Range { min, max } => (*min..=*max).collect(),
    }
}

/// A provider with CineFlow's fields, its breaker state and its jobs in flight.
fn provider_json(state: &AppState, cfg: &RouterConfig, id: &ProviderId) -> Value {
    let router = state.orch.router();
    let routes: Vec<_> = cfg
        .models
        .values()
        .flat_map(|m| m.routes.iter())
        .filter(|r| &r.provider == id)
        .collect();
    let settings = cfg.providers.get(id);
    let caps = router
        .provider_by_id(id)
        .map(|p| p.capabilities().clone())
        .unwrap_or_default();
    let durations: BTreeSet<u32> = caps
        .models
        .iter()
        .flat_map(|m| {
            seconds(&m.durations)
                .into_iter()
                .chain(seconds(&m.pro_durations))
        })
        .collect();
    json!({
        "id": id,
        "display_name": id,
        "enabled": settings.is_none_or(|s| s.enabled),
        "priority": routes.iter().map(|r| r.priority).min(),
        "weight": routes.first().map(|r| r.weight),
        "supports_image_to_video": caps.models.is_empty() || caps.models.iter().any(|m| m.first_frame),
        "supported_durations": durations,
        "supported_resolutions": ["horizontal", "vertical"],
        "supports_pro": caps.models.iter().any(|m| m.pro),
        "supports_cancel": caps.cancel,
        "breaker_open": router.is_open(id),
        "in_flight": router.in_flight(id),
    })
}

/// `GET /providers` and `GET /admin/providers` (`enabled`, `sort=id`, `order`).
#[utoipa::path(get, path = "/providers", tag = "providers", summary = "Registered providers (sort: id, priority)", params(ListQuery, ("enabled" = Option<bool>, Query)),
    responses((status = 200, description = "{items, page, page_size, total}", body = Object), (status = 400, description = "Bad input, naming the field", body = Envelope), (status = 401, description = "No or wrong Bearer token", body = Envelope), (status = 404, description = "Not found", body = Envelope)))]
async fn list_providers(State(state): State<AppState>, params: Params) -> ApiResult<Json<Value>> {
    let page = params.page()?;
    params.sort(&["id", "priority"])?;
    let by_priority = params.str("sort") == Some("priority");
    let order = params.order(SortOrder::Asc)?;
    let enabled = params.bool("enabled")?;
    let cfg = state.orch.router().config();
    let mut items: Vec<Value> = provider_ids(&state, &cfg)
        .iter()
        .map(|id| provider_json(&state, &cfg, id))
        .filter(|p| enabled.is_none_or(|e| p["enabled"] == e))
        .collect();
    if by_priority {
        items.sort_by_key(|p| p["priority"].as_i64().unwrap_or(i64::MAX));
    }
    if order == SortOrder::Desc {
        items.reverse();
    }
    Ok(Json(views::page(page.slice(items), Clone::clone)))
}

#[utoipa::path(get, path = "/providers/{id}", tag = "providers", summary = "A provider", params(("id" = String, Path, description = "The provider id")),
    responses((status = 200, description = "OK", body = Object), (status = 400, description = "Bad input, naming the field", body = Envelope), (status = 401, description = "No or wrong Bearer token", body = Envelope), (status = 404, description = "Not found", body = Envelope)))]
async fn provider(
    State(state): State<AppState>,
    UrlPath(raw): UrlPath<String>,
) -> ApiResult<Json<Value>> {
    let cfg = state.orch.router().config();
    let id = known_provider(&state, &cfg, &raw)?;
    Ok(Json(provider_json(&state, &cfg, &id)))
}

#[utoipa::path(get, path = "/admin/providers", tag = "admin", summary = "Registered providers (sort: id, priority)", params(ListQuery, ("enabled" = Option<bool>, Query)),
    responses((status = 200, description = "{items, page, page_size, total}", body = Object), (status = 400, description = "Bad input, naming the field", body = Envelope), (status = 401, description = "No or wrong Bearer token", body = Envelope), (status = 404, description = "Not found", body = Envelope)))]
async fn list_providers_admin(state: State<AppState>, params: Params) -> ApiResult<Json<Value>> {
    list_providers(state, params).await
}

#[utoipa::path(get, path = "/admin/providers/{id}", tag = "admin", summary = "A provider", params(("id" = String, Path, description = "The provider id")),
    responses((status = 200, description = "OK", body = Object), (status = 400, description = "Bad input, naming the field", body = Envelope), (status = 401, description = "No or wrong Bearer token", body = Envelope), (status = 404, description = "Not found", body = Envelope)))]
async fn provider_admin(state: State<AppState>, raw: UrlPath<String>) -> ApiResult<Json<Value>> {
    provider(state, raw).await
}

/// `GET /providers/{id}/capabilities`: what each of its vendor models honours.
#[utoipa::path(get, path = "/providers/{id}/capabilities", tag = "providers", summary = "What each of a provider's vendor models honours", params(("id" = String, Path, description = "The provider id")),
    responses((status = 200, description = "OK", body = Object), (status = 400, description = "Bad input, naming the field", body = Envelope), (status = 401, description = "No or wrong Bearer token", body = Envelope), (status = 404, description = "Not found", body = Envelope)))]
async fn capabilities(
    State(state): State<AppState>,
    UrlPath(raw): UrlPath<String>,
) -> ApiResult<Json<Value>> {
    let cfg = state.orch.router().config();
    let id = known_provider(&state, &cfg, &raw)?;
    let caps = state
        .orch
        .router()
        .provider_by_id(&id)
        .map(|p| p.capabilities().clone())
        .unwrap_or_default();
    Ok(Json(json!(caps)))
}

/// `PATCH /admin/providers/{id}` `{enabled, priority, weight}`: edits the live router
/// (priority and weight apply to every route through the provider).
#[utoipa::path(patch, path = "/admin/providers/{id}", tag = "admin", summary = "Enable or disable a provider, set its priority and weight (live router)", params(("id" = String, Path, description = "The provider id")),
    responses((status = 200, description = "OK", body = Object), (status = 400, description = "Bad input, naming the field", body = Envelope), (status = 401, description = "No or wrong Bearer token", body = Envelope), (status = 404, description = "Not found", body = Envelope)))]
async fn patch_provider(
    State(state): State<AppState>,
    UrlPath(raw): UrlPath<String>,
    JsonObject(body): JsonObject,
) -> ApiResult<Json<Value>> {
    let router = state.orch.router();
    let cfg = router.config();
    let id = known_provider(&state, &cfg, &raw)?;
    let enabled = body.bool("enabled")?;
    let priority = priority(&body)?;
    let weight = body.u32("weight")?;
    if let Some(e) = enabled {
        router.set_provider_enabled(&id, e);
    }
    if priority.is_some() || weight.is_some() {
        for (model, m) in &cfg.models {
            if m.routes.iter().any(|r| r.provider == id) {
                router.set_route(model, &id, priority, weight, None)?;
            }
        }
    }
    let cfg = router.config();
    Ok(Json(provider_json(&state, &cfg, &id)))
}

/// The `priority` field of a body: an integer that fits an `i32`.
fn priority(body: &serde_json::Map<String, Value>) -> ApiResult<Option<i32>> {
    body.present("priority")
        .map(|p| {
            p.as_i64()
                .and_then(|p| i32::try_from(p).ok())
                .ok_or_else(|| ApiError::invalid("priority", "expected an integer"))
        })
        .transpose()
}

/// The `provider_model_ids` field of a body: an array of strings.
fn provider_model_ids(body: &serde_json::Map<String, Value>) -> ApiResult<Option<Vec<String>>> {
    let Some(v) = body.present("provider_model_ids") else {
        return Ok(None);
    };
    let items = v
        .as_array()
        .ok_or_else(|| ApiError::invalid("provider_model_ids", "expected an array of strings"))?;
    items
        .iter()
        .enumerate()
        .map(|(i, v)| {
            v.as_str().map(str::to_owned).ok_or_else(|| {
                ApiError::invalid(&format!("provider_model_ids[{i}]"), "expected a string")
            })
        })
        .collect::<ApiResult<Vec<_>>>()
        .map(Some)
}

/// `PATCH /admin/models/{id}/providers/{provider_id}` `{provider_model_ids, enabled, priority,
/// weight}`: edits the model's route through the provider in the live router (an alias: its
/// target's route). Every field is checked before anything changes.
#[utoipa::path(patch, path = "/admin/models/{id}/providers/{provider_id}", tag = "admin", summary = "Edit a model's route through one provider (live router): provider_model_ids (vendor models, tried in order), enabled, priority, weight", params(("id" = String, Path, description = "The model id"), ("provider_id" = String, Path, description = "The provider id")),
    responses((status = 200, description = "The model with its provider map and routes", body = Object), (status = 400, description = "Bad input, naming the field", body = Envelope), (status = 401, description = "No or wrong Bearer token", body = Envelope), (status = 404, description = "No such model, or no route of it through the provider", body = Envelope)))]
async fn patch_model_provider(
    State(state): State<AppState>,
    UrlPath((raw, raw_provider)): UrlPath<(String, String)>,
    JsonObject(body): JsonObject,
) -> ApiResult<Json<Value>> {
    let router = state.orch.router();
    let cfg = router.config();
    let id = known_model(&cfg, &raw)?;
    let target = cfg.aliases.get(&id).unwrap_or(&id).clone();
    let provider = ProviderId::new(&raw_provider)
        .ok()
        .filter(|p| {
            cfg.models
                .get(&target)
                .is_some_and(|m| m.routes.iter().any(|r| &r.provider == p))
        })
        .ok_or_else(|| ApiError::not_found("route", format!("{id}/{raw_provider}")))?;
    let vendor_models = provider_model_ids(&body)?;
    let enabled = body.bool("enabled")?;
    let priority = priority(&body)?;
    let weight = body.u32("weight")?;
    if let Some(names) = vendor_models {
        router
            .set_route_vendor_models(&target, &provider, names)
            .map_err(|e| match e {
                cineflow::core::Error::InvalidInput { field, reason } => ApiError::invalid(
                    &field.replacen("vendor_models", "provider_model_ids", 1),
                    reason,
                ),
                other => other.into(),
            })?;
    }
    if priority.is_some() || weight.is_some() || enabled.is_some() {
        router.set_route(&target, &provider, priority, weight, enabled)?;
    }
    let cfg = router.config();
    Ok(Json(model_json(&state, &cfg, &id, true)))
}
