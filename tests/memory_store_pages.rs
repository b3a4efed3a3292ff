//! What reading one page of a run's tasks costs the memory store, counted by an allocator that
//! tracks the bytes allocated. One test in this binary: the allocator counts every thread's
//! allocations, so nothing may run beside it.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::alloc::System;

use cineflow_core::mock::MockProvider;
use cineflow_core::{OrchestratorConfig, PageRequest, RunSpec, Store, TaskQuery, TaskStatus};
use stats_alloc::{INSTRUMENTED_SYSTEM, Region, StatsAlloc};

mod common;

use common::{model, ten_second_shots as storyboard};

#[global_allocator]
static ALLOCATOR: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

/// Bytes allocated to read the first page (1,000 pending tasks) of a run of `tasks` tasks.
async fn first_page_of(tasks: u32) -> usize {
    let env = common::env_with(
        MockProvider::new("mock").unwrap(),
        OrchestratorConfig::default(),
    );
    let sb = storyboard(tasks);
    env.orch.add_storyboard(&sb).await.unwrap();
    let run = env
        .orch
        .create_run(RunSpec::new(sb.id, model()))
        .await
        .unwrap();
    let mut query = TaskQuery::for_run(run.id);
    query.status = vec![TaskStatus::Pending];
    query.page = PageRequest::new(1, 1_000);
    let region = Region::new(ALLOCATOR);
    let page = env.store.list_tasks(&query).await.unwrap();
    let allocated = region.change().bytes_allocated;
    assert_eq!((page.items.len(), page.total), (1_000, u64::from(tasks)));
    allocated
}

#[tokio::test]
async fn a_page_of_a_large_run_costs_the_memory_store_about_as_much_as_a_page_of_a_small_one() {
    let small = first_page_of(1_000).await;
    let large = first_page_of(20_000).await;
    eprintln!("first page: {small} bytes allocated for 1,000 tasks, {large} for 20,000");
    // The large run's page also sorts 20,000 references (160 KB): a copy of every task of
    // the run would be twenty pages.
    assert!(
        large < 2 * small,
        "a page of 20,000 tasks allocated {large} bytes, of 1,000 tasks {small}"
    );
}
