//! The writes of a [`SqliteStore`](super::SqliteStore), as jobs for its
//! [`Writer`](super::Writer): each runs on the writer's connection inside the current
//! transaction (and savepoint), and may be run again from the start if its batch fails.

use std::time::Duration;

use cineflow_core::store::check_task_write;
use cineflow_core::{
    Lease, Run, RunId, Segment, SegmentId, SegmentPatch, Storyboard, Task, TaskId,
};
use sqlx::{Sqlite, SqliteConnection};

use super::{JobFuture, SqliteStore};
use crate::common::{deadline, not_found, now, to_ns};
use crate::sql::{
    LeaseCols, RowExt, SqlBackend, TaskCols, db, kept_changing, page_i64, renewed,
    returning_written_task, run_cas_failed, select_segment, task_of, to_i64, update_run,
    update_task as update_task_sql, written_task,
};

/// A task write: the task as given and its columns at the next revision.
pub(super) struct TaskWrite {
    pub(super) task: Task,
    pub(super) cols: TaskCols,
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
            let update = Sqlite::sql(concat!(
                update_task_sql!(),
                " AND (lease_token IS NULL OR lease_expires_at_ns <= $12 OR lease_token = $13) \
                 AND ($13 IS NULL OR lease_token = $13)",
                returning_written_task!()
            ));
            let row = Sqlite::bind_task_update(sqlx::query(update), &w.cols, &w.task)
                .bind(to_ns(now))
                .bind(token)
                .fetch_all(&mut *conn)
                .await
                .map_err(db("cannot write a task"))?;
            if let Some(row) = row.first() {
                return written_task(w.task.clone(), row);
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
        let expires = to_ns(deadline(now, *ttl));
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
        .bind(page_i64(*limit))
        .fetch_all(&mut *conn)
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
        .fetch_one(&mut *conn)
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
            .fetch_all(&mut *conn)
            .await
            .map_err(db("cannot claim a task"))?;
            for row in &rows {
                claimed.push(task_of(row)?);
            }
        }
        Ok(claimed)
    })
}

/// [`Store::heartbeat`](cineflow_core::Store::heartbeat): task, lease, ttl.
pub(super) fn heartbeat<'c>(
    conn: &'c mut SqliteConnection,
    (task, lease, ttl): &'c (TaskId, Lease, Duration),
) -> JobFuture<'c, Lease> {
    Box::pin(async move {
        let row = sqlx::query(
            "UPDATE cineflow_tasks SET lease_expires_at_ns = ?1 \
             WHERE id = ?2 AND lease_token = ?3 AND lease_owner = ?4 \
             RETURNING lease_expires_at_ns",
        )
        .bind(to_ns(deadline(now(), *ttl)))
        .bind(task.to_string())
        .bind(to_i64(lease.token))
        .bind(&lease.owner)
        .fetch_all(&mut *conn)
        .await
        .map_err(db("cannot renew a lease"))?;
        if let Some(row) = row.first() {
            return renewed(*task, lease, Some(row.col("lease_expires_at_ns")?), true);
        }
        let found: Option<i64> = sqlx::query_scalar("SELECT 1 FROM cineflow_tasks WHERE id = ?1")
            .bind(task.to_string())
            .fetch_optional(&mut *conn)
            .await
            .map_err(db("cannot read a task"))?;
        renewed(*task, lease, None, found.is_some())
    })
}

/// [`Store::release`](cineflow_core::Store::release): task, lease.
pub(super) fn release<'c>(
    conn: &'c mut SqliteConnection,
    (task, lease): &'c (TaskId, Lease),
) -> JobFuture<'c, ()> {
    Box::pin(Sqlite::release(conn, *task, lease))
}
