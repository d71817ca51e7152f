//! Reading a claim row column by column, so one bad value names its column instead of failing a query.

use chrono::{DateTime, Utc};
use sqlx::{ColumnIndex, Decode, Row, Type};

use crate::claim::{BadClaim, ClaimRow};

/// Reads the SPEC §5 columns of `row`; `ts` reads one timestamp column the backend's way.
pub(crate) fn claim_row<R>(
    row: &R,
    ts: impl Fn(&R, &str) -> Result<Option<DateTime<Utc>>, String>,
) -> Result<ClaimRow, BadClaim>
where
    R: Row,
    for<'r> String: Decode<'r, R::Database> + Type<R::Database>,
    for<'r> Option<String>: Decode<'r, R::Database> + Type<R::Database>,
    for<'r> i64: Decode<'r, R::Database> + Type<R::Database>,
    for<'a> &'a str: ColumnIndex<R>,
{
    let id: String = row.try_get("id").map_err(|e| BadClaim {
        claim_id: "<unreadable id>".to_owned(),
        problem: format!("column id: {e}"),
    })?;
    let bad = |column: &str, e: String| BadClaim {
        claim_id: id.clone(),
        problem: format!("column {column}: {e}"),
    };
    let text = |column: &str| -> Result<Option<String>, BadClaim> {
        row.try_get::<Option<String>, _>(column)
            .map_err(|e| bad(column, e.to_string()))
    };
    let time = |column: &str| ts(row, column).map_err(|e| bad(column, e));
    let status = text("status")?.ok_or_else(|| bad("status", "is NULL".to_owned()))?;
    let version: i64 = row
        .try_get("version")
        .map_err(|e| bad("version", e.to_string()))?;
    Ok(ClaimRow {
        status,
        partner_id: text("partner_id")?,
        partner_name: text("partner_name")?,
        partner_email: text("partner_email")?,
        customer_tenant_id: text("customer_tenant_id")?,
        customer_name: text("customer_name")?,
        customer_email: text("customer_email")?,
        products: text("products")?,
        country: text("country")?,
        time_zone: text("time_zone")?,
        locale: text("locale")?,
        submitted_at: time("submitted_at")?,
        review_started_at: time("review_started_at")?,
        info_requested_at: time("info_requested_at")?,
        info_request_reason: text("info_request_reason")?,
        approved_at: time("approved_at")?,
        rejected_at: time("rejected_at")?,
        rejection_reason: text("rejection_reason")?,
        customer_declined_at: time("customer_declined_at")?,
        dispute_opened_at: time("dispute_opened_at")?,
        dispute_resolved_at: time("dispute_resolved_at")?,
        updated_at: time("updated_at")?,
        version,
        id,
    })
}
