//! Private serde types of the Kling API (app.klingai.com/global/dev/document-api): every answer
//! is an envelope `{code, message, request_id, data}`; `code` 0 is success. Unknown fields are
//! ignored.

use serde::Deserialize;
use serde_json::Value;
use time::OffsetDateTime;

/// The envelope of every answer (and of every error answer).
#[derive(Debug, Deserialize)]
pub(super) struct Envelope<T> {
    /// 0 on success; a numeric error code otherwise (see `error.rs`).
    pub(super) code: i64,
    /// The task (create, query), or an array of tasks (list). Absent or null on errors.
    #[serde(default = "none")]
    pub(super) data: Option<T>,
}

fn none<T>() -> Option<T> {
    None
}

/// The error envelope, read leniently (any field may be missing).
#[derive(Debug, Default, Deserialize)]
pub(super) struct ErrorBody {
    #[serde(default)]
    pub(super) code: Option<i64>,
    #[serde(default)]
    pub(super) message: Option<String>,
}

/// A task object: the answer to a create, to a query, each item of a list, and a callback's body.
#[derive(Debug, Deserialize)]
pub(super) struct Task {
    pub(super) task_id: String,
    /// `submitted | processing | succeed | failed`.
    #[serde(default)]
    pub(super) task_status: Option<String>,
    /// Why a task failed (free text, never classified).
    #[serde(default)]
    pub(super) task_status_msg: Option<String>,
    /// `{external_task_id}`: the client's id, echoed.
    #[serde(default)]
    pub(super) task_info: Option<TaskInfo>,
    /// Unix milliseconds of the creation.
    #[serde(default)]
    pub(super) created_at: Option<i64>,
    /// Unix milliseconds of the last state change.
    #[serde(default)]
    pub(super) updated_at: Option<i64>,
    /// `{videos: [{id, url, watermark_url, duration}]}` once succeeded.
    #[serde(default)]
    pub(super) task_result: Option<TaskResult>,
}

impl Task {
    /// The echoed `task_info.external_task_id`, if any.
    pub(super) fn external_id(&self) -> Option<&str> {
        self.task_info
            .as_ref()
            .and_then(|i| i.external_task_id.as_deref())
    }

    /// `created_at` as a time, if it is a valid unix-milliseconds value.
    pub(super) fn created(&self) -> Option<OffsetDateTime> {
        unix_ms(self.created_at?)
    }

    /// `updated_at` as a time, if it is a valid unix-milliseconds value.
    pub(super) fn updated(&self) -> Option<OffsetDateTime> {
        unix_ms(self.updated_at?)
    }

    /// The first video's URL, when one is there and not empty.
    pub(super) fn video_url(&self) -> Option<&str> {
        self.task_result
            .as_ref()?
            .videos
            .first()?
            .url
            .as_deref()
            .filter(|u| !u.is_empty())
    }
}

/// A task's `task_info`.
#[derive(Debug, Deserialize)]
pub(super) struct TaskInfo {
    #[serde(default)]
    pub(super) external_task_id: Option<String>,
}

/// A task's `task_result`.
#[derive(Debug, Deserialize)]
pub(super) struct TaskResult {
    #[serde(default)]
    pub(super) videos: Vec<Video>,
}

/// One generated video: a plain CDN URL (no auth), kept 30 days.
#[derive(Debug, Deserialize)]
pub(super) struct Video {
    #[serde(default)]
    pub(super) url: Option<String>,
}

/// Reads a list answer's `data`: an array of tasks. The error names the JSON path at fault.
pub(super) fn parse_list(data: &Value) -> Result<Vec<(Task, Value)>, String> {
    let items = match data {
        Value::Array(items) => items,
        Value::Null => return Ok(Vec::new()),
        _ => return Err("data is not an array".into()),
    };
    items
        .iter()
        .enumerate()
        .map(|(i, v)| {
            let task: Task =
                serde_json::from_value(v.clone()).map_err(|e| format!("data[{i}]: {e}"))?;
            if task.task_id.trim().is_empty() {
                return Err(format!("data[{i}].task_id is empty"));
            }
            Ok((task, v.clone()))
        })
        .collect()
}

/// A unix-milliseconds timestamp.
pub(super) fn unix_ms(ms: i64) -> Option<OffsetDateTime> {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_documented_create_and_query_answers_parse() {
        let e: Envelope<Task> = serde_json::from_value(json!({
            "code": 0, "message": "SUCCEED", "request_id": "c0656403-1",
            "data": {"task_id": "867283741759111202", "task_status": "submitted",
                     "task_info": {"external_task_id": "text2video_kling_v3_final-1774805076"},
                     "created_at": 1774805076166u64, "updated_at": 1774805076166u64}
        }))
        .unwrap();
        let t = e.data.unwrap();
        assert_eq!(t.task_id, "867283741759111202");
        assert_eq!(
            t.external_id(),
            Some("text2video_kling_v3_final-1774805076")
        );
        assert_eq!(t.created().unwrap().unix_timestamp(), 1_774_805_076);
        let e: Envelope<Task> = serde_json::from_value(json!({
            "code": 0, "message": "SUCCEED", "request_id": "r",
            "data": {"task_id": "8", "task_status": "succeed", "task_status_msg": "",
                     "final_unit_deduction": "1",
                     "task_result": {"videos": [{"id": "v", "url": "https://cdn.klingai.com/v.mp4",
                                                 "watermark_url": "https://cdn.klingai.com/w.mp4",
                                                 "duration": "5.042"}]}}
        }))
        .unwrap();
        assert_eq!(
            e.data.unwrap().video_url(),
            Some("https://cdn.klingai.com/v.mp4")
        );
    }

    #[test]
    fn list_items_need_a_task_id_and_errors_name_the_path() {
        let items =
            parse_list(&json!([{"task_id": "1", "task_info": {"external_task_id": "x"}}])).unwrap();
        assert_eq!(items[0].0.external_id(), Some("x"));
        assert!(parse_list(&json!(null)).unwrap().is_empty());
        let e = parse_list(&json!([{"task_id": "1"}, {"task_status": "failed"}])).unwrap_err();
        assert!(e.starts_with("data[1]:"), "{e}");
        assert_eq!(
            parse_list(&json!([{"task_id": " "}])).unwrap_err(),
            "data[0].task_id is empty"
        );
        assert_eq!(
            parse_list(&json!({"task_id": "1"})).unwrap_err(),
            "data is not an array"
        );
    }
}
