//! Per-provider health (a breaker with exponential cooldown and a half-open probe), the
//! `Retry-After` gate, the requests-per-minute limiter, the cap on calls in progress, the
//! adaptive cap on submits in progress and the in-flight count.
//!
//! Rate limits (429) are not failures of the provider: they neither count toward the breaker
//! nor stop the provider's other calls for their `Retry-After` (the call that got one waits
//! it out itself); they lower the adaptive cap on submits instead
//! ([`AdaptiveLimit`](super::adaptive::AdaptiveLimit)). A `Retry-After` on any other error
//! (a 503 in maintenance) still holds back every request to the provider.

use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use governor::clock::Clock;
use governor::middleware::NoOpMiddleware;
use governor::state::{InMemoryState, NotKeyed};
use governor::{Quota, RateLimiter};
use tokio::time::Instant;

use super::adaptive::AdaptiveLimit;
use super::calls::{CallKind, CallSlot, CallSlots};
use super::config::HealthPolicy;
use crate::error_code::ErrorCode;
use crate::provider::ProviderError;

/// A governor clock on tokio's time, so limits obey `tokio::time::pause()` in tests.
#[derive(Debug, Clone)]
pub(crate) struct TokioClock {
    start: Instant,
}

impl Clock for TokioClock {
    type Instant = Duration;

    fn now(&self) -> Duration {
        self.start.elapsed()
    }
}

type Limiter = RateLimiter<NotKeyed, InMemoryState, TokioClock, NoOpMiddleware<Duration>>;

#[derive(Debug, Default)]
struct Breaker {
    consecutive_failures: u32,
    open_until: Option<Instant>,
    cooldown: Duration,
    probing: bool,
    blocked_until: Option<Instant>,
}

/// The live state of one provider.
#[derive(Debug)]
pub(crate) struct Health {
    breaker: Mutex<Breaker>,
    limiter: Option<(Limiter, TokioClock)>,
    calls: Arc<CallSlots>,
    pub(crate) submits: Arc<AdaptiveLimit>,
    pub(crate) in_flight: Arc<AtomicU32>,
    pub(crate) max_in_flight: Option<u32>,
    /// The cap on jobs in flight learned from the vendor's concurrency refusals (0: none).
    learned_in_flight: AtomicU32,
}

/// Why a provider cannot take a new job right now.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Unavailable {
    /// The breaker is open until then.
    Open(Instant),
    /// A half-open probe is in flight.
    Probing,
    /// The vendor asked us to wait until then.
    RetryAfter(Instant),
    /// Its in-flight cap is reached.
    Busy(u32),
}

impl Unavailable {
    pub(crate) fn describe(&self) -> String {
        let now = Instant::now();
        match self {
            Unavailable::Open(t) => format!(
                "breaker open for another {:.1}s",
                t.saturating_duration_since(now).as_secs_f64()
            ),
            Unavailable::Probing => "breaker half-open, a probe is in flight".into(),
            Unavailable::RetryAfter(t) => format!(
                "asked to retry after {:.1}s",
                t.saturating_duration_since(now).as_secs_f64()
            ),
            Unavailable::Busy(n) => format!("{n} jobs in flight (its limit)"),
        }
    }

    /// When it may be available again (None: when a job finishes).
    pub(crate) fn until(&self) -> Option<Instant> {
        match self {
            Unavailable::Open(t) | Unavailable::RetryAfter(t) => Some(*t),
            Unavailable::Probing | Unavailable::Busy(_) => None,
        }
    }
}

/// Errors that say something about the provider's health (not about the request).
pub(crate) fn is_provider_side(code: ErrorCode) -> bool {
    matches!(
        code,
        ErrorCode::RateLimited
            | ErrorCode::ProviderUnavailable
            | ErrorCode::Timeout
            | ErrorCode::Network
            | ErrorCode::Unauthorized
            | ErrorCode::Forbidden
            | ErrorCode::InsufficientCredits
    )
}

impl Health {
    pub(crate) fn new(
        max_in_flight: Option<u32>,
        requests_per_minute: Option<u32>,
        max_concurrent_calls: NonZeroU32,
    ) -> Self {
        let limiter = requests_per_minute.and_then(NonZeroU32::new).map(|rpm| {
            let clock = TokioClock {
                start: Instant::now(),
            };
            (
                RateLimiter::direct_with_clock(
                    Quota::per_minute(rpm).allow_burst(NonZeroU32::MIN),
                    clock.clone(),
                ),
                clock,
            )
        });
        Self {
            breaker: Mutex::new(Breaker::default()),
            limiter,
            calls: Arc::new(CallSlots::new(
                usize::try_from(max_concurrent_calls.get()).unwrap_or(usize::MAX),
            )),
            submits: Arc::new(AdaptiveLimit::new(max_concurrent_calls.get())),
            in_flight: Arc::new(AtomicU32::new(0)),
            max_in_flight,
            learned_in_flight: AtomicU32::new(0),
        }
    }

    fn breaker(&self) -> std::sync::MutexGuard<'_, Breaker> {
        self.breaker.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Whether a new job may start now.
    pub(crate) fn availability(&self) -> Result<(), Unavailable> {
        let now = Instant::now();
        let b = self.breaker();
        if let Some(t) = b.blocked_until.filter(|t| *t > now) {
            return Err(Unavailable::RetryAfter(t));
        }
        if let Some(t) = b.open_until {
            if t > now {
                return Err(Unavailable::Open(t));
            }
            if b.probing {
                return Err(Unavailable::Probing);
            }
        }
        drop(b);
        if let Some(max) = self.in_flight_cap() {
            let n = self.in_flight.load(Ordering::SeqCst);
            if n >= max {
                return Err(Unavailable::Busy(n));
            }
        }
        Ok(())
    }

    /// The cap on jobs in flight now: the configured one, lowered to what the vendor's
    /// concurrency refusals taught.
    pub(crate) fn in_flight_cap(&self) -> Option<u32> {
        let learned = Some(self.learned_in_flight.load(Ordering::SeqCst)).filter(|n| *n > 0);
        match (self.max_in_flight, learned) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// A submit refused because the account runs too many jobs (with this one's in-flight
    /// slot still held): the cap becomes the jobs the provider has besides it (at least 1).
    pub(crate) fn concurrency_refused(&self) {
        let others = self
            .in_flight
            .load(Ordering::SeqCst)
            .saturating_sub(1)
            .max(1);
        let _ = self
            .learned_in_flight
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |now| {
                Some(if now == 0 { others } else { now.min(others) })
            });
    }

    /// A submit accepted: a learned cap rises by one, and is forgotten once it reaches the
    /// configured cap.
    pub(crate) fn submit_accepted(&self) {
        let max = self.max_in_flight;
        let _ = self
            .learned_in_flight
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |now| match now {
                0 => None,
                n if max.is_some_and(|m| n + 1 >= m) => Some(0),
                n => Some(n.saturating_add(1)),
            });
    }

    /// Marks the start of a half-open probe if the breaker is past its cooldown.
    pub(crate) fn begin_call(&self) {
        let mut b = self.breaker();
        if b.open_until.is_some_and(|t| t <= Instant::now()) {
            b.probing = true;
        }
    }

    /// Waits for one of the provider's call slots, handed out by `kind`, then by
    /// arrival ([`CallSlots`]); the call may run while the slot is held.
    pub(crate) async fn call_slot(&self, kind: CallKind) -> CallSlot {
        self.calls.acquire(kind).await
    }

    /// Waits until a call may be made: past any `Retry-After` and within the rate limit.
    pub(crate) async fn gate(&self) {
        loop {
            let blocked = self.breaker().blocked_until;
            match blocked {
                Some(t) if t > Instant::now() => tokio::time::sleep_until(t).await,
                _ => break,
            }
        }
        if let Some((limiter, clock)) = &self.limiter {
            while let Err(not_until) = limiter.check() {
                let wait = not_until.wait_time_from(clock.now());
                tokio::time::sleep(wait.max(Duration::from_millis(1))).await;
            }
        }
    }

    /// Records a call's outcome.
    pub(crate) fn record(&self, policy: &HealthPolicy, outcome: Result<(), &ProviderError>) {
        let now = Instant::now();
        let mut b = self.breaker();
        match outcome {
            Ok(()) => {
                b.consecutive_failures = 0;
                b.open_until = None;
                b.probing = false;
                b.cooldown = Duration::ZERO;
            }
            Err(e) if e.code() == ErrorCode::RateLimited => {
                // Busy, not broken: a half-open probe that got one proved nothing either way
                // (the next pick probes again).
                b.probing = false;
            }
            Err(e) => {
                if let Some(d) = e.retry_after() {
                    let until = now + d;
                    b.blocked_until = Some(b.blocked_until.map_or(until, |t| t.max(until)));
                }
                if !is_provider_side(e.code()) {
                    return;
                }
                b.consecutive_failures += 1;
                let was_probe = b.probing;
                b.probing = false;
                if was_probe || b.consecutive_failures >= policy.failure_threshold.max(1) {
                    let base = Duration::try_from_secs_f64(policy.base_cooldown_secs)
                        .unwrap_or(Duration::from_secs(30));
                    let max = Duration::try_from_secs_f64(policy.max_cooldown_secs)
                        .unwrap_or(Duration::from_secs(600));
                    b.cooldown = if b.cooldown.is_zero() {
                        base
                    } else {
                        (b.cooldown * 2).min(max)
                    };
                    b.open_until = Some(now + b.cooldown);
                }
            }
        }
    }

    /// Whether the breaker is open (for reports).
    pub(crate) fn is_open(&self) -> bool {
        self.breaker()
            .open_until
            .is_some_and(|t| t > Instant::now())
    }
}

/// Holds one in-flight slot of a provider until dropped.
#[derive(Debug)]
pub(crate) struct InFlight {
    counter: Arc<AtomicU32>,
}

impl InFlight {
    pub(crate) fn take(counter: &Arc<AtomicU32>) -> Self {
        counter.fetch_add(1, Ordering::SeqCst);
        Self {
            counter: Arc::clone(counter),
        }
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.counter.fetch_sub(1, Ordering::SeqCst);
    }
}
