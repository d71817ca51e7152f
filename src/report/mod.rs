//! The operator's reports: `dry-run` (what a pass would do at an instant and in a horizon after
//! it) and `explain` (one claim's timers and how each deadline was counted).
//!
//! Both compute from the claims themselves with the same [`evaluate`](crate::timers::evaluate)
//! and [`plan`](crate::timers::plan) a pass uses, never from the worker's timer index.
//!
//! - [`rows`]: one claim → its report rows or the problem that stops it (pure).
//! - [`scan`]: every claim, page by page, into a [`Sink`] and a [`Summary`] (bounded memory).
//! - `table`, `json`, `csv`, `html`: the four sinks of `dry-run --format`.
//! - [`explain`]: one claim's timers day by day (pure), and its text rendering.

mod chart;
mod csv;
pub mod explain;
mod explain_text;
mod html;
mod json;
pub mod rows;
pub mod scan;
mod spill;
mod summary;
mod table;

/// The inline script that sorts a `table.sortable` by the clicked header, shared by the static
/// `dry-run --format html` report and the console.
pub(crate) const SORT_JS: &str = include_str!("sort.js");
use std::io::Write;

use chrono::{DateTime, Duration, Utc};

pub use csv::CsvSink;
pub use explain_text::write_text as write_explanation;
pub use html::HtmlSink;
pub use json::JsonSink;
pub use rows::{Filter, ProblemRow, Row, RowEmail, When, Window};
pub use scan::{Sink, scan};
pub use summary::Summary;
pub use table::TableSink;

use crate::store::StoreError;

/// What can stop a report.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    /// Reading the database failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Writing the report failed (a closed pipe, a full disk for the spill file).
    #[error("writing the report: {0}")]
    Io(#[from] std::io::Error),
}

/// The output formats of `dry-run --format`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// Text for a 100-column terminal.
    Table,
    /// One JSON document (summary first).
    Json,
    /// One CSV record per row, header first.
    Csv,
    /// One self-contained HTML page.
    Html,
}

impl std::str::FromStr for Format {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "table" => Ok(Format::Table),
            "json" => Ok(Format::Json),
            "csv" => Ok(Format::Csv),
            "html" => Ok(Format::Html),
            other => Err(format!(
                "unknown format `{other}` (expected one of: table, json, csv, html)"
            )),
        }
    }
}

impl Format {
    /// The sink writing this format to `out`.
    pub fn sink<'a, W: Write + 'a>(self, out: W) -> std::io::Result<Box<dyn Sink + 'a>> {
        Ok(match self {
            Format::Table => Box::new(TableSink::new(out)?),
            Format::Json => Box::new(JsonSink::new(out)?),
            Format::Csv => Box::new(CsvSink::new(out)),
            Format::Html => Box::new(HtmlSink::new(out)?),
        })
    }
}

/// Parses a horizon such as `90m`, `36h`, `7d` or `2w` (a whole number and one unit).
///
/// ```
/// use cpor_worker::report::parse_horizon;
/// assert_eq!(parse_horizon("36h").unwrap(), chrono::Duration::hours(36));
/// assert_eq!(parse_horizon("2w").unwrap(), chrono::Duration::days(14));
/// assert!(parse_horizon("7").is_err());
/// assert!(parse_horizon("1é").is_err() && parse_horizon("€").is_err());
/// ```
pub fn parse_horizon(s: &str) -> Result<Duration, String> {
    let bad = || {
        format!(
            "horizon `{s}` is not a duration: use a whole number and m, h, d or w (e.g. 90m, 36h, 7d, 2w)"
        )
    };
    let s = s.trim();
    // Split before the last character (not byte): `1é` must be refused, not panic.
    let (num, unit) = s.split_at(s.char_indices().last().map_or(0, |(i, _)| i));
    let n: i64 = num.parse().map_err(|_| bad())?;
    if n < 0 {
        return Err(bad());
    }
    let d = match unit {
        "m" => Duration::try_minutes(n),
        "h" => Duration::try_hours(n),
        "d" => Duration::try_days(n),
        "w" => Duration::try_weeks(n),
        _ => None,
    };
    d.filter(|d| *d <= Duration::days(3660))
        .ok_or_else(|| format!("{}; at most 10 years", bad()))
}

/// An instant as `2026-12-23 14:00` (UTC), for tables.
pub(crate) fn short_utc(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%d %H:%M").to_string()
}

/// An RFC 3339 instant with offset as `2026-12-24 00:00 +01:00`, for tables (as given when it
/// does not parse).
pub(crate) fn short_local(rfc3339: &str) -> String {
    DateTime::parse_from_rfc3339(rfc3339)
        .map(|t| t.format("%Y-%m-%d %H:%M %:z").to_string())
        .unwrap_or_else(|_| rfc3339.to_owned())
}
