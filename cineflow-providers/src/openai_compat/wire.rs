//! Private serde types of the OpenAI Videos protocol (`/videos`).
//!
//! Unknown fields are tolerated everywhere (`quality` appears in OpenAI's own examples without
//! being in the schema); fields whose type varies between resellers are read as
//! [`serde_json::Value`] and converted leniently.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use time::OffsetDateTime;

use crate::http::listed::ListedJob;

/// The JSON body of `POST /videos` (a multipart body carries the same fields as text parts).
#[derive(Debug, Serialize)]
pub(super) struct CreateVideo<'a> {
    pub(super) model: &'a str,
    pub(super) prompt: &'a str,
    /// A **string**: `"4" | "8" | "12"`. A number is refused by OpenAI.
    pub(super) seconds: String,
    pub(super) size: &'a str,
}

/// The Video object answered by `POST /videos` and `GET /videos/{id}`.
#[derive(Debug, Deserialize)]
pub(super) struct Video {
    pub(super) id: String,
    #[serde(default)]
    pub(super) status: Option<String>,
    /// 0–100, an integer at OpenAI; some resellers send floats or strings.
    #[serde(default)]
    pub(super) progress: Option<Value>,
    /// Unix seconds, or null.
    #[serde(default)]
    pub(super) expires_at: Option<Value>,
}

/// One page of `GET /videos?after=&limit=&order=`:
/// `{"object":"list","data":[Video…],"first_id","last_id","has_more"}`, read by hand so that a
/// malformed answer names the JSON path at fault.
#[derive(Debug)]
pub(super) struct VideoPage {
    /// The page's Videos, in the vendor's order.
    pub(super) videos: Vec<ListedJob>,
    /// The cursor of the next page (`after=`), when `has_more` says there is one.
    pub(super) next: Option<String>,
}

impl VideoPage {
    /// Reads a list answer. The error names the JSON path that does not have the documented
    /// shape (`data`, `data[2].created_at`, `has_more`, `last_id`…).
    pub(super) fn parse(body: &Value) -> Result<Self, String> {
        let Some(data) = body.get("data").and_then(Value::as_array) else {
            return Err("data is missing or not an array".into());
        };
        let videos = data
            .iter()
            .enumerate()
            .map(|(i, v)| {
                ListedJob::parse(format!("data[{i}]"), v, "id", unix_time, "a unix timestamp")
            })
            .collect::<Result<Vec<_>, _>>()?;
        let has_more = match body.get("has_more") {
            // Absent: nothing says there is more.
            None | Some(Value::Null) => false,
            Some(Value::Bool(b)) => *b,
            Some(_) => return Err("has_more is not a boolean".into()),
        };
        if !has_more {
            return Ok(Self { videos, next: None });
        }
        let next = match body.get("last_id") {
            Some(Value::String(s)) if !s.is_empty() => s.clone(),
            None | Some(Value::Null) => match videos.last() {
                Some(v) => v.id.clone(),
                None => {
                    return Err("has_more is true but data is empty and last_id is missing".into());
                }
            },
            Some(_) => return Err("last_id is not a non-empty string".into()),
        };
        Ok(Self {
            videos,
            next: Some(next),
        })
    }
}

/// `error` of a failed Video: `{code, message}` (code list not published).
#[derive(Debug, Default, Deserialize)]
pub(super) struct VideoError {
    #[serde(default)]
    pub(super) code: Option<Value>,
    #[serde(default)]
    pub(super) message: Option<String>,
}

/// An error answer: `{"error":{"message","type","param","code"}}`. Some resellers put a bare
/// string in `error`; both shapes are read.
#[derive(Debug, Default)]
pub(super) struct ErrorDetail {
    pub(super) message: Option<String>,
    pub(super) kind: Option<String>,
    pub(super) code: Option<String>,
}

impl ErrorDetail {
    /// Reads what it can from an error body; never fails.
    pub(super) fn parse(body: &[u8]) -> Self {
        let Ok(v) = serde_json::from_slice::<Value>(body) else {
            return Self::default();
        };
        match v.get("error") {
            Some(Value::Object(e)) => Self {
                message: e.get("message").and_then(Value::as_str).map(str::to_owned),
                kind: e.get("type").and_then(Value::as_str).map(str::to_owned),
                code: e.get("code").and_then(value_to_code),
            },
            Some(Value::String(s)) => Self {
                message: Some(s.clone()),
                ..Self::default()
            },
            _ => Self {
                message: v.get("message").and_then(Value::as_str).map(str::to_owned),
                ..Self::default()
            },
        }
    }
}

/// A vendor code as text: strings as they are, numbers rendered; null and others are no code.
pub(super) fn value_to_code(v: &Value) -> Option<String> {
    match v {
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// Unix timestamps from this value on are read as **milliseconds** (some OpenAI-protocol
/// resellers report `created_at` and `expires_at` that way, 13 digits); below it, as seconds.
///
/// 10¹¹ splits the two without overlap for any date that matters: as seconds it is the year
/// 5138, as milliseconds 1973-03-03. Seconds keep 10 digits until the year 2286.
pub const MILLISECONDS_FROM: i64 = 100_000_000_000;

/// A unix timestamp in seconds or milliseconds (see [`MILLISECONDS_FROM`]): an integer, a
/// number with a fraction (the fraction of a second is dropped) or a numeric string. `None` for
/// anything else, or a time `time` cannot represent.
pub(super) fn unix_time(v: &Value) -> Option<OffsetDateTime> {
    let whole = match v {
        Value::Number(n) => n
            .as_i64()
            .or_else(|| n.as_f64().filter(|f| f.is_finite()).map(|f| f as i64))?,
        Value::String(s) => {
            let s = s.trim();
            s.parse::<i64>().ok().or_else(|| {
                s.parse::<f64>()
                    .ok()
                    .filter(|f| f.is_finite())
                    .map(|f| f as i64)
            })?
        }
        _ => return None,
    };
    if whole.unsigned_abs() >= MILLISECONDS_FROM.unsigned_abs() {
        OffsetDateTime::from_unix_timestamp_nanos(i128::from(whole) * 1_000_000).ok()
    } else {
        OffsetDateTime::from_unix_timestamp(whole).ok()
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn error_bodies_are_read_in_both_shapes() {
        let d = ErrorDetail::parse(
            br#"{"error":{"message":"m","type":"t","param":null,"code":"insufficient_quota"}}"#,
        );
        assert_eq!(d.code.as_deref(), Some("insufficient_quota"));
        assert_eq!(d.kind.as_deref(), Some("t"));
        let d = ErrorDetail::parse(br#"{"error":"plain"}"#);
        assert_eq!(d.message.as_deref(), Some("plain"));
        assert!(ErrorDetail::parse(b"<html>").code.is_none());
        let d = ErrorDetail::parse(br#"{"error":{"message":"x","code":429}}"#);
        assert_eq!(d.code.as_deref(), Some("429"));
    }

    #[test]
    fn list_pages_find_their_cursor_or_name_what_is_missing() {
        let video = |id: &str| serde_json::json!({"id": id, "created_at": 1_712_697_600});
        let page = VideoPage::parse(&serde_json::json!({
            "object": "list", "data": [video("v2"), video("v1")], "has_more": true
        }))
        .unwrap();
        assert_eq!(
            page.next.as_deref(),
            Some("v1"),
            "without last_id, the last Video is the cursor"
        );
        assert_eq!(page.videos[1].path, "data[1]");
        let page = VideoPage::parse(&serde_json::json!({"data": [video("v1")]})).unwrap();
        assert_eq!(page.next, None, "no has_more: nothing says there is more");
        let e = VideoPage::parse(&serde_json::json!({"data": [], "has_more": true})).unwrap_err();
        assert!(e.contains("last_id"), "{e}");
        let e = VideoPage::parse(&serde_json::json!({"data": [{"created_at": 1}]})).unwrap_err();
        assert!(e.starts_with("data[0].id"), "{e}");
    }

    #[test]
    fn timestamps_of_13_digits_are_milliseconds_and_shorter_ones_seconds() {
        let t = |v: Value| unix_time(&v).map(OffsetDateTime::unix_timestamp_nanos);
        let s = 1_712_697_600_i128 * 1_000_000_000;
        assert_eq!(t(json!(1_712_697_600)), Some(s));
        assert_eq!(
            t(json!(1_712_697_600.9)),
            Some(s),
            "the fraction is dropped"
        );
        assert_eq!(t(json!(" 1712697600 ")), Some(s));
        assert_eq!(t(json!(1_712_697_600_250_i64)), Some(s + 250_000_000));
        assert_eq!(t(json!("1712697600250")), Some(s + 250_000_000));
        assert_eq!(
            t(json!(MILLISECONDS_FROM - 1)),
            Some(i128::from(MILLISECONDS_FROM - 1) * 1_000_000_000),
            "just below the threshold is still seconds (year 5138)"
        );
        assert_eq!(
            t(json!(MILLISECONDS_FROM)),
            Some(i128::from(MILLISECONDS_FROM) * 1_000_000)
        );
        assert_eq!(t(json!(null)), None);
        assert_eq!(t(json!("soon")), None);
        assert_eq!(
            t(json!(i64::MAX)),
            None,
            "out of range is no time, not a panic"
        );
    }

    #[test]
    fn video_objects_tolerate_unknown_fields() {
        let v: Video = serde_json::from_str(
            r#"{"id":"video_123","object":"video","model":"sora-2","status":"queued","progress":0,
               "created_at":1712697600,"size":"1024x1792","seconds":"8","quality":"standard"}"#,
        )
        .unwrap();
        assert_eq!(v.id, "video_123");
        assert_eq!(v.status.as_deref(), Some("queued"));
    }
}
