//! A task shelved while it waits a long time for its next poll
//! ([`PollPolicy::shelve_after`](super::super::PollPolicy::shelve_after)): what it holds on the
//! heap (its attempts, prompt, options, names) is let go, and the task is read again from the
//! store when the wait ends. With the memory store a task in flight was held twice, once by the
//! store and once in hand; 100,000 tasks waiting between polls hold one copy each instead.

use std::time::Duration;

use crate::error::{Error, Result};
use crate::orchestrator::PollPolicy;
use crate::task::{Lease, Task};

/// What is needed to take a shelved task back: the revision and lease it was shelved with.
#[derive(Debug)]
pub(super) struct Shelved {
    revision: u64,
    lease: Option<Lease>,
}

impl Shelved {
    /// Whether a task about to wait `interval` for its next poll is shelved meanwhile, on a
    /// store that keeps its tasks in memory (`in_memory`) or not.
    pub(super) fn wanted(policy: &PollPolicy, interval: Duration, in_memory: bool) -> bool {
        !policy.shelve_after.is_zero() && (in_memory || interval >= policy.shelve_after)
    }

    /// Shelves `task`: empties what it holds on the heap and makes it unwritable (a write of the
    /// hollow task fails as stale), keeping its ids and status.
    pub(super) fn shelve(task: &mut Task) -> Self {
        let shelved = Self {
            revision: task.revision,
            lease: task.lease.clone(),
        };
        task.revision = u64::MAX;
        task.attempts = Vec::new();
        task.full_prompt = String::new();
        task.file_stem = String::new();
        task.options = Default::default();
        task.image = None;
        task.source_file = None;
        task.error = None;
        task.dependents = Vec::new();
        shelved
    }

    /// Takes the task back from the store's copy (`stored`), as it was shelved: the same
    /// revision and, if it was leased, the same lease. Anything else is a write by another
    /// owner meanwhile, answered as a write of the shelved task would have been.
    pub(super) fn take_back(self, task: &mut Task, stored: Task) -> Result<()> {
        if let Some(ours) = &self.lease
            && stored
                .lease
                .as_ref()
                .is_none_or(|held| held.token != ours.token)
        {
            return Err(Error::LeaseLost {
                task: stored.id.to_string(),
                owner: ours.owner.clone(),
            });
        }
        if stored.revision != self.revision {
            return Err(Error::Conflict {
                entity: "task",
                id: stored.id.to_string(),
                reason: format!(
                    "written by another while it waited for its next poll (revision {}, stored {})",
                    self.revision, stored.revision
                ),
            });
        }
        *task = stored;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::super::footprint::claimed_on;
    use super::*;
    use crate::error::ErrorKind;
    use crate::mock::MockProvider;
    use crate::orchestrator::OrchestratorConfig;

    async fn leased_task() -> (crate::Orchestrator, Task) {
        let (orch, _run, task) = claimed_on(
            MockProvider::new("mock").unwrap(),
            OrchestratorConfig::default(),
        )
        .await;
        (orch, task)
    }

    #[test]
    fn long_waits_are_shelved_and_on_a_store_in_memory_every_wait_unless_shelving_is_off() {
        let policy = PollPolicy::default();
        let (short, long) = (Duration::from_secs(2), Duration::from_secs(30));
        assert!(!Shelved::wanted(&policy, short, false));
        assert!(Shelved::wanted(&policy, policy.shelve_after, false));
        assert!(Shelved::wanted(&policy, long, false));
        assert!(Shelved::wanted(&policy, short, true));
        let off = policy.with_shelve_after(Duration::ZERO);
        assert!(!Shelved::wanted(&off, long, false));
        assert!(!Shelved::wanted(&off, short, true));
    }

    #[tokio::test]
    async fn a_shelved_task_holds_nothing_on_the_heap_but_its_ids_and_cannot_be_written() {
        let (orch, mut task) = leased_task().await;
        let before = task.clone();
        let shelved = Shelved::shelve(&mut task);
        assert!(task.full_prompt.is_empty() && task.attempts.capacity() == 0);
        assert_eq!((task.id, task.status), (before.id, before.status));
        let write = orch.inner.store.update_task(&task).await;
        assert_eq!(
            write.map(|_| ()).unwrap_err().kind(),
            ErrorKind::Conflict,
            "a hollow task is never stored"
        );
        let stored = orch.inner.store.get_task(task.id).await.unwrap();
        shelved.take_back(&mut task, stored).unwrap();
        assert_eq!(task, before, "taken back as it was shelved");
    }

    #[tokio::test]
    async fn a_task_written_by_another_while_shelved_is_not_taken_back() {
        let (orch, mut task) = leased_task().await;
        let mut other = task.clone();
        let shelved = Shelved::shelve(&mut task);
        other.progress = Some(40);
        orch.inner.store.update_task(&other).await.unwrap();
        let stored = orch.inner.store.get_task(task.id).await.unwrap();
        let err = shelved.take_back(&mut task, stored).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Conflict, "{err}");
    }

    #[tokio::test]
    async fn a_task_whose_lease_was_taken_over_while_shelved_is_not_taken_back() {
        let (orch, mut task) = leased_task().await;
        let store = Arc::clone(&orch.inner.store);
        let ours = task.lease.clone().unwrap();
        let shelved = Shelved::shelve(&mut task);
        store.release(task.id, &ours).await.unwrap();
        let mut again = store
            .claim_tasks("someone else", None, 1, Duration::from_secs(30))
            .await
            .unwrap();
        assert_eq!(again.len(), 1, "claimed by another owner");
        let stored = store.get_task(task.id).await.unwrap();
        let err = shelved.take_back(&mut task, stored).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::LeaseLost, "{err}");
        drop(again.pop());
    }
}
