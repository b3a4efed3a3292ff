//! The inputs of the fal endpoints the fake serves, validated per family as fal's model pages
//! document them (Seedance 2.0, Kling v3, Veo 3.1, Gemini Omni), and fal's error bodies.

#![allow(
    clippy::result_large_err,
    reason = "validation returns the 422 Response itself; boxing it buys nothing here"
)]

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};

/// `duration: "auto"` renders this long.
const AUTO_SECS: u32 = 5;

/// A fal error body: `{"detail": …}`.
pub(crate) fn detail(status: StatusCode, detail: impl Into<Value>) -> Response {
    (status, Json(json!({ "detail": detail.into() }))).into_response()
}

/// A 422 naming the field, in fal's (pydantic's) shape.
pub(crate) fn invalid(field: &str, msg: String) -> Response {
    detail(
        StatusCode::UNPROCESSABLE_ENTITY,
        json!([{ "loc": ["body", field], "msg": msg, "type": "value_error" }]),
    )
}

// ---------------------------------------------------------------------------------------------
// Endpoints and their inputs
// ---------------------------------------------------------------------------------------------

/// An endpoint family: one input schema.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Family {
    Seedance { fast: bool },
    Kling { pro: bool },
    Veo { lite: bool, fast: bool },
    Omni,
}

/// What an endpoint takes besides the prompt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mode {
    Text,
    Image,
    Reference,
}

/// The endpoints the fake serves.
pub(crate) fn endpoint(id: &str) -> Option<(Family, Mode)> {
    let mode = |tail: &str| match tail {
        "text-to-video" => Some(Mode::Text),
        "image-to-video" => Some(Mode::Image),
        "reference-to-video" => Some(Mode::Reference),
        _ => None,
    };
    let parts: Vec<&str> = id.split('/').collect();
    match parts.as_slice() {
        ["bytedance", "seedance-2.0", tail] => {
            Some((Family::Seedance { fast: false }, mode(tail)?))
        }
        ["bytedance", "seedance-2.0", "fast", tail] => {
            Some((Family::Seedance { fast: true }, mode(tail)?))
        }
        [
            "fal-ai",
            "kling-video",
            "v3",
            tier @ ("pro" | "standard"),
            tail,
        ] => {
            let m = mode(tail).filter(|m| *m != Mode::Reference)?;
            Some((
                Family::Kling {
                    pro: *tier == "pro",
                },
                m,
            ))
        }
        ["fal-ai", "veo3.1", rest @ ..] => {
            let (variant, image) = match rest {
                [] => (None, false),
                ["image-to-video"] => (None, true),
                [v @ ("fast" | "lite")] => (Some(*v), false),
                [v @ ("fast" | "lite"), "image-to-video"] => (Some(*v), true),
                _ => return None,
            };
            let family = Family::Veo {
                lite: variant == Some("lite"),
                fast: variant == Some("fast"),
            };
            Some((family, if image { Mode::Image } else { Mode::Text }))
        }
        ["google", "gemini-omni-flash", "reference-to-video"] => {
            Some((Family::Omni, Mode::Reference))
        }
        _ => None,
    }
}

/// What a valid input makes: seconds, size and price.
#[derive(Debug)]
pub(crate) struct Checked {
    pub(crate) prompt: String,
    pub(crate) seconds: u32,
    pub(crate) size: String,
    pub(crate) cost_cents: u64,
}

fn one_of<'a>(
    input: &'a Map<String, Value>,
    field: &str,
    allowed: &[&str],
) -> Result<Option<&'a str>, Response> {
    match input.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if allowed.contains(&s.as_str()) => Ok(Some(s)),
        Some(v) => Err(invalid(
            field,
            format!("Input should be one of {}; got {v}", allowed.join(", ")),
        )),
    }
}

fn url_field(input: &Map<String, Value>, field: &str, required: bool) -> Result<(), Response> {
    match input.get(field) {
        None | Some(Value::Null) if !required => Ok(()),
        Some(Value::String(s))
            if s.starts_with("https://") || s.starts_with("http://") || s.starts_with("data:") =>
        {
            Ok(())
        }
        None | Some(Value::Null) => Err(invalid(field, "Field required".into())),
        Some(_) => Err(invalid(
            field,
            "Input should be a valid URL or data URI".into(),
        )),
    }
}

fn url_list(input: &Map<String, Value>, field: &str, max: usize) -> Result<usize, Response> {
    match input.get(field) {
        None | Some(Value::Null) => Ok(0),
        Some(Value::Array(items)) if items.len() <= max => {
            for (i, v) in items.iter().enumerate() {
                if v.as_str().is_none_or(str::is_empty) {
                    return Err(invalid(
                        &format!("{field}.{i}"),
                        "Input should be a valid URL".into(),
                    ));
                }
            }
            Ok(items.len())
        }
        Some(_) => Err(invalid(
            field,
            format!("Input should be a list of at most {max} URLs"),
        )),
    }
}

fn flag(input: &Map<String, Value>, field: &str) -> Result<(), Response> {
    match input.get(field) {
        None | Some(Value::Null | Value::Bool(_)) => Ok(()),
        Some(_) => Err(invalid(field, "Input should be a valid boolean".into())),
    }
}

/// Validates `input` for the endpoint.
pub(crate) fn validate(
    family: Family,
    mode: Mode,
    input: &Map<String, Value>,
) -> Result<Checked, Response> {
    let prompt = match input.get("prompt") {
        Some(Value::String(s)) if !s.trim().is_empty() => s.clone(),
        Some(Value::String(_)) => {
            return Err(invalid(
                "prompt",
                "String should have at least 1 character".into(),
            ));
        }
        _ => return Err(invalid("prompt", "Field required".into())),
    };
    flag(input, "generate_audio")?;
    if input
        .get("seed")
        .is_some_and(|s| !s.is_u64() && !s.is_null())
    {
        return Err(invalid("seed", "Input should be a valid integer".into()));
    }
    let text_secs =
        |allowed: std::ops::RangeInclusive<u32>, default: u32| -> Result<u32, Response> {
            match input.get("duration") {
                None | Some(Value::Null) => Ok(default),
                Some(Value::String(s)) => s
                    .parse::<u32>()
                    .ok()
                    .filter(|n| allowed.contains(n))
                    .ok_or_else(|| {
                        invalid(
                            "duration",
                            format!(
                                "Input should be \"{}\" to \"{}\"; got {s:?}",
                                allowed.start(),
                                allowed.end()
                            ),
                        )
                    }),
                Some(v) => Err(invalid(
                    "duration",
                    format!("Input should be a string; got {v}"),
                )),
            }
        };
    let (seconds, ratio, resolution, cents_per_sec) = match family {
        Family::Seedance { fast } => {
            let seconds = if input.get("duration").and_then(Value::as_str) == Some("auto") {
                AUTO_SECS
            } else {
                text_secs(4..=15, 5)?
            };
            let ratio = one_of(
                input,
                "aspect_ratio",
                &["auto", "21:9", "16:9", "4:3", "1:1", "3:4", "9:16"],
            )?;
            let res = one_of(input, "resolution", &["480p", "720p"])?;
            match mode {
                Mode::Text => {}
                Mode::Image => {
                    url_field(input, "image_url", true)?;
                    url_field(input, "end_image_url", false)?;
                }
                Mode::Reference => {
                    let n = url_list(input, "image_urls", 9)? + url_list(input, "video_urls", 3)?;
                    url_list(input, "audio_urls", 3)?;
                    if n == 0 {
                        return Err(invalid(
                            "image_urls",
                            "At least one reference image or video is required".into(),
                        ));
                    }
                }
            }
            (seconds, ratio, res, if fast { 24 } else { 30 })
        }
        Family::Kling { pro } => {
            let seconds = text_secs(3..=15, 5)?;
            let ratio = if mode == Mode::Image {
                url_field(input, "start_image_url", true)?;
                url_field(input, "end_image_url", false)?;
                None
            } else {
                one_of(input, "aspect_ratio", &["16:9", "9:16", "1:1"])?
            };
            (seconds, ratio, None, if pro { 11 } else { 8 })
        }
        Family::Veo { lite, fast } => {
            let seconds = match one_of(input, "duration", &["4s", "6s", "8s"])? {
                Some(s) => s.trim_end_matches('s').parse().unwrap_or(8),
                None => 8,
            };
            let ratios: &[&str] = if mode == Mode::Image {
                &["16:9", "9:16", "auto"]
            } else {
                &["16:9", "9:16"]
            };
            let ratio = one_of(input, "aspect_ratio", ratios)?;
            let resolutions: &[&str] = if lite {
                &["720p", "1080p"]
            } else {
                &["720p", "1080p", "4k"]
            };
            let res = one_of(input, "resolution", resolutions)?;
            if mode == Mode::Image {
                url_field(input, "image_url", true)?;
            }
            (
                seconds,
                ratio,
                res,
                if lite {
                    5
                } else if fast {
                    15
                } else {
                    40
                },
            )
        }
        Family::Omni => {
            if url_list(input, "image_urls", 9)? == 0 {
                return Err(invalid("image_urls", "Field required".into()));
            }
            let ratio = one_of(input, "aspect_ratio", &["16:9", "9:16"])?;
            let seconds = match input.get("duration") {
                None | Some(Value::Null) => 8,
                Some(v) => v
                    .as_u64()
                    .and_then(|n| u32::try_from(n).ok())
                    .filter(|n| (3..=10).contains(n))
                    .ok_or_else(|| {
                        invalid(
                            "duration",
                            format!("Input should be an integer from 3 to 10; got {v}"),
                        )
                    })?,
            };
            (seconds, ratio, None, 13)
        }
    };
    Ok(Checked {
        prompt,
        seconds,
        size: crate::video::frame_size(ratio.unwrap_or("16:9"), resolution.unwrap_or("720p")),
        cost_cents: u64::from(seconds) * cents_per_sec,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoint_ids_map_to_their_family_and_mode() {
        assert_eq!(
            endpoint("fal-ai/veo3.1/lite/image-to-video"),
            Some((
                Family::Veo {
                    lite: true,
                    fast: false
                },
                Mode::Image
            ))
        );
        assert_eq!(
            endpoint("bytedance/seedance-2.0/fast/reference-to-video"),
            Some((Family::Seedance { fast: true }, Mode::Reference))
        );
        assert_eq!(
            endpoint("fal-ai/kling-video/v3/pro/reference-to-video"),
            None
        );
        assert_eq!(endpoint("fal-ai/veo3.1/turbo"), None);
    }

    #[test]
    fn inputs_are_validated_per_family() {
        let input = |v: Value| v.as_object().unwrap().clone();
        let ok = validate(
            Family::Veo {
                lite: false,
                fast: false,
            },
            Mode::Text,
            &input(json!({"prompt": "p", "duration": "6s", "resolution": "4k"})),
        )
        .unwrap();
        assert_eq!((ok.seconds, ok.size.as_str()), (6, "3840x2160"));
        for (family, mode, body, field) in [
            (
                Family::Veo {
                    lite: true,
                    fast: false,
                },
                Mode::Text,
                json!({"prompt": "p", "resolution": "4k"}),
                "resolution",
            ),
            (
                Family::Seedance { fast: false },
                Mode::Text,
                json!({"prompt": "p", "duration": 5}),
                "duration",
            ),
            (
                Family::Kling { pro: true },
                Mode::Image,
                json!({"prompt": "p"}),
                "start_image_url",
            ),
            (
                Family::Omni,
                Mode::Reference,
                json!({"prompt": "p"}),
                "image_urls",
            ),
            (
                Family::Omni,
                Mode::Reference,
                json!({"image_urls": ["https://x/a.png"]}),
                "prompt",
            ),
        ] {
            let r = validate(family, mode, &input(body)).unwrap_err();
            assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY, "{field}");
        }
    }
}
