//! The single writer of a [`SqliteStore`](super::SqliteStore): every write is a job on one
//! queue, run by one task on one connection, in group-committed transactions.
//!
//! SQLite lets one transaction write at a time; writers on several connections fight for that
//! lock (each loser sleeps and tries again) and each pays an fsync of its own. Here the writer
//! takes every job waiting in the queue (up to [`MAX_BATCH`]), runs them one after the other in
//! one `BEGIN IMMEDIATE` transaction, each inside a savepoint of its own (a job that fails
//! leaves nothing behind and does not disturb the others), and commits them with one fsync.
//! Jobs that arrive meanwhile make the next transaction. A caller gets its answer only after
//! the transaction holding its write has committed, so a write is on disk when its call
//! returns, exactly as with one transaction per write; batching only shares the fsync among
//! callers that were waiting at the same time.
//!
//! Savepoints cost two statements per job, so they are left out where they are not needed: a
//! transaction of one job is rolled back as a whole when its job fails, and a job whose only
//! write is one statement ([`Writes::One`]: a task update, a lease renewal or release)
//! runs without one, since SQLite undoes a failed statement by itself.
//!
//! When a transaction as a whole fails (its `COMMIT`, an error that ended it early, or a
//! one-statement job that failed, which may have written before failing), it is rolled back
//! and each of its jobs is run again in a transaction of its own, so one bad write never fails
//! its neighbours.

use std::future::Future;
use std::pin::Pin;

use cineflow_core::{Error, Result};
use sqlx::{Executor, SqliteConnection, SqlitePool};
use tokio::sync::{mpsc, oneshot};

/// The most jobs one transaction takes.
pub(super) const MAX_BATCH: usize = 512;

/// The future of a job's statements, borrowing the connection and the job's input.
pub(super) type JobFuture<'c, T> = Pin<Box<dyn Future<Output = Result<T>> + Send + 'c>>;

/// The writer's queue; clones share it.
#[derive(Debug, Clone)]
pub(super) struct Writer {
    queue: mpsc::UnboundedSender<Box<dyn Job>>,
}

impl Writer {
    /// Starts the writer task, writing through connections of `pool` (one at a time).
    pub(super) fn start(pool: SqlitePool) -> Self {
        let (queue, jobs) = mpsc::unbounded_channel();
        tokio::spawn(run(pool, jobs));
        Self { queue }
    }

    /// Runs `apply(connection, &input)` in the writer's next transaction and returns its
    /// result once that transaction has committed (or its error, with nothing written).
    /// `writes` says how it writes ([`Writes::One`] needs no savepoint of its own).
    ///
    /// `apply` may be run more than once (when its batch fails as a whole); each run starts
    /// from the state before the previous one.
    pub(super) async fn write<I, T>(
        &self,
        writes: Writes,
        input: I,
        apply: for<'c> fn(&'c mut SqliteConnection, &'c I) -> JobFuture<'c, T>,
    ) -> Result<T>
    where
        I: Send + Sync + 'static,
        T: Send + 'static,
    {
        let (reply, answer) = oneshot::channel();
        self.queue
            .send(Box::new(Typed {
                input,
                apply,
                one_statement: matches!(writes, Writes::One),
                out: None,
                reply,
            }))
            .map_err(|_| stopped())?;
        answer.await.map_err(|_| stopped())?
    }
}

/// How a job writes.
#[derive(Debug, Clone, Copy)]
pub(super) enum Writes {
    /// In one statement at most (the others only read): no savepoint of its own is needed.
    One,
    /// In several statements: the job runs in a savepoint of its own.
    Many,
}

/// The error for a write whose store has been closed or whose runtime has shut down.
fn stopped() -> Error {
    Error::backend(
        "the SQLite writer has stopped",
        std::io::Error::other("the store was closed or its runtime shut down"),
    )
}

/// One queued write, type-erased.
trait Job: Send {
    /// Runs the write's statements; whether they succeeded (their result is kept for
    /// [`Job::finish`]).
    fn run<'c>(
        &'c mut self,
        conn: &'c mut SqliteConnection,
    ) -> Pin<Box<dyn Future<Output = bool> + Send + 'c>>;

    /// Answers the caller with the kept result, or `error` if there is none.
    fn finish(self: Box<Self>, error: Option<Error>);

    /// Whether the job writes at most once, in one statement ([`Writes::One`]).
    fn one_statement(&self) -> bool;
}

struct Typed<I, T> {
    input: I,
    apply: for<'c> fn(&'c mut SqliteConnection, &'c I) -> JobFuture<'c, T>,
    one_statement: bool,
    out: Option<Result<T>>,
    reply: oneshot::Sender<Result<T>>,
}

impl<I: Send + Sync, T: Send> Job for Typed<I, T> {
    fn run<'c>(
        &'c mut self,
        conn: &'c mut SqliteConnection,
    ) -> Pin<Box<dyn Future<Output = bool> + Send + 'c>> {
        let Self {
            input, apply, out, ..
        } = self;
        Box::pin(async move {
            let result = apply(conn, input).await;
            let ok = result.is_ok();
            *out = Some(result);
            ok
        })
    }

    fn finish(self: Box<Self>, error: Option<Error>) {
        let answer = match (error, self.out) {
            (Some(e), _) => Err(e),
            (None, Some(out)) => out,
            (None, None) => Err(stopped()),
        };
        // A caller that stopped waiting (its future dropped) needs no answer.
        let _ = self.reply.send(answer);
    }

    fn one_statement(&self) -> bool {
        self.one_statement
    }
}

/// The writer task: batches until every sender is gone.
async fn run(pool: SqlitePool, mut jobs: mpsc::UnboundedReceiver<Box<dyn Job>>) {
    let mut batch: Vec<Box<dyn Job>> = Vec::new();
    while let Some(first) = jobs.recv().await {
        batch.push(first);
        while batch.len() < MAX_BATCH {
            match jobs.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        let mut conn = match pool.acquire().await {
            Ok(c) => c,
            Err(e) => {
                let e = std::sync::Arc::new(e);
                for job in batch.drain(..) {
                    job.finish(Some(Error::backend(
                        "cannot get the SQLite writer's connection",
                        ArcError(std::sync::Arc::clone(&e)),
                    )));
                }
                continue;
            }
        };
        if commit(&mut conn, &mut batch).await.is_ok() {
            for job in batch.drain(..) {
                job.finish(None);
            }
            continue;
        }
        // The transaction failed as a whole: each job alone, so that one bad write does not
        // fail the others. (Alone, a job that fails is its own answer, not a failed batch.)
        for mut job in batch.drain(..) {
            let error = commit(&mut conn, std::slice::from_mut(&mut job))
                .await
                .err()
                .map(|e| match e {
                    Failed::Database(e) => Error::backend("cannot commit an SQLite write", e),
                    // A job alone never fails its batch; kept for completeness.
                    Failed::OneStatementJob => Error::backend(
                        "cannot commit an SQLite write",
                        std::io::Error::other("a write failed in its batch"),
                    ),
                });
            job.finish(error);
        }
    }
}

/// Why a transaction was rolled back.
enum Failed {
    /// A statement of the writer's or of a job failed in a way that ended the transaction.
    Database(sqlx::Error),
    /// A job run without a savepoint failed in a batch of several (it may have written).
    OneStatementJob,
}

impl From<sqlx::Error> for Failed {
    fn from(e: sqlx::Error) -> Self {
        Self::Database(e)
    }
}

/// Runs `batch` in one transaction and commits it; on an error the transaction is rolled back
/// (nothing of it stays).
///
/// A job runs in a savepoint of its own, so that when it fails what it wrote is undone and
/// the others go on; except a job that is alone (it fails: the transaction is rolled back,
/// which is not an error of the batch) and a [`Writes::One`] job among others (it fails:
/// the batch fails, to be run again job by job).
async fn commit(conn: &mut SqliteConnection, batch: &mut [Box<dyn Job>]) -> Result<(), Failed> {
    conn.execute("BEGIN IMMEDIATE").await?;
    let alone = batch.len() == 1;
    let done = async {
        for job in batch.iter_mut() {
            if alone || job.one_statement() {
                if job.run(&mut *conn).await {
                    continue;
                }
                if alone {
                    conn.execute("ROLLBACK").await?;
                    return Ok(());
                }
                return Err(Failed::OneStatementJob);
            }
            conn.execute("SAVEPOINT cineflow_job").await?;
            if !job.run(&mut *conn).await {
                conn.execute("ROLLBACK TO cineflow_job").await?;
            }
            conn.execute("RELEASE cineflow_job").await?;
        }
        conn.execute("COMMIT").await?;
        Ok(())
    }
    .await;
    if done.is_err() {
        // Fails harmlessly when SQLite already ended the transaction.
        let _ = conn.execute("ROLLBACK").await;
    }
    done
}

/// An sqlx error shared by the answers of a whole batch.
#[derive(Debug)]
struct ArcError(std::sync::Arc<sqlx::Error>);

impl std::fmt::Display for ArcError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

impl std::error::Error for ArcError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&*self.0)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use sqlx::sqlite::SqlitePoolOptions;

    use super::*;

    /// Inserts row `k`, then fails if asked to (after writing).
    fn insert<'c>(
        conn: &'c mut SqliteConnection,
        &(k, fail): &'c (i64, bool),
    ) -> JobFuture<'c, i64> {
        Box::pin(async move {
            sqlx::query("INSERT INTO t (k) VALUES (?1)")
                .bind(k)
                .execute(&mut *conn)
                .await
                .map_err(|e| Error::backend("insert", e))?;
            if fail {
                return Err(Error::Conflict {
                    entity: "row",
                    id: k.to_string(),
                    reason: "asked to fail".into(),
                });
            }
            Ok(k)
        })
    }

    async fn writer() -> (Writer, SqlitePool) {
        let pool = SqlitePoolOptions::new()
            .max_connections(1)
            .connect("sqlite::memory:")
            .await
            .unwrap();
        sqlx::query("CREATE TABLE t (k INTEGER NOT NULL)")
            .execute(&pool)
            .await
            .unwrap();
        (Writer::start(pool.clone()), pool)
    }

    async fn rows(pool: &SqlitePool) -> Vec<i64> {
        sqlx::query_scalar("SELECT k FROM t ORDER BY k")
            .fetch_all(pool)
            .await
            .unwrap()
    }

    #[tokio::test]
    async fn a_write_that_fails_leaves_nothing_and_does_not_fail_its_batch() {
        let (w, pool) = writer().await;
        // Queued together (the writer task runs once all of them wait), so one batch.
        let answers = futures::future::join_all([
            Box::pin(w.write(Writes::One, (1, false), insert)) as JobFuture<'_, i64>,
            Box::pin(w.write(Writes::One, (2, true), insert)),
            Box::pin(w.write(Writes::Many, (3, false), insert)),
            Box::pin(w.write(Writes::Many, (4, true), insert)),
            Box::pin(w.write(Writes::One, (5, false), insert)),
        ])
        .await;
        let ok: Vec<Option<i64>> = answers.into_iter().map(Result::ok).collect();
        assert_eq!(ok, vec![Some(1), None, Some(3), None, Some(5)]);
        assert_eq!(rows(&pool).await, vec![1, 3, 5]);
    }

    #[tokio::test]
    async fn a_write_alone_that_fails_leaves_nothing() {
        let (w, pool) = writer().await;
        assert!(w.write(Writes::One, (1, true), insert).await.is_err());
        assert!(w.write(Writes::Many, (2, true), insert).await.is_err());
        assert_eq!(w.write(Writes::One, (3, false), insert).await.unwrap(), 3);
        assert_eq!(rows(&pool).await, vec![3]);
    }
}
