//! What a task in flight holds on the heap while it waits for its next poll, counted by an
//! allocator that tracks live bytes. One test in this binary: the allocator counts every
//! thread's allocations, so nothing may run beside it. Time is paused: the waits are exact.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::alloc::System;
use std::time::Duration;

use cineflow_core::mock::{MockProvider, Step};
use cineflow_core::{
    OrchestratorConfig, PageRequest, PollPolicy, RunSpec, RunStatus, Store, TaskQuery, TaskStatus,
};
use stats_alloc::{INSTRUMENTED_SYSTEM, Region, StatsAlloc};

mod common;

use common::{model, ten_second_shots as storyboard};

#[global_allocator]
static ALLOCATOR: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

const TASKS: u32 = 1_000;

/// Heap bytes per task while `TASKS` tasks of a long job wait for their next poll, with
/// `poll` (what the orchestrator, its runs and tasks add to the heap after the tasks were
/// stored); the run is then finished, so the count covers tasks that do complete.
async fn heap_per_task_waiting(poll: PollPolicy) -> isize {
    // Progress 1 % at the first poll: the next one is 30 s (the longest interval) away.
    let mock = MockProvider::new("mock").unwrap().with_timeline(vec![
        Step::Running(1),
        Step::Running(60),
        Step::Succeeded,
    ]);
    let config = OrchestratorConfig::default()
        .with_max_concurrency(TASKS as usize)
        .with_poll(poll);
    let env = common::env_with(mock, config);
    let sb = storyboard(TASKS);
    env.orch.add_storyboard(&sb).await.unwrap();
    let run = env
        .orch
        .create_run(RunSpec::new(sb.id, model()).with_concurrency(TASKS as usize))
        .await
        .unwrap();
    let region = Region::new(ALLOCATOR);
    let handle = env.orch.start(run.id).await.unwrap();
    // Every task submitted and polled once (at 2 s), and waiting for its next poll.
    tokio::time::sleep(Duration::from_secs(10)).await;
    let change = region.change();
    // Reallocations are counted in both (growth allocated, shrinking deallocated).
    let waiting = isize::try_from(change.bytes_allocated).unwrap()
        - isize::try_from(change.bytes_deallocated).unwrap();
    let mut query = TaskQuery::for_run(run.id);
    query.page = PageRequest::new(1, TASKS);
    let tasks = env.store.list_tasks(&query).await.unwrap().items;
    assert_eq!(tasks.len(), TASKS as usize);
    assert!(
        tasks
            .iter()
            .all(|t| t.status == TaskStatus::Running && t.progress == Some(1)),
        "every task waits for its second poll"
    );
    drop(tasks);
    let done = handle.wait().await.unwrap();
    assert_eq!(done.status, RunStatus::Completed);
    waiting / isize::try_from(TASKS).unwrap()
}

#[tokio::test(start_paused = true)]
async fn a_task_waiting_long_for_its_next_poll_lets_go_of_its_copy_of_the_task() {
    let kept = heap_per_task_waiting(PollPolicy::default().with_shelve_after(Duration::ZERO)).await;
    let shelved = heap_per_task_waiting(PollPolicy::default()).await;
    eprintln!("heap per task waiting: {kept} bytes kept in hand, {shelved} shelved");
    assert!(
        kept - shelved >= 1_000,
        "shelving saves {} bytes per task ({kept} → {shelved})",
        kept - shelved
    );
}
