//! [`Store`]: the claims as the worker reads them, the schema, and the worker's own small state.
//! [`impl_store!`] writes the methods whose statements both backends share; each backend adds
//! the few of its own nature (migrations, the upsert of a claim row) at the call.

use std::collections::HashMap;
use std::future::Future;

use chrono::{DateTime, Utc};

use super::{Backend, ChangedClaim, HistoryEntry, StoreError};
use crate::claim::{Claim, ClaimRow};
use crate::timers::ClaimFacts;

/// What every backend promises about claims, the schema and the worker's state. All instants
/// are passed in; no statement reads the database's clock.
pub trait Store: Send + Sync {
    /// Which database this is.
    fn backend(&self) -> Backend;

    /// Applies pending migrations; running it again changes nothing.
    fn migrate(&self) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// True when every migration this build knows is applied.
    fn migrations_current(&self) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// Inserts a claim row, or replaces the row with the same id (demo and tests). Its
    /// `updated_at` is written as given; a row without one is refused (the caller has the clock).
    fn put_claim_row(&self, row: &ClaimRow) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// One claim; `NotFound`, or `BadClaim` naming what is wrong with its row.
    fn claim(&self, id: &str) -> impl Future<Output = Result<Claim, StoreError>> + Send;

    /// How many claim rows there are.
    fn count_claims(&self) -> impl Future<Output = Result<i64, StoreError>> + Send;

    /// Claims in id order after `after_id`, at most `limit`: every claim in bounded memory.
    fn claims_page(
        &self,
        after_id: &str,
        limit: i64,
    ) -> impl Future<Output = Result<Vec<ChangedClaim>, StoreError>> + Send;

    /// A claim's history, oldest first.
    fn history(
        &self,
        claim_id: &str,
    ) -> impl Future<Output = Result<Vec<HistoryEntry>, StoreError>> + Send;

    /// What the worker already did for these claims.
    fn facts(
        &self,
        claim_ids: &[String],
    ) -> impl Future<Output = Result<HashMap<String, ClaimFacts>, StoreError>> + Send;

    /// The claims with ids in `first..=last` whose pending timers were computed with calendars
    /// other than `fingerprint` ([`Calendars::fingerprint`](crate::calendar::Calendars::fingerprint)
    /// of those in force): the next pass recomputes them and their deadlines may move.
    fn older_calendar_claims(
        &self,
        fingerprint: &str,
        first: &str,
        last: &str,
    ) -> impl Future<Output = Result<Vec<String>, StoreError>> + Send;

    /// How many claims [`older_calendar_claims`](Store::older_calendar_claims) would list over all
    /// ids, counted up to `cap + 1` (more than `cap`); 0 at once when the last pass already
    /// synced with `fingerprint`.
    fn count_older_calendar_claims(
        &self,
        fingerprint: &str,
        cap: i64,
    ) -> impl Future<Output = Result<i64, StoreError>> + Send;

    /// A value of the worker's own state (`cpor_worker_state`).
    fn state_get(
        &self,
        key: &str,
    ) -> impl Future<Output = Result<Option<String>, StoreError>> + Send;

    /// Sets a value of the worker's own state.
    fn state_set(
        &self,
        key: &str,
        value: &str,
        at: DateTime<Utc>,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
}

/// The claim columns of SPEC §5 for SELECTs, the version column written as `$v`.
macro_rules! claim_columns {
    ($v:literal) => {
        concat!(
            "id, status, partner_id, partner_name, partner_email, customer_tenant_id, ",
            "customer_name, customer_email, products, country, time_zone, locale, submitted_at, ",
            "review_started_at, info_requested_at, info_request_reason, approved_at, rejected_at, ",
            "rejection_reason, customer_declined_at, dispute_opened_at, dispute_resolved_at, ",
            "updated_at, ",
            $v
        )
    };
}
pub(crate) use claim_columns;

/// Worker state key of the calendars' fingerprint the last pass synced with (kept by the worker).
pub const CALENDAR_FINGERPRINT_KEY: &str = "calendar_fingerprint";

/// `INSERT INTO claims (…) VALUES ($1, …, $24)`: the head both backends' upserts share.
macro_rules! insert_claim {
    ($verb:literal) => {
        concat!(
            $verb,
            " INTO claims (",
            $crate::store::claims::claim_columns!("version"),
            ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, ",
            "$17, $18, $19, $20, $21, $22, $23, $24)"
        )
    };
}
pub(crate) use insert_claim;

/// The claim SELECT with the sync generation, for the sync paths (`$v`: the version column,
/// which names its table: `cpor_claim_sync` has one too). The claim's sync row is joined once
/// as `s` (three probes of it per claim, as subqueries, cost a first pass seconds); a caller's
/// WHERE may test [`synced_current!`].
macro_rules! changed_select {
    ($v:literal) => {
        concat!(
            "SELECT ",
            $crate::store::claims::claim_columns!($v),
            ", COALESCE(s.dirty_gen, 0) AS cpor_dirty_gen",
            ", CAST(CASE WHEN s.claim_id IS NULL THEN 0 ELSE 1 END AS BIGINT) AS cpor_seen",
            ", s.version AS cpor_sync_version, s.fingerprint AS cpor_sync_fingerprint",
            ", s.problem AS cpor_sync_problem",
            ", CAST(CASE WHEN s.dirty THEN 1 ELSE 0 END AS BIGINT) AS cpor_sync_dirty ",
            "FROM claims LEFT JOIN cpor_claim_sync s ON s.claim_id = claims.id "
        )
    };
}
pub(crate) use changed_select;

/// True when the joined sync row `s` of [`changed_select!`] says the claim's timers are those
/// of its current version (false without a sync row, or with a version that does not compare).
macro_rules! synced_current {
    () => {
        "COALESCE(s.version = claims.version AND NOT s.dirty, FALSE)"
    };
}
pub(crate) use synced_current;

/// The instant a claim row is written with: its `updated_at`, which the caller must give.
pub(crate) fn claim_row_instant(row: &ClaimRow) -> Result<DateTime<Utc>, StoreError> {
    row.updated_at.ok_or_else(|| {
        StoreError::BadClaim(crate::claim::BadClaim {
            claim_id: row.id.clone(),
            problem: "updated_at is missing: the caller gives the instant of the write".to_owned(),
        })
    })
}

/// `impl Store for $store`: the shared methods (`facts` reads with the backend's `read_facts`
/// of [`super::facts::impl_read_facts!`]), plus the backend's own (`backend`, `migrate`)
/// given in braces. `version` is how the backend selects the claim's version column,
/// `migrations_table` counts the migrations table (0: none yet), `put_claim` is its upsert of
/// [`insert_claim!`]; its module has the `MIGRATOR`.
macro_rules! impl_store {
    ($store:ty, version = $v:literal, migrations_table = $mt:literal, put_claim = $put:expr,
     { $($own:tt)* }) => {
        impl $crate::store::Store for $store {
            $($own)*

            async fn migrations_current(&self) -> Result<bool, $crate::store::StoreError> {
                let exists: i64 = sqlx::query_scalar($mt).fetch_one(self.pool()).await?;
                if exists == 0 {
                    return Ok(false);
                }
                let applied: Vec<i64> = sqlx::query_scalar(
                    "SELECT version FROM _sqlx_migrations WHERE success ORDER BY version",
                )
                .fetch_all(self.pool())
                .await?;
                Ok(MIGRATOR.iter().all(|m| applied.contains(&m.version)))
            }

            async fn put_claim_row(
                &self,
                r: &$crate::claim::ClaimRow,
            ) -> Result<(), $crate::store::StoreError> {
                use $crate::store::bind::{At, at_opt};
                let updated_at = $crate::store::claims::claim_row_instant(r)?;
                sqlx::query($put)
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
                    .bind(at_opt(r.submitted_at))
                    .bind(at_opt(r.review_started_at))
                    .bind(at_opt(r.info_requested_at))
                    .bind(&r.info_request_reason)
                    .bind(at_opt(r.approved_at))
                    .bind(at_opt(r.rejected_at))
                    .bind(&r.rejection_reason)
                    .bind(at_opt(r.customer_declined_at))
                    .bind(at_opt(r.dispute_opened_at))
                    .bind(at_opt(r.dispute_resolved_at))
                    .bind(At(updated_at))
                    .bind(r.version)
                    .execute(self.pool())
                    .await?;
                Ok(())
            }

            async fn claim(&self, id: &str) -> Result<$crate::claim::Claim, $crate::store::StoreError> {
                let row = sqlx::query(concat!(
                    "SELECT ",
                    $crate::store::claims::claim_columns!($v),
                    " FROM claims WHERE id = $1"
                ))
                .bind(id)
                .fetch_optional(self.pool())
                .await?
                .ok_or_else(|| $crate::store::StoreError::NotFound(id.to_owned()))?;
                let mut claim = $crate::store::row::read_claim(&row)?;
                self.customer_locales([&mut claim]).await?;
                Ok(claim)
            }

            async fn count_claims(&self) -> Result<i64, $crate::store::StoreError> {
                Ok(sqlx::query_scalar("SELECT count(*) FROM claims")
                    .fetch_one(self.pool())
                    .await?)
            }

            async fn claims_page(
                &self,
                after_id: &str,
                limit: i64,
            ) -> Result<Vec<$crate::store::ChangedClaim>, $crate::store::StoreError> {
                let rows = sqlx::query(concat!(
                    $crate::store::claims::changed_select!($v),
                    "WHERE id > $1 ORDER BY id LIMIT $2"
                ))
                .bind(after_id)
                .bind(limit)
                .fetch_all(self.pool())
                .await?;
                let mut page = $crate::store::row::changed_claims(&rows)?;
                self.customer_locales($crate::store::optional_columns::parsed(&mut page))
                    .await?;
                Ok(page)
            }

            async fn history(
                &self,
                claim_id: &str,
            ) -> Result<Vec<$crate::store::HistoryEntry>, $crate::store::StoreError> {
                let rows = sqlx::query(
                    "SELECT claim_id, occurred_at, actor, action, details FROM claim_history \
                     WHERE claim_id = $1 ORDER BY occurred_at, id",
                )
                .bind(claim_id)
                .fetch_all(self.pool())
                .await?;
                rows.iter().map($crate::store::row::history_entry).collect()
            }

            async fn facts(
                &self,
                claim_ids: &[String],
            ) -> Result<
                std::collections::HashMap<String, $crate::timers::ClaimFacts>,
                $crate::store::StoreError,
            > {
                let mut conn = self.pool().acquire().await?;
                let all: Vec<&str> = claim_ids.iter().map(String::as_str).collect();
                Ok(Self::read_facts(&mut conn, claim_ids, &all).await?.0)
            }

            async fn older_calendar_claims(
                &self,
                fingerprint: &str,
                first: &str,
                last: &str,
            ) -> Result<Vec<String>, $crate::store::StoreError> {
                Ok(sqlx::query_scalar(concat!(
                    "SELECT s.claim_id FROM cpor_claim_sync s WHERE s.claim_id >= $2 ",
                    "AND s.claim_id <= $3 AND ",
                    "s.fingerprint <> $1 AND EXISTS (SELECT 1 FROM cpor_timers t ",
                    "WHERE t.claim_id = s.claim_id AND t.state = ",
                    $crate::store::state::timer_state!(Pending),
                    ")",
                    " ORDER BY s.claim_id"
                ))
                .bind(fingerprint)
                .bind(first)
                .bind(last)
                .fetch_all(self.pool())
                .await?)
            }

            async fn count_older_calendar_claims(
                &self,
                fingerprint: &str,
                cap: i64,
            ) -> Result<i64, $crate::store::StoreError> {
                // The pass that last saw the calendars change recomputed every such claim
                // before recording their fingerprint: if it matches, none is left.
                if self.state_get($crate::store::claims::CALENDAR_FINGERPRINT_KEY).await?.as_deref()
                    == Some(fingerprint)
                {
                    return Ok(0);
                }
                Ok(sqlx::query_scalar(concat!(
                    "SELECT count(*) FROM (SELECT 1 FROM cpor_claim_sync s WHERE ",
                    "s.fingerprint <> $1 AND EXISTS (SELECT 1 FROM cpor_timers t ",
                    "WHERE t.claim_id = s.claim_id AND t.state = ",
                    $crate::store::state::timer_state!(Pending),
                    ") LIMIT $2) x"
                ))
                .bind(fingerprint)
                .bind(cap.saturating_add(1))
                .fetch_one(self.pool())
                .await?)
            }

            async fn state_get(&self, key: &str) -> Result<Option<String>, $crate::store::StoreError> {
                Ok(
                    sqlx::query_scalar("SELECT value FROM cpor_worker_state WHERE key = $1")
                        .bind(key)
                        .fetch_optional(self.pool())
                        .await?,
                )
            }

            async fn state_set(
                &self,
                key: &str,
                value: &str,
                at: chrono::DateTime<chrono::Utc>,
            ) -> Result<(), $crate::store::StoreError> {
                sqlx::query(
                    "INSERT INTO cpor_worker_state (key, value, updated_at) VALUES ($1, $2, $3) \
                     ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value, \
                     updated_at = EXCLUDED.updated_at",
                )
                .bind(key)
                .bind(value)
                .bind($crate::store::bind::At(at))
                .execute(self.pool())
                .await?;
                Ok(())
            }
        }
    };
}
pub(crate) use impl_store;

/// Writes one `claim_history` row on `$conn` (an executor): the statement every write shares.
macro_rules! insert_history {
    ($conn:expr, $h:expr) => {{
        let h: &$crate::store::HistoryEntry = $h;
        sqlx::query(
            "INSERT INTO claim_history (claim_id, occurred_at, actor, action, details) \
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(&h.claim_id)
        .bind($crate::store::bind::At(h.occurred_at))
        .bind(h.actor.as_str())
        .bind(&h.action)
        .bind($crate::store::bind::Doc(&h.details))
        .execute($conn)
    }};
}
pub(crate) use insert_history;
