//! Benchmarks and long runs of our emulator, most side by side with Microsoft's Azurite in
//! one run on the same machine, both on disk. Requests carry an account SAS so the load
//! generator does not spend its CPU signing (Shared Key costs 45-110 us per request here).
//!
//!   bench [--seconds 5 ...]          the side-by-side table (`compare`, the default)
//!   bench soak --minutes 30          mixed load for minutes, RSS trend checked
//!   bench reopen-deep 1000000        a deep queue: kill -9, reopen, memory and latency
//!   bench gallery --jobs 10000       the app's gallery pages with that many uploads
//!
//! Every loop is bounded in time and count and stops by itself; only loopback is used.

mod compare;
mod endpoint;
mod gallery;
mod limits;
mod load;
mod pages;
mod process;
mod reopen;
mod soak;

use anyhow::Result;
use clap::{Parser, Subcommand};
use std::path::PathBuf;

/// How our emulator is started, whatever the mode.
#[derive(clap::Args, Debug, Clone)]
pub struct Ours {
    /// Our emulator binary (a release build).
    #[arg(long, global = true, default_value = "target/release/emulator")]
    pub emulator: PathBuf,
    /// Extra argument for our emulator (repeatable), e.g. `--emulator-arg=--cacheMiB=16`.
    #[arg(long = "emulator-arg", global = true, allow_hyphen_values = true)]
    pub emulator_args: Vec<String>,
    /// Keep our emulator's data here instead of a fresh temporary folder (to see space reuse
    /// across runs).
    #[arg(long, global = true)]
    pub data: Option<PathBuf>,
}

#[derive(Parser, Debug)]
#[command(
    about = "Our emulator against Azurite, side by side; soak and deep-queue runs",
    args_conflicts_with_subcommands = true
)]
struct Cli {
    #[command(flatten)]
    ours: Ours,
    #[command(subcommand)]
    mode: Option<Mode>,
    #[command(flatten)]
    compare: compare::Args,
}

#[derive(Subcommand, Debug)]
enum Mode {
    /// The side-by-side table (also what `bench` alone runs).
    Compare(compare::Args),
    /// Mixed queue and blob load against our emulator, a report line every 10 s, RSS trend
    /// checked.
    Soak {
        #[arg(long)]
        minutes: f64,
        #[arg(long, default_value_t = 64)]
        concurrency: usize,
    },
    /// The app's gallery with many uploads behind it, on ours and on Azurite.
    Gallery(gallery::Args),
    /// Fill a queue with N messages, kill -9 our emulator, restart it on the same data, and
    /// report the time to listen, RSS through the start-up expiry sweep, and Get Messages
    /// latency.
    ReopenDeep {
        messages: usize,
        /// Seconds of Get Messages after the reopen.
        #[arg(long, default_value_t = 5)]
        seconds: u64,
    },
}

#[tokio::main(flavor = "multi_thread")]
async fn main() -> Result<()> {
    let cli = Cli::parse();
    match cli.mode {
        None => compare::run(&cli.ours, &cli.compare).await,
        Some(Mode::Gallery(args)) => gallery::run(&cli.ours, &args).await,
        Some(Mode::Compare(args)) => compare::run(&cli.ours, &args).await,
        Some(Mode::Soak {
            minutes,
            concurrency,
        }) => soak::run(&cli.ours, minutes, concurrency).await,
        Some(Mode::ReopenDeep { messages, seconds }) => {
            reopen::run(&cli.ours, messages, seconds).await
        }
    }
}
