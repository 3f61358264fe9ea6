//! The `crest` binary.

use clap::Parser;
use crest_web::cli::{Cli, Command};

/// mimalloc instead of glibc's allocator: the write path allocates per point, and glibc's
/// malloc was a third of ingest CPU in a profile (`perf record` during `crest loadgen`).
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("CREST_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    match cli.command {
        Command::Serve(args) => rt.block_on(crest_web::cli::serve(args)),
        Command::Loadgen(args) => rt.block_on(crest_web::loadgen::run(args)),
        Command::Backtest(args) => crest_web::backtest_cmd::run(&args),
        Command::Alerts(args) => crest_web::alert::replay::run(&args),
        Command::Plan(args) => crest_web::planning::cli::run(&args),
        Command::Simulate(args) => rt.block_on(crest_web::simulate::run(args)),
    }
}
