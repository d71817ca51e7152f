//! `--format csv`: a header, then one record per row as it is found (streamed: nothing is kept),
//! then the claims that cannot be processed and the dead-lettered emails. RFC 4180 quoting.

use std::io::{self, Write};

use chrono::{DateTime, Utc};

use super::rows::{ProblemRow, Row};
use super::scan::Sink;
use super::summary::Summary;
use crate::store::DeadEmail;

/// The header: stable column names, documented in `docs/reports.md`.
pub const HEADER: &[&str] = &[
    "record",
    "when",
    "claim_id",
    "status",
    "country",
    "timer",
    "started_at",
    "due_at",
    "last_day",
    "deadline_utc",
    "deadline_local",
    "time_zone",
    "business_days_left",
    "action",
    "outcome",
    "new_status",
    "sla_breach",
    "emails",
    "problem",
    "computed_with_older_calendars",
];

/// Writes CSV records as rows come.
pub struct CsvSink<W: Write> {
    out: W,
    header_written: bool,
}

impl<W: Write> CsvSink<W> {
    /// A sink writing to `out`.
    pub fn new(out: W) -> Self {
        CsvSink {
            out,
            header_written: false,
        }
    }

    fn header(&mut self) -> io::Result<()> {
        if !self.header_written {
            self.header_written = true;
            self.out.write_all(HEADER.join(",").as_bytes())?;
            self.out.write_all(b"\r\n")?;
        }
        Ok(())
    }

    fn record(&mut self, fields: &[String]) -> io::Result<()> {
        self.header()?;
        for (i, f) in fields.iter().enumerate() {
            if i > 0 {
                self.out.write_all(b",")?;
            }
            if f.contains([',', '"', '\n', '\r']) {
                write!(self.out, "\"{}\"", f.replace('"', "\"\""))?;
            } else {
                self.out.write_all(f.as_bytes())?;
            }
        }
        self.out.write_all(b"\r\n")
    }
}

fn t(v: Option<DateTime<Utc>>) -> String {
    v.map(|t| t.to_rfc3339()).unwrap_or_default()
}

impl<W: Write> Sink for CsvSink<W> {
    fn row(&mut self, r: &Row) -> io::Result<()> {
        let emails: Vec<String> = r
            .emails
            .iter()
            .map(|e| format!("{}:{}:{}", e.kind, e.locale, e.to))
            .collect();
        self.record(&[
            "timer".into(),
            serde_plain(&r.when),
            r.claim_id.clone(),
            r.status.to_string(),
            r.country.clone(),
            r.timer.to_string(),
            r.started_at.to_rfc3339(),
            r.due_at.to_rfc3339(),
            r.last_day.map(|d| d.to_string()).unwrap_or_default(),
            t(r.deadline_utc),
            r.deadline_local.clone().unwrap_or_default(),
            r.time_zone.clone(),
            r.business_days_left
                .map(|n| n.to_string())
                .unwrap_or_default(),
            r.action.clone(),
            r.outcome.clone(),
            r.new_status.map(|s| s.to_string()).unwrap_or_default(),
            r.sla_breach.to_string(),
            emails.join(";"),
            String::new(),
            r.computed_with_older_calendars.to_string(),
        ])
    }

    fn problem(&mut self, p: &ProblemRow) -> io::Result<()> {
        let mut f = vec![String::new(); HEADER.len()];
        f[0] = "problem".into();
        f[2] = p.claim_id.clone();
        f[18] = format!("{}: {}", p.kind, p.problem);
        self.record(&f)
    }

    fn finish(&mut self, _summary: &Summary, dead: &[DeadEmail]) -> io::Result<()> {
        for d in dead {
            let e = &d.email;
            let mut f = vec![String::new(); HEADER.len()];
            f[0] = "dead_email".into();
            f[2] = e.claim_id.clone();
            f[5] = e.timer.to_string();
            f[6] = e.start.to_rfc3339();
            f[17] = format!("{}:{}:{}", e.email, e.locale, e.to_address);
            f[18] = format!(
                "dead after {} attempts: {}",
                d.attempts,
                d.last_error.as_deref().unwrap_or("(no error recorded)")
            );
            self.record(&f)?;
        }
        self.header()?;
        self.out.flush()
    }
}

/// A unit enum variant's serde name (`now`, `horizon`).
fn serde_plain<T: serde::Serialize>(v: &T) -> String {
    match serde_json::to_value(v) {
        Ok(serde_json::Value::String(s)) => s,
        _ => String::new(),
    }
}
