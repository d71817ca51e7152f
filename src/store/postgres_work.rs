//! `PgStore`'s side of the timer engine: sync and fire batches with `FOR UPDATE SKIP LOCKED`.
//! Batches write with `UNNEST` arrays, a handful of statements per batch whatever its size.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use sqlx::{PgConnection, Row};

use super::row::changed;
use super::work::{UNREADABLE_VERSION, one_per_id};
use super::{
    ChangedClaim, Changes, ClaimWrite, FireInput, OutboxEmail, PgStore, StoreError, SyncedClaim,
    TimerRow, claim_columns,
};
use crate::timers::{ClaimFacts, HELD_ON_FIRST_SIGHT};

/// The claim SELECT with the sync generation, for the sync paths.
macro_rules! changed_select {
    () => {
        concat!(
            "SELECT ",
            claim_columns!("version::bigint AS version"),
            ", COALESCE((SELECT s.dirty_gen FROM cpor_claim_sync s WHERE s.claim_id = claims.id), 0) AS cpor_dirty_gen",
            ", (SELECT count(*) FROM cpor_claim_sync s WHERE s.claim_id = claims.id) AS cpor_seen FROM claims "
        )
    };
}

impl PgStore {
    pub(super) async fn take_changes_impl(&self, limit: i64) -> Result<Changes, StoreError> {
        let records =
            sqlx::query("SELECT seq, claim_id, old_status, new_status, event_at, recorded_at FROM cpor_claim_changes ORDER BY seq LIMIT $1")
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
            // One statement per page (a row at a time cost a commit each: 1,000,000 commits
            // on the first pass over a million claims), in the records' order.
            let st = &out.statuses;
            sqlx::query(
                "INSERT INTO cpor_status_timeline (claim_id, old_status, new_status, changed_at) \
                 SELECT c, o, n, a FROM UNNEST($1::text[], $2::text[], $3::text[], $4::timestamptz[]) \
                 WITH ORDINALITY AS u(c, o, n, a, i) ORDER BY i ON CONFLICT DO NOTHING",
            )
            .bind(st.iter().map(|s| s.claim_id.as_str()).collect::<Vec<_>>())
            .bind(st.iter().map(|s| s.old_status.as_deref()).collect::<Vec<_>>())
            .bind(st.iter().map(|s| s.new_status.as_deref()).collect::<Vec<_>>())
            .bind(st.iter().map(|s| s.at).collect::<Vec<_>>())
            .execute(self.pool())
            .await?;
        }
        ids.sort();
        ids.dedup();
        let rows = sqlx::query(concat!(
            changed_select!(),
            "WHERE id = ANY($1) AND NOT EXISTS (SELECT 1 FROM cpor_claim_sync s ",
            "WHERE s.claim_id = claims.id AND s.version = claims.version AND NOT s.dirty) ORDER BY id"
        ))
        .bind(&ids)
        .fetch_all(self.pool())
        .await?;
        out.claims = one_per_id(rows.iter().map(changed).collect::<Result<_, _>>()?);
        Ok(out)
    }

    pub(super) async fn consume_changes_impl(&self, seqs: &[i64]) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM cpor_claim_changes WHERE seq = ANY($1)")
            .bind(seqs)
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
            "WHERE id > $3 AND id IN (SELECT s.claim_id FROM cpor_claim_sync s WHERE s.dirty ",
            "OR ($2 AND s.fingerprint <> $1 AND (s.problem IS NOT NULL OR EXISTS (",
            "SELECT 1 FROM cpor_timers t WHERE t.claim_id = s.claim_id AND t.state = 'pending')))) ",
            "ORDER BY id LIMIT $4"
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
        conn: &mut PgConnection,
        ids: &[String],
    ) -> Result<HashMap<String, ClaimFacts>, StoreError> {
        let fired = sqlx::query(
            "SELECT claim_id, timer, started_at, fired_at, outcome FROM cpor_timers \
             WHERE claim_id = ANY($1) AND state IN ('fired', 'held')",
        )
        .bind(ids)
        .fetch_all(&mut *conn)
        .await?;
        let consent = sqlx::query(
            "SELECT claim_id, started_at, sent_at FROM cpor_outbox WHERE claim_id = ANY($1) \
             AND email = 'consent_request' AND state = 'sent'",
        )
        .bind(ids)
        .fetch_all(&mut *conn)
        .await?;
        let dead = sqlx::query(
            "SELECT claim_id, started_at, to_address, last_error FROM cpor_outbox \
             WHERE claim_id = ANY($1) AND email = 'consent_request' AND state = 'dead'",
        )
        .bind(ids)
        .fetch_all(&mut *conn)
        .await?;
        let told = sqlx::query(
            "SELECT claim_id, timer, email, started_at, created_at, sent_at, announced_last_day, \
               announced_passes_at FROM cpor_outbox WHERE claim_id = ANY($1) \
               AND state = 'sent' AND announced_last_day IS NOT NULL",
        )
        .bind(ids)
        .fetch_all(&mut *conn)
        .await?;
        let timeline = sqlx::query(
            "SELECT claim_id, old_status, new_status, changed_at FROM cpor_status_timeline \
             WHERE claim_id = ANY($1) ORDER BY changed_at, seq",
        )
        .bind(ids)
        .fetch_all(&mut *conn)
        .await?;
        super::row::facts(&fired, &consent, &dead, &told, &timeline)
    }

    pub(super) async fn save_sync_in(
        conn: &mut PgConnection,
        synced: &[SyncedClaim],
        fingerprint: &str,
        at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        if synced.is_empty() {
            return Ok(());
        }
        for (s, r) in synced.iter().filter_map(|s| Some((s, s.requeue.as_ref()?))) {
            let requeued = sqlx::query(
                "UPDATE cpor_outbox SET state = 'pending', attempts = 0, last_error = NULL, \
                   next_attempt_at = $1, to_name = $2, to_address = $3, \
                   payload = jsonb_set(payload, '{to}', jsonb_build_object('name', $2::text, 'address', $3::text)) \
                 WHERE claim_id = $4 AND email = $5 AND started_at = $6 AND state = 'dead'",
            )
            .bind(at)
            .bind(&r.to_name)
            .bind(&r.to_address)
            .bind(&s.claim_id)
            .bind(r.email.as_str())
            .bind(r.start)
            .execute(&mut *conn)
            .await?;
            if requeued.rows_affected() > 0 {
                let h = &r.history;
                sqlx::query(
                    "INSERT INTO claim_history (claim_id, occurred_at, actor, action, details) \
                     VALUES ($1, $2, $3, $4, $5)",
                )
                .bind(&h.claim_id)
                .bind(h.occurred_at)
                .bind(h.actor.as_str())
                .bind(&h.action)
                .bind(&h.details)
                .execute(&mut *conn)
                .await?;
            }
        }
        let ids: Vec<&str> = synced.iter().map(|s| s.claim_id.as_str()).collect();
        sqlx::query("DELETE FROM cpor_timers WHERE claim_id = ANY($1) AND state = 'pending'")
            .bind(&ids)
            .execute(&mut *conn)
            .await?;
        let mut c = Vec::new();
        let mut k = Vec::new();
        let mut st = Vec::new();
        let mut du = Vec::new();
        let mut v = Vec::new();
        for s in synced {
            for t in &s.pending {
                c.push(s.claim_id.as_str());
                k.push(t.kind.as_str());
                st.push(t.start);
                du.push(t.due);
                v.push(s.version);
            }
        }
        if !c.is_empty() {
            sqlx::query(
                "INSERT INTO cpor_timers (claim_id, timer, started_at, due_at, claim_version, state) \
                 SELECT c, k, s, d, v, 'pending' FROM UNNEST($1::text[], $2::text[], \
                 $3::timestamptz[], $4::timestamptz[], $5::bigint[]) AS u(c, k, s, d, v) \
                 ON CONFLICT (claim_id, timer, started_at) DO NOTHING",
            )
            .bind(&c)
            .bind(&k)
            .bind(&st)
            .bind(&du)
            .bind(&v)
            .execute(&mut *conn)
            .await?;
        }
        let held: Vec<(&str, &TimerRow, i64)> = synced
            .iter()
            .flat_map(|s| {
                s.held
                    .iter()
                    .map(move |t| (s.claim_id.as_str(), t, s.version))
            })
            .collect();
        if !held.is_empty() {
            sqlx::query(
                "INSERT INTO cpor_timers (claim_id, timer, started_at, due_at, claim_version, state, fired_at, outcome) \
                 SELECT c, k, s, d, v, 'held', $6, $7 FROM UNNEST($1::text[], $2::text[], \
                 $3::timestamptz[], $4::timestamptz[], $5::bigint[]) AS u(c, k, s, d, v) \
                 ON CONFLICT (claim_id, timer, started_at) DO NOTHING",
            )
            .bind(held.iter().map(|h| h.0).collect::<Vec<_>>())
            .bind(held.iter().map(|h| h.1.kind.as_str()).collect::<Vec<_>>())
            .bind(held.iter().map(|h| h.1.start).collect::<Vec<_>>())
            .bind(held.iter().map(|h| h.1.due).collect::<Vec<_>>())
            .bind(held.iter().map(|h| h.2).collect::<Vec<_>>())
            .bind(at)
            .bind(HELD_ON_FIRST_SIGHT)
            .execute(&mut *conn)
            .await?;
        }
        let versions: Vec<i64> = synced.iter().map(|s| s.version).collect();
        let problems: Vec<Option<&str>> = synced.iter().map(|s| s.problem.as_deref()).collect();
        let gens: Vec<i64> = synced.iter().map(|s| s.dirty_gen).collect();
        sqlx::query(
            "INSERT INTO cpor_claim_sync (claim_id, version, fingerprint, dirty, dirty_gen, problem, synced_at) \
             SELECT c, v, $4, FALSE, g, p, $5 FROM UNNEST($1::text[], $2::bigint[], $3::text[], $6::bigint[]) \
             AS u(c, v, p, g) \
             ON CONFLICT (claim_id) DO UPDATE SET version = EXCLUDED.version, \
               fingerprint = EXCLUDED.fingerprint, problem = EXCLUDED.problem, \
               synced_at = EXCLUDED.synced_at, \
               dirty = cpor_claim_sync.dirty AND cpor_claim_sync.dirty_gen <> EXCLUDED.dirty_gen",
        )
        .bind(&ids)
        .bind(&versions)
        .bind(&problems)
        .bind(fingerprint)
        .bind(at)
        .bind(&gens)
        .execute(&mut *conn)
        .await?;
        Ok(())
    }

    /// Saves recomputed timers under the claims' row locks, skipping (and marking dirty for the
    /// next pass) claims that another transaction holds or that changed since they were read.
    pub(super) async fn save_sync_locked(
        &self,
        synced: &[SyncedClaim],
        fingerprint: &str,
        at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        if synced.is_empty() {
            return Ok(());
        }
        let mut sorted: Vec<&SyncedClaim> = synced.iter().collect();
        sorted.sort_by(|a, b| a.claim_id.cmp(&b.claim_id));
        let ids: Vec<&str> = sorted.iter().map(|s| s.claim_id.as_str()).collect();
        let mut tx = self.pool().begin().await?;
        let locked: HashMap<String, i64> = sqlx::query(
            "SELECT id, version::bigint AS version FROM claims WHERE id = ANY($1) ORDER BY id \
             FOR UPDATE SKIP LOCKED",
        )
        .bind(&ids)
        .fetch_all(&mut *tx)
        .await?
        .iter()
        .map(|r| Ok((r.try_get("id")?, r.try_get("version")?)))
        .collect::<Result<_, StoreError>>()?;
        let (keep, skip): (Vec<&SyncedClaim>, Vec<&SyncedClaim>) =
            sorted.into_iter().partition(|s| {
                // A claim whose version cannot be read has no timers to guard: its problem is saved.
                s.version == UNREADABLE_VERSION || locked.get(&s.claim_id) == Some(&s.version)
            });
        let keep: Vec<SyncedClaim> = keep.into_iter().cloned().collect();
        Self::save_sync_in(&mut tx, &keep, fingerprint, at).await?;
        tx.commit().await?;
        if !skip.is_empty() {
            let ids: Vec<&str> = skip.iter().map(|s| s.claim_id.as_str()).collect();
            sqlx::query(
                "INSERT INTO cpor_claim_sync (claim_id, version, fingerprint, dirty, dirty_gen, synced_at) \
                 SELECT c, -1, $2, TRUE, 1, $3 FROM UNNEST($1::text[]) AS u(c) \
                 ON CONFLICT (claim_id) DO UPDATE SET dirty = TRUE, dirty_gen = cpor_claim_sync.dirty_gen + 1",
            )
            .bind(&ids)
            .bind(fingerprint)
            .bind(at)
            .execute(self.pool())
            .await?;
        }
        Ok(())
    }
}

/// Takes the due timers' claims, decides, writes: one transaction.
pub(super) async fn fire_batch<F>(
    store: &PgStore,
    now: DateTime<Utc>,
    limit: i64,
    fingerprint: &str,
    mut decide: F,
) -> Result<usize, StoreError>
where
    F: FnMut(FireInput) -> ClaimWrite + Send,
{
    let mut tx = store.pool().begin().await?;
    let due = sqlx::query(
        "SELECT claim_id, claim_version FROM cpor_timers WHERE state = 'pending' AND due_at <= $1 \
         AND NOT EXISTS (SELECT 1 FROM cpor_claim_holds h WHERE h.claim_id = cpor_timers.claim_id) \
         ORDER BY due_at, claim_id LIMIT $2 FOR UPDATE SKIP LOCKED",
    )
    .bind(now)
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
    // The claim row lock is what serialises everyone who writes a claim's timers. SKIP LOCKED:
    // a claim held by another replica (or the main system) is left for a later batch, so a
    // fire batch never waits and replicas cannot deadlock.
    let rows = sqlx::query(concat!(
        changed_select!(),
        "WHERE id = ANY($1) ORDER BY id FOR UPDATE OF claims SKIP LOCKED"
    ))
    .bind(&ids)
    .fetch_all(&mut *tx)
    .await?;
    let mut claims: HashMap<String, ChangedClaim> = HashMap::new();
    let read = rows.iter().map(changed).collect::<Result<Vec<_>, _>>()?;
    for c in one_per_id(read) {
        claims.insert(c.id.clone(), c);
    }
    let existing: Vec<String> = sqlx::query_scalar("SELECT id FROM claims WHERE id = ANY($1)")
        .bind(&ids)
        .fetch_all(&mut *tx)
        .await?;
    ids.retain(|id| claims.contains_key(id) || !existing.contains(id));
    if ids.is_empty() {
        tx.commit().await?;
        return Ok(0);
    }
    let mut facts = PgStore::facts_impl(&mut tx, &ids).await?;
    let mut writes = Vec::with_capacity(ids.len());
    for id in &ids {
        let found = claims.remove(id);
        let input = FireInput {
            claim_id: id.clone(),
            dirty_gen: found.as_ref().map_or(0, |c| c.dirty_gen),
            claim: found.map(|c| c.claim),
            synced_version: synced_version[id],
            facts: facts.remove(id).unwrap_or_default(),
        };
        writes.push((id.clone(), decide(input)));
    }
    write_all(&mut tx, &writes, fingerprint, now).await?;
    tx.commit().await?;
    Ok(ids.len())
}

async fn write_all(
    conn: &mut PgConnection,
    writes: &[(String, ClaimWrite)],
    fingerprint: &str,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    // Status changes (the claims are locked and their versions checked by `decide`).
    let (mut sc_id, mut sc_to, mut sc_reason) = (Vec::new(), Vec::new(), Vec::new());
    let (mut h_id, mut h_at, mut h_actor, mut h_action, mut h_details) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let mut inc = Vec::new();
    let (mut a_id, mut a_timer, mut a_start, mut a_due) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let (mut f_id, mut f_timer, mut f_start, mut f_due, mut f_out) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let mut emails: Vec<&OutboxEmail> = Vec::new();
    let mut resync = Vec::new();
    for (id, w) in writes {
        if let Some(sc) = &w.status_change {
            sc_id.push(id.as_str());
            sc_to.push(sc.to.as_str());
            sc_reason.push(sc.rejection_reason.map(|r| r.as_str()));
        }
        for h in &w.history {
            h_id.push(h.claim_id.as_str());
            h_at.push(h.occurred_at);
            h_actor.push(h.actor.as_str());
            h_action.push(h.action.as_str());
            h_details.push(h.details.clone());
        }
        if w.incentive {
            inc.push(id.as_str());
        }
        for (t, s, d) in &w.alerts {
            a_id.push(id.as_str());
            a_timer.push(t.as_str());
            a_start.push(*s);
            a_due.push(*d);
        }
        for (t, s, d, o) in &w.fired {
            f_id.push(id.as_str());
            f_timer.push(t.as_str());
            f_start.push(*s);
            f_due.push(*d);
            f_out.push(o.as_str());
        }
        emails.extend(w.emails.iter());
        if let Some(r) = &w.resync {
            resync.push(r.clone());
        }
    }
    if !sc_id.is_empty() {
        sqlx::query(
            "UPDATE claims SET status = u.s, rejection_reason = COALESCE(u.r, claims.rejection_reason), \
               rejected_at = CASE WHEN u.s = 'rejected' THEN $4 ELSE claims.rejected_at END, \
               updated_at = $4, version = claims.version + 1 \
             FROM UNNEST($1::text[], $2::text[], $3::text[]) AS u(id, s, r) WHERE claims.id = u.id",
        )
        .bind(&sc_id)
        .bind(&sc_to)
        .bind(&sc_reason)
        .bind(now)
        .execute(&mut *conn)
        .await?;
    }
    if !h_id.is_empty() {
        sqlx::query(
            "INSERT INTO claim_history (claim_id, occurred_at, actor, action, details) \
             SELECT * FROM UNNEST($1::text[], $2::timestamptz[], $3::text[], $4::text[], $5::jsonb[])",
        )
        .bind(&h_id)
        .bind(&h_at)
        .bind(&h_actor)
        .bind(&h_action)
        .bind(&h_details)
        .execute(&mut *conn)
        .await?;
    }
    if !inc.is_empty() {
        sqlx::query(
            "INSERT INTO incentive_evaluation_requests (claim_id, requested_at) \
             SELECT c, $2 FROM UNNEST($1::text[]) AS u(c) ON CONFLICT (claim_id) DO NOTHING",
        )
        .bind(&inc)
        .bind(now)
        .execute(&mut *conn)
        .await?;
    }
    if !a_id.is_empty() {
        sqlx::query(
            "INSERT INTO cpor_sla_alerts (claim_id, timer, started_at, due_at, raised_at) \
             SELECT c, t, s, d, $5 FROM UNNEST($1::text[], $2::text[], $3::timestamptz[], $4::timestamptz[]) \
             AS u(c, t, s, d) ON CONFLICT DO NOTHING",
        )
        .bind(&a_id)
        .bind(&a_timer)
        .bind(&a_start)
        .bind(&a_due)
        .bind(now)
        .execute(&mut *conn)
        .await?;
    }
    if !emails.is_empty() {
        super::postgres_outbox::insert_emails(conn, &emails, now).await?;
    }
    if !f_id.is_empty() {
        sqlx::query(
            "INSERT INTO cpor_timers (claim_id, timer, started_at, due_at, claim_version, state, fired_at, outcome) \
             SELECT c, t, s, d, 0, 'fired', $6, o FROM UNNEST($1::text[], $2::text[], $3::timestamptz[], \
             $4::timestamptz[], $5::text[]) AS u(c, t, s, d, o) \
             ON CONFLICT (claim_id, timer, started_at) DO UPDATE SET state = 'fired', \
               fired_at = EXCLUDED.fired_at, outcome = EXCLUDED.outcome",
        )
        .bind(&f_id)
        .bind(&f_timer)
        .bind(&f_start)
        .bind(&f_due)
        .bind(&f_out)
        .bind(now)
        .execute(&mut *conn)
        .await?;
    }
    PgStore::save_sync_in(conn, &resync, fingerprint, now).await
}

impl PgStore {
    pub(super) async fn claims_page_impl(
        &self,
        after_id: &str,
        limit: i64,
    ) -> Result<Vec<ChangedClaim>, StoreError> {
        let rows = sqlx::query(concat!(
            changed_select!(),
            "WHERE id > $1 ORDER BY id LIMIT $2"
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
