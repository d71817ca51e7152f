//! `AnyStore`: the backend chosen by the database URL at start-up, behind the same [`Store`] trait.

use chrono::{DateTime, Utc};

use super::{
    ApplyOutcome, Backend, ClaimChange, HistoryEntry, LoadedClaim, PgStore, SqliteStore, Store,
    StoreError,
};
use crate::claim::{Claim, ClaimRow};
use crate::config::{DatabaseConfig, DatabaseUrl};

/// Either backend, dispatching each call to the one in use.
#[derive(Clone, Debug)]
pub enum AnyStore {
    /// PostgreSQL.
    Postgres(PgStore),
    /// SQLite.
    Sqlite(SqliteStore),
}

/// Connects to the configured database (creating an SQLite file if missing).
pub async fn connect(config: &DatabaseConfig) -> Result<AnyStore, StoreError> {
    Ok(match &config.url {
        DatabaseUrl::Sqlite(url) => {
            AnyStore::Sqlite(SqliteStore::connect(url, config.max_connections).await?)
        }
        DatabaseUrl::Postgres(url) => {
            AnyStore::Postgres(PgStore::connect(url.expose(), config.max_connections).await?)
        }
    })
}

/// Calls the same method on whichever backend `self` holds.
macro_rules! dispatch {
    ($self:ident, $s:ident => $call:expr) => {
        match $self {
            AnyStore::Postgres($s) => $call,
            AnyStore::Sqlite($s) => $call,
        }
    };
}

impl Store for AnyStore {
    fn backend(&self) -> Backend {
        dispatch!(self, s => s.backend())
    }

    async fn migrate(&self) -> Result<(), StoreError> {
        dispatch!(self, s => s.migrate().await)
    }

    async fn migrations_current(&self) -> Result<bool, StoreError> {
        dispatch!(self, s => s.migrations_current().await)
    }

    async fn put_claim_row(&self, row: &ClaimRow) -> Result<(), StoreError> {
        dispatch!(self, s => s.put_claim_row(row).await)
    }

    async fn claim(&self, id: &str) -> Result<Claim, StoreError> {
        dispatch!(self, s => s.claim(id).await)
    }

    async fn claims(&self) -> Result<Vec<LoadedClaim>, StoreError> {
        dispatch!(self, s => s.claims().await)
    }

    async fn count_claims(&self) -> Result<i64, StoreError> {
        dispatch!(self, s => s.count_claims().await)
    }

    async fn history(&self, claim_id: &str) -> Result<Vec<HistoryEntry>, StoreError> {
        dispatch!(self, s => s.history(claim_id).await)
    }

    async fn apply(&self, change: &ClaimChange) -> Result<ApplyOutcome, StoreError> {
        dispatch!(self, s => s.apply(change).await)
    }

    async fn incentive_request(&self, claim_id: &str) -> Result<Option<DateTime<Utc>>, StoreError> {
        dispatch!(self, s => s.incentive_request(claim_id).await)
    }
}
