//! Behaviours: tasks that continue other tasks (continuity chains).

use cineflow_core::{Store, TaskId, TaskStatus};

use super::fixtures::Fixture;
use super::{LIVE, Must, ids};

/// A task waiting for another one (`waiting_for` set) is never claimed, whatever its age; once
/// the field is cleared it is claimable like any other. A `blocked` task is terminal: it is not
/// claimed, counts as blocked, and keeps what it waits for through a round trip.
pub async fn claims_skip_tasks_waiting_for_another_until_they_are_opened(store: &dyn Store) {
    let f = Fixture::new(3, 1);
    f.store(store).await;
    // The fixture's tasks are oldest last: the waiting ones are the oldest.
    let (first, second, third) = (&f.tasks[0], &f.tasks[1], &f.tasks[2]);
    let mut waiting = second.clone();
    waiting.depends_on = Some(first.id);
    waiting.waiting_for = Some(first.id);
    let waiting = store.update_task(&waiting).await.must("make one wait");
    let mut blocked = third.clone();
    blocked.depends_on = Some(second.id);
    blocked.waiting_for = Some(second.id);
    blocked.status = TaskStatus::Blocked;
    let blocked = store.update_task(&blocked).await.must("block one");
    assert_eq!(
        store.get_task(blocked.id).await.must("get blocked"),
        blocked
    );

    let claimed = store
        .claim_tasks("worker-a", None, 10, LIVE)
        .await
        .must("claim");
    assert_eq!(
        ids(&claimed),
        vec![first.id],
        "only the task that waits for nothing is claimed"
    );
    let counts = store.run_counts(f.run.id).await.must("run_counts");
    assert_eq!((counts.pending, counts.blocked), (2, 1), "{counts:?}");

    open_and_claim(store, waiting.id).await;
}

/// Opens the waiting task `id` (clears what it waits for) and checks that a claim takes it alone.
async fn open_and_claim(store: &dyn Store, id: TaskId) {
    let mut opened = store.get_task(id).await.must("get waiting");
    opened.waiting_for = None;
    store.update_task(&opened).await.must("open it");
    let claimed = store
        .claim_tasks("worker-b", None, 10, LIVE)
        .await
        .must("claim the opened task");
    assert_eq!(ids(&claimed), vec![id], "the opened task is claimable");
}

/// A task inserted waiting for another one is not claimed until it is opened, and the claim
/// after that takes it with the tasks that never waited.
pub async fn tasks_inserted_waiting_for_another_are_claimed_only_once_opened(store: &dyn Store) {
    let mut f = Fixture::new(3, 1);
    // The last task is the oldest: it would be claimed first if it did not wait.
    let (first, last) = (f.tasks[0].id, f.tasks[2].id);
    f.tasks[2].depends_on = Some(first);
    f.tasks[2].waiting_for = Some(first);
    f.store(store).await;
    assert_eq!(
        store.get_task(last).await.must("get waiting").waiting_for,
        Some(first),
        "what a task waits for survives the insert"
    );

    let claimed = store.claim_tasks("worker-a", None, 10, LIVE).await;
    assert_eq!(
        ids(&claimed.must("claim")),
        vec![f.tasks[1].id, first],
        "the waiting task is skipped, the others are claimed oldest first"
    );

    open_and_claim(store, last).await;
}
