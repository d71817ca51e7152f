//! The `cpor-worker` binary: parse, set up logging, dispatch, map errors to exit status 2.

use std::process::ExitCode;

use clap::Parser;

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
