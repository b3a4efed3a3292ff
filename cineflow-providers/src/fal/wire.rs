//! Private serde types of the fal queue and of the platform request list. Unknown fields are
//! ignored.

use serde::Deserialize;
use serde_json::Value;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// The answer to `POST https://queue.fal.run/{endpoint_id}`.
#[derive(Debug, Deserialize)]
pub(super) struct Queued {
    pub(super) request_id: String,
    #[serde(default)]
    pub(super) status_url: Option<String>,
    #[serde(default)]
    pub(super) response_url: Option<String>,
    #[serde(default)]
    pub(super) cancel_url: Option<String>,
}

/// `GET …/requests/{id}/status`.
#[derive(Debug, Deserialize)]
pub(super) struct Status {
    /// `IN_QUEUE | IN_PROGRESS | COMPLETED`.
    #[serde(default)]
    pub(super) status: Option<String>,
    /// Set on a COMPLETED request that failed.
    #[serde(default)]
    pub(super) error: Option<Value>,
    /// The error's type (`content_policy_violation`, `generation_timeout`…).
    #[serde(default)]
    pub(super) error_type: Option<String>,
}

/// The model output of a video endpoint: `{"video": {"url", "content_type", …}, "seed"}`.
#[derive(Debug, Deserialize)]
pub(super) struct Output {
    #[serde(default)]
    pub(super) video: Option<File>,
}

/// A fal file object.
#[derive(Debug, Deserialize)]
pub(super) struct File {
    #[serde(default)]
    pub(super) url: Option<String>,
    #[serde(default)]
    pub(super) content_type: Option<String>,
}

/// A fal error body: `{"detail": "text"}` or `{"detail": [{loc, msg, type}]}`.
#[derive(Debug, Default, Deserialize)]
pub(super) struct ErrorBody {
    #[serde(default)]
    pub(super) detail: Option<Value>,
}

impl ErrorBody {
    /// The first error's `type` and the messages, joined (`loc: msg`).
    pub(super) fn read(&self) -> (Option<String>, Option<String>) {
        match &self.detail {
            Some(Value::String(s)) if !s.trim().is_empty() => (None, Some(s.clone())),
            Some(Value::Array(items)) => {
                let kind = items
                    .iter()
                    .find_map(|i| i.get("type").and_then(Value::as_str))
                    .map(str::to_owned);
                let msgs: Vec<String> = items
                    .iter()
                    .filter_map(|i| {
                        let msg = i.get("msg").and_then(Value::as_str)?;
                        let loc = i
                            .get("loc")
                            .and_then(Value::as_array)
                            .map(|l| {
                                l.iter()
                                    .map(|p| match p {
                                        Value::String(s) => s.clone(),
                                        other => other.to_string(),
                                    })
                                    .collect::<Vec<_>>()
                                    .join(".")
                            })
                            .filter(|l| !l.is_empty());
                        Some(match loc {
                            Some(l) => format!("{l}: {msg}"),
                            None => msg.to_owned(),
                        })
                    })
                    .collect();
                (kind, (!msgs.is_empty()).then(|| msgs.join("; ")))
            }
            _ => (None, None),
        }
    }
}

/// One page of `GET https://api.fal.ai/v1/models/requests/by-endpoint`.
#[derive(Debug)]
pub(super) struct RequestPage {
    pub(super) items: Vec<Listed>,
    pub(super) next_cursor: Option<String>,
    pub(super) has_more: bool,
}

/// One listed request.
#[derive(Debug)]
pub(super) struct Listed {
    pub(super) request_id: String,
    /// When it was sent (`sent_at`, else `started_at`).
    pub(super) sent_at: OffsetDateTime,
    pub(super) json_input: Value,
}

impl RequestPage {
    /// Reads a page; the error names the JSON path at fault.
    pub(super) fn parse(body: &Value) -> Result<Self, String> {
        let items = match body.get("items") {
            Some(Value::Array(items)) => items,
            Some(Value::Null) | None => return Err("items is missing or not an array".into()),
            Some(_) => return Err("items is not an array".into()),
        };
        let items = items
            .iter()
            .enumerate()
            .map(|(i, v)| Listed::parse(&format!("items[{i}]"), v))
            .collect::<Result<_, _>>()?;
        let has_more = match body.get("has_more") {
            None | Some(Value::Null) => false,
            Some(Value::Bool(b)) => *b,
            Some(_) => return Err("has_more is not a boolean".into()),
        };
        let next_cursor = match body.get("next_cursor") {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) => Some(s.clone()),
            Some(_) => return Err("next_cursor is not a string".into()),
        };
        if has_more && next_cursor.as_deref().is_none_or(str::is_empty) {
            return Err("has_more is true without a next_cursor".into());
        }
        Ok(Self {
            items,
            next_cursor,
            has_more,
        })
    }
}

impl Listed {
    fn parse(path: &str, v: &Value) -> Result<Self, String> {
        let request_id = match v.get("request_id") {
            Some(Value::String(s)) if !s.trim().is_empty() => s.clone(),
            _ => return Err(format!("{path}.request_id is missing or not a string")),
        };
        let time = |k: &str| {
            v.get(k)
                .and_then(Value::as_str)
                .and_then(|s| OffsetDateTime::parse(s, &Rfc3339).ok())
        };
        let sent_at = time("sent_at")
            .or_else(|| time("started_at"))
            .ok_or_else(|| {
                format!("{path}.sent_at (or started_at) is missing or not an RFC 3339 time")
            })?;
        let json_input = match v.get("json_input") {
            Some(j @ Value::Object(_)) => j.clone(),
            _ => {
                return Err(format!(
                    "{path}.json_input is missing or not an object (was expand=payloads honoured?)"
                ));
            }
        };
        Ok(Self {
            request_id,
            sent_at,
            json_input,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_documented_request_list_parses_and_errors_name_the_path() {
        let page = RequestPage::parse(&json!({
            "items": [{"request_id": "r-1", "endpoint_id": "fal-ai/veo3.1",
                       "started_at": "2026-12-01T09:30:12Z", "sent_at": "2026-12-01T09:30:11.5Z",
                       "ended_at": null, "status_code": 200, "duration": 41.2,
                       "json_input": {"prompt": "A fox"}, "json_output": null}],
            "next_cursor": "Mg==", "has_more": true
        }))
        .unwrap();
        assert_eq!(page.items[0].request_id, "r-1");
        assert_eq!(page.next_cursor.as_deref(), Some("Mg=="));
        let e = RequestPage::parse(
            &json!({"items": [{"request_id": "r", "sent_at": "2026-12-01T09:30:11Z"}]}),
        )
        .unwrap_err();
        assert!(e.starts_with("items[0].json_input"), "{e}");
        let e = RequestPage::parse(&json!({"items": [{"request_id": "r", "json_input": {}}]}))
            .unwrap_err();
        assert!(e.starts_with("items[0].sent_at"), "{e}");
        assert!(RequestPage::parse(&json!({"items": [], "has_more": true})).is_err());
        assert!(RequestPage::parse(&json!({})).is_err());
    }

    #[test]
    fn error_details_read_as_type_and_located_messages() {
        let b: ErrorBody = serde_json::from_value(json!({"detail": [
            {"loc": ["body", "prompt"], "msg": "The content was flagged by a content checker.",
             "type": "content_policy_violation"}
        ]}))
        .unwrap();
        let (kind, msg) = b.read();
        assert_eq!(kind.as_deref(), Some("content_policy_violation"));
        assert_eq!(
            msg.as_deref(),
            Some("body.prompt: The content was flagged by a content checker.")
        );
        let b: ErrorBody = serde_json::from_value(json!({"detail": "Not authenticated"})).unwrap();
        assert_eq!(b.read(), (None, Some("Not authenticated".into())));
    }
}
