//! The `fake-vendor` binary as its own process.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::process::Stdio;
use std::time::Duration;

use cineflow_testkit::Ledger;
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};
use tokio::time::timeout;

const BIN: &str = env!("CARGO_BIN_EXE_fake-vendor");

/// Spawns the binary with a piped stdin (kept open) and reads its ready line.
async fn spawn(args: &[&str]) -> (Child, Value) {
    let mut child = Command::new(BIN)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut lines = BufReader::new(stdout).lines();
    let line = timeout(Duration::from_secs(30), lines.next_line())
        .await
        .expect("no ready line within 30 s")
        .unwrap()
        .expect("stdout closed before the ready line");
    (child, serde_json::from_str(&line).unwrap())
}

#[tokio::test]
async fn the_binary_prints_a_ready_line_and_serves_the_ledger_and_faults() {
    let (mut child, ready) = spawn(&[
        "--port",
        "0",
        "--key",
        "bin-key",
        "--job-secs",
        "0.3",
        "--job-secs-jitter",
        "0.2",
        "--fault-accept-then-502",
        "first:1",
    ])
    .await;
    let port = ready["port"].as_u64().unwrap();
    assert!(port > 0);
    let openai = ready["openai_base_url"].as_str().unwrap();
    let sorahk = ready["sorahk_base_url"].as_str().unwrap();
    let ledger_url = ready["ledger_url"].as_str().unwrap();
    assert_eq!(openai, format!("http://127.0.0.1:{port}/openai/v1"));
    assert_eq!(sorahk, format!("http://127.0.0.1:{port}/sorahk/v1"));
    assert_eq!(
        ready["seedance_base_url"],
        format!("http://127.0.0.1:{port}/seedance/api/v3")
    );
    assert_eq!(ledger_url, format!("http://127.0.0.1:{port}/__ledger"));

    let c = common::client();
    let ledger: Ledger = c
        .get(ledger_url)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(ledger, Ledger::default());

    // The flag's fault: the first submit is accepted, then answered 502.
    let create = format!("{sorahk}/create");
    let r = common::post_json(&c, &create, Some("bin-key"), json!({"prompt": "p1"})).await;
    assert_eq!(r.status(), 502);
    let r = common::post_json(&c, &create, Some("bin-key"), json!({"prompt": "p2"})).await;
    assert_eq!(r.status(), 200);
    let wrong = common::post_json(&c, &create, Some("fake-key"), json!({"prompt": "p3"})).await;
    assert_eq!(wrong.status(), 401, "--key replaces the default key");

    // Faults at runtime.
    let faults_url = ready["faults_url"].as_str().unwrap();
    let r = c
        .post(faults_url)
        .json(&json!({"rate_limit": {"first": 1, "on": ["submit"]}}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let r = common::post_json(
        &c,
        &format!("{openai}/videos"),
        Some("bin-key"),
        json!({"prompt": "o"}),
    )
    .await;
    assert_eq!(r.status(), 429);

    let ledger: Ledger = c
        .get(ledger_url)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(ledger.sorahk.submits, 2);
    assert_eq!(ledger.sorahk.accepted_then_502, 1);
    assert_eq!(ledger.openai.rate_limited, 1);
    assert_eq!(ledger.paid_jobs().len(), 2);
    let secs = ledger.jobs[0].job_secs;
    assert!((0.24..=0.36).contains(&secs), "jittered duration {secs}");

    let r = c
        .post(ready["reset_url"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let ledger: Ledger = c
        .get(ledger_url)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(ledger.jobs.is_empty());

    child.kill().await.unwrap();
}

#[tokio::test]
async fn the_binary_exits_when_its_stdin_closes() {
    let (mut child, _) = spawn(&["--job-secs", "1"]).await;
    drop(child.stdin.take());
    let status = timeout(Duration::from_secs(10), child.wait())
        .await
        .expect("still running 10 s after stdin closed")
        .unwrap();
    assert!(status.success(), "{status}");
}

#[cfg(unix)]
#[tokio::test]
async fn the_binary_exits_cleanly_on_sigterm() {
    let (mut child, ready) = spawn(&[]).await;
    let pid = ready["pid"].as_u64().unwrap().to_string();
    let killed = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap();
    assert!(killed.success());
    let status = timeout(Duration::from_secs(10), child.wait())
        .await
        .expect("still running 10 s after SIGTERM")
        .unwrap();
    assert!(status.success(), "{status}");
}

#[tokio::test]
async fn the_binary_refuses_bad_flags() {
    let out = Command::new(BIN)
        .args(["--fault-stall", "3.5"])
        .stdin(Stdio::null())
        .output()
        .await
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("stall"));
}
