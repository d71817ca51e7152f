//! `PgStore`: the production backend. Actions are compare-and-set under a row lock, so several
//! replicas can run at once without acting twice.

use chrono::{DateTime, Utc};
use sqlx::postgres::{PgPool, PgPoolOptions};
use sqlx::{Postgres, Row, Transaction};

use std::collections::HashMap;

use super::{
    ApplyOutcome, Backend, ChangedClaim, Changes, ClaimChange, ClaimWrite, DeadEmail,
    DeliveryResult, FireInput, HistoryEntry, LoadedClaim, OutboxCounts, OutboxEmail, PendingEmail,
    SlaAlert, Store, StoreError, SyncedClaim, claim_columns, postgres_outbox, postgres_work,
    row::read_claim,
};
use crate::claim::{Claim, ClaimRow};
use crate::timers::ClaimFacts;

/// The migrations for PostgreSQL, compiled in.
static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

/// The PostgreSQL backend.
#[derive(Clone, Debug)]
pub struct PgStore {
    pool: PgPool,
}

impl PgStore {
    /// Connects to `url` with at most `max_connections` connections.
    pub async fn connect(url: &str, max_connections: u32) -> Result<Self, StoreError> {
        let pool = PgPoolOptions::new()
            .max_connections(max_connections)
            .acquire_timeout(std::time::Duration::from_secs(10))
            .connect(url)
            .await?;
        Ok(Self { pool })
    }

    /// Wraps an existing pool.
    pub fn from_pool(pool: PgPool) -> Self {
        Self { pool }
    }

    /// The underlying pool (tests and benchmarks insert rows through it).
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }
}

async fn write_history(
    tx: &mut Transaction<'static, Postgres>,
    h: &HistoryEntry,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO claim_history (claim_id, occurred_at, actor, action, details) \
         VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(&h.claim_id)
    .bind(h.occurred_at)
    .bind(h.actor.as_str())
    .bind(&h.action)
    .bind(&h.details)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

impl Store for PgStore {
    fn backend(&self) -> Backend {
        Backend::Postgres
    }

    async fn migrate(&self) -> Result<(), StoreError> {
        MIGRATOR.run(&self.pool).await?;
        Ok(())
    }

    async fn migrations_current(&self) -> Result<bool, StoreError> {
        let applied: Vec<i64> = sqlx::query_scalar(
            "SELECT version FROM _sqlx_migrations WHERE success ORDER BY version",
        )
        .fetch_all(&self.pool)
        .await
        .or_else(|e| match e {
            sqlx::Error::Database(d) if d.code().as_deref() == Some("42P01") => Ok(Vec::new()),
            e => Err(e),
        })?;
        Ok(MIGRATOR.iter().all(|m| applied.contains(&m.version)))
    }

    async fn put_claim_row(&self, r: &ClaimRow) -> Result<(), StoreError> {
        sqlx::query(concat!(
            "INSERT INTO claims (",
            claim_columns!("version"),
            ") VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13,$14,$15,$16,$17,$18,$19,$20,",
            "$21,$22,COALESCE($23, now()),$24) ON CONFLICT (id) DO UPDATE SET status=EXCLUDED.status, ",
            "partner_id=EXCLUDED.partner_id, partner_name=EXCLUDED.partner_name, ",
            "partner_email=EXCLUDED.partner_email, customer_tenant_id=EXCLUDED.customer_tenant_id, ",
            "customer_name=EXCLUDED.customer_name, customer_email=EXCLUDED.customer_email, ",
            "products=EXCLUDED.products, country=EXCLUDED.country, time_zone=EXCLUDED.time_zone, ",
            "locale=EXCLUDED.locale, submitted_at=EXCLUDED.submitted_at, ",
            "review_started_at=EXCLUDED.review_started_at, info_requested_at=EXCLUDED.info_requested_at, ",
            "info_request_reason=EXCLUDED.info_request_reason, approved_at=EXCLUDED.approved_at, ",
            "rejected_at=EXCLUDED.rejected_at, rejection_reason=EXCLUDED.rejection_reason, ",
            "customer_declined_at=EXCLUDED.customer_declined_at, ",
            "dispute_opened_at=EXCLUDED.dispute_opened_at, ",
            "dispute_resolved_at=EXCLUDED.dispute_resolved_at, updated_at=EXCLUDED.updated_at, ",
            "version=EXCLUDED.version"
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
        .bind(r.submitted_at)
        .bind(r.review_started_at)
        .bind(r.info_requested_at)
        .bind(&r.info_request_reason)
        .bind(r.approved_at)
        .bind(r.rejected_at)
        .bind(&r.rejection_reason)
        .bind(r.customer_declined_at)
        .bind(r.dispute_opened_at)
        .bind(r.dispute_resolved_at)
        .bind(r.updated_at)
        .bind(r.version)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn claim(&self, id: &str) -> Result<Claim, StoreError> {
        let row = sqlx::query(concat!(
            "SELECT ",
            claim_columns!("version::bigint AS version"),
            " FROM claims WHERE id = $1"
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
            claim_columns!("version::bigint AS version"),
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
             WHERE claim_id = $1 ORDER BY occurred_at, id",
        )
        .bind(claim_id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                let actor: String = r.try_get("actor")?;
                Ok(HistoryEntry {
                    claim_id: r.try_get("claim_id")?,
                    occurred_at: r.try_get("occurred_at")?,
                    actor: actor
                        .parse()
                        .map_err(|e| StoreError::Corrupt(format!("claim_history.actor: {e}")))?,
                    action: r.try_get("action")?,
                    details: r.try_get("details")?,
                })
            })
            .collect()
    }

    async fn apply(&self, change: &ClaimChange) -> Result<ApplyOutcome, StoreError> {
        let mut tx = self.pool.begin().await?;
        let current = sqlx::query(
            "SELECT status, version::bigint AS version FROM claims WHERE id = $1 FOR UPDATE",
        )
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
        let mut new_version = version;
        if let Some(sc) = &change.status_change {
            new_version = sqlx::query_scalar(
                "UPDATE claims SET status = $2, \
                   rejection_reason = COALESCE($3, rejection_reason), \
                   rejected_at = CASE WHEN $2 = 'rejected' THEN $4 ELSE rejected_at END, \
                   updated_at = $4, version = version + 1 \
                 WHERE id = $1 RETURNING version::bigint",
            )
            .bind(&change.claim_id)
            .bind(sc.to.as_str())
            .bind(sc.rejection_reason.map(|r| r.as_str()))
            .bind(change.at)
            .fetch_one(&mut *tx)
            .await?;
        }
        write_history(&mut tx, &change.history).await?;
        if change.request_incentive_evaluation {
            sqlx::query(
                "INSERT INTO incentive_evaluation_requests (claim_id, requested_at) \
                 VALUES ($1, $2) ON CONFLICT (claim_id) DO NOTHING",
            )
            .bind(&change.claim_id)
            .bind(change.at)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(ApplyOutcome::Applied {
            version: new_version,
        })
    }

    async fn incentive_request(&self, claim_id: &str) -> Result<Option<DateTime<Utc>>, StoreError> {
        Ok(sqlx::query_scalar(
            "SELECT requested_at FROM incentive_evaluation_requests WHERE claim_id = $1",
        )
        .bind(claim_id)
        .fetch_optional(&self.pool)
        .await?)
    }

    async fn state_get(&self, key: &str) -> Result<Option<String>, StoreError> {
        Ok(
            sqlx::query_scalar("SELECT value FROM cpor_worker_state WHERE key = $1")
                .bind(key)
                .fetch_optional(&self.pool)
                .await?,
        )
    }

    async fn state_set(&self, key: &str, value: &str, at: DateTime<Utc>) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO cpor_worker_state (key, value, updated_at) VALUES ($1, $2, $3) \
             ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value, updated_at = EXCLUDED.updated_at",
        )
        .bind(key)
        .bind(value)
        .bind(at)
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
        self.save_sync_locked(synced, fingerprint, at).await
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
        postgres_work::fire_batch(self, now, limit, fingerprint, decide).await
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
            "SELECT count(*) FROM cpor_timers t WHERE t.state = 'pending' AND t.due_at <= $1 \
             AND NOT EXISTS (SELECT 1 FROM cpor_claim_holds h WHERE h.claim_id = t.claim_id)",
        )
        .bind(now)
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
        postgres_outbox::queue_sla_digest(self, now, limit, build).await
    }
}
