//! What the operator console reads besides the [`Store`] and [`super::Repairs`] calls: counts
//! for the overview, claim search, a claim's timer rows, open SLA breaches. Each is one indexed
//! query, so the overview stays fast on a large `claims` table.

use std::future::Future;

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::row::{ReadRow, sla_alert};
use super::{SlaAlert, Store, StoreError};

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

/// Statuses in which each SLA is still open (the step it measures has not happened).
pub(crate) const OPEN_SLA_SQL: &str = "((a.timer = 'review_start_sla' AND c.status = 'submitted') \
     OR (a.timer = 'review_decision_sla' AND c.status = 'under_review') \
     OR (a.timer = 'dispute_review_sla' AND c.status = 'rejected' AND c.dispute_resolved_at IS NULL))";

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
