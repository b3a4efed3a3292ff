//! The create body: `input` (prompt, frames, reference media) and `parameters`, per model
//! generation.

use cineflow_core::{
    AspectRatio, GenerationRequest, ImageKind, ImageRef, MediaKind, MediaRef, MediaRole,
    ProviderError, Resolution,
};
use serde_json::{Map, Value, json};

use super::models::{Inputs, Model, Shape, size};
use crate::http::{self, Endpoint, refused};

/// The longest `negative_prompt`, in characters.
pub const MAX_NEGATIVE_PROMPT_CHARS: usize = 500;

/// The largest `seed` DashScope takes.
pub const MAX_SEED: u64 = 2_147_483_647;

/// What the caller decides beside the request.
#[derive(Debug, Clone, Copy)]
pub(super) struct Settings {
    /// `parameters.prompt_extend`.
    pub(super) prompt_extend: bool,
}

/// Checks the prompt, the negative prompt and the seed against the model's limits.
fn check_text(req: &GenerationRequest, m: &Model) -> Result<(), ProviderError> {
    if req.prompt.trim().is_empty() {
        return Err(refused("the prompt is empty"));
    }
    let chars = req.prompt.chars().count();
    if chars > m.max_prompt_chars {
        return Err(refused(format!(
            "wan model {}: prompt is {chars} characters (max {})",
            m.id, m.max_prompt_chars
        )));
    }
    if let Some(n) = &req.negative_prompt {
        let chars = n.chars().count();
        if chars > MAX_NEGATIVE_PROMPT_CHARS {
            return Err(refused(format!(
                "wan model {}: negative_prompt is {chars} characters (max {MAX_NEGATIVE_PROMPT_CHARS})",
                m.id
            )));
        }
    }
    if let Some(seed) = req.seed.filter(|s| *s > MAX_SEED) {
        return Err(refused(format!(
            "wan model {}: seed {seed} is above {MAX_SEED}",
            m.id
        )));
    }
    if !m.text && req.first_frame.is_none() && req.references.is_empty() {
        let needs = if m.first_frame {
            "a first_frame"
        } else {
            "references"
        };
        return Err(refused(format!(
            "wan model {} needs {needs} (it does not generate from text alone)",
            m.id
        )));
    }
    Ok(())
}

/// The resolution sent: the request's; 1080P for a pro request naming none; else the model's
/// default. A pro request naming less than 1080P contradicts itself.
fn resolution(req: &GenerationRequest, m: &Model) -> Result<Resolution, ProviderError> {
    match (req.resolution, req.is_pro) {
        (None, true) => Ok(Resolution::P1080),
        (Some(r), true) if r != Resolution::P1080 => Err(refused(format!(
            "wan model {}: resolution {r} contradicts is_pro (the pro tier is 1080P)",
            m.id
        ))),
        (Some(r), _) => Ok(r),
        (None, false) => Ok(m.default_resolution),
    }
}

/// DashScope's resolution names (`720P`).
fn resolution_name(r: Resolution) -> String {
    r.as_str().to_ascii_uppercase()
}

/// `parameters`: the shape, the length and the options.
fn parameters(
    req: &GenerationRequest,
    m: &Model,
    settings: Settings,
) -> Result<Map<String, Value>, ProviderError> {
    let res = resolution(req, m)?;
    let ratio = req.aspect_ratio;
    let mut p = Map::new();
    match m.shape {
        Shape::Size => {
            let Some(s) = size(res, ratio) else {
                return Err(refused(format!(
                    "wan model {}: resolution {res} with aspect_ratio {ratio} has no size in \
                     DashScope's size table",
                    m.id
                )));
            };
            p.insert("size".into(), s.into());
        }
        Shape::Resolution => {
            p.insert("resolution".into(), resolution_name(res).into());
        }
        Shape::ResolutionRatio => {
            p.insert("resolution".into(), resolution_name(res).into());
            if ratio == AspectRatio::Adaptive {
                if req.first_frame.is_none() {
                    return Err(refused(format!(
                        "wan model {}: aspect_ratio adaptive needs a first_frame to follow",
                        m.id
                    )));
                }
            } else {
                p.insert("ratio".into(), ratio.as_str().into());
            }
        }
    }
    p.insert("duration".into(), req.duration_s.into());
    p.insert("prompt_extend".into(), settings.prompt_extend.into());
    if let Some(w) = req.watermark {
        p.insert("watermark".into(), w.into());
    }
    if let Some(seed) = req.seed {
        p.insert("seed".into(), seed.into());
    }
    if let Some(audio) = req.generate_audio {
        p.insert("audio".into(), audio.into());
    }
    Ok(p)
}

/// A reference video or audio clip: an http(s) URL (DashScope fetches it).
fn clip_url(i: usize, r: &MediaRef) -> Result<String, ProviderError> {
    if r.source_kind() != ImageKind::Url {
        return Err(refused(format!(
            "references[{i}]: a reference {} must be an http(s) URL for wan",
            r.kind()
        )));
    }
    Ok(r.source().to_owned())
}

/// Checks a reference's role: guides (reference, character, style) for images and clips; an
/// audio clip may also be laid under the video.
fn check_role(i: usize, r: &MediaRef) -> Result<(), ProviderError> {
    match (r.kind(), r.role()) {
        (_, MediaRole::Reference | MediaRole::Character | MediaRole::Style)
        | (MediaKind::Audio, MediaRole::BackgroundAudio) => Ok(()),
        (kind, role) => Err(refused(format!(
            "references[{i}]: role {role} is not served by wan for a {kind}"
        ))),
    }
}

/// `input`: the prompt and the media, where the model takes them.
async fn input(
    api: &Endpoint,
    req: &GenerationRequest,
    m: &Model,
    last: Option<&ImageRef>,
) -> Result<Map<String, Value>, ProviderError> {
    let mut input = Map::new();
    input.insert("prompt".into(), req.prompt.clone().into());
    if let Some(n) = &req.negative_prompt {
        input.insert("negative_prompt".into(), n.clone().into());
    }
    for (i, r) in req.references.iter().enumerate() {
        check_role(i, r)?;
    }
    // Capabilities were checked: only what the model takes is present.
    match m.inputs {
        Inputs::Urls => {
            if let Some(first) = &req.first_frame {
                input.insert("img_url".into(), api.image_url(first).await?.into());
            }
            if let Some((i, r)) = req.references.iter().enumerate().next() {
                input.insert("audio_url".into(), clip_url(i, r)?.into());
            }
        }
        Inputs::KeyFrames => {
            if let Some(first) = &req.first_frame {
                input.insert("first_frame_url".into(), api.image_url(first).await?.into());
            }
            if let Some(last) = last {
                input.insert("last_frame_url".into(), api.image_url(last).await?.into());
            }
        }
        Inputs::ReferenceVideos => {
            let urls = req
                .references
                .iter()
                .enumerate()
                .map(|(i, r)| clip_url(i, r).map(Value::from))
                .collect::<Result<Vec<_>, _>>()?;
            input.insert("reference_video_urls".into(), urls.into());
        }
        Inputs::Media { audio } => {
            let mut media = Vec::new();
            if let Some(first) = &req.first_frame {
                media.push(json!({"type": "first_frame", "url": api.image_url(first).await?}));
            }
            if let Some(last) = last {
                media.push(json!({"type": "last_frame", "url": api.image_url(last).await?}));
            }
            for (i, r) in req.references.iter().enumerate() {
                let item = match r.kind() {
                    MediaKind::Image => {
                        let img = ImageRef::new(r.source())
                            .map_err(|e| refused(format!("references[{i}]: {e}")))?;
                        json!({"type": "reference_image", "url": api.image_url(&img).await?})
                    }
                    MediaKind::Video => json!({"type": "reference_video", "url": clip_url(i, r)?}),
                    MediaKind::Audio => json!({"type": audio, "url": clip_url(i, r)?}),
                };
                media.push(item);
            }
            if !media.is_empty() {
                input.insert("media".into(), media.into());
            }
        }
    }
    Ok(input)
}

/// The create body for `req` on `m`, checked: `{"model", "input", "parameters"}` plus the
/// request's `extra` fields (never overriding these).
pub(super) async fn body(
    api: &Endpoint,
    req: &GenerationRequest,
    m: &Model,
    settings: Settings,
) -> Result<Map<String, Value>, ProviderError> {
    check_text(req, m)?;
    let last = http::last_frame(req)?;
    let parameters = parameters(req, m, settings)?;
    let input = input(api, req, m, last.as_ref()).await?;
    let mut b = Map::new();
    b.insert("model".into(), m.id.into());
    b.insert("input".into(), input.into());
    b.insert("parameters".into(), parameters.into());
    http::merge_extra(&mut b, &req.extra);
    Ok(b)
}
