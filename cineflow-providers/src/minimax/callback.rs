//! MiniMax callbacks, unsigned. MiniMax first POSTs `{"challenge": "…"}` to the callback URL
//! and expects the same JSON back within 3 s; then it POSTs the query-shaped task on each
//! change (`task_id`, lowercase `status`: `processing | success | failed`, `file_id`,
//! `base_resp`). The per-attempt token in the URL (checked by the orchestrator) authenticates
//! both; a report is a hint that a poll confirms. A success names a file to look up, not a
//! URL: it is claimed as the job's end without its result. MiniMax has no task list, so such a
//! callback is the only way back to the job of an ambiguous submit.

use cineflow_core::callback::{
    CallbackClaim, CallbackContext, CallbackRejection, CallbackReply, CallbackRequest, JobClaim,
};
use cineflow_core::{JobState, JobStatus};
use serde_json::{Value, json};

use super::{Minimax, error};

impl Minimax {
    /// Answers a handshake, or reads a task report.
    pub(super) async fn callback_claim(
        &self,
        req: &CallbackRequest,
        ctx: &CallbackContext,
    ) -> Result<CallbackClaim, CallbackRejection> {
        let raw = req.json("minimax")?;
        if let Some(challenge) = raw.get("challenge") {
            let Some(challenge) = challenge.as_str() else {
                return Err(CallbackRejection::malformed(
                    "minimax",
                    "challenge",
                    "is not a string",
                ));
            };
            return Ok(CallbackClaim::Challenge {
                reply: CallbackReply::json(&json!({ "challenge": challenge })),
            });
        }
        let id = raw
            .get("task_id")
            .and_then(|v| match v {
                Value::String(s) => Some(s.trim().to_owned()),
                Value::Number(n) => Some(n.to_string()),
                _ => None,
            })
            .filter(|id| !id.is_empty())
            .ok_or_else(|| {
                CallbackRejection::malformed("minimax", "task_id", "is missing or not a task id")
            })?;
        let status = raw
            .get("status")
            .and_then(Value::as_str)
            .ok_or_else(|| {
                CallbackRejection::malformed("minimax", "status", "is missing or not a string")
            })?
            .to_ascii_lowercase();
        let job = self.inner.api.callback_job(&id, &ctx.vendor_model, ctx);
        let running = |raw: Value| {
            let state = JobState::Running {
                progress: None,
                eta: None,
            };
            JobClaim::new(job.clone(), JobStatus::new(state).with_raw(raw))
        };
        let claim = match status.as_str() {
            "preparing" | "queueing" | "queued" | "processing" | "running" => running(raw),
            "success" | "succeeded" => JobClaim::ended(job, raw),
            "fail" | "failed" => {
                let base = raw.get("base_resp");
                let code = base
                    .and_then(|b| b.get("status_code"))
                    .and_then(Value::as_i64);
                let message = base
                    .and_then(|b| b.get("status_msg"))
                    .and_then(Value::as_str);
                let bytes = req.body().clone();
                let error = error::task_failure(code, message, &bytes, &self.inner.key);
                JobClaim::new(
                    job,
                    JobStatus::new(JobState::Failed { error }).with_raw(raw),
                )
            }
            other => {
                return Err(CallbackRejection::malformed(
                    "minimax",
                    "status",
                    format!("is {other:?}, not a MiniMax task state"),
                ));
            }
        };
        Ok(claim.into())
    }
}

#[cfg(test)]
mod tests {
    use cineflow_core::callback::{AttemptRef, CallbackScheme, RejectionKind};
    use cineflow_core::{TaskId, VideoProvider};
    use time::OffsetDateTime;

    use super::*;
    use crate::ApiKeyBuilder;

    const SECRET: &str = "mm-SECRET-KEY";

    fn provider() -> Minimax {
        Minimax::intl().with_api_key(SECRET).build().unwrap()
    }

    fn ctx() -> CallbackContext {
        CallbackContext::new(
            AttemptRef::new(TaskId::new(), 1),
            "MiniMax-Hailuo-02",
            OffsetDateTime::now_utc(),
        )
    }

    fn req(body: &str) -> CallbackRequest {
        CallbackRequest::new("POST", "/api/v1/callbacks/minimax?cf_attempt=x&cf_token=t")
            .with_body(body.as_bytes().to_vec())
    }

    #[tokio::test]
    async fn the_minimax_challenge_is_echoed() {
        let claim = provider()
            .read_callback(&req(r#"{"challenge":"c-123"}"#), &ctx())
            .await
            .unwrap();
        let CallbackClaim::Challenge { reply } = claim else {
            panic!("not a challenge")
        };
        assert_eq!(reply.status, 200);
        assert_eq!(reply.content_type, Some("application/json"));
        let body: Value = serde_json::from_slice(&reply.body).unwrap();
        assert_eq!(body, json!({"challenge": "c-123"}));
    }

    #[tokio::test]
    async fn a_minimax_report_names_its_task_and_claims_its_end() {
        let p = provider();
        let done = r#"{"task_id":"106916112212032","status":"success","file_id":"F1",
            "base_resp":{"status_code":0,"status_msg":"success"}}"#;
        let CallbackClaim::Job(c) = p.read_callback(&req(done), &ctx()).await.unwrap() else {
            panic!("not a job claim")
        };
        assert_eq!(c.job.vendor_job_id, "106916112212032");
        assert_eq!(c.job.vendor_model, "MiniMax-Hailuo-02");
        assert!(c.ended && !c.conclusive);
        let failed = r#"{"task_id":"T","status":"failed","base_resp":{"status_code":1027,"status_msg":"output sensitive"}}"#;
        let CallbackClaim::Job(c) = p.read_callback(&req(failed), &ctx()).await.unwrap() else {
            panic!("not a job claim")
        };
        assert!(matches!(c.status.state, JobState::Failed { .. }) && c.ended);
        let running = r#"{"task_id":"T","status":"processing"}"#;
        let CallbackClaim::Job(c) = p.read_callback(&req(running), &ctx()).await.unwrap() else {
            panic!("not a job claim")
        };
        assert!(!c.ended);
    }

    #[tokio::test]
    async fn a_malformed_minimax_callback_is_rejected_naming_the_field() {
        let p = provider();
        for (body, field) in [
            ("{", "not JSON"),
            (r#"{"challenge":5}"#, "challenge"),
            (r#"{"status":"success"}"#, "task_id"),
            (r#"{"task_id":"T"}"#, "status"),
            (r#"{"task_id":"T","status":"weird"}"#, "status"),
        ] {
            let e = p.read_callback(&req(body), &ctx()).await.unwrap_err();
            assert_eq!(e.kind(), RejectionKind::Malformed, "{body}");
            assert!(e.to_string().contains(field), "{body}: {e}");
            assert!(!format!("{e} {e:?} {p:?}").contains(SECRET));
        }
        assert_eq!(p.callback_scheme(), CallbackScheme::Token);
    }
}
