//! `--workers N`: the run is worked on by N worker processes (this executable re-started in
//! worker mode, each an `Orchestrator::worker` on the shared `--store`), while this process
//! only creates the run and follows it through the store.

use std::io::{BufRead, BufReader, Read as _};
use std::process::{Child, Command, Stdio};

use cineflow::core::TaskStatus;
use cineflow::core::orchestrator::WorkerOptions;
use cineflow::core::store::CountingStore;
use sqlx::Connection as _;

use super::*;

/// The hidden first argument that turns this executable into a worker: then the worker's
/// index, the vendor's ready line (JSON), and the harness's own flags.
pub(crate) const WORKER_MODE: &str = "--as-loadtest-worker";

/// The share of `concurrency` worker `index` of `workers` works on.
fn share(concurrency: usize, workers: usize, index: usize) -> usize {
    concurrency / workers + usize::from(index < concurrency % workers)
}

/// Worker mode: claims the tasks of the shared store until its stdin closes, then prints its
/// store calls (one JSON line) and exits.
pub(crate) fn worker_main(mut args: impl Iterator<Item = String>) -> ExitCode {
    let (Some(index), Some(ready)) = (args.next(), args.next()) else {
        eprintln!("loadtest worker: needs an index and the vendor's ready line");
        return ExitCode::from(2);
    };
    let result = (|| -> Result<Value, BoxError> {
        let index: usize = number("worker index", &index)?;
        let ready: Value = serde_json::from_str(&ready)?;
        let o = Opts::parse(args)?.ok_or("no flags")?;
        let protocol = o.protocol.ok_or("--workers needs a fake vendor protocol")?;
        let rt = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()?;
        rt.block_on(async {
            let vendor = Vendor::Remote { ready };
            let store = Arc::new(CountingStore::new(open_store(&o).await?));
            let concurrency = share(o.concurrency, o.workers, index);
            let s = setup(
                &o,
                Some(&vendor),
                Arc::clone(&store) as Arc<dyn Store>,
                concurrency,
                None,
            )
            .await?;
            let _ = protocol;
            let worker = s.orch.worker(
                format!("loadtest-worker-{index}"),
                WorkerOptions::default()
                    .with_lease_ttl(o.lease_ttl)
                    .with_concurrency(concurrency),
            );
            // The parent closes stdin once the run has ended.
            tokio::task::spawn_blocking(|| {
                let mut sink = Vec::new();
                let _ = std::io::stdin().read_to_end(&mut sink);
            })
            .await?;
            worker.stop();
            worker.wait().await?;
            Ok(json!({ "worker": index, "store_calls": counts(&store) }))
        })
    })();
    match result {
        Ok(v) => {
            println!("{v}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("loadtest worker {index}: {e}");
            ExitCode::FAILURE
        }
    }
}

/// One worker process.
struct Worker {
    child: Child,
}

impl Worker {
    fn spawn(index: usize, vendor: &Vendor, flags: &[String]) -> Result<Self, BoxError> {
        let child = Command::new(std::env::current_exe()?)
            .arg(WORKER_MODE)
            .arg(index.to_string())
            .arg(vendor.ready_line()?)
            .args(flags)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(|e| format!("cannot start worker {index}: {e}"))?;
        Ok(Self { child })
    }

    /// Peak RSS (MiB) and CPU seconds, while it runs.
    fn usage(&self) -> (f64, f64) {
        let pid = self.child.id().to_string();
        (
            peak_rss_mb(&pid).unwrap_or(f64::NAN),
            cpu_secs(&pid).unwrap_or(f64::NAN),
        )
    }

    /// Closes its stdin and reads its report.
    fn finish(mut self) -> Result<Value, BoxError> {
        drop(self.child.stdin.take());
        let mut line = String::new();
        if let Some(out) = self.child.stdout.take() {
            BufReader::new(out).read_line(&mut line)?;
        }
        let status = self.child.wait()?;
        if !status.success() {
            return Err(format!("a worker exited with {status}").into());
        }
        Ok(serde_json::from_str(line.trim())?)
    }
}

/// The database's counters (`pg_stat_database`) and its server processes' CPU.
#[derive(Debug, Clone, Copy, Default)]
struct PgSnapshot {
    transactions: i64,
    tuples_written: i64,
    cpu_secs: f64,
}

async fn pg_snapshot(url: &str) -> Result<PgSnapshot, BoxError> {
    let mut conn = sqlx::PgConnection::connect(url).await?;
    let (transactions, tuples_written): (i64, i64) = sqlx::query_as(
        "SELECT (xact_commit + xact_rollback)::bigint, \
         (tup_inserted + tup_updated + tup_deleted)::bigint \
         FROM pg_stat_database WHERE datname = current_database()",
    )
    .fetch_one(&mut conn)
    .await?;
    conn.close().await?;
    Ok(PgSnapshot {
        transactions,
        tuples_written,
        cpu_secs: postgres_cpu_secs(),
    })
}

/// `utime + stime` of every process named `postgres` on this machine (the server and its
/// backends; every database's).
fn postgres_cpu_secs() -> f64 {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return f64::NAN;
    };
    let mut total = 0.0;
    for entry in dir.flatten() {
        let name = entry.file_name();
        let Some(pid) = name
            .to_str()
            .filter(|p| p.bytes().all(|b| b.is_ascii_digit()))
        else {
            continue;
        };
        let Ok(comm) = std::fs::read_to_string(format!("/proc/{pid}/comm")) else {
            continue;
        };
        if comm.trim() == "postgres" {
            total += cpu_secs(pid).unwrap_or(0.0);
        }
    }
    total
}

/// Runs the harness with `o.workers` worker processes.
pub(crate) fn run_workers(o: &Opts, vendor: &Vendor, flags: &[String]) -> Result<Value, BoxError> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(async {
        let store = open_store(o).await?;
        // Workers claim the tasks of every run in the database: it must hold no other work.
        let active = store
            .list_tasks(&cineflow::core::TaskQuery::default().with_status(vec![
                    TaskStatus::Pending,
                    TaskStatus::Submitting,
                    TaskStatus::Queued,
                    TaskStatus::Running,
                    TaskStatus::Downloading,
                ]))
            .await?
            .total;
        if active > 0 {
            return Err(format!(
                "--store {} holds {active} unfinished tasks of other runs, which the workers \
                 would claim too: give the harness a database of its own",
                o.store
            )
            .into());
        }
        let s = setup(o, Some(vendor), Arc::clone(&store), o.concurrency, None).await?;
        let sb = storyboard(o.tasks, o.protocol)?;
        s.orch.add_storyboard(&sb).await?;
        let run = s
            .orch
            .create_run(
                RunSpec::new(sb.id, s.model.clone())
                    .with_concurrency(o.concurrency.min(cineflow::core::run::MAX_CONCURRENCY)),
            )
            .await?;
        drop(sb);
        let pg_before = pg_snapshot(&o.store).await.ok();

        let started = Instant::now();
        let started_utc = time::OffsetDateTime::now_utc();
        let mut workers = Vec::with_capacity(o.workers);
        for i in 0..o.workers {
            workers.push(Worker::spawn(i, vendor, flags)?);
        }
        // Followed through the store, as any process sharing it would.
        let mut follows = 0u64;
        let counts = loop {
            tokio::time::sleep(Duration::from_millis(250)).await;
            follows += 1;
            let counts = store.run_counts(run.id).await?;
            if counts.all_terminal() {
                break counts;
            }
            if started.elapsed() > o.timeout {
                for w in workers {
                    let mut c = w.child;
                    let _ = c.kill();
                    let _ = c.wait();
                }
                return Err(format!(
                    "the run did not finish within --timeout-secs {:.0}",
                    o.timeout.as_secs_f64()
                )
                .into());
            }
        };
        let wall = started.elapsed().as_secs_f64();
        let usage: Vec<(f64, f64)> = workers.iter().map(Worker::usage).collect();
        let pg_cpu_at_end = postgres_cpu_secs();
        let vendor_usage = vendor.child_usage();
        let mut reports = Vec::new();
        for w in workers {
            reports.push(w.finish()?);
        }
        // After the workers' connections closed (their statistics are flushed then).
        tokio::time::sleep(Duration::from_millis(600)).await;
        let pg_after = pg_snapshot(&o.store).await.ok();

        let ledger = vendor.ledger(&reqwest::Client::new()).await?;
        measure::write_ledger(o.ledger_out.as_deref(), started_utc, &ledger)?;
        let counted = Counted::from_ledger(&ledger, started_utc, o.concurrency, &Default::default());
        let n = o.tasks as f64;
        let ideal = ideal_wall_secs(o.tasks, o.concurrency, o.job_secs);
        let mut calls = serde_json::Map::new();
        for r in &reports {
            if let Some(m) = r["store_calls"].as_object() {
                for (k, v) in m {
                    let sum = calls.get(k).and_then(Value::as_u64).unwrap_or(0)
                        + v.as_u64().unwrap_or(0);
                    calls.insert(k.clone(), json!(sum));
                }
            }
        }
        let store_calls: u64 = calls
            .iter()
            .filter(|(k, _)| k.as_str() != "claimed_tasks")
            .filter_map(|(_, v)| v.as_u64())
            .sum();
        let per_task = calls_per_task(&calls, n);
        let pg = match (pg_before, pg_after) {
            (Some(b), Some(a)) => Some((
                a.transactions - b.transactions,
                a.tuples_written - b.tuples_written,
                pg_cpu_at_end - b.cpu_secs,
            )),
            _ => None,
        };
        let opt = |x: Option<f64>| x.map_or(Value::Null, |v| json!(round(v, 3)));
        Ok(json!({
            "protocol": o.protocol.map_or("mock", Protocol::as_str),
            "vendor": vendor.kind(),
            "store": o.store.split("://").next().unwrap_or("?"),
            "workers": o.workers,
            "tasks": o.tasks,
            "concurrency": o.concurrency,
            "concurrency_per_worker": (0..o.workers).map(|i| share(o.concurrency, o.workers, i)).collect::<Vec<_>>(),
            "job_secs": o.job_secs,
            "lease_ttl_secs": o.lease_ttl.as_secs_f64(),
            "completed": counts.completed,
            "failed": counts.total - counts.completed,
            "wall_secs": round(wall, 3),
            "ideal_wall_secs": round(ideal, 3),
            "wall_ratio": round(wall / ideal, 4),
            "submits_per_task": round(counted.submits as f64 / n, 4),
            "submit_attempts_per_task": round(counted.submit_attempts as f64 / n, 4),
            "polls_per_task": round(counted.polls as f64 / n, 3),
            "downloads_per_task": round(counted.downloads as f64 / n, 4),
            "paid_twice": counted.paid_twice,
            "mean_detect_lag_secs": opt(counted.mean_lag),
            "max_detect_lag_secs": opt(counted.lags.last().copied()),
            "first_wave_submitted_secs": opt(counted.first_wave_created),
            "last_submitted_secs": opt(counted.last_created),
            "last_detected_secs": opt(counted.last_detected),
            "worker_peak_rss_mb": usage.iter().map(|u| round(u.0, 1)).collect::<Vec<_>>(),
            "worker_cpu_secs": usage.iter().map(|u| round(u.1, 2)).collect::<Vec<_>>(),
            "worker_store_calls": calls,
            "store_calls_per_task": round(store_calls as f64 / n, 3),
            "store_calls_per_task_by_method": per_task,
            "pg_transactions_per_task": pg.map(|p| round(p.0 as f64 / n, 3)),
            "pg_tuples_written_per_task": pg.map(|p| round(p.1 as f64 / n, 3)),
            "pg_cpu_secs": pg.map(|p| round(p.2, 2)),
            "follow_reads": follows,
            "vendor_peak_rss_mb": vendor_usage.map(|u| round(u.0, 1)),
            "vendor_cpu_secs": opt(vendor_usage.map(|u| u.1)),
            "nproc": std::thread::available_parallelism().map_or(0, usize::from),
        }))
    })
}

/// `calls` (`{"method": calls, …}`) divided by the `n` tasks.
pub(crate) fn calls_per_task(calls: &serde_json::Map<String, Value>, n: f64) -> Value {
    calls
        .iter()
        .map(|(k, v)| (k.clone(), json!(round(v.as_f64().unwrap_or(0.0) / n, 3))))
        .collect::<serde_json::Map<_, _>>()
        .into()
}

/// `{"method": calls, …}` for the methods called at least once, and `claimed_tasks`.
pub(crate) fn counts(store: &CountingStore) -> serde_json::Map<String, Value> {
    let mut out: serde_json::Map<String, Value> = store
        .counts()
        .into_iter()
        .filter(|(_, n)| *n > 0)
        .map(|(m, n)| (m.to_owned(), json!(n)))
        .collect();
    out.insert("claimed_tasks".into(), json!(store.claimed_tasks()));
    out
}
