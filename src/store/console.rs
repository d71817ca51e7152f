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

/// The console overview's counts, each at most its cap + 1 (see [`ConsoleReads::overview_counts`]).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct OverviewCounts {
    /// Pending timers due at `now`, held claims' not counted.
    pub due_now: i64,
    /// Pending timers due in each day of the chart, held claims' not counted.
    pub due_per_day: Vec<i64>,
    /// SLA breaches still open.
    pub open_sla_breaches: i64,
    /// Claims with a problem recorded.
    pub problems: i64,
    /// Dead-lettered emails.
    pub dead_emails: i64,
    /// Emails waiting for delivery (or being delivered).
    pub pending_emails: i64,
    /// Delivered emails.
    pub sent_emails: i64,
}

/// Reads for the console; every backend offers them.
pub trait ConsoleReads: Store {
    /// The overview's counts at `now`, each exact up to its cap and the cap + 1 when there are
    /// more, so that the overview costs the same on a database of any size: `cap` for timers,
    /// emails and problems, `breach_cap` for open SLA breaches (each found through a join with
    /// its claim); `day_starts` bound the days of the chart (`n + 1` instants give `n` days).
    fn overview_counts(
        &self,
        now: DateTime<Utc>,
        day_starts: &[DateTime<Utc>],
        cap: i64,
        breach_cap: i64,
    ) -> impl Future<Output = Result<OverviewCounts, StoreError>> + Send;

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

/// `impl ConsoleReads for $store`; `ilike` is the backend's case-insensitive LIKE.
macro_rules! impl_console {
    ($store:ty, ilike = $ilike:literal) => {
        impl $crate::store::ConsoleReads for $store {
            async fn overview_counts(
                &self,
                now: chrono::DateTime<chrono::Utc>,
                day_starts: &[chrono::DateTime<chrono::Utc>],
                cap: i64,
                breach_cap: i64,
            ) -> Result<$crate::store::OverviewCounts, $crate::store::StoreError> {
                use $crate::store::bind::At;
                use $crate::store::console::{OPEN_SLA_IDS, open_sla};
                use $crate::store::state::{outbox_state, timer_state};
                let limit = cap.saturating_add(1);
                let mut conn = self.pool().acquire().await?;
                let mut out = $crate::store::OverviewCounts::default();
                // Due timers are counted from the due index alone, then held claims' (few:
                // an operator holds each) subtracted; counting up to cap + 1 + held keeps
                // the result exact up to the cap. The first range is "due now": no lower
                // bound (the year 1 is before any instant a claim has) and `now` included;
                // the days that follow exclude their end.
                let ever = chrono::NaiveDate::from_ymd_opt(1, 1, 1)
                    .unwrap_or_default()
                    .and_time(chrono::NaiveTime::MIN)
                    .and_utc();
                let ranges: Vec<_> = std::iter::once((ever, now))
                    .chain(day_starts.windows(2).map(|d| (d[0], d[1])))
                    .collect();
                let mut counts = Vec::with_capacity(ranges.len());
                for (i, (from, until)) in ranges.into_iter().enumerate() {
                    let inclusive = i == 0;
                    let held: i64 = sqlx::query_scalar(concat!(
                        "SELECT count(*) FROM cpor_claim_holds h JOIN cpor_timers t ",
                        "ON t.claim_id = h.claim_id WHERE t.state = ",
                        timer_state!(Pending),
                        " AND t.due_at >= $1 AND (t.due_at < $2 OR ($3 AND t.due_at = $2))"
                    ))
                    .bind(At(from))
                    .bind(At(until))
                    .bind(inclusive)
                    .fetch_one(&mut *conn)
                    .await?;
                    let all: i64 = sqlx::query_scalar(concat!(
                        "SELECT count(*) FROM (SELECT 1 FROM cpor_timers WHERE state = ",
                        timer_state!(Pending),
                        " AND due_at >= $1 AND (due_at < $2 OR ($3 AND due_at = $2)) LIMIT $4) x"
                    ))
                    .bind(At(from))
                    .bind(At(until))
                    .bind(inclusive)
                    .bind(limit.saturating_add(held))
                    .fetch_one(&mut *conn)
                    .await?;
                    counts.push(all - held);
                }
                out.due_now = counts[0];
                out.due_per_day = counts[1..].to_vec();
                let mut breaches = sqlx::query_scalar(concat!(
                    "SELECT count(*) FROM (SELECT 1 FROM cpor_sla_alerts a JOIN claims c ",
                    "ON c.id = a.claim_id WHERE ",
                    open_sla!(),
                    " LIMIT $7) x"
                ));
                for (timer, status) in OPEN_SLA_IDS {
                    breaches = breaches.bind(timer.as_str()).bind(status.as_str());
                }
                out.open_sla_breaches = breaches
                    .bind(breach_cap.saturating_add(1))
                    .fetch_one(&mut *conn)
                    .await?;
                out.problems = sqlx::query_scalar(
                    "SELECT count(*) FROM (SELECT 1 FROM cpor_claim_sync \
                     WHERE problem IS NOT NULL LIMIT $1) x",
                )
                .bind(limit)
                .fetch_one(&mut *conn)
                .await?;
                out.dead_emails = sqlx::query_scalar(concat!(
                    "SELECT count(*) FROM (SELECT 1 FROM cpor_outbox WHERE state = ",
                    outbox_state!(Dead),
                    " LIMIT $1) x"
                ))
                .bind(limit)
                .fetch_one(&mut *conn)
                .await?;
                out.pending_emails = sqlx::query_scalar(concat!(
                    "SELECT count(*) FROM (SELECT 1 FROM cpor_outbox WHERE state IN (",
                    outbox_state!(Pending),
                    ", ",
                    outbox_state!(Sending),
                    ") LIMIT $1) x"
                ))
                .bind(limit)
                .fetch_one(&mut *conn)
                .await?;
                out.sent_emails = sqlx::query_scalar(concat!(
                    "SELECT count(*) FROM (SELECT 1 FROM cpor_outbox WHERE state = ",
                    outbox_state!(Sent),
                    " LIMIT $1) x"
                ))
                .bind(limit)
                .fetch_one(&mut *conn)
                .await?;
                Ok(out)
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
