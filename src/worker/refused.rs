//! A claim whose writes the database refuses (a constraint or a trigger of the main system's
//! schema): the fire batch that met it is tried again in halves until the claim is alone,
//! then the claim is held for an operator with the database's reason, so the claims behind it
//! in due order still fire.

use chrono::{DateTime, Utc};
use serde_json::json;

use crate::lifecycle::{Actor, HistoryEntry};
use crate::store::{Hold, Repairs, StoreError};

use super::Problem;

/// Who holds a claim whose writes the database refused.
pub const HELD_BY: &str = "cpor-worker";

/// The history action of such a hold.
pub const ACTION: &str = "held_writes_refused";

/// Claims held for refused writes at most, in all (until released): past that, a refusal
/// ends the pass instead (a schema that refuses every claim's writes is not the claims' fault).
/// Batches side by side that count at once may each hold one more.
pub(super) const MAX_HOLDS: usize = 10;

/// The batch size after a batch of `refused` claims was refused: half of it.
pub(super) fn smaller(refused: usize) -> i64 {
    i64::try_from(refused / 2).unwrap_or(i64::MAX).max(1)
}

/// The batch size after a batch went through at `now` (while a refused claim is looked for):
/// twice that, up to `full`.
pub(super) fn larger(now: i64, full: i64) -> i64 {
    now.saturating_mul(2).min(full)
}

/// Holds `claim_id`, whose writes the database refused with `refusal`, with a history row if
/// the database takes one (the refused write may be that very row); the problem to report,
/// or None if the claim was held already or is gone. Past [`MAX_HOLDS`] such holds, the
/// refusal is the error.
pub(super) async fn hold<S: Repairs>(
    store: &S,
    claim_id: &str,
    refusal: StoreError,
    now: DateTime<Utc>,
) -> Result<Option<Problem>, StoreError> {
    let held = by_worker(&store.holds(None).await?);
    if held >= MAX_HOLDS {
        return Err(StoreError::TooManyRefused {
            held,
            refusal: Box::new(refusal),
        });
    }
    let reason = format!(
        "the database refused the worker's writes for this claim: {}; release it (`claim \
         release`) once the cause is fixed",
        refusal_text(&refusal)
    );
    let hold = Hold {
        claim_id: claim_id.to_owned(),
        reason: reason.clone(),
        held_by: HELD_BY.to_owned(),
        held_at: now,
    };
    let history = HistoryEntry {
        claim_id: claim_id.to_owned(),
        occurred_at: now,
        actor: Actor::System,
        action: ACTION.to_owned(),
        details: json!({ "reason": reason, "held_by": HELD_BY }).into(),
    };
    let held = match store.hold_claim(&hold, Some(&history)).await {
        Err(e) if e.is_refused() => store.hold_claim(&hold, None).await,
        other => other,
    };
    match held {
        Ok(true) => {}
        Ok(false) | Err(StoreError::NotFound(_)) => return Ok(None),
        Err(e) => return Err(e),
    }
    tracing::error!(claim_id = %claim_id, problem = %reason, "claim held: the database refused its writes");
    Ok(Some(Problem {
        claim_id: claim_id.to_owned(),
        problem: reason,
    }))
}

/// What the database said, with what it named (SQLSTATE or SQLite code, table, column,
/// constraint), for a reader of the hold.
pub(crate) fn refusal_text(e: &StoreError) -> String {
    let d = match e {
        StoreError::Refused { source, .. } => return refusal_text(source),
        StoreError::Db(sqlx::Error::Database(d)) => d,
        other => return other.to_string(),
    };
    let pg = d.try_downcast_ref::<sqlx::postgres::PgDatabaseError>();
    let code = if pg.is_some() { "SQLSTATE" } else { "code" };
    // Not PostgreSQL's detail: for a NOT NULL or CHECK violation it is the whole failing row.
    let named: Vec<String> = [
        d.code().map(|c| format!("{code} {c}")),
        d.table().map(|t| format!("table {t}")),
        pg.and_then(|p| p.column()).map(|c| format!("column {c}")),
        d.constraint().map(|c| format!("constraint {c}")),
    ]
    .into_iter()
    .flatten()
    .collect();
    if named.is_empty() {
        d.message().to_owned()
    } else {
        format!("{} ({})", d.message(), named.join(", "))
    }
}

/// How many of `holds` the worker made for refused writes.
pub fn by_worker(holds: &[Hold]) -> usize {
    holds.iter().filter(|h| h.held_by == HELD_BY).count()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refused_batch_halves_down_to_one_claim_and_grows_back_to_full() {
        assert_eq!(smaller(5000), 2500);
        assert_eq!(smaller(3), 1);
        assert_eq!(smaller(1), 1);
        assert_eq!(larger(1, 5000), 2);
        assert_eq!(larger(4000, 5000), 5000);
    }
}
