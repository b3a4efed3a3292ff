//! Storyboards, segments and start images.

use std::path::{Path, PathBuf};

use axum::Json;
use axum::body::Bytes;
use axum::extract::{FromRequest, Multipart, Path as UrlPath, Request, State};
use axum::http::{StatusCode, header};
use cineflow::core::{
    ImageKind, ImageRef, Orientation, PageRequest, SegmentAsset, SegmentId, SegmentPatch,
    SortOrder, Storyboard, StoryboardId, TaskId,
};
use serde_json::{Map, Value, json};
use tokio::io::AsyncWriteExt;

use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::app::error::{ApiError, ApiResult, Envelope};
use crate::app::input::{Fields, JsonObject, Params, id, parse_object};
use crate::app::openapi::ListQuery;
use crate::app::state::AppState;
use crate::app::views;

/// The routes of this module.
pub(crate) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create, list))
        .routes(routes!(detail))
        .routes(routes!(segments))
        .routes(routes!(update_segment))
        .routes(routes!(start_image))
}

/// One uploaded file: its (checked) name and bytes.
struct Upload {
    name: Option<String>,
    bytes: Bytes,
}

/// A client file name, refused if it could name anything but a file in one folder.
fn checked_file_name(name: &str) -> ApiResult<String> {
    let bad = name.is_empty()
        || name.len() > 255
        || name.contains(['/', '\\', '\0'])
        || name == "."
        || name.contains("..")
        || name.chars().any(char::is_control);
    if bad {
        return Err(ApiError::invalid(
            "file",
            format!("file name {name:?} is not a plain file name (no paths, no \"..\")"),
        ));
    }
    Ok(name.to_owned())
}

/// Reads the multipart field `file` (other fields are ignored), within the body limit.
async fn read_file_field(mut form: Multipart) -> ApiResult<Upload> {
    loop {
        let field = form
            .next_field()
            .await
            .map_err(|e| ApiError::invalid("file", e.body_text()))?
            .ok_or_else(|| ApiError::invalid("file", "the multipart field `file` is missing"))?;
        if field.name() != Some("file") {
            continue;
        }
        let name = field.file_name().map(checked_file_name).transpose()?;
        let bytes = field
            .bytes()
            .await
            .map_err(|e| ApiError::invalid("file", e.body_text()))?;
        return Ok(Upload { name, bytes });
    }
}

fn is_multipart(req: &Request) -> bool {
    req.headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("multipart/form-data"))
}

/// `POST /storyboards`: a storyboard file as multipart field `file`, or the storyboard
/// document as the JSON body (named by `?name=`, else its `metadata.project_name`).
#[utoipa::path(post, path = "/storyboards", tag = "storyboards", summary = "Upload a storyboard (multipart field `file`, or the document as a JSON body)", params(("name" = Option<String>, Query, description = "Name of a JSON-body storyboard")),
    responses((status = 201, description = "The storyboard with its segments", body = Object), (status = 400, description = "Bad input, naming the field", body = Envelope), (status = 401, description = "No or wrong Bearer token", body = Envelope), (status = 404, description = "Not found", body = Envelope)))]
async fn create(
    State(state): State<AppState>,
    params: Params,
    req: Request,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let (name, text) = if is_multipart(&req) {
        let form = Multipart::from_request(req, &())
            .await
            .map_err(|e| ApiError::invalid("file", e.body_text()))?;
        let upload = read_file_field(form).await?;
        let text = String::from_utf8(upload.bytes.to_vec())
            .map_err(|_| ApiError::invalid("file", "not UTF-8 text"))?;
        (upload.name, text)
    } else {
        let bytes = Bytes::from_request(req, &())
            .await
            .map_err(|e| ApiError::invalid("body", e.body_text()))?;
        parse_object(&bytes)?;
        let text = String::from_utf8(bytes.to_vec())
            .map_err(|_| ApiError::invalid("body", "not UTF-8 text"))?;
        (params.str("name").map(str::to_owned), text)
    };
    let mut sb = Storyboard::from_json(&text)?;
    if let Some(n) = name {
        sb = sb.with_name(n.clone()).with_source_file(n);
    }
    state.orch.add_storyboard(&sb).await?;
    Ok((
        StatusCode::CREATED,
        Json(views::storyboard(&sb, true, &state.config.upload_dir)),
    ))
}

/// Every page of a newest-first store listing, in the order asked for.
async fn all_storyboards(state: &AppState) -> ApiResult<Vec<Storyboard>> {
    let mut out = Vec::new();
    let mut page = 1;
    loop {
        let p = state
            .store()
            .list_storyboards(PageRequest::new(page, PageRequest::MAX_PAGE_SIZE))
            .await?;
        let n = p.items.len();
        out.extend(p.items);
        if n == 0 || out.len() as u64 >= p.total {
            return Ok(out);
        }
        page += 1;
    }
}

/// `GET /storyboards?page&page_size&sort=created_at|name&order&name=`.
#[utoipa::path(get, path = "/storyboards", tag = "storyboards", summary = "List storyboards (sort: created_at, name)", params(ListQuery, ("name" = Option<String>, Query, description = "Only names containing this")),
    responses((status = 200, description = "{items, page, page_size, total}", body = Object), (status = 400, description = "Bad input, naming the field", body = Envelope), (status = 401, description = "No or wrong Bearer token", body = Envelope), (status = 404, description = "Not found", body = Envelope)))]
async fn list(State(state): State<AppState>, params: Params) -> ApiResult<Json<Value>> {
    let page = params.page()?;
    let sort = params.sort(&["created_at", "name"])?;
    let order = params.order(SortOrder::Desc)?;
    let name = params.str("name");
    let up = state.config.upload_dir.clone();
    if sort == "created_at" && order == SortOrder::Desc && name.is_none() {
        let p = state.store().list_storyboards(page).await?;
        return Ok(Json(views::page(p, |s| views::storyboard(s, false, &up))));
    }
    let mut all = all_storyboards(&state).await?;
    if let Some(n) = name {
        all.retain(|s| s.name.contains(n));
    }
    if sort == "name" {
        all.sort_by(|a, b| a.name.cmp(&b.name).then(a.created_at.cmp(&b.created_at)));
    } else {
        all.reverse();
    }
    if order == SortOrder::Desc && sort == "name" {
        all.reverse();
    }
    Ok(Json(views::page(page.slice(all), |s| {
        views::storyboard(s, false, &up)
    })))
}

/// `GET /storyboards/{id}`.
#[utoipa::path(get, path = "/storyboards/{id}", tag = "storyboards", summary = "A storyboard with its segments", params(("id" = String, Path, description = "The storyboard id")),
    responses((status = 200, description = "OK", body = Object), (status = 400, description = "Bad input, naming the field", body = Envelope), (status = 401, description = "No or wrong Bearer token", body = Envelope), (status = 404, description = "Not found", body = Envelope)))]
async fn detail(
    State(state): State<AppState>,
    UrlPath(raw): UrlPath<String>,
) -> ApiResult<Json<Value>> {
    let sb = state
        .store()
        .get_storyboard(id::<StoryboardId>(&raw)?)
        .await?;
    Ok(Json(views::storyboard(&sb, true, &state.config.upload_dir)))
}

/// `GET /storyboards/{id}/segments?sort=segment_index&order&resolution&is_pro`.
#[utoipa::path(get, path = "/storyboards/{id}/segments", tag = "storyboards", summary = "A storyboard's segments (sort: segment_index)", params(("id" = String, Path, description = "The storyboard id"), ListQuery, ("resolution" = Option<String>, Query, description = "horizontal or vertical"), ("is_pro" = Option<bool>, Query)),
    responses((status = 200, description = "{items, page, page_size, total}", body = Object), (status = 400, description = "Bad input, naming the field", body = Envelope), (status = 401, description = "No or wrong Bearer token", body = Envelope), (status = 404, description = "Not found", body = Envelope)))]
async fn segments(
    State(state): State<AppState>,
    UrlPath(raw): UrlPath<String>,
    params: Params,
) -> ApiResult<Json<Value>> {
    let sb = state
        .store()
        .get_storyboard(id::<StoryboardId>(&raw)?)
        .await?;
    let page = params.page()?;
    params.sort(&["segment_index"])?;
    let order = params.order(SortOrder::Asc)?;
    let resolution: Option<Orientation> = params
        .str("resolution")
        .map(|r| {
            serde_json::from_value(json!(r)).map_err(|_| {
                ApiError::invalid(
                    "resolution",
                    format!("expected horizontal or vertical, got {r:?}"),
                )
            })
        })
        .transpose()?;
    let is_pro = params.bool("is_pro")?;
    let mut segs: Vec<_> = sb
        .segments
        .iter()
        .filter(|s| resolution.is_none_or(|r| s.orientation == r))
        .filter(|s| is_pro.is_none_or(|p| s.is_pro == p))
        .collect();
    segs.sort_by_key(|s| s.index);
    if order == SortOrder::Desc {
        segs.reverse();
    }
    let up = state.config.upload_dir.clone();
    Ok(Json(views::page(page.slice(segs), |s| {
        views::segment(&sb, s, &up)
    })))
}

/// A client's `image_url`: `http(s)` or `data:` URLs, or one of this server's `/uploads/…`
/// (as the console sends it back, resolved against the API origin). Never a local path: a
/// client must not make the server read its files.
fn client_image(url: &str, upload_dir: &Path) -> ApiResult<ImageRef> {
    let upload_name = url
        .find("/uploads/")
        .filter(|i| *i == 0 || url.starts_with("http://") || url.starts_with("https://"))
        .map(|i| &url[i + "/uploads/".len()..]);
    if let Some(name) = upload_name {
        let name = checked_file_name(name)
            .map_err(|_| ApiError::invalid("image_url", "not an upload of this server"))?;
        let path = upload_dir.join(name);
        if path.is_file() {
            return Ok(ImageRef::new(path.display().to_string())?);
        }
    }
    let image = ImageRef::new(url)?;
    if image.kind() == ImageKind::Path {
        return Err(ApiError::invalid(
            "image_url",
            "expected an http(s) URL, a data: URL or an upload of this server",
        ));
    }
    Ok(image)
}

/// The patch a CineFlow `SegmentUpdate` body asks for.
fn segment_patch(body: &Map<String, Value>, upload_dir: &Path) -> ApiResult<SegmentPatch> {
    let mut patch = SegmentPatch::default();
    patch.prompt_text = body.string("prompt_text")?;
    patch.duration_s = body.u32("duration_seconds")?;
    patch.is_pro = body.bool("is_pro")?;
    if body.contains_key("director_intent") {
        patch.director_intent = Some(body.string("director_intent")?);
    }
    if body.contains_key("image_url") {
        patch.image = Some(
            body.string("image_url")?
                .filter(|u| !u.is_empty())
                .map(|u| client_image(&u, upload_dir))
                .transpose()?,
        );
    }
    if let Some(r) = body.present("resolution") {
        patch.orientation = Some(serde_json::from_value(r.clone()).map_err(|_| {
            ApiError::invalid(
                "resolution",
                format!("expected horizontal or vertical, got {r}"),
            )
        })?);
    }
    if let Some(a) = body.present("asset") {
        let asset: SegmentAsset = serde_json::from_value(a.clone())
            .map_err(|e| ApiError::invalid("asset", e.to_string()))?;
        patch.asset = Some(asset);
    }
    Ok(patch)
}

/// `PATCH /segments/{id}`.
#[utoipa::path(patch, path = "/segments/{id}", tag = "segments", summary = "Update a segment (prompt_text, director_intent, image_url, duration_seconds, resolution, is_pro, asset)", params(("id" = String, Path, description = "The segment id")),
    responses((status = 200, description = "OK", body = Object), (status = 400, description = "Bad input, naming the field", body = Envelope), (status = 401, description = "No or wrong Bearer token", body = Envelope), (status = 404, description = "Not found", body = Envelope)))]
async fn update_segment(
    State(state): State<AppState>,
    UrlPath(raw): UrlPath<String>,
    JsonObject(body): JsonObject,
) -> ApiResult<Json<Value>> {
    let seg_id = id::<SegmentId>(&raw)?;
    let patch = segment_patch(&body, &state.config.upload_dir)?;
    let (sb_id, _) = state.store().get_segment(seg_id).await?;
    let seg = state.store().update_segment(seg_id, &patch).await?;
    let sb = state.store().get_storyboard(sb_id).await?;
    Ok(Json(views::segment(&sb, &seg, &state.config.upload_dir)))
}

/// The extension of an image by its first bytes: PNG, JPEG or WebP.
fn image_extension(head: &[u8]) -> Option<&'static str> {
    if head.starts_with(b"\x89PNG\r\n\x1a\n") {
        Some("png")
    } else if head.starts_with(&[0xff, 0xd8, 0xff]) {
        Some("jpg")
    } else if head.len() >= 12 && &head[..4] == b"RIFF" && &head[8..12] == b"WEBP" {
        Some("webp")
    } else {
        None
    }
}

/// Writes `bytes` to `dir/name` through `name.tmp`, fsynced, then renamed.
async fn write_atomically(dir: &Path, name: &str, bytes: &[u8]) -> std::io::Result<PathBuf> {
    tokio::fs::create_dir_all(dir).await?;
    let tmp = dir.join(format!("{name}.tmp"));
    let target = dir.join(name);
    let mut f = tokio::fs::File::create(&tmp).await?;
    f.write_all(bytes).await?;
    f.sync_all().await?;
    drop(f);
    tokio::fs::rename(&tmp, &target).await?;
    tokio::fs::File::open(dir).await?.sync_all().await?;
    Ok(target)
}

/// `POST /segments/{id}/assets/start-image` (multipart field `file`: PNG, JPEG or WebP):
/// stored under a server-chosen name, served at `/uploads/{name}`, and set as the segment's
/// start image.
#[utoipa::path(post, path = "/segments/{id}/assets/start-image", tag = "segments", summary = "Upload a segment's start image (multipart field `file`: PNG, JPEG or WebP)", params(("id" = String, Path, description = "The segment id")),
    responses((status = 200, description = "{image_url, segment}", body = Object), (status = 400, description = "Bad input, naming the field", body = Envelope), (status = 401, description = "No or wrong Bearer token", body = Envelope), (status = 404, description = "Not found", body = Envelope)))]
async fn start_image(
    State(state): State<AppState>,
    UrlPath(raw): UrlPath<String>,
    form: Result<Multipart, axum::extract::multipart::MultipartRejection>,
) -> ApiResult<Json<Value>> {
    let seg_id = id::<SegmentId>(&raw)?;
    let form = form.map_err(|e| ApiError::invalid("file", e.body_text()))?;
    let upload = read_file_field(form).await?;
    let ext = image_extension(&upload.bytes)
        .ok_or_else(|| ApiError::invalid("file", "not a PNG, JPEG or WebP image"))?;
    let (sb_id, _) = state.store().get_segment(seg_id).await?;
    let name = format!("{seg_id}_{}.{ext}", TaskId::new());
    let dir = &state.config.upload_dir;
    let path = write_atomically(dir, &name, &upload.bytes)
        .await
        .map_err(|e| ApiError::internal("storing the upload", e))?;
    let patch =
        SegmentPatch::default().with_image(Some(ImageRef::new(path.display().to_string())?));
    let seg = state.store().update_segment(seg_id, &patch).await?;
    let sb = state.store().get_storyboard(sb_id).await?;
    Ok(Json(json!({
        "image_url": format!("/uploads/{name}"),
        "segment": views::segment(&sb, &seg, dir),
    })))
}
