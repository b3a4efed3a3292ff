//! Kling's task lists, `GET {base}/v1/videos/{route}?pageNum=&pageSize=` (newest first, one
//! list per route): the scan of an ambiguous submit's recovery and the status sweeps.

use std::collections::HashMap;

use cineflow_core::ErrorCode;
use cineflow_core::provider::{PolledJobs, ProviderError, ProviderJob, VideoProvider};
use reqwest::Method;
use serde_json::Value;

use super::wire::{self, Envelope, Task};
use super::{Kling, LIST_PAGE_SIZE, MAX_LIST_PAGES, Route};
use crate::http::{self, Answer, Call, listed};

impl Kling {
    /// Page `page` of `route`'s list: the answer and its `data` (an array, or `null`).
    async fn list_page(&self, route: Route, page: u64) -> Result<(Answer, Value), ProviderError> {
        let q = [
            ("pageNum", page.to_string()),
            ("pageSize", LIST_PAGE_SIZE.to_string()),
        ];
        let rb = self.api(Method::GET, route, None)?.query(&q);
        let answer = http::send(rb, Call::Other).await?;
        if !answer.is_success() {
            return Err(self.error(&answer, Call::Other));
        }
        let envelope: Envelope<Value> = answer.json(Call::Other, &self.inner.auth)?;
        if envelope.code != 0 {
            return Err(self.error(&answer, Call::Other));
        }
        Ok((answer, envelope.data.unwrap_or(Value::Null)))
    }

    /// Scans every page of `GET …/{route}` for the task whose `task_info.external_task_id` is
    /// `ext`; an error (never `None`) when the list has more than [`MAX_LIST_PAGES`] pages.
    pub(super) async fn scan(
        &self,
        route: Route,
        ext: &str,
        model: &str,
    ) -> Result<Option<ProviderJob>, ProviderError> {
        for page in 1..=MAX_LIST_PAGES {
            let (answer, data) = self.list_page(route, page).await?;
            let items = wire::parse_list(&data)
                .map_err(|why| self.malformed(&answer, Call::Other, &why))?;
            if let Some((task, _)) = items.iter().find(|(t, _)| t.external_id() == Some(ext)) {
                return Ok(Some(self.job_for(task, route, model)));
            }
            if items.len() < LIST_PAGE_SIZE {
                return Ok(None);
            }
        }
        let what = format!(
            "more than {MAX_LIST_PAGES} pages of {} tasks, looking for external_task_id {ext}",
            route.segment()
        );
        Err(http::search_cut_short(self.id(), what))
    }

    /// A status sweep of `jobs` (see `poll_many` in the module): one sweep per route, their
    /// answers merged.
    pub(super) async fn sweep(&self, jobs: &[ProviderJob]) -> Result<PolledJobs, ProviderError> {
        let mut routes: Vec<(Route, Vec<ProviderJob>)> = Vec::new();
        for job in jobs {
            let route = self.route_of(job)?;
            match routes.iter_mut().find(|(r, _)| *r == route) {
                Some((_, of_route)) => of_route.push(job.clone()),
                None => routes.push((route, vec![job.clone()])),
            }
        }
        let mut statuses = HashMap::new();
        // The refusal asking for the longest wait, and whether every stop was a kept refusal.
        let (mut stop, mut kept, mut read) = (None::<ProviderError>, true, false);
        for (route, of_route) in &routes {
            let (stopped_by, refusals_kept) = match self.sweep_route(*route, of_route).await {
                Ok(found) => {
                    read = true;
                    statuses.extend(found.statuses);
                    (found.stopped_by, found.refusals_kept)
                }
                Err(e) if e.code() == ErrorCode::RateLimited => (Some(e), true),
                Err(e) => return Err(e),
            };
            if let Some(e) = stopped_by {
                kept &= refusals_kept;
                listed::keep_longest(&mut stop, e);
            }
        }
        let found = PolledJobs::new(statuses);
        match stop {
            None => Ok(found),
            Some(e) if !read => Err(e),
            Some(e) if kept => Ok(found.passed_over(e)),
            Some(e) => Ok(found.stopped(e, None)),
        }
    }

    /// The sweep of one route's list for `jobs`: pages from the top, a page refused with a
    /// rate limit passed over (and kept until its `Retry-After` is over).
    async fn sweep_route(
        &self,
        route: Route,
        jobs: &[ProviderJob],
    ) -> Result<PolledJobs, ProviderError> {
        let mut sweep = listed::Sweep::new(jobs, 1u64).keeping_refusals();
        while sweep.wants_more() {
            let page = *sweep.cursor();
            let key = (route.segment(), page);
            let read = self.list_page(route, page);
            let (answer, data) = match self.inner.refused_pages.read(key, read).await {
                Ok(read) => read,
                Err(e) => match sweep.pass_over_page(e) {
                    Ok(()) => continue,
                    Err(e) => return sweep.stopped(e),
                },
            };
            let entries =
                entries(&data).map_err(|why| self.malformed(&answer, Call::Other, &why))?;
            let more = sweep.page(&entries, |job, raw| {
                let task: Task = serde_json::from_value(raw.clone())
                    .map_err(|e| self.malformed(&answer, Call::Other, &format!("task: {e}")))?;
                self.status_of(job, &task, &raw, &answer)
            })?;
            if !more || entries.len() < LIST_PAGE_SIZE {
                break;
            }
            sweep.go_to(page + 1);
        }
        sweep.finish()
    }
}

/// The entries of a list page's `data` (`null`: none), each with its id and creation time
/// (unix milliseconds); the error names the JSON path at fault.
fn entries(data: &Value) -> Result<Vec<listed::ListedJob>, String> {
    let items = match data {
        Value::Array(items) => items.as_slice(),
        Value::Null => &[],
        _ => return Err("data is not an array".into()),
    };
    items
        .iter()
        .enumerate()
        .map(|(i, v)| {
            listed::ListedJob::parse(
                format!("data[{i}]"),
                v,
                "task_id",
                |t| t.as_i64().and_then(wire::unix_ms),
                "unix milliseconds",
            )
        })
        .collect()
}
