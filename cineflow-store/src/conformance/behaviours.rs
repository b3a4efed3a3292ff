//! The behaviours: one `pub async fn` each, panicking (like a test) when the store misbehaves.

use std::collections::HashSet;
use std::time::Duration;

use cineflow_core::provider::{ProviderJob, VideoAsset};
use cineflow_core::store::{PageRequest, RunQuery, SortOrder, TaskQuery, TaskSort};
use cineflow_core::{
    Artifact, Attempt, AttemptOutcome, ErrorCode, ErrorKind, ImageRef, Lease, ModelAlias, ModelId,
    ProviderId, RunCounts, RunId, RunStatus, SegmentId, SegmentPatch, Store, StoryboardId, Task,
    TaskError, TaskId, TaskStatus,
};
use time::OffsetDateTime;

use super::fixtures::{Fixture, at, storyboard};
use super::{LAPSED, LIVE, Must, StoreFactory, assert_query, fails, ids, note};

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

    let patch = SegmentPatch {
        prompt_text: Some("霧の港、灯台がゆっくり回る 🌫️".into()),
        duration_s: Some(15),
        director_intent: Some(None),
        ..SegmentPatch::default()
    };
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
    let bad = SegmentPatch {
        prompt_text: Some("   ".into()),
        duration_s: Some(0),
        ..SegmentPatch::default()
    };
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
        .list_tasks(&TaskQuery {
            page: PageRequest::new(1, 1000),
            ..TaskQuery::default()
        })
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
        .map(|t| Task {
            run_id: f.run.id,
            ..t.clone()
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

    let pending = list(RunQuery {
        status: Some(RunStatus::Pending),
        ..RunQuery::default()
    })
    .await;
    assert_eq!(ids(&pending), vec![runs[3].id, runs[0].id]);
    assert_eq!(pending.total, 2);

    let of_a = list(RunQuery {
        storyboard_id: Some(a.id),
        ..RunQuery::default()
    })
    .await;
    assert_eq!(ids(&of_a), vec![runs[1].id, runs[0].id]);

    let both = list(RunQuery {
        status: Some(RunStatus::Pending),
        storyboard_id: Some(b.id),
        ..RunQuery::default()
    })
    .await;
    assert_eq!(ids(&both), vec![runs[3].id]);
    assert_eq!(both.total, 1);

    let none = list(RunQuery {
        status: Some(RunStatus::Cancelled),
        ..RunQuery::default()
    })
    .await;
    assert_eq!((none.items.len(), none.total), (0, 0));

    let page2 = list(RunQuery {
        page: PageRequest::new(2, 3),
        ..RunQuery::default()
    })
    .await;
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
    assert_eq!(
        written,
        cineflow_core::Run {
            revision: r.revision + 1,
            ..r.clone()
        }
    );
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
        counts,
        RunCounts {
            total: 6,
            pending: 1,
            in_progress: 1,
            completed: 1,
            failed: 1,
            download_failed: 1,
            cancelled: 1,
            interrupted: 0,
        }
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
        Task {
            revision: t.revision + 1,
            ..t.clone()
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
    let q = |status: Vec<TaskStatus>| TaskQuery {
        status,
        ..TaskQuery::default()
    };
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
    let yes = TaskQuery {
        retryable: Some(true),
        ..TaskQuery::default()
    };
    let no = TaskQuery {
        retryable: Some(false),
        ..TaskQuery::default()
    };
    assert_query(store, &all, &yes, "retryable").await;
    assert_query(store, &all, &no, "not retryable").await;
    assert_eq!(store.list_tasks(&yes).await.must("retryable").total, 3);
    assert_eq!(store.list_tasks(&no).await.must("not retryable").total, 9);
    let retryable_failed = TaskQuery {
        retryable: Some(true),
        status: vec![TaskStatus::Failed],
        ..TaskQuery::default()
    };
    assert_query(store, &all, &retryable_failed, "retryable and failed").await;
}

/// Tasks filter by error code, segment index and run, alone and together.
pub async fn tasks_are_filtered_by_error_code_segment_and_run(store: &dyn Store) {
    let (a, b, all) = mixed_tasks(store).await;
    let rate_limited = TaskQuery {
        error_code: Some(ErrorCode::RateLimited),
        ..TaskQuery::default()
    };
    assert_query(store, &all, &rate_limited, "error code").await;
    assert_eq!(store.list_tasks(&rate_limited).await.must("code").total, 2);
    let segment = TaskQuery {
        segment_index: Some(2),
        ..TaskQuery::default()
    };
    assert_query(store, &all, &segment, "segment index").await;
    assert_eq!(store.list_tasks(&segment).await.must("segment").total, 4);
    assert_query(store, &all, &TaskQuery::for_run(a.run.id), "run a").await;
    assert_query(store, &all, &TaskQuery::for_run(b.run.id), "run b").await;
    let combined = TaskQuery {
        run_id: Some(b.run.id),
        segment_index: Some(3),
        error_code: Some(ErrorCode::RateLimited),
        ..TaskQuery::default()
    };
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
        let q = TaskQuery {
            sort: TaskSort::SegmentIndex,
            order,
            ..TaskQuery::default()
        };
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
        let q = TaskQuery {
            sort: TaskSort::CreatedAt,
            order,
            ..TaskQuery::default()
        };
        assert_query(store, &f.tasks, &q, &format!("by time, {order:?}")).await;
    }
}

/// Pages are cut after filtering and sorting; each carries the total; a page past the end is
/// empty with the right total.
pub async fn task_pages_have_totals_and_pages_past_the_end_are_empty(store: &dyn Store) {
    let (_, _, all) = mixed_tasks(store).await;
    let mut seen = Vec::new();
    for page in 1..=4 {
        let q = TaskQuery {
            sort: TaskSort::CreatedAt,
            order: SortOrder::Desc,
            page: PageRequest::new(page, 5),
            ..TaskQuery::default()
        };
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
    let filtered = TaskQuery {
        status: vec![TaskStatus::Pending],
        page: PageRequest::new(2, 2),
        ..TaskQuery::default()
    };
    assert_query(store, &all, &filtered, "a filtered page").await;
    let past = TaskQuery {
        status: vec![TaskStatus::Pending],
        page: PageRequest::new(50, 2),
        ..TaskQuery::default()
    };
    let got = store.list_tasks(&past).await.must("past the end");
    assert!(got.items.is_empty());
    assert_eq!(got.total, 4);
}

// ---------------------------------------------------------------------------------------------
// Exact round trips

/// A task with a full attempt history (jobs, assets, vendor payloads, outcomes, errors,
/// nanosecond timestamps in other offsets) and an artifact reads back exactly, and survives
/// later writes.
pub async fn attempt_history_round_trips_exactly(store: &dyn Store) {
    let f = Fixture::new(1, 1);
    f.store(store).await;
    let provider = ProviderId::new("sorahk").must("provider id");
    let backup = ProviderId::new("aihubmix").must("provider id");
    let t0 = time::macros::datetime!(2026-01-11 15:08:35.987654321 +08:00);
    let job = |vendor_job_id: &str, p: &ProviderId, at: OffsetDateTime| ProviderJob {
        provider: p.clone(),
        vendor_job_id: vendor_job_id.into(),
        vendor_model: "sora-2-pro".into(),
        base_url: Some("https://api.example.com/v1".into()),
        submitted_at: at,
        extra: serde_json::json!({"queue": "hd", "nested": {"n": 1, "list": [1.5, "二", null]}}),
    };
    let mut error = TaskError::new(ErrorCode::RateLimited, "429: slow down — 请稍后再试");
    error.provider_code = Some("rate_limit_exceeded".into());
    error.http_status = Some(429);
    error.raw = Some(r#"{"error":{"code":"rate_limit_exceeded"}}"#.into());
    let attempts = vec![
        Attempt {
            n: 1,
            provider: provider.clone(),
            provider_model: "sora-2-pro".into(),
            reason: "priority 1".into(),
            idempotency_key: format!("{}-1", f.tasks[0].id),
            job: Some(job("job_1", &provider, t0)),
            asset: None,
            vendor_payload: serde_json::json!({"status": "failed", "progress": 12}),
            submitted_at: t0,
            finished_at: Some(t0 + time::Duration::nanoseconds(1_234_567_891)),
            outcome: Some(AttemptOutcome::Failed {
                error: error.clone(),
            }),
            model_alias: None,
        },
        Attempt {
            n: 2,
            provider: backup.clone(),
            provider_model: "sora-2".into(),
            reason: "failover after rate_limited".into(),
            idempotency_key: format!("{}-2", f.tasks[0].id),
            job: None,
            asset: None,
            vendor_payload: serde_json::Value::Null,
            submitted_at: t0 + time::Duration::seconds(3),
            finished_at: Some(t0 + time::Duration::seconds(4)),
            outcome: Some(AttemptOutcome::Interrupted {
                error: TaskError::new(ErrorCode::Interrupted, "crashed during submit"),
            }),
            model_alias: None,
        },
        Attempt {
            n: 3,
            provider: provider.clone(),
            provider_model: "sora-2-pro".into(),
            reason: "retry by user".into(),
            idempotency_key: format!("{}-3", f.tasks[0].id),
            job: Some(job("job_3", &provider, t0 + time::Duration::minutes(5))),
            asset: Some(VideoAsset {
                url: "https://cdn.example.com/v/job_3.mp4?sig=abc&exp=1".into(),
                expires_at: Some(t0 + time::Duration::hours(1) + time::Duration::nanoseconds(7)),
                content_type: Some("video/mp4".into()),
            }),
            vendor_payload: serde_json::json!({"status": "succeeded", "progress": 100}),
            submitted_at: t0 + time::Duration::minutes(5),
            finished_at: Some(t0 + time::Duration::minutes(9)),
            outcome: Some(AttemptOutcome::Succeeded),
            model_alias: Some(ModelAlias {
                from: ModelId::new("sora2").must("model id"),
                to: ModelId::new("seedance-2").must("model id"),
            }),
        },
    ];
    let mut t = f.tasks[0].clone();
    t.status = TaskStatus::Completed;
    t.progress = Some(100);
    t.attempts = attempts;
    t.error = Some(error);
    t.image = Some(ImageRef::new("https://example.com/ref.png").must("image ref"));
    t.dry_run = false;
    t.is_pro = true;
    t.artifact = Some(Artifact {
        location: "/videos/1/Segment_1/1_v1.mp4".into(),
        sidecar: Some("/videos/1/Segment_1/1_v1.json".into()),
        sha256: "ab".repeat(32),
        size_bytes: 12_345_678_901,
        content_type: "video/mp4".into(),
    });
    t.updated_at = t0 + time::Duration::minutes(10);
    let written = store.update_task(&t).await.must("update_task");
    let stored = store.get_task(t.id).await.must("get_task");
    assert_eq!(stored, written);
    assert_eq!(
        stored,
        Task {
            revision: t.revision + 1,
            ..t.clone()
        },
        "every field round-trips"
    );
    assert_eq!(stored.attempts, t.attempts, "the whole history is kept");

    let mut later = stored.clone();
    later.progress = Some(99);
    let again = store.update_task(&later).await.must("a later write");
    let stored = store.get_task(t.id).await.must("get_task");
    assert_eq!(stored, again);
    assert_eq!(stored.attempts, t.attempts, "history survives later writes");
    let listed = store
        .list_tasks(&TaskQuery::for_run(f.run.id))
        .await
        .must("list_tasks");
    assert_eq!(
        listed.items,
        vec![stored],
        "listing returns the same record"
    );
}

/// CJK, emoji and combining text, and prompts of the maximum 10,000 characters, round-trip in
/// storyboards and tasks.
pub async fn unicode_and_long_prompts_round_trip(store: &dyn Store) {
    let long: String = "雨🌧️é".chars().cycle().take(10_000).collect();
    assert_eq!(long.chars().count(), 10_000);
    let doc = serde_json::json!({
        "metadata": {"project_name": "夜の東京 🌃"},
        "segments": [
            {"segment_index": 1, "prompt_text": "夜晚的城市 🌃 — neon rain, 東京, émigré 👩‍🚀",
             "asset": {"characters": [{"name": "小明", "id": "@xiaoming"}], "scene": "天台 🏙️"}},
            {"segment_index": 2, "prompt_text": long.clone()},
        ]
    });
    let mut sb = cineflow_core::Storyboard::from_value(&doc).must("storyboard");
    sb.name = "故事板 📽️ «test»".into();
    let f = Fixture::of(&sb, 1, at(0));
    let mut tasks = f.tasks.clone();
    tasks[1].full_prompt = format!("{long}{long}");
    tasks[0].error = Some(TaskError::new(
        ErrorCode::ContentPolicy,
        "内容违规 🚫: \"quoted\" \\ backslash \u{0} nul",
    ));
    store.put_storyboard(&sb).await.must("put_storyboard");
    store.insert_run(&f.run, &tasks).await.must("insert_run");
    assert_eq!(store.get_storyboard(sb.id).await.must("get_storyboard"), sb);
    assert_eq!(
        store
            .get_segment(sb.segments[1].id)
            .await
            .must("get_segment")
            .1
            .prompt_text,
        long
    );
    for t in &tasks {
        assert_eq!(&store.get_task(t.id).await.must("get_task"), t);
    }
    let mut t = tasks[0].clone();
    t.full_prompt = "更新 ✅ 🎬".into();
    let written = store.update_task(&t).await.must("update_task");
    assert_eq!(store.get_task(t.id).await.must("get_task"), written);
    assert_eq!(written.full_prompt, "更新 ✅ 🎬");
}

// ---------------------------------------------------------------------------------------------
// Leases

fn lease_of(task: &Task) -> Lease {
    match &task.lease {
        Some(l) => l.clone(),
        None => panic!("task {} has no lease", task.id),
    }
}

/// Claims take non-terminal tasks without a live lease, oldest first, at most `limit`; each
/// claimed task gets a new lease for the owner and its revision bumped, and is stored so.
pub async fn claims_take_claimable_tasks_oldest_first_up_to_the_limit(store: &dyn Store) {
    let f = Fixture::new(5, 1);
    f.store(store).await;
    // Oldest first is the reverse of segment order in the fixture.
    let mut by_age = f.tasks.clone();
    by_age.sort_by(|a, b| a.created_at.cmp(&b.created_at).then(a.id.cmp(&b.id)));
    let mut done = by_age[0].clone();
    done.status = TaskStatus::Completed;
    store.update_task(&done).await.must("complete the oldest");
    let mut cancelled = by_age[3].clone();
    cancelled.status = TaskStatus::Cancelled;
    store.update_task(&cancelled).await.must("cancel one");

    let before = OffsetDateTime::now_utc();
    let first = store
        .claim_tasks("worker-a", None, 2, LIVE)
        .await
        .must("claim 2");
    assert_eq!(
        ids(&first),
        vec![by_age[1].id, by_age[2].id],
        "the two oldest claimable tasks, oldest first"
    );
    let mut tokens = HashSet::new();
    for (c, original) in first.iter().zip([&by_age[1], &by_age[2]]) {
        let l = lease_of(c);
        assert_eq!(l.owner, "worker-a");
        assert!(l.expires_at > before, "the lease is live");
        assert!(tokens.insert(l.token), "every claim gets its own token");
        assert_eq!(
            c.revision,
            original.revision + 1,
            "a claim bumps the revision"
        );
        assert_eq!(
            Task {
                lease: None,
                revision: original.revision,
                ..c.clone()
            },
            *original,
            "a claim changes nothing but the lease and revision"
        );
        assert_eq!(&store.get_task(c.id).await.must("get_task"), c);
    }
    let second = store
        .claim_tasks("worker-b", None, 10, LIVE)
        .await
        .must("claim the rest");
    assert_eq!(
        ids(&second),
        vec![by_age[4].id],
        "terminal and leased tasks are skipped"
    );
    assert!(tokens.insert(lease_of(&second[0]).token));
    let third = store
        .claim_tasks("worker-c", None, 10, LIVE)
        .await
        .must("claim again");
    assert!(
        third.is_empty(),
        "live leases are not taken: {:?}",
        ids(&third)
    );
}

/// Claims take tasks whose lease has lapsed (with a new token), keep to the requested run, and
/// a limit of 0 claims nothing.
pub async fn claims_take_expired_leases_and_respect_the_run_filter(store: &dyn Store) {
    let a = Fixture::new(2, 1);
    a.store(store).await;
    let b = a.another_run(2);
    b.insert(store).await;

    assert!(
        store
            .claim_tasks("w", None, 0, LIVE)
            .await
            .must("limit 0")
            .is_empty(),
        "limit 0 claims nothing"
    );
    let lapsed = store
        .claim_tasks("worker-a", Some(a.run.id), 10, LAPSED)
        .await
        .must("claim run a");
    let mut want_a: Vec<&Task> = a.tasks.iter().collect();
    want_a.sort_by(|x, y| x.created_at.cmp(&y.created_at).then(x.id.cmp(&y.id)));
    assert_eq!(
        ids(&lapsed),
        want_a.iter().map(|t| t.id).collect::<Vec<_>>(),
        "only run a's tasks"
    );
    let of_b = store
        .claim_tasks("worker-b", Some(b.run.id), 10, LIVE)
        .await
        .must("claim run b");
    assert_eq!(of_b.len(), 4);
    assert!(
        of_b.iter().all(|t| t.run_id == b.run.id),
        "only run b's tasks"
    );

    let retaken = store
        .claim_tasks("worker-c", None, 10, LIVE)
        .await
        .must("claim lapsed leases");
    assert_eq!(
        ids(&retaken),
        ids(&lapsed),
        "lapsed leases are taken, oldest first"
    );
    for (new, old) in retaken.iter().zip(&lapsed) {
        let (nl, ol) = (lease_of(new), lease_of(old));
        assert_eq!(nl.owner, "worker-c");
        assert_ne!(nl.token, ol.token, "a new claim gets a new token");
        assert_eq!(new.revision, old.revision + 1);
    }
    let b_tokens: HashSet<u64> = of_b.iter().map(|t| lease_of(t).token).collect();
    assert!(
        retaken
            .iter()
            .all(|t| !b_tokens.contains(&lease_of(t).token))
    );
}

/// A heartbeat by the holder extends its lease (same owner and token, later deadline, no
/// revision change); a heartbeat with another token or owner, or after a takeover, is
/// [`ErrorKind::LeaseLost`].
pub async fn heartbeat_extends_a_held_lease_and_fails_for_a_lost_one(store: &dyn Store) {
    let f = Fixture::new(2, 1);
    f.store(store).await;
    let claimed = store
        .claim_tasks("worker-a", None, 1, Duration::from_secs(60))
        .await
        .must("claim");
    let t = &claimed[0];
    let held = lease_of(t);
    let renewed = store.heartbeat(t.id, &held, LIVE).await.must("heartbeat");
    assert_eq!((&renewed.owner, renewed.token), (&held.owner, held.token));
    assert!(
        renewed.expires_at > held.expires_at,
        "the deadline moves on"
    );
    let stored = store.get_task(t.id).await.must("get_task");
    assert_eq!(stored.lease.as_ref(), Some(&renewed));
    assert_eq!(
        stored.revision, t.revision,
        "a heartbeat does not bump the revision"
    );

    let forged = Lease {
        token: held.token.wrapping_add(1_000_003),
        ..held.clone()
    };
    fails(
        store.heartbeat(t.id, &forged, LIVE).await,
        ErrorKind::LeaseLost,
        "another token",
    );
    let impostor = Lease {
        owner: "worker-z".into(),
        ..held.clone()
    };
    fails(
        store.heartbeat(t.id, &impostor, LIVE).await,
        ErrorKind::LeaseLost,
        "another owner",
    );

    // Takeover: a lapses, b claims, a's heartbeat is refused.
    let other = f.tasks.iter().find(|x| x.id != t.id).map(|x| x.id);
    let lapsed = store
        .claim_tasks("worker-a", None, 1, LAPSED)
        .await
        .must("claim with a lapsing lease");
    assert_eq!(lapsed.first().map(|x| x.id), other);
    let taken = store
        .claim_tasks("worker-b", None, 1, LIVE)
        .await
        .must("takeover");
    assert_eq!(ids(&taken), ids(&lapsed));
    fails(
        store
            .heartbeat(lapsed[0].id, &lease_of(&lapsed[0]), LIVE)
            .await,
        ErrorKind::LeaseLost,
        "a heartbeat after a takeover",
    );
    assert_eq!(
        store.get_task(taken[0].id).await.must("get_task").lease,
        taken[0].lease,
        "a refused heartbeat changes nothing"
    );
}

/// Fencing: once worker A's lease lapsed and worker B claimed the task, A's writes (with A's
/// lease, stale or fresh revision) are [`ErrorKind::LeaseLost`] — even after B's lease lapsed
/// in turn; B's write succeeds.
pub async fn a_stale_worker_is_fenced_off_after_its_lease_is_taken_over(store: &dyn Store) {
    let f = Fixture::new(2, 1);
    f.store(store).await;
    let a = store
        .claim_tasks("worker-a", None, 1, LAPSED)
        .await
        .must("a claims")
        .remove(0);
    let b = store
        .claim_tasks("worker-b", None, 1, LIVE)
        .await
        .must("b claims")
        .remove(0);
    assert_eq!(a.id, b.id);

    let mut stale = a.clone();
    stale.set_status(TaskStatus::Submitting).must("transition");
    fails(
        store.update_task(&stale).await,
        ErrorKind::LeaseLost,
        "a writes with its old lease",
    );
    let mut fresh_revision = stale.clone();
    fresh_revision.revision = b.revision;
    fails(
        store.update_task(&fresh_revision).await,
        ErrorKind::LeaseLost,
        "a writes with its old lease and the current revision",
    );
    assert_eq!(
        store.get_task(b.id).await.must("get_task"),
        b,
        "a changed nothing"
    );

    let mut w = b.clone();
    w.set_status(TaskStatus::Submitting).must("transition");
    let written = store.update_task(&w).await.must("b writes");
    assert_eq!(written.revision, b.revision + 1);
    assert_eq!(written.lease, b.lease);
    assert_eq!(written.status, TaskStatus::Submitting);

    // The other task: A's lease lapses, B takes over with a lease that lapses too. A is still
    // fenced: its token is not the task's any more.
    let a2 = store
        .claim_tasks("worker-a", None, 1, LAPSED)
        .await
        .must("a claims the other task")
        .remove(0);
    assert_ne!(a2.id, b.id, "b's task is still leased");
    let b2 = store
        .claim_tasks("worker-b", None, 1, LAPSED)
        .await
        .must("b takes it over")
        .remove(0);
    assert_eq!(b2.id, a2.id);
    fails(
        store
            .update_task(&Task {
                revision: b2.revision,
                ..a2.clone()
            })
            .await,
        ErrorKind::LeaseLost,
        "a writes after a takeover whose lease lapsed too",
    );
    let mut w2 = b2.clone();
    w2.progress = Some(3);
    store
        .update_task(&w2)
        .await
        .must("b writes with its lapsed but unchallenged lease");
}

/// While a lease is live, a write that carries no lease is [`ErrorKind::LeaseLost`]; after the
/// holder releases it, such a write succeeds and the released lease no longer fences.
pub async fn a_write_without_the_lease_is_fenced_off_while_the_lease_is_live(store: &dyn Store) {
    let f = Fixture::new(1, 1);
    f.store(store).await;
    let held = store
        .claim_tasks("worker-a", None, 1, LIVE)
        .await
        .must("claim")
        .remove(0);
    let mut unleased = held.clone();
    unleased.lease = None;
    unleased.progress = Some(1);
    fails(
        store.update_task(&unleased).await,
        ErrorKind::LeaseLost,
        "a write without the live lease",
    );
    assert_eq!(store.get_task(held.id).await.must("get_task"), held);

    store
        .release(held.id, &lease_of(&held))
        .await
        .must("release");
    let released = store.get_task(held.id).await.must("get_task");
    assert_eq!(released.lease, None, "released");
    let written = store
        .update_task(&Task {
            revision: released.revision,
            ..unleased.clone()
        })
        .await
        .must("a write without a lease after release");
    assert_eq!(written.progress, Some(1));
    assert_eq!(written.lease, None);
    let current = store.get_task(held.id).await.must("get_task");
    fails(
        store
            .update_task(&Task {
                lease: held.lease.clone(),
                ..current
            })
            .await,
        ErrorKind::LeaseLost,
        "a write carrying a released lease",
    );
}

/// Releasing a lease one does not hold (another token) is a no-op that succeeds; the holder's
/// release clears it (without a revision change) and makes the task claimable again.
pub async fn release_by_a_non_holder_is_a_no_op(store: &dyn Store) {
    let f = Fixture::new(1, 1);
    f.store(store).await;
    let held = store
        .claim_tasks("worker-a", None, 1, LIVE)
        .await
        .must("claim")
        .remove(0);
    let lease = lease_of(&held);
    let foreign = Lease {
        owner: "worker-b".into(),
        token: lease.token.wrapping_add(7_777_777),
        expires_at: lease.expires_at,
    };
    store
        .release(held.id, &foreign)
        .await
        .must("release by a non-holder");
    assert_eq!(
        store.get_task(held.id).await.must("get_task"),
        held,
        "nothing changed"
    );
    assert!(
        store
            .claim_tasks("worker-b", None, 1, LIVE)
            .await
            .must("claim")
            .is_empty(),
        "still leased"
    );
    store.release(held.id, &lease).await.must("release");
    let released = store.get_task(held.id).await.must("get_task");
    assert_eq!(
        released,
        Task {
            lease: None,
            ..held.clone()
        },
        "only the lease is cleared"
    );
    store
        .release(held.id, &lease)
        .await
        .must("releasing twice is a no-op");
    store
        .release(TaskId::new(), &lease)
        .await
        .must("releasing a missing task is a no-op");
    let again = store
        .claim_tasks("worker-b", None, 1, LIVE)
        .await
        .must("claim after release");
    assert_eq!(ids(&again), vec![held.id]);
    assert_ne!(lease_of(&again[0]).token, lease.token);
}

/// A lease with an enormous TTL (`Duration::MAX`) is live — the deadline saturates, it never
/// wraps into the past — so nobody else can claim the task.
pub async fn a_lease_with_a_huge_ttl_stays_live(store: &dyn Store) {
    let f = Fixture::new(1, 1);
    f.store(store).await;
    let held = store
        .claim_tasks("worker-a", None, 1, Duration::MAX)
        .await
        .must("claim");
    assert_eq!(held.len(), 1);
    let deadline = lease_of(&held[0]).expires_at;
    assert!(
        deadline > OffsetDateTime::now_utc() + time::Duration::days(365),
        "the deadline is far away: {deadline}"
    );
    assert!(
        store
            .claim_tasks("worker-b", None, 1, LIVE)
            .await
            .must("claim")
            .is_empty(),
        "the task stays leased"
    );
    let renewed = store
        .heartbeat(held[0].id, &lease_of(&held[0]), Duration::MAX)
        .await
        .must("heartbeat");
    assert!(renewed.expires_at > OffsetDateTime::now_utc() + time::Duration::days(365));
}

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
            .update_task(&Task {
                id: TaskId::new(),
                ..t.clone()
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
            .update_task(&Task {
                lease: None,
                ..current
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
