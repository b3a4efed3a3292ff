//! Behaviours: tasks that continue other tasks (continuity chains).

use cineflow_core::{Store, TaskStatus};

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

    let mut opened = store.get_task(waiting.id).await.must("get waiting");
    opened.waiting_for = None;
    store.update_task(&opened).await.must("open it");
    let claimed = store
        .claim_tasks("worker-b", None, 10, LIVE)
        .await
        .must("claim the opened task");
    assert_eq!(
        ids(&claimed),
        vec![waiting.id],
        "the opened task is claimable"
    );
}
