//! Private serde types of OpenRouter's video API (`VideoGenerationResponse`) and the reading of
//! its models list. Unknown fields are ignored.

use std::str::FromStr;

use cineflow_core::{AspectRatio, Durations, ModelCapabilities, Resolution};
use serde::Deserialize;
use serde_json::Value;

/// The answer to `POST /videos`: `{id, polling_url, status: "pending"}`.
#[derive(Debug, Deserialize)]
pub(super) struct Created {
    pub(super) id: String,
}

/// `GET /videos/{id}`.
#[derive(Debug, Deserialize)]
pub(super) struct Video {
    /// `pending | in_progress | completed | failed | cancelled | expired` (an open enum).
    #[serde(default)]
    pub(super) status: Option<String>,
    #[serde(default)]
    pub(super) unsigned_urls: Option<Vec<String>>,
    #[serde(default)]
    pub(super) usage: Option<VideoUsage>,
    /// A text, or `{code, message}`.
    #[serde(default)]
    pub(super) error: Option<Value>,
}

/// A video's `usage`.
#[derive(Debug, Deserialize)]
pub(super) struct VideoUsage {
    /// What the generation cost, in US dollars.
    #[serde(default)]
    pub(super) cost: Option<f64>,
}

/// An error answer: `{"error": {"code": 400, "message", "metadata"}}`.
#[derive(Debug, Default, Deserialize)]
pub(super) struct ErrorBody {
    #[serde(default)]
    pub(super) error: Option<ErrorObject>,
}

/// The error object of an answer or a failed video.
#[derive(Debug, Default, Deserialize)]
pub(super) struct ErrorObject {
    /// A number (the HTTP status) in API errors; a text in a failed video (*unverified*).
    #[serde(default)]
    pub(super) code: Option<Value>,
    #[serde(default)]
    pub(super) message: Option<String>,
    /// `reasons`, `flagged_input` when moderation refused the input.
    #[serde(default)]
    pub(super) metadata: Option<Value>,
}

/// Reads `GET /videos/models`: `{"data": [model…]}` (or the bare array). Models whose entry
/// cannot be read are returned as errors naming their JSON path, beside the ones that can.
pub(super) fn models(body: &Value) -> Result<(Vec<ModelCapabilities>, Vec<String>), String> {
    let (items, prefix) = match body {
        Value::Array(items) => (items, ""),
        _ => match body.get("data") {
            Some(Value::Array(items)) => (items, "data"),
            _ => return Err("data is missing or not an array".into()),
        },
    };
    let mut ok = Vec::new();
    let mut bad = Vec::new();
    for (i, v) in items.iter().enumerate() {
        match model(&format!("{prefix}[{i}]"), v) {
            Ok(m) => ok.push(m),
            Err(e) => bad.push(e),
        }
    }
    Ok((ok, bad))
}

/// One model's capabilities: `id`, `supported_durations` (required), `supported_resolutions`,
/// `supported_aspect_ratios`, `supported_frame_images`, `generate_audio`, `seed`. Values
/// cineflow has no name for (a 2:3 ratio) are left out: a request can never ask for them.
fn model(path: &str, v: &Value) -> Result<ModelCapabilities, String> {
    let id = match v.get("id") {
        Some(Value::String(s)) if !s.trim().is_empty() => s.clone(),
        _ => return Err(format!("{path}.id is missing or not a string")),
    };
    let list = |k: &str| -> Result<Vec<Value>, String> {
        match v.get(k) {
            None | Some(Value::Null) => Ok(Vec::new()),
            Some(Value::Array(a)) => Ok(a.clone()),
            Some(_) => Err(format!("{path}.{k} is not an array")),
        }
    };
    let flag = |k: &str| -> Result<bool, String> {
        match v.get(k) {
            None | Some(Value::Null) => Ok(false),
            Some(Value::Bool(b)) => Ok(*b),
            Some(_) => Err(format!("{path}.{k} is not a boolean")),
        }
    };
    let durations = match v.get("supported_durations") {
        Some(Value::Array(a)) if !a.is_empty() => a
            .iter()
            .enumerate()
            .map(|(i, d)| {
                d.as_u64()
                    .and_then(|n| u32::try_from(n).ok())
                    .ok_or_else(|| {
                        format!("{path}.supported_durations[{i}] is not a whole number of seconds")
                    })
            })
            .collect::<Result<Vec<u32>, String>>()?,
        _ => {
            return Err(format!(
                "{path}.supported_durations is missing or not a non-empty array"
            ));
        }
    };
    let texts = |k: &str| -> Result<Vec<String>, String> {
        Ok(list(k)?
            .iter()
            .filter_map(|x| x.as_str().map(str::to_ascii_lowercase))
            .collect())
    };
    let resolutions: Vec<Resolution> = texts("supported_resolutions")?
        .iter()
        .filter_map(|r| Resolution::from_str(if r == "2160p" { "4k" } else { r }).ok())
        .collect();
    let aspect_ratios: Vec<AspectRatio> = texts("supported_aspect_ratios")?
        .iter()
        .filter_map(|r| AspectRatio::from_str(r).ok())
        .collect();
    let frames = texts("supported_frame_images")?;
    Ok(ModelCapabilities::new(id)
        .with_durations(Durations::set(durations))
        // An empty list would mean "any": a model listing only ratios cineflow cannot name
        // serves none of its requests.
        .with_aspect_ratios(
            if aspect_ratios.is_empty() && !list("supported_aspect_ratios")?.is_empty() {
                return Err(format!(
                    "{path}.supported_aspect_ratios names no ratio cineflow knows"
                ));
            } else {
                aspect_ratios
            },
        )
        .with_resolutions(resolutions)
        .with_first_frame(frames.iter().any(|f| f == "first_frame"))
        .with_last_frame(frames.iter().any(|f| f == "last_frame"))
        .with_audio(flag("generate_audio")?)
        .with_seed(flag("seed")?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_models_list_becomes_capabilities_and_bad_entries_name_their_path() {
        let (ok, bad) = models(&json!({"data": [
            {"id": "google/veo-3.1", "supported_durations": [4, 6, 8],
             "supported_resolutions": ["720p", "1080p", "2160p"],
             "supported_aspect_ratios": ["16:9", "9:16"],
             "supported_frame_images": ["first_frame", "last_frame"],
             "generate_audio": true, "seed": true, "pricing_skus": {"per_second": "0.40"}},
            {"id": "alibaba/wan-2.6", "supported_resolutions": ["720p"]},
            {"id": "x/y", "supported_durations": [5], "seed": "yes"}
        ]}))
        .unwrap();
        assert_eq!(ok.len(), 1);
        let veo = &ok[0];
        assert!(veo.durations.allows(8) && !veo.durations.allows(5));
        assert_eq!(
            veo.resolutions,
            [Resolution::P720, Resolution::P1080, Resolution::K4]
        );
        assert!(veo.first_frame && veo.last_frame && veo.audio && veo.seed);
        assert_eq!(
            bad,
            [
                "data[1].supported_durations is missing or not a non-empty array",
                "data[2].seed is not a boolean"
            ]
        );
        assert!(models(&json!({"models": []})).is_err());
    }

    #[test]
    fn the_documented_video_shape_parses() {
        let v: Video = serde_json::from_value(json!({
            "id": "vid_1", "polling_url": "/api/v1/videos/vid_1", "status": "completed",
            "generation_id": "gen-1", "unsigned_urls": ["https://storage.example/v.mp4?sig=x"],
            "usage": {"cost": 2.4, "is_byok": false}, "error": null
        }))
        .unwrap();
        assert_eq!(v.status.as_deref(), Some("completed"));
        assert_eq!(v.usage.and_then(|u| u.cost), Some(2.4));
    }
}
