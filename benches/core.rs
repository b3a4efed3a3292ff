//! Criterion benches of the core: prompt composition, storyboard parsing and orchestrator
//! overhead per task (MockProvider + MemoryStore + a sink that only hashes).
//!
//! ```text
//! cargo bench --bench core
//! ```
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use cineflow_core::mock::{MockProvider, Step};
use cineflow_core::sink::{ArtifactKey, ArtifactSink, StoredVideo};
use cineflow_core::{
    ByteStream, Character, MemoryStore, ModelId, Orchestrator, OrchestratorConfig, Router, RunSpec,
    Storyboard,
};
use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use futures::StreamExt;
use sha2::{Digest, Sha256};

fn prompt(c: &mut Criterion) {
    let characters = vec![
        Character {
            name: "Alice".into(),
            id: Some("@alice".into()),
        },
        Character {
            name: "Bob".into(),
            id: Some("@bob".into()),
        },
        Character {
            name: "小美".into(),
            id: Some("@xiaomei".into()),
        },
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
    g.finish();
}

/// Hashes and drops the bytes: measures the orchestrator, not the disk.
#[derive(Debug)]
struct HashingSink;

#[async_trait]
impl ArtifactSink for HashingSink {
    async fn put_video(
        &self,
        _key: &ArtifactKey,
        mut body: ByteStream,
    ) -> cineflow_core::Result<StoredVideo> {
        let mut h = Sha256::new();
        let mut n = 0u64;
        while let Some(chunk) = body.next().await {
            let chunk = chunk?;
            n += chunk.len() as u64;
            h.update(&chunk);
        }
        Ok(StoredVideo {
            location: "memory".into(),
            sha256: format!("{:x}", h.finalize()),
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

fn orchestrator(c: &mut Criterion) {
    const TASKS: usize = 1000;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let json = storyboard_json(TASKS);
    let mut g = c.benchmark_group("orchestrator");
    g.throughput(Throughput::Elements(TASKS as u64));
    g.sample_size(10);
    g.bench_function("1000 tasks end to end (mock vendor, memory store)", |b| {
        b.iter_batched(
            || {
                let model = ModelId::new("sora2").unwrap();
                let mock = MockProvider::new("mock")
                    .unwrap()
                    .with_timeline(vec![Step::Succeeded]);
                let mut config = OrchestratorConfig {
                    max_concurrency: TASKS,
                    ..OrchestratorConfig::default()
                };
                config.poll.initial = Duration::ZERO;
                config.poll.min = Duration::ZERO;
                config.poll.jitter = 0.0;
                let orch = Orchestrator::builder()
                    .store(Arc::new(MemoryStore::new()))
                    .sink(Arc::new(HashingSink))
                    .router(Router::new().route(model.clone(), Arc::new(mock), "mock"))
                    .config(config)
                    .build()
                    .unwrap();
                let sb = Storyboard::from_json(&json).unwrap();
                let run = rt.block_on(async {
                    orch.add_storyboard(&sb).await.unwrap();
                    orch.create_run(RunSpec::new(sb.id, model).concurrency(TASKS))
                        .await
                        .unwrap()
                });
                (orch, run.id)
            },
            |(orch, run_id)| {
                rt.block_on(async {
                    let run = orch.start(run_id).await.unwrap().wait().await.unwrap();
                    assert_eq!(run.counts.completed, TASKS as u64);
                })
            },
            BatchSize::PerIteration,
        )
    });
    g.finish();
}

criterion_group!(benches, prompt, parse, orchestrator);
criterion_main!(benches);
