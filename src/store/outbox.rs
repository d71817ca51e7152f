//! [`Outbox`]: emails written with the action that sends them, leased to one sender at a time,
//! recorded as sent, retried, dead, expired or withdrawn; and the SLA digests for operations.
//! [`impl_outbox!`] writes the statements both backends share.

use std::future::Future;

use chrono::{DateTime, Utc};

use super::{
    DeadEmail, DeliveryResult, OutboxCounts, OutboxEmail, PendingEmail, SlaAlert, Store, StoreError,
};

/// The outbox every backend keeps.
pub trait Outbox: Store {
    /// Takes up to `limit` outbox emails due for an attempt at `now`, leasing them until `lease_until`.
    fn take_emails(
        &self,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
        limit: i64,
    ) -> impl Future<Output = Result<Vec<PendingEmail>, StoreError>> + Send;

    /// Records a delivery attempt; a delivered (or dead) consent email marks its claim for
    /// recomputation; an expired or withdrawn one writes its claim's history row.
    fn record_delivery(
        &self,
        id: i64,
        result: &DeliveryResult,
        now: DateTime<Utc>,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// The outbox emails of one claim with their states, oldest first (explain).
    fn claim_emails(
        &self,
        claim_id: &str,
    ) -> impl Future<Output = Result<Vec<(OutboxEmail, String)>, StoreError>> + Send;

    /// Dead-lettered outbox emails, oldest first.
    fn dead_emails(&self) -> impl Future<Output = Result<Vec<DeadEmail>, StoreError>> + Send;

    /// How many outbox emails are in each state.
    fn outbox_counts(&self) -> impl Future<Output = Result<OutboxCounts, StoreError>> + Send;

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
}

/// Marks a consent email's claim for recomputation on `$conn` when `$row` (`claim_id`,
/// `email`) is a consent request.
macro_rules! dirty_if_consent {
    ($conn:expr, $row:expr) => {{
        use sqlx::Row;
        if let Some(row) = $row
            && row.try_get::<String, _>("email")? == $crate::timers::EmailKind::ConsentRequest.as_str()
        {
            sqlx::query(
                "UPDATE cpor_claim_sync SET dirty = TRUE, dirty_gen = dirty_gen + 1 WHERE claim_id = $1",
            )
            .bind(row.try_get::<String, _>("claim_id")?)
            .execute($conn)
            .await?;
        }
    }};
}
pub(crate) use dirty_if_consent;

/// `impl Outbox for $store`; `skip_locked` ends the SELECTs that lease rows to one sender.
/// The backend's module provides `begin_write`, `insert_emails` and `mark_notified`.
macro_rules! impl_outbox {
    ($store:ty, skip_locked = $skip:literal) => {
        impl $crate::store::Outbox for $store {
            async fn take_emails(
                &self,
                now: chrono::DateTime<chrono::Utc>,
                lease_until: chrono::DateTime<chrono::Utc>,
                limit: i64,
            ) -> Result<Vec<$crate::store::PendingEmail>, $crate::store::StoreError> {
                use $crate::store::bind::At;
                use $crate::store::state::outbox_state;
                let mut tx = self.begin_write().await?;
                let rows = sqlx::query(concat!(
                    "UPDATE cpor_outbox SET state = ", outbox_state!(Sending),
                    ", next_attempt_at = $2 WHERE id IN (SELECT id FROM cpor_outbox WHERE state IN (",
                    outbox_state!(Pending), ", ", outbox_state!(Sending), ") AND next_attempt_at <= $1 ",
                    "ORDER BY next_attempt_at, id LIMIT $3", $skip, ") ",
                    "RETURNING id, attempts, message_id, claim_id, timer, started_at, email, to_name, ",
                    "to_address, locale, payload, not_after, announced_last_day, announced_passes_at, ",
                    "calendar_version, template_version"
                ))
                .bind(At(now))
                .bind(At(lease_until))
                .bind(limit)
                .fetch_all(&mut *tx)
                .await?;
                tx.commit().await?;
                let mut out: Vec<$crate::store::PendingEmail> = rows
                    .iter()
                    .map($crate::store::row::pending_email)
                    .collect::<Result<_, $crate::store::StoreError>>()?;
                out.sort_by_key(|p| p.id);
                Ok(out)
            }

            async fn record_delivery(
                &self,
                id: i64,
                result: &$crate::store::DeliveryResult,
                now: chrono::DateTime<chrono::Utc>,
            ) -> Result<(), $crate::store::StoreError> {
                use $crate::store::DeliveryResult;
                use $crate::store::bind::At;
                use $crate::store::state::{OutboxState, outbox_state};
                let mut tx = self.begin_write().await?;
                match result {
                    DeliveryResult::Sent => {
                        let row = sqlx::query(concat!(
                            "UPDATE cpor_outbox SET state = ", outbox_state!(Sent),
                            ", sent_at = $2, attempts = attempts + 1, last_error = NULL ",
                            "WHERE id = $1 AND state <> ", outbox_state!(Sent),
                            " RETURNING claim_id, email"
                        ))
                        .bind(id)
                        .bind(At(now))
                        .fetch_optional(&mut *tx)
                        .await?;
                        $crate::store::outbox::dirty_if_consent!(&mut *tx, row);
                    }
                    DeliveryResult::Retry { at, error } => {
                        sqlx::query(concat!(
                            "UPDATE cpor_outbox SET state = ", outbox_state!(Pending),
                            ", attempts = attempts + 1, next_attempt_at = $2, last_error = $3 ",
                            "WHERE id = $1 AND state <> ", outbox_state!(Sent)
                        ))
                        .bind(id)
                        .bind(At(*at))
                        .bind(error)
                        .execute(&mut *tx)
                        .await?;
                    }
                    DeliveryResult::Dead { error } => {
                        let row = sqlx::query(concat!(
                            "UPDATE cpor_outbox SET state = ", outbox_state!(Dead),
                            ", attempts = attempts + 1, last_error = $2 ",
                            "WHERE id = $1 AND state <> ", outbox_state!(Sent),
                            " RETURNING claim_id, email"
                        ))
                        .bind(id)
                        .bind(error)
                        .fetch_optional(&mut *tx)
                        .await?;
                        // A consent round that cannot start is a problem of its claim: recompute it.
                        $crate::store::outbox::dirty_if_consent!(&mut *tx, row);
                    }
                    DeliveryResult::Expired | DeliveryResult::Withdrawn { .. } => {
                        let (state, why) = match result {
                            DeliveryResult::Withdrawn { why } => {
                                (OutboxState::Withdrawn, Some(why.as_str()))
                            }
                            _ => (OutboxState::Expired, None),
                        };
                        let row = sqlx::query(concat!(
                            "UPDATE cpor_outbox SET state = $1, ",
                            "last_error = COALESCE($2, 'not sent: its not-after instant passed') ",
                            "WHERE id = $3 AND state <> ", outbox_state!(Sent),
                            " RETURNING claim_id, email, timer, started_at, not_after, message_id, ",
                            "announced_last_day, announced_passes_at, calendar_version"
                        ))
                        .bind(state.as_str())
                        .bind(why)
                        .bind(id)
                        .fetch_optional(&mut *tx)
                        .await?;
                        if let Some(row) = row {
                            let h = $crate::store::row::unsent_history(&row, now, why)?;
                            $crate::store::claims::insert_history!(&mut *tx, &h).await?;
                        }
                    }
                }
                tx.commit().await?;
                Ok(())
            }

            async fn claim_emails(
                &self,
                claim_id: &str,
            ) -> Result<Vec<($crate::store::OutboxEmail, String)>, $crate::store::StoreError> {
                use sqlx::Row;
                let rows = sqlx::query("SELECT * FROM cpor_outbox WHERE claim_id = $1 ORDER BY id")
                    .bind(claim_id)
                    .fetch_all(self.pool())
                    .await?;
                rows.iter()
                    .map(|r| Ok(($crate::store::row::outbox_email(r)?, r.try_get("state")?)))
                    .collect()
            }

            async fn dead_emails(
                &self,
            ) -> Result<Vec<$crate::store::DeadEmail>, $crate::store::StoreError> {
                let rows = sqlx::query(concat!(
                    "SELECT * FROM cpor_outbox WHERE state = ",
                    $crate::store::state::outbox_state!(Dead),
                    " ORDER BY id"
                ))
                .fetch_all(self.pool())
                .await?;
                rows.iter().map($crate::store::row::dead_email).collect()
            }

            async fn outbox_counts(
                &self,
            ) -> Result<$crate::store::OutboxCounts, $crate::store::StoreError> {
                use sqlx::Row;
                let rows = sqlx::query("SELECT state, count(*) AS n FROM cpor_outbox GROUP BY state")
                    .fetch_all(self.pool())
                    .await?;
                let mut c = $crate::store::OutboxCounts::default();
                for r in rows {
                    let state: String = r.try_get("state")?;
                    let n: i64 = r.try_get("n")?;
                    c.add(&state, n);
                }
                Ok(c)
            }

            async fn queue_sla_digest<F>(
                &self,
                now: chrono::DateTime<chrono::Utc>,
                limit: i64,
                build: F,
            ) -> Result<usize, $crate::store::StoreError>
            where
                F: FnOnce(&[$crate::store::SlaAlert]) -> $crate::store::OutboxEmail + Send,
            {
                let mut tx = self.begin_write().await?;
                let rows = sqlx::query(concat!(
                    "SELECT claim_id, timer, started_at, due_at, raised_at FROM cpor_sla_alerts ",
                    "WHERE notified_at IS NULL ORDER BY raised_at, claim_id LIMIT $1",
                    $skip
                ))
                .bind(limit)
                .fetch_all(&mut *tx)
                .await?;
                let alerts = rows
                    .iter()
                    .map($crate::store::row::sla_alert)
                    .collect::<Result<Vec<_>, $crate::store::StoreError>>()?;
                if alerts.is_empty() {
                    tx.commit().await?;
                    return Ok(0);
                }
                let email = build(&alerts);
                Self::insert_emails(&mut tx, &[&email], now).await?;
                Self::mark_notified(&mut tx, &alerts, now).await?;
                tx.commit().await?;
                Ok(alerts.len())
            }
        }
    };
}
pub(crate) use impl_outbox;

/// Puts each synced claim's dead-lettered consent email (its `requeue`) back in the outbox with
/// the corrected recipient, and writes the history row of each one put back. `set_to` is the
/// backend's rewrite of the payload's `to` from `$2` (name) and `$3` (address).
macro_rules! requeue_dead {
    ($conn:expr, $synced:expr, $at:expr, set_to = $set_to:literal) => {
        for (s, r) in $synced
            .iter()
            .filter_map(|s| Some((s, s.requeue.as_ref()?)))
        {
            use $crate::store::bind::At;
            use $crate::store::state::outbox_state;
            let requeued = sqlx::query(concat!(
                "UPDATE cpor_outbox SET state = ",
                outbox_state!(Pending),
                ", attempts = 0, last_error = NULL, next_attempt_at = $1, to_name = $2, ",
                "to_address = $3, payload = ",
                $set_to,
                " WHERE claim_id = $4 AND email = $5 AND started_at = $6 AND state = ",
                outbox_state!(Dead)
            ))
            .bind(At($at))
            .bind(&r.to_name)
            .bind(&r.to_address)
            .bind(&s.claim_id)
            .bind(r.email.as_str())
            .bind(At(r.start))
            .execute(&mut *$conn)
            .await?;
            if requeued.rows_affected() > 0 {
                $crate::store::claims::insert_history!(&mut *$conn, &r.history).await?;
            }
        }
    };
}
pub(crate) use requeue_dead;
