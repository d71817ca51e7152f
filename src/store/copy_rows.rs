//! Rows inserted into PostgreSQL with `COPY … FROM STDIN (FORMAT binary)`: used for the plain
//! inserts into the worker's own tables (no conflict clause, column types the worker's
//! migrations create). `COPY` writes a page's rows in one go (`heap_multi_insert`) and takes
//! typed values as they are, where `INSERT … SELECT unnest($1) …` first parses every bound
//! array and then inserts a row at a time (docs/benchmarks.md).

use chrono::{DateTime, Utc};

use super::postgres::Conn;

/// The binary format's header: its signature, then no flags and no extension area.
const HEADER: &[u8] = b"PGCOPY\n\xff\r\n\0\0\0\0\0\0\0\0\0";

/// PostgreSQL's epoch, 2000-01-01T00:00:00Z, in Unix seconds.
const POSTGRES_EPOCH_S: i64 = 946_684_800;

/// Rows in `COPY`'s binary format, written field by field in the statement's column order.
pub(super) struct CopyRows {
    buf: Vec<u8>,
    fields: i16,
    rows: usize,
    /// The first value that could not be written (too long, an instant out of range).
    error: Option<String>,
}

impl CopyRows {
    /// Rows of `fields` columns; `bytes` is a guess of their size, to allocate once.
    pub(super) fn new(fields: i16, bytes: usize) -> Self {
        let mut buf = Vec::with_capacity(HEADER.len() + bytes + 2);
        buf.extend_from_slice(HEADER);
        Self {
            buf,
            fields,
            rows: 0,
            error: None,
        }
    }

    /// Starts a row; its `fields` values follow.
    pub(super) fn row(&mut self) -> &mut Self {
        self.buf.extend_from_slice(&self.fields.to_be_bytes());
        self.rows += 1;
        self
    }

    fn bytes(&mut self, prefix: &[u8], value: &[u8]) -> &mut Self {
        match i32::try_from(prefix.len() + value.len()) {
            Ok(n) => {
                self.buf.extend_from_slice(&n.to_be_bytes());
                self.buf.extend_from_slice(prefix);
                self.buf.extend_from_slice(value);
            }
            Err(_) => {
                self.error.get_or_insert_with(|| {
                    format!("a value of {} bytes is too long to write", value.len())
                });
                self.null();
            }
        }
        self
    }

    /// A `text` value.
    pub(super) fn text(&mut self, s: &str) -> &mut Self {
        self.bytes(&[], s.as_bytes())
    }

    /// A `text` value or NULL.
    pub(super) fn opt_text(&mut self, s: Option<&str>) -> &mut Self {
        match s {
            Some(s) => self.text(s),
            None => self.null(),
        }
    }

    /// A `jsonb` value from its text (format version 1, then the text; the server parses it).
    pub(super) fn jsonb(&mut self, s: &str) -> &mut Self {
        self.bytes(&[1], s.as_bytes())
    }

    /// A `bigint` value.
    pub(super) fn int8(&mut self, v: i64) -> &mut Self {
        self.buf.extend_from_slice(&8i32.to_be_bytes());
        self.buf.extend_from_slice(&v.to_be_bytes());
        self
    }

    /// A `boolean` value.
    pub(super) fn boolean(&mut self, v: bool) -> &mut Self {
        self.buf.extend_from_slice(&1i32.to_be_bytes());
        self.buf.push(u8::from(v));
        self
    }

    /// An `integer` value.
    pub(super) fn int4(&mut self, v: i32) -> &mut Self {
        self.buf.extend_from_slice(&4i32.to_be_bytes());
        self.buf.extend_from_slice(&v.to_be_bytes());
        self
    }

    /// A `timestamptz` value: microseconds since 2000-01-01 UTC, as sqlx binds an instant.
    pub(super) fn instant(&mut self, t: DateTime<Utc>) -> &mut Self {
        match DateTime::from_timestamp(POSTGRES_EPOCH_S, 0).and_then(|e| (t - e).num_microseconds())
        {
            Some(micros) => self.int8(micros),
            None => {
                self.error
                    .get_or_insert_with(|| format!("the instant {t} is out of PostgreSQL's range"));
                self.null()
            }
        }
    }

    /// A `timestamptz` value or NULL.
    pub(super) fn opt_instant(&mut self, t: Option<DateTime<Utc>>) -> &mut Self {
        match t {
            Some(t) => self.instant(t),
            None => self.null(),
        }
    }

    /// NULL.
    pub(super) fn null(&mut self) -> &mut Self {
        self.buf.extend_from_slice(&(-1i32).to_be_bytes());
        self
    }

    /// Runs `statement` (a `COPY table (columns) FROM STDIN (FORMAT binary)`) with the rows;
    /// returns how many were inserted. A statement with no rows is not run.
    pub(super) async fn send(
        mut self,
        conn: &mut Conn,
        statement: &str,
    ) -> Result<u64, sqlx::Error> {
        if let Some(problem) = self.error {
            return Err(sqlx::Error::Encode(
                format!("{problem} ({statement})").into(),
            ));
        }
        if self.rows == 0 {
            return Ok(0);
        }
        self.buf.extend_from_slice(&(-1i16).to_be_bytes());
        let mut copy = conn.copy_in_raw(statement).await?;
        copy.send(self.buf).await?;
        copy.finish().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field(want: &mut Vec<u8>, bytes: &[u8]) {
        want.extend_from_slice(&i32::try_from(bytes.len()).unwrap().to_be_bytes());
        want.extend_from_slice(bytes);
    }

    #[test]
    fn rows_are_written_in_the_binary_format() {
        let mut rows = CopyRows::new(8, 0);
        let at: DateTime<Utc> = "2000-01-01T00:00:01.5Z".parse().unwrap();
        let before: DateTime<Utc> = "1999-12-31T23:59:59.000001Z".parse().unwrap();
        rows.row()
            .text("c\t1")
            .opt_text(None)
            .instant(at)
            .opt_instant(Some(before))
            .int8(-2)
            .int4(7)
            .boolean(true)
            .jsonb("{}");
        let mut want = b"PGCOPY\n\xff\r\n\0".to_vec();
        want.extend_from_slice(&[0; 8]);
        want.extend_from_slice(&8i16.to_be_bytes());
        field(&mut want, b"c\t1");
        want.extend_from_slice(&(-1i32).to_be_bytes());
        field(&mut want, &1_500_000i64.to_be_bytes());
        field(&mut want, &(-999_999i64).to_be_bytes());
        field(&mut want, &(-2i64).to_be_bytes());
        field(&mut want, &7i32.to_be_bytes());
        field(&mut want, &[1]);
        field(&mut want, b"\x01{}");
        assert_eq!(rows.buf, want);
        assert_eq!(rows.rows, 1);
        assert!(rows.error.is_none());
    }
}
