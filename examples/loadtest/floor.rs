//! The floor under rate limits: the wall time a **perfect scheduler** needs for the same run when
//! the vendor refuses a share of submits with `Retry-After`, by Monte Carlo.
//!
//! The perfect scheduler has no overhead at all: every job's end is seen the instant it comes,
//! every download and store write takes no time, polls and list reads are never refused. Only
//! the submits are: each is refused with probability `refuse`, and a refused task lends its
//! run slot to the next task (no job exists yet) and submits again `retry_after` later, first
//! in line for the next free slot. What is left is what no orchestrator that honours every
//! `Retry-After` can avoid: the runs of refusals, above all those of the last wave's submits,
//! whose slots have no other task to take them.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

/// Runs of the perfect scheduler, summarised.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Floor {
    /// The median wall time, in seconds.
    pub(crate) median_secs: f64,
    /// The 90th percentile.
    pub(crate) p90_secs: f64,
    /// The share of runs whose wall time reaches `bound` × ideal or more.
    pub(crate) share_at_bound: f64,
}

/// `draws` runs of the perfect scheduler for `tasks` jobs of `job_secs` at `concurrency`, with
/// submits refused at `refuse` for `retry_after_secs` each; `bound` is a multiple of the ideal
/// wall time (⌈N/C⌉·S) to count the runs reaching it. Seeded: the same arguments give the same
/// floor.
pub(crate) fn refusal_floor(
    tasks: usize,
    concurrency: usize,
    job_secs: f64,
    refuse: f64,
    retry_after_secs: f64,
    bound: f64,
    draws: usize,
) -> Floor {
    let mut rng = fastrand::Rng::with_seed(0x5eed);
    let micros = |secs: f64| (secs * 1e6).round() as u64;
    let (job, wait) = (micros(job_secs), micros(retry_after_secs));
    let mut walls: Vec<u64> = (0..draws.max(1))
        .map(|_| one_run(tasks, concurrency.max(1), job, wait, refuse, &mut rng))
        .collect();
    walls.sort_unstable();
    let at = |q: f64| walls[((walls.len() - 1) as f64 * q).round() as usize] as f64 / 1e6;
    let ideal = tasks.div_ceil(concurrency.max(1)) as f64 * job_secs;
    // A microsecond of slack: a run of exactly `bound` × ideal reaches it.
    let limit = micros(bound * ideal).saturating_sub(1);
    let reached = walls.iter().filter(|w| **w >= limit).count();
    Floor {
        median_secs: at(0.5),
        p90_secs: at(0.9),
        share_at_bound: reached as f64 / walls.len() as f64,
    }
}

/// One run, in microseconds: when the last job ends.
fn one_run(
    tasks: usize,
    concurrency: usize,
    job: u64,
    wait: u64,
    refuse: f64,
    rng: &mut fastrand::Rng,
) -> u64 {
    let (mut now, mut last) = (0u64, 0u64);
    let (mut fresh, mut free, mut done) = (tasks, concurrency, 0usize);
    // When each refused task may submit again, and when each running job ends.
    let mut retries: BinaryHeap<Reverse<u64>> = BinaryHeap::new();
    let mut ends: BinaryHeap<Reverse<u64>> = BinaryHeap::new();
    while done < tasks {
        while free > 0 {
            if retries.peek().is_some_and(|Reverse(t)| *t <= now) {
                retries.pop();
            } else if fresh > 0 {
                fresh -= 1;
            } else {
                break;
            }
            if rng.f64() < refuse {
                retries.push(Reverse(now + wait));
            } else {
                free -= 1;
                ends.push(Reverse(now + job));
            }
        }
        let next_end = ends.peek().map(|Reverse(t)| *t);
        let next_retry = retries
            .peek()
            .map(|Reverse(t)| *t)
            .filter(|_| free > 0 || next_end.is_none());
        now = match (next_end, next_retry) {
            (Some(e), Some(r)) => e.min(r),
            (Some(t), None) | (None, Some(t)) => t,
            (None, None) => break,
        }
        .max(now);
        while ends.peek().is_some_and(|Reverse(t)| *t <= now) {
            ends.pop();
            free += 1;
            done += 1;
            last = now;
        }
    }
    last
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn without_refusals_the_floor_is_the_ideal_wall_time() {
        let f = refusal_floor(2000, 500, 5.0, 0.0, 1.0, 1.25, 20);
        assert_eq!(
            (f.median_secs, f.p90_secs, f.share_at_bound),
            (20.0, 20.0, 0.0)
        );
    }

    #[test]
    fn every_refusal_of_a_lone_task_costs_its_whole_retry_after() {
        // One task, one slot, every other submit refused: half the runs pay at least 1 s.
        let f = refusal_floor(1, 1, 5.0, 0.5, 1.0, 1.2, 400);
        assert!(f.median_secs == 5.0 || f.median_secs == 6.0, "{f:?}");
        assert!(f.p90_secs >= 7.0, "{f:?}");
        assert!((0.4..0.6).contains(&f.share_at_bound), "{f:?}");
    }

    #[test]
    fn the_last_waves_runs_of_refusals_set_the_floor_of_a_rate_limited_run() {
        // 2,000 tasks, 500 slots, 5 s jobs, 20 % of submits refused for 1 s: the longest run
        // of refusals among the last wave's ~500 submits is 4 in about 40 % of runs and 5 or
        // more in about 15 % (1 − (1 − 0.2⁵)^500), which alone makes 25 s = 1.25 × ideal.
        let f = refusal_floor(2000, 500, 5.0, 0.2, 1.0, 1.25, 400);
        assert!((23.0..=24.5).contains(&f.median_secs), "{f:?}");
        assert!((0.08..0.25).contains(&f.share_at_bound), "{f:?}");
    }
}
