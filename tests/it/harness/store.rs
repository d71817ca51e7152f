//! Test-only reads and writes of the store's tables, in plain SQL: what the worker never does
//! in production but the suites check or set up (a compare-and-set action on one claim, the
//! incentive-evaluation requests, every claim at once).

use chrono::{DateTime, Utc};
use cpor_worker::claim::{BadClaim, Claim};
use cpor_worker::lifecycle::{ClaimStatus, HistoryEntry, StatusChange};
use cpor_worker::store::{AnyStore, Store, format_ts};
use sqlx::Row;
use sqlx::types::Json;

/// Everything one action on a claim writes, applied in one transaction or not at all.
#[derive(Clone, Debug, PartialEq)]
pub struct ClaimChange {
    /// The claim.
    pub claim_id: String,
    /// The status the action was decided on; another status means someone changed the claim.
    pub expected_status: ClaimStatus,
    /// The version the action was decided on.
    pub expected_version: i64,
    /// The instant the action takes effect.
    pub at: DateTime<Utc>,
    /// A status change, if the action makes one (version is bumped then).
    pub status_change: Option<StatusChange>,
    /// The history row recording the action.
    pub history: HistoryEntry,
    /// Forward the claim to incentive evaluation (at most once per claim).
    pub request_incentive_evaluation: bool,
}

/// What became of a [`ClaimChange`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ApplyOutcome {
    /// Written; the claim's version is now this.
    Applied {
        /// The claim's version after the change.
        version: i64,
    },
    /// The claim changed since the decision; nothing was written.
    Conflict {
        /// Its status now (as stored).
        status: String,
        /// Its version now.
        version: i64,
    },
    /// The claim no longer exists; nothing was written.
    Gone,
}

/// Applies one action: compare-and-set on the claim's status and version, under its row lock
/// (PostgreSQL) or SQLite's write lock. `$ts` turns an instant into what the backend binds.
macro_rules! apply_on {
    ($tx:expr, $change:expr, $ts:expr, $lock:literal) => {{
        let (mut tx, change): (_, &ClaimChange) = ($tx, $change);
        let current = sqlx::query(concat!(
            "SELECT status, CAST(version AS BIGINT) AS version FROM claims WHERE id = $1",
            $lock
        ))
        .bind(&change.claim_id)
        .fetch_optional(&mut *tx)
        .await
        .unwrap();
        let Some(current) = current else {
            return ApplyOutcome::Gone;
        };
        let status: String = current.get("status");
        let version: i64 = current.get("version");
        if status != change.expected_status.as_str() || version != change.expected_version {
            return ApplyOutcome::Conflict { status, version };
        }
        let mut new_version = version;
        if let Some(sc) = &change.status_change {
            let rejected = (sc.to == ClaimStatus::Rejected).then_some($ts(change.at));
            new_version = sqlx::query_scalar(
                "UPDATE claims SET status = $2, rejection_reason = COALESCE($3, rejection_reason), \
                 rejected_at = COALESCE($4, rejected_at), updated_at = $5, version = version + 1 \
                 WHERE id = $1 RETURNING CAST(version AS BIGINT)",
            )
            .bind(&change.claim_id)
            .bind(sc.to.as_str())
            .bind(sc.rejection_reason.map(|r| r.as_str()))
            .bind(rejected)
            .bind($ts(change.at))
            .fetch_one(&mut *tx)
            .await
            .unwrap();
        }
        let h = &change.history;
        sqlx::query(
            "INSERT INTO claim_history (claim_id, occurred_at, actor, action, details) \
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(&h.claim_id)
        .bind($ts(h.occurred_at))
        .bind(h.actor.as_str())
        .bind(&h.action)
        .bind(Json(&h.details))
        .execute(&mut *tx)
        .await
        .unwrap();
        if change.request_incentive_evaluation {
            sqlx::query(
                "INSERT INTO incentive_evaluation_requests (claim_id, requested_at) \
                 VALUES ($1, $2) ON CONFLICT (claim_id) DO NOTHING",
            )
            .bind(&change.claim_id)
            .bind($ts(change.at))
            .execute(&mut *tx)
            .await
            .unwrap();
        }
        tx.commit().await.unwrap();
        ApplyOutcome::Applied {
            version: new_version,
        }
    }};
}

/// Applies one action atomically if the claim still has the expected status and version.
pub async fn apply(store: &AnyStore, change: &ClaimChange) -> ApplyOutcome {
    match store {
        AnyStore::Postgres(s) => {
            let tx = s.pool().begin().await.unwrap();
            apply_on!(tx, change, |t: DateTime<Utc>| t, " FOR UPDATE")
        }
        AnyStore::Sqlite(s) => {
            let tx = s.pool().begin_with("BEGIN IMMEDIATE").await.unwrap();
            apply_on!(tx, change, format_ts, "")
        }
    }
}

/// When the claim was forwarded to incentive evaluation, if it was.
pub async fn incentive_request(store: &AnyStore, claim_id: &str) -> Option<DateTime<Utc>> {
    const SQL: &str = "SELECT requested_at FROM incentive_evaluation_requests WHERE claim_id = $1";
    match store {
        AnyStore::Postgres(s) => sqlx::query_scalar(SQL)
            .bind(claim_id)
            .fetch_optional(s.pool())
            .await
            .unwrap(),
        AnyStore::Sqlite(s) => sqlx::query_scalar::<_, String>(SQL)
            .bind(claim_id)
            .fetch_optional(s.pool())
            .await
            .unwrap()
            .map(|t| {
                DateTime::parse_from_rfc3339(&t)
                    .expect("requested_at is RFC 3339")
                    .with_timezone(&Utc)
            }),
    }
}

/// Every claim with an id, in id order, bad rows reported in place (read page by page as the
/// worker reads them).
pub async fn claims(store: &AnyStore) -> Vec<Result<Claim, BadClaim>> {
    let mut out = Vec::new();
    let mut after = String::new();
    loop {
        let page = store.claims_page(&after, 500).await.unwrap();
        let Some(last) = page.last() else {
            return out;
        };
        after = last.id.clone();
        out.extend(page.into_iter().map(|c| c.claim));
    }
}
