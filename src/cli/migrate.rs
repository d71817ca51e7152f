//! `cpor-worker migrate`: create or update the schema.

use std::path::Path;

use crate::store::Store;

/// Runs `migrate`.
pub async fn run(config_path: Option<&Path>) -> anyhow::Result<()> {
    let config = super::load_config(config_path)?;
    let store = super::store::open(&config, true).await?;
    println!("migrations applied ({:?})", store.backend());
    Ok(())
}
