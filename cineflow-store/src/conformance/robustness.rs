//! Behaviours: concurrency, errors, empty stores, and reopening a store.

use std::collections::HashSet;

use cineflow_core::store::{PageRequest, RunQuery, TaskQuery};
use cineflow_core::{
    ErrorCode, ErrorKind, Lease, RunId, RunStatus, SegmentId, Store, TaskError, TaskId, TaskStatus,
};

use super::fixtures::{Fixture, at};
use super::round_trips_and_leases::lease_of;
use super::{LAPSED, LIVE, Must, StoreFactory, fails, note};
// ---------------------------------------------------------------------------------------------
// Concurrency, errors, empty stores

/// 16 tasks × 20 concurrent read-modify-write loops (retrying on conflict) end with exact
/// counts: compare-and-swap loses no update.
pub async fn concurrent_compare_and_swap_writers_lose_no_update(store: &dyn Store) {
    const WRITERS: u8 = 20;
    let f = Fixture::new(8, 2);
    f.store(store).await;
    let increment = |id: TaskId| async move {
        for _ in 0..10_000 {
            let mut t = store.get_task(id).await.must("get_task");
            t.progress = Some(t.progress.unwrap_or(0) + 1);
            // Let the other writers interleave between the read and the write.
            tokio::task::yield_now().await;
            match store.update_task(&t).await {
                Ok(_) => return,
                Err(e) if e.kind() == ErrorKind::Conflict => continue,
                Err(e) => panic!("update_task: unexpected error: {e} ({:?})", e.kind()),
            }
        }
        panic!("task {id}: no write succeeded in 10,000 tries");
    };
    let writers = f
        .tasks
        .iter()
        .flat_map(|t| (0..WRITERS).map(move |_| increment(t.id)));
    futures::future::join_all(writers).await;
    for t in &f.tasks {
        let stored = store.get_task(t.id).await.must("get_task");
        assert_eq!(
            stored.progress,
            Some(WRITERS),
            "task {}: every increment counted",
            t.id
        );
        assert_eq!(stored.revision, t.revision + u64::from(WRITERS));
    }
}

/// Reads and writes of records that do not exist are [`ErrorKind::NotFound`] (and releasing a
/// missing task's lease is a no-op).
pub async fn missing_records_are_not_found(store: &dyn Store) {
    let f = Fixture::new(1, 1);
    let nf = ErrorKind::NotFound;
    fails(
        store.get_storyboard(f.storyboard.id).await,
        nf,
        "get_storyboard",
    );
    fails(
        store.get_segment(f.storyboard.segments[0].id).await,
        nf,
        "get_segment",
    );
    fails(store.get_run(f.run.id).await, nf, "get_run");
    fails(store.update_run(&f.run).await, nf, "update_run");
    fails(store.run_counts(f.run.id).await, nf, "run_counts");
    fails(store.get_task(f.tasks[0].id).await, nf, "get_task");
    fails(store.update_task(&f.tasks[0]).await, nf, "update_task");
    let lease = Lease {
        owner: "w".into(),
        token: 1,
        expires_at: at(0),
    };
    fails(
        store.heartbeat(f.tasks[0].id, &lease, LIVE).await,
        nf,
        "heartbeat",
    );
    store
        .release(f.tasks[0].id, &lease)
        .await
        .must("release of a missing task");
    // Present storyboard, other ids still missing.
    f.store(store).await;
    fails(
        store.get_segment(SegmentId::new()).await,
        nf,
        "another segment",
    );
    fails(store.get_task(TaskId::new()).await, nf, "another task");
    fails(store.get_run(RunId::new()).await, nf, "another run");
}

/// Not found, conflict and lease lost are told apart by [`Error::kind`](cineflow_core::Error::kind),
/// on the same task.
pub async fn errors_are_told_apart_by_kind(store: &dyn Store) {
    let f = Fixture::new(2, 1);
    f.store(store).await;
    let mut t = f.tasks[0].clone();
    t.progress = Some(1);
    store.update_task(&t).await.must("first write");
    let stale = fails(
        store.update_task(&t).await,
        ErrorKind::Conflict,
        "stale revision",
    );
    let missing = fails(
        store
            .update_task(&{
                let mut changed = t.clone();
                changed.id = TaskId::new();
                changed
            })
            .await,
        ErrorKind::NotFound,
        "missing task",
    );
    let held = store
        .claim_tasks("worker-a", Some(f.run.id), 2, LIVE)
        .await
        .must("claim");
    let current = held
        .iter()
        .find(|x| x.id == t.id)
        .cloned()
        .unwrap_or_else(|| panic!("the task was not claimed"));
    let fenced = fails(
        store
            .update_task(&{
                let mut changed = current;
                changed.lease = None;
                changed
            })
            .await,
        ErrorKind::LeaseLost,
        "no lease",
    );
    for e in [&stale, &missing, &fenced] {
        assert!(!e.to_string().is_empty());
    }
}

/// An empty store lists nothing (with zero totals), counts nothing and claims nothing.
pub async fn an_empty_store_has_nothing_to_list_or_claim(store: &dyn Store) {
    let sb = store
        .list_storyboards(PageRequest::default())
        .await
        .must("list_storyboards");
    assert_eq!(
        (sb.items.len(), sb.total, sb.page, sb.page_size),
        (0, 0, 1, 50)
    );
    let runs = store
        .list_runs(&RunQuery::default())
        .await
        .must("list_runs");
    assert_eq!((runs.items.len(), runs.total), (0, 0));
    let tasks = store
        .list_tasks(&TaskQuery::default())
        .await
        .must("list_tasks");
    assert_eq!((tasks.items.len(), tasks.total), (0, 0));
    assert!(
        store
            .claim_tasks("w", None, 10, LIVE)
            .await
            .must("claim")
            .is_empty()
    );
}

// ---------------------------------------------------------------------------------------------
// Reopening

/// Everything written — storyboards, runs, tasks with attempts and leases — reads back the same
/// after the store is closed and opened again, revisions continue, and new lease tokens differ
/// from every token issued before.
pub async fn data_survives_closing_and_reopening(factory: &dyn StoreFactory) {
    if !factory.is_durable() {
        note("skipping data_survives_closing_and_reopening: this store is not durable");
        return;
    }
    let f = Fixture::new(3, 1);
    let (tasks, run, old_tokens) = {
        let store = factory.open().await.must("open");
        f.store(&*store).await;
        let mut run = f.run.clone();
        run.set_status(RunStatus::Running).must("transition");
        let run = store.update_run(&run).await.must("update_run");
        let mut t = f.tasks[0].clone();
        t.set_status(TaskStatus::Submitting).must("transition");
        t.error = Some(TaskError::new(ErrorCode::Timeout, "slow"));
        store.update_task(&t).await.must("update_task");
        let lapsed = store
            .claim_tasks("worker-a", None, 1, LAPSED)
            .await
            .must("claim, lapsing");
        let live = store
            .claim_tasks("worker-b", None, 1, LIVE)
            .await
            .must("claim, live");
        let old_tokens: HashSet<u64> = lapsed
            .iter()
            .chain(&live)
            .map(|t| lease_of(t).token)
            .collect();
        assert_eq!(old_tokens.len(), 2);
        let mut tasks = Vec::new();
        for t in &f.tasks {
            tasks.push(store.get_task(t.id).await.must("get_task"));
        }
        (tasks, run, old_tokens)
        // The store is dropped (closed) here.
    };
    let store = factory.open().await.must("reopen");
    assert_eq!(
        store
            .get_storyboard(f.storyboard.id)
            .await
            .must("get_storyboard"),
        f.storyboard
    );
    assert_eq!(
        store
            .get_segment(f.storyboard.segments[2].id)
            .await
            .must("get_segment")
            .1,
        f.storyboard.segments[2]
    );
    assert_eq!(store.get_run(run.id).await.must("get_run"), run);
    for t in &tasks {
        assert_eq!(
            &store.get_task(t.id).await.must("get_task"),
            t,
            "task survives"
        );
    }
    let listed = store
        .list_tasks(&TaskQuery::for_run(run.id))
        .await
        .must("list_tasks");
    assert_eq!(listed.total, 3);
    assert_eq!(
        store.run_counts(run.id).await.must("run_counts").total,
        3,
        "counts survive"
    );

    // Revisions continue; fencing still holds; tokens stay unique.
    let again = store
        .claim_tasks("worker-c", None, 10, LIVE)
        .await
        .must("claim after reopening");
    assert_eq!(again.len(), 2, "the lapsed lease and the unleased task");
    for t in &again {
        assert!(
            !old_tokens.contains(&lease_of(t).token),
            "a token from before the reopen was issued again"
        );
    }
    let mut w = again[0].clone();
    w.progress = Some(42);
    let written = store.update_task(&w).await.must("write after reopening");
    assert_eq!(written.revision, again[0].revision + 1);
    drop(store);
    let store = factory.open().await.must("reopen again");
    assert_eq!(store.get_task(w.id).await.must("get_task"), written);
}
