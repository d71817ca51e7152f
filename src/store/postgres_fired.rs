//! `PgStore`'s writes of a fire batch (claims, history, incentive requests, SLA alerts, timers
//! marked fired) and of the outbox: one statement per table per batch. The emails and the runs
//! fired without a row go in by `COPY` (`copy_rows.rs`); the other statements bind each row as
//! a position in arrays.
//!
//! An insert from arrays takes its rows from `unnest` in a select list (`SELECT … FROM (SELECT unnest($1)
//! AS c, unnest($2) AS d …) u`), which PostgreSQL streams, rather than `FROM UNNEST($1, $2 …)`,
//! a function scan that first copies every row into a tuplestore (and past `work_mem`, 4 MB
//! by default, into a temporary file and back): 5,000 outbox-shaped rows, a median of 22 ms
//! against 26-36 ms (`benches/unnest_forms.sql`). The arrays have one length, so both forms
//! give the same rows in the same order.

use chrono::{DateTime, Utc};

use super::copy_rows::CopyRows;
use super::postgres::Conn;
use super::postgres_runs::{TIMER_FIELDS, TIMERS_COPY, timer_row};
use super::state::{OutboxState, TimerState, outbox_state, timer_state};
use super::work::Stored;
use super::{ClaimWrite, OutboxEmail, PgStore, StoreError, TimerRow};
use crate::lifecycle::{ClaimStatus, HistoryEntry};

/// The outbox INSERT of emails given as arrays (streamed by `unnest`); an email whose
/// Message-ID exists is left as it is.
const OUTBOX_INSERT: &str = concat!(
    "INSERT INTO cpor_outbox (message_id, claim_id, timer, started_at, email, \
     to_name, to_address, locale, payload, state, attempts, next_attempt_at, \
     created_at, not_after, announced_last_day, announced_passes_at, \
     calendar_version, template_version) SELECT m, c, t, s, e, n, a, l, p::jsonb, ",
    outbox_state!(Pending),
    ", 0, $10, $10, na, ald, apa, cv, tv FROM (SELECT unnest($1::text[]) AS m, \
     unnest($2::text[]) AS c, unnest($3::text[]) AS t, unnest($4::timestamptz[]) AS s, \
     unnest($5::text[]) AS e, unnest($6::text[]) AS n, unnest($7::text[]) AS a, \
     unnest($8::text[]) AS l, unnest($9::text[]) AS p, \
     unnest($11::timestamptz[]) AS na, unnest($12::text[]) AS ald, \
     unnest($13::timestamptz[]) AS apa, unnest($14::text[]) AS cv, \
     unnest($15::text[]) AS tv) AS u ON CONFLICT (message_id) DO NOTHING"
);

/// True when `claim_history` takes binary `COPY`: a plain or partitioned table without rules
/// (which `COPY` does not apply) or row-level security (under which PostgreSQL refuses `COPY
/// FROM`), whose five columns the worker writes have exactly the types its migration gives
/// them (binary `jsonb` into a `text` column would keep its format byte).
const HISTORY_BY_COPY: &str = "SELECT count(*) = 5 FROM pg_attribute a \
     JOIN pg_class c ON c.oid = a.attrelid AND c.relkind IN ('r', 'p') \
     AND NOT c.relhasrules AND NOT c.relrowsecurity \
     JOIN (VALUES ('claim_id', 'text'::regtype), ('occurred_at', 'timestamptz'::regtype), \
     ('actor', 'text'::regtype), ('action', 'text'::regtype), ('details', 'jsonb'::regtype)) \
     AS w(name, type) ON a.attname = w.name AND a.atttypid = w.type \
     WHERE a.attrelid = to_regclass('claim_history') AND a.attnum > 0 AND NOT a.attisdropped";

/// The outbox `COPY` of [`PgStore::copy_emails`], its columns in the order it writes them.
const OUTBOX_COPY: &str = "COPY cpor_outbox (message_id, claim_id, timer, started_at, email, \
     to_name, to_address, locale, payload, state, attempts, next_attempt_at, created_at, \
     not_after, announced_last_day, announced_passes_at, calendar_version, template_version) \
     FROM STDIN (FORMAT binary)";

impl PgStore {
    /// Writes what a fire batch decided for its claims (locked, versions checked by `decide`).
    pub(super) async fn write_fired(
        conn: &mut Conn,
        writes: &mut [(String, ClaimWrite)],
        fingerprint: &str,
        now: DateTime<Utc>,
        stored: Stored,
    ) -> Result<(), StoreError> {
        // Moved out, not copied: the claims' recomputed timers are written last.
        let resync: Vec<_> = writes
            .iter_mut()
            .filter_map(|(_, w)| w.resync.take())
            .collect();
        let writes = &*writes;
        let (mut sc_id, mut sc_to, mut sc_reason, mut sc_rejected) =
            (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        let mut history: Vec<&HistoryEntry> = Vec::new();
        let mut inc = Vec::new();
        let (mut a_id, mut a_timer, mut a_start, mut a_due) =
            (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        let (mut f_id, mut f_kind, mut f_start, mut f_due, mut f_out) =
            (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
        let mut emails: Vec<&OutboxEmail> = Vec::new();
        for (id, w) in writes {
            if let Some(sc) = &w.status_change {
                sc_id.push(id.as_str());
                sc_to.push(sc.to.as_str());
                sc_reason.push(sc.rejection_reason.map(|r| r.as_str()));
                sc_rejected.push((sc.to == ClaimStatus::Rejected).then_some(now));
            }
            history.extend(w.history.iter());
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
                f_kind.push(*t);
                f_start.push(*s);
                f_due.push(*d);
                f_out.push(o.as_str());
            }
            emails.extend(w.emails.iter());
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
        Self::write_history(conn, &history).await?;
        if !inc.is_empty() {
            sqlx::query(
                "INSERT INTO incentive_evaluation_requests (claim_id, requested_at) \
                 SELECT unnest($1::text[]), $2 ON CONFLICT (claim_id) DO NOTHING",
            )
            .bind(&inc)
            .bind(now)
            .execute(&mut *conn)
            .await?;
        }
        if !a_id.is_empty() {
            sqlx::query(
                "INSERT INTO cpor_sla_alerts (claim_id, timer, started_at, due_at, raised_at) \
                 SELECT unnest($1::text[]), unnest($2::text[]), unnest($3::timestamptz[]), \
                 unnest($4::timestamptz[]), $5 ON CONFLICT DO NOTHING",
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
            let mut once = super::Set::default();
            emails.retain(|e| {
                !stored.message_ids.contains(&e.message_id) && once.insert(e.message_id.as_str())
            });
            if !emails.is_empty() {
                Self::copy_emails(conn, &emails, now).await?;
            }
        }
        if !f_id.is_empty() {
            // A run fired has its row marked, or gets one (a run settled without ever being
            // pending); the rows were read under the claims' locks, so which is known (an
            // upsert's speculative insertion per row cost more than the update).
            let existing: super::Set<(&str, &str, DateTime<Utc>)> = stored
                .keys
                .iter()
                .map(|k| (k.0.as_str(), k.1.as_str(), k.2))
                .collect();
            let mut once = super::Set::default();
            let (mut marked, mut added) = (Vec::new(), Vec::new());
            for i in 0..f_id.len() {
                let run = (f_id[i], f_kind[i].as_str(), f_start[i]);
                if once.insert(run) {
                    if existing.contains(&run) {
                        marked.push(i);
                    } else {
                        added.push(i);
                    }
                }
            }
            if !marked.is_empty() {
                fn pick<'s>(rows: &[usize], col: &[&'s str]) -> Vec<&'s str> {
                    rows.iter().map(|&i| col[i]).collect()
                }
                sqlx::query(concat!(
                    "UPDATE cpor_timers SET state = ",
                    timer_state!(Fired),
                    ", fired_at = $5, outcome = u.o FROM UNNEST($1::text[], $2::text[], \
                     $3::timestamptz[], $4::text[]) AS u(c, t, s, o) WHERE claim_id = u.c \
                     AND timer = u.t AND started_at = u.s"
                ))
                .bind(pick(&marked, &f_id))
                .bind(
                    marked
                        .iter()
                        .map(|&i| f_kind[i].as_str())
                        .collect::<Vec<_>>(),
                )
                .bind(marked.iter().map(|&i| f_start[i]).collect::<Vec<_>>())
                .bind(pick(&marked, &f_out))
                .bind(now)
                .execute(&mut *conn)
                .await?;
            }
            let mut rows = CopyRows::new(TIMER_FIELDS, added.len() * 128);
            for &i in &added {
                let run = TimerRow {
                    kind: f_kind[i],
                    start: f_start[i],
                    due: f_due[i],
                };
                let fired = Some((now, f_out[i]));
                timer_row(&mut rows, f_id[i], &run, 0, TimerState::Fired, fired);
            }
            rows.send(conn, TIMERS_COPY).await?;
        }
        // The claims' pending runs were read under their locks at the start of the batch;
        // only the recomputed claims' are compared, and not the runs just marked fired.
        let resynced: super::Set<&str> = resync.iter().map(|r| r.claim_id.as_str()).collect();
        let fired: super::Set<(&str, &str, DateTime<Utc>)> = f_id
            .iter()
            .zip(&f_kind)
            .zip(&f_start)
            .map(|((c, t), s)| (*c, t.as_str(), *s))
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

    /// Inserts history rows: by `COPY` when `claim_history` takes it ([`HISTORY_BY_COPY`],
    /// asked in the batch's transaction, so a change of the main system's schema is seen by
    /// the next batch), else from arrays cast to whatever types the table has.
    async fn write_history(conn: &mut Conn, history: &[&HistoryEntry]) -> Result<(), StoreError> {
        if history.is_empty() {
            return Ok(());
        }
        let by_copy: bool = sqlx::query_scalar(HISTORY_BY_COPY)
            .fetch_one(&mut *conn)
            .await?;
        if by_copy {
            let size: usize = history
                .iter()
                .map(|h| 96 + h.claim_id.len() + h.action.len() + h.details.as_str().len())
                .sum();
            let mut rows = CopyRows::new(5, size);
            for h in history {
                rows.row()
                    .text(&h.claim_id)
                    .instant(h.occurred_at)
                    .text(h.actor.as_str())
                    .text(&h.action)
                    .jsonb(h.details.as_str());
            }
            rows.send(
                conn,
                "COPY claim_history (claim_id, occurred_at, actor, action, details) \
                 FROM STDIN (FORMAT binary)",
            )
            .await?;
            return Ok(());
        }
        sqlx::query(
            "INSERT INTO claim_history (claim_id, occurred_at, actor, action, details) \
             SELECT c, o, a, n, d::jsonb FROM (SELECT unnest($1::text[]) AS c, \
             unnest($2::timestamptz[]) AS o, unnest($3::text[]) AS a, \
             unnest($4::text[]) AS n, unnest($5::text[]) AS d) AS u",
        )
        .bind(
            history
                .iter()
                .map(|h| h.claim_id.as_str())
                .collect::<Vec<_>>(),
        )
        .bind(history.iter().map(|h| h.occurred_at).collect::<Vec<_>>())
        .bind(history.iter().map(|h| h.actor.as_str()).collect::<Vec<_>>())
        .bind(
            history
                .iter()
                .map(|h| h.action.as_str())
                .collect::<Vec<_>>(),
        )
        // Bound as the text it was written as, which PostgreSQL casts to jsonb.
        .bind(
            history
                .iter()
                .map(|h| h.details.as_str())
                .collect::<Vec<_>>(),
        )
        .execute(&mut *conn)
        .await?;
        Ok(())
    }

    /// Writes emails to the outbox (a second write of the same Message-ID is ignored).
    pub(super) async fn insert_emails(
        conn: &mut Conn,
        emails: &[&OutboxEmail],
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let col = |f: fn(&OutboxEmail) -> &str| emails.iter().map(|e| f(e)).collect::<Vec<_>>();
        let optional =
            |f: fn(&OutboxEmail) -> Option<&str>| emails.iter().map(|e| f(e)).collect::<Vec<_>>();
        sqlx::query(OUTBOX_INSERT)
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

    /// Inserts emails none of which is in the outbox (their claims' emails were read under
    /// their locks), in one `COPY`.
    async fn copy_emails(
        conn: &mut Conn,
        emails: &[&OutboxEmail],
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let size: usize = emails
            .iter()
            .map(|e| 256 + e.message_id.len() + e.payload.as_str().len())
            .sum();
        let mut rows = CopyRows::new(18, size);
        for e in emails {
            rows.row()
                .text(&e.message_id)
                .text(&e.claim_id)
                .text(e.timer.as_str())
                .instant(e.start)
                .text(e.email.as_str())
                .text(&e.to_name)
                .text(&e.to_address)
                .text(&e.locale)
                .jsonb(e.payload.as_str())
                .text(OutboxState::Pending.as_str())
                .int4(0)
                .instant(now)
                .instant(now)
                .opt_instant(e.not_after);
            match e.announced {
                // The date as ISO 8601 text (`2027-01-05`), as the INSERT binds it.
                Some((d, t)) => rows.text(&d.to_string()).instant(t),
                None => rows.null().null(),
            }
            .opt_text(e.calendar_version.as_deref())
            .opt_text(e.template_version.as_deref());
        }
        rows.send(conn, OUTBOX_COPY).await?;
        Ok(())
    }
}
