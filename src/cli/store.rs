//! Opening the configured store for a command, with migrations when asked.

use anyhow::Context;

use crate::config::Config;
use crate::store::{self, AnyStore, Store};

/// Connects to the configured database; applies migrations when `migrate` is true.
pub async fn open(config: &Config, migrate: bool) -> anyhow::Result<AnyStore> {
    let store = store::connect(&config.database)
        .await
        .with_context(|| format!("connecting to the database {:?}", config.database.url))?;
    if migrate {
        store.migrate().await.context("applying migrations")?;
    }
    Ok(store)
}
