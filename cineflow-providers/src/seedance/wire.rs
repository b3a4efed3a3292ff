//! Private serde types of the Ark / ModelArk content-generation API (snake_case, as the
//! official `volcengine-python-sdk` types them). Unknown fields are ignored.

use serde::Deserialize;
use serde_json::Value;
use time::OffsetDateTime;

use crate::http::listed::ListedJob;

/// The answer to `POST …/contents/generations/tasks`: `{"id": "cgt-…"}` (plus the echoed
/// `safety_identifier` when one was sent).
#[derive(Debug, Deserialize)]
pub(super) struct Created {
    pub(super) id: String,
    #[serde(default)]
    pub(super) safety_identifier: Option<String>,
}

/// `GET …/contents/generations/tasks/{id}`, and each item of the list.
#[derive(Debug, Deserialize)]
pub(super) struct Task {
    /// `queued | running | succeeded | failed | cancelled | expired`.
    #[serde(default)]
    pub(super) status: Option<String>,
    /// `{code, message}` when failed; null on success.
    #[serde(default)]
    pub(super) error: Option<TaskError>,
    /// `{video_url, last_frame_url, file_url}` when succeeded.
    #[serde(default)]
    pub(super) content: Option<TaskContent>,
    /// Unix seconds of the last state change.
    #[serde(default)]
    pub(super) updated_at: Option<i64>,
    /// `{completion_tokens, total_tokens}`: what the task is billed (once succeeded).
    #[serde(default)]
    pub(super) usage: Option<TaskUsage>,
}

/// A task's `usage` (absent or null until the task succeeded).
#[derive(Debug, Deserialize)]
pub(super) struct TaskUsage {
    #[serde(default)]
    pub(super) completion_tokens: Option<u64>,
    #[serde(default)]
    pub(super) total_tokens: Option<u64>,
}

impl TaskUsage {
    /// The usage, when the billed tokens are reported.
    pub(super) fn reported(&self) -> Option<cineflow_core::Usage> {
        let mut usage = cineflow_core::Usage::new(self.completion_tokens?);
        usage.total_tokens = self.total_tokens;
        Some(usage)
    }
}

/// A failed task's (or an error answer's) `error` object.
#[derive(Debug, Default, Deserialize)]
pub(super) struct TaskError {
    #[serde(default)]
    pub(super) code: Option<String>,
    #[serde(default)]
    pub(super) message: Option<String>,
}

/// A task's `content`.
#[derive(Debug, Deserialize)]
pub(super) struct TaskContent {
    /// The MP4, a TOS-signed URL valid 24 h (no auth).
    #[serde(default)]
    pub(super) video_url: Option<String>,
    /// The video's last frame (a PNG, same lifetime), when `return_last_frame` was asked.
    #[serde(default)]
    pub(super) last_frame_url: Option<String>,
}

/// An error body: OpenAI-style `{"error": {"code", "message", "param", "type"}}`.
#[derive(Debug, Deserialize)]
pub(super) struct ErrorBody {
    #[serde(default)]
    pub(super) error: Option<TaskError>,
}

/// One page of `GET …/contents/generations/tasks`: `{"total": n, "items": [task…]}`.
#[derive(Debug)]
pub(super) struct TaskPage {
    /// How many tasks match the filters over all pages.
    pub(super) total: u64,
    pub(super) items: Vec<ListedJob>,
}

impl TaskPage {
    /// Reads a list answer; the error names the JSON path at fault.
    pub(super) fn parse(body: &Value) -> Result<Self, String> {
        let total = match body.get("total") {
            Some(v) => v
                .as_u64()
                .ok_or_else(|| "total is not a non-negative integer".to_owned())?,
            None => return Err("total is missing".into()),
        };
        let items = match body.get("items") {
            Some(Value::Array(items)) => items,
            // An empty page may come back as `null`.
            Some(Value::Null) => {
                return Ok(Self {
                    total,
                    items: vec![],
                });
            }
            _ => return Err("items is missing or not an array".into()),
        };
        let items = items
            .iter()
            .enumerate()
            .map(|(i, v)| {
                ListedJob::parse(format!("items[{i}]"), v, "id", unix_time, "unix seconds")
            })
            .collect::<Result<_, _>>()?;
        Ok(Self { total, items })
    }
}

/// A unix-seconds timestamp.
pub(super) fn unix_time(v: &Value) -> Option<OffsetDateTime> {
    OffsetDateTime::from_unix_timestamp(v.as_i64()?).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_documented_task_shapes_parse() {
        let t: Task = serde_json::from_value(json!({
            "id": "cgt-2026****-****", "model": "doubao-seedance-2-0-260128",
            "status": "succeeded",
            "content": {"video_url": "https://ark-content-generation-cn-beijing.tos-cn-beijing.volces.com/xxx"},
            "usage": {"completion_tokens": 108900, "total_tokens": 108900},
            "created_at": 1779348818, "updated_at": 1779348874, "seed": 78674,
            "resolution": "720p", "ratio": "16:9", "duration": 5, "framespersecond": 24,
            "service_tier": "default", "execution_expires_after": 172800,
            "generate_audio": true, "draft": false, "priority": 0
        }))
        .unwrap();
        assert_eq!(t.status.as_deref(), Some("succeeded"));
        assert!(
            t.content
                .unwrap()
                .video_url
                .unwrap()
                .starts_with("https://")
        );
        assert_eq!(t.updated_at, Some(1779348874));
        assert_eq!(
            t.usage.and_then(|u| u.reported()),
            Some(cineflow_core::Usage::new(108_900).with_total_tokens(108_900))
        );
        let t: Task = serde_json::from_value(json!({
            "id": "cgt-1", "status": "failed", "content": null,
            "error": {"code": "InputTextSensitiveContentDetected", "message": "The request failed"}
        }))
        .unwrap();
        assert_eq!(
            t.error.unwrap().code.as_deref(),
            Some("InputTextSensitiveContentDetected")
        );
    }

    #[test]
    fn list_pages_need_total_and_items_and_errors_name_the_path() {
        let page = TaskPage::parse(&json!({
            "total": 1, "items": [{"id": "cgt-1", "created_at": 1779348818, "status": "queued"}]
        }))
        .unwrap();
        assert_eq!((page.total, page.items.len()), (1, 1));
        assert_eq!(page.items[0].id, "cgt-1");
        assert_eq!(
            TaskPage::parse(&json!({"items": []})).unwrap_err(),
            "total is missing"
        );
        let e = TaskPage::parse(&json!({"total": 1, "items": [{"id": "cgt-1"}]})).unwrap_err();
        assert_eq!(e, "items[0].created_at is missing or not unix seconds");
        assert!(
            TaskPage::parse(&json!({"total": 0, "items": null}))
                .unwrap()
                .items
                .is_empty()
        );
    }
}
