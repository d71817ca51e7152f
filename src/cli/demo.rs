//! `cpor-worker demo`: load the sample claims into the configured database.

use std::path::Path;

use anyhow::Context;
use clap::Args;

use crate::store::Store;

/// Options of `demo`.
#[derive(Debug, Args)]
pub struct DemoArgs {
    /// The instant the sample timestamps are relative to (RFC 3339); default now.
    #[arg(long, value_name = "TIME")]
    pub at: Option<String>,
    /// Load into a database that already has claims: only sample ids that are free are used, and
    /// no existing claim is changed.
    #[arg(long)]
    pub force: bool,
}

/// Runs `demo`: refuses a database that has claims unless `--force`, and never overwrites one.
pub async fn run(config_path: Option<&Path>, args: DemoArgs) -> anyhow::Result<()> {
    let config = super::load_config(config_path)?;
    let now = match &args.at {
        Some(t) => super::parse_time("--at", t)?,
        None => crate::clock::system().now(),
    };
    let store = super::store::open(&config, true).await?;
    let existing = store.count_claims().await.context("counting claims")?;
    if existing > 0 && !args.force {
        anyhow::bail!(
            "{} already has {existing} claim(s); the demo claims are for an empty database. \
             `demo --force` adds the sample claims whose ids are free and changes no existing claim",
            config.database.url
        );
    }
    let loaded = crate::demo::load_free(&store, now)
        .await
        .context("writing the demo claims")?;
    println!(
        "loaded {} demo claims into {} (timestamps relative to {})",
        loaded.inserted.len(),
        config.database.url,
        now.to_rfc3339()
    );
    if !loaded.taken.is_empty() {
        println!(
            "left alone {} sample id(s) already in use: {}",
            loaded.taken.len(),
            loaded.taken.join(", ")
        );
    }
    Ok(())
}
