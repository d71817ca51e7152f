//! The `cpor-worker` binary: parse, set up logging, dispatch, map errors to exit status 2.

use std::process::ExitCode;

use clap::Parser;

/// mimalloc rather than the system allocator: a fire batch builds and drops many small values
/// (JSON details and payloads) on several threads, and glibc's malloc spent about a third of
/// the worker's CPU there (docs/benchmarks.md). benches/tick.rs uses the same. Built without
/// transparent huge pages (`no_thp` in Cargo.toml): a batch's short-lived buffers then cost
/// the kernel 4 KiB of zeroing per page touched instead of 2 MiB (docs/benchmarks.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> ExitCode {
    let cli = cpor_worker::cli::Cli::parse();
    match cpor_worker::cli::run(cli).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {}", cpor_worker::cli::error_chain(&e));
            ExitCode::from(2)
        }
    }
}
