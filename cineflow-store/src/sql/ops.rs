//! Store operations shared by the SQL backends, generic over the sqlx [`Database`].
//!
//! Query texts are written once, with Postgres placeholders (`$1`, `$2`…), and rendered for
//! each backend by [`SqlBackend::sql`] (SQLite gets `?1`, `?2`…). What really differs between
//! the backends (transactions, claims, lease tokens, clocks, bulk inserts) stays in their
//! modules.

use std::future::Future;
use std::str::FromStr;

use cineflow_core::store::{
    Page, PageRequest, RunQuery, SortOrder, TaskQuery, TaskSort, records_vendor_job,
};
use cineflow_core::{
    Error, Lease, ProviderId, Result, Run, RunCounts, RunId, Segment, SegmentId, SegmentPatch,
    Storyboard, StoryboardId, Task, TaskId, TaskStatus,
};
use sqlx::query::Query;
use sqlx::{
    ColumnIndex, Database, Decode, Encode, Executor, FromRow, IntoArguments, Pool, QueryBuilder,
    SqlStr, Type,
};

#[cfg(feature = "sqlite")]
use super::LeaseCols;
use super::{
    RowExt, TaskCols, db, decode_run, decode_storyboard, encode_run, encode_storyboard, page_i64,
    task_of, to_i64, to_u64,
};
use crate::common::{exists, from_ns, lease_lost, not_found, stale, to_ns};

/// The columns [`task_of`] reads.
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
/// ([`SqlBackend::bind_task_update`] binds `$1` to `$11`); the lease fence follows.
macro_rules! update_task {
    () => {
        concat!(
            "UPDATE cineflow_tasks SET (",
            $crate::sql::task_write_columns!(),
            ") = ($1, $2, $3, $4, $5, $6, $7, $8, $9), revision = revision + 1 \
             WHERE id = $10 AND revision = $11"
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

/// The `RETURNING` clause of a task update, for [`super::written_task`].
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

/// An sqlx database that a SQL backend stores in, with the store operations whose logic is the
/// same on every such database as provided methods.
///
/// A backend implements the few dialect items (placeholders, the always-true condition, a
/// membership test); the rest is shared. Methods that take a [`Transaction`] end it.
pub(crate) trait SqlBackend: Database
where
    for<'c> &'c mut Self::Connection: Executor<'c, Database = Self>,
    Self::Arguments: IntoArguments<Self>,
    for<'q> String: Encode<'q, Self> + Decode<'q, Self> + Type<Self>,
    for<'q> &'q str: Encode<'q, Self> + Type<Self>,
    for<'q> Option<&'q str>: Encode<'q, Self> + Type<Self>,
    for<'q> i64: Encode<'q, Self> + Decode<'q, Self> + Type<Self>,
    for<'q> Option<i64>: Encode<'q, Self> + Type<Self>,
    for<'q> bool: Encode<'q, Self> + Type<Self>,
    (String,): for<'r> FromRow<'r, Self::Row>,
    (i64,): for<'r> FromRow<'r, Self::Row>,
    &'static str: ColumnIndex<Self::Row>,
{
    /// The start of a `WHERE` clause that every row passes, for filters to append `AND …` to.
    const WHERE_ALL: &'static str;

    /// This database's `position(haystack, needle)` function (`> 0` when `needle` occurs).
    const POSITION_FN: &'static str;

    /// `template`, written with Postgres placeholders (`$1`…), in this database's style.
    fn sql(template: &'static str) -> SqlStr;

    /// Appends ` AND column IN (values…)` (in this database's idiom); `values` is not empty.
    fn push_one_of(qb: &mut QueryBuilder<Self>, column: &'static str, values: Vec<&'static str>);

    /// Appends the `WHERE` clause of a task query.
    fn push_task_filters(qb: &mut QueryBuilder<Self>, q: &TaskQuery) {
        qb.push(Self::WHERE_ALL);
        if let Some(run) = q.run_id {
            qb.push(" AND run_id = ").push_bind(run.to_string());
        }
        if !q.status.is_empty() {
            Self::push_one_of(qb, "status", q.status.iter().map(|s| s.as_str()).collect());
        }
        if let Some(r) = q.retryable {
            qb.push(" AND retryable = ").push_bind(r);
        }
        if let Some(c) = q.error_code {
            qb.push(" AND error_code = ").push_bind(c.as_str());
        }
        if let Some(i) = q.segment_index {
            qb.push(" AND segment_index = ").push_bind(i64::from(i));
        }
    }

    /// Appends the `WHERE` clause of a run query.
    fn push_run_filters(qb: &mut QueryBuilder<Self>, q: &RunQuery) {
        qb.push(Self::WHERE_ALL);
        if let Some(s) = q.status {
            qb.push(" AND status = ").push_bind(s.as_str());
        }
        if let Some(sb) = q.storyboard_id {
            qb.push(" AND storyboard_id = ").push_bind(sb.to_string());
        }
    }

    /// Appends `LIMIT … OFFSET …` for `page`. The limit is `parameter + 0`: SQLite plans a
    /// statement whose `LIMIT` is a bare parameter for the value bound, so it would prepare
    /// the statement again at every call.
    fn push_page(qb: &mut QueryBuilder<Self>, page: PageRequest) {
        qb.push(" LIMIT ")
            .push_bind(page_i64(page.limit()))
            .push(" + 0 OFFSET ")
            .push_bind(page_i64(page.offset()));
    }

    /// The `body` column of the row `template` selects for `id` (bound to `$1`), if any.
    fn get_body<'e, E>(
        ex: E,
        template: &'static str,
        id: String,
        what: &'static str,
    ) -> impl Future<Output = Result<Option<String>>> + Send
    where
        E: 'e + Executor<'e, Database = Self>,
    {
        async move {
            sqlx::query_scalar::<Self, String>(Self::sql(template))
                .bind(id)
                .fetch_optional(ex)
                .await
                .map_err(db(what))
        }
    }

    /// The page `page` of the rows of `table` passing `filters` (which append a `WHERE`
    /// clause), in `order`, as `columns`, decoded by `decode`; with their total.
    ///
    /// One statement, so one round trip and one snapshot: the page's rows, each carrying the
    /// total as a scalar subquery (evaluated once). The page's ids are picked first by a
    /// subquery that an index on the filter and sort columns (and the id) answers alone, so
    /// the rows skipped by `OFFSET` are never fetched; only the page's rows are. Only a page
    /// past the end (no row to carry the total) costs a second statement, for the total alone.
    #[allow(
        clippy::too_many_arguments,
        reason = "the parts of one listing statement, each a plain value"
    )]
    fn list_page<'p, T: Send + 'p>(
        pool: &'p Pool<Self>,
        table: &'static str,
        columns: &'static str,
        filters: impl Fn(&mut QueryBuilder<Self>) + Send + 'p,
        order: &'static str,
        page: PageRequest,
        decode: fn(&Self::Row) -> Result<T>,
        what: &'static str,
    ) -> impl Future<Output = Result<Page<T>>> + Send + 'p {
        async move {
            let mut select = QueryBuilder::new("SELECT ");
            select
                .push(columns)
                .push(", (SELECT count(*) FROM ")
                .push(table);
            filters(&mut select);
            select.push(") AS page_total FROM ").push(table);
            select.push(" WHERE id IN (SELECT id FROM ").push(table);
            filters(&mut select);
            select.push(order);
            Self::push_page(&mut select, page);
            select.push(")").push(order);
            let rows = select.build().fetch_all(pool).await.map_err(db(what))?;
            let total: i64 = match rows.first() {
                Some(row) => row.col("page_total")?,
                None if page.offset() == 0 => 0,
                None => {
                    let mut count = QueryBuilder::new("SELECT count(*) FROM ");
                    count.push(table);
                    filters(&mut count);
                    count
                        .build_query_scalar()
                        .fetch_one(pool)
                        .await
                        .map_err(db(what))?
                }
            };
            let items = rows.iter().map(decode).collect::<Result<_>>()?;
            Ok(page_of(page, items, total))
        }
    }

    /// Upserts the row of `storyboard` and deletes its segment rows, in `conn` (the caller
    /// writes the segment rows).
    fn write_storyboard_row<'c>(
        conn: &'c mut Self::Connection,
        storyboard: &Storyboard,
    ) -> impl Future<Output = Result<()>> + Send + 'c {
        let row = encode_storyboard(storyboard).map(|body| {
            (
                storyboard.id.to_string(),
                to_ns(storyboard.created_at),
                body,
            )
        });
        async move {
            let (id, created_at_ns, body) = row?;
            sqlx::query(Self::sql(
                "INSERT INTO cineflow_storyboards (id, created_at_ns, body) VALUES ($1, $2, $3) \
                 ON CONFLICT (id) DO UPDATE SET created_at_ns = excluded.created_at_ns, \
                 body = excluded.body",
            ))
            .bind(&id)
            .bind(created_at_ns)
            .bind(body)
            .execute(&mut *conn)
            .await
            .map_err(db("cannot write a storyboard"))?;
            sqlx::query(Self::sql(
                "DELETE FROM cineflow_segments WHERE storyboard_id = $1",
            ))
            .bind(&id)
            .execute(&mut *conn)
            .await
            .map_err(db("cannot write a storyboard's segments"))?;
            Ok(())
        }
    }

    /// [`Store::get_storyboard`](cineflow_core::Store::get_storyboard).
    fn get_storyboard(
        pool: &Pool<Self>,
        id: StoryboardId,
    ) -> impl Future<Output = Result<Storyboard>> + Send {
        async move {
            let body = Self::get_body(
                pool,
                "SELECT body FROM cineflow_storyboards WHERE id = $1",
                id.to_string(),
                "cannot read a storyboard",
            )
            .await?;
            decode_storyboard(&body.ok_or_else(|| not_found("storyboard", id))?)
        }
    }

    /// [`Store::list_storyboards`](cineflow_core::Store::list_storyboards).
    fn list_storyboards(
        pool: &Pool<Self>,
        page: PageRequest,
    ) -> impl Future<Output = Result<Page<Storyboard>>> + Send {
        Self::list_page(
            pool,
            "cineflow_storyboards",
            "body",
            |_| {},
            " ORDER BY created_at_ns DESC, id ASC",
            page,
            |row| decode_storyboard(&row.col::<String>("body")?),
            "cannot list storyboards",
        )
    }

    /// [`Store::get_segment`](cineflow_core::Store::get_segment).
    fn get_segment(
        pool: &Pool<Self>,
        id: SegmentId,
    ) -> impl Future<Output = Result<(StoryboardId, Segment)>> + Send {
        async move {
            let body = Self::get_body(
                pool,
                select_segment!(),
                id.to_string(),
                "cannot read a segment",
            )
            .await?;
            let sb = decode_storyboard(&body.ok_or_else(|| not_found("segment", id))?)?;
            let seg = sb
                .segments
                .iter()
                .find(|s| s.id == id)
                .cloned()
                .ok_or_else(|| not_found("segment", id))?;
            Ok((sb.id, seg))
        }
    }

    /// [`Store::update_segment`](cineflow_core::Store::update_segment) in `conn`, inside the
    /// caller's write transaction (which the caller commits), where `select` (a
    /// [`select_segment!`], perhaps locking) reads the storyboard.
    fn update_segment<'c>(
        conn: &'c mut Self::Connection,
        select: &'static str,
        id: SegmentId,
        patch: &'c SegmentPatch,
    ) -> impl Future<Output = Result<Segment>> + Send + 'c {
        async move {
            let body =
                Self::get_body(&mut *conn, select, id.to_string(), "cannot read a segment").await?;
            let mut sb = decode_storyboard(&body.ok_or_else(|| not_found("segment", id))?)?;
            let seg = sb
                .segments
                .iter_mut()
                .find(|s| s.id == id)
                .ok_or_else(|| not_found("segment", id))?;
            seg.apply(patch)?;
            let seg = seg.clone();
            sqlx::query(Self::sql(
                "UPDATE cineflow_storyboards SET body = $1 WHERE id = $2",
            ))
            .bind(encode_storyboard(&sb)?)
            .bind(sb.id.to_string())
            .execute(&mut *conn)
            .await
            .map_err(db("cannot write a segment"))?;
            Ok(seg)
        }
    }

    /// Inserts the row of `run` in `conn` (a conflict if it exists); the caller inserts its
    /// tasks.
    fn insert_run_row<'c>(
        conn: &'c mut Self::Connection,
        run: &Run,
    ) -> impl Future<Output = Result<()>> + Send + 'c {
        let body = encode_run(run);
        let (id, storyboard_id, status) = (
            run.id,
            run.spec.storyboard_id.to_string(),
            run.status.as_str(),
        );
        let (created_at_ns, revision) = (to_ns(run.created_at), to_i64(run.revision));
        async move {
            sqlx::query(Self::sql(
                "INSERT INTO cineflow_runs (id, storyboard_id, status, created_at_ns, revision, \
                 body) VALUES ($1, $2, $3, $4, $5, $6)",
            ))
            .bind(id.to_string())
            .bind(storyboard_id)
            .bind(status)
            .bind(created_at_ns)
            .bind(revision)
            .bind(body?)
            .execute(conn)
            .await
            .map_err(insert_error("run", id, "cannot insert a run"))?;
            Ok(())
        }
    }

    /// [`Store::delete_run`](cineflow_core::Store::delete_run) in the caller's write
    /// transaction: the run's tasks, then the run (not found: nothing is deleted once the
    /// caller drops the transaction).
    fn delete_run_rows<'c>(
        conn: &'c mut Self::Connection,
        id: RunId,
    ) -> impl Future<Output = Result<()>> + Send + 'c {
        async move {
            sqlx::query(Self::sql("DELETE FROM cineflow_tasks WHERE run_id = $1"))
                .bind(id.to_string())
                .execute(&mut *conn)
                .await
                .map_err(db("cannot delete a run's tasks"))?;
            Self::get_body(
                conn,
                "DELETE FROM cineflow_runs WHERE id = $1 RETURNING body",
                id.to_string(),
                "cannot delete a run",
            )
            .await?
            .map(|_| ())
            .ok_or_else(|| not_found("run", id))
        }
    }

    /// [`Store::get_run`](cineflow_core::Store::get_run).
    fn get_run(pool: &Pool<Self>, id: RunId) -> impl Future<Output = Result<Run>> + Send {
        async move {
            let body = Self::get_body(
                pool,
                "SELECT body FROM cineflow_runs WHERE id = $1",
                id.to_string(),
                "cannot read a run",
            )
            .await?;
            decode_run(&body.ok_or_else(|| not_found("run", id))?)
        }
    }

    /// [`Store::list_runs`](cineflow_core::Store::list_runs).
    fn list_runs(
        pool: &Pool<Self>,
        query: &RunQuery,
    ) -> impl Future<Output = Result<Page<Run>>> + Send {
        let (page, query) = (query.page, query.clone());
        Self::list_page(
            pool,
            "cineflow_runs",
            "body",
            move |qb| Self::push_run_filters(qb, &query),
            " ORDER BY created_at_ns DESC, id ASC",
            page,
            |row| decode_run(&row.col::<String>("body")?),
            "cannot list runs",
        )
    }

    /// `query` (the text of [`update_run!`], perhaps in a larger statement) with `$1` to `$7`
    /// bound to write `next` over `run`.
    fn bind_run_update<'q>(
        query: Query<'q, Self, Self::Arguments>,
        run: &Run,
        next: &Run,
    ) -> Result<Query<'q, Self, Self::Arguments>> {
        Ok(query
            .bind(next.spec.storyboard_id.to_string())
            .bind(next.status.as_str())
            .bind(to_ns(next.created_at))
            .bind(to_i64(next.revision))
            .bind(encode_run(next)?)
            .bind(run.id.to_string())
            .bind(to_i64(run.revision)))
    }

    /// [`Store::run_counts`](cineflow_core::Store::run_counts).
    fn run_counts(pool: &Pool<Self>, id: RunId) -> impl Future<Output = Result<RunCounts>> + Send {
        async move {
            let rows = sqlx::query(Self::sql(
                "SELECT t.status AS status, count(t.id) AS n FROM cineflow_runs r \
                 LEFT JOIN cineflow_tasks t ON t.run_id = r.id WHERE r.id = $1 \
                 GROUP BY t.status",
            ))
            .bind(id.to_string())
            .fetch_all(pool)
            .await
            .map_err(db("cannot count a run's tasks"))?;
            if rows.is_empty() {
                return Err(not_found("run", id));
            }
            let mut counts = RunCounts::default();
            for row in rows {
                let status: Option<String> = row.col("status")?;
                let n: i64 = row.col("n")?;
                if let Some(status) = status {
                    let status = TaskStatus::from_str(&status)?;
                    for _ in 0..n {
                        counts.add(status);
                    }
                }
            }
            Ok(counts)
        }
    }

    /// [`Store::list_tasks`](cineflow_core::Store::list_tasks).
    fn list_tasks(
        pool: &Pool<Self>,
        query: &TaskQuery,
    ) -> impl Future<Output = Result<Page<Task>>> + Send {
        let (page, order, query) = (query.page, task_order(query), query.clone());
        Self::list_page(
            pool,
            "cineflow_tasks",
            task_columns!(),
            move |qb| Self::push_task_filters(qb, &query),
            order,
            page,
            |row| task_of(row),
            "cannot list tasks",
        )
    }

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
    ) -> impl Future<Output = Result<Vec<Task>>> + Send {
        let needle = serde_json::to_string(vendor_job_id)
            .map_err(|e| crate::common::codec("cannot encode a vendor job id", e));
        let (provider, vendor_job_id) = (provider.clone(), vendor_job_id.to_owned());
        async move {
            let mut select = QueryBuilder::<Self>::new(concat!(
                "SELECT ",
                task_columns!(),
                " FROM cineflow_tasks WHERE "
            ));
            select
                .push(Self::POSITION_FN)
                .push("(body, ")
                .push_bind(needle?)
                .push(") > 0 ORDER BY id");
            let rows = select
                .build()
                .fetch_all(pool)
                .await
                .map_err(db("cannot look up the tasks of a vendor job"))?;
            let mut found = Vec::new();
            for row in &rows {
                let task = task_of(row)?;
                if records_vendor_job(&task, &provider, &vendor_job_id) {
                    found.push(task);
                }
            }
            Ok(found)
        }
    }

    /// `query` with `$1` to `$9` bound to the columns `c` (in [`task_write_columns!`] order).
    fn bind_task_cols<'q>(
        query: Query<'q, Self, Self::Arguments>,
        c: &'q TaskCols,
    ) -> Query<'q, Self, Self::Arguments> {
        query
            .bind(c.run_id.as_str())
            .bind(c.status)
            .bind(c.segment_index)
            .bind(c.version_index)
            .bind(c.error_code)
            .bind(c.retryable)
            .bind(c.created_at_ns)
            .bind(c.waiting_for.as_deref())
            .bind(c.body.as_str())
    }

    /// `query` (the text of [`update_task!`] and a lease fence) with `$1` to `$11` bound to
    /// write the columns `c` over `task`'s revision.
    fn bind_task_update<'q>(
        query: Query<'q, Self, Self::Arguments>,
        c: &'q TaskCols,
        task: &Task,
    ) -> Query<'q, Self, Self::Arguments> {
        Self::bind_task_cols(query, c)
            .bind(c.id.as_str())
            .bind(to_i64(task.revision))
    }

    /// Inserts the task row of columns `c` and lease columns `lease` in `conn` (a conflict if
    /// it exists).
    #[cfg(feature = "sqlite")]
    fn insert_task_row<'c>(
        conn: &'c mut Self::Connection,
        c: &'c TaskCols,
        lease: &'c LeaseCols,
    ) -> impl Future<Output = Result<()>> + Send + 'c {
        async move {
            let (owner, token, expires) = lease;
            Self::bind_task_cols(
                sqlx::query(Self::sql(concat!(
                    insert_task_columns!(),
                    " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)"
                ))),
                c,
            )
            .bind(c.id.as_str())
            .bind(c.revision)
            .bind(owner.as_deref())
            .bind(*token)
            .bind(*expires)
            .execute(conn)
            .await
            .map_err(insert_error("task", &c.id, "cannot insert a task"))?;
            Ok(())
        }
    }

    /// [`Store::release`](cineflow_core::Store::release).
    fn release<'e, E>(ex: E, task: TaskId, lease: &Lease) -> impl Future<Output = Result<()>> + Send
    where
        E: 'e + Executor<'e, Database = Self>,
    {
        let token = to_i64(lease.token);
        async move {
            sqlx::query(Self::sql(
                "UPDATE cineflow_tasks SET lease_owner = NULL, lease_token = NULL, \
                 lease_expires_at_ns = NULL WHERE id = $1 AND lease_token = $2",
            ))
            .bind(task.to_string())
            .bind(token)
            .execute(ex)
            .await
            .map_err(db("cannot release a lease"))?;
            Ok(())
        }
    }
}
