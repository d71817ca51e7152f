//! Operator repairs on the store: holds, releases, resyncs and outbox retries/discards, each
//! written with its `claim_history` row in one transaction, and the outbox listing they start from.

use std::future::Future;

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::row::{ReadRow, outbox_email};
use super::{HistoryEntry, OutboxEmail, Store, StoreError};

/// One `cpor_outbox` row with its delivery state, for listings and repairs.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct OutboxRow {
    /// Row id (what `outbox retry ID` names).
    pub id: i64,
    /// `pending`, `sending`, `sent`, `dead`, `expired` or `discarded`.
    pub state: String,
    /// Delivery attempts made.
    pub attempts: i64,
    /// The last delivery error.
    pub last_error: Option<String>,
    /// When it was written to the outbox.
    pub created_at: Option<DateTime<Utc>>,
    /// When it was delivered.
    pub sent_at: Option<DateTime<Utc>>,
    /// The email itself.
    #[serde(flatten)]
    pub email: OutboxEmail,
}

/// A claim an operator holds: none of its timers fire until it is released.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Hold {
    /// The claim.
    pub claim_id: String,
    /// Why it is held.
    pub reason: String,
    /// Who holds it.
    pub held_by: String,
    /// Since when.
    pub held_at: DateTime<Utc>,
}

/// What a release let go of.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Released {
    /// The operator's hold was removed.
    pub hold: bool,
    /// Timer runs held on first sight put back to pending.
    pub first_sight: u64,
}

impl Released {
    /// True when nothing was held (then nothing was written).
    pub fn is_empty(&self) -> bool {
        !self.hold && self.first_sight == 0
    }
}

/// Repairs every backend offers; each writes its history row in the same transaction.
pub trait Repairs: Store {
    /// Outbox rows, newest first, of `state` if given, of `claim_id` if given; at most `limit`.
    fn outbox_list(
        &self,
        state: Option<&str>,
        claim_id: Option<&str>,
        limit: i64,
    ) -> impl Future<Output = Result<Vec<OutboxRow>, StoreError>> + Send;

    /// One outbox row.
    fn outbox_row(
        &self,
        id: i64,
    ) -> impl Future<Output = Result<Option<OutboxRow>, StoreError>> + Send;

    /// Puts a `dead` email back to `pending` at `at`, attempts reset, with the recipient,
    /// locale and facts of `refreshed`; false (nothing written) if it is not dead.
    fn retry_email(
        &self,
        id: i64,
        refreshed: &OutboxEmail,
        history: &HistoryEntry,
        at: DateTime<Utc>,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// Marks a `pending` or `dead` email `discarded`, never delivered; false if it is in
    /// another state (nothing written).
    fn discard_email(
        &self,
        id: i64,
        history: &HistoryEntry,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// Holds a claim; false if it was already held (nothing written). `NotFound` if no such claim.
    fn hold_claim(
        &self,
        hold: &Hold,
        history: &HistoryEntry,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// Releases a claim's hold and its runs held on first sight, marking it for recomputation;
    /// writes `history` only when something was released.
    fn release_claim(
        &self,
        claim_id: &str,
        history: &HistoryEntry,
    ) -> impl Future<Output = Result<Released, StoreError>> + Send;

    /// Marks a claim's timers for recomputation by the next sync; `NotFound` if no such claim.
    fn resync_claim(
        &self,
        claim_id: &str,
        history: &HistoryEntry,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Held claims, oldest hold first; only those in `claim_ids` when given.
    fn holds(
        &self,
        claim_ids: Option<&[String]>,
    ) -> impl Future<Output = Result<Vec<Hold>, StoreError>> + Send;
}

/// An outbox row as read by either backend.
pub(crate) fn outbox_row<R: ReadRow>(r: &R) -> Result<OutboxRow, StoreError> {
    let bad = |c: &str, e: String| StoreError::corrupt(&format!("cpor_outbox.{c}"), e);
    Ok(OutboxRow {
        id: r.int("id").map_err(|e| bad("id", e))?,
        state: r
            .text("state")
            .map_err(|e| bad("state", e))?
            .unwrap_or_default(),
        attempts: r.int("attempts").map_err(|e| bad("attempts", e))?,
        last_error: r.text("last_error").map_err(|e| bad("last_error", e))?,
        created_at: r.instant("created_at").map_err(|e| bad("created_at", e))?,
        sent_at: r.instant("sent_at").map_err(|e| bad("sent_at", e))?,
        email: outbox_email(r)?,
    })
}

/// A hold row as read by either backend.
pub(crate) fn hold_row<R: ReadRow>(r: &R) -> Result<Hold, StoreError> {
    let bad = |c: &str, e: String| StoreError::corrupt(&format!("cpor_claim_holds.{c}"), e);
    Ok(Hold {
        claim_id: r
            .text("claim_id")
            .map_err(|e| bad("claim_id", e))?
            .unwrap_or_default(),
        reason: r
            .text("reason")
            .map_err(|e| bad("reason", e))?
            .unwrap_or_default(),
        held_by: r
            .text("held_by")
            .map_err(|e| bad("held_by", e))?
            .unwrap_or_default(),
        held_at: r
            .instant("held_at")
            .map_err(|e| bad("held_at", e))?
            .ok_or_else(|| bad("held_at", "missing".to_owned()))?,
    })
}
