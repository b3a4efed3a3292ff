//! [`PostgresStore`]: a Postgres database shared by many workers.
//!
//! - The schema (tables prefixed `cineflow_`) is created and upgraded by embedded migrations
//!   (`migrations/postgres/`), tracked in `cineflow_migrations`, in the connection's current
//!   schema: set `search_path` (e.g. with [`PgConnectOptions::options`]) to keep several
//!   cineflow stores in one database.
//! - Each record's JSON is stored verbatim in a `body` column (the source of truth); indexed
//!   columns serve the filters and sorts.
//! - Task writes are compare-and-swap, lease-fenced `UPDATE`s, and the task writes waiting at
//!   the same time in one process are made by one statement (task reads likewise by one
//!   `SELECT`): a write still returns only once it has committed, and a write that fails is
//!   diagnosed alone (module `batch`). Claims are one statement (so one transaction) that
//!   picks the oldest claimable rows with `FOR UPDATE SKIP LOCKED`: concurrent claimers on
//!   any number of machines never take the same task and never wait for each other.
//! - Lease tokens come from the `cineflow_lease_token` sequence (unique across processes) and
//!   lease deadlines use the database server's clock, so workers with skewed clocks agree on
//!   which leases are live.

use std::str::FromStr;
use std::time::Duration;

use cineflow_core::store::check_task_write;
use cineflow_core::{
    Error, Lease, Result, Run, RunId, Segment, SegmentId, SegmentPatch, Storyboard, Task, TaskId,
};
use sqlx::postgres::PgPool;
pub use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{Postgres, QueryBuilder, SqlSafeStr, SqlStr};

use crate::common::{exists, from_ns, not_found, ttl_ns};
use crate::sql::{
    RowExt, SqlBackend, SqlOps, SqlStore, SqlWrites, TaskCols, TaskRowExt, claimed, db,
    insert_task_columns, is_unique_violation, kept_changing, lease_cols, page_i64, renewed,
    returning_written_task, run_cas_failed, select_segment, task_columns, to_i64, tracked,
    update_run, update_task,
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

mod batch;

/// A [`Store`](cineflow_core::Store) in a Postgres database, through an sqlx connection pool.
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
pub type PostgresStore = SqlStore<Postgres, PgWrites>;

/// The write side of a [`PostgresStore`], in a module of its own so that it is no public name.
mod write_side {
    /// The write side of a [`PostgresStore`](super::PostgresStore): the queue of its batched
    /// task writes (the other writes run on the store's pool, each in a statement or a
    /// transaction of its own).
    #[derive(Debug, Clone)]
    pub struct PgWrites {
        /// Task writes, batched.
        pub(super) tasks: super::batch::Queue<super::batch::Writes>,
        /// Task reads, batched.
        pub(super) reads: super::batch::Queue<super::batch::Reads>,
    }
}
use write_side::PgWrites;

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
    /// The store's batches of task writes and reads are gathered by tasks spawned on the
    /// current Tokio runtime (for every clone of the store); should that runtime shut down
    /// while the store is used on another, each write and read is made alone instead.
    ///
    /// # Errors
    /// [`Error::Backend`] if the migrations fail.
    pub async fn from_pool(pool: PgPool) -> Result<Self> {
        tracked(sqlx::migrate!("migrations/postgres"))
            .run(&pool)
            .await
            .map_err(|e| Error::backend("cannot migrate the Postgres database", e))?;
        Ok(Self {
            writes: PgWrites {
                tasks: batch::Queue::start(pool.clone()),
                reads: batch::Queue::start(pool.clone()),
            },
            pool,
        })
    }

    /// The connection pool.
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// Closes every connection, waiting for them to finish.
    pub async fn close(&self) {
        self.pool.close().await;
    }

    async fn begin_write(&self) -> Result<sqlx::Transaction<'static, Postgres>> {
        self.pool.begin().await.map_err(db("cannot begin a write"))
    }
}

impl SqlBackend for Postgres {
    const POSITION_FN: &'static str = "strpos";
    const WHERE_ALL: &'static str = " WHERE TRUE";

    fn sql(template: &'static str) -> SqlStr {
        template.into_sql_str()
    }

    fn push_one_of(qb: &mut QueryBuilder<Self>, column: &'static str, values: Vec<&'static str>) {
        qb.push(" AND ")
            .push(column)
            .push(" = ANY(")
            .push_bind(values)
            .push(")");
    }
}

const SELECT_TASK: &str = concat!(
    "SELECT ",
    task_columns!(),
    ", ",
    now_ns!(),
    " AS now_ns FROM cineflow_tasks WHERE id = $1"
);

impl SqlWrites<Postgres> for PgWrites {
    async fn put_storyboard(store: &PostgresStore, storyboard: &Storyboard) -> Result<()> {
        let id = storyboard.id.to_string();
        let segment_ids: Vec<String> = storyboard
            .segments
            .iter()
            .map(|s| s.id.to_string())
            .collect();
        let mut tx = store.begin_write().await?;
        Postgres::write_storyboard_row(&mut tx, storyboard).await?;
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

    async fn update_segment(
        store: &PostgresStore,
        id: SegmentId,
        patch: &SegmentPatch,
    ) -> Result<Segment> {
        let mut tx = store.begin_write().await?;
        let segment = Postgres::update_segment(
            &mut tx,
            concat!(select_segment!(), " FOR UPDATE OF b"),
            id,
            patch,
        )
        .await?;
        tx.commit().await.map_err(db("cannot commit a segment"))?;
        Ok(segment)
    }

    async fn insert_run(store: &PostgresStore, run: &Run, tasks: &[Task]) -> Result<()> {
        let mut seen = std::collections::HashSet::new();
        if let Some(t) = tasks.iter().find(|t| !seen.insert(t.id)) {
            return Err(exists("task", t.id, "appears twice in one insert"));
        }
        let cols = tasks
            .iter()
            .map(|t| TaskCols::new(t, t.revision))
            .collect::<Result<Vec<_>>>()?;
        let revisions: Vec<i64> = cols.iter().map(|c| c.revision).collect();
        let (mut owners, mut tokens, mut expiries) = (Vec::new(), Vec::new(), Vec::new());
        for t in tasks {
            let (owner, token, expires) = lease_cols(t.lease.as_ref());
            owners.push(owner);
            tokens.push(token);
            expiries.push(expires);
        }
        let mut tx = store.begin_write().await?;
        Postgres::insert_run_row(&mut tx, run).await?;
        let inserted = ColumnArrays::new(&cols)
            .bind(sqlx::query(concat!(
                insert_task_columns!(),
                " SELECT * FROM UNNEST(",
                column_arrays!(),
                ", $11::bigint[], $12::text[], $13::bigint[], $14::bigint[])"
            )))
            .bind(revisions)
            .bind(owners)
            .bind(tokens)
            .bind(expiries)
            .execute(&mut *tx)
            .await;
        match inserted {
            Ok(_) => tx.commit().await.map_err(db("cannot commit a run")),
            Err(e) if is_unique_violation(&e) => {
                drop(tx);
                let ids: Vec<&str> = cols.iter().map(|c| c.id.as_str()).collect();
                let taken: Option<String> = sqlx::query_scalar(
                    "SELECT id FROM cineflow_tasks WHERE id = ANY($1) ORDER BY id LIMIT 1",
                )
                .bind(ids)
                .fetch_optional(&store.pool)
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

    async fn update_run(store: &PostgresStore, run: &Run) -> Result<Run> {
        let mut next = run.clone();
        next.revision = next.revision.saturating_add(1);
        // One statement: the CAS, and the stored revision when it fails.
        let update = sqlx::query(concat!(
            "WITH updated AS (",
            update_run!(),
            " RETURNING revision) \
             SELECT (SELECT revision FROM updated) AS updated, \
                    (SELECT revision FROM cineflow_runs WHERE id = $6) AS stored",
        ));
        let row = Postgres::bind_run_update(update, run, &next)?
            .fetch_one(&store.pool)
            .await
            .map_err(db("cannot write a run"))?;
        let updated: Option<i64> = row.col("updated")?;
        match updated {
            Some(_) => Ok(next),
            None => Err(run_cas_failed(run.id, run.revision, row.col("stored")?)),
        }
    }

    async fn delete_run(store: &PostgresStore, id: RunId) -> Result<()> {
        let mut tx = store.begin_write().await?;
        Postgres::delete_run_rows(&mut tx, id).await?;
        tx.commit().await.map_err(db("cannot commit a deletion"))
    }

    async fn get_task(store: &PostgresStore, id: TaskId) -> Result<Task> {
        // In the next batch of reads; alone (where a failure is reported) if not found there.
        if let Some(row) = store.writes.reads.submit(id.to_string()).await {
            return row.task();
        }
        let row = sqlx::query(SELECT_TASK)
            .bind(id.to_string())
            .fetch_optional(&store.pool)
            .await
            .map_err(db("cannot read a task"))?;
        row.ok_or_else(|| not_found("task", id))?.task()
    }

    async fn update_task(store: &PostgresStore, task: &Task) -> Result<Task> {
        write_task(store, task, false).await
    }

    async fn update_task_and_release(store: &PostgresStore, task: &Task) -> Result<Task> {
        write_task(store, task, true).await
    }

    async fn claim_tasks(
        store: &PostgresStore,
        owner: &str,
        run: Option<RunId>,
        limit: usize,
        ttl: Duration,
    ) -> Result<Vec<Task>> {
        let rows = sqlx::query(concat!(
            "WITH now AS (SELECT ",
            now_ns!(),
            " AS ns), \
             picked AS ( \
               SELECT t.id FROM cineflow_tasks t \
               WHERE t.status IN ('pending', 'submitting', 'queued', 'running', 'downloading') \
               AND t.waiting_for IS NULL \
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
        .fetch_all(&store.pool)
        .await
        .map_err(db("cannot claim tasks"))?;
        claimed(&rows)
    }

    async fn heartbeat(
        store: &PostgresStore,
        task: TaskId,
        lease: &Lease,
        ttl: Duration,
    ) -> Result<Lease> {
        let what = "cannot renew a lease";
        let mut answers = renew_leases(store, &[(task, lease.clone())], ttl, what).await?;
        // `renew_leases` answers each lease it is given: exactly one here.
        answers
            .pop()
            .unwrap_or_else(|| Err(Error::backend(what, std::io::Error::other("no answer"))))
    }

    async fn heartbeat_many(
        store: &PostgresStore,
        leases: &[(TaskId, Lease)],
        ttl: Duration,
    ) -> Result<Vec<Result<Lease>>> {
        renew_leases(store, leases, ttl, "cannot renew leases").await
    }

    async fn release(store: &PostgresStore, task: TaskId, lease: &Lease) -> Result<()> {
        Postgres::release(&store.pool, task, lease).await
    }
}

/// The parameters `$1` to `$10` of a statement reading many tasks' columns from arrays
/// ([`task_write_columns!`](crate::sql::task_write_columns), then `id`), as
/// [`ColumnArrays::bind`] binds them.
macro_rules! column_arrays {
    () => {
        "$1::text[], $2::text[], $3::bigint[], $4::bigint[], $5::text[], $6::boolean[], \
         $7::bigint[], $8::text[], $9::text[], $10::text[]"
    };
}
use column_arrays;

/// Many tasks' columns as arrays (borrowing them), for one statement over
/// `UNNEST(`[`column_arrays!`]`, …)`.
struct ColumnArrays<'a> {
    run_id: Vec<&'a str>,
    status: Vec<&'static str>,
    segment_index: Vec<i64>,
    version_index: Vec<i64>,
    error_code: Vec<Option<&'static str>>,
    retryable: Vec<bool>,
    created_at_ns: Vec<i64>,
    waiting_for: Vec<Option<&'a str>>,
    body: Vec<&'a str>,
    id: Vec<&'a str>,
}

impl<'a> ColumnArrays<'a> {
    /// The columns of `cols`, in order.
    fn new(cols: impl IntoIterator<Item = &'a TaskCols>) -> Self {
        let mut a = Self {
            run_id: Vec::new(),
            status: Vec::new(),
            segment_index: Vec::new(),
            version_index: Vec::new(),
            error_code: Vec::new(),
            retryable: Vec::new(),
            created_at_ns: Vec::new(),
            waiting_for: Vec::new(),
            body: Vec::new(),
            id: Vec::new(),
        };
        for c in cols {
            a.run_id.push(&c.run_id);
            a.status.push(c.status);
            a.segment_index.push(c.segment_index);
            a.version_index.push(c.version_index);
            a.error_code.push(c.error_code);
            a.retryable.push(c.retryable);
            a.created_at_ns.push(c.created_at_ns);
            a.waiting_for.push(c.waiting_for.as_deref());
            a.body.push(&c.body);
            a.id.push(&c.id);
        }
        a
    }

    /// `query` with `$1` to `$10` bound to these arrays.
    fn bind(
        self,
        query: sqlx::query::Query<'a, Postgres, sqlx::postgres::PgArguments>,
    ) -> sqlx::query::Query<'a, Postgres, sqlx::postgres::PgArguments> {
        query
            .bind(self.run_id)
            .bind(self.status)
            .bind(self.segment_index)
            .bind(self.version_index)
            .bind(self.error_code)
            .bind(self.retryable)
            .bind(self.created_at_ns)
            .bind(self.waiting_for)
            .bind(self.body)
            .bind(self.id)
    }
}

/// [`Store::update_task`](cineflow_core::Store::update_task), and with `release` also
/// [`Store::update_task_and_release`](cineflow_core::Store::update_task_and_release).
///
/// The write goes in the store's next batch ([`batch`]); if the batch does not make it, it is
/// made again alone here, where a failure is diagnosed.
async fn write_task(store: &PostgresStore, task: &Task, release: bool) -> Result<Task> {
    let token = task.lease.as_ref().map(|l| to_i64(l.token));
    let batched = batch::TaskWrite {
        cols: TaskCols::new(task, task.revision.saturating_add(1))?,
        expected: to_i64(task.revision),
        token,
        release,
    };
    if let Some(row) = store.writes.tasks.submit(batched).await {
        return row.written_task(task.clone());
    }
    write_task_alone(store, task, release).await
}

/// [`write_task`] in a statement of its own, diagnosing a write that fails.
async fn write_task_alone(store: &PostgresStore, task: &Task, release: bool) -> Result<Task> {
    let c = TaskCols::new(task, task.revision.saturating_add(1))?;
    let token = task.lease.as_ref().map(|l| to_i64(l.token));
    // A few rounds: if the row changes between a failed update and its diagnosis so that
    // the write would now pass, try again rather than report a conflict that is gone.
    for _ in 0..3 {
        // The lease fence: a live lease of another token refuses the write.
        macro_rules! fenced {
            ($update:expr) => {
                concat!(
                    $update,
                    " AND (lease_token IS NULL OR lease_token = $12 OR lease_expires_at_ns <= ",
                    now_ns!(),
                    ") AND ($12::bigint IS NULL OR lease_token = $12)",
                    returning_written_task!()
                )
            };
        }
        let update = if release {
            fenced!(update_task!("$12::bigint"))
        } else {
            fenced!(update_task!())
        };
        let update = sqlx::query(update);
        let rows = Postgres::bind_task_update(update, &c, task)
            .bind(token)
            .fetch_all(&store.pool)
            .await
            .map_err(db("cannot write a task"))?;
        if let Some(row) = rows.first() {
            return row.written_task(task.clone());
        }
        let row = sqlx::query(SELECT_TASK)
            .bind(&c.id)
            .fetch_optional(&store.pool)
            .await
            .map_err(db("cannot read a task"))?
            .ok_or_else(|| not_found("task", task.id))?;
        let stored = row.task()?;
        check_task_write(&stored, task, from_ns(row.col("now_ns")?))?;
    }
    Err(kept_changing(task.id))
}

/// [`Store::heartbeat_many`](cineflow_core::Store::heartbeat_many) (and `heartbeat`, for one
/// lease): one answer per lease, in order; `what` names a failed statement.
async fn renew_leases(
    store: &PostgresStore,
    leases: &[(TaskId, Lease)],
    ttl: Duration,
    what: &'static str,
) -> Result<Vec<Result<Lease>>> {
    // One statement for all of them: the leases as arrays, renewed by one `UPDATE … FROM`,
    // each answered in the order given (whether the task exists is read only for a lease
    // that was not renewed).
    let ids: Vec<String> = leases.iter().map(|(id, _)| id.to_string()).collect();
    let tokens: Vec<i64> = leases.iter().map(|(_, l)| to_i64(l.token)).collect();
    let owners: Vec<&str> = leases.iter().map(|(_, l)| l.owner.as_str()).collect();
    // Not while a batch of task writes runs: both lock many rows, in orders of their own.
    let _rows = store.writes.tasks.exclusive().await;
    let rows = sqlx::query(concat!(
        "WITH held AS ( \
           SELECT * FROM UNNEST($2::text[], $3::bigint[], $4::text[]) \
             WITH ORDINALITY AS h(id, token, owner, n)), \
         renewed AS ( \
           UPDATE cineflow_tasks AS t SET lease_expires_at_ns = ",
        deadline_ns!("$1"),
        " FROM held \
           WHERE t.id = held.id AND t.lease_token = held.token AND t.lease_owner = held.owner \
           RETURNING t.id, t.lease_expires_at_ns) \
         SELECT r.lease_expires_at_ns AS expires, \
                CASE WHEN r.id IS NOT NULL THEN TRUE \
                     ELSE EXISTS (SELECT 1 FROM cineflow_tasks x WHERE x.id = held.id) END \
                  AS found \
         FROM held LEFT JOIN renewed AS r ON r.id = held.id ORDER BY held.n"
    ))
    .bind(ttl_ns(ttl))
    .bind(&ids)
    .bind(&tokens)
    .bind(&owners)
    .fetch_all(&store.pool)
    .await
    .map_err(db(what))?;
    if rows.len() != leases.len() {
        return Err(Error::backend(
            what,
            std::io::Error::other(format!(
                "{} answers for {} leases",
                rows.len(),
                leases.len()
            )),
        ));
    }
    leases
        .iter()
        .zip(&rows)
        .map(|((task, lease), row)| {
            Ok(renewed(
                *task,
                lease,
                row.col("expires")?,
                row.col("found")?,
            ))
        })
        .collect()
}
