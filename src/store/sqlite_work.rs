//! `SqliteStore`'s side of the timer engine: sync and fire batches under `BEGIN IMMEDIATE`.
//! SQLite has one writer at a time, so a batch simply holds the write lock; rows go one by one.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use sqlx::{Row, SqliteConnection};

use super::row::changed;
use super::sqlite::format_ts;
use super::work::one_per_id;
use super::{
    ChangedClaim, Changes, ClaimWrite, FireInput, SqliteStore, StoreError, SyncedClaim,
    claim_columns,
};
use crate::timers::{ClaimFacts, HELD_ON_FIRST_SIGHT};

fn ids_json(ids: &[String]) -> String {
    serde_json::Value::from(ids.to_vec()).to_string()
}

/// The claim SELECT with the sync generation, for the sync paths.
macro_rules! changed_select {
    () => {
        concat!(
            "SELECT ",
            claim_columns!("version"),
            ", COALESCE((SELECT s.dirty_gen FROM cpor_claim_sync s WHERE s.claim_id = claims.id), 0) AS cpor_dirty_gen",
            ", (SELECT count(*) FROM cpor_claim_sync s WHERE s.claim_id = claims.id) AS cpor_seen FROM claims "
        )
    };
}

impl SqliteStore {
    pub(super) async fn take_changes_impl(&self, limit: i64) -> Result<Changes, StoreError> {
        let records =
            sqlx::query("SELECT seq, claim_id, old_status, new_status, event_at, recorded_at FROM cpor_claim_changes ORDER BY seq LIMIT ?")
                .bind(limit)
                .fetch_all(self.pool())
                .await?;
        let mut out = Changes::default();
        let mut ids: Vec<String> = Vec::new();
        for r in &records {
            out.seqs.push(r.try_get("seq")?);
            match r.try_get::<Option<String>, _>("claim_id")? {
                Some(id) => ids.push(id),
                None => out.null_ids += 1,
            }
        }
        out.statuses = super::work::status_records(&records);
        if !out.statuses.is_empty() {
            // One transaction per page, not a commit per row.
            let mut tx = self.begin_write().await?;
            for s in &out.statuses {
                sqlx::query(
                    "INSERT INTO cpor_status_timeline (claim_id, old_status, new_status, changed_at) \
                     VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING",
                )
                .bind(&s.claim_id)
                .bind(&s.old_status)
                .bind(&s.new_status)
                .bind(format_ts(s.at))
                .execute(&mut *tx)
                .await?;
            }
            tx.commit().await?;
        }
        ids.sort();
        ids.dedup();
        let rows = sqlx::query(concat!(
            changed_select!(),
            "WHERE id IN (SELECT value FROM json_each(?1)) ",
            "AND NOT EXISTS (SELECT 1 FROM cpor_claim_sync s WHERE s.claim_id = claims.id ",
            "AND s.version = claims.version AND NOT s.dirty) ORDER BY id"
        ))
        .bind(ids_json(&ids))
        .fetch_all(self.pool())
        .await?;
        out.claims = one_per_id(rows.iter().map(changed).collect::<Result<_, _>>()?);
        Ok(out)
    }

    pub(super) async fn consume_changes_impl(&self, seqs: &[i64]) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM cpor_claim_changes WHERE seq IN (SELECT value FROM json_each(?))")
            .bind(serde_json::Value::from(seqs.to_vec()).to_string())
            .execute(self.pool())
            .await?;
        Ok(())
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
        Ok(one_per_id(
            rows.iter().map(changed).collect::<Result<_, _>>()?,
        ))
    }

    pub(super) async fn facts_impl(
        conn: &mut SqliteConnection,
        ids: &[String],
    ) -> Result<HashMap<String, ClaimFacts>, StoreError> {
        let fired = sqlx::query(
            "SELECT claim_id, timer, started_at, fired_at, outcome FROM cpor_timers \
             WHERE claim_id IN (SELECT value FROM json_each(?)) AND state IN ('fired', 'held')",
        )
        .bind(ids_json(ids))
        .fetch_all(&mut *conn)
        .await?;
        let consent = sqlx::query(
            "SELECT claim_id, started_at, sent_at FROM cpor_outbox WHERE claim_id IN \
             (SELECT value FROM json_each(?)) AND email = 'consent_request' AND state = 'sent' \
             AND sent_at IS NOT NULL",
        )
        .bind(ids_json(ids))
        .fetch_all(&mut *conn)
        .await?;
        let dead = sqlx::query(
            "SELECT claim_id, started_at, to_address, last_error FROM cpor_outbox WHERE claim_id IN \
             (SELECT value FROM json_each(?)) AND email = 'consent_request' AND state = 'dead'",
        )
        .bind(ids_json(ids))
        .fetch_all(&mut *conn)
        .await?;
        let told = sqlx::query(
            "SELECT claim_id, timer, email, started_at, created_at, sent_at, announced_last_day, \
               announced_passes_at FROM cpor_outbox WHERE claim_id IN (SELECT value FROM json_each(?)) \
               AND state = 'sent' AND announced_last_day IS NOT NULL",
        )
        .bind(ids_json(ids))
        .fetch_all(&mut *conn)
        .await?;
        let timeline = sqlx::query(
            "SELECT claim_id, old_status, new_status, changed_at FROM cpor_status_timeline \
             WHERE claim_id IN (SELECT value FROM json_each(?)) ORDER BY changed_at, seq",
        )
        .bind(ids_json(ids))
        .fetch_all(&mut *conn)
        .await?;
        super::row::facts(&fired, &consent, &dead, &told, &timeline)
    }

    pub(super) async fn save_sync_in(
        conn: &mut SqliteConnection,
        synced: &[SyncedClaim],
        fingerprint: &str,
        at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        for s in synced {
            if let Some(r) = &s.requeue {
                let requeued = sqlx::query(
                    "UPDATE cpor_outbox SET state = 'pending', attempts = 0, last_error = NULL, \
                       next_attempt_at = ?1, to_name = ?2, to_address = ?3, \
                       payload = json_set(payload, '$.to.name', ?2, '$.to.address', ?3) \
                     WHERE claim_id = ?4 AND email = ?5 AND started_at = ?6 AND state = 'dead'",
                )
                .bind(format_ts(at))
                .bind(&r.to_name)
                .bind(&r.to_address)
                .bind(&s.claim_id)
                .bind(r.email.as_str())
                .bind(format_ts(r.start))
                .execute(&mut *conn)
                .await?;
                if requeued.rows_affected() > 0 {
                    let h = &r.history;
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
            }
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
            for t in &s.held {
                sqlx::query(
                    "INSERT INTO cpor_timers (claim_id, timer, started_at, due_at, claim_version, state, fired_at, outcome) \
                     VALUES (?, ?, ?, ?, ?, 'held', ?, ?) ON CONFLICT (claim_id, timer, started_at) DO NOTHING",
                )
                .bind(&s.claim_id)
                .bind(t.kind.as_str())
                .bind(format_ts(t.start))
                .bind(format_ts(t.due))
                .bind(s.version)
                .bind(format_ts(at))
                .bind(HELD_ON_FIRST_SIGHT)
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
         AND NOT EXISTS (SELECT 1 FROM cpor_claim_holds h WHERE h.claim_id = cpor_timers.claim_id) \
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
    let read = rows.iter().map(changed).collect::<Result<Vec<_>, _>>()?;
    for c in one_per_id(read) {
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
        super::sqlite_outbox::insert_email(conn, e, &at).await?;
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
        Ok(one_per_id(
            rows.iter().map(changed).collect::<Result<_, _>>()?,
        ))
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
