//! The fal endpoints the adapter knows, per family (each takes the model's own input schema),
//! and endpoints a route names with a JSON template ([`FalEndpoint`]).

use cineflow_core::{
    AspectRatio, Durations, Error, GenerationRequest, ImageRef, MediaKind, ModelCapabilities,
    ProviderError, Resolution,
};
use serde_json::{Map, Value};

use crate::http::{Endpoint, refused};

/// An endpoint family: one input schema.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Family {
    /// `bytedance/seedance-2.0/…`.
    Seedance,
    /// `fal-ai/kling-video/v3/…`.
    Kling,
    /// `fal-ai/veo3.1…`.
    Veo,
    /// `google/gemini-omni-flash/reference-to-video`.
    Omni,
}

/// What an endpoint takes besides the prompt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Mode {
    /// Text only.
    Text,
    /// A first frame (required) and, where the family has one, a last frame.
    Image,
    /// Reference media (at least one image).
    Reference,
}

/// A known endpoint.
#[derive(Debug)]
pub(super) struct Known {
    pub(super) id: &'static str,
    pub(super) family: Family,
    pub(super) mode: Mode,
    /// Kling's `pro` tier (a pro request goes only there).
    pub(super) pro: bool,
    /// Veo's `lite`: no 4k.
    pub(super) lite: bool,
}

const fn known(id: &'static str, family: Family, mode: Mode) -> Known {
    Known {
        id,
        family,
        mode,
        pro: false,
        lite: false,
    }
}

/// Every endpoint with a built-in input schema (fal's model pages, late 2026).
pub(super) const KNOWN: &[Known] = &[
    known(
        "bytedance/seedance-2.0/text-to-video",
        Family::Seedance,
        Mode::Text,
    ),
    known(
        "bytedance/seedance-2.0/image-to-video",
        Family::Seedance,
        Mode::Image,
    ),
    known(
        "bytedance/seedance-2.0/reference-to-video",
        Family::Seedance,
        Mode::Reference,
    ),
    known(
        "bytedance/seedance-2.0/fast/text-to-video",
        Family::Seedance,
        Mode::Text,
    ),
    known(
        "bytedance/seedance-2.0/fast/image-to-video",
        Family::Seedance,
        Mode::Image,
    ),
    known(
        "bytedance/seedance-2.0/fast/reference-to-video",
        Family::Seedance,
        Mode::Reference,
    ),
    Known {
        pro: true,
        ..known(
            "fal-ai/kling-video/v3/pro/text-to-video",
            Family::Kling,
            Mode::Text,
        )
    },
    Known {
        pro: true,
        ..known(
            "fal-ai/kling-video/v3/pro/image-to-video",
            Family::Kling,
            Mode::Image,
        )
    },
    known(
        "fal-ai/kling-video/v3/standard/text-to-video",
        Family::Kling,
        Mode::Text,
    ),
    known(
        "fal-ai/kling-video/v3/standard/image-to-video",
        Family::Kling,
        Mode::Image,
    ),
    known("fal-ai/veo3.1", Family::Veo, Mode::Text),
    known("fal-ai/veo3.1/fast", Family::Veo, Mode::Text),
    Known {
        lite: true,
        ..known("fal-ai/veo3.1/lite", Family::Veo, Mode::Text)
    },
    known("fal-ai/veo3.1/image-to-video", Family::Veo, Mode::Image),
    known(
        "fal-ai/veo3.1/fast/image-to-video",
        Family::Veo,
        Mode::Image,
    ),
    Known {
        lite: true,
        ..known(
            "fal-ai/veo3.1/lite/image-to-video",
            Family::Veo,
            Mode::Image,
        )
    },
    known(
        "google/gemini-omni-flash/reference-to-video",
        Family::Omni,
        Mode::Reference,
    ),
];

/// The most reference images Gemini Omni on fal is declared to take (*unverified*: fal's page
/// documents `image_urls` as required without a maximum; more is refused here rather than
/// guessed).
pub(super) const OMNI_MAX_IMAGES: u32 = 3;

/// The known endpoint `id`, if any.
pub(super) fn known_endpoint(id: &str) -> Option<&'static Known> {
    KNOWN.iter().find(|k| k.id == id)
}

impl Known {
    /// What the endpoint honours.
    pub(super) fn capabilities(&self) -> ModelCapabilities {
        let base = ModelCapabilities::new(self.id);
        let image = self.mode == Mode::Image;
        match self.family {
            Family::Seedance => base
                .with_durations(Durations::range(4, 15))
                .with_model_chosen_duration(true)
                .with_aspect_ratios(AspectRatio::ALL.to_vec())
                .with_resolutions(vec![Resolution::P480, Resolution::P720])
                .with_first_frame(image)
                .with_last_frame(image)
                .with_max_reference_images(if self.mode == Mode::Reference { 9 } else { 0 })
                .with_max_reference_videos(if self.mode == Mode::Reference { 3 } else { 0 })
                .with_max_reference_audio(if self.mode == Mode::Reference { 3 } else { 0 })
                .with_audio(true)
                .with_seed(true),
            Family::Kling => base
                .with_durations(Durations::range(3, 15))
                .with_pro(self.pro)
                // Image-to-video takes the ratio from the image: only `adaptive` is honoured.
                .with_aspect_ratios(if image {
                    vec![AspectRatio::Adaptive]
                } else {
                    vec![AspectRatio::R16x9, AspectRatio::R9x16, AspectRatio::R1x1]
                })
                .with_first_frame(image)
                .with_last_frame(image)
                .with_audio(true)
                .with_negative_prompt(true),
            Family::Veo => {
                let mut ratios = vec![AspectRatio::R16x9, AspectRatio::R9x16];
                if image {
                    ratios.push(AspectRatio::Adaptive);
                }
                let mut resolutions = vec![Resolution::P720, Resolution::P1080];
                if !self.lite {
                    resolutions.push(Resolution::K4);
                }
                base.with_durations(Durations::set([4, 6, 8]))
                    .with_aspect_ratios(ratios)
                    .with_resolutions(resolutions)
                    .with_first_frame(image)
                    .with_audio(true)
                    .with_seed(true)
                    .with_negative_prompt(true)
            }
            Family::Omni => base
                .with_durations(Durations::range(3, 10))
                .with_aspect_ratios(vec![AspectRatio::R16x9, AspectRatio::R9x16])
                .with_max_reference_images(OMNI_MAX_IMAGES),
        }
    }

    /// Refuses a request this endpoint cannot take without `what`.
    fn needs(&self, what: &str) -> ProviderError {
        refused(format!("fal endpoint {} needs {what}", self.id))
    }

    /// The request's first frame, as the input field `key` takes it; refused without one.
    fn first_frame(&self, media: &Media, key: &str) -> Result<Value, ProviderError> {
        let first = media.first.clone().map(Value::from);
        first.ok_or_else(|| self.needs(&format!("a first_frame ({key})")))
    }

    /// The endpoint's input for `req` (admitted against [`capabilities`](Self::capabilities)
    /// before), with its `media` as URLs.
    pub(super) fn input(
        &self,
        req: &GenerationRequest,
        media: &Media,
    ) -> Result<Map<String, Value>, ProviderError> {
        let mut b = Map::new();
        let mut put = |k: &str, v: Value| {
            b.insert(k.to_owned(), v);
        };
        put("prompt", req.prompt.clone().into());
        let ratio = |adaptive: &str| match req.aspect_ratio {
            AspectRatio::Adaptive => adaptive.to_owned(),
            r => r.as_str().to_owned(),
        };
        let need = |what: &str, ok: bool| if ok { Ok(()) } else { Err(self.needs(what)) };
        match self.family {
            Family::Seedance => {
                let duration = if req.model_chosen_duration {
                    "auto".to_owned()
                } else {
                    req.duration_s.to_string()
                };
                put("duration", duration.into());
                put("aspect_ratio", ratio("auto").into());
                if let Some(r) = req.resolution {
                    put("resolution", r.as_str().into());
                }
                match self.mode {
                    Mode::Text => {}
                    Mode::Image => {
                        put("image_url", self.first_frame(media, "image_url")?);
                        if let Some(l) = &media.last {
                            put("end_image_url", l.clone().into());
                        }
                    }
                    Mode::Reference => {
                        need(
                            "at least one reference image or video",
                            !media.images.is_empty() || !media.videos.is_empty(),
                        )?;
                        for (k, list) in [
                            ("image_urls", &media.images),
                            ("video_urls", &media.videos),
                            ("audio_urls", &media.audio),
                        ] {
                            if !list.is_empty() {
                                put(k, list.clone().into());
                            }
                        }
                    }
                }
            }
            Family::Kling => {
                put("duration", req.duration_s.to_string().into());
                if self.mode == Mode::Image {
                    put(
                        "start_image_url",
                        self.first_frame(media, "start_image_url")?,
                    );
                    if let Some(l) = &media.last {
                        put("end_image_url", l.clone().into());
                    }
                } else {
                    put("aspect_ratio", ratio("auto").into());
                }
                if let Some(n) = &req.negative_prompt {
                    put("negative_prompt", n.clone().into());
                }
            }
            Family::Veo => {
                put("duration", format!("{}s", req.duration_s).into());
                put("aspect_ratio", ratio("auto").into());
                if let Some(r) = req.resolution {
                    put("resolution", r.as_str().into());
                }
                if self.mode == Mode::Image {
                    put("image_url", self.first_frame(media, "image_url")?);
                }
                if let Some(n) = &req.negative_prompt {
                    put("negative_prompt", n.clone().into());
                }
            }
            Family::Omni => {
                need(
                    "at least one reference image (image_urls)",
                    !media.images.is_empty(),
                )?;
                put("image_urls", media.images.clone().into());
                put("aspect_ratio", ratio("auto").into());
                put("duration", req.duration_s.into());
            }
        }
        if let Some(a) = req.generate_audio {
            put("generate_audio", a.into());
        }
        if let Some(s) = req.seed {
            put("seed", s.into());
        }
        Ok(b)
    }
}

/// The request's media as URLs.
#[derive(Debug, Default)]
pub(super) struct Media {
    pub(super) first: Option<String>,
    pub(super) last: Option<String>,
    pub(super) images: Vec<String>,
    pub(super) videos: Vec<String>,
    pub(super) audio: Vec<String>,
}

impl Media {
    /// Loads `req`'s frames and references: images as https or `data:` URLs; reference video
    /// and audio must be URLs already.
    pub(super) async fn of(
        api: &Endpoint,
        req: &GenerationRequest,
        last: Option<&ImageRef>,
    ) -> Result<Self, ProviderError> {
        let mut m = Media::default();
        if let Some(first) = &req.first_frame {
            m.first = Some(api.image_url(first).await?);
        }
        if let Some(last) = last {
            m.last = Some(api.image_url(last).await?);
        }
        for (i, r) in req.references.iter().enumerate() {
            match r.kind() {
                MediaKind::Image => {
                    let img = ImageRef::new(r.source())
                        .map_err(|e| refused(format!("references[{i}]: {e}")))?;
                    m.images.push(api.image_url(&img).await?);
                }
                kind @ (MediaKind::Video | MediaKind::Audio) => {
                    if r.source_kind() == cineflow_core::ImageKind::Path {
                        return Err(refused(format!(
                            "references[{i}]: a reference {kind} must be a URL (http(s) or \
                             data:); fal takes no local {kind} files"
                        )));
                    }
                    let list = if kind == MediaKind::Video {
                        &mut m.videos
                    } else {
                        &mut m.audio
                    };
                    list.push(r.source().to_owned());
                }
            }
        }
        Ok(m)
    }
}

/// The placeholders a [`FalEndpoint`] template may use, and the capability each stands for.
pub const PLACEHOLDERS: [&str; 13] = [
    "$prompt",
    "$duration",
    "$duration_text",
    "$aspect_ratio",
    "$resolution",
    "$first_frame",
    "$last_frame",
    "$image_urls",
    "$video_urls",
    "$audio_urls",
    "$generate_audio",
    "$seed",
    "$negative_prompt",
];

/// An endpoint the adapter has no built-in schema for: its id, the JSON input to send with
/// placeholders, and what it honours.
///
/// The template is a JSON object; any string value that is exactly one of [`PLACEHOLDERS`] is
/// replaced with the request's value: `$prompt`, `$duration` (seconds, a number),
/// `$duration_text` (`"5"`), `$aspect_ratio` (`"16:9"`, `"auto"` for adaptive),
/// `$resolution` (`"720p"`), `$first_frame` / `$last_frame` (image URLs), `$image_urls` /
/// `$video_urls` / `$audio_urls` (arrays of the reference media), `$generate_audio`,
/// `$seed`, `$negative_prompt`. A placeholder the request has no value for removes its key.
/// Every other value is sent as written.
///
/// The capabilities are checked against the template when the provider is built: a field
/// declared supported needs its placeholder (a request carrying it would otherwise lose it),
/// so a request field the template cannot carry is refused before paying, never dropped.
#[derive(Debug, Clone, PartialEq)]
pub struct FalEndpoint {
    pub(super) id: String,
    pub(super) template: Value,
    pub(super) capabilities: ModelCapabilities,
}

impl FalEndpoint {
    /// Endpoint `id` (e.g. `fal-ai/wan/v2.7/text-to-video`) sending `template`; capabilities:
    /// any duration and aspect ratio, nothing optional (set them with
    /// [`with_capabilities`](Self::with_capabilities)).
    pub fn new(id: impl Into<String>, template: Value) -> Self {
        let id = id.into();
        Self {
            capabilities: ModelCapabilities::new(id.clone()),
            id,
            template,
        }
    }

    /// What the endpoint honours (its `id` is replaced by the endpoint's).
    pub fn with_capabilities(mut self, capabilities: ModelCapabilities) -> Self {
        self.capabilities = capabilities.with_id(self.id.clone());
        self
    }

    /// Checks the id, the template's shape and that every declared capability has its
    /// placeholder.
    pub(super) fn check(&self) -> Result<(), Error> {
        let bad = |why: String| Error::Config(format!("fal endpoint {:?}: {why}", self.id));
        let id = self.id.trim();
        if id.is_empty() || id.starts_with('/') || id.contains("..") || id.contains(['?', '#']) {
            return Err(bad("not an endpoint id (owner/app[/path])".into()));
        }
        let Value::Object(t) = &self.template else {
            return Err(bad("the template must be a JSON object".into()));
        };
        let mut used = Vec::new();
        collect_placeholders(&Value::Object(t.clone()), &mut used);
        if !used.contains(&"$prompt") {
            return Err(bad("the template does not send $prompt".into()));
        }
        let c = &self.capabilities;
        let needs = [
            ("first_frame", c.first_frame, "$first_frame"),
            ("last_frame", c.last_frame, "$last_frame"),
            (
                "reference images",
                c.max_reference_images > 0,
                "$image_urls",
            ),
            (
                "reference videos",
                c.max_reference_videos > 0,
                "$video_urls",
            ),
            ("reference audio", c.max_reference_audio > 0, "$audio_urls"),
            ("generate_audio", c.audio, "$generate_audio"),
            ("seed", c.seed, "$seed"),
            ("negative_prompt", c.negative_prompt, "$negative_prompt"),
            ("resolutions", !c.resolutions.is_empty(), "$resolution"),
            (
                "durations",
                !c.durations.is_any(),
                "$duration or $duration_text",
            ),
        ];
        for (what, declared, placeholder) in needs {
            let present = placeholder.split(" or ").any(|p| used.contains(&p));
            if declared && !present {
                return Err(bad(format!(
                    "{what} declared supported but the template has no {placeholder}"
                )));
            }
        }
        let unsupported = [
            ("pro", c.pro),
            ("model_chosen_duration", c.model_chosen_duration),
            ("return_last_frame", c.return_last_frame),
            ("watermark", c.watermark),
            ("flex", c.flex),
        ];
        if let Some((what, _)) = unsupported.iter().find(|(_, on)| *on) {
            return Err(bad(format!(
                "{what} cannot be declared: a template has no placeholder for it"
            )));
        }
        Ok(())
    }

    /// The input for `req`, its `media` as URLs: the template with its placeholders replaced.
    pub(super) fn input(&self, req: &GenerationRequest, media: &Media) -> Map<String, Value> {
        let value = |p: &str| -> Option<Value> {
            Some(match p {
                "$prompt" => req.prompt.clone().into(),
                "$duration" => req.duration_s.into(),
                "$duration_text" => req.duration_s.to_string().into(),
                "$aspect_ratio" => match req.aspect_ratio {
                    AspectRatio::Adaptive => "auto".into(),
                    r => r.as_str().into(),
                },
                "$resolution" => req.resolution?.as_str().into(),
                "$first_frame" => media.first.clone()?.into(),
                "$last_frame" => media.last.clone()?.into(),
                "$image_urls" => non_empty(&media.images)?,
                "$video_urls" => non_empty(&media.videos)?,
                "$audio_urls" => non_empty(&media.audio)?,
                "$generate_audio" => req.generate_audio?.into(),
                "$seed" => req.seed?.into(),
                "$negative_prompt" => req.negative_prompt.clone()?.into(),
                _ => return None,
            })
        };
        let mut out = Map::new();
        if let Value::Object(t) = &self.template {
            for (k, v) in t {
                if let Some(v) = fill(v, &value) {
                    out.insert(k.clone(), v);
                }
            }
        }
        out
    }
}

fn non_empty(list: &[String]) -> Option<Value> {
    (!list.is_empty()).then(|| list.to_vec().into())
}

/// `v` with placeholders replaced (`None`: a placeholder without a value, key removed).
fn fill(v: &Value, value: &impl Fn(&str) -> Option<Value>) -> Option<Value> {
    match v {
        Value::String(s) if PLACEHOLDERS.contains(&s.as_str()) => value(s),
        Value::Object(o) => Some(Value::Object(
            o.iter()
                .filter_map(|(k, v)| Some((k.clone(), fill(v, value)?)))
                .collect(),
        )),
        Value::Array(a) => Some(Value::Array(
            a.iter().filter_map(|v| fill(v, value)).collect(),
        )),
        other => Some(other.clone()),
    }
}

fn collect_placeholders(v: &Value, used: &mut Vec<&'static str>) {
    match v {
        Value::String(s) => {
            if let Some(p) = PLACEHOLDERS.iter().find(|p| **p == s.as_str()) {
                used.push(p);
            }
        }
        Value::Object(o) => o.values().for_each(|v| collect_placeholders(v, used)),
        Value::Array(a) => a.iter().for_each(|v| collect_placeholders(v, used)),
        _ => {}
    }
}

/// The app part of an endpoint id (`owner/app`), under which fal serves the queue's
/// `requests/{id}` URLs (`fal-ai/kling-video/v3/pro/text-to-video` → `fal-ai/kling-video`).
pub(super) fn app_of(endpoint_id: &str) -> Vec<&str> {
    endpoint_id
        .split('/')
        .filter(|s| !s.is_empty())
        .take(2)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn every_known_endpoint_declares_its_family_limits() {
        for k in KNOWN {
            let c = k.capabilities();
            assert_eq!(c.id, k.id);
            assert!(!c.durations.is_any(), "{}", k.id);
        }
        let veo = known_endpoint("fal-ai/veo3.1/lite").unwrap().capabilities();
        assert!(!veo.resolutions.contains(&Resolution::K4));
        assert!(veo.durations.allows(8) && !veo.durations.allows(5));
        let sd = known_endpoint("bytedance/seedance-2.0/text-to-video")
            .unwrap()
            .capabilities();
        assert!(sd.model_chosen_duration && !sd.first_frame);
        assert_eq!(
            app_of("fal-ai/kling-video/v3/pro/text-to-video"),
            ["fal-ai", "kling-video"]
        );
        assert_eq!(app_of("fal-ai/veo3.1"), ["fal-ai", "veo3.1"]);
    }

    #[test]
    fn templates_must_carry_what_their_capabilities_declare() {
        let t = json!({"prompt": "$prompt", "num_frames": 81, "seed": "$seed"});
        let ok = FalEndpoint::new("fal-ai/wan/v2.7/text-to-video", t.clone())
            .with_capabilities(ModelCapabilities::new("x").with_seed(true));
        assert!(ok.check().is_ok());
        assert_eq!(ok.capabilities.id, "fal-ai/wan/v2.7/text-to-video");
        let e = FalEndpoint::new("fal-ai/wan", t.clone())
            .with_capabilities(ModelCapabilities::new("x").with_first_frame(true))
            .check()
            .unwrap_err();
        assert!(e.to_string().contains("$first_frame"), "{e}");
        assert!(
            FalEndpoint::new("fal-ai/wan", json!({"p": 1}))
                .check()
                .is_err()
        );
        assert!(
            FalEndpoint::new("fal-ai/wan", json!(["$prompt"]))
                .check()
                .is_err()
        );
        assert!(FalEndpoint::new("../x", t).check().is_err());
    }

    #[test]
    fn placeholders_without_a_value_remove_their_key() {
        let v = |p: &str| match p {
            "$prompt" => Some(json!("A fox")),
            _ => None,
        };
        let t = json!({"prompt": "$prompt", "seed": "$seed", "fixed": {"n": 2, "s": "$seed"}});
        assert_eq!(
            fill(&t, &v),
            Some(json!({"prompt": "A fox", "fixed": {"n": 2}}))
        );
    }
}
