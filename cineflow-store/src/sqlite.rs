//! [`SqliteStore`]: an embedded SQLite database (details on the type).

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use cineflow_core::store::{Page, PageRequest, RunQuery, SortOrder, Store, TaskQuery, TaskSort};
use cineflow_core::{
    Error, Lease, Result, Run, RunCounts, RunId, Segment, SegmentId, SegmentPatch, Storyboard,
    StoryboardId, Task, TaskId, TaskStatus,
};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use sqlx::{QueryBuilder, Sqlite, SqliteConnection};

use crate::common::{deadline, exists, from_ns, lease_lost, not_found, now, stale, to_ns};
use crate::sql::{
    RowExt, TaskCols, db, decode_run, decode_storyboard, encode_run, encode_storyboard,
    is_unique_violation, page_i64, task_of, to_i64, to_u64, written_task,
};

/// How long a statement waits for another writer's lock before failing.
const BUSY_TIMEOUT: Duration = Duration::from_secs(30);

/// A [`Store`] in an SQLite database file (or in memory), through sqlx. Clones share one
/// connection pool.
///
/// - The database runs in WAL mode with `synchronous = FULL` (a write is on disk when the call
///   returns), `foreign_keys` on and a 30 s busy timeout, so several processes on one machine
///   may share a file.
/// - The schema (tables prefixed `cineflow_`) is created and upgraded by embedded migrations
///   (`migrations/sqlite/` in the crate), tracked in the `cineflow_migrations` table.
/// - Each record's full JSON is stored in a `body` column, the source of truth; indexed columns
///   (run, status, segment and version index, error code, retryable, creation time) serve the
///   filters and sorts. A task's `revision` and lease live in columns of their own.
/// - Task writes are one compare-and-swap, lease-fenced `UPDATE`; claims run in a
///   `BEGIN IMMEDIATE` transaction, so two claimers never take the same task, and lease tokens
///   come from a counter in the database, unique across processes.
///
/// ```
/// # tokio::runtime::Builder::new_current_thread().enable_all().build()?.block_on(async {
/// use cineflow_core::Store;
/// let dir = tempfile::tempdir()?;
/// let store = cineflow_store::SqliteStore::open(dir.path().join("cineflow.db")).await?;
/// assert_eq!(store.list_runs(&Default::default()).await?.total, 0);
/// store.close().await;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// # })?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone)]
pub struct SqliteStore {
    pool: SqlitePool,
}

impl SqliteStore {
    /// Opens (creating it and its directory if missing) the database file at `path` and brings
    /// its schema up to date.
    ///
    /// # Errors
    /// [`Error::Backend`] if the file cannot be opened or migrated.
    pub async fn open(path: impl AsRef<Path>) -> Result<Self> {
        Self::open_with(SqliteConnectOptions::new().filename(path), false).await
    }

    /// Opens a database by sqlx URL: `sqlite://PATH` (relative), `sqlite:///ABS/PATH`, with
    /// optional `?…` parameters, or `sqlite::memory:`. A missing file (and directory) is created.
    ///
    /// # Errors
    /// [`Error::Config`] for a malformed URL; [`Error::Backend`] if the database cannot be
    /// opened or migrated.
    pub async fn connect(url: &str) -> Result<Self> {
        let options = SqliteConnectOptions::from_str(url)
            .map_err(|e| Error::Config(format!("invalid SQLite URL {url:?}: {e}")))?;
        let in_memory = url.contains(":memory:") || url.contains("mode=memory");
        Self::open_with(options, in_memory).await
    }

    /// A private in-memory database: nothing is written to disk.
    ///
    /// # Errors
    /// [`Error::Backend`] if it cannot be created.
    pub async fn in_memory() -> Result<Self> {
        Self::connect("sqlite::memory:").await
    }

    async fn open_with(options: SqliteConnectOptions, in_memory: bool) -> Result<Self> {
        if !in_memory
            && let Some(dir) = options.get_filename().parent()
            && !dir.as_os_str().is_empty()
        {
            tokio::fs::create_dir_all(dir).await.map_err(|e| {
                Error::backend(format!("cannot create the directory {}", dir.display()), e)
            })?;
        }
        let options = options
            .create_if_missing(true)
            .foreign_keys(true)
            .busy_timeout(BUSY_TIMEOUT)
            .synchronous(SqliteSynchronous::Full);
        let pool = if in_memory {
            // One connection that is never closed: the database lives as long as it does.
            SqlitePoolOptions::new()
                .max_connections(1)
                .min_connections(1)
                .idle_timeout(None)
                .max_lifetime(None)
                .connect_with(options)
                .await
        } else {
            SqlitePoolOptions::new()
                .connect_with(options.journal_mode(SqliteJournalMode::Wal))
                .await
        }
        .map_err(db("cannot open the SQLite database"))?;
        let mut migrator = sqlx::migrate!("migrations/sqlite");
        migrator.dangerous_set_table_name("cineflow_migrations");
        migrator
            .run(&pool)
            .await
            .map_err(|e| Error::backend("cannot migrate the SQLite database", e))?;
        Ok(Self { pool })
    }

    /// Closes every connection, waiting for them to finish.
    pub async fn close(&self) {
        self.pool.close().await;
    }

    async fn begin_immediate(&self) -> Result<sqlx::Transaction<'static, Sqlite>> {
        self.pool
            .begin_with("BEGIN IMMEDIATE")
            .await
            .map_err(db("cannot begin an SQLite write transaction"))
    }

    async fn load_task(conn: &mut SqliteConnection, id: TaskId) -> Result<Option<Task>> {
        sqlx::query(
            "SELECT body, revision, lease_owner, lease_token, lease_expires_at_ns \
             FROM cineflow_tasks WHERE id = ?1",
        )
        .bind(id.to_string())
        .fetch_optional(conn)
        .await
        .map_err(db("cannot read a task"))?
        .map(|row| task_of(&row))
        .transpose()
    }
}

/// Appends the `WHERE` clause of a task query.
fn push_task_filters(qb: &mut QueryBuilder<Sqlite>, q: &TaskQuery) {
    qb.push(" WHERE 1 = 1");
    if let Some(run) = q.run_id {
        qb.push(" AND run_id = ").push_bind(run.to_string());
    }
    if !q.status.is_empty() {
        qb.push(" AND status IN (");
        let mut list = qb.separated(", ");
        for s in &q.status {
            list.push_bind(s.as_str());
        }
        qb.push(")");
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
fn push_run_filters(qb: &mut QueryBuilder<Sqlite>, q: &RunQuery) {
    qb.push(" WHERE 1 = 1");
    if let Some(s) = q.status {
        qb.push(" AND status = ").push_bind(s.as_str());
    }
    if let Some(sb) = q.storyboard_id {
        qb.push(" AND storyboard_id = ").push_bind(sb.to_string());
    }
}

fn push_page(qb: &mut QueryBuilder<Sqlite>, page: PageRequest) {
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

#[async_trait]
impl Store for SqliteStore {
    async fn put_storyboard(&self, storyboard: &Storyboard) -> Result<()> {
        let body = encode_storyboard(storyboard)?;
        let id = storyboard.id.to_string();
        let mut tx = self.begin_immediate().await?;
        sqlx::query(
            "INSERT INTO cineflow_storyboards (id, created_at_ns, body) VALUES (?1, ?2, ?3) \
             ON CONFLICT (id) DO UPDATE SET created_at_ns = excluded.created_at_ns, \
             body = excluded.body",
        )
        .bind(&id)
        .bind(to_ns(storyboard.created_at))
        .bind(body)
        .execute(&mut *tx)
        .await
        .map_err(db("cannot write a storyboard"))?;
        sqlx::query("DELETE FROM cineflow_segments WHERE storyboard_id = ?1")
            .bind(&id)
            .execute(&mut *tx)
            .await
            .map_err(db("cannot write a storyboard's segments"))?;
        for s in &storyboard.segments {
            sqlx::query(
                "INSERT INTO cineflow_segments (id, storyboard_id) VALUES (?1, ?2) \
                 ON CONFLICT (id) DO UPDATE SET storyboard_id = excluded.storyboard_id",
            )
            .bind(s.id.to_string())
            .bind(&id)
            .execute(&mut *tx)
            .await
            .map_err(db("cannot write a storyboard's segments"))?;
        }
        tx.commit().await.map_err(db("cannot commit a storyboard"))
    }

    async fn get_storyboard(&self, id: StoryboardId) -> Result<Storyboard> {
        let body: Option<String> =
            sqlx::query_scalar("SELECT body FROM cineflow_storyboards WHERE id = ?1")
                .bind(id.to_string())
                .fetch_optional(&self.pool)
                .await
                .map_err(db("cannot read a storyboard"))?;
        decode_storyboard(&body.ok_or_else(|| not_found("storyboard", id))?)
    }

    async fn list_storyboards(&self, page: PageRequest) -> Result<Page<Storyboard>> {
        let mut tx = self.pool.begin().await.map_err(db("cannot begin a read"))?;
        let total: i64 = sqlx::query_scalar("SELECT count(*) FROM cineflow_storyboards")
            .fetch_one(&mut *tx)
            .await
            .map_err(db("cannot count storyboards"))?;
        let bodies: Vec<String> = sqlx::query_scalar(
            "SELECT body FROM cineflow_storyboards ORDER BY created_at_ns DESC, id ASC \
             LIMIT ?1 OFFSET ?2",
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
        let body: Option<String> = sqlx::query_scalar(
            "SELECT b.body FROM cineflow_segments s \
             JOIN cineflow_storyboards b ON b.id = s.storyboard_id WHERE s.id = ?1",
        )
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
        let mut tx = self.begin_immediate().await?;
        let body: Option<String> = sqlx::query_scalar(
            "SELECT b.body FROM cineflow_segments s \
             JOIN cineflow_storyboards b ON b.id = s.storyboard_id WHERE s.id = ?1",
        )
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
        sqlx::query("UPDATE cineflow_storyboards SET body = ?1 WHERE id = ?2")
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
        let rows = tasks
            .iter()
            .map(|t| TaskCols::new(t, t.revision))
            .collect::<Result<Vec<_>>>()?;
        let mut tx = self.begin_immediate().await?;
        sqlx::query(
            "INSERT INTO cineflow_runs (id, storyboard_id, status, created_at_ns, revision, body) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
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
        for (t, c) in tasks.iter().zip(rows) {
            let lease = t.lease.as_ref();
            sqlx::query(
                "INSERT INTO cineflow_tasks (id, run_id, status, segment_index, version_index, \
                 error_code, retryable, created_at_ns, revision, lease_owner, lease_token, \
                 lease_expires_at_ns, body) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)",
            )
            .bind(c.id)
            .bind(c.run_id)
            .bind(c.status)
            .bind(c.segment_index)
            .bind(c.version_index)
            .bind(c.error_code)
            .bind(c.retryable)
            .bind(c.created_at_ns)
            .bind(c.revision)
            .bind(lease.map(|l| l.owner.clone()))
            .bind(lease.map(|l| to_i64(l.token)))
            .bind(lease.map(|l| to_ns(l.expires_at)))
            .bind(c.body)
            .execute(&mut *tx)
            .await
            .map_err(|e| {
                if is_unique_violation(&e) {
                    exists("task", t.id, "already exists")
                } else {
                    Error::backend("cannot insert a task", e)
                }
            })?;
        }
        tx.commit().await.map_err(db("cannot commit a run"))
    }

    async fn get_run(&self, id: RunId) -> Result<Run> {
        let body: Option<String> =
            sqlx::query_scalar("SELECT body FROM cineflow_runs WHERE id = ?1")
                .bind(id.to_string())
                .fetch_optional(&self.pool)
                .await
                .map_err(db("cannot read a run"))?;
        decode_run(&body.ok_or_else(|| not_found("run", id))?)
    }

    async fn list_runs(&self, query: &RunQuery) -> Result<Page<Run>> {
        let mut tx = self.pool.begin().await.map_err(db("cannot begin a read"))?;
        let mut count = QueryBuilder::<Sqlite>::new("SELECT count(*) FROM cineflow_runs");
        push_run_filters(&mut count, query);
        let total: i64 = count
            .build_query_scalar()
            .fetch_one(&mut *tx)
            .await
            .map_err(db("cannot count runs"))?;
        let mut select = QueryBuilder::<Sqlite>::new("SELECT body FROM cineflow_runs");
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
        next.revision += 1;
        let done = sqlx::query(
            "UPDATE cineflow_runs SET storyboard_id = ?1, status = ?2, created_at_ns = ?3, \
             revision = ?4, body = ?5 WHERE id = ?6 AND revision = ?7",
        )
        .bind(next.spec.storyboard_id.to_string())
        .bind(next.status.as_str())
        .bind(to_ns(next.created_at))
        .bind(to_i64(next.revision))
        .bind(encode_run(&next)?)
        .bind(run.id.to_string())
        .bind(to_i64(run.revision))
        .execute(&self.pool)
        .await
        .map_err(db("cannot write a run"))?;
        if done.rows_affected() == 1 {
            return Ok(next);
        }
        let stored: Option<i64> =
            sqlx::query_scalar("SELECT revision FROM cineflow_runs WHERE id = ?1")
                .bind(run.id.to_string())
                .fetch_optional(&self.pool)
                .await
                .map_err(db("cannot read a run"))?;
        match stored {
            None => Err(not_found("run", run.id)),
            Some(r) => Err(stale("run", run.id, run.revision, to_u64(r))),
        }
    }

    async fn run_counts(&self, id: RunId) -> Result<RunCounts> {
        let rows = sqlx::query(
            "SELECT t.status AS status, count(t.id) AS n FROM cineflow_runs r \
             LEFT JOIN cineflow_tasks t ON t.run_id = r.id WHERE r.id = ?1 GROUP BY t.status",
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
        let mut conn = self
            .pool
            .acquire()
            .await
            .map_err(db("cannot get a connection"))?;
        Self::load_task(&mut conn, id)
            .await?
            .ok_or_else(|| not_found("task", id))
    }

    async fn list_tasks(&self, query: &TaskQuery) -> Result<Page<Task>> {
        let mut tx = self.pool.begin().await.map_err(db("cannot begin a read"))?;
        let mut count = QueryBuilder::<Sqlite>::new("SELECT count(*) FROM cineflow_tasks");
        push_task_filters(&mut count, query);
        let total: i64 = count
            .build_query_scalar()
            .fetch_one(&mut *tx)
            .await
            .map_err(db("cannot count tasks"))?;
        let mut select = QueryBuilder::<Sqlite>::new(
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
            let now = now();
            let row = sqlx::query(
                "UPDATE cineflow_tasks SET run_id = ?1, status = ?2, segment_index = ?3, \
                 version_index = ?4, error_code = ?5, retryable = ?6, created_at_ns = ?7, \
                 revision = revision + 1, body = ?8 \
                 WHERE id = ?9 AND revision = ?10 \
                 AND (lease_token IS NULL OR lease_expires_at_ns <= ?11 OR lease_token = ?12) \
                 AND (?12 IS NULL OR lease_token = ?12) \
                 RETURNING revision, lease_owner, lease_token, lease_expires_at_ns",
            )
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
            .bind(to_ns(now))
            .bind(token)
            .fetch_all(&self.pool)
            .await
            .map_err(db("cannot write a task"))?;
            if let Some(row) = row.first() {
                return written_task(task, row);
            }
            let mut conn = self
                .pool
                .acquire()
                .await
                .map_err(db("cannot get a connection"))?;
            let stored = Self::load_task(&mut conn, task.id)
                .await?
                .ok_or_else(|| not_found("task", task.id))?;
            cineflow_core::store::check_task_write(&stored, task, now)?;
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
        let now = now();
        let expires = to_ns(deadline(now, ttl));
        let mut tx = self.begin_immediate().await?;
        let ids: Vec<String> = sqlx::query_scalar(
            "SELECT id FROM cineflow_tasks \
             WHERE status IN ('pending', 'submitting', 'queued', 'running', 'downloading') \
             AND (lease_expires_at_ns IS NULL OR lease_expires_at_ns <= ?1) \
             AND (?2 IS NULL OR run_id = ?2) \
             ORDER BY created_at_ns ASC, id ASC LIMIT ?3",
        )
        .bind(to_ns(now))
        .bind(run.map(|r| r.to_string()))
        .bind(page_i64(limit))
        .fetch_all(&mut *tx)
        .await
        .map_err(db("cannot find claimable tasks"))?;
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let n = page_i64(ids.len());
        let last: i64 = sqlx::query_scalar(
            "UPDATE cineflow_counters SET value = value + ?1 WHERE name = 'lease_token' \
             RETURNING value",
        )
        .bind(n)
        .fetch_one(&mut *tx)
        .await
        .map_err(db("cannot draw lease tokens"))?;
        let mut claimed = Vec::with_capacity(ids.len());
        for (i, id) in (0_i64..).zip(&ids) {
            let rows = sqlx::query(
                "UPDATE cineflow_tasks SET lease_owner = ?1, lease_token = ?2, \
                 lease_expires_at_ns = ?3, revision = revision + 1 WHERE id = ?4 \
                 RETURNING body, revision, lease_owner, lease_token, lease_expires_at_ns",
            )
            .bind(owner)
            .bind(last - n + 1 + i)
            .bind(expires)
            .bind(id)
            .fetch_all(&mut *tx)
            .await
            .map_err(db("cannot claim a task"))?;
            for row in &rows {
                claimed.push(task_of(row)?);
            }
        }
        tx.commit().await.map_err(db("cannot commit claims"))?;
        Ok(claimed)
    }

    async fn heartbeat(&self, task: TaskId, lease: &Lease, ttl: Duration) -> Result<Lease> {
        let rows = sqlx::query(
            "UPDATE cineflow_tasks SET lease_expires_at_ns = ?1 \
             WHERE id = ?2 AND lease_token = ?3 AND lease_owner = ?4 \
             RETURNING lease_expires_at_ns",
        )
        .bind(to_ns(deadline(now(), ttl)))
        .bind(task.to_string())
        .bind(to_i64(lease.token))
        .bind(&lease.owner)
        .fetch_all(&self.pool)
        .await
        .map_err(db("cannot renew a lease"))?;
        if let Some(row) = rows.first() {
            return Ok(Lease {
                owner: lease.owner.clone(),
                token: lease.token,
                expires_at: from_ns(row.col("lease_expires_at_ns")?),
            });
        }
        let found: Option<i64> = sqlx::query_scalar("SELECT 1 FROM cineflow_tasks WHERE id = ?1")
            .bind(task.to_string())
            .fetch_optional(&self.pool)
            .await
            .map_err(db("cannot read a task"))?;
        Err(match found {
            Some(_) => lease_lost(task, &lease.owner),
            None => not_found("task", task),
        })
    }

    async fn release(&self, task: TaskId, lease: &Lease) -> Result<()> {
        sqlx::query(
            "UPDATE cineflow_tasks SET lease_owner = NULL, lease_token = NULL, \
             lease_expires_at_ns = NULL WHERE id = ?1 AND lease_token = ?2",
        )
        .bind(task.to_string())
        .bind(to_i64(lease.token))
        .execute(&self.pool)
        .await
        .map_err(db("cannot release a lease"))?;
        Ok(())
    }
}
