//! Ark / ModelArk callbacks: the task object (as a poll answers it) POSTed to `callback_url` on
//! each state change, unsigned. The per-attempt token in the URL (checked by the orchestrator)
//! authenticates it; the body is a hint that a poll confirms.

use cineflow_core::callback::{
    CallbackClaim, CallbackContext, CallbackRejection, CallbackRequest, JobClaim,
};
use serde_json::Value;

use super::Seedance;
use super::wire::Task;

impl Seedance {
    /// Reads a callback's body: its `id` and the task's state.
    pub(super) async fn callback_claim(
        &self,
        req: &CallbackRequest,
        ctx: &CallbackContext,
    ) -> Result<CallbackClaim, CallbackRejection> {
        let raw = req.json("seedance")?;
        let id = raw
            .get("id")
            .and_then(Value::as_str)
            .map(str::trim)
            .filter(|id| !id.is_empty())
            .ok_or_else(|| {
                CallbackRejection::malformed("seedance", "id", "is missing or not a task id")
            })?
            .to_owned();
        let task: Task = serde_json::from_value(raw.clone())
            .map_err(|e| CallbackRejection::malformed("seedance", "$", e))?;
        let model = raw
            .get("model")
            .and_then(Value::as_str)
            .unwrap_or(&ctx.vendor_model);
        let job = self.inner.api.callback_job(&id, model, ctx);
        let status = self
            .task_status(&job, raw, &task)
            .map_err(|why| CallbackRejection::malformed("seedance", "content.video_url", why))?;
        Ok(JobClaim::new(job, status).into())
    }
}

#[cfg(test)]
mod tests {
    use cineflow_core::callback::{AttemptRef, RejectionKind};
    use cineflow_core::{JobState, TaskId, VideoProvider};
    use time::OffsetDateTime;

    use super::*;
    use crate::ApiKeyBuilder;

    const SECRET: &str = "ark-SECRET-KEY";

    fn provider() -> Seedance {
        Seedance::modelark().with_api_key(SECRET).build().unwrap()
    }

    fn ctx() -> CallbackContext {
        CallbackContext::new(
            AttemptRef::new(TaskId::new(), 1),
            "dreamina-seedance-2-0-260128",
            OffsetDateTime::now_utc(),
        )
    }

    fn req(body: &str) -> CallbackRequest {
        CallbackRequest::new(
            "POST",
            "/api/v1/callbacks/modelark?cf_attempt=x&cf_token=t0k",
        )
        .with_header("content-type", "application/json")
        .with_body(body.as_bytes().to_vec())
    }

    const DONE: &str = r#"{"id":"cgt-2025","model":"dreamina-seedance-2-0-260128","status":"succeeded",
        "content":{"video_url":"https://tos.example/v.mp4?X-Tos-Signature=s"},"updated_at":1760000000}"#;

    #[tokio::test]
    async fn a_seedance_callback_names_its_task_and_claims_its_state() {
        let p = provider();
        let claim = p.read_callback(&req(DONE), &ctx()).await.unwrap();
        let CallbackClaim::Job(c) = claim else {
            panic!("not a job claim")
        };
        assert_eq!(c.job.vendor_job_id, "cgt-2025");
        assert_eq!(c.job.provider.as_str(), "modelark");
        assert!(c.ended && !c.conclusive);
        assert!(matches!(c.status.state, JobState::Succeeded { .. }));
        let running = r#"{"id":"cgt-2025","status":"running"}"#;
        let CallbackClaim::Job(c) = p.read_callback(&req(running), &ctx()).await.unwrap() else {
            panic!("not a job claim")
        };
        assert!(!c.ended);
    }

    #[tokio::test]
    async fn a_malformed_seedance_callback_is_rejected_naming_the_field() {
        let p = provider();
        for (body, field) in [
            ("{", "not JSON"),
            (r#"{"status":"running"}"#, "`id`"),
            (r#"{"id":"t","status":"succeeded"}"#, "content.video_url"),
            (r#"{"id":"t","status":7}"#, "`$`"),
        ] {
            let e = p.read_callback(&req(body), &ctx()).await.unwrap_err();
            assert_eq!(e.kind(), RejectionKind::Malformed, "{body}");
            assert!(e.to_string().contains(field), "{body}: {e}");
            assert!(!format!("{e} {e:?} {p:?}").contains(SECRET));
        }
        // One byte changed makes the body unreadable.
        let mut bytes = DONE.as_bytes().to_vec();
        bytes[0] = b'[';
        let tampered = req("").with_body(bytes);
        assert!(p.read_callback(&tampered, &ctx()).await.is_err());
    }

    #[test]
    fn seedance_takes_token_authenticated_callbacks() {
        assert_eq!(
            provider().callback_scheme(),
            cineflow_core::callback::CallbackScheme::Token
        );
    }
}
