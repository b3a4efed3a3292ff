//! The adaptive cap on a provider's submits in progress (AIMD): a rate-limited submit (429)
//! halves it (never below 1), every accepted submit raises it by one (never above the
//! provider's `max_concurrent_calls`).
//!
//! Several submits refused at once are one signal, not many: a 429 lowers the cap only when the
//! refused call started after the last decrease (it saw the lowered cap and was still refused),
//! so a burst of refusals halves the cap once instead of collapsing it to 1.

use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::Notify;

#[derive(Debug)]
struct State {
    /// Submits allowed at once now.
    limit: u32,
    /// Submits in progress.
    in_use: u32,
    /// How many decreases so far; a permit remembers the one it started under.
    epoch: u64,
}

/// A provider's adaptive cap on submits in progress.
#[derive(Debug)]
pub(crate) struct AdaptiveLimit {
    state: Mutex<State>,
    notify: Notify,
    max: u32,
}

/// One submit's place under the cap; dropping it frees the place.
#[derive(Debug)]
pub(crate) struct AdaptivePermit {
    limit: Arc<AdaptiveLimit>,
    epoch: u64,
}

impl AdaptiveLimit {
    /// A cap starting at (and never above) `max` (at least 1).
    pub(crate) fn new(max: u32) -> Self {
        let max = max.max(1);
        Self {
            state: Mutex::new(State {
                limit: max,
                in_use: 0,
                epoch: 0,
            }),
            notify: Notify::new(),
            max,
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Submits allowed at once now.
    pub(crate) fn current(&self) -> u32 {
        self.lock().limit
    }

    /// Waits for a place under the cap.
    pub(crate) async fn acquire(self: &Arc<Self>) -> AdaptivePermit {
        loop {
            let notified = self.notify.notified();
            tokio::pin!(notified);
            // Registered before the check, so a place freed in between is not missed.
            notified.as_mut().enable();
            {
                let mut s = self.lock();
                if s.in_use < s.limit {
                    s.in_use += 1;
                    let room_left = s.in_use < s.limit;
                    let epoch = s.epoch;
                    drop(s);
                    if room_left {
                        // Several places may have opened at once (the cap rose): pass it on.
                        self.notify.notify_one();
                    }
                    return AdaptivePermit {
                        limit: Arc::clone(self),
                        epoch,
                    };
                }
            }
            notified.await;
        }
    }

    fn release(&self) {
        let mut s = self.lock();
        s.in_use = s.in_use.saturating_sub(1);
        let room = s.in_use < s.limit;
        drop(s);
        if room {
            self.notify.notify_one();
        }
    }
}

impl AdaptivePermit {
    /// The submit was accepted: one more submit may run at once.
    pub(crate) fn accepted(self) {
        let mut s = self.limit.lock();
        let raised = s.limit < self.limit.max;
        s.limit = s.limit.saturating_add(1).min(self.limit.max);
        drop(s);
        if raised {
            self.limit.notify.notify_one();
        }
    }

    /// The submit was refused with a rate limit: halve the cap, unless a refusal of a call
    /// started under the same cap already did.
    pub(crate) fn rate_limited(self) {
        let mut s = self.limit.lock();
        if s.epoch == self.epoch {
            s.limit = (s.limit / 2).max(1);
            s.epoch += 1;
        }
    }
}

impl Drop for AdaptivePermit {
    fn drop(&mut self) {
        self.limit.release();
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use std::time::Duration;

    use super::*;

    async fn acquired_within(limit: &Arc<AdaptiveLimit>, d: Duration) -> Option<AdaptivePermit> {
        tokio::time::timeout(d, limit.acquire()).await.ok()
    }

    #[tokio::test]
    async fn an_accepted_submit_under_an_unbounded_cap_leaves_it_at_its_max() {
        // A provider without a call cap (the harness's in-process mock) has u32::MAX.
        let limit = Arc::new(AdaptiveLimit::new(u32::MAX));
        limit.acquire().await.accepted();
        assert_eq!(limit.current(), u32::MAX);
    }

    #[tokio::test(start_paused = true)]
    async fn a_rate_limited_submit_halves_the_cap_and_accepted_ones_raise_it_by_one() {
        let limit = Arc::new(AdaptiveLimit::new(8));
        assert_eq!(limit.current(), 8);
        limit.acquire().await.rate_limited();
        assert_eq!(limit.current(), 4);
        limit.acquire().await.rate_limited();
        limit.acquire().await.rate_limited();
        limit.acquire().await.rate_limited();
        assert_eq!(limit.current(), 1, "halved down to the floor of 1");
        limit.acquire().await.rate_limited();
        assert_eq!(limit.current(), 1, "never below 1");
        for want in 2..=8 {
            limit.acquire().await.accepted();
            assert_eq!(limit.current(), want);
        }
        limit.acquire().await.accepted();
        assert_eq!(limit.current(), 8, "never above the provider's max");
    }

    #[tokio::test(start_paused = true)]
    async fn a_burst_of_refusals_from_calls_started_together_halves_the_cap_once() {
        let limit = Arc::new(AdaptiveLimit::new(8));
        let mut permits = Vec::new();
        for _ in 0..8 {
            permits.push(limit.acquire().await);
        }
        for p in permits {
            p.rate_limited();
        }
        assert_eq!(limit.current(), 4);
        // A call started under the lowered cap and refused again lowers it again.
        limit.acquire().await.rate_limited();
        assert_eq!(limit.current(), 2);
    }

    #[tokio::test(start_paused = true)]
    async fn a_submit_waits_while_the_cap_is_full_and_runs_when_a_place_frees() {
        let limit = Arc::new(AdaptiveLimit::new(2));
        let first = limit.acquire().await;
        let second = limit.acquire().await;
        assert!(
            acquired_within(&limit, Duration::from_secs(1))
                .await
                .is_none(),
            "a third submit ran beside a cap of 2"
        );
        let waiting = tokio::spawn({
            let limit = Arc::clone(&limit);
            async move { limit.acquire().await }
        });
        tokio::task::yield_now().await;
        assert!(!waiting.is_finished());
        drop(first);
        let third = tokio::time::timeout(Duration::from_secs(1), waiting)
            .await
            .expect("the freed place goes to the waiting submit")
            .unwrap();
        drop((second, third));
    }

    #[tokio::test(start_paused = true)]
    async fn a_lowered_cap_holds_new_submits_back_until_enough_calls_end() {
        let limit = Arc::new(AdaptiveLimit::new(4));
        let mut running: Vec<_> = Vec::new();
        for _ in 0..4 {
            running.push(limit.acquire().await);
        }
        running.pop().unwrap().rate_limited();
        assert_eq!(limit.current(), 2);
        // Three still run: a new submit waits until only one is left.
        let waiting = tokio::spawn({
            let limit = Arc::clone(&limit);
            async move { limit.acquire().await }
        });
        tokio::time::sleep(Duration::from_secs(1)).await;
        assert!(!waiting.is_finished());
        drop(running.pop());
        tokio::time::sleep(Duration::from_secs(1)).await;
        assert!(!waiting.is_finished(), "two run, the cap is two");
        drop(running.pop());
        let p = tokio::time::timeout(Duration::from_secs(1), waiting)
            .await
            .expect("runs once one call is left")
            .unwrap();
        drop(p);
    }

    #[tokio::test(start_paused = true)]
    async fn a_raised_cap_lets_waiting_submits_in() {
        let limit = Arc::new(AdaptiveLimit::new(4));
        limit.acquire().await.rate_limited();
        limit.acquire().await.rate_limited();
        assert_eq!(limit.current(), 1);
        let holder = limit.acquire().await;
        let waiters: Vec<_> = (0..2)
            .map(|_| {
                tokio::spawn({
                    let limit = Arc::clone(&limit);
                    async move { limit.acquire().await }
                })
            })
            .collect();
        tokio::time::sleep(Duration::from_secs(1)).await;
        assert!(waiters.iter().all(|w| !w.is_finished()));
        // Accepted: the cap rises to 2 and the holder's place frees, so both waiters run.
        holder.accepted();
        let mut running = Vec::new();
        for w in waiters {
            running.push(
                tokio::time::timeout(Duration::from_secs(1), w)
                    .await
                    .expect("a waiting submit runs under the raised cap")
                    .unwrap(),
            );
        }
        assert_eq!(limit.current(), 2);
        assert_eq!(running.len(), 2);
    }
}
