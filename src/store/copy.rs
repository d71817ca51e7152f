//! Rows written with PostgreSQL's binary `COPY … FROM STDIN`: the server inserts them a page
//! at a time (one WAL record per heap page, not per row), where `INSERT … SELECT FROM UNNEST`
//! inserts them one by one. Used for the batch inserts that meet no row of their own (the
//! callers know, or a unique violation tells them).

use chrono::{DateTime, TimeZone, Utc};

use super::postgres::Conn;

/// PostgreSQL's epoch for `timestamptz`, in Unix seconds (2000-01-01T00:00:00Z).
const PG_EPOCH_UNIX: i64 = 946_684_800;

/// A binary `COPY` stream being built, a row at a time, each field in its column's order.
pub(super) struct CopyRows {
    buf: Vec<u8>,
    fields: i16,
}

impl CopyRows {
    /// An empty stream of rows of `fields` columns, with room for about `rows` of them.
    pub(super) fn new(fields: i16, rows: usize) -> Self {
        let mut buf = Vec::with_capacity(19 + rows * (2 + usize::from(fields.unsigned_abs()) * 24));
        // Signature, flags (no OIDs), header extension length.
        buf.extend_from_slice(b"PGCOPY\n\xff\r\n\0");
        buf.extend_from_slice(&0i32.to_be_bytes());
        buf.extend_from_slice(&0i32.to_be_bytes());
        CopyRows { buf, fields }
    }

    /// Starts the next row.
    pub(super) fn row(&mut self) -> &mut Self {
        self.buf.extend_from_slice(&self.fields.to_be_bytes());
        self
    }

    /// A `text` field.
    pub(super) fn text(&mut self, s: &str) -> &mut Self {
        self.field(s.as_bytes())
    }

    /// A `text` field, `NULL` when absent.
    pub(super) fn opt_text(&mut self, s: Option<&str>) -> &mut Self {
        match s {
            Some(s) => self.text(s),
            None => self.null(),
        }
    }

    /// A `bigint` field.
    pub(super) fn int8(&mut self, v: i64) -> &mut Self {
        self.field(&v.to_be_bytes())
    }

    /// A `timestamptz` field: microseconds since 2000-01-01 UTC, the sub-microsecond part
    /// truncated toward zero as sqlx binds an instant (so a row written here compares equal to
    /// one bound elsewhere). An instant too far out for an `i64` of microseconds is an error.
    pub(super) fn timestamptz(&mut self, at: DateTime<Utc>) -> Result<&mut Self, sqlx::Error> {
        let micros = pg_micros(at).ok_or_else(|| {
            sqlx::Error::Encode(format!("instant out of range for PostgreSQL: {at:?}").into())
        })?;
        Ok(self.field(&micros.to_be_bytes()))
    }

    /// A `NULL` field.
    pub(super) fn null(&mut self) -> &mut Self {
        self.buf.extend_from_slice(&(-1i32).to_be_bytes());
        self
    }

    fn field(&mut self, bytes: &[u8]) -> &mut Self {
        // A field is at most a `COPY` message (1 GiB); a longer one fails on the server.
        let len = i32::try_from(bytes.len()).unwrap_or(i32::MAX);
        self.buf.extend_from_slice(&len.to_be_bytes());
        self.buf.extend_from_slice(bytes);
        self
    }

    /// Sends the rows with `statement` (a `COPY … FROM STDIN WITH (FORMAT binary)`), in one
    /// round trip; returns how many the server inserted.
    pub(super) async fn send(
        mut self,
        conn: &mut Conn,
        statement: &str,
    ) -> Result<u64, sqlx::Error> {
        self.buf.extend_from_slice(&(-1i16).to_be_bytes());
        let mut copy = conn.copy_in_raw(statement).await?;
        if let Err(e) = copy.send(self.buf).await {
            // The connection is unusable mid-stream either way; say why on the server's side.
            let _ = copy.abort("cpor-worker: sending the rows failed").await;
            return Err(e);
        }
        copy.finish().await
    }
}

/// `at` as microseconds since PostgreSQL's epoch, truncated toward zero; `None` out of range.
fn pg_micros(at: DateTime<Utc>) -> Option<i64> {
    let epoch = Utc.timestamp_opt(PG_EPOCH_UNIX, 0).single()?;
    (at - epoch).num_microseconds()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    #[test]
    fn instants_are_microseconds_since_2000_truncated_toward_zero() {
        assert_eq!(pg_micros(t("2000-01-01T00:00:00Z")), Some(0));
        assert_eq!(
            pg_micros(t("2000-01-01T00:00:01.0000019Z")),
            Some(1_000_001)
        );
        assert_eq!(pg_micros(t("1999-12-31T23:59:59.9999991Z")), Some(0));
        assert_eq!(pg_micros(t("1999-12-31T23:59:59.9999989Z")), Some(-1));
        assert_eq!(
            pg_micros(t("2027-01-11T09:00:00Z")),
            Some((1_799_658_000 - PG_EPOCH_UNIX) * 1_000_000)
        );
    }

    #[test]
    fn a_stream_is_header_rows_and_trailer_in_the_binary_format() {
        let mut rows = CopyRows::new(3, 1);
        rows.row().text("c1").opt_text(None).int8(7);
        rows.row().null().text("").int8(-2);
        let mut want = b"PGCOPY\n\xff\r\n\0\0\0\0\0\0\0\0\0".to_vec();
        want.extend_from_slice(&[0, 3, 0, 0, 0, 2, b'c', b'1', 0xff, 0xff, 0xff, 0xff]);
        want.extend_from_slice(&[0, 0, 0, 8, 0, 0, 0, 0, 0, 0, 0, 7]);
        want.extend_from_slice(&[0, 3, 0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0, 0, 0, 0, 8]);
        want.extend_from_slice(&[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xfe]);
        assert_eq!(rows.buf, want);
    }
}
