//! `PgStore`'s batch writes: one statement per table per batch whatever its size. A plain insert
//! into the worker's own tables is a binary `COPY` (`copy_rows.rs`); an upsert, update or delete
//! binds each row as a position in arrays (an insert streams them with `unnest` in its select
//! list, see `postgres_fired`). These are the statements that differ from SQLite's by nature.

use chrono::{DateTime, Utc};

use super::copy_rows::CopyRows;
use super::outbox::requeue_dead;
use super::postgres::Conn;
use super::postgres_runs::{read_runs, write_runs};
use super::work::{Stored, SyncRow};
use super::{PgStore, SlaAlert, StatusRecord, StoreError, SyncedClaim};

/// How [`sync_rows`] writes the claims' rows.
#[derive(Clone, Copy)]
enum SyncWrite {
    /// A plain insert: the caller knows no row exists (a row met fails it).
    Insert,
    /// An insert of the rows that do not exist, returning the claims inserted.
    InsertMissing,
    /// An insert, or an update of a row that differs.
    Upsert,
}

/// Writes the claims' `cpor_claim_sync` rows: computed from `version` with `fingerprint` at
/// `at`, clean unless marked dirty since they were read (`dirty_gen`). Returns the claims
/// inserted by [`SyncWrite::InsertMissing`] (none for the others).
async fn sync_rows(
    conn: &mut Conn,
    synced: &[&SyncedClaim],
    fingerprint: &str,
    at: DateTime<Utc>,
    write: SyncWrite,
) -> Result<Vec<String>, sqlx::Error> {
    /// The claims' rows from arrays, streamed (see `postgres_fired`), then `$tail`.
    macro_rules! insert {
        ($tail:literal) => {
            concat!(
                "INSERT INTO cpor_claim_sync (claim_id, version, fingerprint, dirty, dirty_gen, \
                 problem, synced_at) SELECT c, v, $4, FALSE, g, p, $5 FROM (SELECT \
                 unnest($1::text[]) AS c, unnest($2::bigint[]) AS v, unnest($3::text[]) AS p, \
                 unnest($6::bigint[]) AS g) AS u",
                $tail
            )
        };
    }
    let sql = match write {
        SyncWrite::Insert => return insert_sync_rows(conn, synced, fingerprint, at).await,
        SyncWrite::InsertMissing => {
            insert!(" ON CONFLICT (claim_id) DO NOTHING RETURNING claim_id")
        }
        SyncWrite::Upsert => insert!(
            " ON CONFLICT (claim_id) DO UPDATE SET version = EXCLUDED.version, \
             fingerprint = EXCLUDED.fingerprint, problem = EXCLUDED.problem, \
             synced_at = EXCLUDED.synced_at, \
             dirty = cpor_claim_sync.dirty AND cpor_claim_sync.dirty_gen <> EXCLUDED.dirty_gen \
             WHERE cpor_claim_sync.version <> EXCLUDED.version \
             OR cpor_claim_sync.fingerprint <> EXCLUDED.fingerprint \
             OR cpor_claim_sync.problem IS DISTINCT FROM EXCLUDED.problem OR cpor_claim_sync.dirty"
        ),
    };
    let query = sqlx::query(sql)
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
        .bind(synced.iter().map(|s| s.dirty_gen).collect::<Vec<_>>());
    match write {
        SyncWrite::InsertMissing => query
            .fetch_all(&mut *conn)
            .await?
            .iter()
            .map(|r| sqlx::Row::try_get(r, 0))
            .collect(),
        SyncWrite::Insert | SyncWrite::Upsert => {
            query.execute(&mut *conn).await?;
            Ok(Vec::new())
        }
    }
}

/// Inserts the claims' `cpor_claim_sync` rows (clean, computed from `version` with
/// `fingerprint` at `at`); a row that exists fails the statement.
async fn insert_sync_rows(
    conn: &mut Conn,
    synced: &[&SyncedClaim],
    fingerprint: &str,
    at: DateTime<Utc>,
) -> Result<Vec<String>, sqlx::Error> {
    let mut rows = CopyRows::new(7, synced.len() * (96 + fingerprint.len()));
    for s in synced {
        rows.row()
            .text(&s.claim_id)
            .int8(s.version)
            .text(fingerprint)
            .boolean(false)
            .int8(s.dirty_gen)
            .opt_text(s.problem.as_deref())
            .instant(at);
    }
    rows.send(
        conn,
        "COPY cpor_claim_sync (claim_id, version, fingerprint, dirty, dirty_gen, problem, \
         synced_at) FROM STDIN (FORMAT binary)",
    )
    .await?;
    Ok(Vec::new())
}

impl PgStore {
    /// Keeps the status changes of one page of change records, in their order.
    pub(super) async fn write_timeline(
        conn: &mut Conn,
        st: &[StatusRecord],
    ) -> Result<(), StoreError> {
        // One statement per page (a row at a time cost a commit each: 1,000,000 commits on
        // the first pass over a million claims); `COPY` inserts the rows in the order given.
        let mut rows = CopyRows::new(4, st.len() * 96);
        for s in st {
            rows.row()
                .text(&s.claim_id)
                .opt_text(s.old_status.as_deref())
                .opt_text(s.new_status.as_deref())
                .instant(s.at);
        }
        rows.send(
            conn,
            "COPY cpor_status_timeline (claim_id, old_status, new_status, changed_at) \
             FROM STDIN (FORMAT binary)",
        )
        .await?;
        Ok(())
    }

    /// Inserts the sync rows of the page's claims seen first (`stored.unsynced`, read without
    /// a row lock), before anything else of theirs: the row is the claim's lease. Returns the
    /// claims another transaction wrote a row for meanwhile (another page computing the same
    /// claim, a mark for recomputation): the caller drops their results and leaves their
    /// change records to a later page, which reads them under their locks. The rows inserted
    /// join `stored.sync_rows`, so [`Self::write_sync`] leaves them as they are.
    pub(super) async fn claim_first_sight(
        conn: &mut Conn,
        synced: &[SyncedClaim],
        stored: &mut Stored,
        fingerprint: &str,
        at: DateTime<Utc>,
    ) -> Result<std::collections::HashSet<String>, StoreError> {
        let fresh: Vec<&SyncedClaim> = synced
            .iter()
            .filter(|s| stored.unsynced.contains(&s.claim_id))
            .collect();
        stored.unsynced.clear();
        let mut lost = std::collections::HashSet::new();
        if fresh.is_empty() {
            return Ok(lost);
        }
        // A plain insert in a savepoint (an upsert's speculative insertion cost a first pass
        // 1.6-2x the insert); only one that meets a row asks which claims are the page's.
        // The claims are in id order, so two pages wait for each other in one order only.
        let mut savepoint = sqlx::Connection::begin(&mut *conn).await?;
        match sync_rows(&mut savepoint, &fresh, fingerprint, at, SyncWrite::Insert).await {
            Ok(_) => savepoint.commit().await?,
            Err(sqlx::Error::Database(e)) if e.is_unique_violation() => {
                savepoint.rollback().await?;
                let won: std::collections::HashSet<String> = sync_rows(
                    &mut *conn,
                    &fresh,
                    fingerprint,
                    at,
                    SyncWrite::InsertMissing,
                )
                .await?
                .into_iter()
                .collect();
                lost = fresh
                    .iter()
                    .filter(|s| !won.contains(&s.claim_id))
                    .map(|s| s.claim_id.clone())
                    .collect();
            }
            Err(e) => return Err(e.into()),
        }
        for s in fresh.iter().filter(|s| !lost.contains(&s.claim_id)) {
            stored.unread.insert(s.claim_id.clone());
            let row = SyncRow {
                version: s.version,
                fingerprint: fingerprint.to_owned(),
                problem: s.problem.clone(),
                dirty: false,
            };
            stored.sync_rows.insert(s.claim_id.clone(), row);
        }
        Ok(lost)
    }

    /// Replaces the claims' pending timers and records what they were computed from;
    /// `stored` are the claims' timer runs if already read in this transaction (under the
    /// claims' row locks, like every call, or for claims seen first under the leases
    /// [`Self::claim_first_sight`] took).
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
        let mut stored: Stored = match stored {
            Some(stored) => stored,
            None => read_runs(conn, &ids).await?,
        };
        // The claims seen first had nothing read: they have no rows, unless their sync rows
        // were deleted while their timers stayed (by an operator, or a restore of the main
        // system's tables without the worker's). Their runs go in a savepoint; should one
        // meet a row, they are locked (a fire batch may be writing those rows: it holds the
        // claim's lock, not its sync row) and what is stored for them is read and written as
        // for claims seen before.
        let unread: Vec<String> = std::mem::take(&mut stored.unread).into_iter().collect();
        if unread.is_empty() {
            write_runs(conn, synced, at, &stored).await?;
        } else {
            let mut savepoint = sqlx::Connection::begin(&mut *conn).await?;
            match write_runs(&mut savepoint, synced, at, &stored).await {
                Ok(()) => savepoint.commit().await?,
                Err(sqlx::Error::Database(e)) if e.is_unique_violation() => {
                    savepoint.rollback().await?;
                    sqlx::query("SELECT id FROM claims WHERE id = ANY($1) ORDER BY id FOR UPDATE")
                        .bind(&unread)
                        .execute(&mut *conn)
                        .await?;
                    let found = read_runs(conn, &unread).await?;
                    stored.pending.extend(found.pending);
                    stored.keys.extend(found.keys);
                    write_runs(conn, synced, at, &stored).await?;
                }
                Err(e) => return Err(e.into()),
            }
        }
        // A row that would stay as it is (a fire batch recomputes every claim it touches,
        // most to what they were; a first sight wrote its row already) is not written, so
        // not locked either.
        let unchanged = |s: &SyncedClaim| {
            stored.sync_rows.get(&s.claim_id).is_some_and(|r| {
                !r.dirty
                    && r.version == s.version
                    && r.fingerprint == fingerprint
                    && r.problem == s.problem
            })
        };
        let upsert: Vec<&SyncedClaim> = synced.iter().filter(|s| !unchanged(s)).collect();
        if !upsert.is_empty() {
            sync_rows(&mut *conn, &upsert, fingerprint, at, SyncWrite::Upsert).await?;
        }
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
