//! [`TimerIndex`]: the worker's index of pending timers. The claims trigger records changes;
//! a sync page takes them, recomputes the claims' timers and saves them; a fire batch takes
//! claims with due timers, locks them, decides and writes everything in one transaction.
//! [`impl_timer_index!`] writes the shared statements once; each backend supplies the writes
//! that differ by nature (`UNNEST` arrays on PostgreSQL, a row at a time on SQLite).

use std::future::Future;

use chrono::{DateTime, Utc};

use std::collections::HashMap;

use super::{ChangePage, ChangedClaim, ClaimWrite, FireInput, Store, StoreError, SyncedClaim};
use crate::timers::ClaimFacts;

/// Commits a batch's transaction if the batch succeeded, else rolls it back at once (a
/// dropped transaction would keep its row locks, and so its lease on change records and due
/// timers, until its connection is next used).
pub(crate) async fn finish<DB: sqlx::Database, T>(
    tx: sqlx::Transaction<'static, DB>,
    result: Result<T, StoreError>,
) -> Result<T, StoreError> {
    match result {
        Ok(v) => {
            tx.commit().await?;
            Ok(v)
        }
        Err(e) => {
            // The batch's own error is the one to report; a connection whose rollback failed
            // is not used again (PostgreSQL: sqlx closes it; SQLite: the pool's release check).
            let _ = tx.rollback().await;
            Err(e)
        }
    }
}

/// The timer index every backend keeps.
pub trait TimerIndex: Store {
    /// One sync page in one transaction: takes the oldest `limit` change records after
    /// `after_seq` the claims trigger wrote that no other transaction holds (so replicas and
    /// concurrent pages split them), keeps their status changes in the timeline, reads and locks the changed claims
    /// whose timers were not computed from their current version, asks `compute` for their
    /// timers (one [`SyncedClaim`] per claim, in any order, given with what the worker already
    /// did for it; awaited, so the caller may compute off the task that drives other pages),
    /// saves them and deletes the records. A crash before the commit loses nothing: the
    /// records stay. The records of claims another transaction holds stay too, for a later page.
    fn sync_changes<F, C>(
        &self,
        limit: i64,
        after_seq: i64,
        fingerprint: &str,
        at: DateTime<Utc>,
        compute: F,
    ) -> impl Future<Output = Result<ChangePage, StoreError>> + Send
    where
        F: FnOnce(Vec<ChangedClaim>, HashMap<String, ClaimFacts>) -> C + Send,
        C: Future<Output = Vec<SyncedClaim>> + Send;

    /// How many sync pages or fire batches may run at once against this store (each holds a
    /// connection; SQLite has one writer, so 1).
    fn parallel_batches(&self) -> usize {
        1
    }

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

    /// Clears the recomputation marks of claims the main system has deleted (nothing can
    /// compute them again); returns how many were cleared.
    fn forget_gone_marks(&self) -> impl Future<Output = Result<u64, StoreError>> + Send;

    /// Replaces each claim's pending timers and records the version they came from; a claim
    /// locked elsewhere or changed since it was read is marked for recomputation instead.
    fn save_sync(
        &self,
        synced: &[SyncedClaim],
        fingerprint: &str,
        at: DateTime<Utc>,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// How many pending timers are due at `now` (the overdue gauge), not counting held claims'.
    fn count_due(&self, now: DateTime<Utc>)
    -> impl Future<Output = Result<i64, StoreError>> + Send;

    /// Whether a pass at `now` may find anything to sync or fire: a change record, a claim
    /// (that still exists) marked for recomputation, a pending timer due at `now` of a claim no
    /// operator holds, or timers computed with calendars other than `fingerprint` (or none
    /// recorded yet). One statement, so a pass with nothing to do costs one round trip; false
    /// only when sync and fire would do nothing.
    fn has_work(
        &self,
        now: DateTime<Utc>,
        fingerprint: &str,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// Claims whose timers could not be computed at their last sync, with the problem.
    fn claim_problems(
        &self,
    ) -> impl Future<Output = Result<Vec<(String, String)>, StoreError>> + Send;

    /// One fire batch in one transaction: takes up to `limit` claims with timers due at `now`
    /// (skipping those another replica holds, and claims an operator holds), locks them, asks
    /// `decide` what to write for them (one write per input, in the inputs' order; all at once
    /// and awaited, so the caller may decide on every core off the task that drives other
    /// batches), and writes it all. Returns how many claims were handled (0: none was due that no
    /// one else holds).
    fn fire_batch<F, D>(
        &self,
        now: DateTime<Utc>,
        limit: i64,
        fingerprint: &str,
        decide: F,
    ) -> impl Future<Output = Result<usize, StoreError>> + Send
    where
        F: FnOnce(Vec<FireInput>) -> D + Send,
        D: Future<Output = Vec<ClaimWrite>> + Send;
}

/// `impl TimerIndex for $store` from the backend's fragments: `version` selects the claim's
/// version column, `version_int` reads it as an integer (-1 when it is not one), `in_ids`
/// tests a column against the [`super::bind::Ids`] bound as `$1`, `skip_locked` and
/// `lock_claims` end the SELECTs that take rows for this transaction alone, `parallel` is the
/// store's [`TimerIndex::parallel_batches`]. The backend's module provides its connection type
/// `Conn` and `begin_write`, `write_timeline`, `claim_first_sight`, `write_sync`, `write_fired`
/// and `read_facts`
/// ([`super::facts::impl_read_facts!`]).
macro_rules! impl_timer_index {
    ($store:ty, version = $v:literal, version_int = $vint:literal, in_ids = $in:literal,
     skip_locked = $skip:literal, lock_claims = $lock:literal, parallel = $par:path) => {
        impl $store {
            /// Marks claims for recomputation (their timers could not be saved: another
            /// transaction held them), each in a statement of its own, outside any batch.
            async fn mark_for_resync(
                &self,
                ids: &[String],
                fingerprint: &str,
                at: chrono::DateTime<chrono::Utc>,
            ) -> Result<(), $crate::store::StoreError> {
                for id in ids {
                    sqlx::query(
                        "INSERT INTO cpor_claim_sync (claim_id, version, fingerprint, dirty, dirty_gen, synced_at) \
                         VALUES ($1, -1, $2, TRUE, 1, $3) ON CONFLICT (claim_id) DO UPDATE \
                         SET dirty = TRUE, dirty_gen = cpor_claim_sync.dirty_gen + 1",
                    )
                    .bind(id)
                    .bind(fingerprint)
                    .bind($crate::store::bind::At(at))
                    .execute(self.pool())
                    .await?;
                }
                Ok(())
            }
        }

        impl $crate::store::TimerIndex for $store {
            $crate::store::sync_page::sync_changes_method!(
                version = $v, in_ids = $in, skip_locked = $skip, lock_claims = $lock
            );

            fn parallel_batches(&self) -> usize {
                $par(self)
            }

            async fn stale_claims(
                &self,
                fingerprint: &str,
                calendars: bool,
                after_id: &str,
                limit: i64,
            ) -> Result<Vec<$crate::store::ChangedClaim>, $crate::store::StoreError> {
                let rows = sqlx::query(concat!(
                    $crate::store::claims::changed_select!($v),
                    "WHERE id > $3 AND id IN (SELECT s.claim_id FROM cpor_claim_sync s WHERE s.dirty ",
                    "OR ($2 AND s.fingerprint <> $1 AND (s.problem IS NOT NULL OR EXISTS (",
                    "SELECT 1 FROM cpor_timers t WHERE t.claim_id = s.claim_id AND t.state = ",
                    $crate::store::state::timer_state!(Pending),
                    ")))) ORDER BY id LIMIT $4"
                ))
                .bind(fingerprint)
                .bind(calendars)
                .bind(after_id)
                .bind(limit)
                .fetch_all(self.pool())
                .await?;
                $crate::store::row::changed_claims(&rows)
            }

            async fn forget_gone_marks(&self) -> Result<u64, $crate::store::StoreError> {
                // Only the mark that was seen with its claim missing: a statement that waited
                // on a row re-checks it in its newer version but judges the claim by its own
                // snapshot, so a claim inserted again and marked again meanwhile (its
                // `dirty_gen` bumped) keeps its mark. A claim inserted again leaves a change
                // record of its own as well.
                let done = sqlx::query(
                    "UPDATE cpor_claim_sync SET dirty = FALSE WHERE dirty AND (claim_id, dirty_gen) IN \
                     (SELECT s.claim_id, s.dirty_gen FROM cpor_claim_sync s WHERE s.dirty AND NOT EXISTS \
                     (SELECT 1 FROM claims c WHERE c.id = s.claim_id))",
                )
                .execute(self.pool())
                .await?;
                Ok(done.rows_affected())
            }

            async fn save_sync(
                &self,
                synced: &[$crate::store::SyncedClaim],
                fingerprint: &str,
                at: chrono::DateTime<chrono::Utc>,
            ) -> Result<(), $crate::store::StoreError> {
                use $crate::store::row::ReadRow;
                if synced.is_empty() {
                    return Ok(());
                }
                let mut ids: Vec<String> = synced.iter().map(|s| s.claim_id.clone()).collect();
                ids.sort();
                let mut tx = self.begin_write().await?;
                let saved = async {
                    // Timers are saved only under the claim's row lock (PostgreSQL; SQLite's write
                    // lock covers everything) and only for the version they were computed from.
                    let mut stored: std::collections::HashMap<String, i64> =
                        std::collections::HashMap::new();
                    let rows = sqlx::query(concat!(
                        "SELECT id, ", $vint, " AS version FROM claims WHERE id ", $in,
                        " ORDER BY id", $skip
                    ))
                    .bind($crate::store::bind::Ids(&ids))
                    .fetch_all(&mut *tx)
                    .await?;
                    for r in &rows {
                        let id = r.text("id").ok().flatten().unwrap_or_default();
                        let version = r.int("version").unwrap_or($crate::store::work::UNREADABLE_VERSION);
                        stored.insert(id, version);
                    }
                    let (keep, skip): (Vec<&$crate::store::SyncedClaim>, Vec<&$crate::store::SyncedClaim>) =
                        synced.iter().partition(|s| {
                            // A claim whose version cannot be read has no timers to guard: its
                            // problem is saved.
                            s.version == $crate::store::work::UNREADABLE_VERSION
                                || stored.get(&s.claim_id) == Some(&s.version)
                        });
                    let mut keep: Vec<$crate::store::SyncedClaim> = keep.into_iter().cloned().collect();
                    keep.sort_by(|a, b| a.claim_id.cmp(&b.claim_id));
                    Self::write_sync(&mut tx, &keep, fingerprint, at, None).await?;
                    Ok::<_, $crate::store::StoreError>(
                        skip.iter().map(|s| s.claim_id.clone()).collect::<Vec<String>>(),
                    )
                }
                .await;
                let skipped = $crate::store::timer_index::finish(tx, saved).await?;
                // After the commit: marking waits on no lock another replica's batch holds.
                self.mark_for_resync(&skipped, fingerprint, at).await
            }

            async fn count_due(
                &self,
                now: chrono::DateTime<chrono::Utc>,
            ) -> Result<i64, $crate::store::StoreError> {
                Ok(sqlx::query_scalar(concat!(
                    "SELECT count(*) FROM cpor_timers t WHERE t.state = ",
                    $crate::store::state::timer_state!(Pending),
                    " AND t.due_at <= $1 AND NOT EXISTS ",
                    "(SELECT 1 FROM cpor_claim_holds h WHERE h.claim_id = t.claim_id)"
                ))
                .bind($crate::store::bind::At(now))
                .fetch_one(self.pool())
                .await?)
            }

            async fn has_work(
                &self,
                now: chrono::DateTime<chrono::Utc>,
                fingerprint: &str,
            ) -> Result<bool, $crate::store::StoreError> {
                // Scalar subqueries keep their ORDER BY … LIMIT 1, so each starts at one probe
                // of an index (an EXISTS may become a scan past the dead rows a large sync left).
                // A mark's claim is checked by a scalar subquery, not EXISTS: PostgreSQL turns
                // EXISTS and IN into joins it may drive from the claims, never a scalar
                // subquery. With statistics that predate a first sight of 1,000,000 claims it
                // walked every claim to find none marked (0.44-1.13 s a pass, 1-4 replicas,
                // `benches/scale.rs`). Do not turn it back into EXISTS.
                let busy: bool = sqlx::query_scalar(concat!(
                    "SELECT (SELECT seq FROM cpor_claim_changes ORDER BY seq LIMIT 1) IS NOT NULL ",
                    "OR (SELECT due_at FROM cpor_timers WHERE state = ",
                    $crate::store::state::timer_state!(Pending),
                    " AND due_at <= $1 AND NOT EXISTS (SELECT 1 FROM cpor_claim_holds h ",
                    "WHERE h.claim_id = cpor_timers.claim_id) ORDER BY due_at LIMIT 1) IS NOT NULL ",
                    "OR (SELECT s.claim_id FROM cpor_claim_sync s WHERE s.dirty AND (SELECT 1 ",
                    "FROM claims c WHERE c.id = s.claim_id LIMIT 1) IS NOT NULL ",
                    "ORDER BY s.claim_id LIMIT 1) IS NOT NULL ",
                    "OR NOT EXISTS (SELECT 1 FROM cpor_worker_state WHERE key = $2 AND value = $3)"
                ))
                .bind($crate::store::bind::At(now))
                .bind($crate::store::CALENDAR_FINGERPRINT_KEY)
                .bind(fingerprint)
                .fetch_one(self.pool())
                .await?;
                Ok(busy)
            }

            async fn claim_problems(&self) -> Result<Vec<(String, String)>, $crate::store::StoreError> {
                use sqlx::Row;
                let rows = sqlx::query(
                    "SELECT claim_id, problem FROM cpor_claim_sync WHERE problem IS NOT NULL \
                     ORDER BY claim_id",
                )
                .fetch_all(self.pool())
                .await?;
                rows.iter()
                    .map(|r| Ok((r.try_get("claim_id")?, r.try_get("problem")?)))
                    .collect()
            }

            $crate::store::fire_batch::fire_batch_method!(
                version = $v, in_ids = $in, skip_locked = $skip, lock_claims = $lock
            );
        }
    };
}
pub(crate) use impl_timer_index;
