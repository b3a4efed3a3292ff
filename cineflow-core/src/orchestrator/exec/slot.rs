//! The run slot a task works in, and how it is lent out while the task waits out a submit's
//! `Retry-After`.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore};
use tokio_util::sync::CancellationToken;

use crate::error::{Error, Result};

/// A run's tasks that have given their run slot back while they wait out a submit's
/// `Retry-After` (no job at the vendor yet). The run's driver claims as many tasks more than
/// the run's concurrency, so the slots they lent out are worked in meanwhile.
#[derive(Debug)]
pub(in crate::orchestrator) struct Parked {
    count: AtomicUsize,
    wake: Arc<Notify>,
}

impl Parked {
    /// Counts for the driver woken by `wake`.
    pub(in crate::orchestrator) fn new(wake: Arc<Notify>) -> Self {
        Self {
            count: AtomicUsize::new(0),
            wake,
        }
    }

    /// Tasks waiting without a run slot now.
    pub(in crate::orchestrator) fn count(&self) -> usize {
        self.count.load(Ordering::SeqCst)
    }
}

/// Un-counts a parked task however its wait ends (also when its future is dropped).
struct ParkedGuard<'a>(&'a Parked);

impl Drop for ParkedGuard<'_> {
    fn drop(&mut self) {
        self.0.count.fetch_sub(1, Ordering::SeqCst);
    }
}

/// The slot a task takes of its run's concurrency and of the orchestrator's
/// (`max_concurrency`) before it works, held until it ends.
pub(in crate::orchestrator) struct RunSlot {
    per_run: Arc<Semaphore>,
    global: Arc<Semaphore>,
    held: std::sync::Mutex<Option<(OwnedSemaphorePermit, OwnedSemaphorePermit)>>,
    /// Where a task lending its slot out is counted (`None`: nobody claims more tasks for it).
    parked: Option<Arc<Parked>>,
}

impl RunSlot {
    pub(in crate::orchestrator) fn new(
        per_run: Arc<Semaphore>,
        global: Arc<Semaphore>,
        parked: Option<Arc<Parked>>,
    ) -> Self {
        Self {
            per_run,
            global,
            held: std::sync::Mutex::new(None),
            parked,
        }
    }

    /// Waits for a slot of the run and one of the orchestrator. `false`: cancelled first.
    pub(super) async fn acquire(&self, cancel: &CancellationToken) -> Result<bool> {
        let permits = tokio::select! {
            biased;
            () = cancel.cancelled() => return Ok(false),
            p = async {
                let run = Arc::clone(&self.per_run).acquire_owned().await?;
                let global = Arc::clone(&self.global).acquire_owned().await?;
                Ok::<_, tokio::sync::AcquireError>((run, global))
            } => p,
        };
        let permits = permits.map_err(|_| Error::Config("the run's slots were closed".into()))?;
        *self.held.lock().unwrap_or_else(|p| p.into_inner()) = Some(permits);
        Ok(true)
    }

    /// Takes a slot of the run and one of the orchestrator if both are free now: `None` when
    /// it would have to wait for them, `Some(false)` when cancelled.
    pub(super) fn try_acquire(&self, cancel: &CancellationToken) -> Option<bool> {
        if cancel.is_cancelled() {
            return Some(false);
        }
        let run = Arc::clone(&self.per_run).try_acquire_owned().ok()?;
        let global = Arc::clone(&self.global).try_acquire_owned().ok()?;
        *self.held.lock().unwrap_or_else(|p| p.into_inner()) = Some((run, global));
        Some(true)
    }

    /// Whether every slot of the run is taken: a task that cannot take one now waits for its
    /// run (one of the few tasks its driver claimed ahead), not for the orchestrator's slots,
    /// which many tasks of many runs may be waiting for.
    pub(super) fn run_is_full(&self) -> bool {
        self.per_run.available_permits() == 0
    }

    /// Gives the slot back for good: the task has nothing left to do at the vendor (its video
    /// is stored, only its final write is left), so a task waiting for a slot starts now
    /// instead of after that write.
    pub(super) fn give_back(&self) {
        let given_back = self.held.lock().unwrap_or_else(|p| p.into_inner()).take();
        drop(given_back);
    }

    /// Gives the slot back for `wait` (another task of the run works in it meanwhile), then
    /// queues for one again. Only for a task without a job at the vendor. `false`: cancelled.
    pub(super) async fn lend_out(
        &self,
        wait: Duration,
        cancel: &CancellationToken,
    ) -> Result<bool> {
        self.give_back();
        let slept = {
            let _guard = self.parked.as_deref().map(|p| {
                p.count.fetch_add(1, Ordering::SeqCst);
                p.wake.notify_one();
                ParkedGuard(p)
            });
            tokio::select! {
                biased;
                () = cancel.cancelled() => false,
                () = tokio::time::sleep(wait) => true,
            }
        };
        if !slept {
            return Ok(false);
        }
        self.acquire(cancel).await
    }
}
