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
    fn json(&self, col: &str) -> Result<serde_json::Value, String>;
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

    fn json(&self, col: &str) -> Result<serde_json::Value, String> {
        self.try_get(col).map_err(|e| e.to_string())
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

    fn json(&self, col: &str) -> Result<serde_json::Value, String> {
        let s: String = self.try_get(col).map_err(|e| e.to_string())?;
        serde_json::from_str(&s).map_err(|e| e.to_string())
    }
}

/// Parses a stored instant: RFC 3339, or `YYYY-MM-DD HH:MM:SS[.f][±HH:MM]`, or the same without
/// zone (UTC), or Unix seconds.
pub fn parse_ts(s: &str) -> Result<DateTime<Utc>, String> {
    let s = s.trim();
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Ok(t.with_timezone(&Utc));
    }
    for f in ["%Y-%m-%d %H:%M:%S%.f%:z", "%Y-%m-%d %H:%M:%S%.f%#z"] {
        if let Ok(t) = DateTime::parse_from_str(s, f) {
            return Ok(t.with_timezone(&Utc));
        }
    }
    for f in ["%Y-%m-%d %H:%M:%S%.f", "%Y-%m-%dT%H:%M:%S%.f"] {
        if let Ok(t) = NaiveDateTime::parse_from_str(s, f) {
            return Ok(t.and_utc());
        }
    }
    // Unix seconds, stored as an integer into a text column (SQLite then keeps its digits).
    if let Ok(secs) = s.parse::<i64>() {
        return DateTime::from_timestamp(secs, 0)
            .ok_or_else(|| format!("{secs} is out of range as Unix seconds"));
    }
    Err(format!("`{s}` is not a timestamp (expected RFC 3339)"))
}
