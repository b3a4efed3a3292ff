//! What one task in flight holds in memory, guarded: 100,000 tasks in flight in one process
//! hold 100,000 of these futures, so each kilobyte here is 100 MB there.
//!
//! A future is as large as its largest state, whichever state it is in. The phases of a task
//! (submit, reconciliation, polling, download) are boxed while they run (`Lifecycle::drive`),
//! and the rare steps of polling (a failure, a cancel, a retry) are boxed too, so a task that
//! waits between polls — what a task in flight does nearly all its life — holds its own small
//! future and the polling state only. The bounds below are for debug builds (release ones
//! are smaller). In a debug build, before the boxing, a task's future took 11,240 bytes and its
//! polling state 2,160; after it, 2,024 and 1,080. The polling state grew to 1,400 with status
//! sweeps and callback confirmations, and came back to 1,216 when it stopped holding a copy of
//! the polled job (its strings, too, were held by every task in flight).

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

use super::super::worker::{self, Claimed};
use super::super::{Inner, Orchestrator};
use super::*;
use crate::mock::MockProvider;
use crate::orchestrator::OrchestratorConfig;
use crate::router::Router;
use crate::run::RunSpec;
use crate::storyboard::Storyboard;

/// An orchestrator on the mock with one claimed task of a one-shot run.
async fn claimed() -> (Orchestrator, Run, Task) {
    claimed_on(
        MockProvider::new("mock").unwrap(),
        OrchestratorConfig::default(),
    )
    .await
}

/// An orchestrator with `config` on `mock`, with one claimed task of a one-shot run.
pub(super) async fn claimed_on(
    mock: MockProvider,
    config: OrchestratorConfig,
) -> (Orchestrator, Run, Task) {
    let model = ModelId::new("sora2").unwrap();
    let orch = Orchestrator::builder()
        .router(Router::new().route(model.clone(), Arc::new(mock), "mock"))
        .config(config)
        .build()
        .unwrap();
    let sb = Storyboard::from_json(
        r#"{"segments":[{"segment_index":1,"prompt_text":"a lighthouse","duration_seconds":10}]}"#,
    )
    .unwrap();
    orch.add_storyboard(&sb).await.unwrap();
    let run = orch.create_run(RunSpec::new(sb.id, model)).await.unwrap();
    let mut tasks = orch
        .inner
        .store
        .claim_tasks("footprint", Some(run.id), 1, Duration::from_secs(30))
        .await
        .unwrap();
    let task = tasks.pop().unwrap();
    (orch, run, task)
}

pub(super) fn slot(inner: &Inner) -> RunSlot {
    RunSlot::new(Arc::new(Semaphore::new(1)), Arc::clone(&inner.global), None)
}

/// Declares `$life`, a `Lifecycle` of `$task` (claimed by `claimed_on`) in a run slot of its
/// own, and what it borrows.
macro_rules! lifecycle {
    ($life:ident, $inner:expr, $run:expr, $task:expr) => {
        let ctx = RunCtx::new($inner, $run).await.unwrap();
        let slot = $crate::orchestrator::exec::footprint::slot($inner);
        let cancel = CancellationToken::new();
        let hook = $inner.hooks.follow($task.id);
        let $life = Lifecycle {
            inner: $inner,
            cancel: &cancel,
            ctx: &ctx,
            slot: &slot,
            hook: &hook,
        };
    };
}
pub(super) use lifecycle;

#[tokio::test]
async fn a_task_in_flight_is_a_future_of_at_most_three_kilobytes() {
    let (orch, run, task) = claimed().await;
    let inner = &orch.inner;
    let ctx = RunCtx::new(inner, &run).await.unwrap();
    let slot = slot(inner);
    let held = Claimed::new(task.clone(), task.lease.clone().unwrap());
    let ttl = Duration::from_secs(30);
    let future = worker::run_leased(inner, held, ttl, &slot, CancellationToken::new(), &ctx);
    let size = std::mem::size_of_val(&future);
    assert!(size <= 3 * 1024, "a task's future takes {size} bytes");
}

#[tokio::test]
async fn a_task_waiting_between_polls_holds_at_most_one_and_a_quarter_kilobytes_more() {
    let (orch, run, mut task) = claimed().await;
    let inner = &orch.inner;
    lifecycle!(life, inner, &run, &task);
    let mut clock = AttemptClock::new();
    let polling = std::mem::size_of_val(&life.poll_until_ready(&mut task, &mut clock));
    assert!(polling <= 1280, "polling takes {polling} bytes");
    // The rarer phases are larger; boxed, they cost only while they run.
    let submit = std::mem::size_of_val(&life.submit(&mut task));
    assert!(submit > polling, "submit {submit} bytes, polling {polling}");
    let drive = std::mem::size_of_val(&life.drive(&mut task));
    assert!(drive < 1024, "drive takes {drive} bytes");
}
