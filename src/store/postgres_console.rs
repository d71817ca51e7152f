//! `PgStore`'s console reads.

use chrono::{DateTime, Utc};
use sqlx::Row;

use super::console::{
    ClaimHit, ConsoleReads, OPEN_SLA_SQL, TimerRecord, breaches, claim_hit, timer_record,
};
use super::{PgStore, SlaAlert, StoreError};

impl ConsoleReads for PgStore {
    async fn due_per_day(
        &self,
        from: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> Result<Vec<(String, i64)>, StoreError> {
        let rows = sqlx::query(
            "SELECT to_char(t.due_at AT TIME ZONE 'UTC', 'YYYY-MM-DD') AS day, count(*) AS n \
             FROM cpor_timers t WHERE t.state = 'pending' AND t.due_at >= $1 AND t.due_at < $2 \
             AND NOT EXISTS (SELECT 1 FROM cpor_claim_holds h WHERE h.claim_id = t.claim_id) \
             GROUP BY 1 ORDER BY 1",
        )
        .bind(from)
        .bind(until)
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|r| Ok((r.try_get("day")?, r.try_get("n")?)))
            .collect()
    }

    async fn count_problems(&self) -> Result<i64, StoreError> {
        Ok(
            sqlx::query_scalar("SELECT count(*) FROM cpor_claim_sync WHERE problem IS NOT NULL")
                .fetch_one(self.pool())
                .await?,
        )
    }

    async fn open_breaches(&self, limit: i64) -> Result<(Vec<SlaAlert>, i64), StoreError> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT a.* FROM cpor_sla_alerts a JOIN claims c ON c.id = a.claim_id \
             WHERE {OPEN_SLA_SQL} ORDER BY a.due_at, a.claim_id LIMIT $1"
        )))
        .bind(limit)
        .fetch_all(self.pool())
        .await?;
        let n: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
            "SELECT count(*) FROM cpor_sla_alerts a JOIN claims c ON c.id = a.claim_id WHERE {OPEN_SLA_SQL}"
        )))
        .fetch_one(self.pool())
        .await?;
        Ok((breaches(&rows)?, n))
    }

    async fn search_claims(&self, q: &str, limit: i64) -> Result<Vec<ClaimHit>, StoreError> {
        let like = format!(
            "%{}%",
            q.replace('\\', "\\\\")
                .replace('%', "\\%")
                .replace('_', "\\_")
        );
        let rows = sqlx::query(
            "SELECT id, status, partner_id, partner_name, customer_name, country FROM claims \
             WHERE id = $1 OR partner_id = $1 OR partner_name ILIKE $2 OR partner_email ILIKE $2 \
             OR customer_email ILIKE $2 ORDER BY id LIMIT $3",
        )
        .bind(q)
        .bind(like)
        .bind(limit)
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(claim_hit).collect()
    }

    async fn claim_timers(&self, claim_id: &str) -> Result<Vec<TimerRecord>, StoreError> {
        let rows = sqlx::query(
            "SELECT timer, started_at, due_at, state, fired_at, outcome FROM cpor_timers \
             WHERE claim_id = $1 ORDER BY due_at, timer",
        )
        .bind(claim_id)
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(timer_record).collect()
    }

    async fn claim_problem(&self, claim_id: &str) -> Result<Option<String>, StoreError> {
        Ok(sqlx::query_scalar(
            "SELECT problem FROM cpor_claim_sync WHERE claim_id = $1 AND problem IS NOT NULL",
        )
        .bind(claim_id)
        .fetch_optional(self.pool())
        .await?)
    }
}
