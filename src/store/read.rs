//! [`ReadRow`]: how each backend reads one column — text, an integer of any width, an instant
//! however it is stored, JSON — with the reason in words when it cannot.

use chrono::{DateTime, NaiveDateTime, Utc};
use sqlx::Row;
use sqlx::postgres::PgRow;
use sqlx::sqlite::SqliteRow;

/// How a backend reads one column; errors are the reason in words.
pub(crate) trait ReadRow {
    /// Nullable text.
    fn text(&self, col: &str) -> Result<Option<String>, String>;
    /// An integer (any width the backend stores).
    fn int(&self, col: &str) -> Result<i64, String>;
    /// A nullable instant, however the backend stores it.
    fn instant(&self, col: &str) -> Result<Option<DateTime<Utc>>, String>;
    /// A JSON value, however the backend stores it.
    fn json(&self, col: &str) -> Result<crate::json_text::JsonText, String>;
}

impl ReadRow for PgRow {
    fn text(&self, col: &str) -> Result<Option<String>, String> {
        self.try_get(col).map_err(|e| e.to_string())
    }

    fn int(&self, col: &str) -> Result<i64, String> {
        self.try_get::<i64, _>(col)
            .or_else(|_| self.try_get::<i32, _>(col).map(i64::from))
            .map_err(|e| e.to_string())
    }

    fn instant(&self, col: &str) -> Result<Option<DateTime<Utc>>, String> {
        self.try_get(col).map_err(|e| e.to_string())
    }

    fn json(&self, col: &str) -> Result<crate::json_text::JsonText, String> {
        match self.try_get::<serde_json::Value, _>(col) {
            Ok(v) => Ok(v.into()),
            // A main system's `text` column of JSON.
            Err(e) => match self.try_get::<String, _>(col) {
                Ok(s) => crate::json_text::JsonText::parse(s).map_err(|e| e.to_string()),
                Err(_) => Err(e.to_string()),
            },
        }
    }
}

impl ReadRow for SqliteRow {
    fn text(&self, col: &str) -> Result<Option<String>, String> {
        self.try_get(col).map_err(|e| e.to_string())
    }

    fn int(&self, col: &str) -> Result<i64, String> {
        self.try_get(col).map_err(|e| e.to_string())
    }

    /// RFC 3339 text (or `YYYY-MM-DD HH:MM:SS`), or Unix seconds as an integer.
    fn instant(&self, col: &str) -> Result<Option<DateTime<Utc>>, String> {
        match self.try_get::<Option<String>, _>(col) {
            Ok(None) => Ok(None),
            Ok(Some(s)) if s.trim().is_empty() => Ok(None),
            Ok(Some(s)) => parse_ts(&s).map(Some),
            Err(_) => match self.try_get::<Option<i64>, _>(col) {
                Ok(Some(secs)) => DateTime::from_timestamp(secs, 0)
                    .map(Some)
                    .ok_or_else(|| format!("{secs} is out of range as Unix seconds")),
                Ok(None) => Ok(None),
                Err(e) => Err(e.to_string()),
            },
        }
    }

    fn json(&self, col: &str) -> Result<crate::json_text::JsonText, String> {
        let s: String = self.try_get(col).map_err(|e| e.to_string())?;
        crate::json_text::JsonText::parse(s).map_err(|e| e.to_string())
    }
}

/// Parses a stored instant: RFC 3339, or `YYYY-MM-DD HH:MM:SS[.f][±HH:MM]`, or the same without
/// zone (UTC), or Unix seconds.
pub fn parse_ts(s: &str) -> Result<DateTime<Utc>, String> {
    let s = s.trim();
    if let Some(t) = iso_digits(s).or_else(|| by_formats(s)) {
        return Ok(t);
    }
    // Unix seconds, stored as an integer into a text column (SQLite then keeps its digits).
    if let Ok(secs) = s.parse::<i64>() {
        return DateTime::from_timestamp(secs, 0)
            .ok_or_else(|| format!("{secs} is out of range as Unix seconds"));
    }
    Err(format!("`{s}` is not a timestamp (expected RFC 3339)"))
}

/// RFC 3339, or `YYYY-MM-DD HH:MM:SS[.f]` with an offset or none (UTC), or the same with a `T`
/// and no offset, by chrono's parsers.
fn by_formats(s: &str) -> Option<DateTime<Utc>> {
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Some(t.with_timezone(&Utc));
    }
    for f in ["%Y-%m-%d %H:%M:%S%.f%:z", "%Y-%m-%d %H:%M:%S%.f%#z"] {
        if let Ok(t) = DateTime::parse_from_str(s, f) {
            return Some(t.with_timezone(&Utc));
        }
    }
    for f in ["%Y-%m-%d %H:%M:%S%.f", "%Y-%m-%dT%H:%M:%S%.f"] {
        if let Ok(t) = NaiveDateTime::parse_from_str(s, f) {
            return Some(t.and_utc());
        }
    }
    None
}

/// The common shapes, read digit by digit: `YYYY-MM-DD HH:MM:SS[.f]` then `Z`, `±HH`, `±HHMM`,
/// `±HH:MM` or nothing (UTC), or the same with a `T` and `Z`, `±HH:MM` or nothing, exactly what
/// the format strings of [`by_formats`] accept, as PostgreSQL's text of a `timestamptz` reads
/// (`2026-11-23 09:00:00+00`, the change capture's `event_at`). None for anything else, which
/// the format strings of [`by_formats`] then try (each costs a parse of its format: a tenth of a
/// first pass's worker time went there).
fn iso_digits(s: &str) -> Option<DateTime<Utc>> {
    let b = s.as_bytes();
    let num = |from: usize, len: usize| -> Option<u32> {
        let digits = b.get(from..from + len)?;
        digits.iter().try_fold(0u32, |n, d| {
            d.is_ascii_digit().then(|| n * 10 + u32::from(d - b'0'))
        })
    };
    let at = |i: usize, c: u8| b.get(i) == Some(&c);
    if !(at(4, b'-')
        && at(7, b'-')
        && (at(10, b' ') || at(10, b'T'))
        && at(13, b':')
        && at(16, b':'))
    {
        return None;
    }
    let date =
        chrono::NaiveDate::from_ymd_opt(i32::try_from(num(0, 4)?).ok()?, num(5, 2)?, num(8, 2)?)?;
    let mut i = 19;
    let mut nanos = 0;
    if at(i, b'.') {
        let digits = b[i + 1..].iter().take_while(|d| d.is_ascii_digit()).count();
        if digits == 0 || digits > 9 {
            return None;
        }
        nanos = num(i + 1, digits)? * 10u32.pow(9 - digits as u32);
        i += 1 + digits;
    }
    let time = date.and_hms_nano_opt(num(11, 2)?, num(14, 2)?, num(17, 2)?, nanos)?;
    let offset_s: i64 = match b.get(i) {
        None => 0,
        Some(b'Z') if i + 1 == b.len() => 0,
        Some(&sign @ (b'+' | b'-')) => {
            let hours = num(i + 1, 2)?;
            // RFC 3339 (a `T`) has its offsets with a colon only.
            let minutes = match b.len() - (i + 3) {
                0 if !at(10, b'T') => 0,
                2 if !at(10, b'T') => num(i + 3, 2)?,
                3 if at(i + 3, b':') => num(i + 4, 2)?,
                _ => return None,
            };
            if hours > 23 || minutes > 59 {
                return None;
            }
            let secs = i64::from(hours * 3600 + minutes * 60);
            if sign == b'-' { -secs } else { secs }
        }
        _ => return None,
    };
    Some(time.and_utc() - chrono::Duration::seconds(offset_s))
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::FixedOffset;
    use proptest::prelude::*;

    #[test]
    fn postgres_text_and_rfc3339_read_as_the_format_strings_read_them() {
        for s in [
            "2026-11-23 09:00:00+00",
            "2026-11-23 09:00:00.5+00",
            "2026-11-23 09:00:00.123456+05:30",
            "2026-11-23 09:00:00-0800",
            "2026-11-23T09:00:00Z",
            "2026-11-23T09:00:00.123456789Z",
            "2026-11-23 09:00:00",
            "2026-11-23T09:00:00",
            "2026-02-28 23:59:59-11",
        ] {
            assert_eq!(iso_digits(s), by_formats(s), "{s}");
            assert!(iso_digits(s).is_some(), "{s}");
        }
        for s in [
            "2026-02-30 09:00:00+00",
            "2026-11-23 24:00:00+00",
            "2026-11-23 09:00:00+00 BC",
            "2026-11-23 09:00:00.+00",
            "2026-11-23 09:00+00",
            "12026-11-23 09:00:00+00",
            "2026-11-23 09:00:00+5",
            "2026-11-23 09:00:00 +00",
            "1700000000",
        ] {
            assert_eq!(iso_digits(s), None, "{s}");
        }
    }

    proptest! {
        #[test]
        fn any_instant_in_any_offset_reads_back(
            secs in 0i64..253_402_300_799,
            nanos in 0u32..1_000_000_000,
            offset_min in -23 * 60i32..=23 * 60,
            shape in 0usize..8,
        ) {
            let t = DateTime::from_timestamp(secs, nanos).unwrap();
            let local = t.with_timezone(&FixedOffset::east_opt(offset_min * 60).unwrap());
            let s = match shape {
                0 => local.format("%Y-%m-%d %H:%M:%S%.f%:z").to_string(),
                1 => local.format("%Y-%m-%d %H:%M:%S%.f%z").to_string(),
                2 => t.format("%Y-%m-%d %H:%M:%S%.6f").to_string(),
                3 => t.format("%Y-%m-%dT%H:%M:%S%.9fZ").to_string(),
                4 => local.format("%Y-%m-%dT%H:%M:%S%.f%:z").to_string(),
                5 => t.format("%Y-%m-%d %H:%M:%S+00").to_string(),
                // A `T` with `+HHMM` (refused), a space before the offset (accepted).
                6 => local.format("%Y-%m-%dT%H:%M:%S%.f%z").to_string(),
                _ => local.format("%Y-%m-%d %H:%M:%S%.f %:z").to_string(),
            };
            // The digits read a shape the same as the format strings, or leave it to them.
            if let Some(t) = iso_digits(&s) {
                prop_assert_eq!(Some(t), by_formats(&s), "{}", s);
            }
            prop_assert_eq!(parse_ts(&s).ok(), by_formats(&s), "{}", s);
            if shape < 6 {
                prop_assert!(iso_digits(&s).is_some(), "{}", s);
            }
        }
    }
}
