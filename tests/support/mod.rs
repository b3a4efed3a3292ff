//! Shared by the process-level durability tests (`crash_resume`, `multi_worker`,
//! `server_postgres`): child processes, the orchestrator a child builds, the fake vendor, a
//! seeded random source, the test database, and the checks of what ended up on disk.
//!
//! A child process is the test binary itself, re-executed to run one `#[ignore]`d test (the
//! child's entry point) with its configuration as JSON in [`CHILD_ENV`].
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

pub(crate) mod postgres;

use std::collections::BTreeMap;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use cineflow::core::{
    LocalDirSink, ModelId, Orchestrator, OrchestratorConfig, Router, RunId, Store, Task, TaskQuery,
    TaskStatus,
};
use cineflow::providers::openai_compat::OpenAiCompat;
use cineflow::providers::sorahk::SoraHk;
use cineflow::providers::{ApiKeyBuilder, HttpBuilder};
use cineflow_testkit::{Config, FakeVendor, Faults, JobTiming, Ledger, Protocol};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

/// The environment variable holding a child's configuration (JSON).
pub(crate) const CHILD_ENV: &str = "CINEFLOW_CHILD";

/// The environment variable that fixes the seed of a test's random choices.
pub(crate) const SEED_ENV: &str = "CINEFLOW_TEST_SEED";

/// The logical model every run uses; it has one route per protocol.
pub(crate) const MODEL: &str = "sora2";

/// Segment duration routed to the OpenAI-compatible adapter (Sora.hk does not serve 4 s).
pub(crate) const OPENAI_SECS: u32 = 4;

/// Segment duration routed to the Sora.hk adapter (the OpenAI adapter does not serve 10 s).
pub(crate) const SORAHK_SECS: u32 = 10;

/// The seed of this test run: `CINEFLOW_TEST_SEED` if set, else from the clock. Printed, so a
/// failure can be replayed.
pub(crate) fn seed(test: &str) -> u64 {
    let seed = match std::env::var(SEED_ENV) {
        Ok(s) => s
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("{SEED_ENV}={s:?} is not an unsigned integer")),
        Err(_) => {
            let nanos = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap_or_default()
                .as_nanos();
            (nanos as u64) ^ u64::from(std::process::id()).rotate_left(32)
        }
    };
    eprintln!("{test}: seed {seed} (replay with {SEED_ENV}={seed})");
    seed
}

/// A small seeded random source (splitmix64): enough for kill delays and choices.
#[derive(Debug, Clone)]
pub(crate) struct Rng(u64);

impl Rng {
    /// A source seeded with `seed`.
    pub(crate) fn new(seed: u64) -> Self {
        Self(seed)
    }

    /// The next 64 random bits.
    pub(crate) fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `lo..=hi`.
    pub(crate) fn between(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next_u64() % (hi - lo + 1)
    }
}

/// How the fake vendor of a test behaves.
#[derive(Debug, Clone)]
pub(crate) struct VendorSetup {
    /// Seed of its random choices (job ids, durations, fault draws).
    pub(crate) seed: u64,
    /// Size of every video.
    pub(crate) video_bytes: u64,
    /// Download speed limit (0: none).
    pub(crate) download_bytes_per_sec: u64,
    /// Faults active from the start.
    pub(crate) faults: Faults,
}

/// Starts the fake vendor: jobs take 0.3–1.5 s, polls are hinted at 100 ms, and a repeated
/// idempotency key is a second paid job (so no duplicate submit is ever masked).
pub(crate) async fn fake_vendor(setup: VendorSetup) -> FakeVendor {
    let config = Config {
        seed: setup.seed,
        timing: JobTiming {
            secs: 0.9,
            jitter: 0.66,
            queued_fraction: 0.1,
        },
        video_bytes: setup.video_bytes,
        download_bytes_per_sec: setup.download_bytes_per_sec,
        poll_after_ms: Some(100),
        honor_idempotency_key: false,
        faults: setup.faults,
        ..Config::default()
    };
    FakeVendor::builder()
        .with_config(config)
        .start()
        .await
        .expect("the fake vendor starts")
}

/// What a child needs to reach the fake vendor (merged into its configuration).
pub(crate) fn vendor_json(fake: &FakeVendor) -> Value {
    json!({
        "openai_base_url": fake.base_url(Protocol::OpenAi),
        "sorahk_base_url": fake.base_url(Protocol::SoraHk),
        "key": fake.key(),
    })
}

/// A storyboard of `segments` segments with distinct prompts: odd segments last
/// [`OPENAI_SECS`] (served by the OpenAI-compatible route only), even ones [`SORAHK_SECS`]
/// (Sora.hk only), so one run exercises both protocols.
pub(crate) fn storyboard_json(segments: u32, tag: &str) -> String {
    let segs: Vec<Value> = (1..=segments)
        .map(|i| {
            json!({
                "segment_index": i,
                "prompt_text": format!("{tag} shot {i}: a lighthouse keeper climbs {i} steps at dusk."),
                "duration_seconds": if i % 2 == 1 { OPENAI_SECS } else { SORAHK_SECS },
                "resolution": "vertical",
                "is_pro": false,
            })
        })
        .collect();
    json!({ "segments": segs }).to_string()
}

/// The protocol a segment of [`storyboard_json`] is routed to.
pub(crate) fn protocol_of(segment_index: u32) -> Protocol {
    if segment_index % 2 == 1 {
        Protocol::OpenAi
    } else {
        Protocol::SoraHk
    }
}

/// The orchestrator settings of every child, as an application would load them from a file:
/// fast polls and retries, and a short reconciliation search for ambiguous submits.
pub(crate) fn orchestrator_config() -> OrchestratorConfig {
    serde_json::from_value(json!({
        "max_concurrency": 64,
        "poll": { "initial": 0.05, "min": 0.05, "max": 0.25, "growth": 1.5, "jitter": 0.1, "job_timeout": 120.0 },
        "retry_min_delay": 0.05,
        "retry_max_delay": 0.5,
        "reconcile": { "wait": 3.0, "interval": 0.2, "clock_skew": 5.0 },
        // A killed process's tasks are taken over 2 s after its last lease renewal.
        "lease": { "ttl": 2.0, "follow_interval": 0.2 },
    }))
    .expect("the orchestrator settings parse")
}

/// Builds the orchestrator the way an application does: the real OpenAI-compatible and
/// Sora.hk adapters (base URL and key from `cfg`), one logical model routed to both, the
/// given store and a [`LocalDirSink`] at `cfg.out_dir`.
pub(crate) fn orchestrator(cfg: &Value, store: Arc<dyn Store>) -> Orchestrator {
    builder(cfg, store)
        .build()
        .expect("the orchestrator builds")
}

/// [`orchestrator`] extracting the last frames of chained shots with `frames`.
pub(crate) fn orchestrator_with_frames(
    cfg: &Value,
    store: Arc<dyn Store>,
    frames: Arc<dyn cineflow::core::film::FrameExtractor>,
) -> Orchestrator {
    builder(cfg, store)
        .frames(frames)
        .build()
        .expect("the orchestrator builds")
}

/// The builder of [`orchestrator`].
fn builder(cfg: &Value, store: Arc<dyn Store>) -> cineflow::core::OrchestratorBuilder {
    let s = |k: &str| {
        cfg[k]
            .as_str()
            .unwrap_or_else(|| panic!("child configuration lacks {k:?}: {cfg}"))
            .to_owned()
    };
    let openai = OpenAiCompat::custom(s("openai_base_url"))
        .with_api_key(s("key"))
        .build()
        .expect("the OpenAI-compatible adapter builds");
    let sorahk = SoraHk::builder()
        .with_base_url(s("sorahk_base_url"))
        .with_api_key(s("key"))
        .build()
        .expect("the Sora.hk adapter builds");
    let model = ModelId::new(MODEL).unwrap();
    let router = Router::new()
        .route(model.clone(), Arc::new(openai), "sora-2")
        .route(model, Arc::new(sorahk), "sora2");
    Orchestrator::builder()
        .store(store)
        .sink(Arc::new(LocalDirSink::new(s("out_dir"))))
        .router(router)
        .config(orchestrator_config())
}

/// The configuration of this child process; panics (the child test fails) when the test was
/// not started by its parent.
pub(crate) fn child_config(parent: &str) -> Value {
    let raw = std::env::var(CHILD_ENV).unwrap_or_else(|_| {
        panic!(
            "{CHILD_ENV} is not set: this test is the child process of `{parent}` and only \
             runs when that test starts it"
        )
    });
    serde_json::from_str(&raw).unwrap_or_else(|e| panic!("{CHILD_ENV} is not JSON ({e}): {raw}"))
}

/// A multi-threaded tokio runtime for a child's `main`.
pub(crate) fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

/// A child process: this test binary running one ignored test, output in a log file. It is
/// killed when dropped, so a failing parent leaves nothing behind.
#[derive(Debug)]
pub(crate) struct ChildProc {
    /// A label for messages.
    pub(crate) label: String,
    /// Where its stdout and stderr go.
    pub(crate) log: PathBuf,
    /// When it was started.
    pub(crate) started: Instant,
    child: Option<Child>,
}

impl ChildProc {
    /// Starts `this_test_binary --ignored --exact <test> --nocapture --test-threads=1` with
    /// `cfg` in [`CHILD_ENV`].
    pub(crate) fn spawn(test: &str, label: impl Into<String>, cfg: &Value, log: PathBuf) -> Self {
        let out = File::create(&log).unwrap();
        let err = out.try_clone().unwrap();
        let exe = std::env::current_exe().unwrap();
        let child = Command::new(exe)
            .args([
                "--ignored",
                "--exact",
                test,
                "--nocapture",
                "--test-threads=1",
            ])
            .env(CHILD_ENV, cfg.to_string())
            .env("RUST_BACKTRACE", "1")
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start the child process {test}: {e}"));
        Self {
            label: label.into(),
            log,
            started: Instant::now(),
            child: Some(child),
        }
    }

    /// The OS process id.
    pub(crate) fn id(&self) -> u32 {
        self.child.as_ref().map_or(0, Child::id)
    }

    /// Its exit status if it has exited.
    pub(crate) fn try_wait(&mut self) -> Option<ExitStatus> {
        self.child.as_mut().and_then(|c| c.try_wait().unwrap())
    }

    /// Waits (polling, without blocking the runtime) until it exits or `timeout` passes.
    pub(crate) async fn wait_for(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let until = Instant::now() + timeout;
        loop {
            if let Some(status) = self.try_wait() {
                return Some(status);
            }
            if Instant::now() >= until {
                return None;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    /// SIGKILLs it (on Unix `Child::kill` sends SIGKILL) and reaps it. Returns `false` when it
    /// had already exited.
    pub(crate) fn kill(&mut self) -> bool {
        let Some(child) = self.child.as_mut() else {
            return false;
        };
        if child.try_wait().unwrap().is_some() {
            return false;
        }
        child.kill().unwrap();
        child.wait().unwrap();
        true
    }

    /// The last `max` bytes of its output, for failure messages.
    pub(crate) fn log_tail(&self, max: usize) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let start = text.len().saturating_sub(max);
        let start = (start..text.len())
            .find(|i| text.is_char_boundary(*i))
            .unwrap_or(text.len());
        text[start..].to_owned()
    }
}

impl Drop for ChildProc {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take()
            && c.try_wait().ok().flatten().is_none()
        {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// Every task of a run.
pub(crate) async fn tasks_of(store: &dyn Store, run: RunId) -> Vec<Task> {
    let page = store.list_tasks(&TaskQuery::for_run(run)).await.unwrap();
    assert_eq!(
        page.items.len() as u64,
        page.total,
        "one page holds the run"
    );
    page.items
}

/// Tasks per status, for progress lines.
pub(crate) fn status_counts(tasks: &[Task]) -> BTreeMap<&'static str, usize> {
    let mut m = BTreeMap::new();
    for t in tasks {
        *m.entry(t.status.as_str()).or_default() += 1;
    }
    m
}

/// `status count, …` for messages.
pub(crate) fn describe_counts(counts: &BTreeMap<&'static str, usize>) -> String {
    counts
        .iter()
        .map(|(s, n)| format!("{s} {n}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Every file under `dir`, recursively.
pub(crate) fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return out;
    };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(files_under(&p));
        } else {
            out.push(p);
        }
    }
    out.sort();
    out
}

/// Files under `dir` left by an unfinished write: `*.part` videos and `*.tmp` sidecars.
pub(crate) fn leftovers(dir: &Path) -> Vec<PathBuf> {
    files_under(dir)
        .into_iter()
        .filter(|p| {
            let name = p.file_name().and_then(|n| n.to_str()).unwrap_or_default();
            name.ends_with(".part") || name.ends_with(".tmp")
        })
        .collect()
}

/// The lowercase hex sha256 of a file.
pub(crate) fn sha256_file(path: &Path) -> String {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    format!("{:x}", Sha256::digest(&bytes))
}

/// What a run must show whatever happened to the processes running it:
///
/// - no prompt was paid twice, and each task has at most one vendor job, which is the one its
///   attempt records;
/// - an `interrupted` task has no vendor job at all (one that exists is found and adopted by
///   reconciliation);
/// - every completed task's file is where its artifact says, and its sha256 equals both the
///   artifact's and what the vendor served for that task's job;
/// - the videos under `out_dir` are exactly the completed tasks' files, and no partial file
///   (`*.part`, `*.tmp`) remains.
///
/// Returns the vendor job id of each task that has one.
pub(crate) fn check_paid_once_and_stored_as_served(
    tasks: &[Task],
    ledger: &Ledger,
    out_dir: &Path,
) -> BTreeMap<String, String> {
    check_paid_once_and_stored_as_served_on(tasks, ledger, out_dir, protocol_of)
}

/// [`check_paid_once_and_stored_as_served`] for a storyboard whose segment `i` goes to
/// `protocol_of(i)`.
pub(crate) fn check_paid_once_and_stored_as_served_on(
    tasks: &[Task],
    ledger: &Ledger,
    out_dir: &Path,
    protocol_of: impl Fn(u32) -> Protocol,
) -> BTreeMap<String, String> {
    let dup = ledger.duplicate_prompts();
    assert!(dup.is_empty(), "prompts paid more than once: {dup:?}");
    let mut job_of_task = BTreeMap::new();
    let mut videos = Vec::new();
    for t in tasks {
        let paid = ledger.jobs_for_prompt(&t.full_prompt);
        assert!(
            paid.len() <= 1,
            "task {} (segment {}) was paid {} times",
            t.id,
            t.segment_index,
            paid.len()
        );
        let recorded: Vec<&str> = t
            .attempts
            .iter()
            .filter_map(|a| a.job.as_ref().map(|j| j.vendor_job_id.as_str()))
            .collect();
        assert!(
            recorded.len() <= 1,
            "task {} records {} vendor jobs: {recorded:?}",
            t.id,
            recorded.len()
        );
        if t.status == TaskStatus::Interrupted {
            assert!(
                paid.is_empty(),
                "task {} ended interrupted ({:?}) although the vendor created job {} for it: \
                 reconciliation should have adopted it (issue 8)",
                t.id,
                t.error,
                paid[0].id
            );
        }
        if let Some(job) = recorded.first() {
            assert_eq!(
                paid.first().map(|j| j.id.as_str()),
                Some(*job),
                "task {}: the job it records is the one the vendor created for its prompt",
                t.id
            );
            assert_eq!(
                paid[0].protocol,
                protocol_of(t.segment_index),
                "task {} went to the wrong protocol",
                t.id
            );
            job_of_task.insert(t.id.to_string(), (*job).to_owned());
        }
        if t.status != TaskStatus::Completed {
            continue;
        }
        let job = recorded
            .first()
            .unwrap_or_else(|| panic!("completed task {} records no vendor job", t.id));
        let art = t
            .artifact
            .as_ref()
            .unwrap_or_else(|| panic!("completed task {} has no artifact", t.id));
        let path = PathBuf::from(&art.location);
        assert!(
            path.starts_with(out_dir),
            "task {}: {} is outside the output folder",
            t.id,
            path.display()
        );
        let on_disk = sha256_file(&path);
        let served = ledger
            .job(job)
            .and_then(|j| j.sha256.clone())
            .unwrap_or_else(|| panic!("the vendor never served job {job} of task {}", t.id));
        assert_eq!(
            on_disk, art.sha256,
            "task {}: the file differs from its record",
            t.id
        );
        assert_eq!(
            on_disk, served,
            "task {}: the file differs from what the vendor served for job {job}",
            t.id
        );
        videos.push(path);
    }
    videos.sort();
    let on_disk: Vec<PathBuf> = files_under(out_dir)
        .into_iter()
        .filter(|p| p.extension().is_some_and(|e| e == "mp4"))
        .collect();
    assert_eq!(
        on_disk, videos,
        "the videos on disk are exactly the completed tasks' files"
    );
    let left = leftovers(out_dir);
    assert!(left.is_empty(), "partial files remain: {left:?}");
    job_of_task
}
