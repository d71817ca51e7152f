//! `AnyStore`: the backend chosen by the database URL at start-up, behind the same traits. Each
//! call is one `match` on the backend, straight into that backend's implementation.

use chrono::{DateTime, Utc};

use std::collections::HashMap;
use std::future::Future;

use super::{
    Backend, ChangePage, ChangedClaim, ClaimHit, ClaimWrite, ConsoleReads, DeadEmail,
    DeliveryResult, FireInput, HistoryEntry, Hold, Outbox, OutboxCounts, OutboxEmail, OutboxRow,
    OverviewCounts, PendingEmail, PgStore, Released, Repairs, SlaAlert, SqliteStore, Store,
    StoreError, SyncedClaim, TimerIndex, TimerRecord,
};
use crate::claim::{Claim, ClaimRow};
use crate::config::{DatabaseConfig, DatabaseUrl};
use crate::timers::ClaimFacts;

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

impl AnyStore {
    /// Looks up the optional columns of the `claims` table (`customer_locale`); call at start-up.
    pub async fn detect_optional_columns(&self) -> Result<(), StoreError> {
        match self {
            AnyStore::Postgres(s) => s.detect_optional_columns().await,
            AnyStore::Sqlite(s) => s.detect_optional_columns().await,
        }
    }
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

    async fn count_claims(&self) -> Result<i64, StoreError> {
        dispatch!(self, s => s.count_claims().await)
    }

    async fn history(&self, claim_id: &str) -> Result<Vec<HistoryEntry>, StoreError> {
        dispatch!(self, s => s.history(claim_id).await)
    }

    async fn facts(&self, claim_ids: &[String]) -> Result<HashMap<String, ClaimFacts>, StoreError> {
        dispatch!(self, s => s.facts(claim_ids).await)
    }

    async fn older_calendar_claims(
        &self,
        fingerprint: &str,
        first: &str,
        last: &str,
    ) -> Result<Vec<String>, StoreError> {
        dispatch!(self, s => s.older_calendar_claims(fingerprint, first, last).await)
    }

    async fn count_older_calendar_claims(
        &self,
        fingerprint: &str,
        cap: i64,
    ) -> Result<i64, StoreError> {
        dispatch!(self, s => s.count_older_calendar_claims(fingerprint, cap).await)
    }

    async fn state_get(&self, key: &str) -> Result<Option<String>, StoreError> {
        dispatch!(self, s => s.state_get(key).await)
    }

    async fn state_set(&self, key: &str, value: &str, at: DateTime<Utc>) -> Result<(), StoreError> {
        dispatch!(self, s => s.state_set(key, value, at).await)
    }

    async fn claims_page(
        &self,
        after_id: &str,
        limit: i64,
    ) -> Result<Vec<ChangedClaim>, StoreError> {
        dispatch!(self, s => s.claims_page(after_id, limit).await)
    }
}

impl TimerIndex for AnyStore {
    async fn sync_changes<F, C>(
        &self,
        limit: i64,
        after_seq: i64,
        fingerprint: &str,
        at: DateTime<Utc>,
        compute: F,
    ) -> Result<ChangePage, StoreError>
    where
        F: FnOnce(Vec<ChangedClaim>, HashMap<String, ClaimFacts>) -> C + Send,
        C: Future<Output = Vec<SyncedClaim>> + Send,
    {
        dispatch!(self, s => s.sync_changes(limit, after_seq, fingerprint, at, compute).await)
    }

    fn parallel_batches(&self) -> usize {
        dispatch!(self, s => s.parallel_batches())
    }

    async fn stale_claims(
        &self,
        fingerprint: &str,
        include_calendar_changes: bool,
        after_id: &str,
        limit: i64,
    ) -> Result<Vec<ChangedClaim>, StoreError> {
        dispatch!(self, s => s.stale_claims(fingerprint, include_calendar_changes, after_id, limit).await)
    }

    async fn forget_gone_marks(&self) -> Result<u64, StoreError> {
        dispatch!(self, s => s.forget_gone_marks().await)
    }

    async fn save_sync(
        &self,
        synced: &[SyncedClaim],
        fingerprint: &str,
        at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        dispatch!(self, s => s.save_sync(synced, fingerprint, at).await)
    }

    async fn count_due(&self, now: DateTime<Utc>) -> Result<i64, StoreError> {
        dispatch!(self, s => s.count_due(now).await)
    }

    async fn has_work(&self, now: DateTime<Utc>, fingerprint: &str) -> Result<bool, StoreError> {
        dispatch!(self, s => s.has_work(now, fingerprint).await)
    }

    async fn claim_problems(&self) -> Result<Vec<(String, String)>, StoreError> {
        dispatch!(self, s => s.claim_problems().await)
    }

    async fn fire_batch<F, D>(
        &self,
        now: DateTime<Utc>,
        limit: i64,
        fingerprint: &str,
        decide: F,
    ) -> Result<usize, StoreError>
    where
        F: FnOnce(Vec<FireInput>) -> D + Send,
        D: Future<Output = Vec<ClaimWrite>> + Send,
    {
        dispatch!(self, s => s.fire_batch(now, limit, fingerprint, decide).await)
    }
}

impl Outbox for AnyStore {
    async fn take_emails(
        &self,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
        limit: i64,
    ) -> Result<Vec<PendingEmail>, StoreError> {
        dispatch!(self, s => s.take_emails(now, lease_until, limit).await)
    }

    async fn record_delivery(
        &self,
        id: i64,
        result: &DeliveryResult,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        dispatch!(self, s => s.record_delivery(id, result, now).await)
    }

    async fn claim_emails(&self, claim_id: &str) -> Result<Vec<(OutboxEmail, String)>, StoreError> {
        dispatch!(self, s => s.claim_emails(claim_id).await)
    }

    async fn dead_emails(&self) -> Result<Vec<DeadEmail>, StoreError> {
        dispatch!(self, s => s.dead_emails().await)
    }

    async fn outbox_counts(&self) -> Result<OutboxCounts, StoreError> {
        dispatch!(self, s => s.outbox_counts().await)
    }

    async fn queue_sla_digest<F>(
        &self,
        now: DateTime<Utc>,
        limit: i64,
        build: F,
    ) -> Result<usize, StoreError>
    where
        F: FnOnce(&[SlaAlert]) -> OutboxEmail + Send,
    {
        dispatch!(self, s => s.queue_sla_digest(now, limit, build).await)
    }
}

impl Repairs for AnyStore {
    async fn outbox_list(
        &self,
        state: Option<&str>,
        claim_id: Option<&str>,
        limit: i64,
    ) -> Result<Vec<OutboxRow>, StoreError> {
        dispatch!(self, s => s.outbox_list(state, claim_id, limit).await)
    }

    async fn outbox_row(&self, id: i64) -> Result<Option<OutboxRow>, StoreError> {
        dispatch!(self, s => s.outbox_row(id).await)
    }

    async fn retry_email(
        &self,
        id: i64,
        refreshed: &OutboxEmail,
        history: &HistoryEntry,
        at: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        dispatch!(self, s => s.retry_email(id, refreshed, history, at).await)
    }

    async fn discard_email(&self, id: i64, history: &HistoryEntry) -> Result<bool, StoreError> {
        dispatch!(self, s => s.discard_email(id, history).await)
    }

    async fn hold_claim(
        &self,
        hold: &Hold,
        history: Option<&HistoryEntry>,
    ) -> Result<bool, StoreError> {
        dispatch!(self, s => s.hold_claim(hold, history).await)
    }

    async fn release_claim(
        &self,
        claim_id: &str,
        history: &HistoryEntry,
    ) -> Result<Released, StoreError> {
        dispatch!(self, s => s.release_claim(claim_id, history).await)
    }

    async fn resync_claim(&self, claim_id: &str, history: &HistoryEntry) -> Result<(), StoreError> {
        dispatch!(self, s => s.resync_claim(claim_id, history).await)
    }

    async fn holds(&self, claim_ids: Option<&[String]>) -> Result<Vec<Hold>, StoreError> {
        dispatch!(self, s => s.holds(claim_ids).await)
    }
}

impl ConsoleReads for AnyStore {
    async fn overview_counts(
        &self,
        now: DateTime<Utc>,
        day_starts: &[DateTime<Utc>],
        cap: i64,
        breach_cap: i64,
    ) -> Result<OverviewCounts, StoreError> {
        dispatch!(self, s => s.overview_counts(now, day_starts, cap, breach_cap).await)
    }

    async fn open_breaches(&self, limit: i64) -> Result<(Vec<SlaAlert>, i64), StoreError> {
        dispatch!(self, s => s.open_breaches(limit).await)
    }

    async fn search_claims(&self, q: &str, limit: i64) -> Result<Vec<ClaimHit>, StoreError> {
        dispatch!(self, s => s.search_claims(q, limit).await)
    }

    async fn claim_timers(&self, claim_id: &str) -> Result<Vec<TimerRecord>, StoreError> {
        dispatch!(self, s => s.claim_timers(claim_id).await)
    }

    async fn claim_problem(&self, claim_id: &str) -> Result<Option<String>, StoreError> {
        dispatch!(self, s => s.claim_problem(claim_id).await)
    }
}
