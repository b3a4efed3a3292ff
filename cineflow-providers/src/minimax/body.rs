//! The create bodies: V1's flat fields and V2's `content[]`.

use cineflow_core::{
    AspectRatio, GenerationRequest, ImageRef, MediaKind, MediaRole, ProviderError, Resolution,
};
use serde_json::{Map, Value, json};

use super::models::{Api, MAX_PROMPT_CHARS, Model};
use crate::http::{self, Endpoint, refused};

/// What the caller decides beside the request.
#[derive(Debug, Clone)]
pub(super) struct Settings {
    /// V1 `prompt_optimizer`.
    pub(super) prompt_optimizer: bool,
    /// `callback_url`, when set.
    pub(super) callback_url: Option<String>,
}

fn check(req: &GenerationRequest, m: &Model) -> Result<(), ProviderError> {
    if req.prompt.trim().is_empty() {
        return Err(refused("the prompt is empty"));
    }
    let chars = req.prompt.chars().count();
    if chars > MAX_PROMPT_CHARS {
        return Err(refused(format!(
            "minimax model {}: prompt is {chars} characters (max {MAX_PROMPT_CHARS})",
            m.id
        )));
    }
    let framed = req.first_frame.is_some();
    if !m.text && !framed && req.references.is_empty() {
        return Err(refused(format!(
            "minimax model {} needs a first_frame{} (image-to-video only)",
            m.id,
            if m.max_images > 0 {
                " or references"
            } else {
                ""
            }
        )));
    }
    let guided = framed || !req.references.is_empty();
    match (m.api, framed, req.aspect_ratio) {
        (_, false, AspectRatio::Adaptive) if !guided => Err(refused(format!(
            "minimax model {}: aspect_ratio adaptive needs a first_frame to follow",
            m.id
        ))),
        (Api::V1, true, r) if r != AspectRatio::Adaptive => Err(refused(format!(
            "minimax model {}: aspect_ratio {r} with a first_frame: V1 renders the first frame's \
             shape, ask for adaptive",
            m.id
        ))),
        (Api::V2, true, _) if !req.references.is_empty() => Err(refused(format!(
            "minimax model {}: first_frame/last_frame and references cannot be combined",
            m.id
        ))),
        _ => Ok(()),
    }
}

/// The resolution to send: the request's, 1080P for a pro request naming none, else none (the
/// model's default: 768P on Hailuo 02 / 2.3 and H3, 720P on the 01 models).
fn resolution(req: &GenerationRequest, m: &Model) -> Result<Option<String>, ProviderError> {
    let r = match (req.resolution, req.is_pro) {
        (None, true) => Some(Resolution::P1080),
        (Some(r), true) if r != Resolution::P1080 => {
            return Err(refused(format!(
                "minimax model {}: resolution {r} contradicts is_pro (the pro tier is 1080P)",
                m.id
            )));
        }
        (r, _) => r,
    };
    if r == Some(Resolution::P1080) && req.duration_s != 6 {
        return Err(refused(format!(
            "minimax model {}: duration {}s at resolution 1080p (1080P renders 6 s only)",
            m.id, req.duration_s
        )));
    }
    Ok(r.map(|r| r.as_str().to_ascii_uppercase()))
}

/// A reference clip: an http(s) URL.
fn clip_url(i: usize, source: &str, kind: MediaKind) -> Result<String, ProviderError> {
    if !(source.starts_with("https://") || source.starts_with("http://")) {
        return Err(refused(format!(
            "references[{i}]: a reference {kind} must be an http(s) URL for minimax"
        )));
    }
    Ok(source.to_owned())
}

/// V1: `model`, `prompt`, `prompt_optimizer`, `duration`, `resolution`, `first_frame_image`,
/// `last_frame_image`, `subject_reference`, `aigc_watermark`, `callback_url`.
async fn v1(
    api: &Endpoint,
    req: &GenerationRequest,
    m: &Model,
    last: Option<&ImageRef>,
    settings: &Settings,
) -> Result<Map<String, Value>, ProviderError> {
    let mut b = Map::new();
    b.insert("model".into(), m.id.into());
    b.insert("prompt".into(), req.prompt.clone().into());
    b.insert("prompt_optimizer".into(), settings.prompt_optimizer.into());
    b.insert("duration".into(), req.duration_s.into());
    if let Some(r) = resolution(req, m)? {
        b.insert("resolution".into(), r.into());
    }
    if let Some(first) = &req.first_frame {
        b.insert(
            "first_frame_image".into(),
            api.image_url(first).await?.into(),
        );
    }
    if let Some(last) = last {
        b.insert("last_frame_image".into(), api.image_url(last).await?.into());
    }
    let mut images = Vec::new();
    for (i, r) in req.references.iter().enumerate() {
        if r.kind() != MediaKind::Image || r.role() != MediaRole::Character {
            return Err(refused(format!(
                "references[{i}]: minimax {} takes character images only (role character), got \
                 a {} with role {}",
                m.id,
                r.kind(),
                r.role()
            )));
        }
        let img =
            ImageRef::new(r.source()).map_err(|e| refused(format!("references[{i}]: {e}")))?;
        images.push(Value::from(api.image_url(&img).await?));
    }
    if !images.is_empty() {
        b.insert(
            "subject_reference".into(),
            json!([{"type": "character", "image": images}]),
        );
    }
    if let Some(w) = req.watermark {
        b.insert("aigc_watermark".into(), w.into());
    }
    Ok(b)
}

/// V2: `model`, `content[]` (one text item, then frames or references with roles), `duration`,
/// `resolution`, `ratio`, `watermark`, `callback_url`.
async fn v2(
    api: &Endpoint,
    req: &GenerationRequest,
    m: &Model,
    last: Option<&ImageRef>,
) -> Result<Map<String, Value>, ProviderError> {
    let image = |url: String, role: &str| json!({"type": "image_url", "image_url": {"url": url}, "role": role});
    let mut content = vec![json!({"type": "text", "text": req.prompt})];
    if let Some(first) = &req.first_frame {
        content.push(image(api.image_url(first).await?, "first_frame"));
    }
    if let Some(last) = last {
        content.push(image(api.image_url(last).await?, "last_frame"));
    }
    for (i, r) in req.references.iter().enumerate() {
        if !matches!(
            r.role(),
            MediaRole::Reference | MediaRole::Character | MediaRole::Style
        ) {
            return Err(refused(format!(
                "references[{i}]: role {} is not served by minimax (references guide the \
                 generation)",
                r.role()
            )));
        }
        let item = match r.kind() {
            MediaKind::Image => {
                let img = ImageRef::new(r.source())
                    .map_err(|e| refused(format!("references[{i}]: {e}")))?;
                image(api.image_url(&img).await?, "reference_image")
            }
            MediaKind::Video => json!({"type": "video_url",
                "video_url": {"url": clip_url(i, r.source(), MediaKind::Video)?}, "role": "reference_video"}),
            MediaKind::Audio => json!({"type": "audio_url",
                "audio_url": {"url": clip_url(i, r.source(), MediaKind::Audio)?}, "role": "reference_audio"}),
        };
        content.push(item);
    }
    let mut b = Map::new();
    b.insert("model".into(), m.id.into());
    b.insert("content".into(), content.into());
    b.insert("duration".into(), req.duration_s.into());
    if let Some(r) = resolution(req, m)? {
        b.insert("resolution".into(), r.into());
    }
    b.insert("ratio".into(), req.aspect_ratio.as_str().into());
    if let Some(w) = req.watermark {
        b.insert("watermark".into(), w.into());
    }
    Ok(b)
}

/// The create body for `req` on `m`, checked, plus the request's `extra` fields (never
/// overriding these).
pub(super) async fn body(
    api: &Endpoint,
    req: &GenerationRequest,
    m: &Model,
    settings: &Settings,
) -> Result<Map<String, Value>, ProviderError> {
    check(req, m)?;
    let last = http::last_frame(req)?;
    let mut b = match m.api {
        Api::V1 => v1(api, req, m, last.as_ref(), settings).await?,
        Api::V2 => v2(api, req, m, last.as_ref()).await?,
    };
    if let Some(u) = http::callback_target(req, settings.callback_url.as_deref()) {
        b.insert("callback_url".into(), u.into());
    }
    http::merge_extra(&mut b, &req.extra);
    Ok(b)
}
