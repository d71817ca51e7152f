//! `SqliteStore`'s side of the timer engine: sync, fire batches under `BEGIN IMMEDIATE`, outbox.
//! SQLite has one writer at a time, so a batch simply holds the write lock; rows go one by one.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use sqlx::sqlite::SqliteRow;
use sqlx::{Row, SqliteConnection};

use super::sqlite::{format_ts, parse_ts, read_claim};
use super::{
    ChangedClaim, ClaimWrite, DeadEmail, DeliveryResult, FireInput, OutboxCounts, OutboxEmail,
    PendingEmail, SlaAlert, SqliteStore, StoreError, SyncedClaim, claim_columns,
};
use crate::timers::{ClaimFacts, FiredTimer};

fn corrupt(what: &str, e: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt(format!("{what}: {e}"))
}

fn ts(r: &SqliteRow, col: &str) -> Result<DateTime<Utc>, StoreError> {
    let s: String = r.try_get(col)?;
    parse_ts(&s).map_err(|e| corrupt(col, e))
}

fn ids_json(ids: &[String]) -> String {
    serde_json::Value::from(ids.to_vec()).to_string()
}

fn changed(row: &SqliteRow) -> Result<ChangedClaim, StoreError> {
    let updated: Option<String> = row.try_get("updated_at").ok().flatten();
    Ok(ChangedClaim {
        id: row.try_get("id")?,
        version: row.try_get("version")?,
        updated_at: updated.and_then(|s| parse_ts(&s).ok()),
        dirty_gen: row.try_get("cpor_dirty_gen")?,
        claim: read_claim(row),
    })
}

/// The claim SELECT with the sync generation, for the sync paths.
macro_rules! changed_select {
    () => {
        concat!(
            "SELECT ",
            claim_columns!("version"),
            ", COALESCE((SELECT s.dirty_gen FROM cpor_claim_sync s WHERE s.claim_id = claims.id), 0) AS cpor_dirty_gen FROM claims "
        )
    };
}

impl SqliteStore {
    pub(super) async fn changed_claims_impl(
        &self,
        after: Option<(DateTime<Utc>, String)>,
        limit: i64,
    ) -> Result<Vec<ChangedClaim>, StoreError> {
        let (at, id) = after.unzip();
        let rows = sqlx::query(concat!(
            changed_select!(),
            "WHERE (?1 IS NULL OR (updated_at, id) > (?1, ?2)) ",
            "AND NOT EXISTS (SELECT 1 FROM cpor_claim_sync s WHERE s.claim_id = claims.id ",
            "AND s.version = claims.version AND NOT s.dirty) ",
            "ORDER BY updated_at, id LIMIT ?3"
        ))
        .bind(at.map(format_ts))
        .bind(id)
        .bind(limit)
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(changed).collect()
    }

    pub(super) async fn stale_claims_impl(
        &self,
        fingerprint: &str,
        calendars: bool,
        after_id: &str,
        limit: i64,
    ) -> Result<Vec<ChangedClaim>, StoreError> {
        let rows = sqlx::query(concat!(
            changed_select!(),
            "WHERE id > ?3 AND id IN (SELECT s.claim_id FROM cpor_claim_sync s WHERE s.dirty ",
            "OR (?2 AND s.fingerprint <> ?1 AND (s.problem IS NOT NULL OR EXISTS (",
            "SELECT 1 FROM cpor_timers t WHERE t.claim_id = s.claim_id AND t.state = 'pending')))) ",
            "ORDER BY id LIMIT ?4"
        ))
        .bind(fingerprint)
        .bind(calendars)
        .bind(after_id)
        .bind(limit)
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(changed).collect()
    }

    pub(super) async fn facts_impl(
        conn: &mut SqliteConnection,
        ids: &[String],
    ) -> Result<HashMap<String, ClaimFacts>, StoreError> {
        let mut facts: HashMap<String, ClaimFacts> = HashMap::new();
        let rows = sqlx::query(
            "SELECT claim_id, timer, started_at, fired_at, outcome FROM cpor_timers \
             WHERE claim_id IN (SELECT value FROM json_each(?)) AND state = 'fired'",
        )
        .bind(ids_json(ids))
        .fetch_all(&mut *conn)
        .await?;
        for r in rows {
            let timer: String = r.try_get("timer")?;
            let fired_at: Option<String> = r.try_get("fired_at")?;
            facts
                .entry(r.try_get("claim_id")?)
                .or_default()
                .fired
                .push(FiredTimer {
                    kind: timer.parse().map_err(|e| corrupt("cpor_timers.timer", e))?,
                    start: ts(&r, "started_at")?,
                    at: fired_at.and_then(|s| parse_ts(&s).ok()).unwrap_or_default(),
                    outcome: r
                        .try_get::<Option<String>, _>("outcome")?
                        .unwrap_or_default(),
                });
        }
        let rows = sqlx::query(
            "SELECT claim_id, started_at, sent_at FROM cpor_outbox WHERE claim_id IN \
             (SELECT value FROM json_each(?)) AND email = 'consent_request' AND state = 'sent' \
             AND sent_at IS NOT NULL",
        )
        .bind(ids_json(ids))
        .fetch_all(&mut *conn)
        .await?;
        for r in rows {
            let entry = facts.entry(r.try_get("claim_id")?).or_default();
            entry
                .consent_sent
                .push((ts(&r, "started_at")?, ts(&r, "sent_at")?));
        }
        Ok(facts)
    }

    pub(super) async fn save_sync_in(
        conn: &mut SqliteConnection,
        synced: &[SyncedClaim],
        fingerprint: &str,
        at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        for s in synced {
            sqlx::query("DELETE FROM cpor_timers WHERE claim_id = ? AND state = 'pending'")
                .bind(&s.claim_id)
                .execute(&mut *conn)
                .await?;
            for t in &s.pending {
                sqlx::query(
                    "INSERT INTO cpor_timers (claim_id, timer, started_at, due_at, claim_version, state) \
                     VALUES (?, ?, ?, ?, ?, 'pending') ON CONFLICT (claim_id, timer, started_at) DO NOTHING",
                )
                .bind(&s.claim_id)
                .bind(t.kind.as_str())
                .bind(format_ts(t.start))
                .bind(format_ts(t.due))
                .bind(s.version)
                .execute(&mut *conn)
                .await?;
            }
            sqlx::query(
                "INSERT INTO cpor_claim_sync (claim_id, version, fingerprint, dirty, dirty_gen, problem, synced_at) \
                 VALUES (?1, ?2, ?3, 0, ?4, ?5, ?6) ON CONFLICT (claim_id) DO UPDATE SET \
                   version = excluded.version, fingerprint = excluded.fingerprint, \
                   problem = excluded.problem, synced_at = excluded.synced_at, \
                   dirty = cpor_claim_sync.dirty AND cpor_claim_sync.dirty_gen <> excluded.dirty_gen",
            )
            .bind(&s.claim_id)
            .bind(s.version)
            .bind(fingerprint)
            .bind(s.dirty_gen)
            .bind(&s.problem)
            .bind(format_ts(at))
            .execute(&mut *conn)
            .await?;
        }
        Ok(())
    }
}

/// Takes the due timers' claims, decides, writes: one transaction holding SQLite's write lock.
pub(super) async fn fire_batch<F>(
    store: &SqliteStore,
    now: DateTime<Utc>,
    limit: i64,
    fingerprint: &str,
    mut decide: F,
) -> Result<usize, StoreError>
where
    F: FnMut(FireInput) -> ClaimWrite + Send,
{
    let mut tx = store.pool().begin_with("BEGIN IMMEDIATE").await?;
    let due = sqlx::query(
        "SELECT claim_id, claim_version FROM cpor_timers WHERE state = 'pending' AND due_at <= ? \
         ORDER BY due_at, claim_id LIMIT ?",
    )
    .bind(format_ts(now))
    .bind(limit)
    .fetch_all(&mut *tx)
    .await?;
    if due.is_empty() {
        tx.commit().await?;
        return Ok(0);
    }
    let mut synced_version: HashMap<String, i64> = HashMap::new();
    for r in &due {
        let id: String = r.try_get("claim_id")?;
        let v: i64 = r.try_get("claim_version")?;
        synced_version
            .entry(id)
            .and_modify(|x| *x = (*x).min(v))
            .or_insert(v);
    }
    let mut ids: Vec<String> = synced_version.keys().cloned().collect();
    ids.sort();
    let rows = sqlx::query(concat!(
        changed_select!(),
        "WHERE id IN (SELECT value FROM json_each(?)) ORDER BY id"
    ))
    .bind(ids_json(&ids))
    .fetch_all(&mut *tx)
    .await?;
    let mut claims: HashMap<String, ChangedClaim> = HashMap::new();
    for r in &rows {
        let c = changed(r)?;
        claims.insert(c.id.clone(), c);
    }
    let mut facts = SqliteStore::facts_impl(&mut tx, &ids).await?;
    for id in &ids {
        let found = claims.remove(id);
        let input = FireInput {
            claim_id: id.clone(),
            dirty_gen: found.as_ref().map_or(0, |c| c.dirty_gen),
            claim: found.map(|c| c.claim),
            synced_version: synced_version[id],
            facts: facts.remove(id).unwrap_or_default(),
        };
        let w = decide(input);
        write_one(&mut tx, id, &w, now).await?;
        if let Some(r) = &w.resync {
            SqliteStore::save_sync_in(&mut tx, std::slice::from_ref(r), fingerprint, now).await?;
        }
    }
    tx.commit().await?;
    Ok(ids.len())
}

async fn write_one(
    conn: &mut SqliteConnection,
    id: &str,
    w: &ClaimWrite,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    let at = format_ts(now);
    if let Some(sc) = &w.status_change {
        sqlx::query(
            "UPDATE claims SET status = ?2, rejection_reason = COALESCE(?3, rejection_reason), \
               rejected_at = CASE WHEN ?2 = 'rejected' THEN ?4 ELSE rejected_at END, \
               updated_at = ?4, version = version + 1 WHERE id = ?1",
        )
        .bind(id)
        .bind(sc.to.as_str())
        .bind(sc.rejection_reason.map(|r| r.as_str()))
        .bind(&at)
        .execute(&mut *conn)
        .await?;
    }
    for h in &w.history {
        sqlx::query(
            "INSERT INTO claim_history (claim_id, occurred_at, actor, action, details) VALUES (?, ?, ?, ?, ?)",
        )
        .bind(&h.claim_id)
        .bind(format_ts(h.occurred_at))
        .bind(h.actor.as_str())
        .bind(&h.action)
        .bind(h.details.to_string())
        .execute(&mut *conn)
        .await?;
    }
    if w.incentive {
        sqlx::query(
            "INSERT INTO incentive_evaluation_requests (claim_id, requested_at) VALUES (?, ?) \
             ON CONFLICT (claim_id) DO NOTHING",
        )
        .bind(id)
        .bind(&at)
        .execute(&mut *conn)
        .await?;
    }
    for (t, s, d) in &w.alerts {
        sqlx::query(
            "INSERT INTO cpor_sla_alerts (claim_id, timer, started_at, due_at, raised_at) \
             VALUES (?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
        )
        .bind(id)
        .bind(t.as_str())
        .bind(format_ts(*s))
        .bind(format_ts(*d))
        .bind(&at)
        .execute(&mut *conn)
        .await?;
    }
    for e in &w.emails {
        insert_email(conn, e, &at).await?;
    }
    for (t, s, d, o) in &w.fired {
        sqlx::query(
            "INSERT INTO cpor_timers (claim_id, timer, started_at, due_at, claim_version, state, fired_at, outcome) \
             VALUES (?1, ?2, ?3, ?4, 0, 'fired', ?5, ?6) ON CONFLICT (claim_id, timer, started_at) \
             DO UPDATE SET state = 'fired', fired_at = excluded.fired_at, outcome = excluded.outcome",
        )
        .bind(id)
        .bind(t.as_str())
        .bind(format_ts(*s))
        .bind(format_ts(*d))
        .bind(&at)
        .bind(o)
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}

fn outbox_email(r: &SqliteRow) -> Result<OutboxEmail, StoreError> {
    let timer: String = r.try_get("timer")?;
    let email: String = r.try_get("email")?;
    let payload: String = r.try_get("payload")?;
    Ok(OutboxEmail {
        message_id: r.try_get("message_id")?,
        claim_id: r.try_get("claim_id")?,
        timer: timer.parse().map_err(|e| corrupt("cpor_outbox.timer", e))?,
        start: ts(r, "started_at")?,
        email: email.parse().map_err(|e| corrupt("cpor_outbox.email", e))?,
        to_name: r.try_get("to_name")?,
        to_address: r.try_get("to_address")?,
        locale: r.try_get("locale")?,
        payload: serde_json::from_str(&payload).map_err(|e| corrupt("cpor_outbox.payload", e))?,
    })
}

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
               locale, payload",
        )
        .bind(format_ts(now))
        .bind(format_ts(lease_until))
        .bind(limit)
        .fetch_all(&mut *tx)
        .await?;
        tx.commit().await?;
        let mut out: Vec<PendingEmail> = rows
            .iter()
            .map(|r| {
                Ok(PendingEmail {
                    id: r.try_get("id")?,
                    attempts: r.try_get("attempts")?,
                    email: outbox_email(r)?,
                })
            })
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
                sqlx::query(
                    "UPDATE cpor_outbox SET state = 'dead', attempts = attempts + 1, last_error = ?2 \
                     WHERE id = ?1 AND state <> 'sent'",
                )
                .bind(id)
                .bind(error)
                .execute(&mut *tx)
                .await?;
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
            match state.as_str() {
                "sent" => c.sent += n,
                "dead" => c.dead += n,
                _ => c.pending += n,
            }
        }
        Ok(c)
    }
}

impl SqliteStore {
    pub(super) async fn claims_page_impl(
        &self,
        after_id: &str,
        limit: i64,
    ) -> Result<Vec<ChangedClaim>, StoreError> {
        let rows = sqlx::query(concat!(
            changed_select!(),
            "WHERE id > ?1 ORDER BY id LIMIT ?2"
        ))
        .bind(after_id)
        .bind(limit)
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(changed).collect()
    }

    pub(super) async fn dead_emails_impl(&self) -> Result<Vec<DeadEmail>, StoreError> {
        let rows = sqlx::query("SELECT * FROM cpor_outbox WHERE state = 'dead' ORDER BY id")
            .fetch_all(self.pool())
            .await?;
        rows.iter()
            .map(|r| {
                Ok(DeadEmail {
                    email: outbox_email(r)?,
                    attempts: r.try_get("attempts")?,
                    last_error: r.try_get("last_error")?,
                })
            })
            .collect()
    }

    pub(super) async fn claim_problems_impl(&self) -> Result<Vec<(String, String)>, StoreError> {
        let rows = sqlx::query(
            "SELECT claim_id, problem FROM cpor_claim_sync WHERE problem IS NOT NULL ORDER BY claim_id",
        )
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|r| Ok((r.try_get("claim_id")?, r.try_get("problem")?)))
            .collect()
    }
}

/// Writes one outbox email (a second write of the same Message-ID is ignored).
async fn insert_email(
    conn: &mut SqliteConnection,
    e: &OutboxEmail,
    at: &str,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO cpor_outbox (message_id, claim_id, timer, started_at, email, to_name, to_address, \
           locale, payload, state, attempts, next_attempt_at, created_at) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, 'pending', 0, ?10, ?10) \
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
        .map(|r| {
            let timer: String = r.try_get("timer")?;
            Ok(SlaAlert {
                claim_id: r.try_get("claim_id")?,
                timer: timer
                    .parse()
                    .map_err(|e| corrupt("cpor_sla_alerts.timer", e))?,
                start: ts(r, "started_at")?,
                due: ts(r, "due_at")?,
                raised_at: ts(r, "raised_at")?,
            })
        })
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
