//! `PgStore`'s outbox: emails written with an action, leased to one sender at a time, recorded
//! as sent, retried or dead; and the SLA digests for operations.

use chrono::{DateTime, Utc};

use super::row::{dead_email, outbox_email, pending_email, sla_alert};
use sqlx::{PgConnection, Row};

use super::{
    DeadEmail, DeliveryResult, OutboxCounts, OutboxEmail, PendingEmail, PgStore, SlaAlert,
    StoreError,
};

pub(super) async fn insert_emails(
    conn: &mut PgConnection,
    emails: &[&OutboxEmail],
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    let col = |f: fn(&OutboxEmail) -> &str| emails.iter().map(|e| f(e)).collect::<Vec<_>>();
    let starts: Vec<DateTime<Utc>> = emails.iter().map(|e| e.start).collect();
    let payloads: Vec<serde_json::Value> = emails.iter().map(|e| e.payload.clone()).collect();
    sqlx::query(
        "INSERT INTO cpor_outbox (message_id, claim_id, timer, started_at, email, to_name, to_address, \
           locale, payload, state, attempts, next_attempt_at, created_at, not_after, \
           announced_last_day, announced_passes_at, calendar_version, template_version) \
         SELECT m, c, t, s, e, n, a, l, p, 'pending', 0, $10, $10, na, ald, apa, cv, tv FROM UNNEST($1::text[], $2::text[], \
           $3::text[], $4::timestamptz[], $5::text[], $6::text[], $7::text[], $8::text[], $9::jsonb[], \
           $11::timestamptz[], $12::text[], $13::timestamptz[], $14::text[], $15::text[]) \
           AS u(m, c, t, s, e, n, a, l, p, na, ald, apa, cv, tv) \
         ON CONFLICT (message_id) DO NOTHING",
    )
    .bind(col(|e| &e.message_id))
    .bind(col(|e| &e.claim_id))
    .bind(col(|e| e.timer.as_str()))
    .bind(&starts)
    .bind(col(|e| e.email.as_str()))
    .bind(col(|e| &e.to_name))
    .bind(col(|e| &e.to_address))
    .bind(col(|e| &e.locale))
    .bind(&payloads)
    .bind(now)
    .bind(emails.iter().map(|e| e.not_after).collect::<Vec<_>>())
    .bind(
        emails
            .iter()
            .map(|e| e.announced.map(|(d, _)| d.to_string()))
            .collect::<Vec<_>>(),
    )
    .bind(
        emails
            .iter()
            .map(|e| e.announced.map(|(_, t)| t))
            .collect::<Vec<_>>(),
    )
    .bind(
        emails
            .iter()
            .map(|e| e.calendar_version.clone())
            .collect::<Vec<_>>(),
    )
    .bind(
        emails
            .iter()
            .map(|e| e.template_version.clone())
            .collect::<Vec<_>>(),
    )
    .execute(&mut *conn)
    .await?;
    Ok(())
}

impl PgStore {
    pub(super) async fn take_emails_impl(
        &self,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
        limit: i64,
    ) -> Result<Vec<PendingEmail>, StoreError> {
        let rows = sqlx::query(
            "UPDATE cpor_outbox SET state = 'sending', next_attempt_at = $2 WHERE id IN ( \
               SELECT id FROM cpor_outbox WHERE state IN ('pending', 'sending') AND next_attempt_at <= $1 \
               ORDER BY next_attempt_at, id LIMIT $3 FOR UPDATE SKIP LOCKED) \
             RETURNING id, attempts, message_id, claim_id, timer, started_at, email, to_name, to_address, \
               locale, payload, not_after, announced_last_day, announced_passes_at, calendar_version, \
               template_version",
        )
        .bind(now)
        .bind(lease_until)
        .bind(limit)
        .fetch_all(self.pool())
        .await?;
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
        let mut tx = self.pool().begin().await?;
        match result {
            DeliveryResult::Sent => {
                let row = sqlx::query(
                    "UPDATE cpor_outbox SET state = 'sent', sent_at = $2, attempts = attempts + 1, \
                     last_error = NULL WHERE id = $1 AND state <> 'sent' RETURNING claim_id, email",
                )
                .bind(id)
                .bind(now)
                .fetch_optional(&mut *tx)
                .await?;
                if let Some(row) = row {
                    let email: String = row.try_get("email")?;
                    if email == "consent_request" {
                        let claim: String = row.try_get("claim_id")?;
                        sqlx::query(
                            "UPDATE cpor_claim_sync SET dirty = TRUE, dirty_gen = dirty_gen + 1 WHERE claim_id = $1",
                        )
                        .bind(claim)
                        .execute(&mut *tx)
                        .await?;
                    }
                }
            }
            DeliveryResult::Retry { at, error } => {
                sqlx::query(
                    "UPDATE cpor_outbox SET state = 'pending', attempts = attempts + 1, next_attempt_at = $2, \
                     last_error = $3 WHERE id = $1 AND state <> 'sent'",
                )
                .bind(id)
                .bind(at)
                .bind(error)
                .execute(&mut *tx)
                .await?;
            }
            DeliveryResult::Dead { error } => {
                let row = sqlx::query(
                    "UPDATE cpor_outbox SET state = 'dead', attempts = attempts + 1, last_error = $2 \
                     WHERE id = $1 AND state <> 'sent' RETURNING claim_id, email",
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
                        "UPDATE cpor_claim_sync SET dirty = TRUE, dirty_gen = dirty_gen + 1 WHERE claim_id = $1",
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
                    "UPDATE cpor_outbox SET state = $1, \
                       last_error = COALESCE($2, 'not sent: its not-after instant passed') \
                     WHERE id = $3 AND state <> 'sent' RETURNING claim_id, email, timer, started_at, not_after, message_id, \
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
                         VALUES ($1, $2, $3, $4, $5)",
                    )
                    .bind(&h.claim_id)
                    .bind(now)
                    .bind(h.actor.as_str())
                    .bind(&h.action)
                    .bind(&h.details)
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
        let rows = sqlx::query("SELECT *, state FROM cpor_outbox WHERE claim_id = $1 ORDER BY id")
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

impl PgStore {
    pub(super) async fn dead_emails_impl(&self) -> Result<Vec<DeadEmail>, StoreError> {
        let rows = sqlx::query("SELECT * FROM cpor_outbox WHERE state = 'dead' ORDER BY id")
            .fetch_all(self.pool())
            .await?;
        rows.iter().map(dead_email).collect()
    }
}

/// Writes one digest of unreported SLA breaches to the outbox and marks them reported.
pub(super) async fn queue_sla_digest<F>(
    store: &PgStore,
    now: DateTime<Utc>,
    limit: i64,
    build: F,
) -> Result<usize, StoreError>
where
    F: FnOnce(&[SlaAlert]) -> OutboxEmail + Send,
{
    let mut tx = store.pool().begin().await?;
    let rows = sqlx::query(
        "SELECT claim_id, timer, started_at, due_at, raised_at FROM cpor_sla_alerts \
         WHERE notified_at IS NULL ORDER BY raised_at, claim_id LIMIT $1 FOR UPDATE SKIP LOCKED",
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
    let email = build(&alerts);
    insert_emails(&mut tx, &[&email], now).await?;
    let ids: Vec<&str> = alerts.iter().map(|a| a.claim_id.as_str()).collect();
    let timers: Vec<&str> = alerts.iter().map(|a| a.timer.as_str()).collect();
    let starts: Vec<DateTime<Utc>> = alerts.iter().map(|a| a.start).collect();
    sqlx::query(
        "UPDATE cpor_sla_alerts a SET notified_at = $4 FROM UNNEST($1::text[], $2::text[], \
         $3::timestamptz[]) AS u(c, t, s) WHERE a.claim_id = u.c AND a.timer = u.t AND a.started_at = u.s",
    )
    .bind(&ids)
    .bind(&timers)
    .bind(&starts)
    .bind(now)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(alerts.len())
}
