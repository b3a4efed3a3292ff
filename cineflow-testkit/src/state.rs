//! The server's shared state: jobs, counters, faults and the clock. One `std` mutex, never
//! held across an `.await`.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard, OnceLock, PoisonError};
use std::time::Duration;

use base64::Engine as _;
use serde_json::Value;
use sha2::{Digest, Sha256};
use time::OffsetDateTime;
use tokio::time::Instant;

use crate::config::{Config, Endpoint, FailKind, Faults, Trigger};
use crate::ledger::{Counts, JobPhase, JobRecord, Ledger, Protocol};
use crate::video;

/// What a request-level fault decided.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Verdict {
    /// Answer 429 with this `retry-after-ms`.
    RateLimited(u64),
    /// Answer this 5xx status.
    ServerError(u16),
    /// Proceed normally, delaying the answer by this much (zero: no delay).
    Proceed(Duration),
}

/// The fields of a new job, read from the request.
#[derive(Debug)]
pub(crate) struct NewJob {
    pub(crate) prompt: String,
    pub(crate) model: String,
    pub(crate) seconds: u32,
    pub(crate) size: String,
    pub(crate) is_pro: bool,
    pub(crate) request: Value,
    pub(crate) idempotency_key: Option<String>,
    pub(crate) cost_cents: u64,
    /// Seedance `execution_expires_after`: a job still unfinished this long after its creation
    /// ends `expired`.
    pub(crate) expires_after: Option<Duration>,
}

/// What a submit decided once validation passed.
#[derive(Debug)]
pub(crate) enum Submitted {
    /// The `rate_limit` fault: answer 429 with this `retry-after-ms`. No job.
    RateLimited(u64),
    /// The `server_error` fault: answer this 5xx status. No job.
    ServerError(u16),
    /// Sora.hk: the balance cannot pay for it (code 1012). No job.
    InsufficientBalance,
    /// The `lost_submit` fault: the request never reached the vendor; answer a gateway's 504
    /// after this delay. No job.
    Lost(Duration),
    /// Kling: a job with this `external_task_id` exists already. No new job.
    Duplicate,
    /// A job exists (new, or an earlier one with the same idempotency key).
    Accepted {
        job: Box<JobRecord>,
        /// Answer 502 instead of the job.
        bad_gateway: bool,
        /// Delay before answering.
        stall: Duration,
    },
}

/// What a job lookup records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Lookup {
    /// Nothing.
    Peek,
    /// A status poll of the job.
    Poll,
    /// The job's state is being answered to a poll: a terminal state is now detected.
    Answer,
}

/// A job locator that survives a reset (the generation changes, the handle goes stale).
#[derive(Debug, Clone, Copy)]
pub(crate) struct JobHandle {
    generation: u64,
    index: usize,
}

#[derive(Debug, Default)]
struct Seen {
    rate_limit: u64,
    server_error: u64,
    stall: u64,
    truncate: u64,
    expire: u64,
    accept_502: u64,
    fail_jobs: u64,
    lost: u64,
    cb_lost: u64,
    cb_duplicated: u64,
    cb_delayed: u64,
    cb_forged: u64,
}

#[derive(Debug)]
struct Job {
    rec: JobRecord,
    created: Instant,
    duration: Duration,
    expires_after: Option<Duration>,
    /// When a Seedance `DELETE` cancelled it (while queued).
    cancelled: Option<Instant>,
}

/// Why a Seedance `DELETE` changed nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refused {
    /// No such task (or it was deleted already).
    NotFound,
    /// The task is in this state, where neither cancel nor delete is allowed.
    State(JobPhase),
}

/// What a Seedance `DELETE` did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Removed {
    /// A queued task became `cancelled`.
    Cancelled,
    /// A finished task was deleted.
    Deleted,
}

#[derive(Debug)]
struct State {
    generation: u64,
    jobs: Vec<Job>,
    index: HashMap<String, usize>,
    /// OpenAI idempotency keys and Kling `external_task_id`s, per protocol.
    idempotency: HashMap<(Protocol, String), usize>,
    counts: [Counts; Protocol::ALL.len()],
    faults: Faults,
    seen: Seen,
    fault_rng: fastrand::Rng,
    job_rng: fastrand::Rng,
    balance: u64,
}

impl State {
    fn new(config: &Config, generation: u64) -> Self {
        let seed = config.seed ^ generation.wrapping_mul(0x2545_f491_4f6c_dd1d);
        Self {
            generation,
            jobs: Vec::new(),
            index: HashMap::new(),
            idempotency: HashMap::new(),
            counts: Default::default(),
            faults: config.faults.clone(),
            seen: Seen::default(),
            fault_rng: fastrand::Rng::with_seed(seed ^ 0xfa17),
            job_rng: fastrand::Rng::with_seed(seed ^ 0x10b5),
            balance: config.sorahk_balance,
        }
    }

    fn counts(&mut self, p: Protocol) -> &mut Counts {
        &mut self.counts[p.index()]
    }

    fn job_mut(&mut self, h: JobHandle) -> Option<&mut Job> {
        if h.generation == self.generation {
            self.jobs.get_mut(h.index)
        } else {
            None
        }
    }
}

/// Draws a trigger: the first `first` draws fire, then each with `probability`.
fn draw(rng: &mut fastrand::Rng, seen: &mut u64, t: Trigger) -> bool {
    let i = *seen;
    *seen = seen.saturating_add(1);
    if i < t.first {
        return true;
    }
    if t.probability >= 1.0 {
        true
    } else if t.probability <= 0.0 {
        false
    } else {
        rng.f64() < t.probability
    }
}

/// Everything the handlers share.
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) config: Config,
    /// `http://127.0.0.1:PORT`.
    pub(crate) origin: String,
    epoch: Instant,
    epoch_wall: OffsetDateTime,
    blob_secret: [u8; 16],
    state: Mutex<State>,
    /// Set when the server stops: pending callbacks are not sent.
    pub(crate) stopped: AtomicBool,
    callback_client: OnceLock<reqwest::Client>,
    nonce: AtomicU64,
}

impl Shared {
    pub(crate) fn new(config: Config, origin: String) -> Self {
        let mut secret = [0u8; 16];
        fastrand::Rng::with_seed(config.seed ^ 0x5ec7e7).fill(&mut secret);
        let state = State::new(&config, 0);
        Self {
            config,
            origin,
            epoch: Instant::now(),
            epoch_wall: OffsetDateTime::now_utc(),
            blob_secret: secret,
            state: Mutex::new(state),
            stopped: AtomicBool::new(false),
            callback_client: OnceLock::new(),
            nonce: AtomicU64::new(0),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The server's wall clock: the real time at start plus tokio time elapsed since (so it
    /// follows `tokio::time::pause()`/`advance()`).
    pub(crate) fn wall(&self, t: Instant) -> OffsetDateTime {
        self.epoch_wall + t.saturating_duration_since(self.epoch)
    }

    pub(crate) fn wall_now(&self) -> OffsetDateTime {
        self.wall(Instant::now())
    }

    /// Adds to a protocol's counters.
    pub(crate) fn count(&self, p: Protocol, f: impl FnOnce(&mut Counts)) {
        f(self.lock().counts(p));
    }

    /// The current faults.
    pub(crate) fn faults(&self) -> Faults {
        self.lock().faults.clone()
    }

    /// Replaces the faults and restarts their `first` counters (validated by the caller).
    pub(crate) fn set_faults(&self, faults: Faults) {
        let mut s = self.lock();
        s.faults = faults;
        s.seen = Seen::default();
    }

    /// Forgets every job and counter; faults, balance and RNGs return to their start values.
    pub(crate) fn reset(&self) {
        let mut s = self.lock();
        let generation = s.generation + 1;
        *s = State::new(&self.config, generation);
    }

    /// Draws the request-level faults (rate limit, server error, stall) for one request and
    /// counts what fired.
    pub(crate) fn request_faults(&self, p: Protocol, e: Endpoint) -> Verdict {
        let mut guard = self.lock();
        let s = &mut *guard;
        let f = &s.faults;
        if f.rate_limit.on.contains(&e)
            && draw(
                &mut s.fault_rng,
                &mut s.seen.rate_limit,
                f.rate_limit.trigger(),
            )
        {
            let ms = f.rate_limit.retry_after_ms;
            s.counts[p.index()].rate_limited += 1;
            return Verdict::RateLimited(ms);
        }
        if f.server_error.on.contains(&e)
            && draw(
                &mut s.fault_rng,
                &mut s.seen.server_error,
                f.server_error.trigger(),
            )
        {
            let status = f.server_error.status;
            s.counts[p.index()].server_errors += 1;
            return Verdict::ServerError(status);
        }
        if f.stall.on.contains(&e) && draw(&mut s.fault_rng, &mut s.seen.stall, f.stall.trigger()) {
            let ms = f.stall.delay_ms;
            s.counts[p.index()].stalled += 1;
            return Verdict::Proceed(Duration::from_millis(ms));
        }
        Verdict::Proceed(Duration::ZERO)
    }

    /// Draws the callback faults for one job.
    pub(crate) fn callback_plan(&self) -> crate::callback::Plan {
        let mut guard = self.lock();
        let s = &mut *guard;
        let f = s.faults.callbacks.clone();
        let rng = &mut s.fault_rng;
        crate::callback::Plan {
            lost: draw(rng, &mut s.seen.cb_lost, f.lost),
            duplicated: draw(rng, &mut s.seen.cb_duplicated, f.duplicated),
            delay: draw(rng, &mut s.seen.cb_delayed, f.delayed)
                .then(|| Duration::from_millis(f.delay_ms)),
            forged: draw(rng, &mut s.seen.cb_forged, f.forged),
        }
    }

    /// The client callbacks are sent with (no idle-pool timer: paused tokio time stays put).
    pub(crate) fn callback_client(&self) -> reqwest::Client {
        self.callback_client
            .get_or_init(|| {
                reqwest::Client::builder()
                    .pool_idle_timeout(None)
                    .build()
                    .unwrap_or_default()
            })
            .clone()
    }

    /// A number never returned before by this server (MiniMax challenges).
    pub(crate) fn next_callback_nonce(&self) -> u64 {
        self.nonce.fetch_add(1, Ordering::Relaxed)
    }

    /// fal's webhook signing key, derived from the seed.
    pub(crate) fn fal_signing_key(&self) -> ed25519_dalek::SigningKey {
        let mut bytes = [0u8; 32];
        fastrand::Rng::with_seed(self.config.seed ^ 0xfa1_5164).fill(&mut bytes);
        ed25519_dalek::SigningKey::from_bytes(&bytes)
    }

    /// Whether the `expire_urls` fault hits this blob request.
    pub(crate) fn expire_url_fault(&self) -> bool {
        let mut guard = self.lock();
        let s = &mut *guard;
        let t = s.faults.expire_urls;
        draw(&mut s.fault_rng, &mut s.seen.expire, t)
    }

    /// The share of bytes to send if the `truncate_download` fault hits this download.
    pub(crate) fn truncate_fault(&self) -> Option<f64> {
        let mut guard = self.lock();
        let s = &mut *guard;
        let f = &s.faults.truncate_download;
        draw(&mut s.fault_rng, &mut s.seen.truncate, f.trigger()).then_some(f.keep_fraction)
    }

    /// A validated submit: request faults, idempotency, balance, job creation, 502 and stall
    /// decisions. The submit attempt was already counted.
    pub(crate) fn submit(&self, p: Protocol, new: NewJob) -> Submitted {
        // Request-level faults first (they reject without a job), except the stall, which
        // delays the answer after the job exists.
        let stall = match self.request_faults(p, Endpoint::Submit) {
            Verdict::Proceed(d) => d,
            Verdict::RateLimited(ms) => {
                self.count(p, |c| c.rejected_submits += 1);
                return Submitted::RateLimited(ms);
            }
            Verdict::ServerError(status) => {
                self.count(p, |c| c.rejected_submits += 1);
                return Submitted::ServerError(status);
            }
        };
        let now = Instant::now();
        let mut guard = self.lock();
        let s = &mut *guard;
        let lost = &s.faults.lost_submit;
        if draw(&mut s.fault_rng, &mut s.seen.lost, lost.trigger()) {
            let delay = Duration::from_millis(lost.delay_ms);
            s.counts(p).lost_submits += 1;
            return Submitted::Lost(delay);
        }
        let known = new
            .idempotency_key
            .as_ref()
            .and_then(|k| s.idempotency.get(&(p, k.clone())))
            .copied();
        if p == Protocol::Kling && known.is_some() {
            s.counts(p).rejected_submits += 1;
            return Submitted::Duplicate;
        }
        let replay = known
            .filter(|_| p == Protocol::OpenAi && self.config.honor_idempotency_key)
            .and_then(|i| s.jobs.get(i));
        if let Some(job) = replay {
            return Submitted::Accepted {
                job: Box::new(self.snapshot(job, now)),
                bad_gateway: false,
                stall,
            };
        }
        if p == Protocol::SoraHk {
            if s.balance < new.cost_cents {
                s.counts(p).rejected_submits += 1;
                return Submitted::InsufficientBalance;
            }
            s.balance -= new.cost_cents;
        }
        let bad_gateway = draw(
            &mut s.fault_rng,
            &mut s.seen.accept_502,
            s.faults.accept_then_502,
        );
        let failure = draw(
            &mut s.fault_rng,
            &mut s.seen.fail_jobs,
            s.faults.fail_jobs.trigger(),
        )
        .then_some(s.faults.fail_jobs.kind);
        let t = &self.config.timing;
        let secs = if t.jitter > 0.0 {
            t.secs * (1.0 + t.jitter * (2.0 * s.job_rng.f64() - 1.0))
        } else {
            t.secs
        };
        let duration = Duration::from_secs_f64(secs.max(0.001));
        let id = loop {
            let mut raw = [0u8; 16];
            s.job_rng.fill(&mut raw);
            let id = match p {
                Protocol::OpenAi => format!("video_{}", video::hex(&raw)),
                Protocol::OpenRouter => format!("vid_{}", video::hex(&raw[..12])),
                Protocol::SoraHk | Protocol::Wan | Protocol::Fal => {
                    uuid::Builder::from_random_bytes(raw)
                        .into_uuid()
                        .to_string()
                }
                Protocol::Seedance => seedance_id(self.wall(now), &raw),
                Protocol::Kling => kling_id(&raw),
                Protocol::Minimax => minimax_id(&raw),
            };
            // Seedance ids are short enough to collide within one second.
            if !s.index.contains_key(&id) {
                break id;
            }
        };
        let rec = JobRecord {
            id: id.clone(),
            protocol: p,
            prompt: new.prompt,
            model: new.model,
            seconds: new.seconds,
            size: new.size,
            is_pro: new.is_pro,
            request: new.request,
            idempotency_key: new.idempotency_key.clone(),
            created_at: self.wall(now),
            job_secs: duration.as_secs_f64(),
            status: JobPhase::Queued,
            vendor_status: JobPhase::Queued.vendor_status(p).into(),
            progress: 0,
            completed_at: None,
            detected_at: None,
            failure,
            cost_cents: new.cost_cents,
            polls: 0,
            downloads: 0,
            downloads_completed: 0,
            downloaded_bytes: 0,
            content_length: self.config.video_bytes,
            sha256: None,
            accepted_then_502: bad_gateway,
            submit_stalled: !stall.is_zero(),
            leaked_auth: 0,
            deleted: false,
        };
        let index = s.jobs.len();
        s.index.insert(id, index);
        if let Some(k) = new.idempotency_key {
            s.idempotency.entry((p, k)).or_insert(index);
        }
        let c = s.counts(p);
        c.submits += 1;
        if bad_gateway {
            c.accepted_then_502 += 1;
        }
        let job = Job {
            rec,
            created: now,
            duration,
            expires_after: new.expires_after,
            cancelled: None,
        };
        let snapshot = self.snapshot(&job, now);
        s.jobs.push(job);
        Submitted::Accepted {
            job: Box::new(snapshot),
            bad_gateway,
            stall,
        }
    }

    /// The job's record with its state at `now`.
    fn snapshot(&self, job: &Job, now: Instant) -> JobRecord {
        let mut rec = job.rec.clone();
        let elapsed = now.saturating_duration_since(job.created);
        let expiry = job.expires_after.filter(|e| *e < job.duration);
        let (phase, progress) = if let Some(at) = job.cancelled {
            rec.completed_at = Some(self.wall(at));
            (JobPhase::Cancelled, 0)
        } else if let Some(e) = expiry.filter(|e| elapsed >= *e) {
            rec.completed_at = Some(self.wall(job.created + e));
            (JobPhase::Expired, 0)
        } else if elapsed >= job.duration {
            let phase = if rec.failure.is_some() {
                JobPhase::Failed
            } else {
                JobPhase::Completed
            };
            rec.completed_at = Some(self.wall(job.created + job.duration));
            (phase, 100)
        } else {
            let share = elapsed.as_secs_f64() / job.duration.as_secs_f64();
            if share < self.config.timing.queued_fraction {
                (JobPhase::Queued, 0)
            } else {
                // In [0, 1), so the cast cannot truncate beyond 99.
                (
                    JobPhase::Running,
                    ((share * 100.0).floor() as u8).clamp(1, 99),
                )
            }
        };
        rec.status = phase;
        rec.vendor_status = phase.vendor_status(rec.protocol).into();
        rec.progress = progress;
        rec
    }

    /// The id of the job of protocol `p` created with this idempotency key (Kling: this
    /// `external_task_id`), if any.
    pub(crate) fn id_for_key(&self, p: Protocol, key: &str) -> Option<String> {
        let s = self.lock();
        let &index = s.idempotency.get(&(p, key.to_owned()))?;
        s.jobs.get(index).map(|j| j.rec.id.clone())
    }

    /// Looks a job of protocol `p` up (deleted jobs are gone).
    pub(crate) fn job(&self, p: Protocol, id: &str, how: Lookup) -> Option<(JobHandle, JobRecord)> {
        let now = Instant::now();
        let mut guard = self.lock();
        let s = &mut *guard;
        let &index = s.index.get(id)?;
        let generation = s.generation;
        let job = s.jobs.get(index)?;
        if job.rec.protocol != p || job.rec.deleted {
            return None;
        }
        let snapshot = self.snapshot(job, now);
        let job = &mut s.jobs[index];
        match how {
            Lookup::Peek => {}
            Lookup::Poll => job.rec.polls += 1,
            Lookup::Answer => {
                if snapshot.status.is_terminal() && job.rec.detected_at.is_none() {
                    job.rec.detected_at = Some(self.wall(now));
                }
            }
        }
        Some((JobHandle { generation, index }, snapshot))
    }

    /// Marks an OpenAI job deleted.
    pub(crate) fn delete(&self, h: JobHandle) {
        if let Some(j) = self.lock().job_mut(h) {
            j.rec.deleted = true;
        }
    }

    /// A Seedance `DELETE`, decided and applied under one lock: a queued job is cancelled, a
    /// succeeded, failed or expired one deleted; running and cancelled ones are refused.
    pub(crate) fn cancel_or_delete(&self, p: Protocol, id: &str) -> Result<Removed, Refused> {
        let now = Instant::now();
        let mut guard = self.lock();
        let s = &mut *guard;
        let index = *s.index.get(id).ok_or(Refused::NotFound)?;
        let job = s.jobs.get(index).ok_or(Refused::NotFound)?;
        if job.rec.protocol != p || job.rec.deleted {
            return Err(Refused::NotFound);
        }
        let phase = self.snapshot(job, now).status;
        let job = &mut s.jobs[index];
        let removed = match phase {
            JobPhase::Queued => {
                job.cancelled = Some(now);
                Removed::Cancelled
            }
            JobPhase::Completed | JobPhase::Failed | JobPhase::Expired => {
                job.rec.deleted = true;
                Removed::Deleted
            }
            JobPhase::Running | JobPhase::Cancelled => return Err(Refused::State(phase)),
        };
        s.counts(p).deletes += 1;
        Ok(removed)
    }

    /// A fal cancel, decided and applied under one lock: a queued request is cancelled;
    /// otherwise nothing changes and its state is returned (`Err`).
    pub(crate) fn cancel_queued(&self, p: Protocol, id: &str) -> Result<(), Refused> {
        let now = Instant::now();
        let mut guard = self.lock();
        let s = &mut *guard;
        let index = *s.index.get(id).ok_or(Refused::NotFound)?;
        let job = s.jobs.get(index).ok_or(Refused::NotFound)?;
        if job.rec.protocol != p || job.rec.deleted {
            return Err(Refused::NotFound);
        }
        match self.snapshot(job, now).status {
            JobPhase::Queued => {
                s.jobs[index].cancelled = Some(now);
                s.counts(p).deletes += 1;
                Ok(())
            }
            phase => Err(Refused::State(phase)),
        }
    }

    /// Every listable job of protocol `p` (not deleted, older than the list lag), oldest first.
    pub(crate) fn listable(&self, p: Protocol) -> Vec<JobRecord> {
        let now = Instant::now();
        let s = self.lock();
        let lag = Duration::from_millis(s.faults.list_lag_ms);
        s.jobs
            .iter()
            .filter(|j| j.rec.protocol == p && !j.rec.deleted)
            .filter(|j| now.saturating_duration_since(j.created) >= lag)
            .map(|j| self.snapshot(j, now))
            .collect()
    }

    /// The listable jobs of protocol `p` among `ids` (a list filtered by job ids), oldest
    /// first: looked up by id rather than by reading every job, as an indexed filter is.
    pub(crate) fn listable_among(&self, p: Protocol, ids: &[String]) -> Vec<JobRecord> {
        let now = Instant::now();
        let s = self.lock();
        let lag = Duration::from_millis(s.faults.list_lag_ms);
        let mut found: Vec<usize> = ids
            .iter()
            .filter_map(|id| s.index.get(id).copied())
            .collect();
        found.sort_unstable();
        found.dedup();
        found
            .into_iter()
            .filter_map(|i| s.jobs.get(i))
            .filter(|j| j.rec.protocol == p && !j.rec.deleted)
            .filter(|j| now.saturating_duration_since(j.created) >= lag)
            .map(|j| self.snapshot(j, now))
            .collect()
    }

    /// Marks the ended jobs of an answered list page detected: a client reading the list (a
    /// status sweep) can notice their end then, as it can from a poll.
    pub(crate) fn note_listed<'a>(&self, listed: impl IntoIterator<Item = &'a JobRecord>) {
        let wall = self.wall_now();
        let mut guard = self.lock();
        let s = &mut *guard;
        for rec in listed.into_iter().filter(|r| r.status.is_terminal()) {
            if let Some(job) = s.index.get(&rec.id).and_then(|&i| s.jobs.get_mut(i))
                && job.rec.detected_at.is_none()
            {
                job.rec.detected_at = Some(wall);
            }
        }
    }

    /// Counts a video download request of a job.
    pub(crate) fn note_download(&self, p: Protocol, h: JobHandle) {
        let mut s = self.lock();
        s.counts(p).downloads += 1;
        if let Some(j) = s.job_mut(h) {
            j.rec.downloads += 1;
        }
    }

    /// Records the sha256 of the job's video the first time it is served.
    pub(crate) fn ensure_sha(&self, h: JobHandle, id: &str) {
        let missing = self
            .lock()
            .job_mut(h)
            .is_some_and(|j| j.rec.sha256.is_none());
        if missing {
            let sha = video::video_sha256(id, self.config.video_bytes);
            if let Some(j) = self.lock().job_mut(h) {
                j.rec.sha256 = Some(sha);
            }
        }
    }

    /// Counts a download cut short by the `truncate_download` fault.
    pub(crate) fn note_truncated(&self, p: Protocol) {
        self.count(p, |c| c.truncated_downloads += 1);
    }

    /// Counts a blob request refused because its URL expired or its signature is wrong.
    pub(crate) fn note_expired_url(&self, p: Protocol) {
        self.count(p, |c| c.expired_urls += 1);
    }

    /// Records bytes handed to a connection; `complete` when that was the body's last byte.
    pub(crate) fn note_bytes(&self, p: Protocol, h: JobHandle, n: u64, complete: bool) {
        let mut s = self.lock();
        let c = s.counts(p);
        c.downloaded_bytes += n;
        if complete {
            c.downloads_completed += 1;
        }
        if let Some(j) = s.job_mut(h) {
            j.rec.downloaded_bytes += n;
            if complete {
                j.rec.downloads_completed += 1;
            }
        }
    }

    /// Counts a request with an `Authorization` header to a job's blob URL.
    pub(crate) fn note_leaked_auth(&self, p: Protocol, h: Option<JobHandle>) {
        let mut s = self.lock();
        s.counts(p).leaked_auth += 1;
        if let Some(j) = h.and_then(|h| s.job_mut(h)) {
            j.rec.leaked_auth += 1;
        }
    }

    /// The Sora.hk balance left, in cents.
    pub(crate) fn balance(&self) -> u64 {
        self.lock().balance
    }

    /// The signature of a blob URL: base64 of sha256(secret | task id | se).
    pub(crate) fn blob_sig(&self, task_id: &str, se: &str) -> String {
        let mut h = Sha256::new();
        h.update(self.blob_secret);
        h.update(task_id.as_bytes());
        h.update(b"|");
        h.update(se.as_bytes());
        base64::engine::general_purpose::STANDARD.encode(h.finalize())
    }

    /// A snapshot of every counter and job.
    pub(crate) fn ledger(&self) -> Ledger {
        let now = Instant::now();
        let s = self.lock();
        let [
            openai,
            sorahk,
            seedance,
            kling,
            wan,
            minimax,
            fal,
            openrouter,
        ] = s.counts.clone();
        let mut total = Counts::default();
        for c in [
            &openai,
            &sorahk,
            &seedance,
            &kling,
            &wan,
            &minimax,
            &fal,
            &openrouter,
        ] {
            total.add(c);
        }
        Ledger {
            total,
            openai,
            sorahk,
            seedance,
            kling,
            wan,
            minimax,
            fal,
            openrouter,
            jobs: s.jobs.iter().map(|j| self.snapshot(j, now)).collect(),
        }
    }
}

/// How a failed job's failure reads, per protocol: (code, message).
pub(crate) fn failure_text(p: Protocol, kind: FailKind) -> (&'static str, &'static str) {
    match (p, kind) {
        (Protocol::OpenAi, FailKind::ContentPolicy) => (
            "moderation_blocked",
            "Your request was blocked by our moderation system.",
        ),
        (Protocol::OpenAi, FailKind::Retryable) => (
            "server_error",
            "The video could not be generated due to an internal error. Please try again.",
        ),
        (Protocol::SoraHk, FailKind::ContentPolicy) => {
            ("", "此内容可能违反我们关于第三方相似性的相关规定。")
        }
        (Protocol::SoraHk, FailKind::Retryable) => ("", "视频生成失败，请稍后重试"),
        (Protocol::Seedance, FailKind::ContentPolicy) => (
            "OutputVideoSensitiveContentDetected",
            "The request failed because the output video may contain sensitive information.",
        ),
        (Protocol::Seedance, FailKind::Retryable) => (
            "ServerOverloaded",
            "The service is currently overloaded. Please try again later.",
        ),
        // Kling's failed tasks carry a message only (`task_status_msg`).
        (Protocol::Kling, FailKind::ContentPolicy) => {
            ("", "Failure to pass the risk control system")
        }
        (Protocol::Kling, FailKind::Retryable) => ("", "Internal error, please try again later"),
        (Protocol::Wan, FailKind::ContentPolicy) => (
            "DataInspectionFailed",
            "Output data may contain inappropriate content.",
        ),
        (Protocol::Minimax, FailKind::ContentPolicy) => {
            ("1027", "output video may contain sensitive content")
        }
        (Protocol::Minimax, FailKind::Retryable) => ("1024", "internal error, please retry"),
        (Protocol::Wan, FailKind::Retryable) => (
            "InternalError",
            "An internal error has occured, please try again later or contact service support.",
        ),
        (Protocol::Fal, FailKind::ContentPolicy) => (
            "content_policy_violation",
            "The content was flagged by a content checker.",
        ),
        (Protocol::OpenRouter, FailKind::ContentPolicy) => (
            "moderation_blocked",
            "The request was blocked by the provider's content moderation.",
        ),
        (Protocol::OpenRouter, FailKind::Retryable) => (
            "provider_error",
            "The provider failed to generate the video. Please try again.",
        ),
        (Protocol::Fal, FailKind::Retryable) => (
            "downstream_service_unavailable",
            "The model's downstream service is unavailable. Please try again.",
        ),
    }
}

/// A Kling task id: 18 decimal digits, the first not 0 (`867283741759111202`).
fn kling_id(raw: &[u8; 16]) -> String {
    let mut n = u64::from_le_bytes([
        raw[0], raw[1], raw[2], raw[3], raw[4], raw[5], raw[6], raw[7],
    ]);
    n = 100_000_000_000_000_000 + n % 900_000_000_000_000_000;
    n.to_string()
}

/// A MiniMax task id: 15 decimal digits, the first not 0 (`106916112212032`).
fn minimax_id(raw: &[u8; 16]) -> String {
    let n = raw[..8]
        .iter()
        .fold(0u64, |n, b| n.wrapping_mul(256).wrapping_add(u64::from(*b)));
    format!("{}", 100_000_000_000_000 + n % 900_000_000_000_000)
}

/// A Seedance task id, `cgt-20261201093012-x7k2p`: the creation time (UTC) and five
/// lowercase letters or digits.
fn seedance_id(t: OffsetDateTime, raw: &[u8; 16]) -> String {
    const ALPHABET: &[u8; 36] = b"abcdefghijklmnopqrstuvwxyz0123456789";
    let t = t.to_offset(time::UtcOffset::UTC);
    let suffix: String = raw[..5]
        .iter()
        .map(|b| char::from(ALPHABET[usize::from(*b) % ALPHABET.len()]))
        .collect();
    format!(
        "cgt-{:04}{:02}{:02}{:02}{:02}{:02}-{suffix}",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    )
}
