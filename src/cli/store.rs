//! Opening the configured store for a command, with migrations when asked.

use std::time::Duration;

use anyhow::Context;
use sqlx::{Connection, PgConnection};

use crate::config::{Config, DatabaseUrl};
use crate::store::{self, AnyStore, ClaimsTable, Store};

/// How long the first connection may take before the database counts as unreachable.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Connects to the configured database; applies migrations when `migrate` is true. A server that
/// refuses or does not answer is reported at once with the reason (the pool would only say
/// "timed out" after its acquire timeout).
pub async fn open(config: &Config, migrate: bool) -> anyhow::Result<AnyStore> {
    let url = &config.database.url;
    if let DatabaseUrl::Postgres(secret) = url {
        match tokio::time::timeout(CONNECT_TIMEOUT, PgConnection::connect(secret.expose())).await {
            Ok(Ok(conn)) => {
                let _ = conn.close().await;
            }
            Ok(Err(e)) => {
                return Err(anyhow::anyhow!("connecting to the database {url}: {e}"));
            }
            Err(_) => anyhow::bail!(
                "connecting to the database {url}: no answer within {} s",
                CONNECT_TIMEOUT.as_secs()
            ),
        }
    }
    let store = store::connect(&config.database)
        .await
        .with_context(|| format!("connecting to the database {url}"))?;
    if migrate {
        store.migrate().await.context("applying migrations")?;
    }
    check_claims_table(&store, migrate).await?;
    store
        .detect_optional_columns()
        .await
        .context("reading the claims table's optional columns")?;
    Ok(store)
}

/// Refuses a `claims` table that lacks a column the worker needs, naming each missing column
/// (every pass would fail on it otherwise). A database with no `claims` table yet passes unless
/// migrations were just applied.
pub async fn check_claims_table(store: &AnyStore, migrated: bool) -> anyhow::Result<()> {
    match store::claims_table_columns(store)
        .await
        .context("reading the claims table's columns")?
    {
        ClaimsTable::Complete => Ok(()),
        ClaimsTable::Absent if !migrated => Ok(()),
        ClaimsTable::Absent => anyhow::bail!("the database has no claims table after migrating"),
        ClaimsTable::Missing(cols) => anyhow::bail!(
            "the claims table lacks column{} {} that the worker needs (see docs/integration.md); \
             add {} and start again",
            if cols.len() == 1 { "" } else { "s" },
            cols.join(", "),
            if cols.len() == 1 { "it" } else { "them" }
        ),
    }
}
