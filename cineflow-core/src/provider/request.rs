//! [`GenerationRequest`]: what a segment asks a vendor for, in provider-neutral terms.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::callback::CallbackUrl;
use crate::ids::TaskId;
use crate::media::{AspectRatio, ImageRef, MediaRef, Orientation, Resolution};

/// A provider-neutral generation request.
///
/// Make one with [`new`](Self::new) and the chainable `with_*` setters; fields added later get
/// defaults there, so code that builds requests this way keeps compiling. A field a vendor model
/// cannot honour is never dropped: the router skips that model, and adapters refuse such a
/// request before sending anything (see [`Capabilities`](crate::Capabilities)).
///
/// Serialized with the field names below. Requests serialized before the v2 fields existed
/// still deserialize: `"orientation": "horizontal" | "vertical"` becomes the aspect ratio
/// 16:9 / 9:16 and `"image"` becomes the first frame; absent new fields take their defaults.
///
/// ```
/// use cineflow_core::{AspectRatio, GenerationRequest, ImageRef, TaskId};
/// let req = GenerationRequest::new(TaskId::new(), "seedance2", "A paper boat.", 5)
///     .with_aspect_ratio(AspectRatio::R9x16)
///     .with_first_frame(ImageRef::new("https://cdn.example/boat.png")?)
///     .with_seed(42);
/// assert_eq!(req.seed, Some(42));
/// # Ok::<(), cineflow_core::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(from = "RequestRepr")]
#[non_exhaustive]
pub struct GenerationRequest {
    /// The task this request serves.
    pub task_id: TaskId,
    /// The vendor's model id, e.g. `sora-2` (chosen by the router).
    pub vendor_model: String,
    /// The complete prompt ([`Segment::full_prompt`](crate::Segment::full_prompt)).
    pub prompt: String,
    /// Requested length in seconds; with [`model_chosen_duration`](Self::model_chosen_duration),
    /// the length a caller assumes before a vendor model is chosen (routing prices such a
    /// request at the longest length the model may pick).
    pub duration_s: u32,
    /// Whether the model picks the video's length within its own range (Seedance's
    /// `duration: -1`; billed by the length it makes). Only models whose capabilities declare
    /// [`model_chosen_duration`](crate::ModelCapabilities::model_chosen_duration) serve it.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub model_chosen_duration: bool,
    /// The video's aspect ratio. Default 16:9.
    pub aspect_ratio: AspectRatio,
    /// An explicit resolution, if the request names one (else the model's or tier's default).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resolution: Option<Resolution>,
    /// Whether the pro/HD tier is wanted (CineFlow's `is_pro`).
    pub is_pro: bool,
    /// The first frame (an image-to-video request).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_frame: Option<ImageRef>,
    /// The last frame (a first-and-last-frame request).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_frame: Option<ImageRef>,
    /// Reference media (images, videos, audio), in the order the prompt refers to them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub references: Vec<MediaRef>,
    /// Whether to generate an audio track (`None`: the model's default).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub generate_audio: Option<bool>,
    /// A seed for repeatable output.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seed: Option<u64>,
    /// What the video must not show.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub negative_prompt: Option<String>,
    /// Whether the vendor's watermark is wanted (`None`: the model's default).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub watermark: Option<bool>,
    /// Whether the vendor should return the video's last frame as an image.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub return_last_frame: bool,
    /// The vendor service tier asked for (`None`: the vendor's default). Set by routing from
    /// the route's [`service_tier`](crate::RouteConfig::service_tier).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_tier: Option<ServiceTier>,
    /// How long the orchestrator will follow the job, in seconds (its job deadline,
    /// [`PollPolicy::job_timeout`](crate::PollPolicy::job_timeout)). Vendors with a job expiry
    /// (Ark's `execution_expires_after`) use it by default, so a job nobody waits for any more
    /// expires at the vendor instead of running on. A hint, never refused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time_budget_s: Option<u64>,
    /// `{task_id}-{attempt}`: sent to vendors that honour idempotency keys.
    pub idempotency_key: String,
    /// Where the vendor should call back for this attempt (its secret token inside), set by
    /// the orchestrator when callbacks are on for the provider
    /// ([`CallbackConfig`](crate::CallbackConfig)); adapters whose vendor calls back send it
    /// as the vendor's callback URL, in place of one configured on the adapter. Never
    /// serialized (the token is a secret) and not part of what
    /// [`find_jobs`](crate::VideoProvider::find_jobs) matches.
    #[serde(skip)]
    pub callback: Option<CallbackUrl>,
    /// Vendor-specific extra fields, merged into the vendor request by adapters that support it.
    #[serde(default, skip_serializing_if = "serde_json::Value::is_null")]
    pub extra: serde_json::Value,
}

impl GenerationRequest {
    /// A request of `duration_s` seconds: 16:9, not pro, no media, every option at the model's
    /// default, idempotency key `{task_id}-1` (attempt 1), no extra fields.
    pub fn new(
        task_id: TaskId,
        vendor_model: impl Into<String>,
        prompt: impl Into<String>,
        duration_s: u32,
    ) -> Self {
        Self {
            task_id,
            vendor_model: vendor_model.into(),
            prompt: prompt.into(),
            duration_s,
            model_chosen_duration: false,
            aspect_ratio: AspectRatio::default(),
            resolution: None,
            is_pro: false,
            first_frame: None,
            last_frame: None,
            references: Vec::new(),
            generate_audio: None,
            seed: None,
            negative_prompt: None,
            watermark: None,
            return_last_frame: false,
            service_tier: None,
            time_budget_s: None,
            idempotency_key: format!("{task_id}-1"),
            callback: None,
            extra: serde_json::Value::Null,
        }
    }

    /// The orientation Sora-era vendors take: [`AspectRatio::orientation`] of the aspect ratio
    /// (9:16 and 3:4 are vertical; every other ratio, square and `adaptive` included, is
    /// horizontal).
    pub fn orientation(&self) -> Orientation {
        self.aspect_ratio.orientation()
    }

    /// Sets the vendor model.
    pub fn with_vendor_model(mut self, vendor_model: impl Into<String>) -> Self {
        self.vendor_model = vendor_model.into();
        self
    }

    /// Lets the model pick the video's length (`true`), or asks for `duration_s` (`false`).
    pub fn with_model_chosen_duration(mut self, model_chosen: bool) -> Self {
        self.model_chosen_duration = model_chosen;
        self
    }

    /// Sets the aspect ratio.
    pub fn with_aspect_ratio(mut self, aspect_ratio: AspectRatio) -> Self {
        self.aspect_ratio = aspect_ratio;
        self
    }

    /// Sets the aspect ratio from an orientation (16:9 or 9:16).
    pub fn with_orientation(self, orientation: Orientation) -> Self {
        self.with_aspect_ratio(orientation.into())
    }

    /// Names a resolution.
    pub fn with_resolution(mut self, resolution: Resolution) -> Self {
        self.resolution = Some(resolution);
        self
    }

    /// Asks for the pro/HD tier.
    pub fn with_pro(mut self, is_pro: bool) -> Self {
        self.is_pro = is_pro;
        self
    }

    /// Sets the first frame.
    pub fn with_first_frame(mut self, image: ImageRef) -> Self {
        self.first_frame = Some(image);
        self
    }

    /// Sets the last frame.
    pub fn with_last_frame(mut self, image: ImageRef) -> Self {
        self.last_frame = Some(image);
        self
    }

    /// Appends a reference medium.
    pub fn with_reference(mut self, media: MediaRef) -> Self {
        self.references.push(media);
        self
    }

    /// Asks for an audio track, or for none.
    pub fn with_generate_audio(mut self, generate_audio: bool) -> Self {
        self.generate_audio = Some(generate_audio);
        self
    }

    /// Sets the seed.
    pub fn with_seed(mut self, seed: u64) -> Self {
        self.seed = Some(seed);
        self
    }

    /// Sets the negative prompt.
    pub fn with_negative_prompt(mut self, negative_prompt: impl Into<String>) -> Self {
        self.negative_prompt = Some(negative_prompt.into());
        self
    }

    /// Asks for the vendor's watermark, or for none.
    pub fn with_watermark(mut self, watermark: bool) -> Self {
        self.watermark = Some(watermark);
        self
    }

    /// Asks the vendor to return the last frame.
    pub fn with_return_last_frame(mut self, return_last_frame: bool) -> Self {
        self.return_last_frame = return_last_frame;
        self
    }

    /// Asks for a vendor service tier.
    pub fn with_service_tier(mut self, tier: ServiceTier) -> Self {
        self.service_tier = Some(tier);
        self
    }

    /// Sets how long the job will be waited for ([`time_budget_s`](Self::time_budget_s)),
    /// rounded up to whole seconds.
    pub fn with_time_budget(mut self, budget: std::time::Duration) -> Self {
        let secs = budget.as_secs() + u64::from(budget.subsec_nanos() > 0);
        self.time_budget_s = Some(secs);
        self
    }

    /// Sets the idempotency key.
    pub fn with_idempotency_key(mut self, key: impl Into<String>) -> Self {
        self.idempotency_key = key.into();
        self
    }

    /// Sets the URL the vendor should call back for this attempt.
    pub fn with_callback(mut self, callback: CallbackUrl) -> Self {
        self.callback = Some(callback);
        self
    }

    /// Sets the vendor-specific extra fields.
    pub fn with_extra(mut self, extra: serde_json::Value) -> Self {
        self.extra = extra;
        self
    }
}

/// A vendor service tier (Ark / ModelArk `service_tier`). Serialized in snake_case.
///
/// A request asking for [`Flex`](Self::Flex) goes only to models whose capabilities accept it
/// ([`ModelCapabilities::flex`](crate::ModelCapabilities::flex)); elsewhere it is refused
/// before anything is paid.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ServiceTier {
    /// `default`: online.
    Default,
    /// `flex`: offline, slower, about half the price (Seedance 1.x; 2.x are online-only).
    Flex,
}

impl ServiceTier {
    /// The wire name (`default`, `flex`).
    pub const fn as_str(self) -> &'static str {
        match self {
            ServiceTier::Default => "default",
            ServiceTier::Flex => "flex",
        }
    }
}

impl fmt::Display for ServiceTier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What [`GenerationRequest`] deserializes from: today's fields plus the pre-v2 names
/// (`orientation`, `image`).
#[derive(Deserialize)]
struct RequestRepr {
    task_id: TaskId,
    vendor_model: String,
    prompt: String,
    duration_s: u32,
    #[serde(default)]
    model_chosen_duration: bool,
    #[serde(default)]
    aspect_ratio: Option<AspectRatio>,
    /// Pre-v2: read as the aspect ratio when `aspect_ratio` is absent.
    #[serde(default)]
    orientation: Option<Orientation>,
    #[serde(default)]
    resolution: Option<Resolution>,
    #[serde(default)]
    is_pro: bool,
    #[serde(default)]
    first_frame: Option<ImageRef>,
    /// Pre-v2: read as the first frame when `first_frame` is absent.
    #[serde(default)]
    image: Option<ImageRef>,
    #[serde(default)]
    last_frame: Option<ImageRef>,
    #[serde(default)]
    references: Vec<MediaRef>,
    #[serde(default)]
    generate_audio: Option<bool>,
    #[serde(default)]
    seed: Option<u64>,
    #[serde(default)]
    negative_prompt: Option<String>,
    #[serde(default)]
    watermark: Option<bool>,
    #[serde(default)]
    return_last_frame: bool,
    #[serde(default)]
    service_tier: Option<ServiceTier>,
    #[serde(default)]
    time_budget_s: Option<u64>,
    idempotency_key: String,
    #[serde(default)]
    extra: serde_json::Value,
}

impl From<RequestRepr> for GenerationRequest {
    fn from(r: RequestRepr) -> Self {
        Self {
            task_id: r.task_id,
            vendor_model: r.vendor_model,
            prompt: r.prompt,
            duration_s: r.duration_s,
            model_chosen_duration: r.model_chosen_duration,
            aspect_ratio: r
                .aspect_ratio
                .or(r.orientation.map(AspectRatio::from))
                .unwrap_or_default(),
            resolution: r.resolution,
            is_pro: r.is_pro,
            first_frame: r.first_frame.or(r.image),
            last_frame: r.last_frame,
            references: r.references,
            generate_audio: r.generate_audio,
            seed: r.seed,
            negative_prompt: r.negative_prompt,
            watermark: r.watermark,
            return_last_frame: r.return_last_frame,
            service_tier: r.service_tier,
            time_budget_s: r.time_budget_s,
            idempotency_key: r.idempotency_key,
            callback: None,
            extra: r.extra,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::{MediaKind, MediaRole};

    #[test]
    fn a_request_serialized_before_v2_still_deserializes() {
        let id = TaskId::new();
        let json = format!(
            r#"{{"task_id":"{id}","vendor_model":"sora2","prompt":"A cat.","duration_s":10,
                "orientation":"vertical","is_pro":true,
                "image":"https://cdn.example/first.png","idempotency_key":"{id}-2",
                "extra":{{"seed":7}}}}"#
        );
        let req: GenerationRequest = serde_json::from_str(&json).unwrap();
        assert_eq!(req.aspect_ratio, AspectRatio::R9x16);
        assert_eq!(req.orientation(), Orientation::Vertical);
        assert_eq!(
            req.first_frame.as_ref().map(ImageRef::as_str),
            Some("https://cdn.example/first.png")
        );
        assert!(req.is_pro);
        assert_eq!(req.idempotency_key, format!("{id}-2"));
        assert_eq!(req.extra["seed"], 7);
        assert_eq!(
            (req.last_frame.clone(), req.seed, req.return_last_frame),
            (None, None, false)
        );
        assert!(req.references.is_empty());
        assert!(!req.model_chosen_duration);

        let horizontal = json.replace("\"vertical\"", "\"horizontal\"").replace(
            r#""image":"https://cdn.example/first.png","#,
            r#""image":null,"#,
        );
        let req: GenerationRequest = serde_json::from_str(&horizontal).unwrap();
        assert_eq!(
            (req.aspect_ratio, req.first_frame),
            (AspectRatio::R16x9, None)
        );
    }

    #[test]
    fn a_v2_request_round_trips_through_json() {
        let req = GenerationRequest::new(TaskId::new(), "seedance2", "A boat.", 5)
            .with_aspect_ratio(AspectRatio::R21x9)
            .with_resolution(Resolution::P1080)
            .with_first_frame(ImageRef::new("refs/a.png").unwrap())
            .with_last_frame(ImageRef::new("refs/b.png").unwrap())
            .with_reference(
                MediaRef::new(MediaKind::Audio, "refs/a.mp3", MediaRole::BackgroundAudio).unwrap(),
            )
            .with_generate_audio(true)
            .with_seed(9)
            .with_negative_prompt("blur")
            .with_watermark(false)
            .with_return_last_frame(true)
            .with_model_chosen_duration(true);
        let json = serde_json::to_value(&req).unwrap();
        assert_eq!(json["aspect_ratio"], "21:9");
        assert_eq!(json["model_chosen_duration"], true);
        assert_eq!(json["references"][0]["role"], "background_audio");
        assert_eq!(
            serde_json::from_value::<GenerationRequest>(json).unwrap(),
            req
        );
    }

    #[test]
    fn a_bad_media_source_in_json_is_an_error_naming_it() {
        let id = TaskId::new();
        let json = format!(
            r#"{{"task_id":"{id}","vendor_model":"m","prompt":"p","duration_s":5,
                "first_frame":"ftp://x/a.png","idempotency_key":"k"}}"#
        );
        let err = serde_json::from_str::<GenerationRequest>(&json)
            .unwrap_err()
            .to_string();
        assert!(err.contains("ftp"), "{err}");
    }
}
