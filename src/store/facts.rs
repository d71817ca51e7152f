//! What the worker already did for a set of claims (fired and held timers, delivered and
//! dead-lettered consent emails, announced deadlines, the status timeline), read in one go for
//! a sync page, a fire batch, the report and the console. [`impl_read_facts!`] writes the
//! statements once for both backends.

/// `impl $store { async fn read_facts(…) }` with the backend's id-list test `in_ids` (like
/// [`super::timer_index::impl_timer_index!`]'s); the backend's module provides `Conn`.
macro_rules! impl_read_facts {
    ($store:ty, in_ids = $in:literal) => {
        impl $store {
            /// What the worker already did for `ids`, read on `conn`, with the claims'
            /// timer runs as stored (one read of their timers for both); the status timeline
            /// only of `timeline_ids` (those whose status runs the decision SLA, the one
            /// timer that reads it: [`crate::timers::decision_sla_runs_in`]), which may name
            /// claims not in `ids` (a sync page's claims seen first).
            async fn read_facts(
                conn: &mut Conn,
                ids: &[String],
                timeline_ids: &[&str],
            ) -> Result<
                (
                    std::collections::HashMap<String, $crate::timers::ClaimFacts>,
                    $crate::store::work::Stored,
                ),
                $crate::store::StoreError,
            > {
                use $crate::store::bind::Ids;
                // (A sync page whose claims are all seen first has no `ids`.)
                let (timers, outbox) = if ids.is_empty() {
                    (Vec::new(), Vec::new())
                } else {
                    let timers = sqlx::query(concat!(
                        "SELECT claim_id, timer, started_at, due_at, claim_version, state, ",
                        "fired_at, outcome FROM cpor_timers WHERE claim_id ", $in
                    ))
                    .bind(Ids(ids))
                    .fetch_all(&mut *conn)
                    .await?;
                    // Every email of the claims, in one read: the facts take the consent
                    // emails delivered and dead-lettered and the deadlines announced; the
                    // Message-IDs tell a fire batch which of its emails exist.
                    let outbox = sqlx::query(concat!(
                        "SELECT claim_id, message_id, timer, email, state, started_at, ",
                        "created_at, sent_at, to_address, last_error, announced_last_day, ",
                        "announced_passes_at FROM cpor_outbox WHERE claim_id ", $in
                    ))
                    .bind(Ids(ids))
                    .fetch_all(&mut *conn)
                    .await?;
                    (timers, outbox)
                };
                let (mut stored, fired) = $crate::store::row::pending_runs(timers)?;
                stored.message_ids = outbox
                    .iter()
                    .filter_map(|r| $crate::store::read::ReadRow::text(r, "message_id").ok().flatten())
                    .collect();
                let timeline = if timeline_ids.is_empty() {
                    Vec::new()
                } else {
                    sqlx::query(concat!(
                        "SELECT claim_id, old_status, new_status, changed_at FROM cpor_status_timeline ",
                        "WHERE claim_id ", $in, " ORDER BY changed_at, seq"
                    ))
                    .bind(Ids(timeline_ids))
                    .fetch_all(&mut *conn)
                    .await?
                };
                let facts = $crate::store::row::facts(&fired, &outbox, &timeline)?;
                Ok((facts, stored))
            }
        }
    };
}
pub(crate) use impl_read_facts;
