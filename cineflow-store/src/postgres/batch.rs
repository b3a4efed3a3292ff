//! Task writes and reads of a [`PostgresStore`](super::PostgresStore), batched: the task
//! updates (and, apart, the task reads) waiting at the same time are made by one statement.
//!
//! Where waves of tasks meet, thousands of task writes arrive within a few seconds (a task
//! ending writes twice, the task after it twice more). One statement and one commit each cost
//! Postgres a round trip, an executor start and a WAL flush per write; the same writes as the
//! rows of one `UPDATE … FROM UNNEST(…)` cost one of each per batch. Reads (a task taken back
//! after a long wait for its next poll) are one `SELECT … WHERE id = ANY(…)` per batch.
//!
//! Each write keeps its own compare-and-swap and lease fence (row by row, in the statement's
//! `WHERE`), and its caller gets its answer only once the statement's transaction has
//! committed: a write is durable when its call returns, exactly as alone. Batching shares the
//! statement among callers that were waiting at the same time (a batch is what queued while
//! the statements before it ran); it adds no timer. A write the statement did not make (its
//! revision or lease did not match), a task a read did not find, and every item of a batch
//! whose statement failed are done again alone by their callers, on the paths that diagnose a
//! failure (stale, lease lost, not found, the database's error).
//!
//! Two items of one task never share a batch (the second waits for the next one). Rows are
//! written in id order, and [`Queue::exclusive`] keeps a process's multi-row lease renewals
//! from running while its write batches do, so two statements of one process never wait for
//! each other's rows in opposite orders.

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use sqlx::postgres::{PgPool, PgRow};
use tokio::sync::{OwnedRwLockReadGuard, RwLock, RwLockWriteGuard, Semaphore, mpsc, oneshot};

use super::{ColumnArrays, column_arrays};
use crate::sql::TaskCols;

/// The most writes one statement takes.
const MAX_BATCH: usize = 256;

/// The most batch statements of one store in flight at once.
const MAX_IN_FLIGHT: usize = 2;

/// One task write: its columns, the revision it was read at, the lease it carries, and
/// whether it gives the lease up.
#[derive(Debug)]
pub(super) struct TaskWrite {
    /// The columns to write (at the next revision).
    pub(super) cols: TaskCols,
    /// The revision the writer read (the compare-and-swap).
    pub(super) expected: i64,
    /// The token of the lease the writer holds, if any (the fence).
    pub(super) token: Option<i64>,
    /// Whether the write also gives the lease of `token` up.
    pub(super) release: bool,
}

/// What one kind of batch statement does: for a batch of items, the row of each item it
/// served, by task id.
pub(super) trait Statement: Send + Sync + 'static {
    /// One request.
    type Item: Send + 'static;

    /// The id of the task `item` is about (two items of one task never share a batch).
    fn task_id(item: &Self::Item) -> &str;

    /// Whether the statement locks rows, so it must not run beside an [`Queue::exclusive`]
    /// holder.
    const LOCKS_ROWS: bool;

    /// Runs the statement for `batch` (sorted by task id): the row of each item served.
    fn run(
        pool: &PgPool,
        batch: &[Self::Item],
    ) -> impl Future<Output = sqlx::Result<HashMap<String, PgRow>>> + Send;
}

/// A queued item and where its answer goes: its row, or `None` when the batch did not serve
/// it (the caller then does it alone).
struct Pending<I> {
    item: I,
    reply: oneshot::Sender<Option<PgRow>>,
}

/// The queue of one kind of batched statement; clones share it.
pub(super) struct Queue<S: Statement> {
    queue: mpsc::UnboundedSender<Pending<S::Item>>,
    /// Held shared by each statement that locks rows, exclusively by [`Queue::exclusive`].
    rows: Arc<RwLock<()>>,
    /// How many batch statements have run.
    #[cfg(test)]
    statements: Arc<AtomicU64>,
}

impl<S: Statement> Clone for Queue<S> {
    fn clone(&self) -> Self {
        Self {
            queue: self.queue.clone(),
            rows: Arc::clone(&self.rows),
            #[cfg(test)]
            statements: Arc::clone(&self.statements),
        }
    }
}

impl<S: Statement> std::fmt::Debug for Queue<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Queue")
            .field("statement", &std::any::type_name::<S>())
            .finish_non_exhaustive()
    }
}

impl<S: Statement> Queue<S> {
    /// Starts the task that runs the batches, through connections of `pool`.
    pub(super) fn start(pool: PgPool) -> Self {
        let (queue, pending) = mpsc::unbounded_channel();
        let rows = Arc::new(RwLock::new(()));
        let statements = Arc::new(AtomicU64::new(0));
        tokio::spawn(run::<S>(
            pool,
            pending,
            Arc::clone(&rows),
            Arc::clone(&statements),
        ));
        Self {
            queue,
            rows,
            #[cfg(test)]
            statements,
        }
    }

    /// Does `item` in the next batch: its row once the batch's statement has committed, or
    /// `None` if the batch did not serve it (a write whose revision or lease did not match,
    /// a task not found, a statement that failed, a queue that has stopped): then the batch
    /// changed nothing of it, and the caller does it alone.
    pub(super) async fn submit(&self, item: S::Item) -> Option<PgRow> {
        let (reply, answer) = oneshot::channel();
        self.queue.send(Pending { item, reply }).ok()?;
        answer.await.ok().flatten()
    }

    /// Waits until no statement of this queue that locks rows runs and keeps new ones from
    /// starting until the guard is dropped: for a statement that locks many task rows in an
    /// order of its own.
    pub(super) async fn exclusive(&self) -> RwLockWriteGuard<'_, ()> {
        self.rows.write().await
    }

    /// How many batch statements have run.
    #[cfg(test)]
    pub(super) fn statements(&self) -> u64 {
        self.statements.load(Ordering::Relaxed)
    }
}

/// The queue's task: gathers batches until every sender is gone.
async fn run<S: Statement>(
    pool: PgPool,
    mut queue: mpsc::UnboundedReceiver<Pending<S::Item>>,
    rows: Arc<RwLock<()>>,
    statements: Arc<AtomicU64>,
) {
    let slots = Arc::new(Semaphore::new(MAX_IN_FLIGHT));
    // Items of a task that already had one in the batch being gathered.
    let mut deferred: Vec<Pending<S::Item>> = Vec::new();
    loop {
        // A statement slot first: while every slot is busy, items gather in the queue.
        let Ok(slot) = Arc::clone(&slots).acquire_owned().await else {
            return;
        };
        let mut batch = Vec::new();
        let mut ids = HashSet::new();
        for p in std::mem::take(&mut deferred) {
            if batch.len() < MAX_BATCH && ids.insert(S::task_id(&p.item).to_owned()) {
                batch.push(p);
            } else {
                deferred.push(p);
            }
        }
        if batch.is_empty() {
            let Some(p) = queue.recv().await else { return };
            ids.insert(S::task_id(&p.item).to_owned());
            batch.push(p);
        }
        while batch.len() < MAX_BATCH {
            let Ok(p) = queue.try_recv() else { break };
            if ids.insert(S::task_id(&p.item).to_owned()) {
                batch.push(p);
            } else {
                deferred.push(p);
            }
        }
        let guard = if S::LOCKS_ROWS {
            Some(Arc::clone(&rows).read_owned().await)
        } else {
            None
        };
        statements.fetch_add(1, Ordering::Relaxed);
        let pool = pool.clone();
        tokio::spawn(async move {
            run_batch::<S>(&pool, batch, guard).await;
            drop(slot);
        });
    }
}

/// Runs the statement for `batch` and answers each item.
async fn run_batch<S: Statement>(
    pool: &PgPool,
    mut batch: Vec<Pending<S::Item>>,
    guard: Option<OwnedRwLockReadGuard<()>>,
) {
    batch.sort_by(|a, b| S::task_id(&a.item).cmp(S::task_id(&b.item)));
    let (items, replies): (Vec<_>, Vec<_>) = batch.into_iter().map(|p| (p.item, p.reply)).unzip();
    let served = S::run(pool, &items).await;
    drop(guard);
    // On an error each item is done again alone by its caller, which reports the error.
    let mut served = served.unwrap_or_default();
    for (item, reply) in items.iter().zip(replies) {
        // A caller that stopped waiting (its future dropped) needs no answer.
        let _ = reply.send(served.remove(S::task_id(item)));
    }
}

/// The rows of a statement's answer, by their `id` column.
fn by_id(rows: Vec<PgRow>) -> sqlx::Result<HashMap<String, PgRow>> {
    let mut served = HashMap::with_capacity(rows.len());
    for row in rows {
        let id: String = sqlx::Row::try_get(&row, "id")?;
        served.insert(id, row);
    }
    Ok(served)
}

/// Task writes: one `UPDATE … FROM UNNEST(…)`.
#[derive(Debug)]
pub(super) struct Writes;

impl Statement for Writes {
    type Item = TaskWrite;
    const LOCKS_ROWS: bool = true;

    fn task_id(item: &TaskWrite) -> &str {
        &item.cols.id
    }

    fn run(
        pool: &PgPool,
        batch: &[TaskWrite],
    ) -> impl Future<Output = sqlx::Result<HashMap<String, PgRow>>> + Send {
        update(pool, batch)
    }
}

/// Task reads: one `SELECT … WHERE id = ANY(…)` of the columns a task is read from.
#[derive(Debug)]
pub(super) struct Reads;

impl Statement for Reads {
    type Item = String;
    const LOCKS_ROWS: bool = false;

    fn task_id(item: &String) -> &str {
        item
    }

    async fn run(pool: &PgPool, batch: &[String]) -> sqlx::Result<HashMap<String, PgRow>> {
        let rows = sqlx::query(concat!(
            "SELECT id, ",
            crate::sql::task_columns!(),
            " FROM cineflow_tasks WHERE id = ANY($1)"
        ))
        .bind(batch)
        .fetch_all(pool)
        .await?;
        by_id(rows)
    }
}

/// The statement of [`Writes`]: every write of `batch` whose revision and lease match, by
/// task id.
async fn update(pool: &PgPool, batch: &[TaskWrite]) -> sqlx::Result<HashMap<String, PgRow>> {
    let expected: Vec<i64> = batch.iter().map(|w| w.expected).collect();
    let token: Vec<Option<i64>> = batch.iter().map(|w| w.token).collect();
    let release: Vec<bool> = batch.iter().map(|w| w.release).collect();
    let rows = ColumnArrays::new(batch.iter().map(|w| &w.cols))
        .bind(sqlx::query(concat!(
            "WITH w AS (SELECT * FROM UNNEST(",
            column_arrays!(),
            ", $11::bigint[], $12::bigint[], $13::boolean[]) \
               AS w(run_id, status, segment_index, version_index, error_code, retryable, \
                    created_at_ns, waiting_for, body, id, expected, token, release)) \
             UPDATE cineflow_tasks AS t SET (",
            crate::sql::task_write_columns!(),
            ") = (w.run_id, w.status, w.segment_index, w.version_index, w.error_code, \
                  w.retryable, w.created_at_ns, w.waiting_for, w.body), \
               revision = t.revision + 1, \
               lease_owner = CASE WHEN w.release AND w.token IS NOT NULL THEN NULL \
                                  ELSE t.lease_owner END, \
               lease_token = CASE WHEN w.release AND w.token IS NOT NULL THEN NULL \
                                  ELSE t.lease_token END, \
               lease_expires_at_ns = CASE WHEN w.release AND w.token IS NOT NULL THEN NULL \
                                          ELSE t.lease_expires_at_ns END \
             FROM w \
             WHERE t.id = w.id AND t.revision = w.expected \
               AND (t.lease_token IS NULL OR t.lease_token = w.token \
                    OR t.lease_expires_at_ns <= ",
            now_ns!(),
            ") AND (w.token IS NULL OR t.lease_token = w.token) \
             RETURNING t.id, t.revision, t.lease_owner, t.lease_token, t.lease_expires_at_ns"
        )))
        .bind(expected)
        .bind(token)
        .bind(release)
        .fetch_all(pool)
        .await?;
    by_id(rows)
}

#[cfg(all(test, feature = "conformance"))]
mod tests;
