//! The behaviours: one `pub async fn` each, panicking (like a test) when the store misbehaves.

use std::collections::HashSet;

use cineflow_core::store::{PageRequest, RunQuery, SortOrder, TaskQuery, TaskSort};
use cineflow_core::{
    ErrorCode, ErrorKind, RunCounts, RunId, RunStatus, SegmentId, SegmentPatch, Store,
    StoryboardId, Task, TaskError, TaskId, TaskStatus,
};

use super::fixtures::{Fixture, at, storyboard};
use super::{LIVE, Must, assert_query, fails, ids};

// ---------------------------------------------------------------------------------------------
// Storyboards and segments

/// Storyboards read back exactly as written, and list newest first (ties by id), page by page
/// with the right totals.
pub async fn storyboards_round_trip_and_are_listed_newest_first(store: &dyn Store) {
    let mut boards = vec![
        storyboard(2, at(0)),
        storyboard(1, at(1_000)),
        storyboard(3, at(2_000)),
        storyboard(1, at(2_000)),
    ];
    for sb in &boards {
        store.put_storyboard(sb).await.must("put_storyboard");
    }
    for sb in &boards {
        let got = store.get_storyboard(sb.id).await.must("get_storyboard");
        assert_eq!(&got, sb, "a storyboard reads back exactly as written");
    }
    boards.sort_by(|a, b| b.created_at.cmp(&a.created_at).then(a.id.cmp(&b.id)));
    let want: Vec<StoryboardId> = boards.iter().map(|s| s.id).collect();

    let all = store
        .list_storyboards(PageRequest::new(1, 10))
        .await
        .must("list_storyboards");
    assert_eq!(all.total, 4);
    let got: Vec<StoryboardId> = all.items.iter().map(|s| s.id).collect();
    assert_eq!(got, want, "newest first, ties by id");
    assert_eq!(all.items, boards, "listed storyboards are whole");

    let first = store
        .list_storyboards(PageRequest::new(1, 3))
        .await
        .must("page 1");
    let second = store
        .list_storyboards(PageRequest::new(2, 3))
        .await
        .must("page 2");
    let past = store
        .list_storyboards(PageRequest::new(3, 3))
        .await
        .must("page 3");
    assert_eq!((first.page, first.page_size, first.total), (1, 3, 4));
    assert_eq!(first.items, boards[..3].to_vec());
    assert_eq!((second.page, second.total), (2, 4));
    assert_eq!(second.items, boards[3..].to_vec());
    assert!(past.items.is_empty(), "a page past the end is empty");
    assert_eq!(past.total, 4, "a page past the end still counts everything");
}

/// Putting a storyboard with a known id replaces it: its name, time and segments. Segments it
/// no longer has are not found; new ones are.
pub async fn putting_a_storyboard_again_replaces_it_and_its_segments(store: &dyn Store) {
    let original = storyboard(2, at(0));
    store.put_storyboard(&original).await.must("put");
    let dropped = original.segments[1].id;

    let mut replaced = original.clone().with_name("Renamed 改名");
    replaced.created_at = at(5_000);
    replaced.segments[0].prompt_text = "Shot 1, rewritten.".into();
    let mut added = storyboard(1, at(0)).segments[0].clone();
    added.index = 2;
    replaced.segments[1] = added.clone();
    store.put_storyboard(&replaced).await.must("put again");

    assert_eq!(
        store.get_storyboard(original.id).await.must("get"),
        replaced
    );
    let page = store
        .list_storyboards(PageRequest::default())
        .await
        .must("list");
    assert_eq!(page.total, 1, "a replaced storyboard is not listed twice");
    assert_eq!(page.items, vec![replaced.clone()]);
    fails(
        store.get_segment(dropped).await,
        ErrorKind::NotFound,
        "a segment the storyboard no longer has",
    );
    assert_eq!(
        store
            .get_segment(added.id)
            .await
            .must("get the new segment"),
        (original.id, added)
    );
    assert_eq!(
        store
            .get_segment(replaced.segments[0].id)
            .await
            .must("kept")
            .1,
        replaced.segments[0]
    );
}

/// A segment reads back with its storyboard's id; a valid patch is applied, returned, and
/// visible through the storyboard; other segments are untouched.
pub async fn segments_are_read_and_patched(store: &dyn Store) {
    let sb = storyboard(3, at(0));
    store.put_storyboard(&sb).await.must("put");
    let seg = &sb.segments[1];
    assert_eq!(
        store.get_segment(seg.id).await.must("get_segment"),
        (sb.id, seg.clone())
    );

    let patch = SegmentPatch::default()
        .with_prompt_text("霧の港、灯台がゆっくり回る 🌫️".into())
        .with_duration_s(15)
        .with_director_intent(None);
    let patched = store
        .update_segment(seg.id, &patch)
        .await
        .must("update_segment");
    let mut want = seg.clone();
    want.apply(&patch).must("the reference patch");
    assert_eq!(patched, want, "the patched segment is returned");
    assert_eq!(
        store.get_segment(seg.id).await.must("get again"),
        (sb.id, want.clone())
    );
    let stored = store.get_storyboard(sb.id).await.must("get_storyboard");
    assert_eq!(stored.segments[1], want, "the storyboard holds the patch");
    assert_eq!(
        stored.segments[0], sb.segments[0],
        "other segments untouched"
    );
    assert_eq!(
        stored.segments[2], sb.segments[2],
        "other segments untouched"
    );
    assert_eq!(stored.created_at, sb.created_at);
}

/// An invalid patch is [`ErrorKind::InvalidInput`] and leaves the segment as it was; patching a
/// missing segment is [`ErrorKind::NotFound`].
pub async fn an_invalid_segment_patch_is_rejected_and_changes_nothing(store: &dyn Store) {
    let sb = storyboard(2, at(0));
    store.put_storyboard(&sb).await.must("put");
    let bad = SegmentPatch::default()
        .with_prompt_text("   ".into())
        .with_duration_s(0);
    fails(
        store.update_segment(sb.segments[0].id, &bad).await,
        ErrorKind::InvalidInput,
        "an empty prompt and a zero duration",
    );
    assert_eq!(
        store.get_storyboard(sb.id).await.must("get"),
        sb,
        "a rejected patch changes nothing"
    );
    fails(
        store
            .update_segment(SegmentId::new(), &SegmentPatch::default())
            .await,
        ErrorKind::NotFound,
        "patching a missing segment",
    );
}

// ---------------------------------------------------------------------------------------------
// Runs

/// A run and its tasks are stored by one `insert_run` and read back exactly.
pub async fn a_run_and_its_tasks_are_stored_together(store: &dyn Store) {
    let f = Fixture::new(3, 2);
    f.store(store).await;
    assert_eq!(store.get_run(f.run.id).await.must("get_run"), f.run);
    for t in &f.tasks {
        assert_eq!(&store.get_task(t.id).await.must("get_task"), t);
    }
    let page = store
        .list_tasks(&TaskQuery::for_run(f.run.id))
        .await
        .must("list_tasks");
    assert_eq!(page.total, 6);
    assert_eq!(
        page.items, f.tasks,
        "the run's tasks, by segment then version"
    );
}

/// Checks that nothing of `rejected` was stored and `kept` is intact.
async fn assert_nothing_stored(store: &dyn Store, rejected: &Fixture, kept: &Fixture) {
    fails(
        store.get_run(rejected.run.id).await,
        ErrorKind::NotFound,
        "the rejected run",
    );
    let kept_ids: HashSet<TaskId> = kept.tasks.iter().map(|t| t.id).collect();
    for t in rejected.tasks.iter().filter(|t| !kept_ids.contains(&t.id)) {
        fails(
            store.get_task(t.id).await,
            ErrorKind::NotFound,
            "a task of the rejected run",
        );
    }
    let rejected_run_tasks = store
        .list_tasks(&TaskQuery::for_run(rejected.run.id))
        .await
        .must("list the rejected run's tasks");
    assert_eq!(rejected_run_tasks.total, 0);
    assert!(rejected_run_tasks.items.is_empty());
    let all = store
        .list_tasks(&TaskQuery::default().with_page(PageRequest::new(1, 1000)))
        .await
        .must("list all tasks");
    let mut want = kept.tasks.clone();
    want.sort_by(|a, b| TaskQuery::default().compare(a, b));
    assert_eq!(all.items, want, "the earlier run's tasks are intact");
    assert_eq!(store.get_run(kept.run.id).await.must("kept run"), kept.run);
}

/// Stores a [`Fixture`] of `segments` segments, then checks that inserting another run of it
/// (`versions` versions a segment) changed by `spoil` is a [`ErrorKind::Conflict`] (`what`)
/// that stores nothing.
async fn assert_rejected_whole(
    store: &dyn Store,
    segments: u32,
    versions: u32,
    what: &str,
    spoil: impl FnOnce(&Fixture, &mut Fixture),
) {
    let first = Fixture::new(segments, 1);
    first.store(store).await;
    let mut second = first.another_run(versions);
    spoil(&first, &mut second);
    fails(
        store.insert_run(&second.run, &second.tasks).await,
        ErrorKind::Conflict,
        what,
    );
    assert_nothing_stored(store, &second, &first).await;
}

/// A run one of whose tasks reuses an existing task's id is a [`ErrorKind::Conflict`], and
/// nothing of it is stored (neither the run nor its other tasks).
pub async fn a_run_reusing_an_existing_task_id_is_rejected_whole(store: &dyn Store) {
    assert_rejected_whole(store, 2, 1, "a run reusing a task id", |first, second| {
        second.tasks[1].id = first.tasks[0].id;
    })
    .await;
}

/// A run with a task that names another run is a [`ErrorKind::Conflict`], and nothing of it
/// is stored.
pub async fn a_run_with_a_task_of_another_run_is_rejected_whole(store: &dyn Store) {
    assert_rejected_whole(
        store,
        2,
        2,
        "a run with a task of another run",
        |first, second| {
            second.tasks[3].run_id = first.run.id;
        },
    )
    .await;
}

/// A run whose task list holds the same task id twice is a [`ErrorKind::Conflict`], and nothing
/// of it is stored.
pub async fn a_run_with_a_duplicated_task_id_is_rejected_whole(store: &dyn Store) {
    assert_rejected_whole(
        store,
        1,
        3,
        "a run listing one task id twice",
        |_, second| {
            second.tasks[2].id = second.tasks[0].id;
        },
    )
    .await;
}

/// Inserting a run whose id exists is a [`ErrorKind::Conflict`]; tasks sent with it are not
/// stored.
pub async fn inserting_a_run_twice_is_a_conflict(store: &dyn Store) {
    let f = Fixture::new(2, 1);
    f.store(store).await;
    fails(
        store.insert_run(&f.run, &[]).await,
        ErrorKind::Conflict,
        "the same run again",
    );
    let extra = f.another_run(1);
    let tasks: Vec<Task> = extra
        .tasks
        .iter()
        .map(|t| {
            let mut changed = t.clone();
            changed.run_id = f.run.id;
            changed
        })
        .collect();
    fails(
        store.insert_run(&f.run, &tasks).await,
        ErrorKind::Conflict,
        "the same run with new tasks",
    );
    for t in &tasks {
        fails(store.get_task(t.id).await, ErrorKind::NotFound, "new task");
    }
    assert_eq!(store.run_counts(f.run.id).await.must("counts").total, 2);
}

/// Runs list newest first, filtered by status and by storyboard, paginated with totals.
pub async fn runs_are_listed_newest_first_and_filtered(store: &dyn Store) {
    let a = storyboard(1, at(0));
    let b = storyboard(1, at(0));
    let mut runs = Vec::new();
    for (sb, status, t) in [
        (&a, RunStatus::Pending, 0),
        (&a, RunStatus::Running, 1_000),
        (&b, RunStatus::Completed, 2_000),
        (&b, RunStatus::Pending, 3_000),
    ] {
        let mut r = super::fixtures::run(sb, at(t));
        r.status = status;
        store.insert_run(&r, &[]).await.must("insert_run");
        runs.push(r);
    }
    let list = |q: RunQuery| async move { store.list_runs(&q).await.must("list_runs") };
    let ids = |p: &cineflow_core::Page<cineflow_core::Run>| -> Vec<RunId> {
        p.items.iter().map(|r| r.id).collect()
    };

    let all = list(RunQuery::default()).await;
    assert_eq!(all.total, 4);
    assert_eq!(
        ids(&all),
        vec![runs[3].id, runs[2].id, runs[1].id, runs[0].id],
        "newest first"
    );
    assert_eq!(all.items[0], runs[3], "listed runs are whole");

    let pending = list(RunQuery::default().with_status(RunStatus::Pending)).await;
    assert_eq!(ids(&pending), vec![runs[3].id, runs[0].id]);
    assert_eq!(pending.total, 2);

    let of_a = list(RunQuery::default().with_storyboard_id(a.id)).await;
    assert_eq!(ids(&of_a), vec![runs[1].id, runs[0].id]);

    let both = list(
        RunQuery::default()
            .with_status(RunStatus::Pending)
            .with_storyboard_id(b.id),
    )
    .await;
    assert_eq!(ids(&both), vec![runs[3].id]);
    assert_eq!(both.total, 1);

    let none = list(RunQuery::default().with_status(RunStatus::Cancelled)).await;
    assert_eq!((none.items.len(), none.total), (0, 0));

    let page2 = list(RunQuery::default().with_page(PageRequest::new(2, 3))).await;
    assert_eq!(ids(&page2), vec![runs[0].id]);
    assert_eq!((page2.page, page2.page_size, page2.total), (2, 3, 4));
}

/// `update_run` is compare-and-swap: the right revision writes and returns the run with the
/// revision incremented; a stale one is a [`ErrorKind::Conflict`] and changes nothing.
pub async fn update_run_is_compare_and_swap(store: &dyn Store) {
    let f = Fixture::new(1, 1);
    f.store(store).await;
    let mut r = f.run.clone();
    r.set_status(RunStatus::Running).must("transition");
    r.counts.total = 1;
    let written = store.update_run(&r).await.must("update_run");
    assert_eq!(
        written.revision,
        r.revision + 1,
        "the revision is incremented"
    );
    assert_eq!(written, {
        let mut changed = r.clone();
        changed.revision = r.revision + 1;
        changed
    });
    assert_eq!(store.get_run(r.id).await.must("get_run"), written);

    let mut stale = r.clone();
    stale.status = RunStatus::Cancelled;
    fails(
        store.update_run(&stale).await,
        ErrorKind::Conflict,
        "a write with a stale revision",
    );
    assert_eq!(
        store.get_run(r.id).await.must("get_run"),
        written,
        "a stale write changes nothing"
    );

    let mut next = written.clone();
    next.set_status(RunStatus::Completed).must("transition");
    let again = store.update_run(&next).await.must("update_run again");
    assert_eq!(again.revision, written.revision + 1);
    assert_eq!(again.status, RunStatus::Completed);
}

/// `run_counts` counts a run's tasks by status (a run without tasks has zero of everything).
pub async fn run_counts_count_tasks_by_status(store: &dyn Store) {
    let f = Fixture::new(3, 2);
    f.store(store).await;
    let other = f.another_run(1);
    other.insert(store).await;
    for (t, status) in f.tasks.iter().zip([
        TaskStatus::Completed,
        TaskStatus::Failed,
        TaskStatus::Running,
        TaskStatus::DownloadFailed,
        TaskStatus::Pending,
        TaskStatus::Cancelled,
    ]) {
        let mut t = t.clone();
        t.status = status;
        store.update_task(&t).await.must("update_task");
    }
    let counts = store.run_counts(f.run.id).await.must("run_counts");
    assert_eq!(
        (
            counts.total,
            counts.pending,
            counts.in_progress,
            counts.completed,
            counts.failed,
            counts.download_failed,
            counts.cancelled,
            counts.interrupted,
            counts.blocked,
        ),
        (6, 1, 1, 1, 1, 1, 1, 0, 0)
    );
    let other_counts = store.run_counts(other.run.id).await.must("other run");
    assert_eq!((other_counts.total, other_counts.pending), (3, 3));

    let empty = super::fixtures::run(&f.storyboard, at(9_000));
    store.insert_run(&empty, &[]).await.must("insert_run");
    assert_eq!(
        store.run_counts(empty.id).await.must("run without tasks"),
        RunCounts::default()
    );
}

// ---------------------------------------------------------------------------------------------
// Task writes

/// `update_task` is compare-and-swap: it returns the task as written with `revision + 1`;
/// writing the old revision again is a [`ErrorKind::Conflict`] and changes nothing.
pub async fn update_task_is_compare_and_swap(store: &dyn Store) {
    let f = Fixture::new(2, 1);
    f.store(store).await;
    let mut t = f.tasks[0].clone();
    t.set_status(TaskStatus::Submitting).must("transition");
    t.progress = Some(5);
    let written = store.update_task(&t).await.must("update_task");
    assert_eq!(
        written,
        {
            let mut changed = t.clone();
            changed.revision = t.revision + 1;
            changed
        },
        "the task as written, revision + 1"
    );
    assert_eq!(store.get_task(t.id).await.must("get_task"), written);

    let mut stale = t.clone();
    stale.progress = Some(99);
    fails(
        store.update_task(&stale).await,
        ErrorKind::Conflict,
        "a write with a stale revision",
    );
    assert_eq!(
        store.get_task(t.id).await.must("get_task"),
        written,
        "a stale write changes nothing"
    );
    assert_eq!(
        store.get_task(f.tasks[1].id).await.must("other task"),
        f.tasks[1],
        "other tasks untouched"
    );

    let mut next = written.clone();
    next.set_status(TaskStatus::Queued).must("transition");
    let again = store.update_task(&next).await.must("update_task again");
    assert_eq!(again.revision, written.revision + 1);
}

/// `update_task` never changes the lease: a write that carries the held lease with other
/// fields (a later deadline) stores the task with the lease as it was.
pub async fn update_task_keeps_the_stored_lease(store: &dyn Store) {
    let f = Fixture::new(1, 1);
    f.store(store).await;
    let claimed = store
        .claim_tasks("worker-a", None, 1, LIVE)
        .await
        .must("claim");
    assert_eq!(claimed.len(), 1);
    let held = claimed[0]
        .lease
        .clone()
        .unwrap_or_else(|| panic!("no lease"));

    let mut w = claimed[0].clone();
    w.set_status(TaskStatus::Submitting).must("transition");
    if let Some(l) = &mut w.lease {
        l.expires_at += time::Duration::days(365);
    }
    let written = store.update_task(&w).await.must("update_task");
    assert_eq!(
        written.lease.as_ref(),
        Some(&held),
        "the stored lease is kept"
    );
    assert_eq!(written.status, TaskStatus::Submitting);
    let stored = store.get_task(w.id).await.must("get_task");
    assert_eq!(stored, written);
}

/// Two runs of one storyboard with a mix of states and errors, as stored.
async fn mixed_tasks(store: &dyn Store) -> (Fixture, Fixture, Vec<Task>) {
    fn err(code: ErrorCode, retryable: bool) -> Option<TaskError> {
        let mut e = TaskError::new(code, format!("{code} happened"));
        e.retryable = retryable;
        Some(e)
    }
    let a = Fixture::new(3, 2);
    a.store(store).await;
    let b = a.another_run(2);
    b.insert(store).await;
    let changes: [(&Task, TaskStatus, Option<TaskError>); 8] = [
        (
            &a.tasks[0],
            TaskStatus::Failed,
            err(ErrorCode::ContentPolicy, false),
        ),
        (
            &a.tasks[1],
            TaskStatus::Failed,
            err(ErrorCode::RateLimited, true),
        ),
        (
            &a.tasks[2],
            TaskStatus::DownloadFailed,
            err(ErrorCode::DownloadFailed, true),
        ),
        (&a.tasks[3], TaskStatus::Completed, None),
        (
            &b.tasks[0],
            TaskStatus::Cancelled,
            err(ErrorCode::Cancelled, false),
        ),
        (
            &b.tasks[1],
            TaskStatus::Interrupted,
            err(ErrorCode::Interrupted, true),
        ),
        (&b.tasks[2], TaskStatus::Running, None),
        // Not the code's default: the filter must read the stored flag.
        (
            &b.tasks[4],
            TaskStatus::Failed,
            err(ErrorCode::RateLimited, false),
        ),
    ];
    for (t, status, error) in changes {
        let mut t = t.clone();
        t.status = status;
        t.error = error;
        store.update_task(&t).await.must("update_task");
    }
    let mut all = Vec::new();
    for t in a.tasks.iter().chain(&b.tasks) {
        all.push(store.get_task(t.id).await.must("get_task"));
    }
    (a, b, all)
}

/// Tasks filter by one or several statuses.
pub async fn tasks_are_filtered_by_status(store: &dyn Store) {
    let (_, _, all) = mixed_tasks(store).await;
    let q = |status: Vec<TaskStatus>| TaskQuery::default().with_status(status);
    assert_query(store, &all, &q(vec![TaskStatus::Failed]), "failed").await;
    let failed = store
        .list_tasks(&q(vec![TaskStatus::Failed]))
        .await
        .must("failed");
    assert_eq!(failed.total, 3);
    let several = q(vec![
        TaskStatus::Cancelled,
        TaskStatus::Completed,
        TaskStatus::DownloadFailed,
    ]);
    assert_query(store, &all, &several, "several statuses").await;
    assert_eq!(store.list_tasks(&several).await.must("several").total, 3);
    assert_query(store, &all, &q(vec![TaskStatus::Pending]), "pending").await;
    assert_query(store, &all, &q(vec![TaskStatus::Queued]), "none queued").await;
    assert_query(store, &all, &q(Vec::new()), "no status filter").await;
}

/// Tasks filter by whether their error is retryable (tasks without an error are not).
pub async fn tasks_are_filtered_by_retryable(store: &dyn Store) {
    let (_, _, all) = mixed_tasks(store).await;
    let yes = TaskQuery::default().with_retryable(true);
    let no = TaskQuery::default().with_retryable(false);
    assert_query(store, &all, &yes, "retryable").await;
    assert_query(store, &all, &no, "not retryable").await;
    assert_eq!(store.list_tasks(&yes).await.must("retryable").total, 3);
    assert_eq!(store.list_tasks(&no).await.must("not retryable").total, 9);
    let retryable_failed = TaskQuery::default()
        .with_retryable(true)
        .with_status(vec![TaskStatus::Failed]);
    assert_query(store, &all, &retryable_failed, "retryable and failed").await;
}

/// Tasks filter by error code, segment index and run, alone and together.
pub async fn tasks_are_filtered_by_error_code_segment_and_run(store: &dyn Store) {
    let (a, b, all) = mixed_tasks(store).await;
    let rate_limited = TaskQuery::default().with_error_code(ErrorCode::RateLimited);
    assert_query(store, &all, &rate_limited, "error code").await;
    assert_eq!(store.list_tasks(&rate_limited).await.must("code").total, 2);
    let segment = TaskQuery::default().with_segment_index(2);
    assert_query(store, &all, &segment, "segment index").await;
    assert_eq!(store.list_tasks(&segment).await.must("segment").total, 4);
    assert_query(store, &all, &TaskQuery::for_run(a.run.id), "run a").await;
    assert_query(store, &all, &TaskQuery::for_run(b.run.id), "run b").await;
    let combined = TaskQuery::default()
        .with_run_id(b.run.id)
        .with_segment_index(3)
        .with_error_code(ErrorCode::RateLimited);
    assert_query(store, &all, &combined, "run, segment and code").await;
    assert_eq!(store.list_tasks(&combined).await.must("combined").total, 1);
    let unknown_run = TaskQuery::for_run(RunId::new());
    let none = store.list_tasks(&unknown_run).await.must("unknown run");
    assert_eq!((none.items.len(), none.total), (0, 0));
}

/// Tasks sort by segment index, ascending and descending, ties broken by version then id.
pub async fn tasks_are_sorted_by_segment_index_with_ties_by_version_then_id(store: &dyn Store) {
    let (_, _, all) = mixed_tasks(store).await;
    for order in [SortOrder::Asc, SortOrder::Desc] {
        let q = TaskQuery::default()
            .with_sort(TaskSort::SegmentIndex)
            .with_order(order);
        assert_query(store, &all, &q, &format!("by segment, {order:?}")).await;
        let got = store.list_tasks(&q).await.must("list");
        let keys: Vec<(u32, u32)> = got
            .items
            .iter()
            .map(|t| (t.segment_index, t.version_index))
            .collect();
        let mut sorted = keys.clone();
        sorted.sort();
        if order == SortOrder::Desc {
            sorted.reverse();
        }
        assert_eq!(keys, sorted, "by segment then version, {order:?}");
    }
}

/// Tasks sort by creation time, ascending and descending, ties broken by id.
pub async fn tasks_are_sorted_by_created_at_with_ties_by_id(store: &dyn Store) {
    let mut f = Fixture::new(3, 2);
    // Three tasks created at the same instant, one a nanosecond later.
    let tie = at(500);
    for t in &mut f.tasks[1..4] {
        t.created_at = tie;
    }
    f.tasks[4].created_at = tie + time::Duration::nanoseconds(1);
    f.store(store).await;
    for order in [SortOrder::Asc, SortOrder::Desc] {
        let q = TaskQuery::default()
            .with_sort(TaskSort::CreatedAt)
            .with_order(order);
        assert_query(store, &f.tasks, &q, &format!("by time, {order:?}")).await;
    }
}

/// Pages are cut after filtering and sorting; each carries the total; a page past the end is
/// empty with the right total.
pub async fn task_pages_have_totals_and_pages_past_the_end_are_empty(store: &dyn Store) {
    let (_, _, all) = mixed_tasks(store).await;
    let mut seen = Vec::new();
    for page in 1..=4 {
        let q = TaskQuery::default()
            .with_sort(TaskSort::CreatedAt)
            .with_order(SortOrder::Desc)
            .with_page(PageRequest::new(page, 5));
        assert_query(store, &all, &q, &format!("page {page}")).await;
        let got = store.list_tasks(&q).await.must("list");
        assert_eq!((got.page, got.page_size, got.total), (page, 5, 12));
        assert_eq!(got.items.len(), [5, 5, 2, 0][page as usize - 1]);
        seen.extend(ids(&got.items));
    }
    let distinct: HashSet<TaskId> = seen.iter().copied().collect();
    assert_eq!(
        (seen.len(), distinct.len()),
        (12, 12),
        "pages neither overlap nor skip"
    );
    let filtered = TaskQuery::default()
        .with_status(vec![TaskStatus::Pending])
        .with_page(PageRequest::new(2, 2));
    assert_query(store, &all, &filtered, "a filtered page").await;
    let past = TaskQuery::default()
        .with_status(vec![TaskStatus::Pending])
        .with_page(PageRequest::new(50, 2));
    let got = store.list_tasks(&past).await.must("past the end");
    assert!(got.items.is_empty());
    assert_eq!(got.total, 4);
}
