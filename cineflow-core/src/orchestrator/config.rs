//! Orchestrator settings.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::provider::JobState;

/// How often to poll a vendor job.
///
/// The next interval is, in order of preference: the vendor's `poll_after` hint; the time left
/// extrapolated from progress (or the vendor's ETA); otherwise the previous interval grown by
/// `growth`. The result is clamped to `[min, max]` and jittered by ±`jitter`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct PollPolicy {
    /// Wait before the first poll. Default 2 s.
    #[serde(with = "secs")]
    pub initial: Duration,
    /// Shortest interval. Default 1 s.
    #[serde(with = "secs")]
    pub min: Duration,
    /// Longest interval. Default 30 s.
    #[serde(with = "secs")]
    pub max: Duration,
    /// Growth factor without better information. Default 1.5.
    pub growth: f64,
    /// Relative jitter, 0–0.5. Default 0.1.
    pub jitter: f64,
    /// Give up on a job after this long. Default 3 h.
    #[serde(with = "secs")]
    pub job_timeout: Duration,
}

impl Default for PollPolicy {
    fn default() -> Self {
        Self {
            initial: Duration::from_secs(2),
            min: Duration::from_secs(1),
            max: Duration::from_secs(30),
            growth: 1.5,
            jitter: 0.1,
            job_timeout: Duration::from_secs(3 * 3600),
        }
    }
}

impl PollPolicy {
    /// The interval before the next poll, given the last interval, how long the job has run and
    /// what the vendor said.
    pub fn next_interval(
        &self,
        last: Duration,
        elapsed: Duration,
        state: &JobState,
        hint: Option<Duration>,
    ) -> Duration {
        let base = if let Some(h) = hint {
            h
        } else if let JobState::Running { progress, eta } = state {
            match (eta, progress) {
                (Some(eta), _) => *eta,
                (None, Some(p)) if (1..100).contains(p) => {
                    let p = f64::from(*p);
                    elapsed.mul_f64((100.0 - p) / p)
                }
                _ => last.mul_f64(self.growth.max(1.0)),
            }
        } else {
            last.mul_f64(self.growth.max(1.0))
        };
        let clamped = base.clamp(self.min, self.max.max(self.min));
        let j = self.jitter.clamp(0.0, 0.5);
        if j == 0.0 {
            clamped
        } else {
            clamped.mul_f64(1.0 + (fastrand::f64() * 2.0 - 1.0) * j)
        }
    }
}

/// Orchestrator settings. Every field has a default.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct OrchestratorConfig {
    /// Tasks in flight at once across all runs. Default 64.
    pub max_concurrency: usize,
    /// Polling.
    pub poll: PollPolicy,
    /// Submits per task before giving up (only after refused submits or failed jobs; an
    /// ambiguous submit is never repeated). Default 3.
    pub max_attempts: u32,
    /// Consecutive retryable poll errors tolerated. Default 20.
    pub max_poll_errors: u32,
    /// Download tries per attempt. Default 4.
    pub download_tries: u32,
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
pub struct ReconcilePolicy {
    /// Longest search before giving up (the task then becomes `interrupted`). Default 60 s.
    #[serde(with = "secs")]
    pub wait: Duration,
    /// Pause between lookups. Default 5 s.
    #[serde(with = "secs")]
    pub interval: Duration,
    /// Allowed difference between our clock and the vendor's. Default 120 s.
    #[serde(with = "secs")]
    pub clock_skew: Duration,
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

impl Default for OrchestratorConfig {
    fn default() -> Self {
        Self {
            max_concurrency: 64,
            poll: PollPolicy::default(),
            max_attempts: 3,
            max_poll_errors: 20,
            download_tries: 4,
            retry_min_delay: Duration::from_secs(1),
            retry_max_delay: Duration::from_secs(60),
            max_video_bytes: 4 << 30,
            event_capacity: 4096,
            reconcile: ReconcilePolicy::default(),
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

    fn policy() -> PollPolicy {
        PollPolicy {
            jitter: 0.0,
            ..PollPolicy::default()
        }
    }

    #[test]
    fn the_vendor_hint_wins_within_bounds() {
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
    }

    #[test]
    fn progress_extrapolates_the_time_left() {
        let p = policy();
        let running = JobState::Running {
            progress: Some(75),
            eta: None,
        };
        // 75 % after 30 s: about 10 s left.
        let d = p.next_interval(
            Duration::from_secs(2),
            Duration::from_secs(30),
            &running,
            None,
        );
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
    fn jitter_stays_within_its_fraction() {
        let p = PollPolicy::default();
        for _ in 0..1000 {
            let d = p.next_interval(
                Duration::from_secs(10),
                Duration::ZERO,
                &JobState::Queued,
                Some(Duration::from_secs(10)),
            );
            assert!(
                d >= Duration::from_secs(9) && d <= Duration::from_secs(11),
                "{d:?}"
            );
        }
    }
}
