//! The writes of a [`SqliteStore`](super::SqliteStore), as jobs for its
//! [`Writer`](super::Writer): each runs on the writer's connection inside the current
//! transaction (and savepoint), and may be run again from the start if its batch fails.

use std::time::Duration;

use cineflow_core::store::check_task_write;
use cineflow_core::{
    ErrorKind, Lease, Result, Run, RunId, Segment, SegmentId, SegmentPatch, Storyboard, Task,
    TaskId,
};
use sqlx::{Sqlite, SqliteConnection};

use super::{JobFuture, SqliteStore};
use crate::common::{deadline, not_found, now, to_ns};
use crate::sql::{
    LeaseCols, RowExt, SqlBackend, SqlOps, TaskCols, TaskRowExt, claimed, db, kept_changing,
    page_i64, renewed, returning_written_task, run_cas_failed, select_segment, task_columns,
    to_i64, update_run, update_task as update_task_sql,
};

/// A task write: the task as given and its columns at the next revision; with `release`, the
/// write also gives up the task's lease.
pub(super) struct TaskWrite {
    pub(super) task: Task,
    pub(super) cols: TaskCols,
    pub(super) release: bool,
}

/// A task row to insert: its columns and lease columns.
pub(super) type TaskRow = (TaskCols, LeaseCols);

/// [`Store::put_storyboard`](cineflow_core::Store::put_storyboard).
pub(super) fn put_storyboard<'c>(
    conn: &'c mut SqliteConnection,
    storyboard: &'c Storyboard,
) -> JobFuture<'c, ()> {
    Box::pin(async move {
        Sqlite::write_storyboard_row(&mut *conn, storyboard).await?;
        let id = storyboard.id.to_string();
        for s in &storyboard.segments {
            sqlx::query(
                "INSERT INTO cineflow_segments (id, storyboard_id) VALUES (?1, ?2) \
                 ON CONFLICT (id) DO UPDATE SET storyboard_id = excluded.storyboard_id",
            )
            .bind(s.id.to_string())
            .bind(&id)
            .execute(&mut *conn)
            .await
            .map_err(db("cannot write a storyboard's segments"))?;
        }
        Ok(())
    })
}

/// [`Store::update_segment`](cineflow_core::Store::update_segment).
pub(super) fn update_segment<'c>(
    conn: &'c mut SqliteConnection,
    (id, patch): &'c (SegmentId, SegmentPatch),
) -> JobFuture<'c, Segment> {
    Box::pin(Sqlite::update_segment(conn, select_segment!(), *id, patch))
}

/// [`Store::insert_run`](cineflow_core::Store::insert_run): the run and its encoded tasks.
pub(super) fn insert_run<'c>(
    conn: &'c mut SqliteConnection,
    (run, rows): &'c (Run, Vec<TaskRow>),
) -> JobFuture<'c, ()> {
    Box::pin(async move {
        Sqlite::insert_run_row(&mut *conn, run).await?;
        for (c, lease) in rows {
            Sqlite::insert_task_row(&mut *conn, c, lease).await?;
        }
        Ok(())
    })
}

/// [`Store::update_run`](cineflow_core::Store::update_run): `next` over `run`.
pub(super) fn update_run<'c>(
    conn: &'c mut SqliteConnection,
    (run, next): &'c (Run, Run),
) -> JobFuture<'c, Run> {
    Box::pin(async move {
        let done = Sqlite::bind_run_update(sqlx::query(Sqlite::sql(update_run!())), run, next)?
            .execute(&mut *conn)
            .await
            .map_err(db("cannot write a run"))?;
        if done.rows_affected() == 1 {
            return Ok(next.clone());
        }
        let stored: Option<i64> =
            sqlx::query_scalar("SELECT revision FROM cineflow_runs WHERE id = ?1")
                .bind(run.id.to_string())
                .fetch_optional(&mut *conn)
                .await
                .map_err(db("cannot read a run"))?;
        Err(run_cas_failed(run.id, run.revision, stored))
    })
}

/// [`Store::delete_run`](cineflow_core::Store::delete_run).
pub(super) fn delete_run<'c>(conn: &'c mut SqliteConnection, id: &'c RunId) -> JobFuture<'c, ()> {
    Box::pin(Sqlite::delete_run_rows(conn, *id))
}

/// [`Store::update_task`](cineflow_core::Store::update_task).
pub(super) fn update_task<'c>(
    conn: &'c mut SqliteConnection,
    w: &'c TaskWrite,
) -> JobFuture<'c, Task> {
    Box::pin(async move {
        let token = w.task.lease.as_ref().map(|l| to_i64(l.token));
        // The writer holds the database's write lock, so the row cannot change between a
        // failed update and its diagnosis; a lease that expires in between can, so a second
        // round is allowed.
        for _ in 0..3 {
            let now = now();
            // The lease fence: a live lease of another token refuses the write.
            macro_rules! fenced {
                ($update:expr) => {
                    concat!(
                        $update,
                        " AND (lease_token IS NULL OR lease_expires_at_ns <= $12 \
                         OR lease_token = $13) AND ($13 IS NULL OR lease_token = $13)",
                        returning_written_task!()
                    )
                };
            }
            let update = Sqlite::sql(if w.release {
                fenced!(update_task_sql!("$13"))
            } else {
                fenced!(update_task_sql!())
            });
            let row = Sqlite::bind_task_update(sqlx::query(update), &w.cols, &w.task)
                .bind(to_ns(now))
                .bind(token)
                .fetch_all(&mut *conn)
                .await
                .map_err(db("cannot write a task"))?;
            if let Some(row) = row.first() {
                return row.written_task(w.task.clone());
            }
            let stored = SqliteStore::load_task(&mut *conn, w.task.id)
                .await?
                .ok_or_else(|| not_found("task", w.task.id))?;
            check_task_write(&stored, &w.task, now)?;
        }
        Err(kept_changing(w.task.id))
    })
}

/// [`Store::claim_tasks`](cineflow_core::Store::claim_tasks): owner, run, limit, ttl.
pub(super) fn claim_tasks<'c>(
    conn: &'c mut SqliteConnection,
    (owner, run, limit, ttl): &'c (String, Option<RunId>, usize, Duration),
) -> JobFuture<'c, Vec<Task>> {
    Box::pin(async move {
        let now = now();
        let claim = sqlx::query(CLAIM)
            .bind(to_ns(now))
            .bind(page_i64(*limit))
            .bind(owner)
            .bind(to_ns(deadline(now, *ttl)))
            .bind(run.map(|r| r.to_string()));
        let rows = claim
            .fetch_all(&mut *conn)
            .await
            .map_err(db("cannot claim tasks"))?;
        if rows.is_empty() {
            return Ok(Vec::new());
        }
        sqlx::query("UPDATE cineflow_counters SET value = value + ?1 WHERE name = 'lease_token'")
            .bind(page_i64(rows.len()))
            .execute(&mut *conn)
            .await
            .map_err(db("cannot draw lease tokens"))?;
        claimed(&rows)
    })
}

/// The claim: one statement picks the oldest claimable tasks and leases them, numbering their
/// tokens on from the database's counter (which the claim then moves past them).
///
/// The pick reads the claim index alone, in its order (`INDEXED BY`: left to itself, the
/// planner took the status index and sorted every claimable task at every claim, 4 ms with
/// 2,000 of them), and stops at the limit: the index holds the lease's expiry and the run, so
/// the tasks in flight at its front are skipped without reading their rows. The tokens are
/// numbered after the limit is applied. The limit is `?2 + 0`, not `?2`: SQLite plans a
/// statement whose `LIMIT` is a bare parameter for the value bound, so it would prepare the
/// statement again at every claim.
pub(super) const CLAIM: &str = concat!(
    "WITH picked AS ( \
       SELECT id, row_number() OVER () AS k FROM ( \
         SELECT id FROM cineflow_tasks INDEXED BY cineflow_tasks_claimable \
         WHERE status IN ('pending', 'submitting', 'queued', 'running', 'downloading') \
         AND waiting_for IS NULL \
         AND (lease_expires_at_ns IS NULL OR lease_expires_at_ns <= ?1) \
         AND (?5 IS NULL OR run_id = ?5) \
         ORDER BY created_at_ns ASC, id ASC LIMIT ?2 + 0)) \
     UPDATE cineflow_tasks SET lease_owner = ?3, \
       lease_token = picked.k + \
         (SELECT value FROM cineflow_counters WHERE name = 'lease_token'), \
       lease_expires_at_ns = ?4, revision = revision + 1 \
     FROM picked WHERE cineflow_tasks.id = picked.id RETURNING ",
    task_columns!()
);

/// [`Store::heartbeat`](cineflow_core::Store::heartbeat): task, lease, ttl.
pub(super) fn heartbeat<'c>(
    conn: &'c mut SqliteConnection,
    (task, lease, ttl): &'c (TaskId, Lease, Duration),
) -> JobFuture<'c, Lease> {
    Box::pin(renew(conn, *task, lease, to_ns(deadline(now(), *ttl))))
}

/// [`Store::heartbeat_many`](cineflow_core::Store::heartbeat_many): the leases and their ttl,
/// one statement each in the writer's transaction (one commit for all of them).
pub(super) fn heartbeat_many<'c>(
    conn: &'c mut SqliteConnection,
    (leases, ttl): &'c (Vec<(TaskId, Lease)>, Duration),
) -> JobFuture<'c, Vec<Result<Lease>>> {
    Box::pin(async move {
        let expires = to_ns(deadline(now(), *ttl));
        let mut renewed = Vec::with_capacity(leases.len());
        for (task, lease) in leases {
            match renew(&mut *conn, *task, lease, expires).await {
                // A database error fails the whole job (its transaction is run again alone).
                Err(e) if e.kind() == ErrorKind::Backend => return Err(e),
                answer => renewed.push(answer),
            }
        }
        Ok(renewed)
    })
}

/// Extends `task`'s lease to `expires` (ns) if `lease` is the one it holds.
async fn renew(
    conn: &mut SqliteConnection,
    task: TaskId,
    lease: &Lease,
    expires: i64,
) -> Result<Lease> {
    let row = sqlx::query(
        "UPDATE cineflow_tasks SET lease_expires_at_ns = ?1 \
         WHERE id = ?2 AND lease_token = ?3 AND lease_owner = ?4 \
         RETURNING lease_expires_at_ns",
    )
    .bind(expires)
    .bind(task.to_string())
    .bind(to_i64(lease.token))
    .bind(&lease.owner)
    .fetch_all(&mut *conn)
    .await
    .map_err(db("cannot renew a lease"))?;
    if let Some(row) = row.first() {
        return renewed(task, lease, Some(row.col("lease_expires_at_ns")?), true);
    }
    let found: Option<i64> = sqlx::query_scalar("SELECT 1 FROM cineflow_tasks WHERE id = ?1")
        .bind(task.to_string())
        .fetch_optional(&mut *conn)
        .await
        .map_err(db("cannot read a task"))?;
    renewed(task, lease, None, found.is_some())
}

/// [`Store::release`](cineflow_core::Store::release): task, lease.
pub(super) fn release<'c>(
    conn: &'c mut SqliteConnection,
    (task, lease): &'c (TaskId, Lease),
) -> JobFuture<'c, ()> {
    Box::pin(Sqlite::release(conn, *task, lease))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use sqlx::{AssertSqlSafe, Row};

    use super::*;

    #[tokio::test]
    async fn a_claim_reads_only_the_claim_index_in_its_order_and_sorts_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("plan.db").display());
        let store = SqliteStore::connect(&url).await.unwrap();
        let plan: Vec<String> = sqlx::query(AssertSqlSafe(format!("EXPLAIN QUERY PLAN {CLAIM}")))
            .bind(0_i64)
            .bind(1_i64)
            .bind("owner")
            .bind(1_i64)
            .bind(Option::<String>::None)
            .fetch_all(&store.pool)
            .await
            .unwrap()
            .iter()
            .map(|row| row.get::<String, _>("detail"))
            .collect();
        let pick = plan
            .iter()
            .find(|d| d.contains("cineflow_tasks") && !d.contains("PRIMARY KEY"))
            .unwrap_or_else(|| panic!("no read of the tasks in {plan:?}"));
        assert!(
            pick.ends_with("USING INDEX cineflow_tasks_claimable")
                || pick.ends_with("USING COVERING INDEX cineflow_tasks_claimable"),
            "{plan:?}"
        );
        assert!(
            !plan.iter().any(|d| d.contains("TEMP B-TREE")),
            "the claim sorts: {plan:?}"
        );
        // The lease's expiry and the run are in the index: the tasks in flight are skipped
        // on the index's entries.
        let columns: Vec<String> = sqlx::query("PRAGMA index_info(cineflow_tasks_claimable)")
            .fetch_all(&store.pool)
            .await
            .unwrap()
            .iter()
            .map(|row| row.get::<String, _>("name"))
            .collect();
        assert_eq!(
            columns,
            ["created_at_ns", "id", "lease_expires_at_ns", "run_id"]
        );
    }
}
