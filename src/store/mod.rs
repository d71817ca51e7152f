//! The database behind one contract: PostgreSQL (production, several replicas at once) and
//! SQLite (embedded default), checked by one conformance suite on both.
//!
//! The contract is split by concern, one trait each, each implemented directly by both
//! backends: [`Store`] (claims, the worker's facts about them, schema, worker state),
//! [`TimerIndex`] (change capture, sync, firing), [`Outbox`] (emails and SLA digests),
//! [`Repairs`] and [`ConsoleReads`]. [`AnyStore`] is the backend chosen at start-up and
//! dispatches each call once. Every [`Outbox`] is also the [`crate::mail::Queue`] the outbox
//! delivery takes its emails from (`mail_queue.rs`, with `applies.rs` deciding whether an email
//! still applies to its claim): the store depends on mail, never the other way.
//!
//! Statement text is written once, with `$N` placeholders both drivers accept, in the
//! `impl_*!` macro of its concern (`claims.rs`, `timer_index.rs` with its sync page and fire
//! batch in `sync_page.rs` and `fire_batch.rs`, `outbox.rs`, `repair.rs`, `console.rs`);
//! `postgres.rs` and `sqlite.rs` invoke them with their dialect's fragments
//! (`= ANY($1)` or `json_each`, `SKIP LOCKED` or nothing), and `postgres_writes.rs` with
//! `postgres_fired.rs` / `sqlite_writes.rs` hold the batch writes that differ by nature
//! (`UNNEST` arrays or a row at a time). Instants bind through `bind::At` (`timestamptz` or
//! RFC 3339 text), id lists through `bind::Ids`; every instant comes from the caller, never
//! from the database's clock. Row states are the enums [`TimerState`] and [`OutboxState`],
//! spliced into statements from the same ids; rows are read back through one reader per row
//! type (`row.rs`).

mod any;
mod applies;
mod bind;
mod claims;
mod columns;
mod console;
mod copy_rows;
mod facts;
mod fire_batch;
mod mail_queue;
mod optional_columns;
mod outbox;
mod postgres;
mod postgres_fired;
mod postgres_runs;
mod postgres_writes;
mod read;
mod repair;
mod row;
mod sqlite;
mod sqlite_writes;
mod state;
mod sync_page;
mod timer_index;
mod work;

use crate::claim::{BadClaim, Claim};

/// A hash set of a batch's claim ids or runs: foldhash (seeded per set) instead of SipHash,
/// which was a twentieth of a fire batch's worker CPU.
pub(crate) type Set<T> = std::collections::HashSet<T, foldhash::fast::RandomState>;
/// A hash map keyed by a batch's claim ids or runs (see [`Set`]).
pub(crate) type Map<K, V> = std::collections::HashMap<K, V, foldhash::fast::RandomState>;
pub use crate::lifecycle::{HistoryEntry, StatusChange};

/// What a delivery attempt came to (mail's, recorded by [`Outbox::record_delivery`]).
pub use crate::mail::DeliveryResult;
pub use any::{AnyStore, connect};
pub use bind::format_ts;
pub use claims::{CALENDAR_FINGERPRINT_KEY, Store};
pub use columns::{CLAIM_COLUMNS, ClaimsTable, claims_table_columns};
pub use console::{ClaimHit, ConsoleReads, OverviewCounts, TimerRecord};
pub use mail_queue::OPS_CLAIM_ID;
pub use outbox::Outbox;
pub use postgres::PgStore;
pub use repair::{Hold, OutboxRow, Released, Repairs};
pub use row::NULL_ID;
pub use sqlite::SqliteStore;
pub use state::{OutboxState, TimerState};
#[doc(hidden)]
pub use sync_page::RANGE_READ_MIN;
pub use timer_index::TimerIndex;
pub use work::{
    ChangePage, ChangedClaim, ClaimWrite, DeadEmail, FireInput, OutboxCounts, OutboxEmail,
    PendingEmail, Requeue, SlaAlert, StatusRecord, SyncedClaim, TimerRow, message_id,
};

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
    /// The database refused a fire batch's writes for what they hold ([`StoreError::is_refused`]);
    /// nothing was kept. `claims` are the batch's.
    #[error("the database refused the writes of {}: {source}", claims_text(claims))]
    Refused {
        /// The claims of the batch.
        claims: Vec<String>,
        /// The database's error.
        source: Box<StoreError>,
    },
    /// A claim's writes were refused while `held` claims are held already for refused writes:
    /// not held, so that a schema refusing every claim does not hold them all.
    #[error(
        "{refusal}; {held} claims are held already because the database refused their writes, \
         so no more are held: fix the cause, then release them (`claim release`)"
    )]
    TooManyRefused {
        /// Claims held by the worker for refused writes.
        held: usize,
        /// The refusal.
        refusal: Box<StoreError>,
    },
}

/// `claim X`, or `a batch of N claims`.
fn claims_text(claims: &[String]) -> String {
    match claims {
        [one] => format!("claim {one}"),
        many => format!("a batch of {} claims", many.len()),
    }
}

impl StoreError {
    /// A stored value of `what` (`table.column`) that cannot be decoded, and why.
    pub(crate) fn corrupt(what: &str, why: impl std::fmt::Display) -> StoreError {
        StoreError::Corrupt(format!("{what}: {why}"))
    }

    /// True when the database ended the transaction to break a deadlock or a serialization
    /// conflict (SQLSTATE 40P01, 40001): nothing it wrote was kept, and it may run again.
    pub fn is_conflict(&self) -> bool {
        matches!(self, StoreError::Db(sqlx::Error::Database(e))
            if matches!(e.code().as_deref(), Some("40P01" | "40001")))
    }

    /// True when the database refused a write for the values it holds: a constraint or a
    /// trigger of the schema (on PostgreSQL SQLSTATE class 22, data exception, class 23,
    /// integrity constraint violation, and `P0001`, raised by a trigger; on SQLite a
    /// constraint, a trigger's `RAISE` included), as opposed to a connection or server failure.
    pub fn is_refused(&self) -> bool {
        let StoreError::Db(sqlx::Error::Database(e)) = self else {
            return false;
        };
        if e.try_downcast_ref::<sqlx::sqlite::SqliteError>().is_some() {
            // The primary result code, in the low byte of the extended one: SQLITE_CONSTRAINT.
            return e
                .code()
                .and_then(|c| c.parse::<u32>().ok())
                .is_some_and(|c| c & 0xff == 19);
        }
        e.code()
            .is_some_and(|c| c.starts_with("22") || c.starts_with("23") || c == "P0001")
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

/// A claim read in bulk: parsed, or the reason it cannot be used.
pub type LoadedClaim = Result<Claim, BadClaim>;
