//! Orchestrator settings.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::ids::ProviderId;
use crate::provider::JobState;

/// How often to poll a vendor job.
///
/// The next interval is the time left: the vendor's ETA, or else what its progress allows.
/// Vendors round progress down, so a job at `p` % after `elapsed` is `p` to `p + 1` % done and
/// ends between `elapsed × (99 − p) / (p + 1)` and `elapsed × (100 − p) / p` from now. When
/// that window is no wider than `min`, the poll is aimed at its end, where the job is surely
/// over. When it is wider (a low progress read early), at its start — or, when a percent of
/// the job takes no longer than `min` (jobs up to about `100 × min`), at `min` before its
/// start: that poll finds the job running with at least `min` left and reads a progress close
/// enough to aim the next one at the end itself. (Aimed at the window's start, a job found
/// with less than `min` left is seen up to `min` late, the interval's floor; aimed at its
/// end, up to `elapsed × 100 / p²` late: 3 s for a 30 s job read at 16 %.) Without either, the
/// previous interval grown by `growth` — the interval planned, counted from when the poll was
/// planned: a poll refused with a `Retry-After` delays that poll, not the ones after it. The
/// vendor's `poll_after` hint is a floor, not the
/// interval: a vendor asking not to be polled for 1 s does not need a poll every second of a
/// 60 s job. The result is clamped to `[min, max]` (see [`min`](Self::min) for its one
/// exception) and lengthened, never shortened, by a random share of up to `jitter` — of the
/// interval when it only grew, of `min` when it is aimed at a predicted end (ETA or
/// progress), so that an aimed poll stays close to its aim: the jobs' own ends spread those
/// polls already.
///
/// With the defaults, a 60 s job whose vendor reports progress is polled about 5 times and its
/// end noticed about 0.4 s after it happens (see `examples/loadtest`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
#[non_exhaustive]
pub struct PollPolicy {
    /// Wait before the first poll. Default 2 s.
    #[serde(with = "secs")]
    pub initial: Duration,
    /// Shortest interval. Default 1 s. One exception: a job found within `min` of its end
    /// (the window its progress allows ends sooner, say when a poll aimed at its end came a
    /// little early) is polled again at that end, at least `min / 4` later — once: the
    /// interval after one shorter than `min` is `min` or more.
    #[serde(with = "secs")]
    pub min: Duration,
    /// Longest interval. Default 30 s.
    #[serde(with = "secs")]
    pub max: Duration,
    /// Growth factor without better information. Default 1.5.
    pub growth: f64,
    /// Relative jitter, 0–0.5: each interval is lengthened by a random share in `[0, jitter)`
    /// so that jobs submitted together do not poll together — a share of the interval when
    /// it only grew, a share of `min` when it is aimed at a predicted end. Default 0.05.
    pub jitter: f64,
    /// Give up on a job this long after its submit was recorded (the attempt's
    /// `submitted_at`): an absolute deadline that neither a restart nor a poll for a fresh
    /// video URL moves. A job found ready at its first poll after the deadline (say, on resume)
    /// is still downloaded. Default 3 h.
    #[serde(with = "secs")]
    pub job_timeout: Duration,
    /// While tasks of a provider wait out a poll's `Retry-After`, the provider's job list is
    /// read this often ([`VideoProvider::poll_many`](crate::VideoProvider::poll_many), a
    /// status sweep), so a job whose own polls are refused is still seen ending. Default
    /// 500 ms. `0` turns sweeps off.
    #[serde(with = "secs")]
    pub sweep_interval: Duration,
    /// A task that waits this long or longer for its next poll lets go of its copy of the
    /// task meanwhile and reads it again from the store when the wait ends: one store read per
    /// such wait, for some 2–3 KB less per task in flight while it waits. On a store that keeps
    /// every task in this process's memory anyway
    /// ([`Store::keeps_tasks_in_memory`](crate::Store::keeps_tasks_in_memory), the memory
    /// store) every wait does so, however short: a read is a copy in memory, and a task in
    /// flight is then held once instead of twice. Writes made by others meanwhile end the
    /// task's drive as a stale write would. Default 20 s. `0` keeps every task in hand.
    #[serde(with = "secs")]
    pub shelve_after: Duration,
}

impl Default for PollPolicy {
    fn default() -> Self {
        Self {
            initial: Duration::from_secs(2),
            min: Duration::from_secs(1),
            max: Duration::from_secs(30),
            growth: 1.5,
            jitter: 0.05,
            job_timeout: Duration::from_secs(3 * 3600),
            sweep_interval: Duration::from_millis(500),
            shelve_after: Duration::from_secs(20),
        }
    }
}

impl PollPolicy {
    crate::setters::with_setters!(
        with_initial => initial: Duration,
        with_min => min: Duration,
        with_max => max: Duration,
        with_growth => growth: f64,
        with_jitter => jitter: f64,
        with_job_timeout => job_timeout: Duration,
        with_sweep_interval => sweep_interval: Duration,
        with_shelve_after => shelve_after: Duration,
    );

    /// The interval before the next poll, given the last interval, how long the job has run and
    /// what the vendor said.
    pub fn next_interval(
        &self,
        last: Duration,
        elapsed: Duration,
        state: &JobState,
        hint: Option<Duration>,
    ) -> Duration {
        self.next_interval_after(last, Duration::ZERO, elapsed, state, hint)
            .0
    }

    /// [`next_interval`](Self::next_interval) for a poll that came `late` after its planned
    /// time (polls refused before it waited out their `Retry-After`), with `last` the interval
    /// that was planned: `(wait, planned)`. An interval grown from `last` counts from the
    /// planned time, so one refusal delays one poll and not every poll after it: the wait is
    /// the grown interval less `late` (never below `min` or the vendor's hint), and the grown
    /// interval is the plan the next one grows from. An interval aimed at a predicted end
    /// counts from now, as always: then both are the same.
    pub(crate) fn next_interval_after(
        &self,
        last: Duration,
        late: Duration,
        elapsed: Duration,
        state: &JobState,
        hint: Option<Duration>,
    ) -> (Duration, Duration) {
        // A job found within `min` of its end (a poll aimed at its end came a little early, or
        // the first progress read came late) is polled again at that end, not `min` later —
        // but not sooner than a quarter of `min`, and never twice in a row.
        let mut floor = self.min;
        // The time left as predicted from the vendor's ETA or progress, if it tells.
        let predicted = match state {
            JobState::Running { eta: Some(eta), .. } => Some(*eta),
            JobState::Running {
                progress: Some(p),
                eta: None,
            } if (1..100).contains(p) => {
                // Vendors round progress down: a job at p % is p to p + 1 % done.
                let p = f64::from(*p);
                let latest = elapsed.mul_f64((100.0 - p) / p);
                let earliest = elapsed.mul_f64((99.0 - p) / (p + 1.0));
                if latest.saturating_sub(earliest) > self.min {
                    // Once a percent of the job takes no longer than `min`, a later read
                    // narrows the window to `min`: keep `min` for that read and the poll
                    // aimed by it. (A longer job's window never narrows that far.)
                    let lead = if elapsed.div_f64(p) <= self.min {
                        self.min
                    } else {
                        Duration::ZERO
                    };
                    Some(earliest.saturating_sub(lead))
                } else {
                    if latest < self.min && last >= self.min {
                        floor = self.min / 4;
                    }
                    Some(latest)
                }
            }
            _ => None,
        };
        // Aimed at a predicted end unless the vendor's hint asks for longer.
        let (base, aimed) = match (predicted, hint) {
            (Some(t), Some(h)) if h > t => (h, false),
            (Some(t), _) => (t, true),
            (None, h) => {
                let grown = last.mul_f64(self.growth.max(1.0));
                (h.map_or(grown, |h| grown.max(h)), false)
            }
        };
        let ceiling = self.max.max(self.min);
        let clamped = base.clamp(floor, ceiling);
        let j = self.jitter.clamp(0.0, 0.5);
        let planned = if j == 0.0 {
            clamped
        } else if aimed {
            clamped.saturating_add(self.min.mul_f64(fastrand::f64() * j))
        } else {
            clamped.mul_f64(1.0 + fastrand::f64() * j)
        };
        if predicted.is_some() {
            return (planned, planned);
        }
        let wait = planned
            .saturating_sub(late)
            .max(floor)
            .max(hint.map_or(Duration::ZERO, |h| h.min(ceiling)));
        (wait, planned)
    }
}

/// Orchestrator settings. Every field has a default.
///
/// `#[non_exhaustive]`: start from [`Default`] and chain the `with_*` setters (or assign the
/// public fields), so that a new setting is not a breaking change. The same holds for
/// [`PollPolicy`], [`ReconcilePolicy`], [`LeasePolicy`] and [`CallbackConfig`].
///
/// ```
/// use std::time::Duration;
/// use cineflow_core::orchestrator::{
///     CallbackConfig, LeasePolicy, OrchestratorConfig, PollPolicy, ReconcilePolicy,
/// };
/// use cineflow_core::ProviderId;
///
/// let config = OrchestratorConfig::default()
///     .with_max_concurrency(8)
///     .with_max_attempts(2)
///     .with_poll(
///         PollPolicy::default()
///             .with_initial(Duration::from_secs(5))
///             .with_max(Duration::from_secs(20))
///             .with_jitter(0.0),
///     )
///     .with_reconcile(ReconcilePolicy::default().with_wait(Duration::from_secs(30)))
///     .with_lease(LeasePolicy::default().with_owner("render-box-1"))
///     .with_callbacks(
///         CallbackConfig::default()
///             .with_public_base_url("https://cineflow.example/api/v1")
///             .with_providers(vec![ProviderId::new("seedance")?]),
///     );
/// assert_eq!(config.max_concurrency, 8);
/// assert_eq!(config.poll.initial, Duration::from_secs(5));
/// assert_eq!(config.lease.owner.as_deref(), Some("render-box-1"));
/// assert!(config.callbacks.enabled_for(&ProviderId::new("seedance")?));
///
/// // Public fields can still be assigned one by one.
/// let mut config = config;
/// config.download_tries = 2;
/// # Ok::<(), cineflow_core::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
#[non_exhaustive]
pub struct OrchestratorConfig {
    /// Tasks in flight at once across all runs. Default 64.
    pub max_concurrency: usize,
    /// Polling.
    pub poll: PollPolicy,
    /// Submits per task before giving up (only after refused submits or failed jobs; an
    /// ambiguous submit is never repeated). Default 3. A submit refused with a rate limit
    /// (429, no job created) is kept in the task's history but does not count here: those are
    /// bounded by [`max_rate_limited_submits`](Self::max_rate_limited_submits).
    pub max_attempts: u32,
    /// Submits of one task refused with a rate limit (429, no job created) before the task
    /// fails `rate_limited`, so a vendor that always answers 429 cannot keep a task forever.
    /// Between two of them the task waits the vendor's `Retry-After` (else the retry backoff).
    /// Default 100.
    pub max_rate_limited_submits: u32,
    /// Consecutive retryable poll errors tolerated. Default 20. Polls answered with a rate
    /// limit (429) do not count: the poll waits the vendor's `Retry-After` and tries again,
    /// within [`PollPolicy::job_timeout`].
    pub max_poll_errors: u32,
    /// Download tries per attempt. Default 4.
    pub download_tries: u32,
    /// Fresh video URLs asked for per attempt when the vendor's URL has expired or its CDN
    /// refuses it (403/404 on a URL with a known expiry). Past this many, or past the job
    /// deadline ([`PollPolicy::job_timeout`]), the task ends `download_failed`, retryable,
    /// with the vendor's URL kept. Default 3.
    pub max_url_refreshes: u32,
    /// Longest wait for the next byte of a video body: a body that sends nothing for this
    /// long fails as a retryable download error (then counts as one of `download_tries`),
    /// however long the whole download may take. Zero turns the check off. Default 60 s.
    #[serde(with = "secs")]
    pub download_idle_timeout: Duration,
    /// First retry delay (polls, downloads, refused submits). Default 1 s.
    #[serde(with = "secs")]
    pub retry_min_delay: Duration,
    /// Longest retry delay. Default 60 s.
    #[serde(with = "secs")]
    pub retry_max_delay: Duration,
    /// Largest video accepted, in bytes. Default 4 GiB.
    pub max_video_bytes: u64,
    /// Event buffer per subscriber. Default 4096.
    pub event_capacity: usize,
    /// Looking up the vendor job of an ambiguous submit.
    pub reconcile: ReconcilePolicy,
    /// How runs started here own their tasks (leases shared with other processes).
    pub lease: LeasePolicy,
    /// Vendor callbacks (webhooks): off unless a public base URL is set.
    pub callbacks: CallbackConfig,
}

/// Vendor callbacks (webhooks): a vendor that calls back wakes its task's poll loop at once, and
/// polling becomes a safety net.
///
/// Nothing changes without a `public_base_url`. With one, each submit to a provider listed in
/// `providers` whose adapter takes callbacks
/// ([`VideoProvider::callback_scheme`](crate::VideoProvider::callback_scheme)) carries a
/// per-attempt callback URL (`{public_base_url}/callbacks/{provider}?cf_attempt=…&cf_token=…`,
/// [`CallbackUrl`](crate::callback::CallbackUrl)) whose random token is stored hashed on the
/// attempt; the server routing that path hands each request to
/// [`Orchestrator::handle_callback`](crate::Orchestrator::handle_callback). The jobs of such
/// attempts are polled first `first_poll` after their submit, then at the usual
/// [`PollPolicy`] intervals lengthened by `grace`: a lost callback delays a job's end by at
/// most about that much.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
#[non_exhaustive]
pub struct CallbackConfig {
    /// The public http(s) URL the server's callback route lives under, without the
    /// `/callbacks/{provider}` part (e.g. `https://cineflow.example/api/v1`). Default: none
    /// (callbacks off).
    pub public_base_url: Option<String>,
    /// The providers whose submits ask for callbacks (opt-in, by provider id). Default: none.
    pub providers: Vec<ProviderId>,
    /// The first poll of a job that will call back, after its submit. Default 60 s.
    #[serde(with = "secs")]
    pub first_poll: Duration,
    /// Added to every later poll interval of a job that will call back. Default 30 s.
    #[serde(with = "secs")]
    pub grace: Duration,
    /// Whether the claims of unsigned callbacks are confirmed in batches from the provider's
    /// job list ([`VideoProvider::poll_many`](crate::VideoProvider::poll_many)), as many jobs
    /// as end together in one read, instead of one poll per job. A provider without a list,
    /// a job the list does not show and a failed read fall back to the job's own poll.
    /// Default `true`.
    pub confirm_in_batches: bool,
}

impl Default for CallbackConfig {
    fn default() -> Self {
        Self {
            public_base_url: None,
            providers: Vec::new(),
            first_poll: Duration::from_secs(60),
            grace: Duration::from_secs(30),
            confirm_in_batches: true,
        }
    }
}

impl CallbackConfig {
    crate::setters::with_setters!(
        with_public_base_url => public_base_url?: impl Into<String>,
        with_providers => providers: Vec<ProviderId>,
        with_first_poll => first_poll: Duration,
        with_grace => grace: Duration,
        with_confirm_in_batches => confirm_in_batches: bool,
    );

    /// Whether callbacks are on for `provider` (a base URL is set and the provider opted in).
    pub fn enabled_for(&self, provider: &ProviderId) -> bool {
        self.public_base_url.is_some() && self.providers.contains(provider)
    }

    /// Checks the base URL.
    pub(crate) fn validate(&self) -> crate::error::Result<()> {
        if let Some(base) = &self.public_base_url {
            crate::callback::check_base(base)?;
        }
        Ok(())
    }
}

/// How [`start`](super::Orchestrator::start), [`resume`](super::Orchestrator::resume) and
/// [`retry_task`](super::Orchestrator::retry_task) own the tasks they drive.
///
/// Every task driven by an orchestrator is claimed with a lease in the store (the same leases a
/// [worker](super::Orchestrator::worker) takes), renewed every third of `ttl` while the task
/// runs, released when it ends, and every write of the task is fenced by the lease token. A task
/// whose lease another owner holds (another process on the same database, or a worker) is not
/// driven here: the run is followed through the store, every `follow_interval`, until the owner
/// finishes the task or its lease lapses (the owner died) and the task is claimed here.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
#[non_exhaustive]
pub struct LeasePolicy {
    /// The owner written on this orchestrator's leases; must be unique among the processes
    /// sharing a store. Default: none, a random `orchestrator-<uuid>` per orchestrator.
    pub owner: Option<String>,
    /// Lease length; renewed every third of it. A dead process's tasks are taken over this long
    /// after its last renewal. Default 30 s.
    #[serde(with = "secs")]
    pub ttl: Duration,
    /// How often a run with tasks owned elsewhere is re-read from the store (to take over lapsed
    /// leases and to notice the run's end). Default 1 s.
    #[serde(with = "secs")]
    pub follow_interval: Duration,
}

impl LeasePolicy {
    crate::setters::with_setters!(
        with_owner => owner?: impl Into<String>,
        with_ttl => ttl: Duration,
        with_follow_interval => follow_interval: Duration,
    );
}

impl Default for LeasePolicy {
    fn default() -> Self {
        Self {
            owner: None,
            ttl: Duration::from_secs(30),
            follow_interval: Duration::from_secs(1),
        }
    }
}

/// How the orchestrator looks for the vendor job an ambiguous submit may have created
/// ([`VideoProvider::find_jobs`](crate::VideoProvider::find_jobs)).
///
/// The lookup repeats every `interval` while nothing matches (vendors list new jobs late), for
/// at most `wait`; exactly one match is adopted, two or more end the search at once. The window
/// searched runs from the attempt's start to the lookup, widened by `clock_skew` on both sides
/// because the vendor's clock is not ours.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
#[non_exhaustive]
pub struct ReconcilePolicy {
    /// Longest search before giving up (the task then becomes `interrupted`) — or, for a
    /// provider whose lookup is exact ([`Capabilities::exact_lookup`](crate::Capabilities::exact_lookup)),
    /// before sending the attempt again once every lookup answered nothing. Default 60 s.
    #[serde(with = "secs")]
    pub wait: Duration,
    /// Pause between lookups. Default 5 s.
    #[serde(with = "secs")]
    pub interval: Duration,
    /// Allowed difference between our clock and the vendor's. Default 120 s.
    #[serde(with = "secs")]
    pub clock_skew: Duration,
}

impl ReconcilePolicy {
    crate::setters::with_setters!(
        with_wait => wait: Duration,
        with_interval => interval: Duration,
        with_clock_skew => clock_skew: Duration,
    );
}

impl Default for ReconcilePolicy {
    fn default() -> Self {
        Self {
            wait: Duration::from_secs(60),
            interval: Duration::from_secs(5),
            clock_skew: Duration::from_secs(120),
        }
    }
}

/// What the configuration errors call it.
const WHAT: &str = "orchestrator configuration";

impl OrchestratorConfig {
    crate::config_file::file_methods!(WHAT);

    crate::setters::with_setters!(
        with_max_concurrency => max_concurrency: usize,
        with_poll => poll: PollPolicy,
        with_max_attempts => max_attempts: u32,
        with_max_rate_limited_submits => max_rate_limited_submits: u32,
        with_max_poll_errors => max_poll_errors: u32,
        with_download_tries => download_tries: u32,
        with_max_url_refreshes => max_url_refreshes: u32,
        with_download_idle_timeout => download_idle_timeout: Duration,
        with_retry_min_delay => retry_min_delay: Duration,
        with_retry_max_delay => retry_max_delay: Duration,
        with_max_video_bytes => max_video_bytes: u64,
        with_event_capacity => event_capacity: usize,
        with_reconcile => reconcile: ReconcilePolicy,
        with_lease => lease: LeasePolicy,
        with_callbacks => callbacks: CallbackConfig,
    );
}

impl Default for OrchestratorConfig {
    fn default() -> Self {
        Self {
            max_concurrency: 64,
            poll: PollPolicy::default(),
            max_attempts: 3,
            max_rate_limited_submits: 100,
            max_poll_errors: 20,
            download_tries: 4,
            max_url_refreshes: 3,
            download_idle_timeout: Duration::from_secs(60),
            retry_min_delay: Duration::from_secs(1),
            retry_max_delay: Duration::from_secs(60),
            max_video_bytes: 4 << 30,
            event_capacity: 4096,
            reconcile: ReconcilePolicy::default(),
            lease: LeasePolicy::default(),
            callbacks: CallbackConfig::default(),
        }
    }
}

mod secs {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_f64(d.as_secs_f64())
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        Duration::try_from_secs_f64(f64::deserialize(d)?).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_config_written_before_the_download_settings_existed_loads_with_their_defaults() {
        let old = r#"{"max_concurrency":8,"download_tries":2,"poll":{"job_timeout":60.0}}"#;
        let c: OrchestratorConfig = serde_json::from_str(old).unwrap();
        assert_eq!(c.max_url_refreshes, 3);
        assert_eq!(c.download_idle_timeout, Duration::from_secs(60));
        assert_eq!(c.download_tries, 2);
        assert_eq!(c.poll.job_timeout, Duration::from_secs(60));
    }

    #[test]
    fn fractional_durations_round_trip_through_toml_as_seconds() {
        let mut c = OrchestratorConfig::default();
        c.poll.initial = Duration::from_millis(1500);
        c.poll.job_timeout = Duration::from_secs(3 * 3600);
        c.lease.ttl = Duration::from_millis(250);
        c.lease.owner = Some("host-1".into());
        let toml = c.to_toml().unwrap();
        assert!(toml.contains("initial = 1.5"), "{toml}");
        assert_eq!(OrchestratorConfig::from_toml(&toml).unwrap(), c);
    }

    #[test]
    fn a_toml_orchestrator_config_loads_like_the_same_json() {
        let toml = "max_concurrency = 8\n[poll]\njob_timeout = 60\n[lease]\nttl = 9.5\n";
        let json = r#"{"max_concurrency":8,"poll":{"job_timeout":60.0},"lease":{"ttl":9.5}}"#;
        let c = OrchestratorConfig::from_toml(toml).unwrap();
        assert_eq!(c, OrchestratorConfig::from_json(json).unwrap());
        assert_eq!(c.poll.job_timeout, Duration::from_secs(60));
        assert_eq!(c.lease.ttl, Duration::from_millis(9500));
        let err = OrchestratorConfig::from_toml("[poll]\njob_timeout = -1.0\n").unwrap_err();
        assert!(err.to_string().contains("job_timeout = -1.0"), "{err}");
        let err = OrchestratorConfig::from_str_for_path(json, "orchestrator.yml").unwrap_err();
        assert!(err.to_string().contains("orchestrator.yml"), "{err}");
    }

    fn policy() -> PollPolicy {
        PollPolicy {
            jitter: 0.0,
            ..PollPolicy::default()
        }
    }

    #[test]
    fn callbacks_are_off_without_a_base_url_and_on_for_opted_in_providers_only() {
        let p = ProviderId::new("kling").unwrap();
        let mut c = CallbackConfig {
            providers: vec![p.clone()],
            ..CallbackConfig::default()
        };
        assert!(!c.enabled_for(&p));
        c.public_base_url = Some("https://cf.example/api/v1".into());
        assert!(c.enabled_for(&p));
        assert!(!c.enabled_for(&ProviderId::new("minimax").unwrap()));
        assert!(c.validate().is_ok());
        c.public_base_url = Some("https://cf.example/api/v1?x=1".into());
        assert!(c.validate().is_err());
        let toml = "[callbacks]\npublic_base_url = \"https://cf.example\"\nproviders = [\"kling\"]\ngrace = 5\n";
        let c = OrchestratorConfig::from_toml(toml).unwrap().callbacks;
        assert!(c.enabled_for(&p));
        assert_eq!(c.grace, Duration::from_secs(5));
        assert_eq!(c.first_poll, Duration::from_secs(60));
    }

    #[test]
    fn a_config_without_lease_settings_loads_with_the_defaults() {
        let c: OrchestratorConfig = serde_json::from_str(r#"{"max_concurrency": 8}"#).unwrap();
        assert_eq!(c.max_concurrency, 8);
        assert_eq!(c.lease, LeasePolicy::default());
        let c: OrchestratorConfig =
            serde_json::from_str(r#"{"lease": {"owner": "host-1", "ttl": 9}}"#).unwrap();
        assert_eq!(c.lease.owner.as_deref(), Some("host-1"));
        assert_eq!(c.lease.ttl, Duration::from_secs(9));
        assert_eq!(c.lease.follow_interval, Duration::from_secs(1));
    }

    /// The interval after a 2 s one for a job running for 30 s at `progress`, with the vendor's
    /// `eta` and `hint`.
    fn running_for_30s(
        p: &PollPolicy,
        progress: Option<u8>,
        eta: Option<Duration>,
        hint: Option<Duration>,
    ) -> Duration {
        let running = JobState::Running { progress, eta };
        p.next_interval(
            Duration::from_secs(2),
            Duration::from_secs(30),
            &running,
            hint,
        )
    }

    #[test]
    fn the_vendor_hint_is_a_floor_within_bounds() {
        let p = policy();
        let d = p.next_interval(
            Duration::from_secs(4),
            Duration::ZERO,
            &JobState::Queued,
            Some(Duration::from_secs(7)),
        );
        assert_eq!(d, Duration::from_secs(7));
        let d = p.next_interval(
            Duration::from_secs(4),
            Duration::ZERO,
            &JobState::Queued,
            Some(Duration::from_secs(600)),
        );
        assert_eq!(d, p.max);
        // A short hint does not make a long wait short: 75 % after 30 s leaves about 10 s.
        let d = running_for_30s(&p, Some(75), None, Some(Duration::from_secs(1)));
        assert_eq!(d, Duration::from_secs(10));
    }

    #[test]
    fn a_vendor_eta_is_used_as_the_time_left() {
        let p = policy();
        let d = running_for_30s(&p, Some(10), Some(Duration::from_secs(12)), None);
        assert_eq!(d, Duration::from_secs(12));
    }

    #[test]
    fn progress_extrapolates_the_time_left() {
        let p = policy();
        // 75 % after 30 s: 75–76 % done, so 9.5–10 s left, a window narrower than a poll
        // interval: aimed at its end.
        let d = running_for_30s(&p, Some(75), None, None);
        assert_eq!(d, Duration::from_secs(10));
    }

    #[test]
    fn without_information_the_interval_grows_to_the_cap() {
        let p = policy();
        let mut d = p.initial;
        for _ in 0..20 {
            d = p.next_interval(d, Duration::ZERO, &JobState::Queued, None);
        }
        assert_eq!(d, p.max);
    }

    #[test]
    fn a_late_poll_shortens_only_a_grown_interval_and_never_below_the_vendors_hint() {
        let p = policy();
        let (s, queued) = (Duration::from_secs, &JobState::Queued);
        assert_eq!(
            p.next_interval_after(s(2), s(1), s(3), queued, None),
            (s(2), s(3))
        );
        assert_eq!(
            p.next_interval_after(s(2), s(1), s(3), queued, Some(s(3))),
            (s(3), s(3))
        );
        // Aimed at the end 50 % allows: from now, late or not.
        let half = JobState::Running {
            progress: Some(50),
            eta: None,
        };
        let aimed = p.next_interval(s(2), s(20), &half, None);
        assert_eq!(
            p.next_interval_after(s(2), s(9), s(20), &half, None),
            (aimed, aimed)
        );
    }

    #[test]
    fn jitter_only_lengthens_and_stays_within_its_fraction() {
        let p = PollPolicy {
            jitter: 0.1,
            growth: 1.0,
            ..PollPolicy::default()
        };
        let mut lengthened = 0;
        for _ in 0..1000 {
            let d = p.next_interval(
                Duration::from_secs(10),
                Duration::ZERO,
                &JobState::Queued,
                Some(Duration::from_secs(10)),
            );
            assert!(
                d >= Duration::from_secs(10) && d <= Duration::from_secs(11),
                "{d:?}"
            );
            lengthened += usize::from(d > Duration::from_millis(10_050));
        }
        assert!(lengthened > 500, "only {lengthened} of 1000 were jittered");
    }

    /// Polls a simulated job like the orchestrator does: `duration` long, queued (no progress)
    /// for its first 10 %, then running with progress rounded down, as vendors (and the fake
    /// vendor of cineflow-testkit) report it. `gap` is how long before our clock starts the job
    /// began at the vendor (the submit's answer and its write). Returns the number of polls and
    /// how long after the job's end the last one came.
    fn simulate(p: &PollPolicy, duration: f64, gap: f64, hint: Option<Duration>) -> (u32, f64) {
        let mut elapsed = Duration::ZERO;
        let mut interval = p.initial;
        let mut polls = 0;
        loop {
            elapsed += interval;
            polls += 1;
            let at_vendor = elapsed.as_secs_f64() + gap;
            if at_vendor >= duration {
                return (polls, at_vendor - duration);
            }
            let share = at_vendor / duration;
            let state = if share < 0.1 {
                JobState::Queued
            } else {
                JobState::Running {
                    progress: Some(((share * 100.0).floor() as u8).clamp(1, 99)),
                    eta: None,
                }
            };
            interval = p.next_interval(interval, elapsed, &state, hint);
        }
    }

    #[test]
    fn a_sixty_second_job_is_polled_at_most_8_times_and_noticed_within_3_seconds() {
        let p = PollPolicy::default();
        for hint in [None, Some(Duration::from_secs(1))] {
            for gap in [0.0, 0.05, 0.5, 2.0] {
                let mut lag_sum = 0.0;
                for _ in 0..200 {
                    let (polls, lag) = simulate(&p, 60.0, gap, hint);
                    assert!(polls <= 8, "{polls} polls (gap {gap}, hint {hint:?})");
                    lag_sum += lag;
                }
                let mean = lag_sum / 200.0;
                assert!(mean <= 3.0, "mean lag {mean} (gap {gap}, hint {hint:?})");
            }
        }
    }

    /// The interval after a job read at 16 % once it has run `elapsed`, and the earliest end
    /// that allows (it is 16–17 % done).
    fn read_at_16_percent(p: &PollPolicy, elapsed: f64) -> (Duration, Duration) {
        let running = JobState::Running {
            progress: Some(16),
            eta: None,
        };
        let d = p.next_interval(
            Duration::from_secs(3),
            Duration::from_secs_f64(elapsed),
            &running,
            None,
        );
        (d, Duration::from_secs_f64(elapsed * 100.0 / 17.0 - elapsed))
    }

    #[test]
    fn a_poll_aimed_by_coarse_progress_comes_a_poll_interval_before_the_earliest_end_it_allows() {
        let p = policy();
        // 16 % after 5 s: the job ends 24.4–26.25 s from now, a window wider than a poll
        // interval, and a percent takes 0.3 s: aimed 1 s before its start, so that the poll
        // finds the job with a second or more left.
        let (d, earliest) = read_at_16_percent(&p, 5.0);
        let aim = earliest - p.min;
        assert!(d <= aim, "{d:?} is past {aim:?}");
        assert!(d >= aim - Duration::from_millis(1), "{d:?}");
    }

    #[test]
    fn a_long_job_read_at_coarse_progress_is_polled_at_the_earliest_end_it_allows() {
        // 16 % after 50 s: a percent takes 3 s, so no later read narrows the window to a
        // poll interval; a poll a second early would only be one more. (A longest interval
        // beyond the 244 s it aims at.)
        let p = PollPolicy {
            max: Duration::from_secs(600),
            ..policy()
        };
        let (d, earliest) = read_at_16_percent(&p, 50.0);
        assert!(d <= earliest, "{d:?} is past the earliest end {earliest:?}");
        assert!(d >= earliest - Duration::from_millis(1), "{d:?}");
    }

    #[test]
    fn a_poll_aimed_at_a_predicted_end_is_lengthened_by_at_most_a_share_of_the_minimum() {
        let p = PollPolicy {
            jitter: 0.1,
            ..PollPolicy::default()
        };
        let mut lengthened = 0;
        for _ in 0..1000 {
            // 75 % after 30 s: aimed at 10 s from now; the ETA of 20 s likewise.
            for (progress, eta, aim) in [
                (Some(75), None, 10),
                (None, Some(Duration::from_secs(20)), 20),
            ] {
                let running = JobState::Running { progress, eta };
                let d = p.next_interval(
                    Duration::from_secs(2),
                    Duration::from_secs(30),
                    &running,
                    None,
                );
                let aim = Duration::from_secs(aim);
                assert!(d >= aim && d <= aim + p.min.mul_f64(0.1), "{d:?}");
                lengthened += usize::from(d > aim + Duration::from_millis(5));
            }
        }
        assert!(lengthened > 1000, "only {lengthened} of 2000 were jittered");
    }

    /// 200 simulated jobs of `duration` started `gap` before our clock: the most polls of
    /// one, the mean polls, the mean and the longest detection lag.
    fn simulate_200(p: &PollPolicy, duration: f64, gap: f64) -> (u32, f64, f64, f64) {
        let (mut most, mut polls_sum, mut lag_sum, mut lag_max) = (0, 0, 0.0, 0.0f64);
        for _ in 0..200 {
            let (polls, lag) = simulate(p, duration, gap, None);
            most = most.max(polls);
            polls_sum += polls;
            lag_sum += lag;
            lag_max = lag_max.max(lag);
        }
        (most, f64::from(polls_sum) / 200.0, lag_sum / 200.0, lag_max)
    }

    #[test]
    fn a_thirty_second_job_is_noticed_within_a_second_on_average_in_at_most_5_polls() {
        for gap in [0.0, 0.05, 0.5, 1.0] {
            let (most, _, mean, max) = simulate_200(&PollPolicy::default(), 30.0, gap);
            eprintln!("gap {gap}: mean lag {mean:.2}, max {max:.2}");
            assert!(most <= 5, "{most} polls (gap {gap})");
            // Aimed at the latest end the progress allows: 1.8 s on average, 3.2 s at most.
            assert!(mean <= 1.0, "mean lag {mean} (gap {gap})");
            assert!(max <= 2.0, "max lag {max} (gap {gap})");
        }
    }

    #[test]
    fn thirty_second_jobs_of_spread_lengths_are_noticed_within_a_quarter_second_on_average() {
        // Jobs of 24–36 s (the load harness's 30 s ± 20 %), our clock started when the vendor
        // answered the submit: aimed at the window's start with the full jitter, the poll
        // found a quarter of them with less than a second left (0.46 s on average).
        let p = PollPolicy::default();
        let (mut polls, mut lag) = (0, 0.0);
        for i in 0..400 {
            let duration = 24.0 + 12.0 * f64::from(i) / 400.0;
            let (n, l) = simulate(&p, duration, 0.0, None);
            assert!(n <= 5, "{n} polls for a {duration} s job");
            polls += n;
            lag += l;
        }
        let (polls, lag) = (f64::from(polls) / 400.0, lag / 400.0);
        eprintln!("24-36 s: mean lag {lag:.3}, {polls:.2} polls");
        assert!(lag <= 0.25, "mean lag {lag}");
        assert!(polls <= 4.1, "{polls} polls on average");
    }

    #[test]
    fn a_job_found_just_short_of_its_end_is_polled_again_at_it_once() {
        let p = policy();
        // 98 % after 5 s: it ends within 0.1 s. After a 3 s interval, a quarter of `min`.
        let running = JobState::Running {
            progress: Some(98),
            eta: None,
        };
        let d = p.next_interval(
            Duration::from_secs(3),
            Duration::from_secs(5),
            &running,
            None,
        );
        assert_eq!(d, p.min / 4);
        // Found unfinished again right after: `min`, not another short one.
        let d = p.next_interval(d, Duration::from_millis(5_250), &running, None);
        assert_eq!(d, p.min);
        // A vendor asking for more time between polls gets it.
        let d = p.next_interval(
            Duration::from_secs(3),
            Duration::from_secs(5),
            &running,
            Some(Duration::from_secs(2)),
        );
        assert_eq!(d, Duration::from_secs(2));
    }

    #[test]
    fn a_five_second_job_whose_clock_started_late_is_noticed_within_a_third_of_a_second() {
        // Our clock started a little after the vendor made the job (the process was busy when
        // the submit's answer came): the poll aimed at the end comes a little early.
        for gap in [0.02, 0.05, 0.1] {
            let (most, _, _, worst) = simulate_200(&PollPolicy::default(), 5.0, gap);
            eprintln!("5 s, gap {gap}: max lag {worst:.3}");
            assert!(most <= 3, "{most} polls (gap {gap})");
            assert!(worst <= 0.33, "max lag {worst} (gap {gap})");
        }
    }

    #[test]
    fn a_five_minute_job_is_polled_at_most_18_times_and_noticed_within_a_second_on_average() {
        for gap in [0.0, 0.05, 0.5, 1.0] {
            let (most, polls, mean, _) = simulate_200(&PollPolicy::default(), 300.0, gap);
            eprintln!("300 s, gap {gap}: mean lag {mean:.2}, {polls:.1} polls");
            assert!(most <= 18, "{most} polls (gap {gap})");
            // Aimed at the latest end the progress allows: 1.8 s in 15 polls.
            assert!(mean <= 1.0, "mean lag {mean} (gap {gap})");
            assert!(polls <= 17.5, "{polls} polls on average (gap {gap})");
        }
    }

    #[test]
    fn a_five_second_job_is_noticed_within_a_second() {
        let p = PollPolicy::default();
        for gap in [0.0, 0.05, 0.3] {
            let mut lag_sum = 0.0;
            for _ in 0..200 {
                let (polls, lag) = simulate(&p, 5.0, gap, None);
                assert!(polls <= 4, "{polls} polls (gap {gap})");
                lag_sum += lag;
            }
            let mean = lag_sum / 200.0;
            assert!(mean <= 1.0, "mean lag {mean} (gap {gap})");
        }
    }
}
