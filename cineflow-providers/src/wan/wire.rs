//! Private serde types of the DashScope task API (as the official `dashscope` Python SDK and
//! the Model Studio API reference show them). Unknown fields are ignored.

use serde::Deserialize;
use serde_json::Value;
use time::OffsetDateTime;

/// The answer to the create call: `{"output":{"task_status":"PENDING","task_id":"…"},
/// "request_id":"…"}`.
#[derive(Debug, Deserialize)]
pub(super) struct Created {
    pub(super) output: CreatedOutput,
}

/// The create answer's `output`.
#[derive(Debug, Deserialize)]
pub(super) struct CreatedOutput {
    pub(super) task_id: String,
}

/// `GET /api/v1/tasks/{id}`.
#[derive(Debug, Deserialize)]
pub(super) struct Task {
    pub(super) output: TaskOutput,
}

/// A task's `output`.
#[derive(Debug, Deserialize)]
pub(super) struct TaskOutput {
    /// `PENDING | RUNNING | SUSPENDED | SUCCEEDED | FAILED | CANCELED | UNKNOWN`.
    #[serde(default)]
    pub(super) task_status: Option<String>,
    /// The MP4: an OSS-signed URL valid 24 h (no auth), once succeeded.
    #[serde(default)]
    pub(super) video_url: Option<String>,
    /// The failure's code, when failed.
    #[serde(default)]
    pub(super) code: Option<String>,
    /// The failure's message, when failed.
    #[serde(default)]
    pub(super) message: Option<String>,
}

/// An HTTP error answer: `{"request_id","code","message"}`.
#[derive(Debug, Default, Deserialize)]
pub(super) struct ErrorBody {
    #[serde(default)]
    pub(super) code: Option<String>,
    #[serde(default)]
    pub(super) message: Option<String>,
}

/// One task of the list (`GET /api/v1/tasks`).
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Listed {
    pub(super) task_id: String,
    pub(super) model: String,
    pub(super) created_at: OffsetDateTime,
    /// The prompt, when the item echoes it (`orig_prompt`): the list's item shape is not
    /// documented, so nothing relies on it being there.
    pub(super) prompt: Option<String>,
}

/// One page of the list: `{"data":[…], "total", "page_no", "page_size", "total_page"}`.
#[derive(Debug)]
pub(super) struct Page {
    pub(super) total: u64,
    pub(super) items: Vec<Listed>,
}

impl Page {
    /// Reads a list answer (the item shape *unverified*: `task_id`, `model_name` and
    /// `gmt_create` in unix milliseconds are required, so a different shape fails loudly);
    /// the error names the JSON path at fault.
    pub(super) fn parse(body: &Value) -> Result<Self, String> {
        let total = body
            .get("total")
            .and_then(Value::as_u64)
            .ok_or_else(|| "total is missing or not a non-negative integer".to_owned())?;
        let items = match body.get("data") {
            Some(Value::Array(items)) => items,
            Some(Value::Null) | None if total == 0 => {
                return Ok(Self {
                    total,
                    items: vec![],
                });
            }
            _ => return Err("data is missing or not an array".into()),
        };
        let items = items
            .iter()
            .enumerate()
            .map(|(i, v)| listed(&format!("data[{i}]"), v))
            .collect::<Result<_, _>>()?;
        Ok(Self { total, items })
    }
}

fn listed(path: &str, v: &Value) -> Result<Listed, String> {
    let text = |k: &str| match v.get(k) {
        Some(Value::String(s)) if !s.trim().is_empty() => Ok(s.clone()),
        _ => Err(format!("{path}.{k} is missing or not a non-empty string")),
    };
    let created_at = v
        .get("gmt_create")
        .and_then(Value::as_i64)
        .and_then(|ms| OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000).ok())
        .ok_or_else(|| format!("{path}.gmt_create is missing or not unix milliseconds"))?;
    Ok(Listed {
        task_id: text("task_id")?,
        model: text("model_name")?,
        created_at,
        prompt: v
            .get("orig_prompt")
            .and_then(Value::as_str)
            .map(str::to_owned),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_documented_task_shapes_parse() {
        let t: Task = serde_json::from_value(json!({
            "request_id": "ec8f059e", "output": {"task_id": "a55bfe14", "task_status": "SUCCEEDED",
            "submit_time": "2025-10-11 18:55:56.952", "end_time": "2025-10-11 19:02:27.297",
            "orig_prompt": "p", "video_url": "https://dashscope-result-bj.oss-cn-beijing.aliyuncs.com/x.mp4?Expires=1760266939"},
            "usage": {"SR": 480, "duration": 5, "video_count": 1}
        }))
        .unwrap();
        assert_eq!(t.output.task_status.as_deref(), Some("SUCCEEDED"));
        assert!(t.output.video_url.unwrap().contains("Expires="));
        let c: Created = serde_json::from_value(
            json!({"output": {"task_status": "PENDING", "task_id": "0385dc79"}, "request_id": "4909100c"}),
        )
        .unwrap();
        assert_eq!(c.output.task_id, "0385dc79");
    }

    #[test]
    fn list_pages_need_their_fields_and_errors_name_the_path() {
        let page = Page::parse(&json!({"total": 1, "data": [
            {"task_id": "t1", "model_name": "wan2.6-t2v", "gmt_create": 1_764_900_000_123i64, "status": "RUNNING"}
        ]}))
        .unwrap();
        assert_eq!(page.items[0].task_id, "t1");
        assert_eq!(page.items[0].created_at.unix_timestamp(), 1_764_900_000);
        assert_eq!(page.items[0].prompt, None);
        let e = Page::parse(&json!({"total": 1, "data": [{"task_id": "t1", "model_name": "m"}]}))
            .unwrap_err();
        assert_eq!(e, "data[0].gmt_create is missing or not unix milliseconds");
        assert!(Page::parse(&json!({"data": []})).is_err());
        assert!(Page::parse(&json!({"total": 0})).unwrap().items.is_empty());
    }
}
