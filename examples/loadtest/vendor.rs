//! The fake vendor the harness runs against: in this process or in a child process.

use std::io::{BufRead, BufReader};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::time::{Duration, Instant};

use cineflow_testkit::{Endpoint, FakeVendor, Faults, Ledger, Protocol, RateLimitFault};
use serde_json::Value;

use super::*;

/// The fake vendor's flags ([`cineflow_testkit::cli`]: this executable's vendor mode and the
/// `fake-vendor` binary are the same command line).
pub(crate) fn vendor_flags(o: &Opts) -> Vec<String> {
    let mut flags = vec![
        "--port".into(),
        "0".into(),
        "--job-secs".into(),
        o.job_secs.to_string(),
        "--job-secs-jitter".into(),
        o.job_jitter.to_string(),
        "--video-bytes".into(),
        o.video_bytes.to_string(),
        "--poll-after-ms".into(),
        o.poll_after_ms.map_or("off".into(), |ms| ms.to_string()),
    ];
    if o.callback_loss > 0.0 {
        flags.extend(["--fault-callback-lost".into(), o.callback_loss.to_string()]);
    }
    if o.rate_limit_rate > 0.0 {
        flags.extend([
            "--fault-rate-limit".into(),
            o.rate_limit_rate.to_string(),
            "--fault-rate-limit-on".into(),
            "submit,poll,list".into(),
            "--retry-after-ms".into(),
            o.retry_after_ms.to_string(),
        ]);
    }
    flags
}

/// The fake vendor's faults (`--rate-limit-rate`), for the in-process vendor.
pub(crate) fn vendor_faults(o: &Opts) -> Faults {
    let mut faults = Faults::none();
    faults.rate_limit = RateLimitFault {
        probability: o.rate_limit_rate,
        on: vec![Endpoint::Submit, Endpoint::Poll, Endpoint::List],
        retry_after_ms: o.retry_after_ms,
        ..RateLimitFault::default()
    };
    faults.callbacks.lost = cineflow_testkit::Trigger::probability(o.callback_loss);
    faults
}

/// A running fake vendor, wherever it runs.
pub(crate) enum Vendor {
    /// A child process; dropping `stdin` tells it to exit.
    Child {
        child: Child,
        stdin: Option<ChildStdin>,
        ready: Value,
        /// `process` (this executable) or `process: fake-vendor binary`.
        kind: &'static str,
    },
    /// Started by another process (a worker's view of its parent's vendor): its ready line.
    Remote { ready: Value },
    /// In this process, on its own runtime.
    InProcess {
        fake: FakeVendor,
        runtime: tokio::runtime::Runtime,
    },
}

impl Vendor {
    pub(crate) fn start(o: &Opts) -> Result<Self, BoxError> {
        let kind = match &o.vendor {
            VendorMode::Binary(_) => "process: fake-vendor binary",
            _ => "process",
        };
        let mut cmd = match &o.vendor {
            VendorMode::InProcess => {
                let runtime = tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(2)
                    .thread_name("fake-vendor")
                    .enable_all()
                    .build()?;
                let builder = FakeVendor::builder()
                    .with_job_secs(o.job_secs)
                    .with_job_jitter(o.job_jitter)
                    .with_video_bytes(o.video_bytes)
                    .with_poll_after_ms(o.poll_after_ms)
                    .with_faults(vendor_faults(o));
                let fake = runtime.block_on(builder.start())?;
                return Ok(Vendor::InProcess { fake, runtime });
            }
            VendorMode::Process => {
                let mut c = Command::new(std::env::current_exe()?);
                c.arg(VENDOR_MODE);
                c
            }
            VendorMode::Binary(path) => Command::new(path),
        };
        let mut child = cmd
            .args(vendor_flags(o))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(|e| match &o.vendor {
                VendorMode::Binary(path) => format!("cannot start the fake vendor {path}: {e}"),
                _ => format!("cannot start the fake vendor (this executable): {e}"),
            })?;
        let stdin = child.stdin.take();
        let mut line = String::new();
        if let Some(out) = child.stdout.take() {
            BufReader::new(out).read_line(&mut line)?;
        }
        let ready: Value = match serde_json::from_str(line.trim()) {
            Ok(v @ Value::Object(_)) => v,
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!("the fake vendor did not report ready (got {line:?})").into());
            }
        };
        Ok(Vendor::Child {
            child,
            stdin,
            ready,
            kind,
        })
    }

    pub(crate) fn kind(&self) -> &'static str {
        match self {
            Vendor::Child { kind, .. } => kind,
            Vendor::Remote { .. } => "process (another's)",
            Vendor::InProcess { .. } => "in-process",
        }
    }

    /// The ready line a child vendor printed (its URLs), for worker processes.
    pub(crate) fn ready_line(&self) -> Result<String, BoxError> {
        match self {
            Vendor::Child { ready, .. } | Vendor::Remote { ready } => Ok(ready.to_string()),
            Vendor::InProcess { .. } => Err("an in-process vendor has no ready line".into()),
        }
    }

    pub(crate) fn base_url(&self, p: Protocol) -> Result<String, BoxError> {
        match self {
            Vendor::InProcess { fake, .. } => Ok(fake.base_url(p)),
            Vendor::Child { ready, .. } | Vendor::Remote { ready } => {
                let key = match p {
                    Protocol::OpenAi => "openai_base_url",
                    Protocol::SoraHk => "sorahk_base_url",
                    Protocol::Seedance => "seedance_base_url",
                    Protocol::Kling => "kling_base_url",
                    Protocol::Wan => "wan_base_url",
                    Protocol::Minimax => "minimax_base_url",
                    Protocol::Fal => "fal_base_url",
                    Protocol::OpenRouter => "openrouter_base_url",
                };
                ready[key]
                    .as_str()
                    .map(str::to_owned)
                    .ok_or_else(|| format!("the ready line has no {key}").into())
            }
        }
    }

    /// The fal platform API's base URL (the request list).
    pub(crate) fn fal_platform_url(&self) -> Result<String, BoxError> {
        match self {
            Vendor::InProcess { fake, .. } => Ok(fake.fal_platform_url()),
            Vendor::Child { ready, .. } | Vendor::Remote { ready } => ready["fal_platform_url"]
                .as_str()
                .map(str::to_owned)
                .ok_or_else(|| "the ready line has no fal_platform_url".into()),
        }
    }

    /// The URL of the fal webhook keys.
    pub(crate) fn fal_jwks_url(&self) -> Result<String, BoxError> {
        match self {
            Vendor::InProcess { fake, .. } => Ok(fake.fal_jwks_url()),
            Vendor::Child { ready, .. } | Vendor::Remote { ready } => ready["fal_jwks_url"]
                .as_str()
                .map(str::to_owned)
                .ok_or_else(|| "the ready line has no fal_jwks_url".into()),
        }
    }

    pub(crate) fn key(&self) -> String {
        match self {
            Vendor::InProcess { fake, .. } => fake.key().to_owned(),
            // Both vendor modes start with the default key.
            Vendor::Child { .. } | Vendor::Remote { .. } => "fake-key".to_owned(),
        }
    }

    /// The child's peak RSS (MiB) and CPU seconds, while it is alive.
    pub(crate) fn child_usage(&self) -> Option<(f64, f64)> {
        match self {
            Vendor::Child { child, .. } => {
                let pid = child.id().to_string();
                Some((peak_rss_mb(&pid).ok()?, cpu_secs(&pid).ok()?))
            }
            Vendor::Remote { .. } | Vendor::InProcess { .. } => None,
        }
    }

    pub(crate) async fn ledger(&self, http: &reqwest::Client) -> Result<Ledger, BoxError> {
        match self {
            Vendor::InProcess { fake, .. } => Ok(fake.ledger()),
            Vendor::Child { ready, .. } | Vendor::Remote { ready } => {
                let url = ready["ledger_url"]
                    .as_str()
                    .ok_or("the ready line has no ledger_url")?;
                let body = http
                    .get(url)
                    .send()
                    .await?
                    .error_for_status()?
                    .bytes()
                    .await?;
                Ok(serde_json::from_slice(&body)?)
            }
        }
    }

    pub(crate) fn stop(self) {
        match self {
            Vendor::Child {
                mut child,
                mut stdin,
                ..
            } => {
                drop(stdin.take());
                let deadline = Instant::now() + Duration::from_secs(5);
                loop {
                    match child.try_wait() {
                        Ok(Some(_)) => break,
                        Ok(None) if Instant::now() < deadline => {
                            std::thread::sleep(Duration::from_millis(20));
                        }
                        _ => {
                            let _ = child.kill();
                            let _ = child.wait();
                            break;
                        }
                    }
                }
            }
            Vendor::Remote { .. } => {}
            Vendor::InProcess { fake, runtime } => {
                runtime.block_on(fake.shutdown());
                runtime.shutdown_timeout(Duration::from_secs(2));
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Process statistics (Linux /proc).
