//! What the operator console reads besides the [`Store`] and [`super::Repairs`] calls: counts
//! for the overview, claim search, a claim's timer rows, open SLA breaches. Each is one indexed
//! query, so the overview stays fast on a large `claims` table.

use std::future::Future;

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::row::{ReadRow, sla_alert};
use super::{SlaAlert, Store, StoreError};
use crate::lifecycle::ClaimStatus;
use crate::timers::TimerKind;

/// A claim found by the console's search.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ClaimHit {
    /// The claim's id.
    pub id: String,
    /// Its status as stored.
    pub status: String,
    /// Partner id.
    pub partner_id: Option<String>,
    /// Partner name.
    pub partner_name: Option<String>,
    /// Customer name.
    pub customer_name: Option<String>,
    /// Country.
    pub country: Option<String>,
}

/// One `cpor_timers` row as stored: pending, fired, or held.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct TimerRecord {
    /// Timer id.
    pub timer: String,
    /// The run's start.
    pub started_at: DateTime<Utc>,
    /// When it is (or was) due.
    pub due_at: DateTime<Utc>,
    /// `pending`, `fired` or `held`.
    pub state: String,
    /// When it was acted on.
    pub fired_at: Option<DateTime<Utc>>,
    /// What acting on it came to.
    pub outcome: Option<String>,
}

/// Reads for the console; every backend offers them.
pub trait ConsoleReads: Store {
    /// Pending timers of claims not held, due in `[from, until)`, counted per UTC date
    /// (`YYYY-MM-DD`), dates in order.
    fn due_per_day(
        &self,
        from: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> impl Future<Output = Result<Vec<(String, i64)>, StoreError>> + Send;

    /// How many claims have a problem recorded.
    fn count_problems(&self) -> impl Future<Output = Result<i64, StoreError>> + Send;

    /// SLA breaches still open (the claim still waits on the step the SLA measures), oldest
    /// deadline first, at most `limit`; and how many there are in all.
    fn open_breaches(
        &self,
        limit: i64,
    ) -> impl Future<Output = Result<(Vec<SlaAlert>, i64), StoreError>> + Send;

    /// Claims whose id or partner id is `q`, or whose partner name, partner email or customer
    /// email contains it (case-insensitive); at most `limit`, by id.
    fn search_claims(
        &self,
        q: &str,
        limit: i64,
    ) -> impl Future<Output = Result<Vec<ClaimHit>, StoreError>> + Send;

    /// Every `cpor_timers` row of a claim, by due time.
    fn claim_timers(
        &self,
        claim_id: &str,
    ) -> impl Future<Output = Result<Vec<TimerRecord>, StoreError>> + Send;

    /// The problem recorded for a claim, if any.
    fn claim_problem(
        &self,
        claim_id: &str,
    ) -> impl Future<Output = Result<Option<String>, StoreError>> + Send;
}

/// Each SLA with the status in which it is still open (the step it measures has not happened),
/// bound as `$1`…`$6` into [`OPEN_SLA`].
pub(crate) const OPEN_SLA_IDS: [(TimerKind, ClaimStatus); 3] = [
    (TimerKind::ReviewStartSla, ClaimStatus::Submitted),
    (TimerKind::ReviewDecisionSla, ClaimStatus::UnderReview),
    (TimerKind::DisputeReviewSla, ClaimStatus::Rejected),
];

/// The predicate on `cpor_sla_alerts a JOIN claims c` that keeps the open breaches.
macro_rules! open_sla {
    () => {
        "((a.timer = $1 AND c.status = $2) OR (a.timer = $3 AND c.status = $4) \
         OR (a.timer = $5 AND c.status = $6 AND c.dispute_resolved_at IS NULL))"
    };
}
pub(crate) use open_sla;

/// `impl ConsoleReads for $store`; `ilike` is the backend's case-insensitive LIKE, `utc_day`
/// the UTC date (`YYYY-MM-DD`) of `t.due_at`.
macro_rules! impl_console {
    ($store:ty, ilike = $ilike:literal, utc_day = $day:literal) => {
        impl $crate::store::ConsoleReads for $store {
            async fn due_per_day(
                &self,
                from: chrono::DateTime<chrono::Utc>,
                until: chrono::DateTime<chrono::Utc>,
            ) -> Result<Vec<(String, i64)>, $crate::store::StoreError> {
                use sqlx::Row;
                let rows = sqlx::query(concat!(
                    "SELECT ", $day, " AS day, count(*) AS n FROM cpor_timers t WHERE t.state = ",
                    $crate::store::state::timer_state!(Pending),
                    " AND t.due_at >= $1 AND t.due_at < $2 AND NOT EXISTS ",
                    "(SELECT 1 FROM cpor_claim_holds h WHERE h.claim_id = t.claim_id) ",
                    "GROUP BY 1 ORDER BY 1"
                ))
                .bind($crate::store::bind::At(from))
                .bind($crate::store::bind::At(until))
                .fetch_all(self.pool())
                .await?;
                rows.iter()
                    .map(|r| Ok((r.try_get("day")?, r.try_get("n")?)))
                    .collect()
            }

            async fn count_problems(&self) -> Result<i64, $crate::store::StoreError> {
                Ok(
                    sqlx::query_scalar("SELECT count(*) FROM cpor_claim_sync WHERE problem IS NOT NULL")
                        .fetch_one(self.pool())
                        .await?,
                )
            }

            async fn open_breaches(
                &self,
                limit: i64,
            ) -> Result<(Vec<$crate::store::SlaAlert>, i64), $crate::store::StoreError> {
                use $crate::store::console::{OPEN_SLA_IDS, open_sla};
                let mut list = sqlx::query(concat!(
                    "SELECT a.* FROM cpor_sla_alerts a JOIN claims c ON c.id = a.claim_id WHERE ",
                    open_sla!(),
                    " ORDER BY a.due_at, a.claim_id LIMIT $7"
                ));
                let mut count = sqlx::query_scalar(concat!(
                    "SELECT count(*) FROM cpor_sla_alerts a JOIN claims c ON c.id = a.claim_id WHERE ",
                    open_sla!()
                ));
                for (timer, status) in OPEN_SLA_IDS {
                    list = list.bind(timer.as_str()).bind(status.as_str());
                    count = count.bind(timer.as_str()).bind(status.as_str());
                }
                let rows = list.bind(limit).fetch_all(self.pool()).await?;
                let n: i64 = count.fetch_one(self.pool()).await?;
                Ok(($crate::store::console::breaches(&rows)?, n))
            }

            async fn search_claims(
                &self,
                q: &str,
                limit: i64,
            ) -> Result<Vec<$crate::store::ClaimHit>, $crate::store::StoreError> {
                let like = format!(
                    "%{}%",
                    q.replace('\\', "\\\\")
                        .replace('%', "\\%")
                        .replace('_', "\\_")
                );
                let rows = sqlx::query(concat!(
                    "SELECT id, status, partner_id, partner_name, customer_name, country FROM claims ",
                    "WHERE id = $1 OR partner_id = $1 OR partner_name ", $ilike, " $2 ESCAPE '\\' ",
                    "OR partner_email ", $ilike, " $2 ESCAPE '\\' OR customer_email ", $ilike,
                    " $2 ESCAPE '\\' ORDER BY id LIMIT $3"
                ))
                .bind(q)
                .bind(like)
                .bind(limit)
                .fetch_all(self.pool())
                .await?;
                rows.iter().map($crate::store::console::claim_hit).collect()
            }

            async fn claim_timers(
                &self,
                claim_id: &str,
            ) -> Result<Vec<$crate::store::TimerRecord>, $crate::store::StoreError> {
                let rows = sqlx::query(
                    "SELECT timer, started_at, due_at, state, fired_at, outcome FROM cpor_timers \
                     WHERE claim_id = $1 ORDER BY due_at, timer",
                )
                .bind(claim_id)
                .fetch_all(self.pool())
                .await?;
                rows.iter().map($crate::store::console::timer_record).collect()
            }

            async fn claim_problem(
                &self,
                claim_id: &str,
            ) -> Result<Option<String>, $crate::store::StoreError> {
                Ok(sqlx::query_scalar(
                    "SELECT problem FROM cpor_claim_sync WHERE claim_id = $1 AND problem IS NOT NULL",
                )
                .bind(claim_id)
                .fetch_optional(self.pool())
                .await?)
            }
        }
    };
}
pub(crate) use impl_console;

pub(crate) fn claim_hit<R: ReadRow>(r: &R) -> Result<ClaimHit, StoreError> {
    let bad = |c: &str, e: String| StoreError::corrupt(&format!("claims.{c}"), e);
    let t = |c: &str| r.text(c).map_err(|e| bad(c, e));
    Ok(ClaimHit {
        id: t("id")?.unwrap_or_default(),
        status: t("status")?.unwrap_or_default(),
        partner_id: t("partner_id")?,
        partner_name: t("partner_name")?,
        customer_name: t("customer_name")?,
        country: t("country")?,
    })
}

pub(crate) fn timer_record<R: ReadRow>(r: &R) -> Result<TimerRecord, StoreError> {
    let bad = |c: &str, e: String| StoreError::corrupt(&format!("cpor_timers.{c}"), e);
    let at = |c: &str| r.instant(c).map_err(|e| bad(c, e));
    let need = |c: &str| at(c)?.ok_or_else(|| bad(c, "missing".to_owned()));
    Ok(TimerRecord {
        timer: r
            .text("timer")
            .map_err(|e| bad("timer", e))?
            .unwrap_or_default(),
        started_at: need("started_at")?,
        due_at: need("due_at")?,
        state: r
            .text("state")
            .map_err(|e| bad("state", e))?
            .unwrap_or_default(),
        fired_at: at("fired_at")?,
        outcome: r.text("outcome").map_err(|e| bad("outcome", e))?,
    })
}

pub(crate) fn breaches<R: ReadRow>(rows: &[R]) -> Result<Vec<SlaAlert>, StoreError> {
    rows.iter().map(sla_alert).collect()
}
