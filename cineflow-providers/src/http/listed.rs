//! Entries of a vendor's job list, as reconciliation reads them
//! ([`VideoProvider::find_jobs`](cineflow_core::VideoProvider::find_jobs)).

// Only the adapters that read a job list use this: a build without them leaves it unused.
#![allow(dead_code)]

use std::collections::{HashMap, HashSet};
use std::fmt;

use cineflow_core::{
    ErrorCode, JobQuery, JobStatus, PolledJobs, ProviderError, ProviderId, ProviderJob, SubmitState,
};
use serde_json::{Map, Value};
use time::OffsetDateTime;

/// One search of a newest-first list for the jobs an ambiguous submit may have created
/// ([`VideoProvider::find_jobs`](cineflow_core::VideoProvider::find_jobs)): the candidates found
/// so far, each listed job looked at once however the pages shift.
#[derive(Debug)]
pub(crate) struct Search<'q> {
    query: &'q JobQuery,
    seen: HashSet<String>,
    found: Vec<ProviderJob>,
    pages: u32,
}

impl<'q> Search<'q> {
    /// A search for the jobs `query` looks for.
    pub(crate) fn new(query: &'q JobQuery) -> Self {
        Self {
            query,
            seen: HashSet::new(),
            found: Vec::new(),
            pages: 0,
        }
    }

    /// Reads one page. An entry stands for the instants `span` gives for its `created_at` (the
    /// instant itself, or the whole second a unix-seconds time stands for): one wholly before the
    /// query's window is passed over, and makes this page the last one needed; one that overlaps
    /// the window and was not seen on an earlier page is a candidate when `matches` says so, as
    /// the job `job` builds for it, submitted at its `created_at`.
    ///
    /// Returns whether the page reached an entry created before the window; the error of
    /// `matches` (the reason an entry cannot be compared) stops the page.
    pub(crate) fn page(
        &mut self,
        entries: &[ListedJob],
        span: impl Fn(OffsetDateTime) -> (OffsetDateTime, OffsetDateTime),
        matches: impl Fn(&ListedJob) -> Result<bool, String>,
        job: impl Fn(&ListedJob) -> ProviderJob,
    ) -> Result<bool, String> {
        self.pages += 1;
        let mut reached_older = false;
        for entry in entries {
            let (first, last) = span(entry.created_at);
            if last < self.query.created_after {
                reached_older = true;
                continue;
            }
            // The nearest instant of the entry's span to the window's start.
            let nearest = self.query.created_after.clamp(first, last);
            if !self.query.in_window(nearest) || !self.seen.insert(entry.id.clone()) {
                continue;
            }
            if matches(entry)? {
                self.found
                    .push(job(entry).with_submitted_at(entry.created_at));
            }
        }
        Ok(reached_older)
    }

    /// The answer of a search that read `pages` pages of `page_size` `entries` of `provider`
    /// without reaching one created before the window
    /// ([`search_cut_short`](super::search_cut_short)), rather than a partial list.
    pub(crate) fn not_reached(
        &self,
        provider: &ProviderId,
        pages: impl fmt::Display,
        page_size: impl fmt::Display,
        entries: &str,
    ) -> ProviderError {
        let created_after = self.query.created_after;
        let what = format!(
            "read {pages} pages of {page_size} {entries} without reaching one created before \
             {created_after}"
        );
        super::search_cut_short(provider, what)
    }

    /// The candidates found, logged as what reconciliation listed of the `entries` of
    /// `provider`.
    pub(crate) fn found(self, provider: &ProviderId, entries: &str) -> Vec<ProviderJob> {
        tracing::debug!(
            provider = %provider,
            pages = self.pages,
            candidates = self.found.len(),
            "reconciliation listed the vendor's {entries}"
        );
        self.found
    }
}

/// One job of a vendor's list page: what every entry must have (an id and a creation time), and
/// the object itself for the fields reconciliation compares.
#[derive(Debug)]
pub(crate) struct ListedJob {
    /// The JSON path of the entry (`data[3]`, `data.items[3]`), for error messages.
    pub(crate) path: String,
    /// The vendor's job id.
    pub(crate) id: String,
    /// When the vendor created the job.
    pub(crate) created_at: OffsetDateTime,
    fields: Map<String, Value>,
}

impl ListedJob {
    /// Reads the entry `v` found at `path`: an object with a non-empty string `id_key` and a
    /// `created_at` that `read_time` understands (`time_shape` names that shape in the error).
    /// The error names the JSON path at fault.
    pub(crate) fn parse(
        path: String,
        v: &Value,
        id_key: &str,
        read_time: impl FnOnce(&Value) -> Option<OffsetDateTime>,
        time_shape: &str,
    ) -> Result<Self, String> {
        let Value::Object(fields) = v else {
            return Err(format!("{path} is not an object"));
        };
        let id = match fields.get(id_key) {
            Some(Value::String(s)) if !s.trim().is_empty() => s.clone(),
            _ => {
                return Err(format!(
                    "{path}.{id_key} is missing or not a non-empty string"
                ));
            }
        };
        let created_at = fields
            .get("created_at")
            .and_then(read_time)
            .ok_or_else(|| format!("{path}.created_at is missing or not {time_shape}"))?;
        Ok(Self {
            path,
            id,
            created_at,
            fields: fields.clone(),
        })
    }

    /// The entry as the vendor listed it (what a poll of the job answers, for list endpoints
    /// whose entries are the job objects themselves).
    pub(crate) fn object(&self) -> Value {
        Value::Object(self.fields.clone())
    }

    /// Whether this job was created with the fields of `sent` (the body submit sends):
    ///
    /// - `required` fields must be present and equal;
    /// - `reported` fields are compared only when the entry carries the key (a `null` there is
    ///   compared too: it means the field was not set, e.g. no `image_url`; so does an empty or
    ///   blank string, which Sora.hk lists for a task without a reference image).
    ///
    /// Values compare as JSON scalars, a number and its decimal string being the same
    /// (`seconds` `"8"` or `8`). A required field that is missing or not a scalar is an error
    /// naming its path: a job that may be the one looked for is never guessed about.
    pub(crate) fn matches(
        &self,
        sent: &Map<String, Value>,
        required: &[&str],
        reported: &[&str],
    ) -> Result<bool, String> {
        let expected = |key: &str| sent.get(key).and_then(scalar_text);
        for key in required {
            let Some(actual) = self.fields.get(*key).and_then(scalar_text) else {
                return Err(format!(
                    "{}.{key} is missing or not a string, number or boolean",
                    self.path
                ));
            };
            if expected(key).as_deref() != Some(actual.as_str()) {
                return Ok(false);
            }
        }
        for key in reported {
            if let Some(actual) = self.fields.get(*key)
                && scalar_text(actual).filter(|t| !t.trim().is_empty()) != expected(key)
            {
                return Ok(false);
            }
        }
        Ok(true)
    }
}

/// Most list pages one status sweep ([`VideoProvider::poll_many`]) reads.
///
/// [`VideoProvider::poll_many`]: cineflow_core::VideoProvider::poll_many
pub(crate) const MAX_SWEEP_PAGES: u32 = 10;

/// How much older than the oldest swept job (by our clock) a listed job may be before a sweep
/// stops reading: room for the vendor's clock running behind ours.
const SWEEP_CLOCK_SKEW: time::Duration = time::Duration::minutes(10);

/// A position in a vendor's list, as a status sweep reads it and, stopped, gives it back to
/// resume from: the vendor's own cursor (`None` for the top), a page number, a batch index.
pub(crate) trait Cursor {
    /// The position as [`PolledJobs::resume`] carries it.
    fn resume(&self) -> Option<String>;
}

impl Cursor for Option<String> {
    fn resume(&self) -> Option<String> {
        self.clone()
    }
}

impl Cursor for u64 {
    fn resume(&self) -> Option<String> {
        Some(self.to_string())
    }
}

impl Cursor for usize {
    fn resume(&self) -> Option<String> {
        Some(self.to_string())
    }
}

/// One status sweep over a vendor's list, newest first: which jobs are still looked for, where
/// in the list it reads (its [`Cursor`]), when reading can stop, and the statuses found.
#[derive(Debug)]
pub(crate) struct Sweep<'a, C> {
    wanted: HashMap<&'a str, &'a ProviderJob>,
    /// Entries created before this are older than every job looked for.
    floor: Option<OffsetDateTime>,
    found: HashMap<String, JobStatus>,
    /// Pages asked for, read or refused: at most [`MAX_SWEEP_PAGES`].
    pages: u32,
    /// Whether a page was read.
    read: bool,
    /// The refusal (429) of a page passed over that asked for the longest wait.
    refused: Option<ProviderError>,
    /// Whether the adapter keeps refused pages ([`RefusedPages`]).
    keeps_refusals: bool,
    cursor: C,
}

impl<'a, C: Cursor> Sweep<'a, C> {
    /// A sweep looking for `jobs`, reading first at `start`.
    pub(crate) fn new(jobs: &'a [ProviderJob], start: C) -> Self {
        Self {
            wanted: jobs.iter().map(|j| (j.vendor_job_id.as_str(), j)).collect(),
            floor: jobs
                .iter()
                .map(|j| j.submitted_at)
                .min()
                .map(|t| t - SWEEP_CLOCK_SKEW),
            found: HashMap::new(),
            pages: 0,
            read: false,
            refused: None,
            keeps_refusals: false,
            cursor: start,
        }
    }

    /// The sweep of an adapter that keeps refused pages ([`RefusedPages`]): its answer says so
    /// ([`PolledJobs::refusals_kept`]), and the next sweep need not wait for them.
    pub(crate) fn keeping_refusals(mut self) -> Self {
        self.keeps_refusals = true;
        self
    }

    /// Where the next page is read.
    pub(crate) fn cursor(&self) -> &C {
        &self.cursor
    }

    /// Reads on at `cursor`.
    pub(crate) fn go_to(&mut self, cursor: C) {
        self.cursor = cursor;
    }

    /// Whether another page should be read.
    pub(crate) fn wants_more(&self) -> bool {
        !self.wanted.is_empty() && self.pages < MAX_SWEEP_PAGES
    }

    /// Reads one page: each entry of a job looked for becomes its status through `status_of`
    /// (given the job and the entry's object). Returns whether a next page may still hold a job
    /// looked for (false once the page reaches entries older than all of them).
    pub(crate) fn page(
        &mut self,
        entries: &[ListedJob],
        mut status_of: impl FnMut(&ProviderJob, Value) -> Result<JobStatus, ProviderError>,
    ) -> Result<bool, ProviderError> {
        self.pages += 1;
        self.read = true;
        let mut reached_older = false;
        for entry in entries {
            if self.floor.is_some_and(|floor| entry.created_at < floor) {
                reached_older = true;
            }
            if let Some(job) = self.wanted.remove(entry.id.as_str()) {
                let status = status_of(job, entry.object())?;
                self.found.insert(entry.id.clone(), status);
            }
        }
        Ok(!reached_older && self.wants_more())
    }

    /// The sweep's answer after `error` on the page at its cursor: the error itself when
    /// nothing was read yet, else what was found, with the error that stopped it and that
    /// cursor to go on from.
    pub(crate) fn stopped(self, error: ProviderError) -> Result<PolledJobs, ProviderError> {
        if !self.read {
            return Err(self.refused.unwrap_or(error));
        }
        Ok(PolledJobs::new(self.found).stopped(error, self.cursor.resume()))
    }

    /// For lists read by page number or by batch, where a page does not need the one before
    /// it: a page refused with a rate limit (`error`) is passed over (`Ok`, read the next one)
    /// rather than stopping the sweep, since the jobs on the pages after it need not wait out
    /// its `Retry-After`; the sweep's answer then carries the refusal, and the next sweep
    /// waits it out and reads from the top. Any other error stops the sweep (`Err`, to be
    /// handed to [`stopped`](Self::stopped)).
    pub(crate) fn pass_over(&mut self, error: ProviderError) -> Result<(), ProviderError> {
        if error.code() != ErrorCode::RateLimited {
            return Err(error);
        }
        self.pages += 1;
        keep_longest(&mut self.refused, error);
        Ok(())
    }

    /// The sweep's answer: every status found, with the refusal of a page passed over if there
    /// was one — or that refusal itself when no page was read.
    pub(crate) fn finish(self) -> Result<PolledJobs, ProviderError> {
        match self.refused {
            Some(refused) if !self.read => Err(refused),
            Some(refused) if self.keeps_refusals => {
                Ok(PolledJobs::new(self.found).passed_over(refused))
            }
            Some(refused) => Ok(PolledJobs::new(self.found).stopped(refused, None)),
            None => Ok(PolledJobs::new(self.found)),
        }
    }
}

impl Sweep<'_, u64> {
    /// [`pass_over`](Self::pass_over) for a list read by page number: on to the next page
    /// (`Ok`), or the error that stops the sweep.
    pub(crate) fn pass_over_page(&mut self, error: ProviderError) -> Result<(), ProviderError> {
        self.pass_over(error)?;
        self.cursor += 1;
        Ok(())
    }
}

/// Keeps in `kept` whichever of it and `refusal` asks for the longer wait (`refusal` when
/// `kept` is empty): the wait a sweep's answer carries is that of its most demanding refusal.
pub(crate) fn keep_longest(kept: &mut Option<ProviderError>, refusal: ProviderError) {
    if kept
        .as_ref()
        .is_none_or(|k| refusal.retry_after() > k.retry_after())
    {
        *kept = Some(refusal);
    }
}

/// The pages of a list read by page number that the vendor refused with a rate limit, each
/// until its `Retry-After` is over: a sweep passes over them meanwhile, so sweeps can come
/// sooner than a refusal's wait without asking a refused page again before its time. Clones
/// share the pages (a clone of a provider reads the same list).
/// Pages are keyed by `K`: a page number, or a list and a page number.
#[derive(Debug, Clone)]
pub(crate) struct RefusedPages<K = u64> {
    until: std::sync::Arc<std::sync::Mutex<HashMap<K, tokio::time::Instant>>>,
}

impl<K> Default for RefusedPages<K> {
    fn default() -> Self {
        Self {
            until: std::sync::Arc::default(),
        }
    }
}

impl<K: Eq + std::hash::Hash + fmt::Debug> RefusedPages<K> {
    /// How long `page` must still wait, if it was refused: the refusal to answer for it.
    fn refusal(&self, page: &K) -> Option<ProviderError> {
        let now = tokio::time::Instant::now();
        let until = *self.lock().get(page).filter(|until| **until > now)?;
        Some(
            ProviderError::new(
                ErrorCode::RateLimited,
                format!("list page {page:?} was refused with a rate limit: its wait is not over"),
            )
            .with_retry_after(Some(until - now))
            .with_submit_state(SubmitState::NotSent),
        )
    }

    /// Reads `page` with `read` — unless it is kept, when its refusal is the answer and nothing
    /// is asked — and keeps it if the vendor refuses it with a rate limit.
    pub(crate) async fn read<T>(
        &self,
        page: K,
        read: impl std::future::Future<Output = Result<T, ProviderError>>,
    ) -> Result<T, ProviderError> {
        if let Some(waiting) = self.refusal(&page) {
            return Err(waiting);
        }
        read.await.inspect_err(|e| self.refused(page, e))
    }

    /// Keeps `page` until `error`'s `Retry-After` is over, if it is a rate limit that says how
    /// long (else the sweep's own wait covers it).
    fn refused(&self, page: K, error: &ProviderError) {
        let Some(wait) = error.retry_after() else {
            return;
        };
        if error.code() != ErrorCode::RateLimited {
            return;
        }
        let now = tokio::time::Instant::now();
        let mut until = self.lock();
        until.retain(|_, t| *t > now);
        until.insert(page, now + wait);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<K, tokio::time::Instant>> {
        self.until
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// A JSON scalar as text (strings as they are, numbers and booleans rendered); `null`, arrays
/// and objects have none.
fn scalar_text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn unix(v: &Value) -> Option<OffsetDateTime> {
        OffsetDateTime::from_unix_timestamp(v.as_i64()?).ok()
    }

    fn entry(v: Value) -> Result<ListedJob, String> {
        ListedJob::parse("data[0]".into(), &v, "id", unix, "a unix timestamp")
    }

    #[test]
    fn entries_need_an_id_and_a_creation_time_and_errors_name_the_path() {
        let e = entry(json!({"created_at": 1})).unwrap_err();
        assert_eq!(e, "data[0].id is missing or not a non-empty string");
        let e = entry(json!({"id": "v", "created_at": "soon"})).unwrap_err();
        assert_eq!(e, "data[0].created_at is missing or not a unix timestamp");
        assert_eq!(entry(json!([1])).unwrap_err(), "data[0] is not an object");
        assert_eq!(entry(json!({"id": "v", "created_at": 7})).unwrap().id, "v");
    }

    #[test]
    fn required_fields_must_equal_and_reported_ones_only_when_present() {
        let job =
            entry(json!({"id": "v", "created_at": 1, "seconds": 8, "image_url": null})).unwrap();
        let sent = |v: Value| v.as_object().unwrap().clone();
        assert!(
            job.matches(&sent(json!({"seconds": "8"})), &["seconds"], &[])
                .unwrap()
        );
        assert!(
            !job.matches(&sent(json!({"seconds": "4"})), &["seconds"], &[])
                .unwrap()
        );
        // A null `image_url` matches a request without one, not a request with one.
        let with_image = sent(json!({"seconds": "8", "image_url": "https://x/y.png"}));
        assert!(
            !job.matches(&with_image, &["seconds"], &["image_url"])
                .unwrap()
        );
        assert!(
            job.matches(
                &sent(json!({"seconds": 8})),
                &["seconds"],
                &["image_url", "quality"]
            )
            .unwrap()
        );
        // An empty `image_url` is no image either.
        let job = entry(json!({"id": "v", "created_at": 1, "image_url": ""})).unwrap();
        assert!(job.matches(&sent(json!({})), &[], &["image_url"]).unwrap());
        assert!(!job.matches(&with_image, &[], &["image_url"]).unwrap());
        let e = job.matches(&sent(json!({})), &["prompt"], &[]).unwrap_err();
        assert!(e.starts_with("data[0].prompt is missing"), "{e}");
    }
}
