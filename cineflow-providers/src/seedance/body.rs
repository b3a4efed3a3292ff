//! The create body: `content[]` (text, frames, references) and the parameters, and the
//! reconciliation match of a listed task against it.

use cineflow_core::{
    AspectRatio, GenerationRequest, ImageKind, ImageRef, MediaKind, MediaRole, ProviderError,
    Resolution,
};
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};

use super::models::Model;

use crate::http::{Endpoint, refused};

/// The largest create body Ark accepts (64 MB): `data:` URLs count towards it.
pub const MAX_BODY_BYTES: usize = 64 * 1024 * 1024;

/// The longest `safety_identifier` Ark accepts.
pub const MAX_SAFETY_IDENTIFIER: usize = 64;

/// The per-attempt token sent as `safety_identifier`: `cf-` and 40 hex digits of the SHA-256 of
/// the request's idempotency key (`{task_id}-{attempt}`), so it is unique per attempt, stable
/// across processes and reveals nothing; `None` for an empty key.
pub fn safety_identifier(idempotency_key: &str) -> Option<String> {
    if idempotency_key.is_empty() {
        return None;
    }
    let digest = Sha256::digest(idempotency_key.as_bytes());
    let hex: String = digest.iter().take(20).map(|b| format!("{b:02x}")).collect();
    Some(format!("cf-{hex}"))
}

/// Checks the input mode of `req` on `model` (`name`): text only, first frame, first + last
/// frame, or multimodal reference, which are mutually exclusive.
pub(super) fn check_mode(
    req: &GenerationRequest,
    model: &Model,
    name: &str,
    last: Option<&ImageRef>,
) -> Result<(), ProviderError> {
    let frames = req.first_frame.is_some();
    let refs = &req.references;
    if frames && !refs.is_empty() {
        return Err(refused(format!(
            "seedance model {name}: first_frame/last_frame and references cannot be combined \
             (the input modes first frame, first + last frame and multimodal reference are \
             mutually exclusive)"
        )));
    }
    let visual = refs.iter().any(|m| m.kind() != MediaKind::Audio);
    if !refs.is_empty() && !visual {
        return Err(refused(format!(
            "seedance model {name}: references: reference audio needs at least one reference \
             image or video"
        )));
    }
    if !model.text && !frames && !visual {
        return Err(refused(format!(
            "seedance model {name} needs a first_frame or reference images (image-to-video only)"
        )));
    }
    if model.frames_need_adaptive && frames && req.aspect_ratio != AspectRatio::Adaptive {
        return Err(refused(format!(
            "seedance model {name}: aspect_ratio {} with first_frame{}: this model takes frames \
             only with aspect_ratio adaptive",
            req.aspect_ratio,
            if last.is_some() { "/last_frame" } else { "" }
        )));
    }
    Ok(())
}

/// The `resolution` to send: the request's; 1080p for a pro request naming none; none
/// otherwise (the model's default, 720p). A pro request naming 480p or 720p contradicts itself.
pub(super) fn resolution(
    req: &GenerationRequest,
    name: &str,
) -> Result<Option<Resolution>, ProviderError> {
    match (req.resolution, req.is_pro) {
        (None, true) => Ok(Some(Resolution::P1080)),
        (Some(r @ (Resolution::P480 | Resolution::P720)), true) => Err(refused(format!(
            "seedance model {name}: resolution {r} contradicts is_pro (the pro tier is 1080p)"
        ))),
        (r, _) => Ok(r),
    }
}

fn image_item(url: String, role: &str) -> Value {
    json!({"type": "image_url", "image_url": {"url": url}, "role": role})
}

/// `content[]`: the prompt, then the frames or the references in their order.
pub(super) async fn content(
    api: &Endpoint,
    req: &GenerationRequest,
    last: Option<&ImageRef>,
) -> Result<Vec<Value>, ProviderError> {
    let mut items = vec![json!({"type": "text", "text": req.prompt})];
    if let Some(first) = &req.first_frame {
        items.push(image_item(api.image_url(first).await?, "first_frame"));
    }
    if let Some(last) = last {
        items.push(image_item(api.image_url(last).await?, "last_frame"));
    }
    for (i, m) in req.references.iter().enumerate() {
        match m.role() {
            MediaRole::Reference | MediaRole::Character | MediaRole::Style => {}
            other => {
                return Err(refused(format!(
                    "references[{i}]: role {other} is not served by seedance (its reference \
                     media guide the generation; nothing is laid under the video as is)"
                )));
            }
        }
        let item = match m.kind() {
            MediaKind::Image => {
                let img = ImageRef::new(m.source())
                    .map_err(|e| refused(format!("references[{i}]: {e}")))?;
                image_item(api.image_url(&img).await?, "reference_image")
            }
            kind @ (MediaKind::Video | MediaKind::Audio) => {
                if m.source_kind() == ImageKind::Path {
                    return Err(refused(format!(
                        "references[{i}]: a reference {kind} must be a URL (http(s) or data:); \
                         seedance takes local {kind} files only through a URL"
                    )));
                }
                let (ty, role) = match kind {
                    MediaKind::Video => ("video_url", "reference_video"),
                    _ => ("audio_url", "reference_audio"),
                };
                json!({"type": ty, ty: {"url": m.source()}, "role": role})
            }
        };
        items.push(item);
    }
    Ok(items)
}

/// Refuses a body above [`MAX_BODY_BYTES`] before sending it.
pub(super) fn check_size(body: &Value) -> Result<(), ProviderError> {
    let size = serde_json::to_vec(body)
        .map(|b| b.len())
        .unwrap_or(usize::MAX);
    if size > MAX_BODY_BYTES {
        return Err(refused(format!(
            "the request body is {size} bytes with its inlined media; seedance accepts at most \
             {MAX_BODY_BYTES}: give large images as https URLs"
        )));
    }
    Ok(())
}

/// The echoed fields a listed task must share with the body sent: `duration`, and
/// `resolution`, `generate_audio` and a fixed `ratio` when they were sent (`adaptive` is
/// echoed as the ratio chosen and `duration: -1` as the length chosen, so neither is compared).
const ECHOED: [&str; 4] = ["duration", "resolution", "generate_audio", "ratio"];

/// Whether a listed task (`task`, an object) may be the one `sent` created: the same model,
/// the same `safety_identifier` when one was sent (a task without it is not ours), and the
/// same echoed fields wherever the task carries them.
pub(super) fn matches(task: &Value, sent: &Map<String, Value>) -> bool {
    let text = |v: Option<&Value>| match v {
        Some(Value::String(s)) => Some(s.clone()),
        Some(v @ (Value::Number(_) | Value::Bool(_))) => Some(v.to_string()),
        _ => None,
    };
    if let Some(model) = task.get("model")
        && text(Some(model)) != text(sent.get("model"))
    {
        return false;
    }
    if let Some(token) = sent.get("safety_identifier")
        && text(task.get("safety_identifier")) != text(Some(token))
    {
        return false;
    }
    ECHOED.iter().all(|key| {
        let Some(want) = sent.get(*key) else {
            return true;
        };
        if (*key == "ratio" && want == "adaptive") || (*key == "duration" && want == -1) {
            return true;
        }
        match task.get(*key) {
            None | Some(Value::Null) => true,
            got => text(got) == text(Some(want)),
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn safety_identifiers_are_short_stable_hashes_of_the_attempt() {
        let a = safety_identifier("0190-task-1").unwrap();
        assert_eq!(a, safety_identifier("0190-task-1").unwrap());
        assert_ne!(a, safety_identifier("0190-task-2").unwrap());
        assert!(
            a.len() <= MAX_SAFETY_IDENTIFIER && a.starts_with("cf-"),
            "{a}"
        );
        assert!(!a.contains("0190"));
        assert_eq!(safety_identifier(""), None);
    }

    #[test]
    fn listed_tasks_match_on_token_model_and_echoed_fields() {
        let sent = json!({"model": "m", "safety_identifier": "cf-1", "duration": 5,
                          "ratio": "adaptive", "resolution": "720p"});
        let sent = sent.as_object().unwrap();
        let task = json!({"id": "cgt-1", "model": "m", "safety_identifier": "cf-1",
                          "duration": 5, "ratio": "16:9", "resolution": "720p",
                          "generate_audio": true});
        assert!(
            matches(&task, sent),
            "adaptive is echoed as the ratio chosen"
        );
        let other = |k: &str, v: Value| {
            let mut t = task.clone();
            t[k] = v;
            t
        };
        assert!(!matches(&other("safety_identifier", json!("cf-2")), sent));
        assert!(!matches(&other("safety_identifier", Value::Null), sent));
        assert!(!matches(&other("duration", json!(10)), sent));
        assert!(!matches(&other("resolution", json!("1080p")), sent));
        assert!(!matches(&other("model", json!("n")), sent));
        let mut auto = sent.clone();
        auto.insert("duration".into(), json!(-1));
        assert!(
            matches(&other("duration", json!(8)), &auto),
            "duration -1 is echoed as the length chosen"
        );
        let mut untokened = sent.clone();
        untokened.remove("safety_identifier");
        assert!(matches(
            &other("safety_identifier", Value::Null),
            &untokened
        ));
    }
}
