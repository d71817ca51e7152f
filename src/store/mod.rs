//! The database behind one interface: PostgreSQL (production, several replicas at once) and
//! SQLite (embedded default). Both promise the same contract, checked by one conformance suite.

mod any;
mod columns;
mod console;
mod postgres;
mod postgres_console;
mod postgres_outbox;
mod postgres_repair;
mod postgres_work;
mod repair;
mod row;
mod sqlite;
mod sqlite_console;
mod sqlite_outbox;
mod sqlite_repair;
mod sqlite_work;
mod work;

use std::future::Future;

use chrono::{DateTime, Utc};

use crate::claim::{BadClaim, Claim, ClaimRow};
use crate::lifecycle::ClaimStatus;
pub use crate::lifecycle::{HistoryEntry, StatusChange};

pub use any::{AnyStore, connect};
pub use columns::{CLAIM_COLUMNS, ClaimsTable, claims_table_columns};
pub use console::{ClaimHit, ConsoleReads, TimerRecord};
pub use postgres::PgStore;
pub use repair::{Hold, OutboxRow, Released, Repairs};
pub use row::NULL_ID;
pub use sqlite::SqliteStore;
pub use work::{
    ChangedClaim, Changes, ClaimWrite, DeadEmail, DeliveryResult, FireInput, OutboxCounts,
    OutboxEmail, PendingEmail, Requeue, SlaAlert, StatusRecord, SyncedClaim, TimerRow, message_id,
};

use std::collections::HashMap;

use crate::timers::ClaimFacts;

/// What can go wrong talking to the database.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database refused or failed a statement, or could not be reached.
    #[error("database: {0}")]
    Db(#[from] sqlx::Error),
    /// Migrations could not be applied.
    #[error("migrations: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// No claim has this id.
    #[error("claim `{0}` not found")]
    NotFound(String),
    /// The claim's row cannot be used (unknown status, bad time zone, …).
    #[error(transparent)]
    BadClaim(#[from] BadClaim),
    /// A stored value could not be decoded.
    #[error("{0}")]
    Corrupt(String),
}

impl StoreError {
    /// A stored value of `what` (`table.column`) that cannot be decoded, and why.
    pub(crate) fn corrupt(what: &str, why: impl std::fmt::Display) -> StoreError {
        StoreError::Corrupt(format!("{what}: {why}"))
    }
}

/// Which database a store talks to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    /// PostgreSQL.
    Postgres,
    /// SQLite.
    Sqlite,
}

/// Everything one worker action writes, applied in one transaction or not at all.
#[derive(Clone, Debug, PartialEq)]
pub struct ClaimChange {
    /// The claim.
    pub claim_id: String,
    /// The status the action was decided on; another status means someone changed the claim.
    pub expected_status: ClaimStatus,
    /// The version the action was decided on.
    pub expected_version: i64,
    /// The instant the action takes effect (the pass's `now`).
    pub at: DateTime<Utc>,
    /// A status change, if the action makes one (version is bumped then).
    pub status_change: Option<StatusChange>,
    /// The history row recording the action.
    pub history: HistoryEntry,
    /// Forward the claim to incentive evaluation (at most once per claim).
    pub request_incentive_evaluation: bool,
}

/// What became of a [`ClaimChange`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ApplyOutcome {
    /// Written; the claim's version is now this.
    Applied {
        /// The claim's version after the change.
        version: i64,
    },
    /// The claim changed since the decision; nothing was written.
    Conflict {
        /// Its status now (as stored).
        status: String,
        /// Its version now.
        version: i64,
    },
    /// The claim no longer exists; nothing was written.
    Gone,
}

/// A claim read in bulk: parsed, or the reason it cannot be used.
pub type LoadedClaim = Result<Claim, BadClaim>;

/// What every backend promises. All instants are passed in; no query uses the database's clock.
pub trait Store: Send + Sync {
    /// Which database this is.
    fn backend(&self) -> Backend;

    /// Applies pending migrations; running it again changes nothing.
    fn migrate(&self) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// True when every migration this build knows is applied.
    fn migrations_current(&self) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// Inserts a claim row, or replaces the row with the same id (demo and tests).
    fn put_claim_row(&self, row: &ClaimRow) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// One claim; `NotFound`, or `BadClaim` naming what is wrong with its row.
    fn claim(&self, id: &str) -> impl Future<Output = Result<Claim, StoreError>> + Send;

    /// Every claim ordered by id, bad rows reported in place rather than failing the whole read.
    fn claims(&self) -> impl Future<Output = Result<Vec<LoadedClaim>, StoreError>> + Send;

    /// How many claim rows there are.
    fn count_claims(&self) -> impl Future<Output = Result<i64, StoreError>> + Send;

    /// A claim's history, oldest first.
    fn history(
        &self,
        claim_id: &str,
    ) -> impl Future<Output = Result<Vec<HistoryEntry>, StoreError>> + Send;

    /// Applies one action atomically if the claim still has the expected status and version.
    fn apply(
        &self,
        change: &ClaimChange,
    ) -> impl Future<Output = Result<ApplyOutcome, StoreError>> + Send;

    /// When the claim was forwarded to incentive evaluation, if it was.
    fn incentive_request(
        &self,
        claim_id: &str,
    ) -> impl Future<Output = Result<Option<DateTime<Utc>>, StoreError>> + Send;

    /// A value of the worker's own state (`cpor_worker_state`).
    fn state_get(
        &self,
        key: &str,
    ) -> impl Future<Output = Result<Option<String>, StoreError>> + Send;

    /// Sets a value of the worker's own state.
    fn state_set(
        &self,
        key: &str,
        value: &str,
        at: DateTime<Utc>,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// The oldest `limit` change records the claims trigger wrote, with the claims among them
    /// whose timers were not computed from their current version. Records stay until
    /// [`Store::consume_changes`] deletes them, so a crash in between loses nothing.
    fn take_changes(&self, limit: i64) -> impl Future<Output = Result<Changes, StoreError>> + Send;

    /// Deletes handled change records.
    fn consume_changes(&self, seqs: &[i64]) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Claims whose timers must be recomputed though they did not change: marked dirty (a consent
    /// email was delivered), or computed with calendars other than `fingerprint` (only when
    /// `include_calendar_changes`), or blocked by a problem; at most `limit`, after `after_id`.
    fn stale_claims(
        &self,
        fingerprint: &str,
        include_calendar_changes: bool,
        after_id: &str,
        limit: i64,
    ) -> impl Future<Output = Result<Vec<ChangedClaim>, StoreError>> + Send;

    /// What the worker already did for these claims.
    fn facts(
        &self,
        claim_ids: &[String],
    ) -> impl Future<Output = Result<HashMap<String, ClaimFacts>, StoreError>> + Send;

    /// Replaces each claim's pending timers and records the version they came from.
    fn save_sync(
        &self,
        synced: &[SyncedClaim],
        fingerprint: &str,
        at: DateTime<Utc>,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// How many pending timers are due at `now` (the overdue gauge), not counting held claims'.
    fn count_due(&self, now: DateTime<Utc>)
    -> impl Future<Output = Result<i64, StoreError>> + Send;

    /// One fire batch in one transaction: takes up to `limit` claims with timers due at `now`
    /// (skipping those another replica holds, and claims an operator holds), locks them, asks `decide` what to write for each,
    /// and writes it all. Returns how many claims were handled (0: nothing was due).
    fn fire_batch<F>(
        &self,
        now: DateTime<Utc>,
        limit: i64,
        fingerprint: &str,
        decide: F,
    ) -> impl Future<Output = Result<usize, StoreError>> + Send
    where
        F: FnMut(FireInput) -> ClaimWrite + Send;

    /// Takes up to `limit` outbox emails due for an attempt at `now`, leasing them until `lease_until`.
    fn take_emails(
        &self,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
        limit: i64,
    ) -> impl Future<Output = Result<Vec<PendingEmail>, StoreError>> + Send;

    /// Records a delivery attempt; a delivered consent email marks its claim for recomputation.
    fn record_delivery(
        &self,
        id: i64,
        result: &DeliveryResult,
        now: DateTime<Utc>,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// The outbox emails of one claim, oldest first (tests and explain).
    fn claim_emails(
        &self,
        claim_id: &str,
    ) -> impl Future<Output = Result<Vec<(OutboxEmail, String)>, StoreError>> + Send;

    /// Claims in id order after `after_id`, at most `limit`: every claim in bounded memory.
    fn claims_page(
        &self,
        after_id: &str,
        limit: i64,
    ) -> impl Future<Output = Result<Vec<ChangedClaim>, StoreError>> + Send;

    /// Dead-lettered outbox emails, oldest first.
    fn dead_emails(&self) -> impl Future<Output = Result<Vec<DeadEmail>, StoreError>> + Send;

    /// Claims whose timers could not be computed at their last sync, with the problem.
    fn claim_problems(
        &self,
    ) -> impl Future<Output = Result<Vec<(String, String)>, StoreError>> + Send;

    /// In one transaction: takes up to `limit` SLA breaches no digest has reported yet, writes
    /// the email `build` makes of them to the outbox and marks them reported. Returns how many
    /// breaches it reported (0: none waiting, nothing written).
    fn queue_sla_digest<F>(
        &self,
        now: DateTime<Utc>,
        limit: i64,
        build: F,
    ) -> impl Future<Output = Result<usize, StoreError>> + Send
    where
        F: FnOnce(&[SlaAlert]) -> OutboxEmail + Send;

    /// How many outbox emails are in each state.
    fn outbox_counts(&self) -> impl Future<Output = Result<OutboxCounts, StoreError>> + Send;
}

/// The claim columns of SPEC §5 for SELECTs, the version column written as `$v`.
macro_rules! claim_columns {
    ($v:literal) => {
        concat!(
            "id, status, partner_id, partner_name, partner_email, customer_tenant_id, ",
            "customer_name, customer_email, products, country, time_zone, locale, submitted_at, ",
            "review_started_at, info_requested_at, info_request_reason, approved_at, rejected_at, ",
            "rejection_reason, customer_declined_at, dispute_opened_at, dispute_resolved_at, ",
            "updated_at, ",
            $v
        )
    };
}
pub(crate) use claim_columns;
