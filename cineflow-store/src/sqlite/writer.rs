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
//! When a transaction as a whole fails (its `COMMIT`, or an error that ended it early), it is
//! rolled back and each of its jobs is run again in a transaction of its own, so one bad write
//! never fails its neighbours.

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
    ///
    /// `apply` may be run more than once (when its batch fails as a whole); each run starts
    /// from the state before the previous one.
    pub(super) async fn write<I, T>(
        &self,
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
                out: None,
                reply,
            }))
            .map_err(|_| stopped())?;
        answer.await.map_err(|_| stopped())?
    }
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
}

struct Typed<I, T> {
    input: I,
    apply: for<'c> fn(&'c mut SqliteConnection, &'c I) -> JobFuture<'c, T>,
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
        // fail the others.
        for mut job in batch.drain(..) {
            let error = commit(&mut conn, std::slice::from_mut(&mut job))
                .await
                .err()
                .map(|e| Error::backend("cannot commit an SQLite write", e));
            job.finish(error);
        }
    }
}

/// Runs `batch` in one transaction, each job in a savepoint, and commits it; on an error the
/// transaction is rolled back (nothing of it stays).
async fn commit(conn: &mut SqliteConnection, batch: &mut [Box<dyn Job>]) -> sqlx::Result<()> {
    conn.execute("BEGIN IMMEDIATE").await?;
    let done = async {
        for job in batch.iter_mut() {
            conn.execute("SAVEPOINT cineflow_job").await?;
            if !job.run(&mut *conn).await {
                conn.execute("ROLLBACK TO cineflow_job").await?;
            }
            conn.execute("RELEASE cineflow_job").await?;
        }
        conn.execute("COMMIT").await.map(|_| ())
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
