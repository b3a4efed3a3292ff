//! Private serde types of the OpenAI Videos protocol (`/videos`).
//!
//! Unknown fields are tolerated everywhere (`quality` appears in OpenAI's own examples without
//! being in the schema); fields whose type varies between resellers are read as
//! [`serde_json::Value`] and converted leniently.

use serde::{Deserialize, Serialize};
use serde_json::Value;

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

/// A unix timestamp (seconds; number or numeric string).
pub(super) fn unix_seconds(v: &Value) -> Option<i64> {
    match v {
        Value::Number(n) => n
            .as_i64()
            .or_else(|| n.as_f64().filter(|f| f.is_finite()).map(|f| f as i64)),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
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
