//! Private serde types of the MiniMax video APIs (as the official CLI types them). Unknown
//! fields are ignored.

use serde::Deserialize;

/// `base_resp`: MiniMax's status, present in (almost) every answer, HTTP 200 or not.
#[derive(Debug, Default, Deserialize)]
pub(super) struct BaseResp {
    #[serde(default)]
    pub(super) status_code: i64,
    #[serde(default)]
    pub(super) status_msg: Option<String>,
}

/// Any answer's `base_resp` (absent: none was sent).
#[derive(Debug, Deserialize)]
pub(super) struct Envelope {
    #[serde(default)]
    pub(super) base_resp: Option<BaseResp>,
}

/// The answer to a create call (V1 and V2): `{"task_id":"106916112212032","base_resp":{…}}`.
#[derive(Debug, Deserialize)]
pub(super) struct Created {
    #[serde(default)]
    pub(super) task_id: Option<String>,
}

/// `GET /v1/query/video_generation?task_id=…`.
#[derive(Debug, Deserialize)]
pub(super) struct QueryV1 {
    /// `Preparing | Queueing | Processing | Success | Fail` (`Failed` in the CLI's type).
    #[serde(default)]
    pub(super) status: Option<String>,
    #[serde(default)]
    pub(super) file_id: Option<String>,
}

/// `GET /v1/files/retrieve?file_id=…`: `{"file":{…,"download_url"},"base_resp"}`.
#[derive(Debug, Deserialize)]
pub(super) struct Retrieved {
    #[serde(default)]
    pub(super) file: Option<File>,
}

/// A retrieved file.
#[derive(Debug, Deserialize)]
pub(super) struct File {
    #[serde(default)]
    pub(super) download_url: Option<String>,
}

/// `GET /v2/query/video_generation/{task_id}`: `{"task":{status, content:{url}, error}}`.
#[derive(Debug, Deserialize)]
pub(super) struct QueryV2 {
    #[serde(default)]
    pub(super) task: Option<TaskV2>,
}

/// A V2 task.
#[derive(Debug, Deserialize)]
pub(super) struct TaskV2 {
    /// `queued | running | succeeded | failed | cancelled`.
    #[serde(default)]
    pub(super) status: Option<String>,
    #[serde(default)]
    pub(super) content: Option<ContentV2>,
    /// `{code, message}` when failed (shape *unverified*).
    #[serde(default)]
    pub(super) error: Option<ErrorV2>,
}

/// A finished V2 task's `content`.
#[derive(Debug, Deserialize)]
pub(super) struct ContentV2 {
    #[serde(default)]
    pub(super) url: Option<String>,
}

/// A failed V2 task's `error`.
#[derive(Debug, Deserialize)]
pub(super) struct ErrorV2 {
    #[serde(default)]
    pub(super) code: Option<serde_json::Value>,
    #[serde(default)]
    pub(super) message: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_documented_answers_parse() {
        let q: QueryV1 = serde_json::from_value(json!({
            "base_resp": {"status_code": 0, "status_msg": "success"},
            "task_id": "106916112212032", "status": "Success",
            "file_id": "176844028768320", "video_width": 1024, "video_height": 768
        }))
        .unwrap();
        assert_eq!(q.file_id.as_deref(), Some("176844028768320"));
        let e: Envelope = serde_json::from_value(
            json!({"task_id": "", "base_resp": {"status_code": 1008, "status_msg": "insufficient balance"}}),
        )
        .unwrap();
        assert_eq!(e.base_resp.unwrap().status_code, 1008);
        let r: Retrieved = serde_json::from_value(json!({"file": {"file_id": 1, "bytes": 5,
            "download_url": "https://cdn.example/v.mp4"}, "base_resp": {"status_code": 0}}))
        .unwrap();
        assert!(r.file.unwrap().download_url.is_some());
        let v: QueryV2 = serde_json::from_value(
            json!({"task": {"status": "succeeded", "content": {"url": "https://cdn.example/h3.mp4"}}}),
        )
        .unwrap();
        assert_eq!(v.task.unwrap().status.as_deref(), Some("succeeded"));
    }
}
