//! The `fake-vendor` command line: the fake OpenAI Videos + Sora.hk + Seedance + Wan +
//! MiniMax server as its own process.
//! The `fake-vendor` binary is [`run`]; a harness can re-start itself as the vendor by calling
//! [`run`] too (as `examples/loadtest.rs` does), so both speak exactly the same flags and
//! ready line.
//!
//! ```text
//! cargo run -p cineflow-testkit --bin fake-vendor -- --port 0 --key K --job-secs 5 --job-secs-jitter 0.2
//! ```
//!
//! When ready it prints ONE line of JSON on stdout:
//! `{"port":…,"url":…,"openai_base_url":…,"sorahk_base_url":…,"seedance_base_url":…,"kling_base_url":…,"wan_base_url":…,"minimax_base_url":…,"fal_base_url":…,"fal_platform_url":…,"fal_jwks_url":…,"openrouter_base_url":…,"ledger_url":…,"faults_url":…,"reset_url":…,"pid":…}`
//! and serves until SIGTERM, SIGINT or the end of stdin (so a test harness that dies does
//! not leave it running: spawn it with a piped stdin and keep the pipe open; pass
//! `--ignore-stdin` when stdin is not a pipe you control). Control endpoints: `GET /__ledger`,
//! `GET|POST /__faults` (the body replaces every fault), `POST /__reset`.
//!
//! Flags (all optional):
//!
//! | flag | meaning (default) |
//! |---|---|
//! | `--port N` | listen on 127.0.0.1:N (0 = any free port) |
//! | `--key K` | accepted API key (`fake-key`) |
//! | `--seed N` | seed of every random choice (42) |
//! | `--job-secs F` | mean job duration in seconds (5) |
//! | `--job-secs-jitter F` | relative spread: uniform in `secs × (1 ± F)` (0) |
//! | `--queued-fraction F` | share of a job spent queued (0.1) |
//! | `--video-bytes N` | size of every video (65536) |
//! | `--download-bytes-per-sec N` | video bodies sent at most this fast (0 = unlimited) |
//! | `--poll-after-ms N\|off` | OpenAI `openai-poll-after-ms` header (1000) |
//! | `--openai-asset-ttl-secs N` | OpenAI content lifetime after completion (3600) |
//! | `--blob-url-ttl-secs N` | Sora.hk blob URL lifetime (129600) |
//! | `--sorahk-balance N` | Sora.hk balance in cents (1000000000) |
//! | `--sorahk-status-is-200` | Sora.hk error envelopes 401/1001/1012 with HTTP 200 |
//! | `--honor-idempotency-key` | OpenAI: a repeated `Idempotency-Key` returns the first video |
//! | `--faults JSON` | the whole `Faults` JSON (applied before the `--fault-…` flags) |
//! | `--fault-rate-limit T` | 429s; `T` is a probability (`0.1`) or `first:N` |
//! | `--fault-rate-limit-on LIST` | comma list of submit,poll,download,list (submit,poll) |
//! | `--retry-after-ms N` | `retry-after-ms` of the 429s (1000) |
//! | `--fault-server-error T` | 5xx answers (no job on submits) |
//! | `--fault-server-error-on LIST` | (submit,poll) |
//! | `--fault-server-error-status N` | 500–599 (503) |
//! | `--fault-stall T` | delayed answers |
//! | `--fault-stall-on LIST` | (submit,poll,download) |
//! | `--fault-stall-ms N` | delay (30000) |
//! | `--fault-truncate-download T` | downloads cut short |
//! | `--fault-truncate-keep F` | share of bytes sent (0.5) |
//! | `--fault-expire-urls T` | Sora.hk blob and Seedance TOS URLs answer 403 |
//! | `--fault-accept-then-502 T` | jobs created, then 502 |
//! | `--fault-fail-jobs T` | jobs end failed |
//! | `--fault-fail-kind K` | `content_policy` or `retryable` (content_policy) |
//! | `--fault-list-lag-ms N` | jobs listed only N ms after creation (0) |
//! | `--fault-callback-lost T` | callbacks never sent |
//! | `--fault-callback-duplicated T` | callbacks sent twice |
//! | `--fault-callback-delayed T` | callbacks sent late |
//! | `--fault-callback-delay-ms N` | how late (5000) |
//! | `--fault-callback-forged T` | a forged callback (no token / wrong signature) sent at submit |
//! | `--no-callbacks` | never call a submit's callback URL back |
//! | `--openrouter-webhook-secret S` | OpenRouter webhook signing secret (`fake-openrouter-webhook-secret`) |
//! | `--ignore-stdin` | do not exit when stdin closes |

use std::io::{Read, Write};
use std::process::ExitCode;

use crate::{Config, Endpoint, FakeVendor, Faults, Protocol, Trigger};

/// Parsed command line.
#[derive(Debug)]
struct Args {
    port: u16,
    config: Config,
    watch_stdin: bool,
}

/// Runs the fake vendor with these command-line flags (without the program name) until
/// SIGTERM, SIGINT or the end of stdin; prints the help for `--help`. Flag errors exit with 2,
/// failures with 1; everything is reported on stderr as `fake-vendor: …`.
pub fn run(args: impl Iterator<Item = String>) -> ExitCode {
    let args = match parse(args) {
        Ok(Some(a)) => a,
        Ok(None) => {
            print_help();
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("fake-vendor: {e}\n(run with --help for the flags)");
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("fake-vendor: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(serve(args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("fake-vendor: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn serve(args: Args) -> Result<(), Box<dyn std::error::Error>> {
    let fake = FakeVendor::builder()
        .with_config(args.config)
        .with_port(args.port)
        .start()
        .await?;
    // Handlers are installed before the ready line: a harness may signal right after it.
    let signals = Signals::install()?;
    let url = fake.url();
    let ready = serde_json::json!({
        "port": fake.port(),
        "url": url,
        "openai_base_url": fake.base_url(Protocol::OpenAi),
        "sorahk_base_url": fake.base_url(Protocol::SoraHk),
        "seedance_base_url": fake.base_url(Protocol::Seedance),
        "kling_base_url": fake.base_url(Protocol::Kling),
        "wan_base_url": fake.base_url(Protocol::Wan),
        "minimax_base_url": fake.base_url(Protocol::Minimax),
        "fal_base_url": fake.base_url(Protocol::Fal),
        "fal_platform_url": fake.fal_platform_url(),
        "fal_jwks_url": fake.fal_jwks_url(),
        "openrouter_base_url": fake.base_url(Protocol::OpenRouter),
        "ledger_url": fake.ledger_url(),
        "faults_url": format!("{url}/__faults"),
        "reset_url": format!("{url}/__reset"),
        "pid": std::process::id(),
    });
    {
        let mut out = std::io::stdout().lock();
        writeln!(out, "{ready}")?;
        out.flush()?;
    }
    eprintln!("fake-vendor: listening on {url}");

    let (eof_tx, eof_rx) = tokio::sync::oneshot::channel::<()>();
    if args.watch_stdin {
        // A plain thread: reading stdin blocks. It ends the wait on EOF or a read error.
        std::thread::spawn(move || {
            let mut sink = [0u8; 1024];
            let mut stdin = std::io::stdin().lock();
            while matches!(stdin.read(&mut sink), Ok(n) if n > 0) {}
            let _ = eof_tx.send(());
        });
    }
    let stdin_closed = async move {
        match eof_rx.await {
            Ok(()) => {}
            // Not watching stdin: never.
            Err(_) => std::future::pending::<()>().await,
        }
    };
    let why = tokio::select! {
        why = signals.recv() => why,
        () = stdin_closed => "stdin closed",
    };
    eprintln!("fake-vendor: {why}; shutting down");
    fake.shutdown().await;
    Ok(())
}

/// SIGTERM and SIGINT, registered up front.
#[cfg(unix)]
#[derive(Debug)]
struct Signals {
    term: tokio::signal::unix::Signal,
    int: tokio::signal::unix::Signal,
}

#[cfg(unix)]
impl Signals {
    fn install() -> std::io::Result<Self> {
        use tokio::signal::unix::{SignalKind, signal};
        Ok(Self {
            term: signal(SignalKind::terminate())?,
            int: signal(SignalKind::interrupt())?,
        })
    }

    async fn recv(mut self) -> &'static str {
        tokio::select! {
            _ = self.term.recv() => "SIGTERM",
            _ = self.int.recv() => "SIGINT",
        }
    }
}

/// Ctrl-C (registered on first poll; there is no SIGTERM off unix).
#[cfg(not(unix))]
#[derive(Debug)]
struct Signals;

#[cfg(not(unix))]
impl Signals {
    fn install() -> std::io::Result<Self> {
        Ok(Self)
    }

    async fn recv(self) -> &'static str {
        let _ = tokio::signal::ctrl_c().await;
        "Ctrl-C"
    }
}

fn print_help() {
    // The module docs are the help text: print the table of flags.
    const SRC: &str = include_str!("cli.rs");
    for line in SRC.lines().take_while(|l| l.starts_with("//!")).map(|l| {
        l.trim_start_matches("//!")
            .strip_prefix(' ')
            .unwrap_or_default()
    }) {
        println!("{line}");
    }
}

/// Parses the flags; `Ok(None)` for `--help`.
fn parse(args: impl Iterator<Item = String>) -> Result<Option<Args>, String> {
    let mut port = 0u16;
    let mut config = Config::default();
    let mut watch_stdin = true;
    let mut faults: Option<Faults> = None;
    let mut tweaks: Vec<(String, String)> = Vec::new();
    let mut args = args.peekable();
    while let Some(flag) = args.next() {
        let (flag, inline) = match flag.split_once('=') {
            Some((f, v)) if f.starts_with("--") => (f.to_owned(), Some(v.to_owned())),
            _ => (flag, None),
        };
        let mut value = || -> Result<String, String> {
            match &inline {
                Some(v) => Ok(v.clone()),
                None => args.next().ok_or(format!("{flag} needs a value")),
            }
        };
        match flag.as_str() {
            "-h" | "--help" => return Ok(None),
            "--port" => port = num(&flag, &value()?)?,
            "--key" => config.key = value()?,
            "--seed" => config.seed = num(&flag, &value()?)?,
            "--job-secs" => config.timing.secs = num(&flag, &value()?)?,
            "--job-secs-jitter" => config.timing.jitter = num(&flag, &value()?)?,
            "--queued-fraction" => config.timing.queued_fraction = num(&flag, &value()?)?,
            "--video-bytes" => config.video_bytes = num(&flag, &value()?)?,
            "--download-bytes-per-sec" => config.download_bytes_per_sec = num(&flag, &value()?)?,
            "--poll-after-ms" => {
                let v = value()?;
                config.poll_after_ms = if v == "off" {
                    None
                } else {
                    Some(num(&flag, &v)?)
                };
            }
            "--openai-asset-ttl-secs" => config.openai_asset_ttl_secs = num(&flag, &value()?)?,
            "--blob-url-ttl-secs" => config.blob_url_ttl_secs = num(&flag, &value()?)?,
            "--sorahk-balance" => config.sorahk_balance = num(&flag, &value()?)?,
            "--sorahk-status-is-200" => config.sorahk_http_status_mirrors_code = false,
            "--honor-idempotency-key" => config.honor_idempotency_key = true,
            "--ignore-stdin" => watch_stdin = false,
            "--no-callbacks" => config.callbacks = false,
            "--openrouter-webhook-secret" => config.openrouter_webhook_secret = value()?,
            "--faults" => {
                let v = value()?;
                faults = Some(
                    serde_json::from_str(&v).map_err(|e| format!("--faults: invalid JSON: {e}"))?,
                );
            }
            f if f.starts_with("--fault-") || f == "--retry-after-ms" => {
                tweaks.push((flag.clone(), value()?));
            }
            other => return Err(format!("unknown flag {other}")),
        }
    }
    let mut faults = faults.unwrap_or_default();
    for (flag, v) in tweaks {
        apply_fault_flag(&mut faults, &flag, &v)?;
    }
    config.faults = faults;
    config.validate().map_err(|e| e.to_string())?;
    Ok(Some(Args {
        port,
        config,
        watch_stdin,
    }))
}

fn num<T: std::str::FromStr>(flag: &str, v: &str) -> Result<T, String> {
    v.trim()
        .parse()
        .map_err(|_| format!("{flag}: {v:?} is not a valid number"))
}

/// `0.25` (probability) or `first:N`.
fn trigger(flag: &str, v: &str) -> Result<Trigger, String> {
    match v.trim().strip_prefix("first:") {
        Some(n) => Ok(Trigger::first(num(flag, n)?)),
        None => Ok(Trigger::probability(num(flag, v)?)),
    }
}

fn endpoints(flag: &str, v: &str) -> Result<Vec<Endpoint>, String> {
    v.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| {
            serde_json::from_value(serde_json::Value::from(s)).map_err(|_| {
                format!("{flag}: unknown endpoint {s:?} (submit, poll, download, list)")
            })
        })
        .collect()
}

fn apply_fault_flag(f: &mut Faults, flag: &str, v: &str) -> Result<(), String> {
    match flag {
        "--fault-rate-limit" => {
            let t = trigger(flag, v)?;
            (f.rate_limit.probability, f.rate_limit.first) = (t.probability, t.first);
        }
        "--fault-rate-limit-on" => f.rate_limit.on = endpoints(flag, v)?,
        "--retry-after-ms" => f.rate_limit.retry_after_ms = num(flag, v)?,
        "--fault-server-error" => {
            let t = trigger(flag, v)?;
            (f.server_error.probability, f.server_error.first) = (t.probability, t.first);
        }
        "--fault-server-error-on" => f.server_error.on = endpoints(flag, v)?,
        "--fault-server-error-status" => f.server_error.status = num(flag, v)?,
        "--fault-stall" => {
            let t = trigger(flag, v)?;
            (f.stall.probability, f.stall.first) = (t.probability, t.first);
        }
        "--fault-stall-on" => f.stall.on = endpoints(flag, v)?,
        "--fault-stall-ms" => f.stall.delay_ms = num(flag, v)?,
        "--fault-truncate-download" => {
            let t = trigger(flag, v)?;
            (f.truncate_download.probability, f.truncate_download.first) = (t.probability, t.first);
        }
        "--fault-truncate-keep" => f.truncate_download.keep_fraction = num(flag, v)?,
        "--fault-expire-urls" => f.expire_urls = trigger(flag, v)?,
        "--fault-accept-then-502" => f.accept_then_502 = trigger(flag, v)?,
        "--fault-fail-jobs" => {
            let t = trigger(flag, v)?;
            (f.fail_jobs.probability, f.fail_jobs.first) = (t.probability, t.first);
        }
        "--fault-fail-kind" => {
            f.fail_jobs.kind = serde_json::from_value(serde_json::Value::from(v.trim()))
                .map_err(|_| format!("{flag}: {v:?} is not content_policy or retryable"))?;
        }
        "--fault-list-lag-ms" => f.list_lag_ms = num(flag, v)?,
        "--fault-callback-lost" => f.callbacks.lost = trigger(flag, v)?,
        "--fault-callback-duplicated" => f.callbacks.duplicated = trigger(flag, v)?,
        "--fault-callback-delayed" => f.callbacks.delayed = trigger(flag, v)?,
        "--fault-callback-delay-ms" => f.callbacks.delay_ms = num(flag, v)?,
        "--fault-callback-forged" => f.callbacks.forged = trigger(flag, v)?,
        other => return Err(format!("unknown flag {other}")),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use crate::FailKind;

    use super::*;

    fn args(s: &str) -> Result<Option<Args>, String> {
        parse(s.split_whitespace().map(str::to_owned))
    }

    #[test]
    fn flags_fill_the_config_and_faults() {
        let a = args(
            "--port 0 --key K --job-secs 0.5 --job-secs-jitter 0.2 --poll-after-ms off \
             --download-bytes-per-sec 1000 \
             --fault-rate-limit first:2 --fault-rate-limit-on submit,list \
             --fault-accept-then-502 0.1 --fault-fail-jobs 1 --fault-fail-kind retryable",
        )
        .unwrap()
        .unwrap();
        assert_eq!(a.config.key, "K");
        assert_eq!(a.config.timing.secs, 0.5);
        assert_eq!(a.config.poll_after_ms, None);
        assert_eq!(a.config.download_bytes_per_sec, 1000);
        assert_eq!(a.config.faults.rate_limit.first, 2);
        assert_eq!(
            a.config.faults.rate_limit.on,
            vec![Endpoint::Submit, Endpoint::List]
        );
        assert_eq!(a.config.faults.accept_then_502.probability, 0.1);
        assert_eq!(a.config.faults.fail_jobs.kind, FailKind::Retryable);
    }

    #[test]
    fn bad_flags_are_refused() {
        assert!(args("--nope").is_err());
        assert!(args("--job-secs x").is_err());
        assert!(args("--fault-stall 2.0").is_err());
        assert!(args("--port").is_err());
        assert!(args("--help").unwrap().is_none());
        assert!(args("--faults={\"stall\":{\"first\":1}}").is_ok());
    }
}
