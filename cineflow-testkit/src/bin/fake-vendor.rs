//! `fake-vendor`: the fake OpenAI Videos + Sora.hk server as its own process. Flags, ready
//! line and shutdown: [`cineflow_testkit::cli`] (`fake-vendor --help` prints them).
//!
//! ```text
//! cargo run -p cineflow-testkit --bin fake-vendor -- --port 0 --key K --job-secs 5 --job-secs-jitter 0.2
//! ```

use std::process::ExitCode;

fn main() -> ExitCode {
    cineflow_testkit::cli::run(std::env::args().skip(1))
}
