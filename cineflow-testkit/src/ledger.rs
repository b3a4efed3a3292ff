//! The ledger: what the fake vendor was asked for, what it charged and what it served.
//!
//! See [`Ledger`] for the JSON shape.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use time::OffsetDateTime;

use crate::config::FailKind;

/// The wire protocols the server speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Protocol {
    /// The OpenAI Videos protocol, under `/openai/v1`.
    #[serde(rename = "openai")]
    OpenAi,
    /// Sora.hk, under `/sorahk/v1`.
    #[serde(rename = "sorahk")]
    SoraHk,
    /// The Seedance task API of Volcengine Ark / BytePlus ModelArk, under
    /// `/seedance/api/v3` (the path shape of `https://ark.…/api/v3`).
    #[serde(rename = "seedance")]
    Seedance,
    /// Kling's official API, under `/kling` (the path shape of
    /// `https://api-singapore.klingai.com`: `/kling/v1/videos/…`).
    #[serde(rename = "kling")]
    Kling,
    /// The DashScope task API of Alibaba Wan, under `/wan/api/v1` (the path shape of
    /// `https://dashscope.aliyuncs.com/api/v1`).
    #[serde(rename = "wan")]
    Wan,
    /// The MiniMax Hailuo video API (V1 and V2), under `/minimax` (the path shape of
    /// `https://api.minimax.io`).
    #[serde(rename = "minimax")]
    Minimax,
    /// fal.ai's queue, under `/fal/queue` (its platform API under `/fal/api/v1`).
    #[serde(rename = "fal")]
    Fal,
    /// OpenRouter's video API, under `/openrouter/api/v1`.
    #[serde(rename = "openrouter")]
    OpenRouter,
}

impl Protocol {
    /// Every protocol.
    pub const ALL: [Protocol; 8] = [
        Protocol::OpenAi,
        Protocol::SoraHk,
        Protocol::Seedance,
        Protocol::Kling,
        Protocol::Wan,
        Protocol::Minimax,
        Protocol::Fal,
        Protocol::OpenRouter,
    ];

    /// The path prefix of its API (`/openai/v1`, `/sorahk/v1`, `/seedance/api/v3`, `/kling`).
    pub const fn path_prefix(self) -> &'static str {
        match self {
            Protocol::OpenAi => "/openai/v1",
            Protocol::SoraHk => "/sorahk/v1",
            Protocol::Seedance => "/seedance/api/v3",
            Protocol::Kling => "/kling",
            Protocol::Wan => "/wan/api/v1",
            Protocol::Minimax => "/minimax",
            Protocol::Fal => "/fal/queue",
            Protocol::OpenRouter => "/openrouter/api/v1",
        }
    }

    /// Its name in JSON (`openai`, `sorahk`, `seedance`, `kling`).
    pub const fn as_str(self) -> &'static str {
        match self {
            Protocol::OpenAi => "openai",
            Protocol::SoraHk => "sorahk",
            Protocol::Seedance => "seedance",
            Protocol::Kling => "kling",
            Protocol::Wan => "wan",
            Protocol::Minimax => "minimax",
            Protocol::Fal => "fal",
            Protocol::OpenRouter => "openrouter",
        }
    }

    pub(crate) const fn index(self) -> usize {
        match self {
            Protocol::OpenAi => 0,
            Protocol::SoraHk => 1,
            Protocol::Seedance => 2,
            Protocol::Kling => 3,
            Protocol::Wan => 4,
            Protocol::Minimax => 5,
            Protocol::Fal => 6,
            Protocol::OpenRouter => 7,
        }
    }
}

impl fmt::Display for Protocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A job's state in protocol-neutral words (the vendor's own word is
/// [`JobRecord::vendor_status`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JobPhase {
    /// OpenAI and Seedance `queued`, Sora.hk `pending`.
    Queued,
    /// OpenAI `in_progress`, Sora.hk `processing`, Seedance `running`.
    Running,
    /// `completed` (Seedance `succeeded`): the video can be downloaded.
    Completed,
    /// `failed`.
    Failed,
    /// Seedance `cancelled`: deleted while still queued (`DELETE …/tasks/{id}`).
    Cancelled,
    /// Seedance `expired`: still unfinished when its `execution_expires_after` ran out.
    Expired,
}

impl JobPhase {
    /// The vendor's word for it.
    pub const fn vendor_status(self, protocol: Protocol) -> &'static str {
        match (protocol, self) {
            (Protocol::OpenAi, JobPhase::Queued) => "queued",
            (Protocol::OpenAi, JobPhase::Running) => "in_progress",
            (Protocol::SoraHk, JobPhase::Queued) => "pending",
            (Protocol::SoraHk, JobPhase::Running) => "processing",
            (Protocol::Seedance, JobPhase::Queued) => "queued",
            (Protocol::Seedance, JobPhase::Running) => "running",
            (Protocol::Seedance, JobPhase::Completed) => "succeeded",
            (Protocol::Kling, JobPhase::Queued) => "submitted",
            (Protocol::Kling, JobPhase::Running) => "processing",
            (Protocol::Kling, JobPhase::Completed) => "succeed",
            (Protocol::Wan, JobPhase::Queued) => "PENDING",
            (Protocol::Wan, JobPhase::Running) => "RUNNING",
            (Protocol::Wan, JobPhase::Completed) => "SUCCEEDED",
            (Protocol::Wan, JobPhase::Failed) => "FAILED",
            (Protocol::Wan, JobPhase::Cancelled) => "CANCELED",
            (Protocol::Wan, JobPhase::Expired) => "UNKNOWN",
            (Protocol::Minimax, JobPhase::Queued) => "Queueing",
            (Protocol::Minimax, JobPhase::Running) => "Processing",
            (Protocol::Minimax, JobPhase::Completed) => "Success",
            (Protocol::Minimax, JobPhase::Failed) => "Fail",
            // fal's queue knows three states; how a request ended is in its result.
            (Protocol::Fal, JobPhase::Queued) => "IN_QUEUE",
            (Protocol::Fal, JobPhase::Running) => "IN_PROGRESS",
            (Protocol::Fal, _) => "COMPLETED",
            (Protocol::OpenRouter, JobPhase::Queued) => "pending",
            (Protocol::OpenRouter, JobPhase::Running) => "in_progress",
            (_, JobPhase::Completed) => "completed",
            (_, JobPhase::Failed) => "failed",
            (_, JobPhase::Cancelled) => "cancelled",
            (_, JobPhase::Expired) => "expired",
        }
    }

    /// Whether the job will not change any more.
    pub const fn is_terminal(self) -> bool {
        matches!(
            self,
            JobPhase::Completed | JobPhase::Failed | JobPhase::Cancelled | JobPhase::Expired
        )
    }
}

/// Request counters, per protocol and in total.
///
/// Requests answered 401 count only in `unauthorized` (and, for submits, in
/// `submit_attempts` and `rejected_submits`); every other counter counts requests whatever
/// they were answered, faults included.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Counts {
    /// Submits received, including rejected ones (bad key, invalid, 429, 5xx).
    pub submit_attempts: u64,
    /// Accepted submits = jobs created = jobs paid for (including `accepted_then_502`).
    pub submits: u64,
    /// Submits answered with an error and no job.
    pub rejected_submits: u64,
    /// Accepted submits answered 502 (the job exists and is paid).
    pub accepted_then_502: u64,
    /// Submits lost by the `lost_submit` fault (no job; answered 504 late).
    #[serde(default)]
    pub lost_submits: u64,
    /// Requests answered 401 (missing or wrong key).
    pub unauthorized: u64,
    /// Requests answered 429 by the `rate_limit` fault.
    pub rate_limited: u64,
    /// Requests answered 5xx by the `server_error` fault.
    pub server_errors: u64,
    /// Requests delayed by the `stall` fault.
    pub stalled: u64,
    /// Status polls (`GET /videos/{id}`, `GET /tasks/{task_id}`,
    /// `GET /contents/generations/tasks/{id}`), unknown ids included.
    pub polls: u64,
    /// List calls (`GET /videos`, `GET /tasks`, `GET /contents/generations/tasks`).
    pub lists: u64,
    /// Seedance cancels and deletes answered 200 (`DELETE /contents/generations/tasks/{id}`).
    pub deletes: u64,
    /// Video download requests for an existing job: OpenAI `GET …/content?variant=video`
    /// (404 "not ready" answers included), Sora.hk blob and Seedance `video_url` `GET`s of a
    /// completed task (403 expired answers included). `HEAD` requests and Seedance last
    /// frames are not counted.
    pub downloads: u64,
    /// Downloads whose body was handed to the connection in full (through its last byte).
    pub downloads_completed: u64,
    /// Downloads cut short by the `truncate_download` fault.
    pub truncated_downloads: u64,
    /// Sora.hk blob and Seedance `video_url`/`last_frame_url` downloads refused with 403
    /// because the URL expired (naturally or by the `expire_urls` fault) or its signature did
    /// not match.
    pub expired_urls: u64,
    /// Video bytes handed to connections.
    pub downloaded_bytes: u64,
    /// Requests to a signed download URL (Sora.hk blob, Seedance `video_url` or
    /// `last_frame_url`) that carried an `Authorization` header (the key leaked there).
    pub leaked_auth: u64,
    /// Callback POSTs sent (each try, duplicates and forgeries included).
    pub callbacks_sent: u64,
    /// Callback POSTs the receiver did not answer 2xx (or not at all).
    pub callbacks_failed: u64,
    /// Callbacks not sent: the `callbacks.lost` fault.
    pub callbacks_lost: u64,
    /// Callbacks sent twice: the `callbacks.duplicated` fault.
    pub callbacks_duplicated: u64,
    /// Callbacks sent late: the `callbacks.delayed` fault.
    pub callbacks_delayed: u64,
    /// Forged callbacks sent: the `callbacks.forged` fault.
    pub callbacks_forged: u64,
    /// Callback URLs never called because they are not loopback.
    pub callbacks_refused: u64,
    /// MiniMax challenges sent.
    pub challenges: u64,
    /// MiniMax challenges not echoed within 3 s (that job then sends no callback).
    pub challenges_failed: u64,
}

impl Counts {
    pub(crate) fn add(&mut self, o: &Counts) {
        self.submit_attempts += o.submit_attempts;
        self.submits += o.submits;
        self.rejected_submits += o.rejected_submits;
        self.accepted_then_502 += o.accepted_then_502;
        self.lost_submits += o.lost_submits;
        self.unauthorized += o.unauthorized;
        self.rate_limited += o.rate_limited;
        self.server_errors += o.server_errors;
        self.stalled += o.stalled;
        self.polls += o.polls;
        self.lists += o.lists;
        self.deletes += o.deletes;
        self.downloads += o.downloads;
        self.downloads_completed += o.downloads_completed;
        self.truncated_downloads += o.truncated_downloads;
        self.expired_urls += o.expired_urls;
        self.downloaded_bytes += o.downloaded_bytes;
        self.leaked_auth += o.leaked_auth;
        self.callbacks_sent += o.callbacks_sent;
        self.callbacks_failed += o.callbacks_failed;
        self.callbacks_lost += o.callbacks_lost;
        self.callbacks_duplicated += o.callbacks_duplicated;
        self.callbacks_delayed += o.callbacks_delayed;
        self.callbacks_forged += o.callbacks_forged;
        self.callbacks_refused += o.callbacks_refused;
        self.challenges += o.challenges;
        self.challenges_failed += o.challenges_failed;
    }
}

/// One vendor job: created by an accepted submit, so paid for.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobRecord {
    /// The vendor id: OpenAI `video_<32 hex>`, Sora.hk a UUID, Seedance
    /// `cgt-<yyyymmddhhmmss>-<5 chars>`, Kling 18 decimal digits.
    pub id: String,
    /// Which protocol created it.
    pub protocol: Protocol,
    /// The prompt as sent (Seedance: the text of the `content[]` item of type `text`, empty
    /// when there is none).
    pub prompt: String,
    /// OpenAI `model` (default `sora-2`); Sora.hk `sora2` or `sora2-pro` (from `is_pro`);
    /// Seedance `model` (a model id or an `ep-…` endpoint id).
    pub model: String,
    /// OpenAI `seconds` (sent as a string), Sora.hk `duration`, Seedance the output
    /// `duration` (the one the model picked for `-1`).
    pub seconds: u32,
    /// OpenAI `size` (e.g. `720x1280`), Sora.hk `resolution` (`horizontal` | `vertical`),
    /// Seedance `<width>x<height>` of the output (from `resolution` and the actual `ratio`).
    pub size: String,
    /// Sora.hk `is_pro`; OpenAI: whether the model name contains `pro`.
    pub is_pro: bool,
    /// The request's fields as received (JSON body; for multipart, the text fields plus
    /// `input_reference: {filename, content_type, bytes}`). Seedance's `safety_identifier` is
    /// here.
    pub request: Value,
    /// The `Idempotency-Key` header of the create (OpenAI), or its `external_task_id` (Kling),
    /// if any.
    pub idempotency_key: Option<String>,
    /// When it was created (the server's clock, which follows tokio's paused time).
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    /// Its simulated duration in seconds.
    pub job_secs: f64,
    /// Its state when the snapshot was taken.
    pub status: JobPhase,
    /// The vendor's word for `status`.
    pub vendor_status: String,
    /// Progress 0–100 when the snapshot was taken.
    pub progress: u8,
    /// When it reached a terminal state (`completed`, `failed`, `cancelled`, `expired`), if
    /// it has.
    #[serde(with = "time::serde::rfc3339::option")]
    pub completed_at: Option<OffsetDateTime>,
    /// When a status poll or a list page first answered it `completed` or `failed` (the
    /// client could notice it then); `detected_at - completed_at` is the detection lag.
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub detected_at: Option<OffsetDateTime>,
    /// How it fails, if the `fail_jobs` fault chose it.
    pub failure: Option<FailKind>,
    /// Sora.hk: its price in cents (the `cost` answered). Seedance: its
    /// `usage.completion_tokens` priced at the BytePlus 2.0 online rate, in cents. OpenAI: 0.
    pub cost_cents: u64,
    /// Status polls of this job.
    pub polls: u64,
    /// Download requests of this job's video.
    pub downloads: u64,
    /// Downloads handed over in full.
    pub downloads_completed: u64,
    /// Video bytes handed over for this job.
    pub downloaded_bytes: u64,
    /// Size of its video.
    pub content_length: u64,
    /// Lowercase hex sha256 of its video, set once the video was first served
    /// ([`video_sha256`](crate::video_sha256) computes it without a download).
    pub sha256: Option<String>,
    /// Whether its submit was answered 502 after the job was created.
    pub accepted_then_502: bool,
    /// Whether the answer to its submit was delayed by the `stall` fault.
    pub submit_stalled: bool,
    /// Requests for its blob URL (Seedance: `video_url`, `last_frame_url`) that carried an
    /// `Authorization` header.
    pub leaked_auth: u64,
    /// OpenAI and Seedance: whether it was deleted (`DELETE /videos/{id}`, `DELETE
    /// /contents/generations/tasks/{id}` of a finished task). A cancelled Seedance task is not
    /// deleted: it reads `cancelled`.
    pub deleted: bool,
}

/// A snapshot of everything the server counted.
///
/// [`FakeVendor::ledger`](crate::FakeVendor::ledger) returns a snapshot; `GET /__ledger`
/// answers the same struct as JSON (it deserializes back into [`Ledger`], so out-of-process
/// tests get the same helpers):
///
/// ```json
/// {
///   "total":  { "submit_attempts": 3, "submits": 2, "rejected_submits": 1, "accepted_then_502": 0,
///               "unauthorized": 0, "rate_limited": 1, "server_errors": 0, "stalled": 0,
///               "polls": 7, "lists": 0, "deletes": 0, "downloads": 2, "downloads_completed": 2,
///               "truncated_downloads": 0, "expired_urls": 0, "downloaded_bytes": 131072,
///               "leaked_auth": 0 },
///   "openai": { … same fields … },
///   "sorahk": { … same fields … },
///   "seedance": { … same fields … },
///   "jobs": [ { "id": "video_…", "protocol": "openai", "prompt": "…", "model": "sora-2",
///               "seconds": 4, "size": "720x1280", "is_pro": false, "request": { … },
///               "idempotency_key": null, "created_at": "2026-…Z", "job_secs": 5.0,
///               "status": "completed", "vendor_status": "completed", "progress": 100,
///               "completed_at": "2026-…Z", "detected_at": "2026-…Z", "failure": null,
///               "cost_cents": 0, "polls": 4, "downloads": 1, "downloads_completed": 1, "downloaded_bytes": 65536,
///               "content_length": 65536, "sha256": "…", "accepted_then_502": false,
///               "submit_stalled": false, "leaked_auth": 0, "deleted": false } ]
/// }
/// ```
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Ledger {
    /// Every protocol together.
    pub total: Counts,
    /// The OpenAI Videos protocol.
    pub openai: Counts,
    /// Sora.hk.
    pub sorahk: Counts,
    /// Seedance (Ark).
    #[serde(default)]
    pub seedance: Counts,
    /// Kling.
    #[serde(default)]
    pub kling: Counts,
    /// Wan (DashScope).
    #[serde(default)]
    pub wan: Counts,
    /// MiniMax Hailuo.
    #[serde(default)]
    pub minimax: Counts,
    /// fal's queue.
    #[serde(default)]
    pub fal: Counts,
    /// OpenRouter's video API.
    #[serde(default)]
    pub openrouter: Counts,
    /// Every job ever created (since start or the last reset), oldest first.
    pub jobs: Vec<JobRecord>,
}

impl Ledger {
    /// The counters of one protocol.
    pub fn counts(&self, protocol: Protocol) -> &Counts {
        match protocol {
            Protocol::OpenAi => &self.openai,
            Protocol::SoraHk => &self.sorahk,
            Protocol::Seedance => &self.seedance,
            Protocol::Kling => &self.kling,
            Protocol::Wan => &self.wan,
            Protocol::Minimax => &self.minimax,
            Protocol::Fal => &self.fal,
            Protocol::OpenRouter => &self.openrouter,
        }
    }

    /// The job with this vendor id.
    pub fn job(&self, id: &str) -> Option<&JobRecord> {
        self.jobs.iter().find(|j| j.id == id)
    }

    /// The jobs created with exactly this prompt, oldest first.
    pub fn jobs_for_prompt(&self, prompt: &str) -> Vec<&JobRecord> {
        self.jobs.iter().filter(|j| j.prompt == prompt).collect()
    }

    /// Every paid job: every accepted submit, including ones answered 502, failed and
    /// deleted ones. Oldest first.
    pub fn paid_jobs(&self) -> Vec<&JobRecord> {
        self.jobs.iter().collect()
    }

    /// The jobs of one protocol, oldest first.
    pub fn jobs_of(&self, protocol: Protocol) -> Vec<&JobRecord> {
        self.jobs
            .iter()
            .filter(|j| j.protocol == protocol)
            .collect()
    }

    /// The mean time between jobs finishing and a status poll first reporting it, in
    /// seconds, over the jobs whose end was reported; `None` when there are none.
    pub fn mean_detect_lag_secs(&self) -> Option<f64> {
        let lags: Vec<f64> = self
            .jobs
            .iter()
            .filter_map(|j| Some((j.detected_at? - j.completed_at?).as_seconds_f64()))
            .collect();
        (!lags.is_empty()).then(|| lags.iter().sum::<f64>() / lags.len() as f64)
    }

    /// Prompts paid for more than once (across every protocol), with how many jobs each has.
    /// Empty when nothing was paid twice.
    pub fn duplicate_prompts(&self) -> BTreeMap<String, usize> {
        let mut seen: BTreeMap<String, usize> = BTreeMap::new();
        for j in &self.jobs {
            *seen.entry(j.prompt.clone()).or_default() += 1;
        }
        seen.retain(|_, n| *n > 1);
        seen
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(id: &str, prompt: &str) -> JobRecord {
        JobRecord {
            id: id.into(),
            protocol: Protocol::SoraHk,
            prompt: prompt.into(),
            model: "sora2".into(),
            seconds: 10,
            size: "horizontal".into(),
            is_pro: false,
            request: Value::Null,
            idempotency_key: None,
            created_at: OffsetDateTime::UNIX_EPOCH,
            job_secs: 1.0,
            status: JobPhase::Queued,
            vendor_status: "pending".into(),
            progress: 0,
            completed_at: None,
            detected_at: None,
            failure: None,
            cost_cents: 3,
            polls: 0,
            downloads: 0,
            downloads_completed: 0,
            downloaded_bytes: 0,
            content_length: 100,
            sha256: None,
            accepted_then_502: false,
            submit_stalled: false,
            leaked_auth: 0,
            deleted: false,
        }
    }

    #[test]
    fn duplicate_prompts_lists_prompts_paid_twice() {
        let ledger = Ledger {
            jobs: vec![job("a", "x"), job("b", "y"), job("c", "x")],
            ..Ledger::default()
        };
        assert_eq!(ledger.duplicate_prompts().get("x"), Some(&2));
        assert_eq!(ledger.duplicate_prompts().len(), 1);
        assert_eq!(ledger.jobs_for_prompt("x").len(), 2);
        assert_eq!(ledger.paid_jobs().len(), 3);
        let json = serde_json::to_string(&ledger).unwrap();
        assert_eq!(serde_json::from_str::<Ledger>(&json).unwrap(), ledger);
    }
}
