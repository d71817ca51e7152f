//! `cpor-worker demo`.
use clap::Args;
use std::path::Path;
/// Options of `demo`.
#[derive(Debug, Args)]
pub struct DemoArgs {}
/// Runs `demo`.
pub async fn run(_c: Option<&Path>, _a: DemoArgs) -> anyhow::Result<()> {
    super::pending::not_yet("demo", 2)
}
