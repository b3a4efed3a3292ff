//! What both SQL stores' upgrade tests check once a database from before the plain
//! `waiting_for` column (migration 0003) is opened by today's store.

use std::time::Duration;

use cineflow_core::{Store, TaskId};
use cineflow_store::conformance::Fixture;

/// `fx`'s tasks are stored, the oldest (`last`) waiting for `first`: a claim skips it, and once
/// opened it is claimed.
pub(crate) async fn the_waiting_task_is_skipped_until_opened(
    store: &dyn Store,
    fx: &Fixture,
    first: TaskId,
    last: TaskId,
) {
    let ttl = Duration::from_secs(60);
    let claimed = store.claim_tasks("a", None, 10, ttl).await.unwrap();
    let claimed: Vec<_> = claimed.iter().map(|t| t.id).collect();
    assert_eq!(
        claimed,
        vec![fx.tasks[1].id, first],
        "the waiting task is skipped after the upgrade"
    );
    let mut opened = store.get_task(last).await.unwrap();
    assert_eq!(opened.waiting_for, Some(first));
    opened.waiting_for = None;
    store.update_task(&opened).await.unwrap();
    let claimed = store.claim_tasks("b", None, 10, ttl).await.unwrap();
    assert_eq!(claimed.len(), 1, "the opened task is claimable");
    assert_eq!(claimed[0].id, last);
}
