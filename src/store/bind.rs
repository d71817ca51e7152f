//! Values bound the same way into the statement text both backends share: an instant
//! ([`At`]: `timestamptz` on PostgreSQL, RFC 3339 text on SQLite) and a list of ids ([`Ids`]: an
//! array on PostgreSQL, JSON text read with `json_each` on SQLite) and a JSON document ([`Doc`]:
//! `jsonb` on one, text on the other, bound from the text it was written as).

use chrono::{DateTime, SecondsFormat, Utc};
use serde::Serialize;
use sqlx::Type;
use sqlx::encode::{Encode, IsNull};
use sqlx::error::BoxDynError;
use sqlx::postgres::{PgArgumentBuffer, PgHasArrayType, PgTypeInfo, Postgres};
use sqlx::sqlite::{Sqlite, SqliteArgumentsBuffer, SqliteTypeInfo};

use crate::json_text::JsonText;

/// Formats an instant the way SQLite stores it: UTC, six fractional digits, so text order is
/// time order.
pub fn format_ts(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Micros, true)
}

/// An instant as each backend stores it.
#[derive(Clone, Copy, Debug)]
pub(crate) struct At(pub DateTime<Utc>);

/// An optional instant as each backend stores it (NULL when absent).
pub(crate) fn at_opt(t: Option<DateTime<Utc>>) -> Option<At> {
    t.map(At)
}

impl Type<Postgres> for At {
    fn type_info() -> PgTypeInfo {
        <DateTime<Utc> as Type<Postgres>>::type_info()
    }
}

impl Encode<'_, Postgres> for At {
    fn encode_by_ref(&self, buf: &mut PgArgumentBuffer) -> Result<IsNull, BoxDynError> {
        <DateTime<Utc> as Encode<Postgres>>::encode_by_ref(&self.0, buf)
    }
}

impl Type<Sqlite> for At {
    fn type_info() -> SqliteTypeInfo {
        <String as Type<Sqlite>>::type_info()
    }
}

impl Encode<'_, Sqlite> for At {
    fn encode_by_ref(&self, buf: &mut SqliteArgumentsBuffer) -> Result<IsNull, BoxDynError> {
        Encode::<Sqlite>::encode(format_ts(self.0), buf)
    }
}

/// A list of ids for `IN`: `= ANY($n)` on PostgreSQL, `IN (SELECT value FROM json_each($n))` on
/// SQLite (the dialect's `in_ids` fragment).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Ids<'a, T>(pub &'a [T]);

impl<T: Type<Postgres> + PgHasArrayType> Type<Postgres> for Ids<'_, T> {
    fn type_info() -> PgTypeInfo {
        T::array_type_info()
    }

    fn compatible(ty: &PgTypeInfo) -> bool {
        T::array_compatible(ty)
    }
}

impl<'q, T> Encode<'q, Postgres> for Ids<'_, T>
where
    T: Encode<'q, Postgres> + Type<Postgres>,
{
    fn encode_by_ref(&self, buf: &mut PgArgumentBuffer) -> Result<IsNull, BoxDynError> {
        <&[T] as Encode<'q, Postgres>>::encode_by_ref(&self.0, buf)
    }
}

impl<T> Type<Sqlite> for Ids<'_, T> {
    fn type_info() -> SqliteTypeInfo {
        <String as Type<Sqlite>>::type_info()
    }
}

impl<T: Serialize> Encode<'_, Sqlite> for Ids<'_, T> {
    fn encode_by_ref(&self, buf: &mut SqliteArgumentsBuffer) -> Result<IsNull, BoxDynError> {
        Encode::<Sqlite>::encode(serde_json::to_string(self.0)?, buf)
    }
}

/// A JSON document as each backend stores it: `jsonb` on PostgreSQL, text on SQLite, bound
/// from its text (not serialized again).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Doc<'a>(pub &'a JsonText);

impl Type<Postgres> for Doc<'_> {
    fn type_info() -> PgTypeInfo {
        PgTypeInfo::with_name("jsonb")
    }
}

impl Encode<'_, Postgres> for Doc<'_> {
    fn encode_by_ref(&self, buf: &mut PgArgumentBuffer) -> Result<IsNull, BoxDynError> {
        // jsonb's binary form: the format version (1), then the text.
        buf.push(1);
        buf.extend_from_slice(self.0.as_str().as_bytes());
        Ok(IsNull::No)
    }
}

impl Type<Sqlite> for Doc<'_> {
    fn type_info() -> SqliteTypeInfo {
        <String as Type<Sqlite>>::type_info()
    }
}

impl Encode<'_, Sqlite> for Doc<'_> {
    fn encode_by_ref(&self, buf: &mut SqliteArgumentsBuffer) -> Result<IsNull, BoxDynError> {
        Encode::<Sqlite>::encode(self.0.as_str().to_owned(), buf)
    }
}
