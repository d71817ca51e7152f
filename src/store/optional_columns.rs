//! Optional columns of the main system's `claims` table, beyond SPEC §5: found at start-up
//! (`migrate`, or opening the store for a command) from the catalogue, and read only when
//! present. Today one: `customer_locale`, the language of the customer's consent email (the
//! claim's `locale` is the partner's).

use std::collections::HashMap;

use super::ChangedClaim;
use crate::claim::{Claim, parse_locale};

/// Sets each claim's `customer_locale` from `found` (id → stored text); a blank or unparsable
/// value is left unset, so the claim's `locale` applies.
pub(crate) fn apply<'c>(
    found: &HashMap<String, String>,
    claims: impl IntoIterator<Item = &'c mut Claim>,
) {
    for c in claims {
        c.customer_locale = found
            .get(&c.id)
            .map(|l| l.trim())
            .filter(|l| !l.is_empty())
            .and_then(|l| parse_locale(l).ok());
    }
}

/// The parsed claims of `page`.
pub(crate) fn parsed<'c>(
    page: impl IntoIterator<Item = &'c mut ChangedClaim>,
) -> impl Iterator<Item = &'c mut Claim> {
    page.into_iter().filter_map(|c| c.claim.as_mut().ok())
}

/// Inherent methods of `$store` for the optional columns: `$has` counts `customer_locale` in
/// the catalogue, `$in` is the backend's id-list fragment. The store keeps what it found in its
/// `customer_locale` flag.
macro_rules! impl_optional_columns {
    ($store:ty, has_customer_locale = $has:literal, in_ids = $in:literal) => {
        impl $store {
            /// Looks up the optional columns of `claims` (call at start-up, after migrating).
            pub async fn detect_optional_columns(&self) -> Result<(), $crate::store::StoreError> {
                let n: i64 = sqlx::query_scalar($has).fetch_one(self.pool()).await?;
                self.customer_locale
                    .store(n > 0, std::sync::atomic::Ordering::Relaxed);
                Ok(())
            }

            /// Fills `customer_locale` of `claims` on `conn` when the column exists.
            pub(crate) async fn customer_locales_on<'c>(
                &self,
                conn: &mut Conn,
                claims: impl IntoIterator<Item = &'c mut $crate::claim::Claim>,
            ) -> Result<(), $crate::store::StoreError> {
                if !self
                    .customer_locale
                    .load(std::sync::atomic::Ordering::Relaxed)
                {
                    return Ok(());
                }
                let mut claims: Vec<&mut $crate::claim::Claim> = claims.into_iter().collect();
                let ids: Vec<String> = claims.iter().map(|c| c.id.clone()).collect();
                if ids.is_empty() {
                    return Ok(());
                }
                let rows: Vec<(String, Option<String>)> = sqlx::query_as(concat!(
                    "SELECT id, customer_locale FROM claims WHERE id ",
                    $in
                ))
                .bind($crate::store::bind::Ids(&ids))
                .fetch_all(&mut *conn)
                .await?;
                let found: std::collections::HashMap<String, String> = rows
                    .into_iter()
                    .filter_map(|(id, l)| Some((id, l?)))
                    .collect();
                $crate::store::optional_columns::apply(&found, claims.iter_mut().map(|c| &mut **c));
                Ok(())
            }

            /// Fills `customer_locale` of `claims` when the column exists.
            pub(crate) async fn customer_locales<'c>(
                &self,
                claims: impl IntoIterator<Item = &'c mut $crate::claim::Claim>,
            ) -> Result<(), $crate::store::StoreError> {
                if !self
                    .customer_locale
                    .load(std::sync::atomic::Ordering::Relaxed)
                {
                    return Ok(());
                }
                let mut conn = self.pool().acquire().await?;
                self.customer_locales_on(&mut conn, claims).await
            }
        }
    };
}
pub(crate) use impl_optional_columns;
