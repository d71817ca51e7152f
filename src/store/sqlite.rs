//! `SqliteStore`: the embedded default. One writer at a time (`BEGIN IMMEDIATE`), WAL for readers;
//! instants are stored as RFC 3339 text in UTC with six fractional digits, so text order is time order.

use std::str::FromStr;
use std::time::Duration;

use chrono::{DateTime, SecondsFormat, Utc};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions};
use sqlx::{Row, Sqlite, Transaction};

use std::collections::HashMap;

use super::row::parse_ts;
use super::{
    ApplyOutcome, Backend, ChangedClaim, Changes, ClaimChange, ClaimWrite, DeadEmail,
    DeliveryResult, FireInput, HistoryEntry, LoadedClaim, OutboxCounts, OutboxEmail, PendingEmail,
    SlaAlert, Store, StoreError, SyncedClaim, claim_columns, row::read_claim, sqlite_outbox,
    sqlite_work, work::UNREADABLE_VERSION,
};
use crate::claim::{Claim, ClaimRow};
use crate::timers::ClaimFacts;

/// The migrations for SQLite, compiled in.
static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");

/// The SQLite backend.
#[derive(Clone, Debug)]
pub struct SqliteStore {
    pool: SqlitePool,
}

/// Formats an instant the way this backend stores it.
pub fn format_ts(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Micros, true)
}

impl SqliteStore {
    /// Opens (creating if missing) the database at `url` (`sqlite://PATH`).
    pub async fn connect(url: &str, max_connections: u32) -> Result<Self, StoreError> {
        let options = SqliteConnectOptions::from_str(url)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .busy_timeout(Duration::from_secs(30))
            .foreign_keys(true);
        let pool = SqlitePoolOptions::new()
            .max_connections(max_connections)
            .connect_with(options)
            .await?;
        Ok(Self { pool })
    }

    /// The underlying pool (tests insert rows through it).
    pub fn pool(&self) -> &SqlitePool {
        &self.pool
    }

    pub(super) async fn begin_write(&self) -> Result<Transaction<'static, Sqlite>, StoreError> {
        Ok(self.pool.begin_with("BEGIN IMMEDIATE").await?)
    }
}

impl Store for SqliteStore {
    fn backend(&self) -> Backend {
        Backend::Sqlite
    }

    async fn migrate(&self) -> Result<(), StoreError> {
        let had_claims: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'claims'",
        )
        .fetch_one(&self.pool)
        .await?;
        MIGRATOR.run(&self.pool).await?;
        if had_claims == 0 {
            // SQLite lets a TEXT PRIMARY KEY be NULL; a claims table the worker creates refuses
            // it (one the main system made keeps its own rules: NULL ids are reported instead).
            for (name, when) in [("inserted", "INSERT"), ("updated", "UPDATE OF id")] {
                let sql = format!(
                    "CREATE TRIGGER IF NOT EXISTS cpor_claims_id_required_{name} BEFORE {when} ON claims \
                     WHEN NEW.id IS NULL BEGIN SELECT RAISE(ABORT, 'claims.id must not be NULL'); END"
                );
                sqlx::query(sqlx::AssertSqlSafe(sql))
                    .execute(&self.pool)
                    .await?;
            }
        }
        Ok(())
    }

    async fn migrations_current(&self) -> Result<bool, StoreError> {
        let exists: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = '_sqlx_migrations'",
        )
        .fetch_one(&self.pool)
        .await?;
        if exists == 0 {
            return Ok(false);
        }
        let applied: Vec<i64> = sqlx::query_scalar(
            "SELECT version FROM _sqlx_migrations WHERE success ORDER BY version",
        )
        .fetch_all(&self.pool)
        .await?;
        Ok(MIGRATOR.iter().all(|m| applied.contains(&m.version)))
    }

    async fn put_claim_row(&self, r: &ClaimRow) -> Result<(), StoreError> {
        let ts = |t: Option<DateTime<Utc>>| t.map(format_ts);
        sqlx::query(concat!(
            "INSERT OR REPLACE INTO claims (",
            claim_columns!("version"),
            ") VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,",
            "COALESCE(?, strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),?)"
        ))
        .bind(&r.id)
        .bind(&r.status)
        .bind(&r.partner_id)
        .bind(&r.partner_name)
        .bind(&r.partner_email)
        .bind(&r.customer_tenant_id)
        .bind(&r.customer_name)
        .bind(&r.customer_email)
        .bind(&r.products)
        .bind(&r.country)
        .bind(&r.time_zone)
        .bind(&r.locale)
        .bind(ts(r.submitted_at))
        .bind(ts(r.review_started_at))
        .bind(ts(r.info_requested_at))
        .bind(&r.info_request_reason)
        .bind(ts(r.approved_at))
        .bind(ts(r.rejected_at))
        .bind(&r.rejection_reason)
        .bind(ts(r.customer_declined_at))
        .bind(ts(r.dispute_opened_at))
        .bind(ts(r.dispute_resolved_at))
        .bind(ts(r.updated_at))
        .bind(r.version)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn claim(&self, id: &str) -> Result<Claim, StoreError> {
        let row = sqlx::query(concat!(
            "SELECT ",
            claim_columns!("version"),
            " FROM claims WHERE id = ?"
        ))
        .bind(id)
        .fetch_optional(&self.pool)
        .await?
        .ok_or_else(|| StoreError::NotFound(id.to_owned()))?;
        Ok(read_claim(&row)?)
    }

    async fn claims(&self) -> Result<Vec<LoadedClaim>, StoreError> {
        let rows = sqlx::query(concat!(
            "SELECT ",
            claim_columns!("version"),
            " FROM claims ORDER BY id"
        ))
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.iter().map(read_claim).collect())
    }

    async fn count_claims(&self) -> Result<i64, StoreError> {
        Ok(sqlx::query_scalar("SELECT count(*) FROM claims")
            .fetch_one(&self.pool)
            .await?)
    }

    async fn history(&self, claim_id: &str) -> Result<Vec<HistoryEntry>, StoreError> {
        let rows = sqlx::query(
            "SELECT claim_id, occurred_at, actor, action, details FROM claim_history \
             WHERE claim_id = ? ORDER BY occurred_at, id",
        )
        .bind(claim_id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                let corrupt = |what: &str, e: String| {
                    StoreError::Corrupt(format!("claim_history.{what}: {e}"))
                };
                let actor: String = r.try_get("actor")?;
                let occurred_at: String = r.try_get("occurred_at")?;
                let details: String = r.try_get("details")?;
                Ok(HistoryEntry {
                    claim_id: r.try_get("claim_id")?,
                    occurred_at: parse_ts(&occurred_at).map_err(|e| corrupt("occurred_at", e))?,
                    actor: actor
                        .parse()
                        .map_err(|e| corrupt("actor", format!("{e}")))?,
                    action: r.try_get("action")?,
                    details: serde_json::from_str(&details)
                        .map_err(|e| corrupt("details", e.to_string()))?,
                })
            })
            .collect()
    }

    async fn apply(&self, change: &ClaimChange) -> Result<ApplyOutcome, StoreError> {
        let mut tx = self.begin_write().await?;
        let current = sqlx::query("SELECT status, version FROM claims WHERE id = ?")
            .bind(&change.claim_id)
            .fetch_optional(&mut *tx)
            .await?;
        let Some(current) = current else {
            return Ok(ApplyOutcome::Gone);
        };
        let status: String = current.try_get("status")?;
        let version: i64 = current.try_get("version")?;
        if status != change.expected_status.as_str() || version != change.expected_version {
            return Ok(ApplyOutcome::Conflict { status, version });
        }
        let at = format_ts(change.at);
        let mut new_version = version;
        if let Some(sc) = &change.status_change {
            new_version = sqlx::query_scalar(
                "UPDATE claims SET status = ?2, \
                   rejection_reason = COALESCE(?3, rejection_reason), \
                   rejected_at = CASE WHEN ?2 = 'rejected' THEN ?4 ELSE rejected_at END, \
                   updated_at = ?4, version = version + 1 \
                 WHERE id = ?1 RETURNING version",
            )
            .bind(&change.claim_id)
            .bind(sc.to.as_str())
            .bind(sc.rejection_reason.map(|r| r.as_str()))
            .bind(&at)
            .fetch_one(&mut *tx)
            .await?;
        }
        let h = &change.history;
        sqlx::query(
            "INSERT INTO claim_history (claim_id, occurred_at, actor, action, details) \
             VALUES (?, ?, ?, ?, ?)",
        )
        .bind(&h.claim_id)
        .bind(format_ts(h.occurred_at))
        .bind(h.actor.as_str())
        .bind(&h.action)
        .bind(h.details.to_string())
        .execute(&mut *tx)
        .await?;
        if change.request_incentive_evaluation {
            sqlx::query(
                "INSERT INTO incentive_evaluation_requests (claim_id, requested_at) \
                 VALUES (?, ?) ON CONFLICT (claim_id) DO NOTHING",
            )
            .bind(&change.claim_id)
            .bind(&at)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(ApplyOutcome::Applied {
            version: new_version,
        })
    }

    async fn incentive_request(&self, claim_id: &str) -> Result<Option<DateTime<Utc>>, StoreError> {
        let s: Option<String> = sqlx::query_scalar(
            "SELECT requested_at FROM incentive_evaluation_requests WHERE claim_id = ?",
        )
        .bind(claim_id)
        .fetch_optional(&self.pool)
        .await?;
        s.map(|s| parse_ts(&s).map_err(StoreError::Corrupt))
            .transpose()
    }

    async fn state_get(&self, key: &str) -> Result<Option<String>, StoreError> {
        Ok(
            sqlx::query_scalar("SELECT value FROM cpor_worker_state WHERE key = ?")
                .bind(key)
                .fetch_optional(&self.pool)
                .await?,
        )
    }

    async fn state_set(&self, key: &str, value: &str, at: DateTime<Utc>) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO cpor_worker_state (key, value, updated_at) VALUES (?, ?, ?) \
             ON CONFLICT (key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at",
        )
        .bind(key)
        .bind(value)
        .bind(format_ts(at))
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn take_changes(&self, limit: i64) -> Result<Changes, StoreError> {
        self.take_changes_impl(limit).await
    }

    async fn consume_changes(&self, seqs: &[i64]) -> Result<(), StoreError> {
        self.consume_changes_impl(seqs).await
    }

    async fn stale_claims(
        &self,
        fingerprint: &str,
        include_calendar_changes: bool,
        after_id: &str,
        limit: i64,
    ) -> Result<Vec<ChangedClaim>, StoreError> {
        self.stale_claims_impl(fingerprint, include_calendar_changes, after_id, limit)
            .await
    }

    async fn facts(&self, claim_ids: &[String]) -> Result<HashMap<String, ClaimFacts>, StoreError> {
        let mut conn = self.pool.acquire().await?;
        Self::facts_impl(&mut conn, claim_ids).await
    }

    async fn save_sync(
        &self,
        synced: &[SyncedClaim],
        fingerprint: &str,
        at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        // As on PostgreSQL: timers are saved only for a claim that still has the version they
        // were computed from; a claim changed since is marked for recomputation instead.
        let mut tx = self.begin_write().await?;
        let mut stored: HashMap<String, i64> = HashMap::new();
        for chunk in synced.chunks(500) {
            let marks = vec!["?"; chunk.len()].join(",");
            let sql = format!(
                "SELECT id, COALESCE(CAST(version AS INTEGER), -1) AS version FROM claims \
                 WHERE id IN ({marks})"
            );
            let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
            for s in chunk {
                q = q.bind(&s.claim_id);
            }
            for r in q.fetch_all(&mut *tx).await? {
                stored.insert(r.try_get("id")?, r.try_get("version")?);
            }
        }
        let (keep, skip): (Vec<&SyncedClaim>, Vec<&SyncedClaim>) = synced.iter().partition(|s| {
            s.version == UNREADABLE_VERSION || stored.get(&s.claim_id) == Some(&s.version)
        });
        let keep: Vec<SyncedClaim> = keep.into_iter().cloned().collect();
        Self::save_sync_in(&mut tx, &keep, fingerprint, at).await?;
        for s in skip {
            sqlx::query(
                "INSERT INTO cpor_claim_sync (claim_id, version, fingerprint, dirty, dirty_gen, synced_at) \
                 VALUES (?1, -1, ?2, 1, 1, ?3) \
                 ON CONFLICT (claim_id) DO UPDATE SET dirty = 1, dirty_gen = cpor_claim_sync.dirty_gen + 1",
            )
            .bind(&s.claim_id)
            .bind(fingerprint)
            .bind(format_ts(at))
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn fire_batch<F>(
        &self,
        now: DateTime<Utc>,
        limit: i64,
        fingerprint: &str,
        decide: F,
    ) -> Result<usize, StoreError>
    where
        F: FnMut(FireInput) -> ClaimWrite + Send,
    {
        sqlite_work::fire_batch(self, now, limit, fingerprint, decide).await
    }

    async fn take_emails(
        &self,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
        limit: i64,
    ) -> Result<Vec<PendingEmail>, StoreError> {
        self.take_emails_impl(now, lease_until, limit).await
    }

    async fn record_delivery(
        &self,
        id: i64,
        result: &DeliveryResult,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        self.record_delivery_impl(id, result, now).await
    }

    async fn claim_emails(&self, claim_id: &str) -> Result<Vec<(OutboxEmail, String)>, StoreError> {
        self.claim_emails_impl(claim_id).await
    }

    async fn outbox_counts(&self) -> Result<OutboxCounts, StoreError> {
        self.outbox_counts_impl().await
    }

    async fn claims_page(
        &self,
        after_id: &str,
        limit: i64,
    ) -> Result<Vec<ChangedClaim>, StoreError> {
        self.claims_page_impl(after_id, limit).await
    }

    async fn dead_emails(&self) -> Result<Vec<DeadEmail>, StoreError> {
        self.dead_emails_impl().await
    }

    async fn claim_problems(&self) -> Result<Vec<(String, String)>, StoreError> {
        self.claim_problems_impl().await
    }

    async fn count_due(&self, now: DateTime<Utc>) -> Result<i64, StoreError> {
        Ok(sqlx::query_scalar(
            "SELECT count(*) FROM cpor_timers t WHERE t.state = 'pending' AND t.due_at <= ? \
             AND NOT EXISTS (SELECT 1 FROM cpor_claim_holds h WHERE h.claim_id = t.claim_id)",
        )
        .bind(format_ts(now))
        .fetch_one(&self.pool)
        .await?)
    }

    async fn queue_sla_digest<F>(
        &self,
        now: DateTime<Utc>,
        limit: i64,
        build: F,
    ) -> Result<usize, StoreError>
    where
        F: FnOnce(&[SlaAlert]) -> OutboxEmail + Send,
    {
        sqlite_outbox::queue_sla_digest(self, now, limit, build).await
    }
}
