//! What the fake vendor is configured with: key, job timing, video size, vendor knobs and
//! [`Faults`].
//!
//! Every struct here is serde with `#[serde(default)]` and `deny_unknown_fields` (a typo in a
//! `POST /__faults` body is an error, not a silently ignored fault); each field's doc states
//! its default.

use serde::{Deserialize, Serialize};

use crate::Error;

/// Everything a [`FakeVendor`](crate::FakeVendor) is started with. Build one with
/// [`FakeVendorBuilder`](crate::FakeVendorBuilder)'s `with_*` setters or deserialize it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// The API key every protocol accepts as `Authorization: Bearer <key>`. Default: `fake-key`.
    pub key: String,
    /// Seed of every random choice: job ids, job durations, fault draws and blob signatures.
    /// The same seed and the same sequence of requests give the same answers. Default: `42`.
    pub seed: u64,
    /// How long jobs take. Default: [`JobTiming::default`].
    pub timing: JobTiming,
    /// Size of every video in bytes (at least 40 holds the `ftyp` and `mdat` box headers).
    /// Default: 65,536.
    pub video_bytes: u64,
    /// Video bodies are sent at most this fast, in bytes per second (a slow link: each
    /// chunk of up to 64 KiB waits its share of a second before it is sent), so a client can
    /// be caught in the middle of a download. `0` sends as fast as the connection takes them.
    /// Follows tokio time. Default: 0.
    pub download_bytes_per_sec: u64,
    /// OpenAI: the `openai-poll-after-ms` header on create and poll answers; `None` leaves the
    /// header out. Default: `Some(1000)`.
    pub poll_after_ms: Option<u64>,
    /// OpenAI: the accepted `seconds` values (a JSON **string** is required). Default:
    /// `"4"`, `"8"`, `"12"`, `"16"`, `"20"`.
    pub openai_seconds: Vec<String>,
    /// OpenAI: how long a completed video stays downloadable (`expires_at - completed_at`);
    /// afterwards the content answers 404. Default: 3,600 s.
    pub openai_asset_ttl_secs: u64,
    /// OpenAI: a repeated `Idempotency-Key` header answers the video created first instead of
    /// creating (and charging) another. Whether real vendors do this is unverified. Default:
    /// `false` (the header is only recorded).
    pub honor_idempotency_key: bool,
    /// Sora.hk: lifetime of a blob URL (`se` = issue time + this). Default: 129,600 s (36 h).
    pub blob_url_ttl_secs: u64,
    /// Sora.hk: the starting balance in cents; each accepted job costs its price and a submit
    /// that cannot be paid answers code 1012. Default: 1,000,000,000.
    pub sorahk_balance: u64,
    /// Sora.hk: price of a normal job in cents (`GET /pricing` `normal_price`, the `cost` of
    /// a create). Default: 3.
    pub sorahk_normal_price: u64,
    /// Sora.hk: price of a pro job in cents (`pro_price`). Default: 30.
    pub sorahk_pro_price: u64,
    /// Sora.hk: whether error answers with envelope code 401, 1001 or 1012 carry a matching
    /// HTTP status (401, 400, 402) or HTTP 200. The real vendor's behaviour is unverified.
    /// Faults (429, 5xx with code 500), 404 and blob errors always carry their HTTP status.
    /// Default: `true`.
    pub sorahk_http_status_mirrors_code: bool,
    /// Callbacks: whether a submit naming a callback URL (Seedance, Kling, MiniMax and
    /// OpenRouter `callback_url`, fal `fal_webhook`) is called back when its job ends. Only
    /// loopback URLs are ever called. Default: `true`.
    pub callbacks: bool,
    /// OpenRouter: the webhook signing secret of the workspace (the callbacks' HMAC key).
    /// Default: `fake-openrouter-webhook-secret`.
    pub openrouter_webhook_secret: String,
    /// The query parameter of a callback URL holding the receiver's per-attempt token: a
    /// forged callback ([`CallbackFaults::forged`]) replaces its value. Default: `cf_token`.
    pub callback_token_param: String,
    /// Faults active from the start. Default: none.
    pub faults: Faults,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            key: "fake-key".into(),
            seed: 42,
            timing: JobTiming::default(),
            video_bytes: 64 * 1024,
            download_bytes_per_sec: 0,
            poll_after_ms: Some(1000),
            openai_seconds: ["4", "8", "12", "16", "20"].map(String::from).to_vec(),
            openai_asset_ttl_secs: 3600,
            honor_idempotency_key: false,
            blob_url_ttl_secs: 36 * 3600,
            sorahk_balance: 1_000_000_000,
            sorahk_normal_price: 3,
            sorahk_pro_price: 30,
            sorahk_http_status_mirrors_code: true,
            callbacks: true,
            openrouter_webhook_secret: "fake-openrouter-webhook-secret".into(),
            callback_token_param: "cf_token".into(),
            faults: Faults::default(),
        }
    }
}

impl Config {
    /// Checks every value; called by [`FakeVendorBuilder::start`](crate::FakeVendorBuilder::start).
    ///
    /// # Errors
    ///
    /// [`Error::Config`] naming the first bad field.
    pub fn validate(&self) -> Result<(), Error> {
        if self.key.is_empty() || !self.key.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(Error::Config(
                "key must be non-empty printable ASCII without spaces".into(),
            ));
        }
        self.timing.validate()?;
        if self.video_bytes < 40 {
            return Err(Error::Config(format!(
                "video_bytes must be at least 40 (the MP4 box headers), got {}",
                self.video_bytes
            )));
        }
        if self.openai_seconds.is_empty() {
            return Err(Error::Config("openai_seconds must not be empty".into()));
        }
        if self.openrouter_webhook_secret.trim().is_empty() {
            return Err(Error::Config(
                "openrouter_webhook_secret must not be empty".into(),
            ));
        }
        self.faults.validate()
    }
}

/// How long each job takes and how it is split between queued and running.
///
/// A job's duration is `secs`, or uniform in `secs × (1 ± jitter)`; it is queued for the first
/// `queued_fraction` of it, then running with progress `⌊100 × elapsed / duration⌋`, then
/// completed (or failed, see [`FailJobsFault`]). Time is tokio's [`Instant`](tokio::time::Instant),
/// so `tokio::time::pause()` and `advance()` drive jobs in in-process tests.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct JobTiming {
    /// Mean job duration in seconds (> 0). Default: 5.0.
    pub secs: f64,
    /// Relative spread in `[0, 1)`: durations are uniform in `secs × (1 ± jitter)`; 0 makes
    /// every job take exactly `secs`. Default: 0.0.
    pub jitter: f64,
    /// Share of the duration spent queued, in `[0, 1)`. Default: 0.1.
    pub queued_fraction: f64,
}

impl Default for JobTiming {
    fn default() -> Self {
        Self {
            secs: 5.0,
            jitter: 0.0,
            queued_fraction: 0.1,
        }
    }
}

impl JobTiming {
    fn validate(&self) -> Result<(), Error> {
        if !(self.secs.is_finite() && self.secs > 0.0 && self.secs < 1e9) {
            return Err(Error::Config(format!(
                "timing.secs must be > 0, got {}",
                self.secs
            )));
        }
        if !(0.0..1.0).contains(&self.jitter) {
            return Err(Error::Config(format!(
                "timing.jitter must be in [0, 1), got {}",
                self.jitter
            )));
        }
        if !(0.0..1.0).contains(&self.queued_fraction) {
            return Err(Error::Config(format!(
                "timing.queued_fraction must be in [0, 1), got {}",
                self.queued_fraction
            )));
        }
        Ok(())
    }
}

/// A kind of request a fault can hit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Endpoint {
    /// `POST /videos` (OpenAI), `POST /create` (Sora.hk), `POST /contents/generations/tasks`
    /// (Seedance).
    Submit,
    /// `GET /videos/{id}`, `GET /tasks/{task_id}`, `GET /contents/generations/tasks/{id}`.
    Poll,
    /// `GET /videos/{id}/content`, the Sora.hk blob URL and the Seedance `video_url` and
    /// `last_frame_url`.
    Download,
    /// `GET /videos`, `GET /tasks`, `GET /contents/generations/tasks` (reconciliation).
    List,
}

/// How a failed job fails ([`FailJobsFault`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FailKind {
    /// Moderation refused it: OpenAI `error.code: "moderation_blocked"`, Sora.hk
    /// `error_msg: "此内容可能违反…相关规定。"`, Seedance
    /// `error.code: "OutputVideoSensitiveContentDetected"`. Not worth retrying.
    #[default]
    ContentPolicy,
    /// A transient vendor failure: OpenAI `error.code: "server_error"`, Sora.hk
    /// `error_msg: "视频生成失败，请稍后重试"`, Seedance `error.code: "ServerOverloaded"`. Another attempt may succeed.
    Retryable,
}

/// The faults the server injects. Each one fires for the first `first` eligible requests
/// after the faults were set, and after that with `probability` (drawn from the seeded RNG).
/// Set them at start ([`Config::faults`]), with
/// [`FakeVendor::set_faults`](crate::FakeVendor::set_faults), or with `POST /__faults` (the
/// body replaces every fault; omitted ones are off; counters restart).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Faults {
    /// 429 in the vendor's error shape with `Retry-After` and `retry-after-ms`.
    pub rate_limit: RateLimitFault,
    /// 5xx in the vendor's error shape; on a submit no job is created.
    pub server_error: ServerErrorFault,
    /// The answer is delayed (for client timeouts). On a submit the job is created **before**
    /// the delay, so a client that times out leaves a paid job behind (an ambiguous submit).
    pub stall: StallFault,
    /// A download sends fewer bytes than its `content-length`, then closes the connection.
    pub truncate_download: TruncateFault,
    /// A Sora.hk blob URL answers 403 `AuthenticationFailed` (XML) as if its `se` expiry had
    /// passed; a fresh poll gives a fresh URL (which the fault may hit again). A Seedance
    /// `video_url` or `last_frame_url` answers 403 `AccessDenied` "Request has expired".
    pub expire_urls: Trigger,
    /// A submit creates the job (it is paid and listed) and then answers 502 with a gateway's
    /// HTML page: the ambiguous submit of issue #8.
    pub accept_then_502: Trigger,
    /// Jobs decided at submit end `failed` instead of `completed`.
    pub fail_jobs: FailJobsFault,
    /// A submit that never reaches the vendor: no job is created, and the answer (a gateway's
    /// 504 page) is held back `delay_ms`, so a client with a shorter timeout times out — an
    /// ambiguous submit that created nothing (the one a client-chosen id proves absent).
    pub lost_submit: LostSubmitFault,
    /// Jobs appear in the list endpoints only this many milliseconds after their creation
    /// (vendors may list new jobs late). Default: 0.
    pub list_lag_ms: u64,
    /// Callbacks lost, duplicated, delayed or forged (drawn once per job with a callback URL).
    pub callbacks: CallbackFaults,
}

/// Faults of the callbacks a job sends when it ends (see the crate docs' callback table).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CallbackFaults {
    /// The job's callback is never sent (its end is found by polling only).
    pub lost: Trigger,
    /// The job's callback is sent twice.
    pub duplicated: Trigger,
    /// The job's callback is sent `delay_ms` after the job ended.
    pub delayed: Trigger,
    /// How late a delayed callback is. Default: 5,000 ms.
    pub delay_ms: u64,
    /// At submit, a forged callback claiming success with another video is sent first: its
    /// URL's token replaced (unsigned vendors), or signed with a wrong key (fal, OpenRouter).
    pub forged: Trigger,
}

impl Default for CallbackFaults {
    fn default() -> Self {
        Self {
            lost: Trigger::never(),
            duplicated: Trigger::never(),
            delayed: Trigger::never(),
            delay_ms: 5_000,
            forged: Trigger::never(),
        }
    }
}

impl Faults {
    /// No fault at all (the default).
    pub fn none() -> Self {
        Self::default()
    }

    /// Checks probabilities, statuses and fractions.
    ///
    /// # Errors
    ///
    /// [`Error::Config`] naming the first bad field.
    pub fn validate(&self) -> Result<(), Error> {
        let checks = [
            ("rate_limit", self.rate_limit.probability),
            ("server_error", self.server_error.probability),
            ("stall", self.stall.probability),
            ("truncate_download", self.truncate_download.probability),
            ("expire_urls", self.expire_urls.probability),
            ("accept_then_502", self.accept_then_502.probability),
            ("fail_jobs", self.fail_jobs.probability),
            ("lost_submit", self.lost_submit.probability),
            ("callbacks.lost", self.callbacks.lost.probability),
            (
                "callbacks.duplicated",
                self.callbacks.duplicated.probability,
            ),
            ("callbacks.delayed", self.callbacks.delayed.probability),
            ("callbacks.forged", self.callbacks.forged.probability),
        ];
        for (name, p) in checks {
            if !(0.0..=1.0).contains(&p) {
                return Err(Error::Config(format!(
                    "faults.{name}.probability must be in [0, 1], got {p}"
                )));
            }
        }
        if !(500..=599).contains(&self.server_error.status) {
            return Err(Error::Config(format!(
                "faults.server_error.status must be 5xx, got {}",
                self.server_error.status
            )));
        }
        if !(0.0..1.0).contains(&self.truncate_download.keep_fraction) {
            return Err(Error::Config(format!(
                "faults.truncate_download.keep_fraction must be in [0, 1), got {}",
                self.truncate_download.keep_fraction
            )));
        }
        Ok(())
    }
}

/// When a fault fires: the first `first` eligible requests, then each with `probability`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Trigger {
    /// Chance in `[0, 1]` that an eligible request (after the first `first`) is hit.
    /// Default: 0.0.
    pub probability: f64,
    /// How many eligible requests, counted from when the faults were set, are hit first.
    /// Default: 0.
    pub first: u64,
}

impl Trigger {
    /// Never fires.
    pub const fn never() -> Self {
        Self {
            probability: 0.0,
            first: 0,
        }
    }

    /// Fires on every eligible request.
    pub const fn always() -> Self {
        Self {
            probability: 1.0,
            first: 0,
        }
    }

    /// Fires with probability `p`.
    pub const fn probability(p: f64) -> Self {
        Self {
            probability: p,
            first: 0,
        }
    }

    /// Fires on the first `n` eligible requests only.
    pub const fn first(n: u64) -> Self {
        Self {
            probability: 0.0,
            first: n,
        }
    }

    /// Whether it can ever fire.
    pub fn is_active(&self) -> bool {
        self.first > 0 || self.probability > 0.0
    }
}

/// 429 Too Many Requests in the vendor's error shape.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RateLimitFault {
    /// See [`Trigger::probability`]. Default: 0.0.
    pub probability: f64,
    /// See [`Trigger::first`]. Default: 0.
    pub first: u64,
    /// Which requests it may hit. Default: submits and polls.
    pub on: Vec<Endpoint>,
    /// `retry-after-ms` header; `Retry-After` carries it rounded up to whole seconds.
    /// Default: 1,000.
    pub retry_after_ms: u64,
}

impl Default for RateLimitFault {
    fn default() -> Self {
        Self {
            probability: 0.0,
            first: 0,
            on: vec![Endpoint::Submit, Endpoint::Poll],
            retry_after_ms: 1000,
        }
    }
}

/// A 5xx answer in the vendor's error shape; a submit hit by it creates no job.
///
/// With status 503 the real adapters classify a submit as *rejected*; with 500 (or Sora.hk
/// HTTP 200 + code 500) as *ambiguous*, although no job exists — which is what reconciliation
/// must then find out.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServerErrorFault {
    /// See [`Trigger::probability`]. Default: 0.0.
    pub probability: f64,
    /// See [`Trigger::first`]. Default: 0.
    pub first: u64,
    /// Which requests it may hit. Default: submits and polls.
    pub on: Vec<Endpoint>,
    /// The HTTP status (500–599). Default: 503.
    pub status: u16,
}

impl Default for ServerErrorFault {
    fn default() -> Self {
        Self {
            probability: 0.0,
            first: 0,
            on: vec![Endpoint::Submit, Endpoint::Poll],
            status: 503,
        }
    }
}

/// A delayed answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StallFault {
    /// See [`Trigger::probability`]. Default: 0.0.
    pub probability: f64,
    /// See [`Trigger::first`]. Default: 0.
    pub first: u64,
    /// Which requests it may hit. Default: submits, polls and downloads.
    pub on: Vec<Endpoint>,
    /// How long the answer is held back, in milliseconds. Default: 30,000.
    pub delay_ms: u64,
}

impl Default for StallFault {
    fn default() -> Self {
        Self {
            probability: 0.0,
            first: 0,
            on: vec![Endpoint::Submit, Endpoint::Poll, Endpoint::Download],
            delay_ms: 30_000,
        }
    }
}

/// A download cut short: the full `content-length` is announced, fewer bytes are sent, then
/// the connection closes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TruncateFault {
    /// See [`Trigger::probability`]. Default: 0.0.
    pub probability: f64,
    /// See [`Trigger::first`]. Default: 0.
    pub first: u64,
    /// Share of the announced bytes actually sent, in `[0, 1)`. Default: 0.5.
    pub keep_fraction: f64,
}

impl Default for TruncateFault {
    fn default() -> Self {
        Self {
            probability: 0.0,
            first: 0,
            keep_fraction: 0.5,
        }
    }
}

/// Submits lost before the vendor: see [`Faults::lost_submit`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LostSubmitFault {
    /// See [`Trigger::probability`]. Default: 0.0.
    pub probability: f64,
    /// See [`Trigger::first`]. Default: 0.
    pub first: u64,
    /// How long the 504 answer is held back, in milliseconds. Default: 30,000.
    pub delay_ms: u64,
}

impl Default for LostSubmitFault {
    fn default() -> Self {
        Self {
            probability: 0.0,
            first: 0,
            delay_ms: 30_000,
        }
    }
}

/// Jobs that end `failed`; decided when the job is created.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FailJobsFault {
    /// See [`Trigger::probability`]. Default: 0.0.
    pub probability: f64,
    /// See [`Trigger::first`]. Default: 0.
    pub first: u64,
    /// How they fail. Default: [`FailKind::ContentPolicy`].
    pub kind: FailKind,
}

macro_rules! trigger_ctors {
    ($($t:ty),*) => {$(
        impl $t {
            /// This fault with its other settings at their defaults, firing with probability `p`.
            pub fn probability(p: f64) -> Self {
                Self { probability: p, ..Self::default() }
            }

            /// This fault with its other settings at their defaults, firing on the first `n`
            /// eligible requests.
            pub fn first(n: u64) -> Self {
                Self { first: n, ..Self::default() }
            }

            /// This fault with its other settings at their defaults, firing every time.
            pub fn always() -> Self {
                Self::probability(1.0)
            }

            pub(crate) fn trigger(&self) -> Trigger {
                Trigger { probability: self.probability, first: self.first }
            }
        }
    )*};
}

trigger_ctors!(
    RateLimitFault,
    ServerErrorFault,
    StallFault,
    TruncateFault,
    FailJobsFault,
    LostSubmitFault
);

impl RateLimitFault {
    /// Restricts it to these requests.
    pub fn on(mut self, endpoints: &[Endpoint]) -> Self {
        self.on = endpoints.to_vec();
        self
    }
}

impl ServerErrorFault {
    /// Restricts it to these requests.
    pub fn on(mut self, endpoints: &[Endpoint]) -> Self {
        self.on = endpoints.to_vec();
        self
    }

    /// Sets the HTTP status.
    pub fn with_status(mut self, status: u16) -> Self {
        self.status = status;
        self
    }
}

impl StallFault {
    /// Restricts it to these requests.
    pub fn on(mut self, endpoints: &[Endpoint]) -> Self {
        self.on = endpoints.to_vec();
        self
    }

    /// Sets the delay.
    pub fn with_delay_ms(mut self, ms: u64) -> Self {
        self.delay_ms = ms;
        self
    }
}

impl FailJobsFault {
    /// Sets how jobs fail.
    pub fn with_kind(mut self, kind: FailKind) -> Self {
        self.kind = kind;
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn faults_json_uses_defaults_and_refuses_typos() {
        let f: Faults =
            serde_json::from_str(r#"{"rate_limit":{"first":2},"list_lag_ms":5}"#).unwrap();
        assert_eq!(f.rate_limit.first, 2);
        assert_eq!(f.rate_limit.on, vec![Endpoint::Submit, Endpoint::Poll]);
        assert_eq!(f.list_lag_ms, 5);
        assert!(serde_json::from_str::<Faults>(r#"{"rate_limt":{}}"#).is_err());
        assert!(serde_json::from_str::<Faults>(r#"{"stall":{"dealy_ms":1}}"#).is_err());
    }

    #[test]
    fn bad_values_are_refused() {
        let mut f = Faults::none();
        f.rate_limit.probability = 1.5;
        assert!(f.validate().is_err());
        let f = Faults {
            server_error: ServerErrorFault::always().with_status(404),
            ..Faults::none()
        };
        assert!(f.validate().is_err());
        let c = Config {
            key: "has space".into(),
            ..Config::default()
        };
        assert!(c.validate().is_err());
        assert!(Config::default().validate().is_ok());
    }
}
