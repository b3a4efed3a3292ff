//! The Seedance create body (Ark SDK `tasks.py create`, ModelArk video docs): the model table,
//! strict validation of `POST /contents/generations/tasks`, and what a task echoes of its
//! request.
//!
//! Validation is as strict as the documented limits: an unknown body key, a wrong type, a
//! value out of range or a field the model cannot honour is a 400 naming the field (or the
//! JSON path in `content[]`), never a silent default. An unknown model is 404
//! `InvalidEndpoint.NotFound`; an `ep-…` endpoint id is served as Seedance 2.0.

use axum::http::StatusCode;
use serde_json::{Map, Value};

/// Frames per second of every output (`framespersecond`).
pub(crate) const FPS: u64 = 24;
/// The duration the fake picks for `duration: -1`.
const AUTO_DURATION: u32 = 5;
/// Default `execution_expires_after`, in seconds (48 h).
const DEFAULT_EXPIRES_AFTER: u64 = 172_800;
/// The body keys the SDK sends (`tasks.py create`).
const KEYS: [&str; 18] = [
    "model",
    "content",
    "safety_identifier",
    "callback_url",
    "return_last_frame",
    "service_tier",
    "execution_expires_after",
    "priority",
    "generate_audio",
    "draft",
    "camera_fixed",
    "watermark",
    "seed",
    "resolution",
    "ratio",
    "duration",
    "frames",
    "tools",
];
const RATIOS: [&str; 7] = ["21:9", "16:9", "4:3", "1:1", "3:4", "9:16", "adaptive"];

/// A model family: what its ids accept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Family {
    V20,
    V20Fast,
    V20Mini,
    V25,
    V15Pro,
    V10Pro,
    V10LiteT2v,
    V10LiteI2v,
}

/// The family of a model id (CN `doubao-…` and BytePlus ids, late 2026), or of an `ep-…`
/// endpoint (served as 2.0); `None` for an unknown model.
pub(crate) fn family(model: &str) -> Option<Family> {
    if model.starts_with("ep-") && model.len() > 3 {
        return Some(Family::V20);
    }
    Some(match model {
        "doubao-seedance-2-0-260128" | "dreamina-seedance-2-0-260128" => Family::V20,
        "doubao-seedance-2-0-fast-260128" | "dreamina-seedance-2-0-fast-260128" => Family::V20Fast,
        "doubao-seedance-2-0-mini-260615" | "dreamina-seedance-2-0-mini-260615" => Family::V20Mini,
        "doubao-seedance-2-5-260628" | "dreamina-seedance-2-5-260628" => Family::V25,
        "doubao-seedance-1-5-pro-251215" | "seedance-1-5-pro-251215" => Family::V15Pro,
        "doubao-seedance-1-0-pro-250528"
        | "doubao-seedance-1-0-pro-fast-251015"
        | "seedance-1-0-pro-250428"
        | "seedance-1-0-pro-fast-250528" => Family::V10Pro,
        "doubao-seedance-1-0-lite-t2v-250428" | "seedance-1-0-lite-t2v-250219" => {
            Family::V10LiteT2v
        }
        "doubao-seedance-1-0-lite-i2v-250428" | "seedance-1-0-lite-i2v-250219" => {
            Family::V10LiteI2v
        }
        _ => return None,
    })
}

impl Family {
    fn is_v2(self) -> bool {
        matches!(self, Self::V20 | Self::V20Fast | Self::V20Mini | Self::V25)
    }

    fn is_v20(self) -> bool {
        matches!(self, Self::V20 | Self::V20Fast | Self::V20Mini)
    }

    fn resolutions(self) -> &'static [&'static str] {
        match self {
            Self::V20 => &["480p", "720p", "1080p", "4k"],
            Self::V20Fast | Self::V20Mini => &["480p", "720p"],
            _ => &["480p", "720p", "1080p"],
        }
    }

    /// `(min, max)` seconds, and whether `-1` (model picks) is allowed.
    fn durations(self) -> (i64, i64, bool) {
        match self {
            Self::V25 => (4, 30, true),
            s if s.is_v2() => (4, 15, true),
            _ => (2, 12, false),
        }
    }

    fn default_duration(self) -> i64 {
        if self == Self::V25 { -1 } else { 5 }
    }

    /// Whether it makes sound (`generate_audio`, default `true`).
    pub(crate) fn has_audio(self) -> bool {
        self.is_v2() || self == Self::V15Pro
    }

    /// `first_frame` + `last_frame`.
    fn first_last(self) -> bool {
        matches!(self, Self::V20 | Self::V25 | Self::V15Pro | Self::V10Pro)
    }

    /// At most this many `reference_image`s (0: none).
    fn max_reference_images(self) -> usize {
        match self {
            Self::V25 => 30,
            s if s.is_v20() => 9,
            Self::V10LiteI2v => 4,
            _ => 0,
        }
    }

    /// At most this many reference videos, and as many reference audios.
    fn max_reference_media(self) -> usize {
        match self {
            Self::V25 => 10,
            s if s.is_v20() => 3,
            _ => 0,
        }
    }

    fn frames(self) -> bool {
        matches!(self, Self::V10Pro | Self::V10LiteT2v | Self::V10LiteI2v)
    }

    /// Whether tasks echo `priority` (settable 0–9 on 2.0 only).
    pub(crate) fn has_priority(self) -> bool {
        self.is_v20()
    }

    /// Whether tasks echo `draft` (1.5 Pro only).
    pub(crate) fn has_draft(self) -> bool {
        self == Self::V15Pro
    }
}

/// A refusal: HTTP status, Ark error code, message, and the field it is about.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct BadRequest {
    pub(crate) status: StatusCode,
    pub(crate) code: &'static str,
    pub(crate) message: String,
    pub(crate) param: Option<String>,
}

fn invalid(param: impl Into<String>, why: impl AsRef<str>) -> BadRequest {
    let param = param.into();
    BadRequest {
        status: StatusCode::BAD_REQUEST,
        code: "InvalidParameter",
        message: format!(
            "The parameter `{param}` specified in the request is not valid: {}.",
            why.as_ref()
        ),
        param: Some(param),
    }
}

fn missing(param: &str) -> BadRequest {
    BadRequest {
        status: StatusCode::BAD_REQUEST,
        code: "MissingParameter",
        message: format!(
            "The request failed because it is missing one or multiple required parameters: `{param}`."
        ),
        param: Some(param.to_owned()),
    }
}

/// A validated create.
#[derive(Debug)]
pub(crate) struct Create {
    /// The `text` item (empty when there is none).
    pub(crate) prompt: String,
    pub(crate) model: String,
    pub(crate) family: Family,
    /// The body as received.
    pub(crate) request: Map<String, Value>,
}

/// What a task echoes of its request, defaults filled in.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Echo {
    pub(crate) resolution: String,
    /// The actual ratio (`adaptive` is echoed as `16:9`).
    pub(crate) ratio: String,
    /// The output duration (`-1` is echoed as what the model picked).
    pub(crate) duration: u32,
    pub(crate) width: u64,
    pub(crate) height: u64,
    pub(crate) service_tier: String,
    pub(crate) execution_expires_after: u64,
}

impl Echo {
    /// Reads a validated request (of a model of family `f`).
    pub(crate) fn of(request: &Value, f: Family) -> Self {
        let s = |k: &str, d: &str| {
            request
                .get(k)
                .and_then(Value::as_str)
                .unwrap_or(d)
                .to_owned()
        };
        let resolution = s("resolution", "720p");
        let ratio = match s("ratio", "adaptive").as_str() {
            "adaptive" => "16:9".to_owned(),
            r => r.to_owned(),
        };
        let duration = request
            .get("duration")
            .and_then(Value::as_i64)
            .unwrap_or_else(|| f.default_duration());
        let duration = u32::try_from(duration).unwrap_or(AUTO_DURATION);
        let (width, height) = dims(&resolution, &ratio);
        Self {
            resolution,
            ratio,
            duration,
            width,
            height,
            service_tier: s("service_tier", "default"),
            execution_expires_after: request
                .get("execution_expires_after")
                .and_then(Value::as_u64)
                .unwrap_or(DEFAULT_EXPIRES_AFTER),
        }
    }

    /// `usage.completion_tokens` ≈ `seconds × W × H × fps / 1024` (ModelArk billing).
    pub(crate) fn tokens(&self) -> u64 {
        u64::from(self.duration) * self.width * self.height * FPS / 1024
    }

    /// The tokens priced at the BytePlus 2.0 online rate (USD 7.0 / 1M tokens at 480p and
    /// 720p, 7.7 at 1080p, 4.0 at 4k), in cents, rounded up.
    pub(crate) fn cost_cents(&self) -> u64 {
        let tenth_cents_per_m = match self.resolution.as_str() {
            "1080p" => 7_700,
            "4k" => 4_000,
            _ => 7_000,
        };
        (self.tokens() * tenth_cents_per_m).div_ceil(10_000_000)
    }
}

/// Output pixels: the short side from the resolution, the long side from the ratio, even.
fn dims(resolution: &str, ratio: &str) -> (u64, u64) {
    let short: u64 = match resolution {
        "480p" => 480,
        "1080p" => 1080,
        "4k" => 2160,
        _ => 720,
    };
    let (a, b) = ratio
        .split_once(':')
        .and_then(|(a, b)| Some((a.parse::<u64>().ok()?, b.parse::<u64>().ok()?)))
        .filter(|(a, b)| *a > 0 && *b > 0)
        .unwrap_or((16, 9));
    let long = |x: u64, y: u64| (short * x).div_ceil(y).div_ceil(2) * 2;
    if a >= b {
        (long(a, b), short)
    } else {
        (short, long(b, a))
    }
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

fn bool_field(body: &Map<String, Value>, k: &str) -> Result<Option<bool>, BadRequest> {
    match body.get(k) {
        None => Ok(None),
        Some(Value::Bool(b)) => Ok(Some(*b)),
        Some(v) => Err(invalid(
            k,
            format!("expected a boolean, got {}", type_name(v)),
        )),
    }
}

fn int_field(body: &Map<String, Value>, k: &str) -> Result<Option<i64>, BadRequest> {
    match body.get(k) {
        None => Ok(None),
        Some(v) => v
            .as_i64()
            .map(Some)
            .ok_or_else(|| invalid(k, format!("expected an integer, got {}", type_name(v)))),
    }
}

fn str_field<'a>(body: &'a Map<String, Value>, k: &str) -> Result<Option<&'a str>, BadRequest> {
    match body.get(k) {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(v) => Err(invalid(
            k,
            format!("expected a string, got {}", type_name(v)),
        )),
    }
}

fn one_of(k: &str, v: &str, allowed: &[&str], model: &str) -> Result<(), BadRequest> {
    if allowed.contains(&v) {
        Ok(())
    } else {
        Err(invalid(
            k,
            format!(
                "`{v}` is not supported by {model}; supported values: {}",
                allowed.join(", ")
            ),
        ))
    }
}

fn unsupported(k: &str, model: &str) -> BadRequest {
    invalid(k, format!("not supported by {model}"))
}

/// Validates a create body.
pub(crate) fn validate(body: &[u8]) -> Result<Create, BadRequest> {
    let Ok(Value::Object(req)) = serde_json::from_slice::<Value>(body) else {
        return Err(invalid("body", "the request body must be a JSON object"));
    };
    if let Some(k) = req.keys().find(|k| !KEYS.contains(&k.as_str())) {
        return Err(invalid(k.as_str(), "unknown parameter"));
    }
    let model = match str_field(&req, "model")? {
        None => return Err(missing("model")),
        Some(m) if m.trim().is_empty() => return Err(missing("model")),
        Some(m) => m.to_owned(),
    };
    let Some(f) = family(&model) else {
        return Err(BadRequest {
            status: StatusCode::NOT_FOUND,
            code: "InvalidEndpoint.NotFound",
            message: format!(
                "The model or endpoint {model} does not exist or you do not have access to it."
            ),
            param: Some("model".into()),
        });
    };
    let prompt = content(&req, f, &model)?;
    if let Some(r) = str_field(&req, "resolution")? {
        one_of("resolution", r, f.resolutions(), &model)?;
    }
    if let Some(r) = str_field(&req, "ratio")? {
        one_of("ratio", r, &RATIOS, &model)?;
    }
    if let Some(d) = int_field(&req, "duration")? {
        let (lo, hi, auto) = f.durations();
        if !((lo..=hi).contains(&d) || (auto && d == -1)) {
            let auto = if auto { " or -1" } else { "" };
            return Err(invalid(
                "duration",
                format!("{d} is out of range for {model}: {lo} to {hi}{auto}"),
            ));
        }
    }
    if let Some(n) = int_field(&req, "frames")? {
        if !f.frames() {
            return Err(unsupported("frames", &model));
        }
        if !((29..=289).contains(&n) && (n - 25) % 4 == 0) {
            return Err(invalid("frames", format!("{n} is not 25+4n in [29, 289]")));
        }
        if req.contains_key("duration") {
            return Err(invalid("frames", "give either `frames` or `duration`"));
        }
    }
    if let Some(seed) = int_field(&req, "seed")?
        && !(-1..=4_294_967_295).contains(&seed)
    {
        return Err(invalid(
            "seed",
            format!("{seed} is not in [-1, 4294967295]"),
        ));
    }
    if bool_field(&req, "generate_audio")?.is_some() && !f.has_audio() {
        return Err(unsupported("generate_audio", &model));
    }
    bool_field(&req, "watermark")?;
    bool_field(&req, "return_last_frame")?;
    if bool_field(&req, "camera_fixed")?.is_some() && f.is_v2() {
        return Err(unsupported("camera_fixed", &model));
    }
    if bool_field(&req, "draft")? == Some(true) && f != Family::V15Pro {
        return Err(unsupported("draft", &model));
    }
    let tier = str_field(&req, "service_tier")?;
    if let Some(t) = tier {
        let tiers: &[&str] = if f.is_v2() {
            &["default"]
        } else {
            &["default", "flex"]
        };
        one_of("service_tier", t, tiers, &model)?;
    }
    if let Some(p) = int_field(&req, "priority")? {
        if !f.has_priority() {
            return Err(unsupported("priority", &model));
        }
        if !(0..=9).contains(&p) {
            return Err(invalid("priority", format!("{p} is not in [0, 9]")));
        }
    }
    if let Some(e) = int_field(&req, "execution_expires_after")?
        && !(3600..=259_200).contains(&e)
    {
        return Err(invalid(
            "execution_expires_after",
            format!("{e} is not in [3600, 259200] seconds"),
        ));
    }
    if let Some(url) = str_field(&req, "callback_url")?
        && !(url.starts_with("https://") || url.starts_with("http://"))
    {
        return Err(invalid("callback_url", "expected an http(s) URL"));
    }
    if let Some(id) = str_field(&req, "safety_identifier")?
        && (id.is_empty() || id.chars().count() > 64)
    {
        return Err(invalid("safety_identifier", "expected 1 to 64 characters"));
    }
    tools(&req, f, &model)?;
    Ok(Create {
        prompt,
        model,
        family: f,
        request: req,
    })
}

fn tools(req: &Map<String, Value>, f: Family, model: &str) -> Result<(), BadRequest> {
    let Some(tools) = req.get("tools") else {
        return Ok(());
    };
    if !matches!(f, Family::V20 | Family::V20Fast) {
        return Err(unsupported("tools", model));
    }
    let Value::Array(items) = tools else {
        return Err(invalid(
            "tools",
            format!("expected an array, got {}", type_name(tools)),
        ));
    };
    for (i, t) in items.iter().enumerate() {
        if t.get("type").and_then(Value::as_str) != Some("web_search") {
            return Err(invalid(
                format!("tools[{i}].type"),
                "the only tool is `web_search`",
            ));
        }
    }
    Ok(())
}

/// Validates `content[]`; answers the prompt.
fn content(req: &Map<String, Value>, f: Family, model: &str) -> Result<String, BadRequest> {
    let items = match req.get("content") {
        None => return Err(missing("content")),
        Some(Value::Array(a)) if a.is_empty() => {
            return Err(invalid("content", "at least one item is required"));
        }
        Some(Value::Array(a)) => a,
        Some(v) => {
            return Err(invalid(
                "content",
                format!("expected an array, got {}", type_name(v)),
            ));
        }
    };
    let mut prompt: Option<String> = None;
    let (mut first, mut last, mut refs, mut videos, mut audios, mut drafts) = (0, 0, 0, 0, 0, 0);
    for (i, item) in items.iter().enumerate() {
        let at = |k: &str| format!("content[{i}].{k}");
        let Value::Object(item) = item else {
            return Err(invalid(format!("content[{i}]"), "expected an object"));
        };
        let kind = item.get("type").and_then(Value::as_str).unwrap_or_default();
        let role = match item.get("role") {
            None => None,
            Some(Value::String(r)) => Some(r.as_str()),
            Some(_) => return Err(invalid(at("role"), "expected a string")),
        };
        let url_of = |key: &str| {
            item.get(key)
                .and_then(|o| o.get("url"))
                .and_then(Value::as_str)
                .filter(|u| !u.is_empty())
                .ok_or_else(|| missing(&format!("content[{i}].{key}.url")))
        };
        match kind {
            "text" => {
                let text = item
                    .get("text")
                    .and_then(Value::as_str)
                    .filter(|t| !t.trim().is_empty())
                    .ok_or_else(|| missing(&at("text")))?;
                if prompt.is_some() {
                    return Err(invalid(at("type"), "only one `text` item is allowed"));
                }
                prompt = Some(text.to_owned());
            }
            "image_url" => {
                let url = url_of("image_url")?;
                let schemes = ["https://", "http://", "data:image/", "asset://"];
                if !schemes.iter().any(|s| url.starts_with(s)) {
                    return Err(invalid(
                        at("image_url.url"),
                        "expected an http(s) URL, a data:image/… URL or asset://<id>",
                    ));
                }
                match role {
                    None | Some("first_frame") => first += 1,
                    Some("last_frame") => last += 1,
                    Some("reference_image") => refs += 1,
                    Some(r) => {
                        return Err(invalid(
                            at("role"),
                            format!(
                                "`{r}` is not an image role (first_frame, last_frame, reference_image)"
                            ),
                        ));
                    }
                }
            }
            "video_url" | "audio_url" => {
                let (expected, n) = if kind == "video_url" {
                    ("reference_video", &mut videos)
                } else {
                    ("reference_audio", &mut audios)
                };
                url_of(kind)?;
                if role != Some(expected) {
                    return Err(invalid(at("role"), format!("must be `{expected}`")));
                }
                if f.max_reference_media() == 0 {
                    return Err(invalid(at("type"), format!("not supported by {model}")));
                }
                *n += 1;
            }
            "draft_task" => {
                if f != Family::V15Pro {
                    return Err(invalid(at("type"), format!("not supported by {model}")));
                }
                item.get("draft_task")
                    .and_then(|d| d.get("id"))
                    .and_then(Value::as_str)
                    .filter(|id| !id.is_empty())
                    .ok_or_else(|| missing(&at("draft_task.id")))?;
                drafts += 1;
            }
            "" => return Err(missing(&at("type"))),
            other => {
                return Err(invalid(
                    at("type"),
                    format!(
                        "`{other}` is not one of text, image_url, video_url, audio_url, draft_task"
                    ),
                ));
            }
        }
    }
    let err = |why: &str| Err(invalid("content", why));
    if first > 1 || last > 1 {
        return err("at most one first_frame and one last_frame image");
    }
    if last == 1 && first == 0 {
        return err("a last_frame needs a first_frame");
    }
    if last == 1 && !f.first_last() {
        return err(&format!("first+last frame is not supported by {model}"));
    }
    if last == 1 && f == Family::V25 && req.get("ratio").and_then(Value::as_str) != Some("adaptive")
    {
        return Err(invalid(
            "ratio",
            format!("first+last frame on {model} requires `adaptive`"),
        ));
    }
    let refs_any = refs + videos + audios;
    if first > 0 && refs_any > 0 {
        return err("first/last frame images and references cannot be combined");
    }
    if refs > f.max_reference_images() {
        return err(&format!(
            "{refs} reference images; {model} accepts at most {}",
            f.max_reference_images()
        ));
    }
    let media = f.max_reference_media();
    if videos > media || audios > media {
        return err(&format!(
            "{model} accepts at most {media} reference videos and {media} reference audios"
        ));
    }
    if audios > 0 && refs + videos == 0 && f != Family::V25 {
        return err("a reference audio needs a reference image or video");
    }
    if f == Family::V10LiteT2v && first + refs > 0 {
        return err(&format!("{model} is text-to-video: no images"));
    }
    if f == Family::V10LiteI2v && first + refs == 0 {
        return err(&format!("{model} is image-to-video: an image is required"));
    }
    if prompt.is_none() && first + refs_any + drafts == 0 {
        return Err(missing("content[].text"));
    }
    Ok(prompt.unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn check(body: Value) -> Result<Create, BadRequest> {
        validate(body.to_string().as_bytes())
    }

    fn text() -> Value {
        json!({"type": "text", "text": "A fox"})
    }

    #[test]
    fn the_documented_first_and_last_frame_example_is_accepted() {
        let c = check(json!({"model": "dreamina-seedance-2-0-260128",
            "content": [text(),
                {"type":"image_url","image_url":{"url":"https://cdn.example.com/a.png"},"role":"first_frame"},
                {"type":"image_url","image_url":{"url":"https://cdn.example.com/b.png"},"role":"last_frame"}],
            "ratio":"adaptive","resolution":"720p","duration":5,"generate_audio":true,"watermark":false,
            "return_last_frame":true,"execution_expires_after":7200,
            "callback_url":"https://hooks.example.com/ark?job=J123","safety_identifier":"cf-J123-3f9a1c"}))
        .unwrap();
        assert_eq!((c.prompt.as_str(), c.family), ("A fox", Family::V20));
    }

    #[test]
    fn a_field_the_model_cannot_honour_is_refused_naming_it() {
        let fast = "dreamina-seedance-2-0-fast-260128";
        let cases = [
            (
                json!({"model": fast, "content": [text()], "resolution": "1080p"}),
                "resolution",
            ),
            (
                json!({"model": fast, "content": [text()], "camera_fixed": true}),
                "camera_fixed",
            ),
            (
                json!({"model": fast, "content": [text()], "duration": 16}),
                "duration",
            ),
            (
                json!({"model": fast, "content": [text()], "frames": 29}),
                "frames",
            ),
            (
                json!({"model": fast, "content": [text()], "negative_prompt": "x"}),
                "negative_prompt",
            ),
            (
                json!({"model": "seedance-1-0-pro-250428", "content": [text()], "generate_audio": true}),
                "generate_audio",
            ),
            (
                json!({"model": fast, "content": [text(), {"type": "image_url", "image_url": {"url": "ftp://x"}}]}),
                "content[1].image_url.url",
            ),
            (
                json!({"model": fast, "content": [{"type": "video_url", "video_url": {"url": "https://v"}, "role": "first_frame"}]}),
                "content[0].role",
            ),
            (
                json!({"model": fast, "content": [text()], "safety_identifier": "x".repeat(65)}),
                "safety_identifier",
            ),
            (
                json!({"model": fast, "content": [text()], "execution_expires_after": 60}),
                "execution_expires_after",
            ),
        ];
        for (body, param) in cases {
            let e = check(body).unwrap_err();
            assert_eq!(e.param.as_deref(), Some(param), "{e:?}");
            assert_eq!(e.status, StatusCode::BAD_REQUEST);
            assert!(e.message.contains(param), "{e:?}");
        }
    }

    #[test]
    fn missing_model_or_prompt_and_unknown_models_are_named() {
        assert_eq!(
            check(json!({"content": [text()]})).unwrap_err().code,
            "MissingParameter"
        );
        let e = check(json!({"model": "m", "content": [text()]})).unwrap_err();
        assert_eq!(
            (e.status, e.code),
            (StatusCode::NOT_FOUND, "InvalidEndpoint.NotFound")
        );
        let e = check(json!({"model": "ep-123", "content": []})).unwrap_err();
        assert_eq!(e.param.as_deref(), Some("content"));
        let e = check(json!({"model": "ep-123", "content": [{"type": "text"}]})).unwrap_err();
        assert_eq!(e.param.as_deref(), Some("content[0].text"));
    }

    #[test]
    fn references_and_frames_follow_the_three_modes() {
        let img = |role: &str| json!({"type": "image_url", "image_url": {"url": "asset://a1"}, "role": role});
        let m = "doubao-seedance-2-0-260128";
        assert!(check(json!({"model": m, "content": [text(), img("reference_image"), img("reference_image")]})).is_ok());
        assert!(
            check(
                json!({"model": m, "content": [text(), img("first_frame"), img("reference_image")]})
            )
            .is_err()
        );
        assert!(check(json!({"model": m, "content": [text(), img("last_frame")]})).is_err());
        let audio = json!({"type": "audio_url", "audio_url": {"url": "https://a.mp3"}, "role": "reference_audio"});
        assert!(check(json!({"model": m, "content": [text(), audio]})).is_err());
        let e = check(json!({"model": "doubao-seedance-2-5-260628",
            "content": [text(), img("first_frame"), img("last_frame")], "ratio": "16:9"}))
        .unwrap_err();
        assert_eq!(e.param.as_deref(), Some("ratio"));
    }

    #[test]
    fn the_echo_fills_defaults_and_prices_tokens_like_the_documented_example() {
        let e = Echo::of(&json!({"duration": 5}), Family::V20);
        assert_eq!((e.resolution.as_str(), e.ratio.as_str()), ("720p", "16:9"));
        assert_eq!((e.width, e.height, e.duration), (1280, 720, 5));
        assert_eq!(e.tokens(), 108_000);
        assert_eq!(e.cost_cents(), 76);
        let e = Echo::of(&json!({"ratio": "9:16", "resolution": "480p"}), Family::V25);
        assert_eq!((e.width, e.height, e.duration), (480, 854, AUTO_DURATION));
        assert_eq!(e.execution_expires_after, DEFAULT_EXPIRES_AFTER);
    }
}
