//! The columns the worker needs in the main system's `claims` table (SPEC §5), and a check that
//! a database has them all: the migrations create the table only where it is absent, so a table
//! the main system made without some column would otherwise fail every pass.

use super::{AnyStore, StoreError};

/// Every column of `claims` the worker reads or writes.
pub const CLAIM_COLUMNS: [&str; 24] = [
    "id",
    "status",
    "partner_id",
    "partner_name",
    "partner_email",
    "customer_tenant_id",
    "customer_name",
    "customer_email",
    "products",
    "country",
    "time_zone",
    "locale",
    "submitted_at",
    "review_started_at",
    "info_requested_at",
    "info_request_reason",
    "approved_at",
    "rejected_at",
    "rejection_reason",
    "customer_declined_at",
    "dispute_opened_at",
    "dispute_resolved_at",
    "updated_at",
    "version",
];

/// What [`claims_table_columns`] found wrong with the `claims` table.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ClaimsTable {
    /// Every column is there.
    Complete,
    /// There is no `claims` table (a fresh database not yet migrated).
    Absent,
    /// The table lacks these columns, in [`CLAIM_COLUMNS`] order.
    Missing(Vec<&'static str>),
}

/// Compares the `claims` table's columns (in the current schema) with [`CLAIM_COLUMNS`].
pub async fn claims_table_columns(store: &AnyStore) -> Result<ClaimsTable, StoreError> {
    let present: Vec<String> = match store {
        AnyStore::Postgres(s) => {
            sqlx::query_scalar(
                "SELECT column_name::text FROM information_schema.columns \
                 WHERE table_schema = current_schema() AND table_name = 'claims'",
            )
            .fetch_all(s.pool())
            .await?
        }
        AnyStore::Sqlite(s) => {
            sqlx::query_scalar("SELECT name FROM pragma_table_info('claims')")
                .fetch_all(s.pool())
                .await?
        }
    };
    if present.is_empty() {
        return Ok(ClaimsTable::Absent);
    }
    let missing: Vec<&'static str> = CLAIM_COLUMNS
        .into_iter()
        .filter(|c| !present.iter().any(|p| p.eq_ignore_ascii_case(c)))
        .collect();
    Ok(if missing.is_empty() {
        ClaimsTable::Complete
    } else {
        ClaimsTable::Missing(missing)
    })
}
