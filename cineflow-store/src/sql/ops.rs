//! Store operations shared by the SQL backends, generic over the sqlx [`Database`].
//!
//! Query texts are written once, with Postgres placeholders (`$1`, `$2`…), and rendered for
//! each backend by [`SqlBackend::sql`] (SQLite gets `?1`, `?2`…). What really differs between
//! the backends (transactions, claims, lease tokens, clocks, bulk inserts) stays in their
//! modules.

use std::future::Future;

use cineflow_core::store::{Page, PageRequest, RunQuery, SortOrder, TaskQuery, TaskSort};
use cineflow_core::{
    Error, Lease, ProviderId, Result, Run, RunCounts, RunId, Segment, SegmentId, SegmentPatch,
    Storyboard, StoryboardId, Task, TaskId,
};
use sqlx::query::Query;
use sqlx::{Database, Executor, Pool, QueryBuilder, SqlStr};

#[cfg(feature = "sqlite")]
use super::LeaseCols;
use super::{TaskCols, to_u64};
use crate::common::{exists, from_ns, lease_lost, not_found, stale};

/// The columns [`TaskRowExt::task`](super::TaskRowExt::task) reads.
macro_rules! task_columns {
    () => {
        "body, revision, lease_owner, lease_token, lease_expires_at_ns"
    };
}
pub(crate) use task_columns;

/// The storyboard body holding segment `$1`.
macro_rules! select_segment {
    () => {
        "SELECT b.body FROM cineflow_segments s \
         JOIN cineflow_storyboards b ON b.id = s.storyboard_id WHERE s.id = $1"
    };
}
pub(crate) use select_segment;

/// A run's compare-and-swap `UPDATE` ([`SqlBackend::bind_run_update`] binds it).
macro_rules! update_run {
    () => {
        "UPDATE cineflow_runs SET storyboard_id = $1, status = $2, created_at_ns = $3, \
         revision = $4, body = $5 WHERE id = $6 AND revision = $7"
    };
}
pub(crate) use update_run;

/// The task columns a write sets from a [`TaskCols`], in the order
/// [`SqlBackend::bind_task_cols`] binds them (`$1` to `$9`), for inserts and updates alike.
macro_rules! task_write_columns {
    () => {
        "run_id, status, segment_index, version_index, error_code, retryable, created_at_ns, \
         waiting_for, body"
    };
}
pub(crate) use task_write_columns;

/// The head of a task's compare-and-swap `UPDATE`, up to its revision check
/// ([`SqlBackend::bind_task_update`] binds `$1` to `$11`); the lease fence follows. With a
/// token parameter (`update_task!("$12")`), the write also gives up the lease of that token
/// when the parameter is not null (the fence has checked it is the stored one).
macro_rules! update_task {
    () => {
        $crate::sql::update_task!(@set "")
    };
    ($token:literal) => {
        $crate::sql::update_task!(@set concat!(
            ", lease_owner = CASE WHEN ", $token, " IS NULL THEN lease_owner END, \
             lease_token = CASE WHEN ", $token, " IS NULL THEN lease_token END, \
             lease_expires_at_ns = CASE WHEN ", $token, " IS NULL THEN lease_expires_at_ns END"
        ))
    };
    (@set $release:expr) => {
        concat!(
            "UPDATE cineflow_tasks SET (",
            $crate::sql::task_write_columns!(),
            ") = ($1, $2, $3, $4, $5, $6, $7, $8, $9), revision = revision + 1",
            $release,
            " WHERE id = $10 AND revision = $11"
        )
    };
}
pub(crate) use update_task;

/// A task row's `INSERT`: [`task_write_columns!`] (`$1` to `$9`), then `id, revision` and the
/// lease columns (`$10` to `$14`), in the order of [`SqlBackend::insert_task_row`]'s binds.
macro_rules! insert_task_columns {
    () => {
        concat!(
            "INSERT INTO cineflow_tasks (",
            $crate::sql::task_write_columns!(),
            ", id, revision, lease_owner, lease_token, lease_expires_at_ns)"
        )
    };
}
#[cfg(feature = "postgres")]
pub(crate) use insert_task_columns;

/// The `RETURNING` clause of a task update, for
/// [`TaskRowExt::written_task`](super::TaskRowExt::written_task).
macro_rules! returning_written_task {
    () => {
        " RETURNING revision, lease_owner, lease_token, lease_expires_at_ns"
    };
}
pub(crate) use returning_written_task;

/// The error for a task write that lost the race [`SqlBackend`]s retry a few times.
pub(crate) fn kept_changing(task: TaskId) -> Error {
    Error::Conflict {
        entity: "task",
        id: task.to_string(),
        reason: "the task kept changing during the write".into(),
    }
}

/// The error for a failed compare-and-swap on run `id` at revision `given`: not found when
/// there is no `stored` revision, stale otherwise.
pub(crate) fn run_cas_failed(id: RunId, given: u64, stored: Option<i64>) -> Error {
    match stored {
        None => not_found("run", id),
        Some(r) => stale("run", id, given, to_u64(r)),
    }
}

/// The outcome of renewing `lease` on `task`: the lease until `expires` if the renewal wrote
/// it, else lost if the task is `found`, else not found.
pub(crate) fn renewed(
    task: TaskId,
    lease: &Lease,
    expires: Option<i64>,
    found: bool,
) -> Result<Lease> {
    match (expires, found) {
        (Some(expires), _) => Ok(Lease {
            owner: lease.owner.clone(),
            token: lease.token,
            expires_at: from_ns(expires),
        }),
        (None, true) => Err(lease_lost(task, &lease.owner)),
        (None, false) => Err(not_found("task", task)),
    }
}

/// Maps an `INSERT` error: a unique-key violation is a conflict on `entity` `id`, anything else
/// a backend error `what`.
pub(crate) fn insert_error(
    entity: &'static str,
    id: impl ToString,
    what: &'static str,
) -> impl FnOnce(sqlx::Error) -> Error {
    move |e| {
        if super::is_unique_violation(&e) {
            exists(entity, id, "already exists")
        } else {
            Error::backend(what, e)
        }
    }
}

/// The `ORDER BY` clause of a task query (the same total order as [`TaskQuery::compare`]).
pub(crate) fn task_order(q: &TaskQuery) -> &'static str {
    match (q.sort, q.order) {
        (TaskSort::SegmentIndex, SortOrder::Asc) => {
            " ORDER BY segment_index ASC, version_index ASC, id ASC"
        }
        (TaskSort::SegmentIndex, SortOrder::Desc) => {
            " ORDER BY segment_index DESC, version_index DESC, id DESC"
        }
        (TaskSort::CreatedAt, SortOrder::Asc) => " ORDER BY created_at_ns ASC, id ASC",
        (TaskSort::CreatedAt, SortOrder::Desc) => " ORDER BY created_at_ns DESC, id DESC",
    }
}

/// The page `page` of a listing, holding `items` out of `total`.
pub(crate) fn page_of<T>(page: PageRequest, items: Vec<T>, total: i64) -> Page<T> {
    Page {
        items,
        page: page.page.max(1),
        page_size: u32::try_from(page.limit()).unwrap_or(PageRequest::MAX_PAGE_SIZE),
        total: to_u64(total),
    }
}
/// A listing, for [`SqlOps::list_page`]: the `table` it reads, the `columns` it returns, in
/// `order` (an `ORDER BY` clause), and what a failure says.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Listing {
    pub(crate) table: &'static str,
    pub(crate) columns: &'static str,
    pub(crate) order: &'static str,
    pub(crate) what: &'static str,
}

/// An sqlx database that a SQL backend stores in: the few dialect items each backend
/// implements (placeholders, the always-true condition, a membership test).
pub(crate) trait SqlBackend: Database {
    /// The start of a `WHERE` clause that every row passes, for filters to append `AND …` to.
    const WHERE_ALL: &'static str;

    /// This database's `position(haystack, needle)` function (`> 0` when `needle` occurs).
    const POSITION_FN: &'static str;

    /// `template`, written with Postgres placeholders (`$1`…), in this database's style.
    fn sql(template: &'static str) -> SqlStr;

    /// Appends ` AND column IN (values…)` (in this database's idiom); `values` is not empty.
    fn push_one_of(qb: &mut QueryBuilder<Self>, column: &'static str, values: Vec<&'static str>);
}

/// The store operations whose logic is the same on every [`SqlBackend`], implemented once for
/// all of them (in `queries.rs`, which alone states what they need of the database's types, so
/// that code generic over a backend needs only this bound). Methods that take a
/// [`Transaction`](sqlx::Transaction) end it.
pub(crate) trait SqlOps: SqlBackend {
    /// Appends the `WHERE` clause of a task query.
    fn push_task_filters(qb: &mut QueryBuilder<Self>, q: &TaskQuery);

    /// Appends the `WHERE` clause of a run query.
    fn push_run_filters(qb: &mut QueryBuilder<Self>, q: &RunQuery);

    /// Appends `LIMIT … OFFSET …` for `page`. The limit is `parameter + 0`: SQLite plans a
    /// statement whose `LIMIT` is a bare parameter for the value bound, so it would prepare
    /// the statement again at every call.
    fn push_page(qb: &mut QueryBuilder<Self>, page: PageRequest);

    /// The `body` column of the row `template` reads (or deletes, `RETURNING body`) for `id`
    /// (bound to `$1`): `entity` not found if there is none, `what` if the statement fails.
    fn get_body<'e, E>(
        ex: E,
        template: &'static str,
        id: impl ToString + Send,
        entity: &'static str,
        what: &'static str,
    ) -> impl Future<Output = Result<String>> + Send
    where
        E: 'e + Executor<'e, Database = Self>;

    /// The page `page` of the rows of a `listing` passing `filters` (which append a `WHERE`
    /// clause), decoded by `decode`; with their total.
    ///
    /// One statement, so one round trip and one snapshot: the page's rows, each carrying the
    /// total as a scalar subquery (evaluated once). The page's ids are picked first by a
    /// subquery that an index on the filter and sort columns (and the id) answers alone, so
    /// the rows skipped by `OFFSET` are never fetched; only the page's rows are. Only a page
    /// past the end (no row to carry the total) costs a second statement, for the total alone.
    fn list_page<'p, T: Send + 'p>(
        pool: &'p Pool<Self>,
        listing: Listing,
        filters: impl Fn(&mut QueryBuilder<Self>) + Send + 'p,
        page: PageRequest,
        decode: fn(&Self::Row) -> Result<T>,
    ) -> impl Future<Output = Result<Page<T>>> + Send + 'p;

    /// Upserts the row of `storyboard` and deletes its segment rows, in `conn` (the caller
    /// writes the segment rows).
    fn write_storyboard_row<'c>(
        conn: &'c mut Self::Connection,
        storyboard: &Storyboard,
    ) -> impl Future<Output = Result<()>> + Send + 'c;

    /// [`Store::get_storyboard`](cineflow_core::Store::get_storyboard).
    fn get_storyboard(
        pool: &Pool<Self>,
        id: StoryboardId,
    ) -> impl Future<Output = Result<Storyboard>> + Send;

    /// [`Store::list_storyboards`](cineflow_core::Store::list_storyboards).
    fn list_storyboards(
        pool: &Pool<Self>,
        page: PageRequest,
    ) -> impl Future<Output = Result<Page<Storyboard>>> + Send;

    /// [`Store::get_segment`](cineflow_core::Store::get_segment).
    fn get_segment(
        pool: &Pool<Self>,
        id: SegmentId,
    ) -> impl Future<Output = Result<(StoryboardId, Segment)>> + Send;

    /// [`Store::update_segment`](cineflow_core::Store::update_segment) in `conn`, inside the
    /// caller's write transaction (which the caller commits), where `select` (a
    /// [`select_segment!`], perhaps locking) reads the storyboard.
    fn update_segment<'c>(
        conn: &'c mut Self::Connection,
        select: &'static str,
        id: SegmentId,
        patch: &'c SegmentPatch,
    ) -> impl Future<Output = Result<Segment>> + Send + 'c;

    /// Inserts the row of `run` in `conn` (a conflict if it exists); the caller inserts its
    /// tasks.
    fn insert_run_row<'c>(
        conn: &'c mut Self::Connection,
        run: &Run,
    ) -> impl Future<Output = Result<()>> + Send + 'c;

    /// [`Store::delete_run`](cineflow_core::Store::delete_run) in the caller's write
    /// transaction: the run's tasks, then the run (not found: nothing is deleted once the
    /// caller drops the transaction).
    fn delete_run_rows<'c>(
        conn: &'c mut Self::Connection,
        id: RunId,
    ) -> impl Future<Output = Result<()>> + Send + 'c;

    /// [`Store::get_run`](cineflow_core::Store::get_run).
    fn get_run(pool: &Pool<Self>, id: RunId) -> impl Future<Output = Result<Run>> + Send;

    /// [`Store::list_runs`](cineflow_core::Store::list_runs).
    fn list_runs(
        pool: &Pool<Self>,
        query: &RunQuery,
    ) -> impl Future<Output = Result<Page<Run>>> + Send;

    /// `query` (the text of [`update_run!`], perhaps in a larger statement) with `$1` to `$7`
    /// bound to write `next` over `run`.
    fn bind_run_update<'q>(
        query: Query<'q, Self, Self::Arguments>,
        run: &Run,
        next: &Run,
    ) -> Result<Query<'q, Self, Self::Arguments>>;

    /// [`Store::run_counts`](cineflow_core::Store::run_counts).
    fn run_counts(pool: &Pool<Self>, id: RunId) -> impl Future<Output = Result<RunCounts>> + Send;

    /// [`Store::list_tasks`](cineflow_core::Store::list_tasks).
    fn list_tasks(
        pool: &Pool<Self>,
        query: &TaskQuery,
    ) -> impl Future<Output = Result<Page<Task>>> + Send;

    /// [`Store::find_tasks_by_vendor_job`](cineflow_core::Store::find_tasks_by_vendor_job).
    ///
    /// The job id is looked up in the stored JSON bodies as the exact JSON string it is encoded
    /// as (quotes and escapes included), which no index serves but which is a byte search with
    /// no JSON parsing; the few rows that contain it are decoded and checked field by field.
    /// Reconciliation, its only caller, is rare (an ambiguous submit or a crash in one).
    fn find_tasks_by_vendor_job(
        pool: &Pool<Self>,
        provider: &ProviderId,
        vendor_job_id: &str,
    ) -> impl Future<Output = Result<Vec<Task>>> + Send;

    /// `query` with `$1` to `$9` bound to the columns `c` (in [`task_write_columns!`] order).
    fn bind_task_cols<'q>(
        query: Query<'q, Self, Self::Arguments>,
        c: &'q TaskCols,
    ) -> Query<'q, Self, Self::Arguments>;

    /// `query` (the text of [`update_task!`] and a lease fence) with `$1` to `$11` bound to
    /// write the columns `c` over `task`'s revision.
    fn bind_task_update<'q>(
        query: Query<'q, Self, Self::Arguments>,
        c: &'q TaskCols,
        task: &Task,
    ) -> Query<'q, Self, Self::Arguments>;

    /// Inserts the task row of columns `c` and lease columns `lease` in `conn` (a conflict if
    /// it exists).
    #[cfg(feature = "sqlite")]
    fn insert_task_row<'c>(
        conn: &'c mut Self::Connection,
        c: &'c TaskCols,
        lease: &'c LeaseCols,
    ) -> impl Future<Output = Result<()>> + Send + 'c;

    /// [`Store::release`](cineflow_core::Store::release).
    fn release<'e, E>(
        ex: E,
        task: TaskId,
        lease: &Lease,
    ) -> impl Future<Output = Result<()>> + Send
    where
        E: 'e + Executor<'e, Database = Self>;
}

mod queries;
