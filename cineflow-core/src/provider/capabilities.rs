//! What a provider, and each vendor model it serves, can honour.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::error_code::ErrorCode;
use crate::media::{AspectRatio, MediaKind, Resolution};

use super::{GenerationRequest, ProviderError, SubmitState};

/// Durations a model renders: a set of seconds, or an inclusive range.
///
/// Serialized as a JSON/TOML array (`[5, 10]`) or as `{ min = 4, max = 15 }`. The empty set
/// (the default) means any duration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Durations {
    /// These durations, in seconds; empty: any.
    Set(Vec<u32>),
    /// From `min` to `max` seconds, inclusive.
    Range {
        /// The shortest duration.
        min: u32,
        /// The longest duration.
        max: u32,
    },
}

impl Default for Durations {
    fn default() -> Self {
        Durations::Set(Vec::new())
    }
}

impl Durations {
    /// Any duration.
    pub const fn any() -> Self {
        Durations::Set(Vec::new())
    }

    /// These durations.
    pub fn set(seconds: impl Into<Vec<u32>>) -> Self {
        Durations::Set(seconds.into())
    }

    /// `min..=max` seconds.
    pub const fn range(min: u32, max: u32) -> Self {
        Durations::Range { min, max }
    }

    /// Whether this is "any duration".
    pub fn is_any(&self) -> bool {
        matches!(self, Durations::Set(s) if s.is_empty())
    }

    /// Whether `seconds` is served.
    pub fn allows(&self, seconds: u32) -> bool {
        match self {
            Durations::Set(s) => s.is_empty() || s.contains(&seconds),
            Durations::Range { min, max } => (*min..=*max).contains(&seconds),
        }
    }

    /// The longest duration served; `None` for "any".
    pub fn longest(&self) -> Option<u32> {
        match self {
            Durations::Set(s) => s.iter().copied().max(),
            Durations::Range { max, .. } => Some(*max),
        }
    }
}

impl fmt::Display for Durations {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Durations::Set(s) if s.is_empty() => f.write_str("any"),
            Durations::Set(s) => write!(f, "{s:?}"),
            Durations::Range { min, max } => write!(f, "{min}..={max}"),
        }
    }
}

/// What one vendor model can honour.
///
/// Lists describe what a request may carry: an empty `durations` or `aspect_ratios` means any
/// (every request has a duration and an aspect ratio, and providers that declare nothing keep
/// serving them all), while an empty `resolutions` means a request may not name a resolution.
/// Every `bool` and `max_*` is what the model supports when the request asks for it; the
/// default (`false`, 0) means "not supported", so a request that leaves the feature unset passes.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
#[non_exhaustive]
pub struct ModelCapabilities {
    /// The vendor model id, or [`ANY`](Self::ANY) (`*`) for every model the provider has no
    /// entry for.
    pub id: String,
    /// Durations of normal requests. Default: any.
    pub durations: Durations,
    /// Durations of pro requests. Default: any (then `durations` applies).
    pub pro_durations: Durations,
    /// Whether the model can pick the length itself
    /// ([`GenerationRequest::model_chosen_duration`]), within `durations`.
    pub model_chosen_duration: bool,
    /// Whether a pro/HD tier exists.
    pub pro: bool,
    /// Aspect ratios served. Default: empty (any).
    pub aspect_ratios: Vec<AspectRatio>,
    /// Resolutions a request may name. Default: empty (a request may not name one).
    pub resolutions: Vec<Resolution>,
    /// Whether a first frame is accepted.
    pub first_frame: bool,
    /// Whether a last frame is accepted.
    pub last_frame: bool,
    /// How many reference images are accepted.
    pub max_reference_images: u32,
    /// How many reference videos are accepted.
    pub max_reference_videos: u32,
    /// How many reference audio clips are accepted.
    pub max_reference_audio: u32,
    /// Whether `generate_audio` can be set (either way).
    pub audio: bool,
    /// Whether a seed is accepted.
    pub seed: bool,
    /// Whether a negative prompt is accepted.
    pub negative_prompt: bool,
    /// The longest prompt, in UTF-16 code units (Runway counts so). Default: no limit.
    pub max_prompt_utf16: Option<u32>,
    /// Whether the last frame can be returned.
    pub return_last_frame: bool,
    /// Whether `watermark` can be set (either way).
    pub watermark: bool,
    /// Whether the `flex` service tier is served ([`ServiceTier::Flex`](super::ServiceTier)).
    pub flex: bool,
}

/// What a provider that declares no model serves: any model, any duration and aspect ratio,
/// nothing else (today's [`Capabilities::default`]).
static DECLARES_NOTHING: ModelCapabilities = ModelCapabilities {
    id: String::new(),
    durations: Durations::any(),
    pro_durations: Durations::any(),
    model_chosen_duration: false,
    pro: false,
    aspect_ratios: Vec::new(),
    resolutions: Vec::new(),
    first_frame: false,
    last_frame: false,
    max_reference_images: 0,
    max_reference_videos: 0,
    max_reference_audio: 0,
    audio: false,
    seed: false,
    negative_prompt: false,
    max_prompt_utf16: None,
    return_last_frame: false,
    watermark: false,
    flex: false,
};

impl ModelCapabilities {
    /// The id of the entry that applies to every model without its own entry.
    pub const ANY: &str = "*";

    /// A model that supports nothing optional (any duration and aspect ratio, no pro tier, no
    /// media, no options): set what it does support.
    pub fn new(id: impl Into<String>) -> Self {
        Self {
            id: id.into(),
            ..Self::default()
        }
    }

    /// A model that honours every field of every request (test doubles).
    pub fn everything(id: impl Into<String>) -> Self {
        Self {
            id: id.into(),
            durations: Durations::any(),
            pro_durations: Durations::any(),
            model_chosen_duration: true,
            pro: true,
            aspect_ratios: Vec::new(),
            resolutions: Resolution::ALL.to_vec(),
            first_frame: true,
            last_frame: true,
            max_reference_images: u32::MAX,
            max_reference_videos: u32::MAX,
            max_reference_audio: u32::MAX,
            audio: true,
            seed: true,
            negative_prompt: true,
            max_prompt_utf16: None,
            return_last_frame: true,
            watermark: true,
            flex: true,
        }
    }

    /// Sets [`id`](Self::id).
    #[must_use]
    pub fn with_id(mut self, id: impl Into<String>) -> Self {
        self.id = id.into();
        self
    }

    crate::setters::with_setters!(
        with_durations => durations: Durations,
        with_pro_durations => pro_durations: Durations,
        with_model_chosen_duration => model_chosen_duration: bool,
        with_pro => pro: bool,
        with_aspect_ratios => aspect_ratios: Vec<AspectRatio>,
        with_resolutions => resolutions: Vec<Resolution>,
        with_first_frame => first_frame: bool,
        with_last_frame => last_frame: bool,
        with_max_reference_images => max_reference_images: u32,
        with_max_reference_videos => max_reference_videos: u32,
        with_max_reference_audio => max_reference_audio: u32,
        with_audio => audio: bool,
        with_seed => seed: bool,
        with_negative_prompt => negative_prompt: bool,
        with_max_prompt_utf16 => max_prompt_utf16: Option<u32>,
        with_return_last_frame => return_last_frame: bool,
        with_watermark => watermark: bool,
        with_flex => flex: bool,
    );

    /// The durations a request (pro or not) may ask for.
    pub fn durations_for(&self, is_pro: bool) -> &Durations {
        if is_pro && !self.pro_durations.is_any() {
            &self.pro_durations
        } else {
            &self.durations
        }
    }

    /// The length a request is priced at: its `duration_s`, or, when the model picks the length
    /// ([`GenerationRequest::model_chosen_duration`]), the longest one it may pick (so budgets
    /// are never under-estimated; `duration_s` when the model declares no upper bound).
    pub fn priced_duration(&self, req: &GenerationRequest) -> u32 {
        if req.model_chosen_duration {
            self.durations_for(req.is_pro)
                .longest()
                .unwrap_or(req.duration_s)
        } else {
            req.duration_s
        }
    }

    /// Why this model cannot serve `req`: the first field it cannot honour, named
    /// (`last_frame not supported`, `aspect_ratio 21:9 not in [16:9, 9:16]`); `None` when it can.
    pub fn rejects(&self, req: &GenerationRequest) -> Option<String> {
        if req.is_pro && !self.pro {
            return Some("is_pro: no pro tier".into());
        }
        if req.model_chosen_duration {
            if !self.model_chosen_duration {
                return Some("model_chosen_duration not supported".into());
            }
        } else {
            let durations = self.durations_for(req.is_pro);
            if !durations.allows(req.duration_s) {
                return Some(format!("duration {}s not in {durations}", req.duration_s));
            }
        }
        if !self.aspect_ratios.is_empty() && !self.aspect_ratios.contains(&req.aspect_ratio) {
            return Some(format!(
                "aspect_ratio {} not in [{}]",
                req.aspect_ratio,
                join(&self.aspect_ratios)
            ));
        }
        if let Some(r) = req.resolution
            && !self.resolutions.contains(&r)
        {
            return Some(if self.resolutions.is_empty() {
                format!("resolution {r} not supported (the model takes none)")
            } else {
                format!("resolution {r} not in [{}]", join(&self.resolutions))
            });
        }
        let unsupported = [
            ("first_frame", req.first_frame.is_some(), self.first_frame),
            ("last_frame", req.last_frame.is_some(), self.last_frame),
            ("generate_audio", req.generate_audio.is_some(), self.audio),
            ("seed", req.seed.is_some(), self.seed),
            (
                "negative_prompt",
                req.negative_prompt.is_some(),
                self.negative_prompt,
            ),
            ("watermark", req.watermark.is_some(), self.watermark),
            (
                "service_tier flex",
                req.service_tier == Some(super::ServiceTier::Flex),
                self.flex,
            ),
            (
                "return_last_frame",
                req.return_last_frame,
                self.return_last_frame,
            ),
        ];
        if let Some((field, ..)) = unsupported.iter().find(|(_, asked, can)| *asked && !can) {
            return Some(format!("{field} not supported"));
        }
        for (kind, max) in [
            (MediaKind::Image, self.max_reference_images),
            (MediaKind::Video, self.max_reference_videos),
            (MediaKind::Audio, self.max_reference_audio),
        ] {
            let n = req.references.iter().filter(|m| m.kind() == kind).count();
            if n > max as usize {
                return Some(format!("references: {n} {kind} reference(s) (max {max})"));
            }
        }
        if let Some(max) = self.max_prompt_utf16 {
            let units = req.prompt.encode_utf16().count();
            if units > max as usize {
                return Some(format!("prompt is {units} UTF-16 units (max {max})"));
            }
        }
        None
    }
}

fn join<T: fmt::Display>(items: &[T]) -> String {
    items
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

/// What a provider can do: its vendor models' capabilities, and provider-wide facts.
///
/// This and [`ModelCapabilities`] are `#[non_exhaustive]`: a provider written outside this
/// crate builds them with [`of_models`](Self::of_models) / [`ModelCapabilities::new`] and the
/// `with_*` setters, so that a new capability is not a breaking change.
///
/// ```
/// use cineflow_core::{AspectRatio, Capabilities, Durations, ModelCapabilities, Resolution};
///
/// let caps = Capabilities::of_models([ModelCapabilities::new("my-model-v1")
///     .with_durations(Durations::set([5, 10]))
///     .with_aspect_ratios(vec![AspectRatio::R16x9, AspectRatio::R9x16])
///     .with_resolutions(vec![Resolution::P720])
///     .with_first_frame(true)
///     .with_seed(true)])
/// .with_cancel(true)
/// .with_max_in_flight(4);
/// assert!(caps.model("my-model-v1").is_some_and(|m| m.seed));
/// assert_eq!(caps.max_in_flight, Some(4));
/// ```
///
/// Serde-friendly (router configs and tests may build them). A provider that declares no model
/// serves any model id with the defaults of [`ModelCapabilities`] (any duration and aspect
/// ratio, nothing optional); one that declares models serves those, plus every other id when
/// one entry is [`ModelCapabilities::ANY`].
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
#[non_exhaustive]
pub struct Capabilities {
    /// One entry per vendor model served. Default: empty (any model, nothing optional).
    pub models: Vec<ModelCapabilities>,
    /// Whether [`VideoProvider::cancel`](super::VideoProvider::cancel) works. Default: false.
    pub cancel: bool,
    /// The vendor's limit on jobs in flight. Default: none.
    pub max_in_flight: Option<u32>,
    /// The vendor's limit on requests per minute. Default: none.
    pub requests_per_minute: Option<u32>,
    /// Whether [`find_jobs`](super::VideoProvider::find_jobs) is an **exact lookup**: every
    /// submit carries a client-chosen id derived from the attempt's
    /// [`idempotency_key`](GenerationRequest::idempotency_key), unique per vendor account (the
    /// vendor refuses a second job with it), and `find_jobs` looks that id up, answering the
    /// attempt's own job or nothing. An empty answer then proves the attempt created no job,
    /// and reconciliation may send the same attempt again (see the orchestrator's
    /// reconciliation). Default: false (a search that may match other jobs, or miss).
    pub exact_lookup: bool,
}

impl Capabilities {
    /// Capabilities of these models, nothing provider-wide.
    pub fn of_models(models: impl IntoIterator<Item = ModelCapabilities>) -> Self {
        Self {
            models: models.into_iter().collect(),
            ..Self::default()
        }
    }

    /// Any model, honouring every field of every request, and cancel (test doubles).
    pub fn everything() -> Self {
        Self {
            cancel: true,
            ..Self::of_models([ModelCapabilities::everything(ModelCapabilities::ANY)])
        }
    }

    crate::setters::with_setters!(
        with_models => models: Vec<ModelCapabilities>,
        with_cancel => cancel: bool,
        with_max_in_flight => max_in_flight?: u32,
        with_requests_per_minute => requests_per_minute?: u32,
        with_exact_lookup => exact_lookup: bool,
    );

    /// Adds (or replaces) one model's entry.
    pub fn with_model(mut self, model: ModelCapabilities) -> Self {
        self.models.retain(|m| m.id != model.id);
        self.models.push(model);
        self
    }

    /// The capabilities of vendor model `id`: its own entry, else the `*` entry, else (when no
    /// model is declared) the defaults; `None` when the model is not served.
    pub fn model(&self, id: &str) -> Option<&ModelCapabilities> {
        if self.models.is_empty() {
            return Some(&DECLARES_NOTHING);
        }
        self.models
            .iter()
            .find(|m| m.id == id)
            .or_else(|| self.models.iter().find(|m| m.id == ModelCapabilities::ANY))
    }

    /// Why this provider cannot serve `req` on its `vendor_model`, or `None` when it can.
    pub fn rejects(&self, req: &GenerationRequest) -> Option<String> {
        self.rejects_on(req, &req.vendor_model)
    }

    /// Why this provider cannot serve `req` on vendor model `model` (adapters that pick a
    /// default model for an empty `vendor_model`), or `None` when it can.
    pub fn rejects_on(&self, req: &GenerationRequest, model: &str) -> Option<String> {
        match self.model(model) {
            None => Some(format!("model {model:?} not served")),
            Some(m) => m.rejects(req),
        }
    }

    /// [`rejects`](Self::rejects) as the error an adapter's `submit` returns before sending
    /// anything: [`ErrorCode::InvalidRequest`], not retryable, [`SubmitState::NotSent`], the
    /// message naming the model and the field.
    pub fn check(&self, req: &GenerationRequest) -> Result<(), ProviderError> {
        self.check_on(req, &req.vendor_model)
    }

    /// [`check`](Self::check) on vendor model `model`.
    pub fn check_on(&self, req: &GenerationRequest, model: &str) -> Result<(), ProviderError> {
        match self.rejects_on(req, model) {
            None => Ok(()),
            Some(why) => Err(ProviderError::new(
                ErrorCode::InvalidRequest,
                format!("{model}: {why}"),
            )
            .with_retryable(false)
            .with_submit_state(SubmitState::NotSent)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::TaskId;
    use crate::media::{ImageRef, MediaRef, MediaRole};

    fn req(model: &str, duration_s: u32) -> GenerationRequest {
        GenerationRequest::new(TaskId::new(), model, "A cat.", duration_s)
    }

    fn gen4_turbo() -> ModelCapabilities {
        ModelCapabilities {
            durations: Durations::set([5, 10]),
            aspect_ratios: vec![AspectRatio::R16x9, AspectRatio::R9x16],
            first_frame: true,
            max_prompt_utf16: Some(1000),
            ..ModelCapabilities::new("gen4_turbo")
        }
    }

    #[test]
    fn the_first_unsupported_field_is_named() {
        let m = gen4_turbo();
        let frame = ImageRef::new("https://cdn.example/a.png").unwrap();
        assert_eq!(m.rejects(&req("gen4_turbo", 5)), None);
        assert_eq!(
            m.rejects(&req("gen4_turbo", 5).with_last_frame(frame.clone())),
            Some("last_frame not supported".into())
        );
        assert_eq!(
            m.rejects(&req("gen4_turbo", 7)),
            Some("duration 7s not in [5, 10]".into())
        );
        assert_eq!(
            m.rejects(&req("gen4_turbo", 5).with_aspect_ratio(AspectRatio::R21x9)),
            Some("aspect_ratio 21:9 not in [16:9, 9:16]".into())
        );
        let long = GenerationRequest::new(TaskId::new(), "gen4_turbo", "é".repeat(1200), 5);
        assert_eq!(
            m.rejects(&long),
            Some("prompt is 1200 UTF-16 units (max 1000)".into())
        );
        // An emoji is two UTF-16 units.
        let emoji = GenerationRequest::new(TaskId::new(), "gen4_turbo", "🎬".repeat(501), 5);
        assert_eq!(
            m.rejects(&emoji),
            Some("prompt is 1002 UTF-16 units (max 1000)".into())
        );
        let audio = MediaRef::audio("refs/a.mp3", MediaRole::BackgroundAudio).unwrap();
        assert_eq!(
            m.rejects(&req("gen4_turbo", 5).with_reference(audio)),
            Some("references: 1 audio reference(s) (max 0)".into())
        );
        for (r, field) in [
            (req("m", 5).with_seed(1), "seed"),
            (req("m", 5).with_negative_prompt("blur"), "negative_prompt"),
            (req("m", 5).with_generate_audio(false), "generate_audio"),
            (req("m", 5).with_watermark(false), "watermark"),
            (
                req("m", 5).with_return_last_frame(true),
                "return_last_frame",
            ),
        ] {
            assert_eq!(m.rejects(&r), Some(format!("{field} not supported")));
        }
        assert_eq!(
            m.rejects(&req("m", 5).with_resolution(Resolution::P1080)),
            Some("resolution 1080p not supported (the model takes none)".into())
        );
        assert_eq!(
            m.rejects(&req("m", 5).with_pro(true)),
            Some("is_pro: no pro tier".into())
        );
    }

    #[test]
    fn a_model_chosen_length_is_served_only_where_declared_and_priced_at_the_longest() {
        let auto = req("gen4_turbo", 99).with_model_chosen_duration(true);
        assert_eq!(
            gen4_turbo().rejects(&auto),
            Some("model_chosen_duration not supported".into())
        );
        let picks = ModelCapabilities {
            model_chosen_duration: true,
            durations: Durations::range(4, 15),
            ..gen4_turbo()
        };
        // The requested length does not matter when the model picks it …
        assert_eq!(picks.rejects(&auto), None);
        // … and estimates assume the longest length it may pick.
        assert_eq!(picks.priced_duration(&auto), 15);
        assert_eq!(picks.priced_duration(&req("gen4_turbo", 5)), 5);
        let set = ModelCapabilities {
            durations: Durations::set([5, 10]),
            ..picks
        };
        assert_eq!(set.priced_duration(&auto), 10);
        let unbounded = ModelCapabilities {
            durations: Durations::any(),
            ..set
        };
        assert_eq!(unbounded.priced_duration(&auto), 99);
    }

    #[test]
    fn durations_are_sets_or_inclusive_ranges_in_json() {
        let set: Durations = serde_json::from_str("[4, 8, 12]").unwrap();
        let range: Durations = serde_json::from_str(r#"{"min": 4, "max": 15}"#).unwrap();
        assert!(set.allows(8) && !set.allows(5));
        assert!(range.allows(4) && range.allows(15) && !range.allows(16));
        assert!(Durations::default().allows(999));
        assert_eq!(range.to_string(), "4..=15");
    }

    #[test]
    fn models_are_found_by_id_then_by_the_wildcard() {
        let caps = Capabilities::of_models([gen4_turbo()]);
        assert_eq!(
            caps.rejects(&req("veo3", 5)),
            Some("model \"veo3\" not served".into())
        );
        let caps = caps.with_model(ModelCapabilities {
            durations: Durations::set([8]),
            ..ModelCapabilities::new(ModelCapabilities::ANY)
        });
        assert_eq!(caps.rejects(&req("veo3", 8)), None);
        assert_eq!(caps.rejects(&req("gen4_turbo", 5)), None);
        assert!(caps.rejects(&req("gen4_turbo", 8)).is_some());
    }

    #[test]
    fn a_provider_declaring_nothing_serves_any_model_but_nothing_optional() {
        let caps = Capabilities::default();
        assert_eq!(caps.rejects(&req("anything", 37)), None);
        let frame = ImageRef::new("https://cdn.example/a.png").unwrap();
        assert_eq!(
            caps.rejects(&req("anything", 5).with_first_frame(frame)),
            Some("first_frame not supported".into())
        );
        let all = Capabilities::everything();
        let full = req("x", 5)
            .with_pro(true)
            .with_resolution(Resolution::K4)
            .with_last_frame(ImageRef::new("refs/b.png").unwrap())
            .with_seed(3)
            .with_return_last_frame(true);
        assert_eq!(all.rejects(&full), None);
    }

    #[test]
    fn check_refuses_before_sending_with_the_model_and_field_named() {
        let caps = Capabilities::of_models([gen4_turbo()]);
        let e = caps.check(&req("gen4_turbo", 5).with_seed(1)).unwrap_err();
        assert_eq!(e.code(), ErrorCode::InvalidRequest);
        assert_eq!(e.submit_state(), SubmitState::NotSent);
        assert!(!e.is_retryable());
        assert_eq!(e.message(), "gen4_turbo: seed not supported");
    }

    #[test]
    fn capabilities_round_trip_through_json() {
        let caps = Capabilities::of_models([gen4_turbo()]).with_model(ModelCapabilities {
            durations: Durations::range(4, 15),
            ..ModelCapabilities::new("seedance")
        });
        let json = serde_json::to_string(&caps).unwrap();
        assert_eq!(serde_json::from_str::<Capabilities>(&json).unwrap(), caps);
    }
}
