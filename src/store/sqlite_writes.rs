//! `SqliteStore`'s batch writes: a statement per row inside the batch's one write transaction
//! (SQLite has one writer, and a row costs no round trip). These are the statements that
//! differ from PostgreSQL's `UNNEST` arrays by nature.

use chrono::{DateTime, Utc};

use super::bind::{At, at_opt};
use super::claims::insert_history;
use super::outbox::requeue_dead;
use super::sqlite::Conn;
use super::state::{outbox_state, timer_state};
use super::work::Stored;
use super::{
    ClaimWrite, OutboxEmail, SlaAlert, SqliteStore, StatusRecord, StoreError, SyncedClaim,
};
use crate::lifecycle::ClaimStatus;
use crate::timers::HELD_ON_FIRST_SIGHT;

/// Writes one `cpor_timers` run in a state (`fired_at` and `outcome` set when held).
const INSERT_RUN: &str = concat!(
    "INSERT INTO cpor_timers (claim_id, timer, started_at, due_at, claim_version, state, ",
    "fired_at, outcome) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ",
    "ON CONFLICT (claim_id, timer, started_at) DO NOTHING"
);

impl SqliteStore {
    /// Keeps the status changes of one page of change records, in their order, in one
    /// transaction (not a commit per row).
    pub(super) async fn write_timeline(
        conn: &mut Conn,
        st: &[StatusRecord],
    ) -> Result<(), StoreError> {
        for s in st {
            sqlx::query(
                "INSERT INTO cpor_status_timeline (claim_id, old_status, new_status, changed_at) \
                 VALUES ($1, $2, $3, $4)",
            )
            .bind(&s.claim_id)
            .bind(&s.old_status)
            .bind(&s.new_status)
            .bind(At(s.at))
            .execute(&mut *conn)
            .await?;
        }
        Ok(())
    }

    /// The claims seen first whose sync rows another transaction wrote meanwhile: none, as
    /// SQLite has one writer ([`Self::write_sync`] writes every row).
    pub(super) async fn claim_first_sight(
        _conn: &mut Conn,
        _synced: &[SyncedClaim],
        _stored: &mut Stored,
        _fingerprint: &str,
        _at: DateTime<Utc>,
    ) -> Result<std::collections::HashSet<String>, StoreError> {
        Ok(std::collections::HashSet::new())
    }

    /// Replaces the claims' pending timers and records what they were computed from.
    /// (`_stored`, the claims' timer runs if read already, is not needed: every pending
    /// row of the claims is replaced.)
    pub(super) async fn write_sync(
        conn: &mut Conn,
        synced: &[SyncedClaim],
        fingerprint: &str,
        at: DateTime<Utc>,
        _stored: Option<Stored>,
    ) -> Result<(), StoreError> {
        requeue_dead!(
            conn,
            synced,
            at,
            set_to = "json_set(payload, '$.to.name', $2, '$.to.address', $3)"
        );
        for s in synced {
            sqlx::query(concat!(
                "DELETE FROM cpor_timers WHERE claim_id = $1 AND state = ",
                timer_state!(Pending)
            ))
            .bind(&s.claim_id)
            .execute(&mut *conn)
            .await?;
            let pending = s.pending.iter().map(|t| (t, None));
            let held = s.held.iter().map(|t| (t, Some(at)));
            for (t, held_at) in pending.chain(held) {
                let state = if held_at.is_some() {
                    super::TimerState::Held
                } else {
                    super::TimerState::Pending
                };
                sqlx::query(INSERT_RUN)
                    .bind(&s.claim_id)
                    .bind(t.kind.as_str())
                    .bind(At(t.start))
                    .bind(At(t.due))
                    .bind(s.version)
                    .bind(state.as_str())
                    .bind(at_opt(held_at))
                    .bind(held_at.map(|_| HELD_ON_FIRST_SIGHT))
                    .execute(&mut *conn)
                    .await?;
            }
            sqlx::query(
                "INSERT INTO cpor_claim_sync (claim_id, version, fingerprint, dirty, dirty_gen, problem, synced_at) \
                 VALUES ($1, $2, $3, FALSE, $4, $5, $6) ON CONFLICT (claim_id) DO UPDATE SET \
                   version = excluded.version, fingerprint = excluded.fingerprint, \
                   problem = excluded.problem, synced_at = excluded.synced_at, \
                   dirty = cpor_claim_sync.dirty AND cpor_claim_sync.dirty_gen <> excluded.dirty_gen",
            )
            .bind(&s.claim_id)
            .bind(s.version)
            .bind(fingerprint)
            .bind(s.dirty_gen)
            .bind(&s.problem)
            .bind(At(at))
            .execute(&mut *conn)
            .await?;
        }
        Ok(())
    }

    /// Writes what a fire batch decided for its claims, claim by claim.
    pub(super) async fn write_fired(
        conn: &mut Conn,
        writes: &mut [(String, ClaimWrite)],
        fingerprint: &str,
        now: DateTime<Utc>,
        _stored: Stored,
    ) -> Result<(), StoreError> {
        for (id, w) in writes.iter() {
            if let Some(sc) = &w.status_change {
                sqlx::query(
                    "UPDATE claims SET status = $2, rejection_reason = COALESCE($3, rejection_reason), \
                       rejected_at = COALESCE($4, rejected_at), updated_at = $5, \
                       version = version + 1 WHERE id = $1",
                )
                .bind(id)
                .bind(sc.to.as_str())
                .bind(sc.rejection_reason.map(|r| r.as_str()))
                .bind((sc.to == ClaimStatus::Rejected).then_some(At(now)))
                .bind(At(now))
                .execute(&mut *conn)
                .await?;
            }
            for h in &w.history {
                insert_history!(&mut *conn, h).await?;
            }
            if w.incentive {
                sqlx::query(
                    "INSERT INTO incentive_evaluation_requests (claim_id, requested_at) \
                     VALUES ($1, $2) ON CONFLICT (claim_id) DO NOTHING",
                )
                .bind(id)
                .bind(At(now))
                .execute(&mut *conn)
                .await?;
            }
            for (t, s, d) in &w.alerts {
                sqlx::query(
                    "INSERT INTO cpor_sla_alerts (claim_id, timer, started_at, due_at, raised_at) \
                     VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING",
                )
                .bind(id)
                .bind(t.as_str())
                .bind(At(*s))
                .bind(At(*d))
                .bind(At(now))
                .execute(&mut *conn)
                .await?;
            }
            let emails: Vec<&OutboxEmail> = w.emails.iter().collect();
            Self::insert_emails(conn, &emails, now).await?;
            for (t, s, d, o) in &w.fired {
                sqlx::query(concat!(
                    "INSERT INTO cpor_timers (claim_id, timer, started_at, due_at, claim_version, \
                     state, fired_at, outcome) VALUES ($1, $2, $3, $4, 0, ",
                    timer_state!(Fired),
                    ", $5, $6) ON CONFLICT (claim_id, timer, started_at) DO UPDATE SET state = ",
                    timer_state!(Fired),
                    ", fired_at = excluded.fired_at, outcome = excluded.outcome"
                ))
                .bind(id)
                .bind(t.as_str())
                .bind(At(*s))
                .bind(At(*d))
                .bind(At(now))
                .bind(o)
                .execute(&mut *conn)
                .await?;
            }
            if let Some(r) = &w.resync {
                Self::write_sync(conn, std::slice::from_ref(r), fingerprint, now, None).await?;
            }
        }
        Ok(())
    }

    /// Writes emails to the outbox (a second write of the same Message-ID is ignored).
    pub(super) async fn insert_emails(
        conn: &mut Conn,
        emails: &[&OutboxEmail],
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        for e in emails {
            sqlx::query(concat!(
                "INSERT INTO cpor_outbox (message_id, claim_id, timer, started_at, email, to_name, \
                 to_address, locale, payload, state, attempts, next_attempt_at, created_at, \
                 not_after, announced_last_day, announced_passes_at, calendar_version, \
                 template_version) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, ",
                outbox_state!(Pending),
                ", 0, $10, $10, $11, $12, $13, $14, $15) ON CONFLICT (message_id) DO NOTHING"
            ))
            .bind(&e.message_id)
            .bind(&e.claim_id)
            .bind(e.timer.as_str())
            .bind(At(e.start))
            .bind(e.email.as_str())
            .bind(&e.to_name)
            .bind(&e.to_address)
            .bind(&e.locale)
            .bind(super::bind::Doc(&e.payload))
            .bind(At(now))
            .bind(at_opt(e.not_after))
            .bind(e.announced.map(|(d, _)| d.to_string()))
            .bind(at_opt(e.announced.map(|(_, t)| t)))
            .bind(&e.calendar_version)
            .bind(&e.template_version)
            .execute(&mut *conn)
            .await?;
        }
        Ok(())
    }

    /// Marks SLA breaches as reported by a digest at `now`.
    pub(super) async fn mark_notified(
        conn: &mut Conn,
        alerts: &[SlaAlert],
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        for a in alerts {
            sqlx::query(
                "UPDATE cpor_sla_alerts SET notified_at = $1 WHERE claim_id = $2 AND timer = $3 \
                 AND started_at = $4",
            )
            .bind(At(now))
            .bind(&a.claim_id)
            .bind(a.timer.as_str())
            .bind(At(a.start))
            .execute(&mut *conn)
            .await?;
        }
        Ok(())
    }
}
