//! The one implementation of [`SqlOps`] for every [`SqlBackend`].

use std::future::Future;
use std::str::FromStr;

use cineflow_core::store::{Page, PageRequest, RunQuery, TaskQuery, records_vendor_job};
use cineflow_core::{
    Lease, ProviderId, Result, Run, RunCounts, RunId, Segment, SegmentId, SegmentPatch, Storyboard,
    StoryboardId, Task, TaskId, TaskStatus,
};
use sqlx::query::Query;
use sqlx::{
    ColumnIndex, Decode, Encode, Executor, FromRow, IntoArguments, Pool, QueryBuilder, Type,
};

#[cfg(feature = "sqlite")]
use super::super::LeaseCols;
use super::super::{
    RowExt, TaskCols, TaskRowExt, db, decode_run, decode_storyboard, encode_run, encode_storyboard,
    page_i64, to_i64,
};
use super::{Listing, SqlBackend, SqlOps, insert_error, page_of, task_order};
use crate::common::{not_found, to_ns};

impl<DB> SqlOps for DB
where
    DB: SqlBackend,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    DB::Arguments: IntoArguments<DB>,
    for<'q> String: Encode<'q, DB> + Decode<'q, DB> + Type<DB>,
    for<'q> &'q str: Encode<'q, DB> + Type<DB>,
    for<'q> Option<&'q str>: Encode<'q, DB> + Type<DB>,
    for<'q> i64: Encode<'q, DB> + Decode<'q, DB> + Type<DB>,
    for<'q> Option<i64>: Encode<'q, DB> + Type<DB>,
    for<'q> bool: Encode<'q, DB> + Type<DB>,
    (String,): for<'r> FromRow<'r, DB::Row>,
    (i64,): for<'r> FromRow<'r, DB::Row>,
    &'static str: ColumnIndex<DB::Row>,
{
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

    fn push_run_filters(qb: &mut QueryBuilder<Self>, q: &RunQuery) {
        qb.push(Self::WHERE_ALL);
        if let Some(s) = q.status {
            qb.push(" AND status = ").push_bind(s.as_str());
        }
        if let Some(sb) = q.storyboard_id {
            qb.push(" AND storyboard_id = ").push_bind(sb.to_string());
        }
    }

    fn push_page(qb: &mut QueryBuilder<Self>, page: PageRequest) {
        qb.push(" LIMIT ")
            .push_bind(page_i64(page.limit()))
            .push(" + 0 OFFSET ")
            .push_bind(page_i64(page.offset()));
    }

    async fn get_body<'e, E>(
        ex: E,
        template: &'static str,
        id: impl ToString + Send,
        entity: &'static str,
        what: &'static str,
    ) -> Result<String>
    where
        E: 'e + Executor<'e, Database = Self>,
    {
        sqlx::query_scalar::<Self, String>(Self::sql(template))
            .bind(id.to_string())
            .fetch_optional(ex)
            .await
            .map_err(db(what))?
            .ok_or_else(|| not_found(entity, id))
    }

    async fn list_page<'p, T: Send + 'p>(
        pool: &'p Pool<Self>,
        listing: Listing,
        filters: impl Fn(&mut QueryBuilder<Self>) + Send + 'p,
        page: PageRequest,
        decode: fn(&Self::Row) -> Result<T>,
    ) -> Result<Page<T>> {
        let Listing {
            table,
            columns,
            order,
            what,
        } = listing;
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

    async fn get_storyboard(pool: &Pool<Self>, id: StoryboardId) -> Result<Storyboard> {
        let body = Self::get_body(
            pool,
            "SELECT body FROM cineflow_storyboards WHERE id = $1",
            id,
            "storyboard",
            "cannot read a storyboard",
        )
        .await?;
        decode_storyboard(&body)
    }

    fn list_storyboards(
        pool: &Pool<Self>,
        page: PageRequest,
    ) -> impl Future<Output = Result<Page<Storyboard>>> + Send {
        let listing = Listing {
            table: "cineflow_storyboards",
            columns: "body",
            order: " ORDER BY created_at_ns DESC, id ASC",
            what: "cannot list storyboards",
        };
        Self::list_page(
            pool,
            listing,
            |_| {},
            page,
            |row| decode_storyboard(&row.col::<String>("body")?),
        )
    }

    async fn get_segment(pool: &Pool<Self>, id: SegmentId) -> Result<(StoryboardId, Segment)> {
        let body = Self::get_body(
            pool,
            select_segment!(),
            id,
            "segment",
            "cannot read a segment",
        )
        .await?;
        let sb = decode_storyboard(&body)?;
        let seg = sb
            .segments
            .iter()
            .find(|s| s.id == id)
            .cloned()
            .ok_or_else(|| not_found("segment", id))?;
        Ok((sb.id, seg))
    }

    async fn update_segment<'c>(
        conn: &'c mut Self::Connection,
        select: &'static str,
        id: SegmentId,
        patch: &'c SegmentPatch,
    ) -> Result<Segment> {
        let body =
            Self::get_body(&mut *conn, select, id, "segment", "cannot read a segment").await?;
        let mut sb = decode_storyboard(&body)?;
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

    async fn delete_run_rows(conn: &mut Self::Connection, id: RunId) -> Result<()> {
        sqlx::query(Self::sql("DELETE FROM cineflow_tasks WHERE run_id = $1"))
            .bind(id.to_string())
            .execute(&mut *conn)
            .await
            .map_err(db("cannot delete a run's tasks"))?;
        Self::get_body(
            conn,
            "DELETE FROM cineflow_runs WHERE id = $1 RETURNING body",
            id,
            "run",
            "cannot delete a run",
        )
        .await?;
        Ok(())
    }

    async fn get_run(pool: &Pool<Self>, id: RunId) -> Result<Run> {
        let body = Self::get_body(
            pool,
            "SELECT body FROM cineflow_runs WHERE id = $1",
            id,
            "run",
            "cannot read a run",
        )
        .await?;
        decode_run(&body)
    }

    fn list_runs(
        pool: &Pool<Self>,
        query: &RunQuery,
    ) -> impl Future<Output = Result<Page<Run>>> + Send {
        let (page, query) = (query.page, query.clone());
        let listing = Listing {
            table: "cineflow_runs",
            columns: "body",
            order: " ORDER BY created_at_ns DESC, id ASC",
            what: "cannot list runs",
        };
        Self::list_page(
            pool,
            listing,
            move |qb| Self::push_run_filters(qb, &query),
            page,
            |row| decode_run(&row.col::<String>("body")?),
        )
    }

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

    async fn run_counts(pool: &Pool<Self>, id: RunId) -> Result<RunCounts> {
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

    fn list_tasks(
        pool: &Pool<Self>,
        query: &TaskQuery,
    ) -> impl Future<Output = Result<Page<Task>>> + Send {
        let listing = Listing {
            table: "cineflow_tasks",
            columns: task_columns!(),
            order: task_order(query),
            what: "cannot list tasks",
        };
        let (page, query) = (query.page, query.clone());
        Self::list_page(
            pool,
            listing,
            move |qb| Self::push_task_filters(qb, &query),
            page,
            |row| row.task(),
        )
    }

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
                let task = row.task()?;
                if records_vendor_job(&task, &provider, &vendor_job_id) {
                    found.push(task);
                }
            }
            Ok(found)
        }
    }

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

    fn bind_task_update<'q>(
        query: Query<'q, Self, Self::Arguments>,
        c: &'q TaskCols,
        task: &Task,
    ) -> Query<'q, Self, Self::Arguments> {
        Self::bind_task_cols(query, c)
            .bind(c.id.as_str())
            .bind(to_i64(task.revision))
    }

    #[cfg(feature = "sqlite")]
    async fn insert_task_row<'c>(
        conn: &'c mut Self::Connection,
        c: &'c TaskCols,
        lease: &'c LeaseCols,
    ) -> Result<()> {
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
