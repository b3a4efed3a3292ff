//! Private serde types of the Sora.hk API.
//!
//! Every answer is an envelope `{"code":200,"message":"操作成功","data":{…}}` (except, per the
//! docs, `/balance` and `/pricing`, which are read with or without one). Unknown fields are
//! tolerated; fields whose type may vary are read as [`serde_json::Value`].

use serde::{Deserialize, Serialize};
use serde_json::Value;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::http::listed::ListedJob;

/// The JSON body of `POST /create`.
#[derive(Debug, Serialize)]
pub(super) struct Create<'a> {
    pub(super) prompt: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) image_url: Option<&'a str>,
    pub(super) is_pro: bool,
    pub(super) duration: u32,
    /// `horizontal` | `vertical`.
    pub(super) resolution: &'a str,
    pub(super) remove_watermark: bool,
}

/// `data` of a `POST /create` answer.
#[derive(Debug, Deserialize)]
pub(super) struct Created {
    pub(super) task_id: String,
    #[serde(default)]
    pub(super) cost: Option<Value>,
}

/// `data` of a `GET /tasks/{task_id}` answer.
#[derive(Debug, Deserialize)]
pub(super) struct Task {
    #[serde(default)]
    pub(super) status: Option<String>,
    #[serde(default)]
    pub(super) progress: Option<Value>,
    #[serde(default)]
    pub(super) video_url: Option<String>,
    #[serde(default)]
    pub(super) error_msg: Option<String>,
}

/// `data` of a `GET /tasks?page=&page_size=` answer: `{items:[task…], total, page, page_size}`,
/// newest first; read by hand so that a malformed answer names the JSON path at fault.
#[derive(Debug)]
pub(super) struct TaskPage {
    pub(super) items: Vec<ListedJob>,
    /// `total`: how many tasks the whole list holds, when the vendor says.
    pub(super) total: Option<u64>,
    /// `page_size`: the page size the vendor applied, when it says.
    pub(super) page_size: Option<u64>,
}

impl TaskPage {
    /// Whether this page, number `page` (from 1) of pages of `asked` tasks, is the last: by
    /// `total` when the vendor says it (with the page size it applied), else a short page is.
    pub(super) fn is_last(&self, page: u64, asked: u64) -> bool {
        let page_size = self.page_size.unwrap_or(asked);
        match self.total {
            Some(total) => page.saturating_mul(page_size) >= total,
            None => (self.items.len() as u64) < page_size,
        }
    }

    /// Reads the envelope of a list answer. The error names the JSON path that does not have
    /// the documented shape (`data.items`, `data.items[2].created_at`, `data.total`…).
    pub(super) fn parse(envelope: &Value) -> Result<Self, String> {
        let Some(data) = envelope.get("data").filter(|d| d.is_object()) else {
            return Err("data is missing or not an object".into());
        };
        let Some(items) = data.get("items").and_then(Value::as_array) else {
            return Err("data.items is missing or not an array".into());
        };
        let items = items
            .iter()
            .enumerate()
            .map(|(i, t)| {
                ListedJob::parse(
                    format!("data.items[{i}]"),
                    t,
                    "task_id",
                    rfc3339,
                    "an RFC 3339 time with an offset",
                )
            })
            .collect::<Result<Vec<_>, _>>()?;
        let count = |key: &str| match data.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(v) => amount(v)
                .map(Some)
                .ok_or_else(|| format!("data.{key} is not a non-negative number")),
        };
        Ok(Self {
            items,
            total: count("total")?,
            page_size: count("page_size")?.filter(|n| *n > 0),
        })
    }
}

/// An RFC 3339 `created_at` with its offset (`2026-01-11T15:08:35.407+08:00`).
fn rfc3339(v: &Value) -> Option<OffsetDateTime> {
    OffsetDateTime::parse(v.as_str()?.trim(), &Rfc3339).ok()
}

/// The envelope's `code` and `message`, read leniently from any body.
#[derive(Debug, Default)]
pub(super) struct Envelope {
    /// `None` when the body is not a JSON object or has no numeric `code`.
    pub(super) code: Option<i64>,
    pub(super) message: Option<String>,
}

impl Envelope {
    pub(super) fn parse(body: &[u8]) -> Self {
        match serde_json::from_slice::<Value>(body) {
            Ok(v) => Self::of(&v),
            Err(_) => Self::default(),
        }
    }

    pub(super) fn of(v: &Value) -> Self {
        Self {
            code: v.get("code").and_then(code),
            message: v.get("message").and_then(Value::as_str).map(str::to_owned),
        }
    }
}

/// An envelope code: a number or a numeric string.
pub(super) fn code(v: &Value) -> Option<i64> {
    match v {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// A non-negative whole amount (a number, or a numeric string); fractions are rounded.
pub(super) fn amount(v: &Value) -> Option<u64> {
    let f = match v {
        Value::Number(n) => return n.as_u64().or_else(|| n.as_f64().and_then(whole)),
        Value::String(s) => s.trim().parse::<f64>().ok()?,
        _ => return None,
    };
    whole(f)
}

fn whole(f: f64) -> Option<u64> {
    (f.is_finite() && f >= 0.0 && f < u64::MAX as f64).then(|| f.round() as u64)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn envelopes_are_read_leniently() {
        let e = Envelope::parse(r#"{"code":1012,"message":"余额不足","data":null}"#.as_bytes());
        assert_eq!(e.code, Some(1012));
        assert_eq!(e.message.as_deref(), Some("余额不足"));
        assert_eq!(Envelope::parse(br#"{"code":"200"}"#).code, Some(200));
        assert_eq!(Envelope::parse(b"<html>").code, None);
    }

    #[test]
    fn task_data_tolerates_unknown_fields() {
        let t: Task = serde_json::from_value(json!({
            "task_id": "550e8400-e29b-41d4-a716-446655440000", "status": "processing",
            "progress": 45, "prompt": "p", "video_url": null, "is_pro": false, "duration": 10,
            "resolution": "horizontal", "quality": "normal", "remove_watermark": true,
            "image_url": null, "error_msg": null,
            "created_at": "2026-01-11T15:08:35.407+08:00", "completed_at": null
        }))
        .unwrap();
        assert_eq!(t.status.as_deref(), Some("processing"));
        assert_eq!(
            t.progress.as_ref().and_then(crate::http::progress),
            Some(45)
        );
    }

    #[test]
    fn amounts_accept_numbers_and_strings() {
        assert_eq!(amount(&json!(5000)), Some(5000));
        assert_eq!(amount(&json!("42")), Some(42));
        assert_eq!(amount(&json!(2.6)), Some(3));
        assert_eq!(amount(&json!(-1)), None);
    }
}
