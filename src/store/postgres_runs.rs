//! The timer runs a sync writes on PostgreSQL: the claims' rows in `cpor_timers` made to match
//! their recomputed runs (those gone deleted, the new ones inserted by `COPY`, the others left
//! as they are), and the row layout of that `COPY`, which a fire batch's runs share.

use chrono::{DateTime, Utc};

use super::copy_rows::CopyRows;
use super::postgres::Conn;
use super::state::{TimerState, timer_state};
use super::work::{Stored, StoredRun};
use super::{StoreError, SyncedClaim, TimerRow};
use crate::timers::HELD_ON_FIRST_SIGHT;

/// The `COPY` of `cpor_timers` rows written by [`timer_row`].
pub(super) const TIMERS_COPY: &str = "COPY cpor_timers (claim_id, timer, started_at, due_at, \
     claim_version, state, fired_at, outcome) FROM STDIN (FORMAT binary)";

/// The fields of a [`TIMERS_COPY`] row.
pub(super) const TIMER_FIELDS: i16 = 8;

/// One row of [`TIMERS_COPY`]: the claim's run `t`, computed from `version`, in `state`;
/// `settled` is when it fired or was held, and its outcome.
pub(super) fn timer_row(
    rows: &mut CopyRows,
    claim: &str,
    t: &TimerRow,
    version: i64,
    state: TimerState,
    settled: Option<(DateTime<Utc>, &str)>,
) {
    rows.row()
        .text(claim)
        .text(t.kind.as_str())
        .instant(t.start)
        .instant(t.due)
        .int8(version)
        .text(state.as_str())
        .opt_instant(settled.map(|s| s.0))
        .opt_text(settled.map(|s| s.1));
}

/// The claims' timer rows as stored: their pending runs and the key of every row.
pub(super) async fn read_runs<S: AsRef<str>>(
    conn: &mut Conn,
    ids: &[S],
) -> Result<Stored, StoreError> {
    let ids: Vec<&str> = ids.iter().map(AsRef::as_ref).collect();
    let rows = sqlx::query(
        "SELECT claim_id, timer, started_at, due_at, claim_version, state \
         FROM cpor_timers WHERE claim_id = ANY($1)",
    )
    .bind(&ids)
    .fetch_all(&mut *conn)
    .await?;
    Ok(super::row::pending_runs(rows)?.0)
}

/// Makes the claims' timer rows match their runs in `synced`, given what is `stored` for them.
/// Only what changed is written: a pending row equal to one recomputed stays as it is (a fire
/// batch recomputes every claim it touches, most to the same timers), the others go, and only
/// the new ones are inserted. The difference is taken here, from one read of the claims'
/// rows, so every statement keeps a plain index plan.
pub(super) async fn write_runs(
    conn: &mut Conn,
    synced: &[SyncedClaim],
    at: DateTime<Utc>,
    stored: &Stored,
) -> Result<(), sqlx::Error> {
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
    // Borrowed keys: a first pass compares a million claims' runs.
    type Key<'k> = (&'k str, &'k str, DateTime<Utc>);
    let wanted: super::Set<(Key, DateTime<Utc>, i64)> = pending
        .iter()
        .map(|(c, t, v)| ((*c, t.kind.as_str(), t.start), t.due, *v))
        .collect();
    let gone: Vec<&StoredRun> = stored
        .pending
        .iter()
        .filter(|r| !wanted.contains(&((r.0.as_str(), r.1.as_str(), r.2), r.3, r.4)))
        .collect();
    let mut existing: super::Set<Key> = stored
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
    // were read under the claims' locks (or their first sight's sync rows, inserted first:
    // the caller's savepoint covers a claim whose sync row was deleted while its rows
    // stayed), so a plain insert (`COPY`) of the others meets no row of theirs (a `WHERE NOT EXISTS`
    // probe per row cost 1.6x the insert, `ON CONFLICT DO NOTHING`'s speculative insertion
    // more). A run given twice is inserted once.
    let held_runs = runs(|s| &s.held);
    let mut rows = CopyRows::new(TIMER_FIELDS, pending.len() * 128);
    for (c, t, v) in &pending {
        if existing.insert((c, t.kind.as_str(), t.start)) {
            timer_row(&mut rows, c, t, *v, TimerState::Pending, None);
        }
    }
    for (c, t, v) in &held_runs {
        if existing.insert((c, t.kind.as_str(), t.start)) {
            let held = Some((at, HELD_ON_FIRST_SIGHT));
            timer_row(&mut rows, c, t, *v, TimerState::Held, held);
        }
    }
    rows.send(conn, TIMERS_COPY).await?;
    Ok(())
}
