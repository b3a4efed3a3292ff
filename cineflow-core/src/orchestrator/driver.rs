//! Driving a run: one driver per run claims its tasks and runs them to the end, and the
//! [`RunHandle`] a caller waits on.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use futures::Stream;
use tokio::sync::{Notify, Semaphore, broadcast, watch};
use tokio_util::sync::CancellationToken;

use super::{Inner, chain, exec, lock, worker};
use crate::error::{Error, Result};
use crate::events::{Event, EventKind};
use crate::ids::RunId;
use crate::run::{Run, RunStatus};
use crate::store::Store;

#[derive(Clone)]
pub(super) struct DriverControl {
    pub(super) cancel: CancellationToken,
    pub(super) wake: Arc<Notify>,
    pub(super) more_work: Arc<AtomicBool>,
    pub(super) done: watch::Receiver<DriverState>,
}

#[derive(Debug, Clone, PartialEq)]
pub(super) enum DriverState {
    Running,
    Done,
    Failed(String),
}

pub(super) async fn drive(inner: Arc<Inner>, run_id: RunId, control: DriverControl) -> Result<()> {
    let run = inner
        .update_run_with(run_id, |run| {
            if run.status == RunStatus::Running {
                return Ok(false);
            }
            run.set_status(RunStatus::Running)?;
            Ok(true)
        })
        .await?;
    inner.emit(run_id, None, EventKind::RunStarted);
    let per_run = Arc::new(Semaphore::new(run.spec.concurrency));
    let parked = Arc::new(exec::Parked::new(Arc::clone(&control.wake)));
    let ctx = Arc::new(exec::RunCtx::new(&inner, &run).await?);
    let ttl = inner.config.lease.ttl;
    let follow = inner.config.lease.follow_interval;
    let mut set = tokio::task::JoinSet::new();
    let mut checked = tokio::time::Instant::now();
    // The last claim came back short and nothing has happened since that could have made a
    // task of the run claimable: the next claim waits for something that could (a task in
    // hand left one behind or opened chained ones, a wake-up, the follow interval). Without
    // this, every task ending in the last wave was one more claim, which the memory store
    // answers by reading every task of the run: quadratic in the tasks in flight.
    let mut drained = false;
    // Whether tasks of the run wait for others: caught up on now (a crash may have left some
    // whose dependency ended), and whenever nothing is in hand.
    let mut chained = chain::catch_up(&inner, run_id, control.cancel.is_cancelled()).await?;
    loop {
        // A run cancelled through another orchestrator sharing the store stops here too.
        if checked.elapsed() >= follow {
            checked = tokio::time::Instant::now();
            // Leases of other owners may have lapsed since.
            drained = false;
            if !control.cancel.is_cancelled()
                && inner.store.get_run(run_id).await?.status == RunStatus::Cancelled
            {
                control.cancel.cancel();
            }
        }
        // Claim what this run may still take on: tasks nobody holds a live lease on (pending,
        // retried, or left behind by a dead owner), oldest (lowest segment) first.
        // Tasks waiting out a submit's `Retry-After` have lent their slots out: as many more
        // are claimed to work in them.
        if set.is_empty() && chained {
            // Chained tasks whose dependency ended (before a crash, or in another process) are
            // opened or blocked; in a cancelled run, cancelled.
            chained = chain::catch_up(&inner, run_id, control.cancel.is_cancelled()).await?;
        }
        // At most a batch per claim: claimed copies move into their futures as they are
        // spawned, but the batch is read whole first (100,000 tasks would be 100 MB at once).
        // A few more are claimed ahead (`prefetch`): they wait for a slot, and take one as
        // soon as a task gives its slot back, not after a claim made then.
        let free = (run.spec.concurrency + parked.count() + prefetch(run.spec.concurrency))
            .saturating_sub(set.len())
            .min(worker::CLAIM_BATCH);
        let mut full_batch = false;
        if free > 0 && !drained {
            let claimed = inner
                .store
                .claim_tasks(&inner.owner, Some(run_id), free, ttl)
                .await?;
            full_batch = claimed.len() == free && free == worker::CLAIM_BATCH;
            drained = claimed.len() < free;
            for task in claimed {
                let Some(lease) = task.lease.clone() else {
                    continue;
                };
                let held = worker::Claimed::new(task, lease);
                let chained = held.chained;
                let token = control.cancel.child_token();
                let inner = Arc::clone(&inner);
                let per_run = Arc::clone(&per_run);
                let ctx = Arc::clone(&ctx);
                let parked = Arc::clone(&parked);
                set.spawn(async move {
                    let slot = exec::RunSlot::new(per_run, Arc::clone(&inner.global), Some(parked));
                    // Errors are logged by run_leased; the task's lease lapses and it is
                    // claimed again from its last persisted step.
                    let ended = worker::run_leased(&inner, held, ttl, &slot, token, &ctx).await;
                    // Whether it may have left a task of the run claimable: itself, or the
                    // shots chained on it.
                    chained || !matches!(ended, Ok(true))
                });
            }
        }
        if full_batch {
            // More may be claimable right away.
            continue;
        }
        if set.is_empty() {
            // Nothing in hand: every task left (if any) is owned by someone else.
            if inner.store.run_counts(run_id).await?.all_terminal() {
                // Exit only if nobody asked for more work while we were finishing.
                let mut drivers = lock(&inner.drivers);
                if !control.more_work.swap(false, Ordering::SeqCst) {
                    drivers.remove(&run_id);
                    break;
                }
                continue;
            }
        }
        tokio::select! {
            Some(joined) = set.join_next() => match joined {
                Ok(left_work) => drained &= !left_work,
                Err(e) => {
                    tracing::error!(error = %e, "task future panicked or was aborted");
                    drained = false;
                }
            },
            () = control.wake.notified() => drained = false,
            // Follow tasks owned elsewhere: they end there, or their leases lapse and are
            // claimed here.
            () = tokio::time::sleep(follow) => {}
        }
        control.more_work.store(false, Ordering::SeqCst);
    }
    finish_run(&inner, run_id, control.cancel.is_cancelled()).await
}

/// How many tasks a run's driver claims beyond the run's concurrency, ready to take a slot
/// the moment one is given back (keeping their claimed copies: no claim and no read between
/// one task's video and the next task's submit): none for runs of fewer than 16 at once (a
/// slot is rarely waited for there), half the concurrency above, at most 256. They hold their
/// leases meanwhile, so other processes sharing the store cannot take them.
fn prefetch(concurrency: usize) -> usize {
    if concurrency < 16 {
        return 0;
    }
    (concurrency / 2).min(256)
}

/// Gives the run its final status once every task is terminal; a run another owner already
/// finished with the same counts is left as it is.
pub(super) async fn finish_run(inner: &Inner, run_id: RunId, cancelled: bool) -> Result<()> {
    let counts = inner.store.run_counts(run_id).await?;
    if !counts.all_terminal() {
        // Another process (or a retry racing the exit) owns the remaining tasks.
        return Ok(());
    }
    let status = if cancelled {
        RunStatus::Cancelled
    } else {
        counts.final_status()
    };
    let run = inner
        .update_run_with(run_id, |run| {
            if run.status.is_terminal() && run.counts == counts {
                return Ok(false);
            }
            if run.status != RunStatus::Running {
                run.set_status(RunStatus::Running)?;
            }
            run.set_status(status)?;
            run.counts = counts;
            Ok(true)
        })
        .await?;
    inner.emit(
        run_id,
        None,
        EventKind::RunFinished {
            status: run.status,
            counts: run.counts,
        },
    );
    Ok(())
}

/// What [`RunHandle::events`] reads from.
struct EventsState {
    rx: broadcast::Receiver<Event>,
    done: watch::Receiver<DriverState>,
    run_id: RunId,
    /// The run's `RunFinished` was read.
    ended: bool,
    /// The driver is done: only what is already in the channel is left.
    draining: bool,
}

impl EventsState {
    /// The run's next event; `None` once the run ended.
    async fn next(&mut self) -> Option<Event> {
        if self.ended {
            return None;
        }
        if self.draining {
            return self.drain();
        }
        loop {
            let received = tokio::select! {
                biased;
                received = self.rx.recv() => Some(received),
                // The driver emits its last event before it says it is done: what it sent is
                // in the channel already.
                _ = self.done.wait_for(|s| *s != DriverState::Running) => None,
            };
            let Some(received) = received else {
                self.draining = true;
                return self.drain();
            };
            match received {
                Ok(e) if e.run_id == self.run_id => return Some(e),
                Ok(_) => continue,
                Err(broadcast::error::RecvError::Lagged(n)) => {
                    tracing::warn!(skipped = n, "event subscriber lagged");
                }
                Err(broadcast::error::RecvError::Closed) => return None,
            }
        }
    }

    /// The next event of the run already in the channel, once the driver is done.
    fn drain(&mut self) -> Option<Event> {
        loop {
            match self.rx.try_recv() {
                Ok(e) if e.run_id == self.run_id => return Some(e),
                Ok(_) | Err(broadcast::error::TryRecvError::Lagged(_)) => continue,
                Err(_) => return None,
            }
        }
    }
}

/// A started run: wait for it, watch its events, or cancel it.
pub struct RunHandle {
    pub(super) run_id: RunId,
    pub(super) cancel: CancellationToken,
    pub(super) done: watch::Receiver<DriverState>,
    pub(super) events: broadcast::Receiver<Event>,
    pub(super) store: Arc<dyn Store>,
    pub(super) follow: std::time::Duration,
    /// Whether [`events`](RunHandle::events) was called: later calls start at the call.
    pub(super) events_taken: bool,
}

impl fmt::Debug for RunHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RunHandle")
            .field("run_id", &self.run_id)
            .finish_non_exhaustive()
    }
}

impl RunHandle {
    /// The run.
    pub fn run_id(&self) -> RunId {
        self.run_id
    }

    /// Asks every task of the run to stop; tasks become `cancelled`.
    pub fn cancel(&self) {
        self.cancel.cancel();
    }

    /// This run's events, from the moment the handle was created (on the first call; later
    /// calls start from the moment of the call), in order. A subscriber that falls more than the
    /// configured capacity behind skips the oldest events.
    ///
    /// The stream **ends when the run ends**: after its [`EventKind::RunFinished`], or, when this
    /// handle's driver stopped without one (the run's last tasks are owned by another process,
    /// or the driver failed), once the events already sent are read. So
    /// `handle.events().collect::<Vec<_>>().await` returns.
    pub fn events(&mut self) -> impl Stream<Item = Event> + Send + 'static + use<> {
        let rx = if std::mem::replace(&mut self.events_taken, true) {
            self.events.resubscribe()
        } else {
            let fresh = self.events.resubscribe();
            std::mem::replace(&mut self.events, fresh)
        };
        let run_id = self.run_id;
        let state = EventsState {
            rx,
            done: self.done.clone(),
            run_id,
            ended: false,
            draining: false,
        };
        futures::stream::unfold(state, |mut state| async move {
            let event = state.next().await?;
            if matches!(event.kind, EventKind::RunFinished { .. }) {
                state.ended = true;
            }
            Some((event, state))
        })
    }

    /// Waits until every task of the run is terminal and the run has its final status, and
    /// returns the run as stored.
    ///
    /// Tasks owned by another process sharing the store (or by a worker) are followed through
    /// the store ([`LeasePolicy::follow_interval`](super::LeasePolicy::follow_interval)):
    /// `wait` returns when their owner has finished them, or after this orchestrator has taken
    /// over and finished the tasks whose owner died (their leases lapsed). It never returns
    /// `Ok` with a run that is not terminal; if the run is driven again meanwhile (a
    /// [`retry_task`](super::Orchestrator::retry_task)), it waits for that too.
    ///
    /// # Errors
    /// A store error of this orchestrator's driver (e.g. the database is unreachable).
    pub async fn wait(mut self) -> Result<Run> {
        let state = self
            .done
            .wait_for(|s| *s != DriverState::Running)
            .await
            .map(|s| s.clone())
            .map_err(|_| Error::Config("the run driver stopped unexpectedly".into()))?;
        match state {
            DriverState::Failed(message) => Err(Error::Backend {
                message,
                source: None,
            }),
            _ => loop {
                let run = self.store.get_run(self.run_id).await?;
                if run.status.is_terminal() {
                    return Ok(run);
                }
                tokio::time::sleep(self.follow).await;
            },
        }
    }
}
