//! `SqliteStore`'s operator repairs: each statement and its history row in one write transaction.

use chrono::{DateTime, Utc};
use sqlx::SqliteConnection;

use super::repair::{Hold, OutboxRow, Released, Repairs, hold_row, outbox_row};
use super::sqlite::format_ts;
use super::{HistoryEntry, OutboxEmail, SqliteStore, StoreError};

async fn history(conn: &mut SqliteConnection, h: &HistoryEntry) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO claim_history (claim_id, occurred_at, actor, action, details) \
         VALUES (?, ?, ?, ?, ?)",
    )
    .bind(&h.claim_id)
    .bind(format_ts(h.occurred_at))
    .bind(h.actor.as_str())
    .bind(&h.action)
    .bind(h.details.to_string())
    .execute(&mut *conn)
    .await?;
    Ok(())
}

async fn claim_exists(conn: &mut SqliteConnection, claim_id: &str) -> Result<(), StoreError> {
    let found: Option<String> = sqlx::query_scalar("SELECT id FROM claims WHERE id = ?")
        .bind(claim_id)
        .fetch_optional(&mut *conn)
        .await?;
    found
        .map(|_| ())
        .ok_or_else(|| StoreError::NotFound(claim_id.to_owned()))
}

/// Marks a claim's timers for recomputation (only a claim the worker has seen).
async fn mark_dirty(conn: &mut SqliteConnection, claim_id: &str) -> Result<(), StoreError> {
    sqlx::query(
        "UPDATE cpor_claim_sync SET dirty = 1, dirty_gen = dirty_gen + 1 WHERE claim_id = ?",
    )
    .bind(claim_id)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

impl Repairs for SqliteStore {
    async fn outbox_list(
        &self,
        state: Option<&str>,
        claim_id: Option<&str>,
        limit: i64,
    ) -> Result<Vec<OutboxRow>, StoreError> {
        let rows = sqlx::query(
            "SELECT * FROM cpor_outbox WHERE (?1 IS NULL OR state = ?1) \
             AND (?2 IS NULL OR claim_id = ?2) ORDER BY id DESC LIMIT ?3",
        )
        .bind(state)
        .bind(claim_id)
        .bind(limit)
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(outbox_row).collect()
    }

    async fn outbox_row(&self, id: i64) -> Result<Option<OutboxRow>, StoreError> {
        let row = sqlx::query("SELECT * FROM cpor_outbox WHERE id = ?")
            .bind(id)
            .fetch_optional(self.pool())
            .await?;
        row.as_ref().map(outbox_row).transpose()
    }

    async fn retry_email(
        &self,
        id: i64,
        e: &OutboxEmail,
        h: &HistoryEntry,
        at: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let mut tx = self.pool().begin_with("BEGIN IMMEDIATE").await?;
        let done = sqlx::query(
            "UPDATE cpor_outbox SET state = 'pending', attempts = 0, last_error = NULL, \
               next_attempt_at = ?2, to_name = ?3, to_address = ?4, locale = ?5, payload = ?6 \
             WHERE id = ?1 AND state = 'dead'",
        )
        .bind(id)
        .bind(format_ts(at))
        .bind(&e.to_name)
        .bind(&e.to_address)
        .bind(&e.locale)
        .bind(e.payload.to_string())
        .execute(&mut *tx)
        .await?
        .rows_affected()
            > 0;
        if done {
            history(&mut tx, h).await?;
        }
        tx.commit().await?;
        Ok(done)
    }

    async fn discard_email(&self, id: i64, h: &HistoryEntry) -> Result<bool, StoreError> {
        let mut tx = self.pool().begin_with("BEGIN IMMEDIATE").await?;
        let done = sqlx::query(
            "UPDATE cpor_outbox SET state = 'discarded', last_error = ?2 \
             WHERE id = ?1 AND state IN ('pending', 'dead')",
        )
        .bind(id)
        .bind(format!(
            "discarded by an operator: {}",
            h.details["reason"].as_str().unwrap_or_default()
        ))
        .execute(&mut *tx)
        .await?
        .rows_affected()
            > 0;
        if done {
            history(&mut tx, h).await?;
        }
        tx.commit().await?;
        Ok(done)
    }

    async fn hold_claim(&self, hold: &Hold, h: &HistoryEntry) -> Result<bool, StoreError> {
        let mut tx = self.pool().begin_with("BEGIN IMMEDIATE").await?;
        claim_exists(&mut tx, &hold.claim_id).await?;
        let done = sqlx::query(
            "INSERT INTO cpor_claim_holds (claim_id, reason, held_by, held_at) \
             VALUES (?, ?, ?, ?) ON CONFLICT (claim_id) DO NOTHING",
        )
        .bind(&hold.claim_id)
        .bind(&hold.reason)
        .bind(&hold.held_by)
        .bind(format_ts(hold.held_at))
        .execute(&mut *tx)
        .await?
        .rows_affected()
            > 0;
        if done {
            history(&mut tx, h).await?;
        }
        tx.commit().await?;
        Ok(done)
    }

    async fn release_claim(
        &self,
        claim_id: &str,
        h: &HistoryEntry,
    ) -> Result<Released, StoreError> {
        let mut tx = self.pool().begin_with("BEGIN IMMEDIATE").await?;
        claim_exists(&mut tx, claim_id).await?;
        let hold = sqlx::query("DELETE FROM cpor_claim_holds WHERE claim_id = ?")
            .bind(claim_id)
            .execute(&mut *tx)
            .await?
            .rows_affected()
            > 0;
        let first_sight = sqlx::query(
            "UPDATE cpor_timers SET state = 'pending', fired_at = NULL, outcome = NULL \
             WHERE claim_id = ? AND state = 'held'",
        )
        .bind(claim_id)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        let released = Released { hold, first_sight };
        if !released.is_empty() {
            mark_dirty(&mut tx, claim_id).await?;
            history(&mut tx, h).await?;
        }
        tx.commit().await?;
        Ok(released)
    }

    async fn resync_claim(&self, claim_id: &str, h: &HistoryEntry) -> Result<(), StoreError> {
        let mut tx = self.pool().begin_with("BEGIN IMMEDIATE").await?;
        claim_exists(&mut tx, claim_id).await?;
        mark_dirty(&mut tx, claim_id).await?;
        history(&mut tx, h).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn holds(&self, claim_ids: Option<&[String]>) -> Result<Vec<Hold>, StoreError> {
        let ids = claim_ids.map(|ids| serde_json::Value::from(ids.to_vec()).to_string());
        let rows = sqlx::query(
            "SELECT * FROM cpor_claim_holds WHERE (?1 IS NULL OR claim_id IN \
             (SELECT value FROM json_each(?1))) ORDER BY held_at, claim_id",
        )
        .bind(ids)
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(hold_row).collect()
    }
}
