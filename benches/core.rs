//! Criterion benches of the core: prompt composition, storyboard parsing (1,000 segments) and
//! orchestrator overhead per task (10,000 tasks: MockProvider + MemoryStore + a sink that
//! drains each video and keeps nothing).
//!
//! ```text
//! cargo bench --bench core
//! ```
//!
//! The orchestrator bench reports the time **per task**: each sample runs whole runs of
//! 10,000 tasks (creating the orchestrator, storyboard and run is not timed) and divides the
//! time from `start` to the finished run by the number of tasks. Everything the orchestrator
//! does for a task is in it — routing, the five store writes, events, the mock's submit, poll
//! and download, streaming the 4 KiB video into the sink — but no network, disk or hashing.
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use cineflow_core::mock::{MockProvider, Step};
use cineflow_core::sink::{ArtifactKey, ArtifactSink, StoredVideo};
use cineflow_core::{
    ByteStream, Character, MemoryStore, ModelId, Orchestrator, OrchestratorConfig, Router, RunSpec,
    Storyboard,
};
use criterion::{Criterion, SamplingMode, Throughput, criterion_group, criterion_main};
use futures::StreamExt;

fn prompt(c: &mut Criterion) {
    let characters = vec![
        Character::new("Alice").with_id("@alice".into()),
        Character::new("Bob").with_id("@bob".into()),
        Character::new("小美").with_id("@xiaomei".into()),
    ];
    let text = "Close up of Alice(@alice ) smiling at Bob while 小美走进 the room. \"Alice!\" she says, mail a@b.com.";
    let props = vec!["Books".to_owned(), "Podium".to_owned()];
    c.bench_function("full_prompt/3 characters", |b| {
        b.iter(|| {
            cineflow_core::prompt::compose_full_prompt(
                std::hint::black_box(text),
                &characters,
                Some("Room"),
                &props,
                Some("Character introduction."),
            )
        })
    });
}

fn storyboard_json(n: usize) -> String {
    let segs: Vec<String> = (1..=n)
        .map(|i| {
            format!(
                r#"{{"segment_index":{i},"prompt_text":"Shot {i}: Alice walks through the neon city.","asset":{{"characters":[{{"name":"Alice","id":"@alice"}}],"scene":"City","props":["Umbrella"]}},"duration_seconds":10,"resolution":"horizontal","director_intent":"Keep it moody."}}"#
            )
        })
        .collect();
    format!(r#"{{"segments":[{}]}}"#, segs.join(","))
}

fn parse(c: &mut Criterion) {
    let json = storyboard_json(1000);
    let mut g = c.benchmark_group("storyboard");
    g.throughput(Throughput::Bytes(json.len() as u64));
    g.bench_function("parse 1000 segments", |b| {
        b.iter(|| Storyboard::from_json(std::hint::black_box(&json)).unwrap())
    });
    // The path-aware walk alone (a `Value` tree, then the walk): what `from_json` costs on a
    // document with a violation, and what it cost on every document before the typed path.
    g.bench_function("parse 1000 segments (Value + path-aware walk)", |b| {
        b.iter(|| {
            let v: serde_json::Value = serde_json::from_str(std::hint::black_box(&json)).unwrap();
            Storyboard::from_value(&v).unwrap()
        })
    });
    g.finish();
}

/// Drains and drops the bytes: measures the orchestrator, not sha256 or the disk.
#[derive(Debug)]
struct DrainSink;

#[async_trait]
impl ArtifactSink for DrainSink {
    async fn put_video(
        &self,
        _key: &ArtifactKey,
        mut body: ByteStream,
    ) -> cineflow_core::Result<StoredVideo> {
        let mut n = 0u64;
        while let Some(chunk) = body.next().await {
            n += chunk?.len() as u64;
        }
        Ok(StoredVideo {
            location: "memory".into(),
            sha256: "0".repeat(64),
            size_bytes: n,
        })
    }

    async fn put_sidecar(
        &self,
        _key: &ArtifactKey,
        _sidecar: &serde_json::Value,
    ) -> cineflow_core::Result<String> {
        Ok("memory".into())
    }
}

/// Tasks per run in the orchestrator bench.
const TASKS: usize = 10_000;

/// An orchestrator whose only provider answers at once (succeeded on the first poll, no poll
/// wait), and a created run of `TASKS` tasks, all allowed in flight at once.
fn orchestrator_and_run(
    rt: &tokio::runtime::Runtime,
    json: &str,
) -> (Orchestrator, cineflow_core::RunId) {
    let model = ModelId::new("sora2").unwrap();
    let mock = MockProvider::new("mock")
        .unwrap()
        .with_timeline(vec![Step::Succeeded]);
    let mut config = OrchestratorConfig::default().with_max_concurrency(TASKS);
    config.poll.initial = Duration::ZERO;
    config.poll.min = Duration::ZERO;
    config.poll.jitter = 0.0;
    let orch = Orchestrator::builder()
        .store(Arc::new(MemoryStore::new()))
        .sink(Arc::new(DrainSink))
        .router(Router::new().route(model.clone(), Arc::new(mock), "mock"))
        .config(config)
        .build()
        .unwrap();
    let sb = Storyboard::from_json(json).unwrap();
    let run = rt.block_on(async {
        orch.add_storyboard(&sb).await.unwrap();
        orch.create_run(RunSpec::new(sb.id, model).with_concurrency(TASKS))
            .await
            .unwrap()
    });
    (orch, run.id)
}

fn orchestrator(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let json = storyboard_json(TASKS);
    let mut g = c.benchmark_group("orchestrator");
    g.throughput(Throughput::Elements(1));
    g.sampling_mode(SamplingMode::Flat);
    g.sample_size(10);
    g.measurement_time(Duration::from_secs(10));
    g.bench_function(
        "per task, 10000 tasks end to end (mock vendor, memory store)",
        |b| {
            // One iteration is one task: `iters` tasks are run as whole runs of TASKS tasks.
            b.iter_custom(|iters| {
                let runs = (iters as usize).div_ceil(TASKS).max(1);
                let mut timed = Duration::ZERO;
                for _ in 0..runs {
                    let (orch, run_id) = orchestrator_and_run(&rt, &json);
                    let start = Instant::now();
                    let run = rt.block_on(async {
                        orch.start(run_id).await.unwrap().wait().await.unwrap()
                    });
                    timed += start.elapsed();
                    assert_eq!(run.counts.completed, TASKS as u64);
                    // Dropped untimed: freeing 10,000 stored tasks is not per-task overhead.
                    drop(orch);
                }
                timed.mul_f64(iters as f64 / (runs * TASKS) as f64)
            })
        },
    );
    g.finish();
}

criterion_group!(benches, prompt, parse, orchestrator);
criterion_main!(benches);
