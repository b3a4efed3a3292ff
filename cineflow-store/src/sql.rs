//! Row encoding shared by the SQL backends.
//!
//! A record is stored as its full JSON in a `body` column (the source of truth) plus indexed
//! columns copied out of it for filters and sorts. For tasks, two fields are managed by the
//! store and live only in columns: `revision` and the lease (`lease_owner`, `lease_token`,
//! `lease_expires_at_ns`); the body is stored with `lease: null` and they are put back on read.
//! Timestamps in columns are nanoseconds since the Unix epoch (`*_ns`), so that sorting is
//! exactly as fine as the in-memory reference.

use cineflow_core::{Error, Lease, Run, Storyboard, Task};
use sqlx::migrate::Migrator;
use sqlx::{ColumnIndex, Decode, Row, Type};

use crate::common::{codec, from_ns, to_ns};

mod ops;
mod store;
#[cfg(feature = "postgres")]
pub(crate) use ops::insert_task_columns;
pub(crate) use ops::{
    SqlBackend, SqlOps, kept_changing, renewed, returning_written_task, run_cas_failed,
    select_segment, task_columns, task_write_columns, update_run, update_task,
};
pub(crate) use store::{SqlStore, SqlWrites};

/// A task's columns.
#[derive(Debug)]
pub(crate) struct TaskCols {
    pub(crate) id: String,
    pub(crate) run_id: String,
    pub(crate) status: &'static str,
    pub(crate) segment_index: i64,
    pub(crate) version_index: i64,
    pub(crate) error_code: Option<&'static str>,
    pub(crate) retryable: bool,
    pub(crate) created_at_ns: i64,
    pub(crate) revision: i64,
    /// The task it waits for ([`Task::waiting_for`]), which the claim index reads.
    pub(crate) waiting_for: Option<String>,
    pub(crate) body: String,
}

impl TaskCols {
    /// The columns of `task` as stored at `revision` (its lease is not part of the body).
    pub(crate) fn new(task: &Task, revision: u64) -> cineflow_core::Result<Self> {
        let mut body = task.clone();
        body.lease = None;
        body.revision = revision;
        Ok(Self {
            id: task.id.to_string(),
            run_id: task.run_id.to_string(),
            status: task.status.as_str(),
            segment_index: i64::from(task.segment_index),
            version_index: i64::from(task.version_index),
            error_code: task.error.as_ref().map(|e| e.code.as_str()),
            retryable: task.is_retryable(),
            created_at_ns: to_ns(task.created_at),
            revision: to_i64(revision),
            waiting_for: task.waiting_for.map(|t| t.to_string()),
            body: serde_json::to_string(&body)
                .map_err(|e| codec(format!("cannot encode task {}", task.id), e))?,
        })
    }
}

/// The lease columns `lease_owner, lease_token, lease_expires_at_ns`.
pub(crate) type LeaseCols = (Option<String>, Option<i64>, Option<i64>);

/// The lease columns of `lease`.
pub(crate) fn lease_cols(lease: Option<&Lease>) -> LeaseCols {
    (
        lease.map(|l| l.owner.clone()),
        lease.map(|l| to_i64(l.token)),
        lease.map(|l| to_ns(l.expires_at)),
    )
}

/// Column access for the row types of both SQL backends.
pub(crate) trait RowExt: Row {
    /// Reads column `name`, mapping a failure to [`Error::Backend`].
    fn col<'r, T>(&'r self, name: &'static str) -> cineflow_core::Result<T>
    where
        &'static str: ColumnIndex<Self>,
        T: Decode<'r, Self::Database> + Type<Self::Database>,
    {
        self.try_get(name)
            .map_err(|e| Error::backend(format!("cannot read column {name}"), e))
    }
}

impl<R: Row> RowExt for R {}

/// A task's row, of either SQL backend: the columns `body, revision` and the lease columns
/// (`lease_owner, lease_token, lease_expires_at_ns`), or some of them.
pub(crate) trait TaskRowExt {
    /// The lease in the lease columns.
    fn lease(&self) -> cineflow_core::Result<Option<Lease>>;

    /// The task in the columns `body, revision` and the lease columns.
    fn task(&self) -> cineflow_core::Result<Task>;

    /// `written` as the store now holds it: with the revision and lease columns of this row
    /// (the `RETURNING` row of an update).
    fn written_task(&self, written: Task) -> cineflow_core::Result<Task>;
}

impl<R> TaskRowExt for R
where
    R: Row,
    &'static str: ColumnIndex<R>,
    for<'r> String: Decode<'r, R::Database> + Type<R::Database>,
    for<'r> i64: Decode<'r, R::Database> + Type<R::Database>,
{
    fn lease(&self) -> cineflow_core::Result<Option<Lease>> {
        let owner: Option<String> = self.col("lease_owner")?;
        let token: Option<i64> = self.col("lease_token")?;
        let expires: Option<i64> = self.col("lease_expires_at_ns")?;
        Ok(match (owner, token, expires) {
            (Some(owner), Some(token), Some(expires)) => Some(Lease {
                owner,
                token: to_u64(token),
                expires_at: from_ns(expires),
            }),
            _ => None,
        })
    }

    fn task(&self) -> cineflow_core::Result<Task> {
        let body: String = self.col("body")?;
        let task: Task =
            serde_json::from_str(&body).map_err(|e| codec("a stored task is not valid JSON", e))?;
        self.written_task(task)
    }

    fn written_task(&self, written: Task) -> cineflow_core::Result<Task> {
        let mut task = written;
        task.revision = to_u64(self.col("revision")?);
        task.lease = self.lease()?;
        Ok(task)
    }
}

/// The tasks of the rows a claim updated, oldest first (as
/// [`Store::claim_tasks`](cineflow_core::Store::claim_tasks) returns them).
pub(crate) fn claimed<R: TaskRowExt>(rows: &[R]) -> cineflow_core::Result<Vec<Task>> {
    let mut claimed = rows
        .iter()
        .map(TaskRowExt::task)
        .collect::<cineflow_core::Result<Vec<_>>>()?;
    claimed.sort_by(|a, b| a.created_at.cmp(&b.created_at).then(a.id.cmp(&b.id)));
    Ok(claimed)
}

/// Decodes a run body.
pub(crate) fn decode_run(body: &str) -> cineflow_core::Result<Run> {
    serde_json::from_str(body).map_err(|e| codec("a stored run is not valid JSON", e))
}

/// Encodes a run body.
pub(crate) fn encode_run(run: &Run) -> cineflow_core::Result<String> {
    serde_json::to_string(run).map_err(|e| codec(format!("cannot encode run {}", run.id), e))
}

/// Decodes a storyboard body.
pub(crate) fn decode_storyboard(body: &str) -> cineflow_core::Result<Storyboard> {
    serde_json::from_str(body).map_err(|e| codec("a stored storyboard is not valid JSON", e))
}

/// Encodes a storyboard body.
pub(crate) fn encode_storyboard(sb: &Storyboard) -> cineflow_core::Result<String> {
    serde_json::to_string(sb).map_err(|e| codec(format!("cannot encode storyboard {}", sb.id), e))
}

/// A `u64` counter as an SQL `BIGINT` (counters never reach 2^63).
pub(crate) fn to_i64(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// An SQL `BIGINT` counter as a `u64`.
pub(crate) fn to_u64(n: i64) -> u64 {
    u64::try_from(n).unwrap_or(0)
}

/// `migrator`, tracking the versions it has run in the `cineflow_migrations` table (the name
/// both backends give it).
pub(crate) fn tracked(mut migrator: Migrator) -> Migrator {
    migrator.dangerous_set_table_name("cineflow_migrations");
    migrator
}

/// Maps an sqlx error to [`Error::Backend`], keeping it as the source.
pub(crate) fn db(what: &'static str) -> impl FnOnce(sqlx::Error) -> Error {
    move |e| Error::backend(what, e)
}

/// Whether `e` is a unique-key violation.
pub(crate) fn is_unique_violation(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(d) if d.is_unique_violation())
}

/// A page size or offset as an SQL `BIGINT`.
pub(crate) fn page_i64(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}
