//! [`PostgresStore`]: a Postgres database shared by many workers.
//!
//! - The schema (tables prefixed `cineflow_`) is created and upgraded by embedded migrations
//!   (`migrations/postgres/`), tracked in `cineflow_migrations`, in the connection's current
//!   schema: set `search_path` (e.g. with [`PgConnectOptions::options`]) to keep several
//!   cineflow stores in one database.
//! - Each record's JSON is stored verbatim in a `body` column (the source of truth); indexed
//!   columns serve the filters and sorts.
//! - Task writes are one compare-and-swap, lease-fenced `UPDATE`. Claims are one statement (so
//!   one transaction) that picks the oldest claimable rows with `FOR UPDATE SKIP LOCKED`:
//!   concurrent claimers on any number of machines never take the same task and never wait
//!   for each other.
//! - Lease tokens come from the `cineflow_lease_token` sequence (unique across processes) and
//!   lease deadlines use the database server's clock, so workers with skewed clocks agree on
//!   which leases are live.

use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use cineflow_core::store::{
    Page, PageRequest, RunQuery, SortOrder, Store, TaskQuery, TaskSort, check_task_write,
};
use cineflow_core::{
    Error, Lease, Result, Run, RunCounts, RunId, Segment, SegmentId, SegmentPatch, Storyboard,
    StoryboardId, Task, TaskId, TaskStatus,
};
use sqlx::postgres::PgPool;
pub use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{Postgres, QueryBuilder};

use crate::common::{exists, from_ns, lease_lost, not_found, stale, to_ns, ttl_ns};
use crate::sql::{
    RowExt, TaskCols, db, decode_run, decode_storyboard, encode_run, encode_storyboard,
    is_unique_violation, page_i64, task_of, to_i64, to_u64, written_task,
};

/// The database clock in nanoseconds since the Unix epoch (microsecond resolution).
macro_rules! now_ns {
    () => {
        "(floor(extract(epoch FROM clock_timestamp()) * 1000000)::bigint * 1000)"
    };
}

/// `now_ns + ttl` for a bound `BIGINT` ttl parameter, saturating instead of overflowing.
macro_rules! deadline_ns {
    ($ttl:literal) => {
        concat!(
            "(LEAST(",
            now_ns!(),
            ", 9223372036854775807 - ",
            $ttl,
            ") + ",
            $ttl,
            ")"
        )
    };
}

/// A [`Store`] in a Postgres database, through an sqlx connection pool.
///
/// ```no_run
/// # async fn demo() -> cineflow_core::Result<()> {
/// use cineflow_store::postgres::{PgConnectOptions, PgPoolOptions, PostgresStore};
/// // One store per URL…
/// let store = PostgresStore::connect("postgres://cineflow@db.internal/cineflow").await?;
/// // …or in a schema of its own, with a bigger pool.
/// let options: PgConnectOptions = "postgres://cineflow@db.internal/app".parse().unwrap();
/// let store = PostgresStore::connect_with(
///     options.options([("search_path", "cineflow")]),
///     PgPoolOptions::new().max_connections(32),
/// )
/// .await?;
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct PostgresStore {
    pool: PgPool,
}

impl PostgresStore {
    /// Connects to `url` (`postgres://user:password@host:port/database?…`) with a default pool
    /// and brings the schema up to date.
    ///
    /// # Errors
    /// [`Error::Config`] for a malformed URL; [`Error::Backend`] if the database cannot be
    /// reached or migrated.
    pub async fn connect(url: &str) -> Result<Self> {
        let options = PgConnectOptions::from_str(url)
            .map_err(|e| Error::Config(format!("invalid Postgres URL: {e}")))?;
        Self::connect_with(options, PgPoolOptions::new()).await
    }

    /// Connects with explicit connection and pool options (TLS, `search_path`, pool size…)
    /// and brings the schema up to date.
    ///
    /// # Errors
    /// [`Error::Backend`] if the database cannot be reached or migrated.
    pub async fn connect_with(options: PgConnectOptions, pool: PgPoolOptions) -> Result<Self> {
        let pool = pool
            .connect_with(options)
            .await
            .map_err(db("cannot connect to Postgres"))?;
        Self::from_pool(pool).await
    }

    /// Uses an existing pool and brings the schema up to date.
    ///
    /// # Errors
    /// [`Error::Backend`] if the migrations fail.
    pub async fn from_pool(pool: PgPool) -> Result<Self> {
        let mut migrator = sqlx::migrate!("migrations/postgres");
        migrator.dangerous_set_table_name("cineflow_migrations");
        migrator
            .run(&pool)
            .await
            .map_err(|e| Error::backend("cannot migrate the Postgres database", e))?;
        Ok(Self { pool })
    }

    /// The connection pool.
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// Closes every connection, waiting for them to finish.
    pub async fn close(&self) {
        self.pool.close().await;
    }

    async fn begin_read(&self) -> Result<sqlx::Transaction<'static, Postgres>> {
        self.pool
            .begin_with("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
            .await
            .map_err(db("cannot begin a read"))
    }
}

/// Appends the `WHERE` clause of a task query.
fn push_task_filters(qb: &mut QueryBuilder<Postgres>, q: &TaskQuery) {
    qb.push(" WHERE TRUE");
    if let Some(run) = q.run_id {
        qb.push(" AND run_id = ").push_bind(run.to_string());
    }
    if !q.status.is_empty() {
        let statuses: Vec<&str> = q.status.iter().map(|s| s.as_str()).collect();
        qb.push(" AND status = ANY(").push_bind(statuses).push(")");
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

/// The `ORDER BY` clause of a task query (the same total order as [`TaskQuery::compare`]).
fn task_order(q: &TaskQuery) -> &'static str {
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

/// Appends the `WHERE` clause of a run query.
fn push_run_filters(qb: &mut QueryBuilder<Postgres>, q: &RunQuery) {
    qb.push(" WHERE TRUE");
    if let Some(s) = q.status {
        qb.push(" AND status = ").push_bind(s.as_str());
    }
    if let Some(sb) = q.storyboard_id {
        qb.push(" AND storyboard_id = ").push_bind(sb.to_string());
    }
}

fn push_page(qb: &mut QueryBuilder<Postgres>, page: PageRequest) {
    qb.push(" LIMIT ")
        .push_bind(page_i64(page.limit()))
        .push(" OFFSET ")
        .push_bind(page_i64(page.offset()));
}

fn page_of<T>(page: PageRequest, items: Vec<T>, total: i64) -> Page<T> {
    Page {
        items,
        page: page.page.max(1),
        page_size: u32::try_from(page.limit()).unwrap_or(PageRequest::MAX_PAGE_SIZE),
        total: to_u64(total),
    }
}

const SELECT_SEGMENT: &str = "SELECT b.body FROM cineflow_segments s \
     JOIN cineflow_storyboards b ON b.id = s.storyboard_id WHERE s.id = $1";

const SELECT_TASK: &str = concat!(
    "SELECT body, revision, lease_owner, lease_token, lease_expires_at_ns, ",
    now_ns!(),
    " AS now_ns FROM cineflow_tasks WHERE id = $1"
);

#[async_trait]
impl Store for PostgresStore {
    async fn put_storyboard(&self, storyboard: &Storyboard) -> Result<()> {
        let body = encode_storyboard(storyboard)?;
        let id = storyboard.id.to_string();
        let segment_ids: Vec<String> = storyboard
            .segments
            .iter()
            .map(|s| s.id.to_string())
            .collect();
        let mut tx = self
            .pool
            .begin()
            .await
            .map_err(db("cannot begin a write"))?;
        sqlx::query(
            "INSERT INTO cineflow_storyboards (id, created_at_ns, body) VALUES ($1, $2, $3) \
             ON CONFLICT (id) DO UPDATE SET created_at_ns = excluded.created_at_ns, \
             body = excluded.body",
        )
        .bind(&id)
        .bind(to_ns(storyboard.created_at))
        .bind(body)
        .execute(&mut *tx)
        .await
        .map_err(db("cannot write a storyboard"))?;
        sqlx::query("DELETE FROM cineflow_segments WHERE storyboard_id = $1")
            .bind(&id)
            .execute(&mut *tx)
            .await
            .map_err(db("cannot write a storyboard's segments"))?;
        sqlx::query(
            "INSERT INTO cineflow_segments (id, storyboard_id) \
             SELECT s, $2 FROM UNNEST($1::text[]) AS s \
             ON CONFLICT (id) DO UPDATE SET storyboard_id = excluded.storyboard_id",
        )
        .bind(segment_ids)
        .bind(&id)
        .execute(&mut *tx)
        .await
        .map_err(db("cannot write a storyboard's segments"))?;
        tx.commit().await.map_err(db("cannot commit a storyboard"))
    }

    async fn get_storyboard(&self, id: StoryboardId) -> Result<Storyboard> {
        let body: Option<String> =
            sqlx::query_scalar("SELECT body FROM cineflow_storyboards WHERE id = $1")
                .bind(id.to_string())
                .fetch_optional(&self.pool)
                .await
                .map_err(db("cannot read a storyboard"))?;
        decode_storyboard(&body.ok_or_else(|| not_found("storyboard", id))?)
    }

    async fn list_storyboards(&self, page: PageRequest) -> Result<Page<Storyboard>> {
        let mut tx = self.begin_read().await?;
        let total: i64 = sqlx::query_scalar("SELECT count(*) FROM cineflow_storyboards")
            .fetch_one(&mut *tx)
            .await
            .map_err(db("cannot count storyboards"))?;
        let bodies: Vec<String> = sqlx::query_scalar(
            "SELECT body FROM cineflow_storyboards ORDER BY created_at_ns DESC, id ASC \
             LIMIT $1 OFFSET $2",
        )
        .bind(page_i64(page.limit()))
        .bind(page_i64(page.offset()))
        .fetch_all(&mut *tx)
        .await
        .map_err(db("cannot list storyboards"))?;
        tx.commit().await.map_err(db("cannot end a read"))?;
        let items = bodies
            .iter()
            .map(|b| decode_storyboard(b))
            .collect::<Result<_>>()?;
        Ok(page_of(page, items, total))
    }

    async fn get_segment(&self, id: SegmentId) -> Result<(StoryboardId, Segment)> {
        let body: Option<String> = sqlx::query_scalar(SELECT_SEGMENT)
            .bind(id.to_string())
            .fetch_optional(&self.pool)
            .await
            .map_err(db("cannot read a segment"))?;
        let sb = decode_storyboard(&body.ok_or_else(|| not_found("segment", id))?)?;
        let seg = sb
            .segments
            .iter()
            .find(|s| s.id == id)
            .cloned()
            .ok_or_else(|| not_found("segment", id))?;
        Ok((sb.id, seg))
    }

    async fn update_segment(&self, id: SegmentId, patch: &SegmentPatch) -> Result<Segment> {
        let mut tx = self
            .pool
            .begin()
            .await
            .map_err(db("cannot begin a write"))?;
        let body: Option<String> = sqlx::query_scalar(concat!(
            "SELECT b.body FROM cineflow_segments s \
             JOIN cineflow_storyboards b ON b.id = s.storyboard_id WHERE s.id = $1 ",
            "FOR UPDATE OF b"
        ))
        .bind(id.to_string())
        .fetch_optional(&mut *tx)
        .await
        .map_err(db("cannot read a segment"))?;
        let mut sb = decode_storyboard(&body.ok_or_else(|| not_found("segment", id))?)?;
        let seg = sb
            .segments
            .iter_mut()
            .find(|s| s.id == id)
            .ok_or_else(|| not_found("segment", id))?;
        seg.apply(patch)?;
        let seg = seg.clone();
        sqlx::query("UPDATE cineflow_storyboards SET body = $1 WHERE id = $2")
            .bind(encode_storyboard(&sb)?)
            .bind(sb.id.to_string())
            .execute(&mut *tx)
            .await
            .map_err(db("cannot write a segment"))?;
        tx.commit().await.map_err(db("cannot commit a segment"))?;
        Ok(seg)
    }

    async fn insert_run(&self, run: &Run, tasks: &[Task]) -> Result<()> {
        if let Some(t) = tasks.iter().find(|t| t.run_id != run.id) {
            return Err(exists("task", t.id, "belongs to another run"));
        }
        let mut seen = std::collections::HashSet::new();
        if let Some(t) = tasks.iter().find(|t| !seen.insert(t.id)) {
            return Err(exists("task", t.id, "appears twice in one insert"));
        }
        let mut cols = TaskColumns::default();
        for t in tasks {
            cols.push(t)?;
        }
        let mut tx = self
            .pool
            .begin()
            .await
            .map_err(db("cannot begin a write"))?;
        sqlx::query(
            "INSERT INTO cineflow_runs (id, storyboard_id, status, created_at_ns, revision, body) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(run.id.to_string())
        .bind(run.spec.storyboard_id.to_string())
        .bind(run.status.as_str())
        .bind(to_ns(run.created_at))
        .bind(to_i64(run.revision))
        .bind(encode_run(run)?)
        .execute(&mut *tx)
        .await
        .map_err(|e| {
            if is_unique_violation(&e) {
                exists("run", run.id, "already exists")
            } else {
                Error::backend("cannot insert a run", e)
            }
        })?;
        let ids = cols.id.clone();
        let inserted = sqlx::query(
            "INSERT INTO cineflow_tasks (id, run_id, status, segment_index, version_index, \
             error_code, retryable, created_at_ns, revision, lease_owner, lease_token, \
             lease_expires_at_ns, body) \
             SELECT * FROM UNNEST($1::text[], $2::text[], $3::text[], $4::bigint[], \
             $5::bigint[], $6::text[], $7::boolean[], $8::bigint[], $9::bigint[], $10::text[], \
             $11::bigint[], $12::bigint[], $13::text[])",
        )
        .bind(cols.id)
        .bind(cols.run_id)
        .bind(cols.status)
        .bind(cols.segment_index)
        .bind(cols.version_index)
        .bind(cols.error_code)
        .bind(cols.retryable)
        .bind(cols.created_at_ns)
        .bind(cols.revision)
        .bind(cols.lease_owner)
        .bind(cols.lease_token)
        .bind(cols.lease_expires_at_ns)
        .bind(cols.body)
        .execute(&mut *tx)
        .await;
        match inserted {
            Ok(_) => tx.commit().await.map_err(db("cannot commit a run")),
            Err(e) if is_unique_violation(&e) => {
                drop(tx);
                let taken: Option<String> = sqlx::query_scalar(
                    "SELECT id FROM cineflow_tasks WHERE id = ANY($1) ORDER BY id LIMIT 1",
                )
                .bind(ids)
                .fetch_optional(&self.pool)
                .await
                .map_err(db("cannot read tasks"))?;
                Err(exists(
                    "task",
                    taken.unwrap_or_else(|| "(unknown)".into()),
                    "already exists",
                ))
            }
            Err(e) => Err(Error::backend("cannot insert tasks", e)),
        }
    }

    async fn get_run(&self, id: RunId) -> Result<Run> {
        let body: Option<String> =
            sqlx::query_scalar("SELECT body FROM cineflow_runs WHERE id = $1")
                .bind(id.to_string())
                .fetch_optional(&self.pool)
                .await
                .map_err(db("cannot read a run"))?;
        decode_run(&body.ok_or_else(|| not_found("run", id))?)
    }

    async fn list_runs(&self, query: &RunQuery) -> Result<Page<Run>> {
        let mut tx = self.begin_read().await?;
        let mut count = QueryBuilder::<Postgres>::new("SELECT count(*) FROM cineflow_runs");
        push_run_filters(&mut count, query);
        let total: i64 = count
            .build_query_scalar()
            .fetch_one(&mut *tx)
            .await
            .map_err(db("cannot count runs"))?;
        let mut select = QueryBuilder::<Postgres>::new("SELECT body FROM cineflow_runs");
        push_run_filters(&mut select, query);
        select.push(" ORDER BY created_at_ns DESC, id ASC");
        push_page(&mut select, query.page);
        let bodies: Vec<String> = select
            .build_query_scalar()
            .fetch_all(&mut *tx)
            .await
            .map_err(db("cannot list runs"))?;
        tx.commit().await.map_err(db("cannot end a read"))?;
        let items = bodies
            .iter()
            .map(|b| decode_run(b))
            .collect::<Result<_>>()?;
        Ok(page_of(query.page, items, total))
    }

    async fn update_run(&self, run: &Run) -> Result<Run> {
        let mut next = run.clone();
        next.revision = next.revision.saturating_add(1);
        // One statement: the CAS, and the stored revision when it fails.
        let row = sqlx::query(
            "WITH updated AS ( \
               UPDATE cineflow_runs SET storyboard_id = $1, status = $2, created_at_ns = $3, \
               revision = $4, body = $5 WHERE id = $6 AND revision = $7 RETURNING revision) \
             SELECT (SELECT revision FROM updated) AS updated, \
                    (SELECT revision FROM cineflow_runs WHERE id = $6) AS stored",
        )
        .bind(next.spec.storyboard_id.to_string())
        .bind(next.status.as_str())
        .bind(to_ns(next.created_at))
        .bind(to_i64(next.revision))
        .bind(encode_run(&next)?)
        .bind(run.id.to_string())
        .bind(to_i64(run.revision))
        .fetch_one(&self.pool)
        .await
        .map_err(db("cannot write a run"))?;
        let updated: Option<i64> = row.col("updated")?;
        let stored: Option<i64> = row.col("stored")?;
        match (updated, stored) {
            (Some(_), _) => Ok(next),
            (None, None) => Err(not_found("run", run.id)),
            (None, Some(r)) => Err(stale("run", run.id, run.revision, to_u64(r))),
        }
    }

    async fn run_counts(&self, id: RunId) -> Result<RunCounts> {
        let rows = sqlx::query(
            "SELECT t.status AS status, count(t.id) AS n FROM cineflow_runs r \
             LEFT JOIN cineflow_tasks t ON t.run_id = r.id WHERE r.id = $1 GROUP BY t.status",
        )
        .bind(id.to_string())
        .fetch_all(&self.pool)
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

    async fn get_task(&self, id: TaskId) -> Result<Task> {
        let row = sqlx::query(SELECT_TASK)
            .bind(id.to_string())
            .fetch_optional(&self.pool)
            .await
            .map_err(db("cannot read a task"))?;
        task_of(&row.ok_or_else(|| not_found("task", id))?)
    }

    async fn list_tasks(&self, query: &TaskQuery) -> Result<Page<Task>> {
        let mut tx = self.begin_read().await?;
        let mut count = QueryBuilder::<Postgres>::new("SELECT count(*) FROM cineflow_tasks");
        push_task_filters(&mut count, query);
        let total: i64 = count
            .build_query_scalar()
            .fetch_one(&mut *tx)
            .await
            .map_err(db("cannot count tasks"))?;
        let mut select = QueryBuilder::<Postgres>::new(
            "SELECT body, revision, lease_owner, lease_token, lease_expires_at_ns \
             FROM cineflow_tasks",
        );
        push_task_filters(&mut select, query);
        select.push(task_order(query));
        push_page(&mut select, query.page);
        let rows = select
            .build()
            .fetch_all(&mut *tx)
            .await
            .map_err(db("cannot list tasks"))?;
        tx.commit().await.map_err(db("cannot end a read"))?;
        let items = rows.iter().map(task_of).collect::<Result<_>>()?;
        Ok(page_of(query.page, items, total))
    }

    async fn update_task(&self, task: &Task) -> Result<Task> {
        let c = TaskCols::new(task, task.revision.saturating_add(1))?;
        let token = task.lease.as_ref().map(|l| to_i64(l.token));
        // A few rounds: if the row changes between a failed update and its diagnosis so that
        // the write would now pass, try again rather than report a conflict that is gone.
        for _ in 0..3 {
            let rows = sqlx::query(concat!(
                "UPDATE cineflow_tasks SET run_id = $1, status = $2, segment_index = $3, \
                 version_index = $4, error_code = $5, retryable = $6, created_at_ns = $7, \
                 revision = revision + 1, body = $8 \
                 WHERE id = $9 AND revision = $10 \
                 AND (lease_token IS NULL OR lease_token = $11 OR lease_expires_at_ns <= ",
                now_ns!(),
                ") AND ($11::bigint IS NULL OR lease_token = $11) \
                 RETURNING revision, lease_owner, lease_token, lease_expires_at_ns"
            ))
            .bind(&c.run_id)
            .bind(c.status)
            .bind(c.segment_index)
            .bind(c.version_index)
            .bind(c.error_code)
            .bind(c.retryable)
            .bind(c.created_at_ns)
            .bind(&c.body)
            .bind(&c.id)
            .bind(to_i64(task.revision))
            .bind(token)
            .fetch_all(&self.pool)
            .await
            .map_err(db("cannot write a task"))?;
            if let Some(row) = rows.first() {
                return written_task(task, row);
            }
            let row = sqlx::query(SELECT_TASK)
                .bind(&c.id)
                .fetch_optional(&self.pool)
                .await
                .map_err(db("cannot read a task"))?
                .ok_or_else(|| not_found("task", task.id))?;
            let stored = task_of(&row)?;
            check_task_write(&stored, task, from_ns(row.col("now_ns")?))?;
        }
        Err(Error::Conflict {
            entity: "task",
            id: task.id.to_string(),
            reason: "the task kept changing during the write".into(),
        })
    }

    async fn claim_tasks(
        &self,
        owner: &str,
        run: Option<RunId>,
        limit: usize,
        ttl: Duration,
    ) -> Result<Vec<Task>> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let rows = sqlx::query(concat!(
            "WITH now AS (SELECT ",
            now_ns!(),
            " AS ns), \
             picked AS ( \
               SELECT t.id FROM cineflow_tasks t \
               WHERE t.status IN ('pending', 'submitting', 'queued', 'running', 'downloading') \
               AND (t.lease_expires_at_ns IS NULL \
                    OR t.lease_expires_at_ns <= (SELECT ns FROM now)) \
               AND ($1::text IS NULL OR t.run_id = $1) \
               ORDER BY t.created_at_ns ASC, t.id ASC \
               LIMIT $2 \
               FOR UPDATE OF t SKIP LOCKED) \
             UPDATE cineflow_tasks t SET lease_owner = $3, \
               lease_token = nextval('cineflow_lease_token'), \
               lease_expires_at_ns = LEAST((SELECT ns FROM now), 9223372036854775807 - $4) + $4, \
               revision = t.revision + 1 \
             FROM picked WHERE t.id = picked.id \
             RETURNING t.body, t.revision, t.lease_owner, t.lease_token, t.lease_expires_at_ns"
        ))
        .bind(run.map(|r| r.to_string()))
        .bind(page_i64(limit))
        .bind(owner)
        .bind(ttl_ns(ttl))
        .fetch_all(&self.pool)
        .await
        .map_err(db("cannot claim tasks"))?;
        let mut claimed = rows.iter().map(task_of).collect::<Result<Vec<_>>>()?;
        claimed.sort_by(|a, b| a.created_at.cmp(&b.created_at).then(a.id.cmp(&b.id)));
        Ok(claimed)
    }

    async fn heartbeat(&self, task: TaskId, lease: &Lease, ttl: Duration) -> Result<Lease> {
        let row = sqlx::query(concat!(
            "WITH renewed AS ( \
               UPDATE cineflow_tasks SET lease_expires_at_ns = ",
            deadline_ns!("$1"),
            " WHERE id = $2 AND lease_token = $3 AND lease_owner = $4 \
               RETURNING lease_expires_at_ns) \
             SELECT (SELECT lease_expires_at_ns FROM renewed) AS expires, \
                    EXISTS (SELECT 1 FROM cineflow_tasks WHERE id = $2) AS found"
        ))
        .bind(ttl_ns(ttl))
        .bind(task.to_string())
        .bind(to_i64(lease.token))
        .bind(&lease.owner)
        .fetch_one(&self.pool)
        .await
        .map_err(db("cannot renew a lease"))?;
        let expires: Option<i64> = row.col("expires")?;
        let found: bool = row.col("found")?;
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

    async fn release(&self, task: TaskId, lease: &Lease) -> Result<()> {
        sqlx::query(
            "UPDATE cineflow_tasks SET lease_owner = NULL, lease_token = NULL, \
             lease_expires_at_ns = NULL WHERE id = $1 AND lease_token = $2",
        )
        .bind(task.to_string())
        .bind(to_i64(lease.token))
        .execute(&self.pool)
        .await
        .map_err(db("cannot release a lease"))?;
        Ok(())
    }
}

/// Task columns as arrays, for one `INSERT … SELECT * FROM UNNEST(…)`.
#[derive(Debug, Default)]
struct TaskColumns {
    id: Vec<String>,
    run_id: Vec<String>,
    status: Vec<String>,
    segment_index: Vec<i64>,
    version_index: Vec<i64>,
    error_code: Vec<Option<String>>,
    retryable: Vec<bool>,
    created_at_ns: Vec<i64>,
    revision: Vec<i64>,
    lease_owner: Vec<Option<String>>,
    lease_token: Vec<Option<i64>>,
    lease_expires_at_ns: Vec<Option<i64>>,
    body: Vec<String>,
}

impl TaskColumns {
    fn push(&mut self, t: &Task) -> Result<()> {
        let c = TaskCols::new(t, t.revision)?;
        let lease = t.lease.as_ref();
        self.id.push(c.id);
        self.run_id.push(c.run_id);
        self.status.push(c.status.to_owned());
        self.segment_index.push(c.segment_index);
        self.version_index.push(c.version_index);
        self.error_code.push(c.error_code.map(str::to_owned));
        self.retryable.push(c.retryable);
        self.created_at_ns.push(c.created_at_ns);
        self.revision.push(c.revision);
        self.lease_owner.push(lease.map(|l| l.owner.clone()));
        self.lease_token.push(lease.map(|l| to_i64(l.token)));
        self.lease_expires_at_ns
            .push(lease.map(|l| to_ns(l.expires_at)));
        self.body.push(c.body);
        Ok(())
    }
}
