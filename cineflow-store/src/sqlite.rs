//! [`SqliteStore`]: an embedded SQLite database (details on the type).

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use cineflow_core::{
    Error, Lease, Result, Run, RunId, Segment, SegmentId, SegmentPatch, Storyboard, Task, TaskId,
};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use sqlx::{AssertSqlSafe, QueryBuilder, SqlSafeStr, SqlStr, Sqlite, SqliteConnection};

use crate::common::not_found;
use crate::sql::{
    SqlBackend, SqlStore, SqlWrites, TaskCols, TaskRowExt, db, lease_cols, task_columns, tracked,
};

mod writer;
mod writes;

use writer::{JobFuture, Writer, Writes};

/// How long a statement waits for another writer's lock before failing.
const BUSY_TIMEOUT: Duration = Duration::from_secs(30);

/// Read connections of a database file (writes have one connection of their own).
const READ_CONNECTIONS: u32 = 8;

/// A [`Store`](cineflow_core::Store) in an SQLite database file (or in memory), through sqlx. Clones share one
/// writer and one pool of read connections.
///
/// - The database runs in WAL mode with `synchronous = FULL` (a write is on disk when the call
///   returns), `foreign_keys` on and a 30 s busy timeout, so several processes on one machine
///   may share a file.
/// - The schema (tables prefixed `cineflow_`) is created and upgraded by embedded migrations
///   (`migrations/sqlite/` in the crate), tracked in the `cineflow_migrations` table.
/// - Each record's full JSON is stored in a `body` column, the source of truth; indexed columns
///   (run, status, segment and version index, error code, retryable, creation time) serve the
///   filters and sorts. A task's `revision` and lease live in columns of their own.
/// - Every write goes through **one writer connection** fed by a queue: the writes waiting when
///   a transaction starts are run in it (a failing write leaves nothing and does not disturb
///   the others: each runs in a savepoint of its own unless it writes with one statement) and
///   committed together with one fsync;
///   the writes that arrive meanwhile make the next transaction (group commit). A write call
///   returns only after the transaction holding it has committed, so a write is on disk when
///   its call returns, as before; concurrent writers no longer fight over SQLite's write lock.
///   Reads run on a pool of their own and see every write whose call has returned.
/// - Task writes are one compare-and-swap, lease-fenced `UPDATE`; claims run in the writer's
///   `BEGIN IMMEDIATE` transaction, so two claimers never take the same task (other
///   processes on the same file included), and lease tokens come from a counter in the
///   database, unique across processes.
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
pub type SqliteStore = SqlStore<Sqlite, SqliteWrites>;

/// The write side of a [`SqliteStore`]: its writer and the writer's connection.
#[derive(Debug, Clone)]
pub struct SqliteWrites {
    /// The writer's connection (for an in-memory database, the one connection of the store's
    /// read pool).
    write_pool: SqlitePool,
    writer: Writer,
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
        // One connection that is never closed (an in-memory database lives as long as it
        // does); the writer's connection is not tested before each batch.
        let single = || {
            SqlitePoolOptions::new()
                .max_connections(1)
                .min_connections(1)
                .idle_timeout(None)
                .max_lifetime(None)
        };
        let (pool, write_pool) = if in_memory {
            let pool = single()
                .connect_with(options)
                .await
                .map_err(db("cannot open the SQLite database"))?;
            (pool.clone(), pool)
        } else {
            let options = options.journal_mode(SqliteJournalMode::Wal);
            let write_pool = single()
                .test_before_acquire(false)
                .connect_with(options.clone())
                .await
                .map_err(db("cannot open the SQLite database"))?;
            let pool = SqlitePoolOptions::new()
                .max_connections(READ_CONNECTIONS)
                .connect_with(options)
                .await
                .map_err(db("cannot open the SQLite database"))?;
            (pool, write_pool)
        };
        tracked(sqlx::migrate!("migrations/sqlite"))
            .run(&write_pool)
            .await
            .map_err(|e| Error::backend("cannot migrate the SQLite database", e))?;
        let writer = Writer::start(write_pool.clone());
        Ok(Self {
            pool,
            writes: SqliteWrites { write_pool, writer },
        })
    }

    /// Closes every connection, waiting for them to finish (a write queued meanwhile fails).
    pub async fn close(&self) {
        self.writes.write_pool.close().await;
        self.pool.close().await;
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
        .map(|row| row.task())
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

impl SqlWrites<Sqlite> for SqliteWrites {
    async fn put_storyboard(store: &SqliteStore, storyboard: &Storyboard) -> Result<()> {
        store
            .writes
            .writer
            .write(Writes::Many, storyboard.clone(), writes::put_storyboard)
            .await
    }

    async fn update_segment(
        store: &SqliteStore,
        id: SegmentId,
        patch: &SegmentPatch,
    ) -> Result<Segment> {
        store
            .writes
            .writer
            .write(Writes::Many, (id, patch.clone()), writes::update_segment)
            .await
    }

    async fn insert_run(store: &SqliteStore, run: &Run, tasks: &[Task]) -> Result<()> {
        // Encoded by the caller, so that the writer only writes.
        let rows = tasks
            .iter()
            .map(|t| Ok((TaskCols::new(t, t.revision)?, lease_cols(t.lease.as_ref()))))
            .collect::<Result<Vec<_>>>()?;
        store
            .writes
            .writer
            .write(Writes::Many, (run.clone(), rows), writes::insert_run)
            .await
    }

    async fn update_run(store: &SqliteStore, run: &Run) -> Result<Run> {
        let mut next = run.clone();
        next.revision += 1;
        store
            .writes
            .writer
            .write(Writes::Many, (run.clone(), next), writes::update_run)
            .await
    }

    async fn delete_run(store: &SqliteStore, id: RunId) -> Result<()> {
        store
            .writes
            .writer
            .write(Writes::Many, id, writes::delete_run)
            .await
    }

    async fn get_task(store: &SqliteStore, id: TaskId) -> Result<Task> {
        let mut conn = store
            .pool
            .acquire()
            .await
            .map_err(db("cannot get a connection"))?;
        SqliteStore::load_task(&mut conn, id)
            .await?
            .ok_or_else(|| not_found("task", id))
    }

    async fn update_task(store: &SqliteStore, task: &Task) -> Result<Task> {
        write_task(store, task, false).await
    }

    async fn update_task_and_release(store: &SqliteStore, task: &Task) -> Result<Task> {
        write_task(store, task, true).await
    }

    async fn claim_tasks(
        store: &SqliteStore,
        owner: &str,
        run: Option<RunId>,
        limit: usize,
        ttl: Duration,
    ) -> Result<Vec<Task>> {
        store
            .writes
            .writer
            .write(
                Writes::Many,
                (owner.to_owned(), run, limit, ttl),
                writes::claim_tasks,
            )
            .await
    }

    async fn heartbeat(
        store: &SqliteStore,
        task: TaskId,
        lease: &Lease,
        ttl: Duration,
    ) -> Result<Lease> {
        store
            .writes
            .writer
            .write(Writes::One, (task, lease.clone(), ttl), writes::heartbeat)
            .await
    }

    async fn heartbeat_many(
        store: &SqliteStore,
        leases: &[(TaskId, Lease)],
        ttl: Duration,
    ) -> Result<Vec<Result<Lease>>> {
        store
            .writes
            .writer
            .write(Writes::Many, (leases.to_vec(), ttl), writes::heartbeat_many)
            .await
    }

    async fn release(store: &SqliteStore, task: TaskId, lease: &Lease) -> Result<()> {
        store
            .writes
            .writer
            .write(Writes::One, (task, lease.clone()), writes::release)
            .await
    }
}

/// [`Store::update_task`](cineflow_core::Store::update_task), and with `release` also
/// [`Store::update_task_and_release`](cineflow_core::Store::update_task_and_release).
async fn write_task(store: &SqliteStore, task: &Task, release: bool) -> Result<Task> {
    // Encoded by the caller, so that the writer only writes.
    let cols = TaskCols::new(task, task.revision.saturating_add(1))?;
    store
        .writes
        .writer
        .write(
            Writes::One,
            writes::TaskWrite {
                task: task.clone(),
                cols,
                release,
            },
            writes::update_task,
        )
        .await
}
