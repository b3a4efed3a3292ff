//! The Kling models, what each accepts, and the create body (which endpoint, which fields).

use base64::Engine as _;
use cineflow_core::{
    AspectRatio, Durations, GenerationRequest, ImageKind, ImageRef, MediaKind, MediaRole,
    ModelCapabilities, ProviderError, Resolution,
};
use serde_json::{Map, Value, json};

use crate::http::{Endpoint, refused};

/// The longest prompt and negative prompt, in characters.
pub const MAX_PROMPT_CHARS: u32 = 2500;

/// The create (and query) endpoint a request goes to, by its shape.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    /// `POST /v1/videos/text2video`: a prompt only.
    Text,
    /// `POST /v1/videos/image2video`: a first frame (`image`) and a last frame (`image_tail`).
    Image,
    /// `POST /v1/videos/multi-image2video`: reference images (`image_list[{image}]`).
    MultiImage,
    /// `POST /v1/videos/omni-video`: the omni models, with reference images
    /// (`image_list[{image_url}]`) or none.
    Omni,
}

impl Route {
    /// Every route.
    pub const ALL: [Route; 4] = [Route::Text, Route::Image, Route::MultiImage, Route::Omni];

    /// The path segment under `/v1/videos/`.
    pub const fn segment(self) -> &'static str {
        match self {
            Route::Text => "text2video",
            Route::Image => "image2video",
            Route::MultiImage => "multi-image2video",
            Route::Omni => "omni-video",
        }
    }

    /// The route whose segment is `s`.
    pub fn from_segment(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|r| r.segment() == s)
    }
}

/// What one model accepts.
#[derive(Debug)]
pub(super) struct Model {
    pub(super) id: &'static str,
    /// `"5"`/`"10"` (v1, v2.x), or `"3"`…`"15"` (v3).
    durations: (u32, u32, bool),
    last_frame: bool,
    /// `sound: on|off` (v2.6 and later).
    sound: bool,
    /// Reference images: `multi-image2video` (v1.6) or `omni-video` (omni models).
    max_images: u32,
    /// An omni model (`omni-video`; no first / last frame here).
    omni: bool,
}

impl Model {
    fn durations(&self) -> Durations {
        match self.durations {
            (a, b, true) => Durations::range(a, b),
            (a, b, false) => Durations::set([a, b]),
        }
    }

    /// The capabilities of this model: std (720p) and pro (1080p) modes, 16:9 / 9:16 / 1:1, a
    /// negative prompt, prompts of at most [`MAX_PROMPT_CHARS`].
    pub(super) fn capabilities(&self) -> ModelCapabilities {
        ModelCapabilities::new(self.id)
            .with_durations(self.durations())
            .with_pro(true)
            .with_aspect_ratios(vec![
                AspectRatio::R16x9,
                AspectRatio::R9x16,
                AspectRatio::R1x1,
            ])
            .with_resolutions(vec![Resolution::P720, Resolution::P1080])
            .with_first_frame(!self.omni)
            .with_last_frame(self.last_frame)
            .with_max_reference_images(self.max_images)
            .with_audio(self.sound)
            .with_negative_prompt(true)
            // Kling counts characters; UTF-16 units are never fewer.
            .with_max_prompt_utf16(Some(MAX_PROMPT_CHARS))
    }
}

const fn m(id: &'static str, durations: (u32, u32, bool), last_frame: bool, sound: bool) -> Model {
    Model {
        id,
        durations,
        last_frame,
        sound,
        max_images: 0,
        omni: false,
    }
}

/// 5 or 10 s.
const FIVE_TEN: (u32, u32, bool) = (5, 10, false);
/// 3 to 15 s.
const THREE_TO_15: (u32, u32, bool) = (3, 15, true);

/// Every known model (late 2026; model names from the API reference's `model_name` enums).
pub(super) const MODELS: &[Model] = &[
    Model {
        max_images: 4,
        ..m("kling-v1-6", FIVE_TEN, false, false)
    },
    m("kling-v2-1", FIVE_TEN, true, false),
    m("kling-v2-5-turbo", FIVE_TEN, true, false),
    m("kling-v2-6", FIVE_TEN, true, true),
    m("kling-v3", THREE_TO_15, true, true),
    Model {
        max_images: 7,
        omni: true,
        ..m("kling-video-o1", FIVE_TEN, false, false)
    },
    Model {
        max_images: 7,
        omni: true,
        ..m("kling-v3-omni", THREE_TO_15, false, true)
    },
];

/// The model `id` names.
pub(super) fn model(id: &str) -> Option<&'static Model> {
    MODELS.iter().find(|m| m.id == id)
}

/// The model ids, for messages.
pub(super) fn known() -> String {
    MODELS.iter().map(|m| m.id).collect::<Vec<_>>().join(", ")
}

/// The route of `req` (already admitted by the capabilities) on `model`.
pub(super) fn route(req: &GenerationRequest, model: &Model) -> Result<Route, ProviderError> {
    let frames = req.first_frame.is_some();
    let refs = !req.references.is_empty();
    Ok(match (model.omni, frames, refs) {
        (true, _, _) => Route::Omni,
        (false, true, true) => {
            return Err(refused(format!(
                "kling model {}: first_frame and references cannot be combined (image2video \
                 takes frames, multi-image2video reference images)",
                model.id
            )));
        }
        (false, true, false) => Route::Image,
        (false, false, true) => Route::MultiImage,
        (false, false, false) => Route::Text,
    })
}

/// `mode`: `pro` for a pro request or one naming 1080p, else `std` (720p). A pro request
/// naming 720p contradicts itself.
pub(super) fn mode(req: &GenerationRequest, name: &str) -> Result<&'static str, ProviderError> {
    match (req.resolution, req.is_pro) {
        (Some(Resolution::P720), true) => Err(refused(format!(
            "kling model {name}: resolution 720p contradicts is_pro (the pro mode is 1080p)"
        ))),
        (Some(Resolution::P1080), _) | (_, true) => Ok("pro"),
        _ => Ok("std"),
    }
}

/// An image as Kling takes it: an https URL as is, anything else (a path, an http URL, a
/// `data:` URL) as raw base64 without any `data:` prefix.
async fn image(api: &Endpoint, img: &ImageRef) -> Result<String, ProviderError> {
    if img.kind() == ImageKind::Url && img.as_str().starts_with("https://") {
        return Ok(img.as_str().to_owned());
    }
    let (bytes, _) = api.load_image(img).await?;
    Ok(base64::engine::general_purpose::STANDARD.encode(&bytes))
}

/// The route's media fields: `image` / `image_tail`, or `image_list`.
pub(super) async fn media(
    api: &Endpoint,
    req: &GenerationRequest,
    route: Route,
    last: Option<&ImageRef>,
    body: &mut Map<String, Value>,
) -> Result<(), ProviderError> {
    if let Some(first) = &req.first_frame {
        body.insert("image".into(), image(api, first).await?.into());
    }
    if let Some(last) = last {
        body.insert("image_tail".into(), image(api, last).await?.into());
    }
    let mut list = Vec::new();
    for (i, r) in req.references.iter().enumerate() {
        if r.kind() != MediaKind::Image || r.role() != MediaRole::Reference {
            return Err(refused(format!(
                "references[{i}]: kling takes reference images only (a {} with role {})",
                r.kind(),
                r.role().as_str()
            )));
        }
        let img =
            ImageRef::new(r.source()).map_err(|e| refused(format!("references[{i}]: {e}")))?;
        let data = image(api, &img).await?;
        list.push(match route {
            Route::Omni => json!({ "image_url": data }),
            _ => json!({ "image": data }),
        });
    }
    if !list.is_empty() {
        body.insert("image_list".into(), Value::Array(list));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use cineflow_core::TaskId;

    #[test]
    fn v3_takes_3_to_15_seconds_and_sound_and_older_models_5_or_10() {
        let v3 = model("kling-v3").unwrap().capabilities();
        assert!(v3.durations.allows(3) && v3.durations.allows(15) && !v3.durations.allows(16));
        assert!(v3.audio && v3.last_frame && v3.first_frame);
        let v21 = model("kling-v2-1").unwrap().capabilities();
        assert!(v21.durations.allows(5) && v21.durations.allows(10) && !v21.durations.allows(7));
        assert!(!v21.audio);
        let omni = model("kling-v3-omni").unwrap().capabilities();
        assert!(!omni.first_frame && omni.max_reference_images == 7);
    }

    #[test]
    fn routes_follow_the_request_shape_and_modes_the_tier() {
        let req = GenerationRequest::new(TaskId::new(), "kling-v3", "p", 5);
        let v3 = model("kling-v3").unwrap();
        assert_eq!(route(&req, v3).unwrap(), Route::Text);
        let img = ImageRef::new("https://cdn.example/a.png").unwrap();
        assert_eq!(
            route(&req.clone().with_first_frame(img), v3).unwrap(),
            Route::Image
        );
        assert_eq!(
            route(&req, model("kling-video-o1").unwrap()).unwrap(),
            Route::Omni
        );
        assert_eq!(mode(&req, "kling-v3").unwrap(), "std");
        assert_eq!(
            mode(&req.clone().with_pro(true), "kling-v3").unwrap(),
            "pro"
        );
        assert_eq!(
            mode(&req.clone().with_resolution(Resolution::P1080), "kling-v3").unwrap(),
            "pro"
        );
        assert!(
            mode(
                &req.with_pro(true).with_resolution(Resolution::P720),
                "kling-v3"
            )
            .is_err()
        );
        for r in Route::ALL {
            assert_eq!(Route::from_segment(r.segment()), Some(r));
        }
    }
}
