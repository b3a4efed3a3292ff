//! Kling callbacks: the task object (`task_id`, `task_status`, `task_info`, `task_result`, …)
//! POSTed to `callback_url` on each state change, unsigned. The per-attempt token in the URL
//! (checked by the orchestrator) authenticates it; the body is a hint that a poll confirms.
//! The callback URL also carries the route the task was created on (`kling_route`), so the
//! job of an unrecorded submit can be named from a callback alone.

use cineflow_core::callback::{
    CallbackClaim, CallbackContext, CallbackRejection, CallbackRequest, JobClaim,
};

use super::Kling;
use super::models::Route;
use super::wire::Task;
use crate::http;

/// The query parameter of the callback URL naming the task's route (`text2video`, …).
pub(super) const ROUTE_PARAM: &str = "kling_route";

impl Kling {
    /// Reads a callback's body: its `task_id` and the task's state.
    pub(super) async fn callback_claim(
        &self,
        req: &CallbackRequest,
        ctx: &CallbackContext,
    ) -> Result<CallbackClaim, CallbackRejection> {
        let raw = req.json("kling")?;
        // Some deliveries wrap the task like a query answer: `{"code":0,"data":{…}}`.
        let body = match raw.get("data") {
            Some(data) if data.is_object() && raw.get("task_id").is_none() => data.clone(),
            _ => raw,
        };
        let task: Task = serde_json::from_value(body.clone())
            .map_err(|e| CallbackRejection::malformed("kling", "task_id", e))?;
        if task.task_id.trim().is_empty() {
            return Err(CallbackRejection::malformed("kling", "task_id", "is empty"));
        }
        let job = match http::recorded_job(&task.task_id, ctx) {
            Some(job) => job,
            None => {
                let route = req
                    .query(ROUTE_PARAM)
                    .as_deref()
                    .and_then(Route::from_segment)
                    .ok_or_else(|| {
                        CallbackRejection::malformed(
                            "kling",
                            ROUTE_PARAM,
                            "(in the callback URL) is missing or not a kling route",
                        )
                    })?;
                let mut job = self.job_for(&task, route, &ctx.vendor_model);
                if task.created().is_none() {
                    job.submitted_at = ctx.submitted_at;
                }
                job
            }
        };
        let status = self.task_status(&job, &task, &body).map_err(|why| {
            CallbackRejection::malformed("kling", "task_result.videos[0].url", why)
        })?;
        Ok(JobClaim::new(job, status).into())
    }
}

#[cfg(test)]
mod tests {
    use cineflow_core::callback::{AttemptRef, CallbackScheme, RejectionKind};
    use cineflow_core::{JobState, TaskId, VideoProvider};
    use time::OffsetDateTime;

    use super::*;

    const SECRET: &str = "kling-SECRET-SK";

    fn provider() -> Kling {
        Kling::intl()
            .with_credentials("AK", SECRET)
            .build()
            .unwrap()
    }

    fn ctx() -> CallbackContext {
        CallbackContext::new(
            AttemptRef::new(TaskId::new(), 1),
            "kling-v2-6",
            OffsetDateTime::now_utc(),
        )
    }

    fn req(query: &str, body: &str) -> CallbackRequest {
        CallbackRequest::new(
            "POST",
            format!("/api/v1/callbacks/kling?cf_attempt=x&cf_token=t{query}"),
        )
        .with_body(body.as_bytes().to_vec())
    }

    const DONE: &str = r#"{"task_id":"KT1","task_status":"succeed","created_at":1760000000000,
        "task_info":{"external_task_id":"cf-1"},
        "task_result":{"videos":[{"id":"v","url":"https://cdn.example/v.mp4","duration":"5"}]}}"#;

    #[tokio::test]
    async fn a_kling_callback_of_an_unrecorded_job_names_it_on_its_route() {
        let p = provider();
        let claim = p
            .read_callback(&req("&kling_route=text2video", DONE), &ctx())
            .await
            .unwrap();
        let CallbackClaim::Job(c) = claim else {
            panic!("not a job claim")
        };
        assert_eq!(c.job.vendor_job_id, "KT1");
        assert_eq!(c.job.extra["route"], "text2video");
        assert_eq!(c.job.vendor_model, "kling-v2-6");
        assert!(c.ended);
        assert!(matches!(c.status.state, JobState::Succeeded { .. }));
        // Wrapped like a query answer, it reads the same.
        let wrapped = format!(r#"{{"code":0,"data":{DONE}}}"#);
        let c = p
            .read_callback(&req("&kling_route=text2video", &wrapped), &ctx())
            .await
            .unwrap();
        assert!(matches!(c, CallbackClaim::Job(c) if c.job.vendor_job_id == "KT1"));
    }

    #[tokio::test]
    async fn a_malformed_kling_callback_is_rejected_naming_the_field() {
        let p = provider();
        for (query, body, field) in [
            ("", DONE, "kling_route"),
            ("&kling_route=nope", DONE, "kling_route"),
            (
                "&kling_route=text2video",
                r#"{"task_status":"succeed"}"#,
                "task_id",
            ),
            (
                "&kling_route=text2video",
                r#"{"task_id":"KT1","task_status":"succeed"}"#,
                "task_result.videos[0].url",
            ),
            ("&kling_route=text2video", "not json", "not JSON"),
        ] {
            let e = p
                .read_callback(&req(query, body), &ctx())
                .await
                .unwrap_err();
            assert_eq!(e.kind(), RejectionKind::Malformed, "{body}");
            assert!(e.to_string().contains(field), "{body}: {e}");
            assert!(!format!("{e} {e:?} {p:?}").contains(SECRET));
        }
        assert_eq!(p.callback_scheme(), CallbackScheme::Token);
    }
}
