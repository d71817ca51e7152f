//! `SqliteStore`'s outbox: emails written with an action, leased to one sender at a time,
//! recorded as sent, retried or dead; and the SLA digests for operations.

use chrono::{DateTime, Utc};

use super::row::{dead_email, outbox_email, pending_email, sla_alert};
use sqlx::{Row, SqliteConnection};

use super::sqlite::format_ts;
use super::{
    DeadEmail, DeliveryResult, OutboxCounts, OutboxEmail, PendingEmail, SlaAlert, SqliteStore,
    StoreError,
};

impl SqliteStore {
    pub(super) async fn take_emails_impl(
        &self,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
        limit: i64,
    ) -> Result<Vec<PendingEmail>, StoreError> {
        let mut tx = self.pool().begin_with("BEGIN IMMEDIATE").await?;
        let rows = sqlx::query(
            "UPDATE cpor_outbox SET state = 'sending', next_attempt_at = ?2 WHERE id IN ( \
               SELECT id FROM cpor_outbox WHERE state IN ('pending', 'sending') AND next_attempt_at <= ?1 \
               ORDER BY next_attempt_at, id LIMIT ?3) \
             RETURNING id, attempts, message_id, claim_id, timer, started_at, email, to_name, to_address, \
               locale, payload, not_after, announced_last_day, announced_passes_at, calendar_version, \
               template_version",
        )
        .bind(format_ts(now))
        .bind(format_ts(lease_until))
        .bind(limit)
        .fetch_all(&mut *tx)
        .await?;
        tx.commit().await?;
        let mut out: Vec<PendingEmail> = rows
            .iter()
            .map(pending_email)
            .collect::<Result<_, StoreError>>()?;
        out.sort_by_key(|p| p.id);
        Ok(out)
    }

    pub(super) async fn record_delivery_impl(
        &self,
        id: i64,
        result: &DeliveryResult,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let mut tx = self.pool().begin_with("BEGIN IMMEDIATE").await?;
        match result {
            DeliveryResult::Sent => {
                let row = sqlx::query(
                    "UPDATE cpor_outbox SET state = 'sent', sent_at = ?2, attempts = attempts + 1, \
                     last_error = NULL WHERE id = ?1 AND state <> 'sent' RETURNING claim_id, email",
                )
                .bind(id)
                .bind(format_ts(now))
                .fetch_optional(&mut *tx)
                .await?;
                if let Some(row) = row {
                    let email: String = row.try_get("email")?;
                    if email == "consent_request" {
                        let claim: String = row.try_get("claim_id")?;
                        sqlx::query(
                            "UPDATE cpor_claim_sync SET dirty = 1, dirty_gen = dirty_gen + 1 WHERE claim_id = ?",
                        )
                        .bind(claim)
                        .execute(&mut *tx)
                        .await?;
                    }
                }
            }
            DeliveryResult::Retry { at, error } => {
                sqlx::query(
                    "UPDATE cpor_outbox SET state = 'pending', attempts = attempts + 1, next_attempt_at = ?2, \
                     last_error = ?3 WHERE id = ?1 AND state <> 'sent'",
                )
                .bind(id)
                .bind(format_ts(*at))
                .bind(error)
                .execute(&mut *tx)
                .await?;
            }
            DeliveryResult::Dead { error } => {
                let row = sqlx::query(
                    "UPDATE cpor_outbox SET state = 'dead', attempts = attempts + 1, last_error = ?2 \
                     WHERE id = ?1 AND state <> 'sent' RETURNING claim_id, email",
                )
                .bind(id)
                .bind(error)
                .fetch_optional(&mut *tx)
                .await?;
                // A consent round that cannot start is a problem of its claim: recompute it.
                if let Some(row) = row
                    && row.try_get::<String, _>("email")? == "consent_request"
                {
                    sqlx::query(
                        "UPDATE cpor_claim_sync SET dirty = 1, dirty_gen = dirty_gen + 1 WHERE claim_id = ?1",
                    )
                    .bind(row.try_get::<String, _>("claim_id")?)
                    .execute(&mut *tx)
                    .await?;
                }
            }
            DeliveryResult::Expired | DeliveryResult::Withdrawn { .. } => {
                let (state, why) = match result {
                    DeliveryResult::Withdrawn { why } => ("withdrawn", Some(why.as_str())),
                    _ => ("expired", None),
                };
                let row = sqlx::query(
                    "UPDATE cpor_outbox SET state = ?1, \
                       last_error = COALESCE(?2, 'not sent: its not-after instant passed') \
                     WHERE id = ?3 AND state <> 'sent' RETURNING claim_id, email, timer, started_at, not_after, message_id, \
                     announced_last_day, announced_passes_at, calendar_version",
                )
                .bind(state)
                .bind(why)
                .bind(id)
                .fetch_optional(&mut *tx)
                .await?;
                if let Some(row) = row {
                    let h = super::row::unsent_history(&row, now, why)?;
                    sqlx::query(
                        "INSERT INTO claim_history (claim_id, occurred_at, actor, action, details) \
                         VALUES (?1, ?2, ?3, ?4, ?5)",
                    )
                    .bind(&h.claim_id)
                    .bind(format_ts(now))
                    .bind(h.actor.as_str())
                    .bind(&h.action)
                    .bind(h.details.to_string())
                    .execute(&mut *tx)
                    .await?;
                }
            }
        }
        tx.commit().await?;
        Ok(())
    }

    pub(super) async fn claim_emails_impl(
        &self,
        claim_id: &str,
    ) -> Result<Vec<(OutboxEmail, String)>, StoreError> {
        let rows = sqlx::query("SELECT * FROM cpor_outbox WHERE claim_id = ? ORDER BY id")
            .bind(claim_id)
            .fetch_all(self.pool())
            .await?;
        rows.iter()
            .map(|r| Ok((outbox_email(r)?, r.try_get("state")?)))
            .collect()
    }

    pub(super) async fn outbox_counts_impl(&self) -> Result<OutboxCounts, StoreError> {
        let rows = sqlx::query("SELECT state, count(*) AS n FROM cpor_outbox GROUP BY state")
            .fetch_all(self.pool())
            .await?;
        let mut c = OutboxCounts::default();
        for r in rows {
            let state: String = r.try_get("state")?;
            let n: i64 = r.try_get("n")?;
            c.add(&state, n);
        }
        Ok(c)
    }
}

impl SqliteStore {
    pub(super) async fn dead_emails_impl(&self) -> Result<Vec<DeadEmail>, StoreError> {
        let rows = sqlx::query("SELECT * FROM cpor_outbox WHERE state = 'dead' ORDER BY id")
            .fetch_all(self.pool())
            .await?;
        rows.iter().map(dead_email).collect()
    }
}

/// Writes one outbox email (a second write of the same Message-ID is ignored).
pub(super) async fn insert_email(
    conn: &mut SqliteConnection,
    e: &OutboxEmail,
    at: &str,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO cpor_outbox (message_id, claim_id, timer, started_at, email, to_name, to_address, \
           locale, payload, state, attempts, next_attempt_at, created_at, not_after, \
           announced_last_day, announced_passes_at, calendar_version, template_version) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, 'pending', 0, ?10, ?10, ?11, ?12, ?13, ?14, ?15) \
         ON CONFLICT (message_id) DO NOTHING",
    )
    .bind(&e.message_id)
    .bind(&e.claim_id)
    .bind(e.timer.as_str())
    .bind(format_ts(e.start))
    .bind(e.email.as_str())
    .bind(&e.to_name)
    .bind(&e.to_address)
    .bind(&e.locale)
    .bind(e.payload.to_string())
    .bind(at)
    .bind(e.not_after.map(format_ts))
    .bind(e.announced.map(|(d, _)| d.to_string()))
    .bind(e.announced.map(|(_, t)| format_ts(t)))
    .bind(&e.calendar_version)
    .bind(&e.template_version)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Writes one digest of unreported SLA breaches to the outbox and marks them reported.
pub(super) async fn queue_sla_digest<F>(
    store: &SqliteStore,
    now: DateTime<Utc>,
    limit: i64,
    build: F,
) -> Result<usize, StoreError>
where
    F: FnOnce(&[SlaAlert]) -> OutboxEmail + Send,
{
    let mut tx = store.pool().begin_with("BEGIN IMMEDIATE").await?;
    let rows = sqlx::query(
        "SELECT claim_id, timer, started_at, due_at, raised_at FROM cpor_sla_alerts \
         WHERE notified_at IS NULL ORDER BY raised_at, claim_id LIMIT ?",
    )
    .bind(limit)
    .fetch_all(&mut *tx)
    .await?;
    let alerts = rows
        .iter()
        .map(sla_alert)
        .collect::<Result<Vec<_>, StoreError>>()?;
    if alerts.is_empty() {
        tx.commit().await?;
        return Ok(0);
    }
    let at = format_ts(now);
    insert_email(&mut tx, &build(&alerts), &at).await?;
    for a in &alerts {
        sqlx::query(
            "UPDATE cpor_sla_alerts SET notified_at = ? WHERE claim_id = ? AND timer = ? AND started_at = ?",
        )
        .bind(&at)
        .bind(&a.claim_id)
        .bind(a.timer.as_str())
        .bind(format_ts(a.start))
        .execute(&mut *tx)
        .await?;
    }
    tx.commit().await?;
    Ok(alerts.len())
}
