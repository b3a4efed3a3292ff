//! A provider's call slots ([`max_concurrent_calls`](super::ProviderSettings::max_concurrent_calls)),
//! handed out by what the call is for.
//!
//! When every slot is taken, a freed one goes to the waiting call of the first kind in
//! [`CallKind`]'s order — a download, then a submit, then a status read — and, within a kind,
//! to the one that has waited longest. The order is what a busy provider should do first: a
//! download ends a task; a submit starts a job the vendor then works on for minutes, so every
//! second it waits is a second added to the run; a status read only tells how far a job has
//! come, and a read that waits is simply a later read. Without it, 100,000 tasks submitted at
//! once spent most of their burst on the first status reads of jobs made seconds before (the
//! load harness, 100,000 jobs of 60 s: the last one made after 41.6 s; 22.0 s with the
//! reads waiting behind the submits, 20.7 s with no read before 30 s).
//!
//! A status read cannot wait forever: submits come only from tasks in flight that have not yet
//! submitted, and a task submits once per job, so once they are sent only reads and downloads
//! remain.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::oneshot;

/// What a call is for, in the order waiting calls get a freed slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CallKind {
    /// Fetching a finished job's video or last frame (ends a task).
    Download = 0,
    /// A paid submit, the lookup of an ambiguous one, or a cancel.
    Submit = 1,
    /// A status poll, or a read of the job list.
    Status = 2,
}

const KINDS: usize = 3;

#[derive(Debug, Default)]
struct State {
    /// Slots nobody holds. Calls wait only while this is 0.
    free: usize,
    /// The calls waiting, by kind, oldest first.
    waiting: [VecDeque<oneshot::Sender<()>>; KINDS],
}

/// A provider's call slots.
#[derive(Debug)]
pub(crate) struct CallSlots {
    state: Mutex<State>,
}

/// One call slot, given back when dropped.
#[derive(Debug)]
#[must_use = "the call slot is given back as soon as it is dropped"]
pub(crate) struct CallSlot {
    slots: Arc<CallSlots>,
}

/// A call waiting for a slot. Dropped before it is handed one (its call cancelled), it leaves
/// the queue; dropped just after, it gives the slot back.
struct Waiting<'a> {
    rx: oneshot::Receiver<()>,
    slots: &'a CallSlots,
    granted: bool,
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        if !self.granted {
            self.rx.close();
            if self.rx.try_recv().is_ok() {
                self.slots.release();
            }
        }
    }
}

impl CallSlots {
    /// `n` slots.
    pub(crate) fn new(n: usize) -> Self {
        Self {
            state: Mutex::new(State {
                free: n,
                ..State::default()
            }),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Waits for a slot for a call of `kind`.
    pub(crate) async fn acquire(self: &Arc<Self>, kind: CallKind) -> CallSlot {
        let rx = {
            let mut s = self.lock();
            if s.free > 0 {
                s.free -= 1;
                return CallSlot {
                    slots: Arc::clone(self),
                };
            }
            let (tx, rx) = oneshot::channel();
            s.waiting[kind as usize].push_back(tx);
            rx
        };
        let mut waiting = Waiting {
            rx,
            slots: self,
            granted: false,
        };
        // A sender is dropped unsent only with the slots themselves, which `self` keeps.
        waiting.granted = (&mut waiting.rx).await.is_ok();
        debug_assert!(waiting.granted, "a waiting call lost its sender");
        CallSlot {
            slots: Arc::clone(self),
        }
    }

    /// Hands a freed slot to the first waiting call still waiting, or keeps it free.
    fn release(&self) {
        let mut s = self.lock();
        for queue in &mut s.waiting {
            while let Some(tx) = queue.pop_front() {
                if tx.send(()).is_ok() {
                    return;
                }
            }
        }
        s.free += 1;
    }

    /// Slots nobody holds now.
    #[cfg(test)]
    pub(crate) fn free(&self) -> usize {
        self.lock().free
    }
}

impl Drop for CallSlot {
    fn drop(&mut self) {
        self.slots.release();
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    /// Spawns a call of `kind` that waits for a slot, sends `name` on `done` once it has one
    /// and hands the slot to whoever awaits it.
    fn waiter(
        slots: &Arc<CallSlots>,
        kind: CallKind,
        name: &'static str,
        done: &tokio::sync::mpsc::UnboundedSender<&'static str>,
    ) -> tokio::task::JoinHandle<CallSlot> {
        let slots = Arc::clone(slots);
        let done = done.clone();
        tokio::spawn(async move {
            let slot = slots.acquire(kind).await;
            done.send(name).unwrap();
            slot
        })
    }

    #[tokio::test]
    async fn a_freed_slot_goes_to_a_download_then_a_submit_then_a_status_read() {
        let slots = Arc::new(CallSlots::new(1));
        let held = slots.acquire(CallKind::Status).await;
        let (done, mut order) = tokio::sync::mpsc::unbounded_channel();
        let mut calls = std::collections::HashMap::new();
        for (kind, name) in [
            (CallKind::Status, "status 1"),
            (CallKind::Submit, "submit 1"),
            (CallKind::Status, "status 2"),
            (CallKind::Download, "download"),
            (CallKind::Submit, "submit 2"),
        ] {
            calls.insert(name, waiter(&slots, kind, name, &done));
            // Each queued before the next.
            tokio::task::yield_now().await;
        }
        assert!(order.try_recv().is_err(), "no slot was free");
        drop(held);
        let mut seen = Vec::new();
        while seen.len() < 5 {
            let name = order.recv().await.unwrap();
            seen.push(name);
            // The call that got the slot gives it back: the next in line gets it.
            drop(calls.remove(name).unwrap().await.unwrap());
        }
        assert_eq!(
            seen,
            ["download", "submit 1", "submit 2", "status 1", "status 2"]
        );
        assert_eq!(slots.free(), 1);
    }

    #[tokio::test]
    async fn a_call_cancelled_while_it_waits_leaves_its_place_to_the_next() {
        let slots = Arc::new(CallSlots::new(1));
        let held = slots.acquire(CallKind::Submit).await;
        let cancelled =
            tokio::time::timeout(Duration::from_millis(10), slots.acquire(CallKind::Download))
                .await;
        assert!(cancelled.is_err(), "no slot was free");
        let (done, mut order) = tokio::sync::mpsc::unbounded_channel();
        let next = waiter(&slots, CallKind::Status, "status", &done);
        tokio::task::yield_now().await;
        drop(held);
        assert_eq!(order.recv().await, Some("status"));
        drop(next.await.unwrap());
        assert_eq!(slots.free(), 1, "the slot came back");
    }

    #[tokio::test]
    async fn a_call_dropped_as_it_is_handed_a_slot_gives_the_slot_back() {
        let slots = Arc::new(CallSlots::new(1));
        let held = slots.acquire(CallKind::Submit).await;
        let mut waiting = Box::pin(slots.acquire(CallKind::Download));
        // Polled once: queued.
        assert!(futures::poll!(waiting.as_mut()).is_pending());
        // The slot is handed to it, and the call is dropped before it looks.
        drop(held);
        drop(waiting);
        assert_eq!(slots.free(), 1, "the slot was not lost");
        let _again = slots.acquire(CallKind::Status).await;
        assert_eq!(slots.free(), 0);
    }
}
