//! Private serde types of Runway's API (camelCase). Unknown fields are ignored.

use serde::Deserialize;

/// The answer to `POST /v1/text_to_video` and `POST /v1/image_to_video`.
#[derive(Debug, Deserialize)]
pub(super) struct Created {
    pub(super) id: String,
}

/// `GET /v1/tasks/{id}`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct Task {
    /// `PENDING | THROTTLED | RUNNING | SUCCEEDED | FAILED | CANCELLED`.
    #[serde(default)]
    pub(super) status: Option<String>,
    /// 0–1 while running.
    #[serde(default)]
    pub(super) progress: Option<f64>,
    /// Result URLs when succeeded (they expire in 24–48 h).
    #[serde(default)]
    pub(super) output: Option<Vec<String>>,
    /// A human reason when failed.
    #[serde(default)]
    pub(super) failure: Option<String>,
    /// A machine reason when failed, e.g. `SAFETY.INPUT.TEXT`.
    #[serde(default)]
    pub(super) failure_code: Option<String>,
}

/// An error body: `{"error": "…"}` (sometimes with `issues`).
#[derive(Debug, Deserialize)]
pub(super) struct ErrorBody {
    #[serde(default)]
    pub(super) error: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_documented_task_shapes_parse() {
        let t: Task = serde_json::from_str(
            r#"{"id":"17f20503-6c24-4c16-946b-35dbbce2af2f","createdAt":"2024-06-27T19:49:32.334Z","status":"RUNNING","progress":0.42}"#,
        )
        .unwrap();
        assert_eq!(t.progress, Some(0.42));
        let t: Task = serde_json::from_str(
            r#"{"id":"x","status":"FAILED","failure":"Prompt flagged","failureCode":"SAFETY.INPUT.TEXT"}"#,
        )
        .unwrap();
        assert_eq!(t.failure_code.as_deref(), Some("SAFETY.INPUT.TEXT"));
        let t: Task = serde_json::from_str(
            r#"{"id":"x","status":"SUCCEEDED","output":["https://dnznrvs05pmza.cloudfront.net/v.mp4?_jwt=x"]}"#,
        )
        .unwrap();
        assert_eq!(t.output.unwrap().len(), 1);
    }
}
