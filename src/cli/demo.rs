//! `cpor-worker demo`: load the sample claims into the configured database.

use std::path::Path;

use anyhow::Context;
use chrono::Utc;
use clap::Args;

use crate::store::Store;

/// Options of `demo`.
#[derive(Debug, Args)]
pub struct DemoArgs {
    /// The instant the sample timestamps are relative to (RFC 3339); default now.
    #[arg(long, value_name = "TIME")]
    pub at: Option<String>,
}

/// Runs `demo`.
pub async fn run(config_path: Option<&Path>, args: DemoArgs) -> anyhow::Result<()> {
    let config = super::load_config(config_path)?;
    let now = match &args.at {
        Some(t) => super::parse_time("--at", t)?,
        None => Utc::now(),
    };
    let store = super::store::open(&config, true).await?;
    let rows = crate::demo::demo_claims(now);
    for row in &rows {
        store
            .put_claim_row(row)
            .await
            .with_context(|| format!("writing demo claim {}", row.id))?;
    }
    println!(
        "loaded {} demo claims into {:?} (timestamps relative to {})",
        rows.len(),
        config.database.url,
        now.to_rfc3339()
    );
    Ok(())
}
