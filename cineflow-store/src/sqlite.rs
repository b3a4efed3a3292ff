//! [`SqliteStore`]: an embedded SQLite database (details on the type).

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use cineflow_core::store::{Page, PageRequest, RunQuery, Store, TaskQuery};
use cineflow_core::{
    Error, Lease, ProviderId, Result, Run, RunCounts, RunId, Segment, SegmentId, SegmentPatch,
    Storyboard, StoryboardId, Task, TaskId,
};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use sqlx::{AssertSqlSafe, QueryBuilder, SqlSafeStr, SqlStr, Sqlite, SqliteConnection};

use crate::common::{deadline, exists, not_found, now, to_ns};
use crate::sql::{
    RowExt, SqlBackend, TaskCols, db, insert_error, kept_changing, lease_cols, page_i64, renewed,
    returning_written_task, run_cas_failed, select_segment, task_columns, task_of, to_i64,
    update_run, update_task, written_task,
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
        sqlx::query(Sqlite::sql(concat!(
            "SELECT ",
            task_columns!(),
            " FROM cineflow_tasks WHERE id = $1"
        )))
        .bind(id.to_string())
        .fetch_optional(conn)
        .await
        .map_err(db("cannot read a task"))?
        .map(|row| task_of(&row))
        .transpose()
    }
}

impl SqlBackend for Sqlite {
    const POSITION_FN: &'static str = "instr";
    const WHERE_ALL: &'static str = " WHERE 1 = 1";

    fn sql(template: &'static str) -> SqlStr {
        AssertSqlSafe(template.replace('$', "?")).into_sql_str()
    }

    fn push_one_of(qb: &mut QueryBuilder<Self>, column: &'static str, values: Vec<&'static str>) {
        qb.push(" AND ").push(column).push(" IN (");
        let mut list = qb.separated(", ");
        for v in values {
            list.push_bind(v);
        }
        qb.push(")");
    }
}

#[async_trait]
impl Store for SqliteStore {
    async fn put_storyboard(&self, storyboard: &Storyboard) -> Result<()> {
        let id = storyboard.id.to_string();
        let mut tx = self.begin_immediate().await?;
        Sqlite::write_storyboard_row(&mut tx, storyboard).await?;
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
        Sqlite::get_storyboard(&self.pool, id).await
    }

    async fn list_storyboards(&self, page: PageRequest) -> Result<Page<Storyboard>> {
        Sqlite::list_storyboards(&self.pool, page).await
    }

    async fn get_segment(&self, id: SegmentId) -> Result<(StoryboardId, Segment)> {
        Sqlite::get_segment(&self.pool, id).await
    }

    async fn update_segment(&self, id: SegmentId, patch: &SegmentPatch) -> Result<Segment> {
        let tx = self.begin_immediate().await?;
        Sqlite::update_segment(tx, select_segment!(), id, patch).await
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
        Sqlite::insert_run_row(&mut tx, run).await?;
        for (t, c) in tasks.iter().zip(rows) {
            let (lease_owner, lease_token, lease_expires_at_ns) = lease_cols(t.lease.as_ref());
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
            .bind(lease_owner)
            .bind(lease_token)
            .bind(lease_expires_at_ns)
            .bind(c.body)
            .execute(&mut *tx)
            .await
            .map_err(insert_error("task", t.id, "cannot insert a task"))?;
        }
        tx.commit().await.map_err(db("cannot commit a run"))
    }

    async fn get_run(&self, id: RunId) -> Result<Run> {
        Sqlite::get_run(&self.pool, id).await
    }

    async fn list_runs(&self, query: &RunQuery) -> Result<Page<Run>> {
        Sqlite::list_runs(&self.pool, query).await
    }

    async fn update_run(&self, run: &Run) -> Result<Run> {
        let mut next = run.clone();
        next.revision += 1;
        let done = Sqlite::bind_run_update(sqlx::query(Sqlite::sql(update_run!())), run, &next)?
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
        Err(run_cas_failed(run.id, run.revision, stored))
    }

    async fn delete_run(&self, id: RunId) -> Result<()> {
        let mut tx = self.begin_immediate().await?;
        Sqlite::delete_run_rows(&mut tx, id).await?;
        tx.commit().await.map_err(db("cannot commit a deletion"))
    }

    async fn run_counts(&self, id: RunId) -> Result<RunCounts> {
        Sqlite::run_counts(&self.pool, id).await
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
        Sqlite::list_tasks(&self.pool, query).await
    }

    async fn find_tasks_by_vendor_job(
        &self,
        provider: &ProviderId,
        vendor_job_id: &str,
    ) -> Result<Vec<Task>> {
        Sqlite::find_tasks_by_vendor_job(&self.pool, provider, vendor_job_id).await
    }

    async fn update_task(&self, task: &Task) -> Result<Task> {
        let c = TaskCols::new(task, task.revision.saturating_add(1))?;
        let token = task.lease.as_ref().map(|l| to_i64(l.token));
        // A few rounds: if the row changes between a failed update and its diagnosis so that
        // the write would now pass, try again rather than report a conflict that is gone.
        for _ in 0..3 {
            let now = now();
            let update = Sqlite::sql(concat!(
                update_task!(),
                " AND (lease_token IS NULL OR lease_expires_at_ns <= $11 OR lease_token = $12) \
                 AND ($12 IS NULL OR lease_token = $12)",
                returning_written_task!()
            ));
            let row = Sqlite::bind_task_update(sqlx::query(update), &c, task)
                .bind(to_ns(now))
                .bind(token)
                .fetch_all(&self.pool)
                .await
                .map_err(db("cannot write a task"))?;
            if let Some(row) = row.first() {
                return written_task(task.clone(), row);
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
        Err(kept_changing(task.id))
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
             AND waiting_for IS NULL \
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
            return renewed(task, lease, Some(row.col("lease_expires_at_ns")?), true);
        }
        let found: Option<i64> = sqlx::query_scalar("SELECT 1 FROM cineflow_tasks WHERE id = ?1")
            .bind(task.to_string())
            .fetch_optional(&self.pool)
            .await
            .map_err(db("cannot read a task"))?;
        renewed(task, lease, None, found.is_some())
    }

    async fn release(&self, task: TaskId, lease: &Lease) -> Result<()> {
        Sqlite::release(&self.pool, task, lease).await
    }
}
