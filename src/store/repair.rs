//! Operator repairs on the store: holds, releases, resyncs and outbox retries/discards, each
//! written with its `claim_history` row in one transaction, and the outbox listing they start from.

use std::future::Future;

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::row::{ReadRow, outbox_email};
use super::{HistoryEntry, Outbox, OutboxEmail, StoreError};

/// One `cpor_outbox` row with its delivery state, for listings and repairs.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct OutboxRow {
    /// Row id (what `outbox retry ID` names).
    pub id: i64,
    /// An [`super::OutboxState`] id: `pending`, `sending`, `sent`, `dead`, `expired`, `withdrawn` or `discarded`.
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
pub trait Repairs: Outbox {
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

    /// Holds a claim, with its `history` row if given; false if it was already held (nothing
    /// written). `NotFound` if no such claim.
    fn hold_claim(
        &self,
        hold: &Hold,
        history: Option<&HistoryEntry>,
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

/// `impl Repairs for $store`; `lock` ends the SELECT that locks a claim's row for the
/// transaction (empty where the write lock covers it), `in_ids` tests a column against the
/// [`super::bind::Ids`] bound as `$1`. The backend's module provides `Conn`, `Tx` and `begin_write`.
macro_rules! impl_repairs {
    ($store:ty, lock = $lock:literal, in_ids = $in:literal) => {
        impl $store {
            /// Locks the claim's row (so a concurrent pass waits) or says it does not exist.
            async fn lock_claim(conn: &mut Conn, claim_id: &str) -> Result<(), $crate::store::StoreError> {
                let found: Option<String> =
                    sqlx::query_scalar(concat!("SELECT id FROM claims WHERE id = $1", $lock))
                        .bind(claim_id)
                        .fetch_optional(&mut *conn)
                        .await?;
                found
                    .map(|_| ())
                    .ok_or_else(|| $crate::store::StoreError::NotFound(claim_id.to_owned()))
            }

            /// Writes the history row of a repair that changed something, and commits.
            async fn commit_done(
                mut tx: Tx,
                done: bool,
                h: &$crate::store::HistoryEntry,
            ) -> Result<bool, $crate::store::StoreError> {
                if done {
                    $crate::store::claims::insert_history!(&mut *tx, h).await?;
                }
                tx.commit().await?;
                Ok(done)
            }

            /// Marks a claim's timers for recomputation (only a claim the worker has seen: an
            /// unseen one is computed by the next pass anyway, and stays first-sight).
            async fn mark_dirty(conn: &mut Conn, claim_id: &str) -> Result<(), $crate::store::StoreError> {
                sqlx::query(
                    "UPDATE cpor_claim_sync SET dirty = TRUE, dirty_gen = dirty_gen + 1 WHERE claim_id = $1",
                )
                .bind(claim_id)
                .execute(&mut *conn)
                .await?;
                Ok(())
            }
        }

        impl $crate::store::Repairs for $store {
            async fn outbox_list(
                &self,
                state: Option<&str>,
                claim_id: Option<&str>,
                limit: i64,
            ) -> Result<Vec<$crate::store::OutboxRow>, $crate::store::StoreError> {
                let rows = sqlx::query(
                    "SELECT * FROM cpor_outbox WHERE ($1 IS NULL OR state = $1) \
                     AND ($2 IS NULL OR claim_id = $2) ORDER BY id DESC LIMIT $3",
                )
                .bind(state)
                .bind(claim_id)
                .bind(limit)
                .fetch_all(self.pool())
                .await?;
                rows.iter().map($crate::store::repair::outbox_row).collect()
            }

            async fn outbox_row(
                &self,
                id: i64,
            ) -> Result<Option<$crate::store::OutboxRow>, $crate::store::StoreError> {
                let row = sqlx::query("SELECT * FROM cpor_outbox WHERE id = $1")
                    .bind(id)
                    .fetch_optional(self.pool())
                    .await?;
                row.as_ref().map($crate::store::repair::outbox_row).transpose()
            }

            async fn retry_email(
                &self,
                id: i64,
                e: &$crate::store::OutboxEmail,
                h: &$crate::store::HistoryEntry,
                at: chrono::DateTime<chrono::Utc>,
            ) -> Result<bool, $crate::store::StoreError> {
                use $crate::store::state::outbox_state;
                let mut tx = self.begin_write().await?;
                let done = sqlx::query(concat!(
                    "UPDATE cpor_outbox SET state = ", outbox_state!(Pending),
                    ", attempts = 0, last_error = NULL, next_attempt_at = $2, to_name = $3, ",
                    "to_address = $4, locale = $5, payload = $6 WHERE id = $1 AND state = ",
                    outbox_state!(Dead)
                ))
                .bind(id)
                .bind($crate::store::bind::At(at))
                .bind(&e.to_name)
                .bind(&e.to_address)
                .bind(&e.locale)
                .bind($crate::store::bind::Doc(&e.payload))
                .execute(&mut *tx)
                .await?
                .rows_affected()
                    > 0;
                Self::commit_done(tx, done, h).await
            }

            async fn discard_email(
                &self,
                id: i64,
                h: &$crate::store::HistoryEntry,
            ) -> Result<bool, $crate::store::StoreError> {
                use $crate::store::state::outbox_state;
                let mut tx = self.begin_write().await?;
                let done = sqlx::query(concat!(
                    "UPDATE cpor_outbox SET state = ", outbox_state!(Discarded),
                    ", last_error = $2 WHERE id = $1 AND state IN (",
                    outbox_state!(Pending), ", ", outbox_state!(Dead), ")"
                ))
                .bind(id)
                .bind(format!(
                    "discarded by an operator: {}",
                    h.details["reason"].as_str().unwrap_or_default()
                ))
                .execute(&mut *tx)
                .await?
                .rows_affected()
                    > 0;
                Self::commit_done(tx, done, h).await
            }

            async fn hold_claim(
                &self,
                hold: &$crate::store::Hold,
                h: Option<&$crate::store::HistoryEntry>,
            ) -> Result<bool, $crate::store::StoreError> {
                let mut tx = self.begin_write().await?;
                Self::lock_claim(&mut tx, &hold.claim_id).await?;
                let done = sqlx::query(
                    "INSERT INTO cpor_claim_holds (claim_id, reason, held_by, held_at) \
                     VALUES ($1, $2, $3, $4) ON CONFLICT (claim_id) DO NOTHING",
                )
                .bind(&hold.claim_id)
                .bind(&hold.reason)
                .bind(&hold.held_by)
                .bind($crate::store::bind::At(hold.held_at))
                .execute(&mut *tx)
                .await?
                .rows_affected()
                    > 0;
                match h {
                    Some(h) => Self::commit_done(tx, done, h).await,
                    None => {
                        tx.commit().await?;
                        Ok(done)
                    }
                }
            }

            async fn release_claim(
                &self,
                claim_id: &str,
                h: &$crate::store::HistoryEntry,
            ) -> Result<$crate::store::Released, $crate::store::StoreError> {
                use $crate::store::state::timer_state;
                let mut tx = self.begin_write().await?;
                let exists = match Self::lock_claim(&mut tx, claim_id).await {
                    Ok(()) => true,
                    Err($crate::store::StoreError::NotFound(_)) => false,
                    Err(e) => return Err(e),
                };
                let hold = sqlx::query("DELETE FROM cpor_claim_holds WHERE claim_id = $1")
                    .bind(claim_id)
                    .execute(&mut *tx)
                    .await?
                    .rows_affected()
                    > 0;
                // The hold of a claim the main system deleted since goes too (it would count
                // against the worker's holds for refused writes for good); there is no claim
                // to write history for.
                if !exists {
                    if !hold {
                        return Err($crate::store::StoreError::NotFound(claim_id.to_owned()));
                    }
                    tx.commit().await?;
                    return Ok($crate::store::Released { hold, first_sight: 0 });
                }
                let first_sight = sqlx::query(concat!(
                    "UPDATE cpor_timers SET state = ", timer_state!(Pending),
                    ", fired_at = NULL, outcome = NULL WHERE claim_id = $1 AND state = ",
                    timer_state!(Held)
                ))
                .bind(claim_id)
                .execute(&mut *tx)
                .await?
                .rows_affected();
                let released = $crate::store::Released { hold, first_sight };
                if !released.is_empty() {
                    Self::mark_dirty(&mut tx, claim_id).await?;
                    $crate::store::claims::insert_history!(&mut *tx, h).await?;
                }
                tx.commit().await?;
                Ok(released)
            }

            async fn resync_claim(
                &self,
                claim_id: &str,
                h: &$crate::store::HistoryEntry,
            ) -> Result<(), $crate::store::StoreError> {
                let mut tx = self.begin_write().await?;
                Self::lock_claim(&mut tx, claim_id).await?;
                Self::mark_dirty(&mut tx, claim_id).await?;
                $crate::store::claims::insert_history!(&mut *tx, h).await?;
                tx.commit().await?;
                Ok(())
            }

            async fn holds(
                &self,
                claim_ids: Option<&[String]>,
            ) -> Result<Vec<$crate::store::Hold>, $crate::store::StoreError> {
                let rows = sqlx::query(concat!(
                    "SELECT * FROM cpor_claim_holds WHERE ($1 IS NULL OR claim_id ", $in, ") ",
                    "ORDER BY held_at, claim_id"
                ))
                .bind(claim_ids.map($crate::store::bind::Ids))
                .fetch_all(self.pool())
                .await?;
                rows.iter().map($crate::store::repair::hold_row).collect()
            }
        }
    };
}
pub(crate) use impl_repairs;

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
