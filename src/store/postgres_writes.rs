//! `PgStore`'s batch writes: one statement per table per batch whatever its size, each row a
//! position in `UNNEST` arrays. These are the statements that differ from SQLite's by nature.

use chrono::{DateTime, Utc};

use super::outbox::requeue_dead;
use super::postgres::Conn;
use super::state::{outbox_state, timer_state};
use super::work::{Stored, StoredRun};
use super::{
    ClaimWrite, OutboxEmail, PgStore, SlaAlert, StatusRecord, StoreError, SyncedClaim, TimerRow,
};
use crate::lifecycle::ClaimStatus;
use crate::timers::HELD_ON_FIRST_SIGHT;

/// The outbox INSERT of emails given as `UNNEST` arrays, then `$tail`.
macro_rules! outbox_insert {
    ($tail:literal) => {
        concat!(
            "INSERT INTO cpor_outbox (message_id, claim_id, timer, started_at, email, \
             to_name, to_address, locale, payload, state, attempts, next_attempt_at, \
             created_at, not_after, announced_last_day, announced_passes_at, \
             calendar_version, template_version) SELECT m, c, t, s, e, n, a, l, p::jsonb, ",
            outbox_state!(Pending),
            ", 0, $10, $10, na, ald, apa, cv, tv FROM UNNEST($1::text[], $2::text[], \
             $3::text[], $4::timestamptz[], $5::text[], $6::text[], $7::text[], $8::text[], \
             $9::text[], $11::timestamptz[], $12::text[], $13::timestamptz[], $14::text[], \
             $15::text[]) AS u(m, c, t, s, e, n, a, l, p, na, ald, apa, cv, tv)",
            $tail
        )
    };
}

/// Writes the claims' `cpor_claim_sync` rows: computed from `version` with `fingerprint` at
/// `at`, clean unless marked dirty since they were read (`dirty_gen`). `upsert` false: a plain
/// insert (the caller knows no row exists).
async fn sync_rows(
    conn: &mut Conn,
    synced: &[&SyncedClaim],
    fingerprint: &str,
    at: DateTime<Utc>,
    upsert: bool,
) -> Result<(), sqlx::Error> {
    /// The claims' rows from `UNNEST` arrays, then `$tail`.
    macro_rules! insert {
        ($tail:literal) => {
            concat!(
                "INSERT INTO cpor_claim_sync (claim_id, version, fingerprint, dirty, dirty_gen, \
                 problem, synced_at) SELECT c, v, $4, FALSE, g, p, $5 FROM UNNEST($1::text[], \
                 $2::bigint[], $3::text[], $6::bigint[]) AS u(c, v, p, g)",
                $tail
            )
        };
    }
    const INSERT: &str = insert!("");
    const UPSERT: &str = insert!(
        " ON CONFLICT (claim_id) DO UPDATE SET version = EXCLUDED.version, \
         fingerprint = EXCLUDED.fingerprint, problem = EXCLUDED.problem, \
         synced_at = EXCLUDED.synced_at, \
         dirty = cpor_claim_sync.dirty AND cpor_claim_sync.dirty_gen <> EXCLUDED.dirty_gen \
         WHERE cpor_claim_sync.version <> EXCLUDED.version \
         OR cpor_claim_sync.fingerprint <> EXCLUDED.fingerprint \
         OR cpor_claim_sync.problem IS DISTINCT FROM EXCLUDED.problem OR cpor_claim_sync.dirty"
    );
    sqlx::query(if upsert { UPSERT } else { INSERT })
        .bind(
            synced
                .iter()
                .map(|s| s.claim_id.as_str())
                .collect::<Vec<_>>(),
        )
        .bind(synced.iter().map(|s| s.version).collect::<Vec<_>>())
        .bind(
            synced
                .iter()
                .map(|s| s.problem.as_deref())
                .collect::<Vec<_>>(),
        )
        .bind(fingerprint)
        .bind(at)
        .bind(synced.iter().map(|s| s.dirty_gen).collect::<Vec<_>>())
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// Fired runs as `UNNEST` columns: claim, timer, start, due, outcome.
type FiredRuns<'a> = (
    Vec<&'a str>,
    Vec<&'a str>,
    Vec<DateTime<Utc>>,
    Vec<DateTime<Utc>>,
    Vec<&'a str>,
);

impl PgStore {
    /// Keeps the status changes of one page of change records, in their order.
    pub(super) async fn write_timeline(
        conn: &mut Conn,
        st: &[StatusRecord],
    ) -> Result<(), StoreError> {
        // One statement per page (a row at a time cost a commit each: 1,000,000 commits on
        // the first pass over a million claims).
        sqlx::query(
            "INSERT INTO cpor_status_timeline (claim_id, old_status, new_status, changed_at) \
             SELECT c, o, n, a FROM UNNEST($1::text[], $2::text[], $3::text[], $4::timestamptz[]) \
             WITH ORDINALITY AS u(c, o, n, a, i) ORDER BY i",
        )
        .bind(st.iter().map(|s| s.claim_id.as_str()).collect::<Vec<_>>())
        .bind(
            st.iter()
                .map(|s| s.old_status.as_deref())
                .collect::<Vec<_>>(),
        )
        .bind(
            st.iter()
                .map(|s| s.new_status.as_deref())
                .collect::<Vec<_>>(),
        )
        .bind(st.iter().map(|s| s.at).collect::<Vec<_>>())
        .execute(&mut *conn)
        .await?;
        Ok(())
    }

    /// Replaces the claims' pending timers and records what they were computed from;
    /// `stored` are the claims' timer runs if already read in this transaction (under the
    /// claims' row locks, like every call).
    pub(super) async fn write_sync(
        conn: &mut Conn,
        synced: &[SyncedClaim],
        fingerprint: &str,
        at: DateTime<Utc>,
        stored: Option<Stored>,
    ) -> Result<(), StoreError> {
        if synced.is_empty() {
            return Ok(());
        }
        requeue_dead!(
            conn,
            synced,
            at,
            set_to = "jsonb_set(payload, '{to}', jsonb_build_object('name', $2::text, 'address', $3::text))"
        );
        let ids: Vec<&str> = synced.iter().map(|s| s.claim_id.as_str()).collect();
        let runs = |f: fn(&SyncedClaim) -> &[TimerRow]| -> Vec<(&str, &TimerRow, i64)> {
            synced
                .iter()
                .flat_map(|s| {
                    f(s).iter()
                        .map(move |t| (s.claim_id.as_str(), t, s.version))
                })
                .collect()
        };
        let pending = runs(|s| &s.pending);
        // Only what changed is written: a pending row equal to one recomputed stays as it is
        // (a fire batch recomputes every claim it touches, most to the same timers), the
        // others go, and only the new ones are inserted. The difference is taken here, from
        // one read of the claims' pending rows, so every statement keeps a plain index plan.
        let stored: Stored = match stored {
            Some(stored) => stored,
            None => {
                let rows = sqlx::query(
                    "SELECT claim_id, timer, started_at, due_at, claim_version, state \
                     FROM cpor_timers WHERE claim_id = ANY($1)",
                )
                .bind(&ids)
                .fetch_all(&mut *conn)
                .await?;
                super::row::pending_runs(rows)?.0
            }
        };
        // Borrowed keys: a first pass compares a million claims' runs.
        type Key<'k> = (&'k str, &'k str, DateTime<Utc>);
        let wanted: std::collections::HashSet<(Key, DateTime<Utc>, i64)> = pending
            .iter()
            .map(|(c, t, v)| ((*c, t.kind.as_str(), t.start), t.due, *v))
            .collect();
        let gone: Vec<&StoredRun> = stored
            .pending
            .iter()
            .filter(|r| !wanted.contains(&((r.0.as_str(), r.1.as_str(), r.2), r.3, r.4)))
            .collect();
        let mut existing: std::collections::HashSet<Key> = stored
            .keys
            .iter()
            .map(|k| (k.0.as_str(), k.1.as_str(), k.2))
            .collect();
        if !gone.is_empty() {
            sqlx::query(concat!(
                "DELETE FROM cpor_timers t USING UNNEST($1::text[], $2::text[], $3::timestamptz[]) \
                 AS u(c, k, s) WHERE t.claim_id = u.c AND t.timer = u.k AND t.started_at = u.s \
                 AND t.state = ",
                timer_state!(Pending)
            ))
            .bind(gone.iter().map(|r| r.0.as_str()).collect::<Vec<_>>())
            .bind(gone.iter().map(|r| r.1.as_str()).collect::<Vec<_>>())
            .bind(gone.iter().map(|r| r.2).collect::<Vec<_>>())
            .execute(&mut *conn)
            .await?;
            for r in &gone {
                existing.remove(&(r.0.as_str(), r.1.as_str(), r.2));
            }
        }
        // A run whose row exists (pending and unchanged, fired, held) stays as it is; the rows
        // were read under the claims' locks, so a plain insert of the others meets no row of
        // theirs (a `WHERE NOT EXISTS` probe per row cost 1.6x the insert, `ON CONFLICT DO
        // NOTHING`'s speculative insertion more). A run given twice is inserted once.
        let new: Vec<&(&str, &TimerRow, i64)> = pending
            .iter()
            .filter(|(c, t, _)| existing.insert((c, t.kind.as_str(), t.start)))
            .collect();
        if !new.is_empty() {
            sqlx::query(concat!(
                "INSERT INTO cpor_timers (claim_id, timer, started_at, due_at, claim_version, state) \
                 SELECT c, k, s, d, v, ",
                timer_state!(Pending),
                " FROM UNNEST($1::text[], $2::text[], $3::timestamptz[], $4::timestamptz[], \
                 $5::bigint[]) AS u(c, k, s, d, v)"
            ))
            .bind(new.iter().map(|h| h.0).collect::<Vec<_>>())
            .bind(new.iter().map(|h| h.1.kind.as_str()).collect::<Vec<_>>())
            .bind(new.iter().map(|h| h.1.start).collect::<Vec<_>>())
            .bind(new.iter().map(|h| h.1.due).collect::<Vec<_>>())
            .bind(new.iter().map(|h| h.2).collect::<Vec<_>>())
            .execute(&mut *conn)
            .await?;
        }
        let held_runs = runs(|s| &s.held);
        let held: Vec<&(&str, &TimerRow, i64)> = held_runs
            .iter()
            .filter(|(c, t, _)| existing.insert((c, t.kind.as_str(), t.start)))
            .collect();
        if !held.is_empty() {
            sqlx::query(concat!(
                "INSERT INTO cpor_timers (claim_id, timer, started_at, due_at, claim_version, state, \
                 fired_at, outcome) SELECT c, k, s, d, v, ",
                timer_state!(Held),
                ", $6, $7 FROM UNNEST($1::text[], $2::text[], $3::timestamptz[], $4::timestamptz[], \
                 $5::bigint[]) AS u(c, k, s, d, v)"
            ))
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
        // Claims first seen (no sync row when read) get theirs by a plain insert, in a
        // savepoint. The worker's other writers of a sync row hold the claim's lock or find a
        // row already; should any other transaction write one meanwhile, the insert fails and
        // the upsert does it as for the others, so the page still commits. (An upsert's
        // speculative insertion cost a first pass 1.6-2x the insert.)
        let (fresh, seen): (Vec<&SyncedClaim>, Vec<&SyncedClaim>) = synced
            .iter()
            .partition(|s| stored.unsynced.contains(&s.claim_id));
        // A row that would stay as it is (a fire batch recomputes every claim it touches,
        // most to what they were) is not written, so not locked either.
        let unchanged = |s: &SyncedClaim| {
            stored.sync_rows.get(&s.claim_id).is_some_and(|r| {
                !r.dirty
                    && r.version == s.version
                    && r.fingerprint == fingerprint
                    && r.problem == s.problem
            })
        };
        let mut upsert: Vec<&SyncedClaim> = seen.into_iter().filter(|s| !unchanged(s)).collect();
        if !fresh.is_empty() {
            let mut savepoint = sqlx::Connection::begin(&mut *conn).await?;
            let inserted = sync_rows(&mut savepoint, &fresh, fingerprint, at, false).await;
            match inserted {
                Ok(()) => savepoint.commit().await?,
                Err(sqlx::Error::Database(e)) if e.is_unique_violation() => {
                    savepoint.rollback().await?;
                    upsert.extend(fresh);
                }
                Err(e) => return Err(e.into()),
            }
        }
        if !upsert.is_empty() {
            sync_rows(&mut *conn, &upsert, fingerprint, at, true).await?;
        }
        Ok(())
    }

    /// Writes what a fire batch decided for its claims (locked, versions checked by `decide`).
    pub(super) async fn write_fired(
        conn: &mut Conn,
        writes: &[(String, ClaimWrite)],
        fingerprint: &str,
        now: DateTime<Utc>,
        stored: Stored,
    ) -> Result<(), StoreError> {
        let (mut sc_id, mut sc_to, mut sc_reason, mut sc_rejected) =
            (Vec::new(), Vec::new(), Vec::new(), Vec::new());
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
                sc_rejected.push((sc.to == ClaimStatus::Rejected).then_some(now));
            }
            for h in &w.history {
                h_id.push(h.claim_id.as_str());
                h_at.push(h.occurred_at);
                h_actor.push(h.actor.as_str());
                h_action.push(h.action.as_str());
                // Bound as the text it was written as, which PostgreSQL casts to jsonb.
                h_details.push(h.details.as_str());
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
                   rejected_at = COALESCE(u.ra, claims.rejected_at), \
                   updated_at = $5, version = claims.version + 1 \
                 FROM UNNEST($1::text[], $2::text[], $3::text[], $4::timestamptz[]) AS u(id, s, r, ra) \
                 WHERE claims.id = u.id",
            )
            .bind(&sc_id)
            .bind(&sc_to)
            .bind(&sc_reason)
            .bind(&sc_rejected)
            .bind(now)
            .execute(&mut *conn)
            .await?;
        }
        if !h_id.is_empty() {
            sqlx::query(
                "INSERT INTO claim_history (claim_id, occurred_at, actor, action, details) \
                 SELECT c, o, a, n, d::jsonb FROM UNNEST($1::text[], $2::timestamptz[], $3::text[], \
                 $4::text[], $5::text[]) AS u(c, o, a, n, d)",
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
                 SELECT c, t, s, d, $5 FROM UNNEST($1::text[], $2::text[], $3::timestamptz[], \
                 $4::timestamptz[]) AS u(c, t, s, d) ON CONFLICT DO NOTHING",
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
            // The claims' emails were read under their locks: those that exist stay as they
            // are and the others are inserted without a conflict check (an email given twice
            // once).
            let mut once = std::collections::HashSet::new();
            emails.retain(|e| {
                !stored.message_ids.contains(&e.message_id) && once.insert(e.message_id.as_str())
            });
            if !emails.is_empty() {
                Self::write_emails(conn, &emails, now, false).await?;
            }
        }
        if !f_id.is_empty() {
            // A run fired has its row marked, or gets one (a run settled without ever being
            // pending); the rows were read under the claims' locks, so which is known (an
            // upsert's speculative insertion per row cost more than the update).
            let existing: std::collections::HashSet<(&str, &str, DateTime<Utc>)> = stored
                .keys
                .iter()
                .map(|k| (k.0.as_str(), k.1.as_str(), k.2))
                .collect();
            let mut once = std::collections::HashSet::new();
            let (mut marked, mut added) = (Vec::new(), Vec::new());
            for i in 0..f_id.len() {
                let run = (f_id[i], f_timer[i], f_start[i]);
                if once.insert(run) {
                    if existing.contains(&run) {
                        marked.push(i);
                    } else {
                        added.push(i);
                    }
                }
            }
            let pick = |v: &[usize]| -> FiredRuns {
                (
                    v.iter().map(|&i| f_id[i]).collect(),
                    v.iter().map(|&i| f_timer[i]).collect(),
                    v.iter().map(|&i| f_start[i]).collect(),
                    v.iter().map(|&i| f_due[i]).collect(),
                    v.iter().map(|&i| f_out[i]).collect(),
                )
            };
            if !marked.is_empty() {
                let (c, t, s, _, o) = pick(&marked);
                sqlx::query(concat!(
                    "UPDATE cpor_timers SET state = ",
                    timer_state!(Fired),
                    ", fired_at = $5, outcome = u.o FROM UNNEST($1::text[], $2::text[], \
                     $3::timestamptz[], $4::text[]) AS u(c, t, s, o) WHERE claim_id = u.c \
                     AND timer = u.t AND started_at = u.s"
                ))
                .bind(c)
                .bind(t)
                .bind(s)
                .bind(o)
                .bind(now)
                .execute(&mut *conn)
                .await?;
            }
            if !added.is_empty() {
                let (c, t, s, d, o) = pick(&added);
                sqlx::query(concat!(
                    "INSERT INTO cpor_timers (claim_id, timer, started_at, due_at, claim_version, \
                     state, fired_at, outcome) SELECT c, t, s, d, 0, ",
                    timer_state!(Fired),
                    ", $6, o FROM UNNEST($1::text[], $2::text[], $3::timestamptz[], \
                     $4::timestamptz[], $5::text[]) AS u(c, t, s, d, o)"
                ))
                .bind(c)
                .bind(t)
                .bind(s)
                .bind(d)
                .bind(o)
                .bind(now)
                .execute(&mut *conn)
                .await?;
            }
        }
        // The claims' pending runs were read under their locks at the start of the batch;
        // only the recomputed claims' are compared, and not the runs just marked fired.
        let resynced: std::collections::HashSet<&str> =
            resync.iter().map(|r| r.claim_id.as_str()).collect();
        let fired: std::collections::HashSet<(&str, &str, DateTime<Utc>)> = f_id
            .iter()
            .zip(&f_timer)
            .zip(&f_start)
            .map(|((c, t), s)| (*c, *t, *s))
            .collect();
        let mut stored = stored;
        stored.pending.retain(|r| {
            resynced.contains(r.0.as_str()) && !fired.contains(&(r.0.as_str(), r.1.as_str(), r.2))
        });
        // The runs just marked fired have a row now, whether they had one before or not.
        stored.keys.extend(
            fired
                .iter()
                .map(|(c, t, s)| (c.to_string(), t.to_string(), *s)),
        );
        Self::write_sync(conn, &resync, fingerprint, now, Some(stored)).await
    }

    /// Writes emails to the outbox (a second write of the same Message-ID is ignored).
    pub(super) async fn insert_emails(
        conn: &mut Conn,
        emails: &[&OutboxEmail],
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        Self::write_emails(conn, emails, now, true).await
    }

    /// Inserts emails into the outbox; `on_conflict`: one whose Message-ID exists is ignored,
    /// else the caller knows none exists.
    async fn write_emails(
        conn: &mut Conn,
        emails: &[&OutboxEmail],
        now: DateTime<Utc>,
        on_conflict: bool,
    ) -> Result<(), StoreError> {
        let col = |f: fn(&OutboxEmail) -> &str| emails.iter().map(|e| f(e)).collect::<Vec<_>>();
        let optional =
            |f: fn(&OutboxEmail) -> Option<&str>| emails.iter().map(|e| f(e)).collect::<Vec<_>>();
        sqlx::query(if on_conflict {
            outbox_insert!(" ON CONFLICT (message_id) DO NOTHING")
        } else {
            outbox_insert!("")
        })
        .bind(col(|e| &e.message_id))
        .bind(col(|e| &e.claim_id))
        .bind(col(|e| e.timer.as_str()))
        .bind(emails.iter().map(|e| e.start).collect::<Vec<_>>())
        .bind(col(|e| e.email.as_str()))
        .bind(col(|e| &e.to_name))
        .bind(col(|e| &e.to_address))
        .bind(col(|e| &e.locale))
        .bind(col(|e| e.payload.as_str()))
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
        .bind(optional(|e| e.calendar_version.as_deref()))
        .bind(optional(|e| e.template_version.as_deref()))
        .execute(&mut *conn)
        .await?;
        Ok(())
    }

    /// Marks SLA breaches as reported by a digest at `now`.
    pub(super) async fn mark_notified(
        conn: &mut Conn,
        alerts: &[SlaAlert],
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE cpor_sla_alerts a SET notified_at = $4 FROM UNNEST($1::text[], $2::text[], \
             $3::timestamptz[]) AS u(c, t, s) WHERE a.claim_id = u.c AND a.timer = u.t \
             AND a.started_at = u.s",
        )
        .bind(
            alerts
                .iter()
                .map(|a| a.claim_id.as_str())
                .collect::<Vec<_>>(),
        )
        .bind(alerts.iter().map(|a| a.timer.as_str()).collect::<Vec<_>>())
        .bind(alerts.iter().map(|a| a.start).collect::<Vec<_>>())
        .bind(now)
        .execute(&mut *conn)
        .await?;
        Ok(())
    }
}
