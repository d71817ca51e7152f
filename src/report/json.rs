//! `--format json`: one JSON document, summary first — `{"summary", "rows", "problems",
//! "dead_emails"}`. Rows and problems are serialized as they come into spill files and copied
//! after the summary, so memory does not grow with them.

use std::io::{self, Write};

use serde::Serialize;

use super::rows::{ProblemRow, Row};
use super::scan::Sink;
use super::spill::Spill;
use super::summary::Summary;
use crate::store::DeadEmail;

/// Version of the JSON layout; bumped only on an incompatible change.
pub const JSON_VERSION: u32 = 1;

/// Writes one JSON document at the end, rows kept on disk meanwhile.
pub struct JsonSink<W: Write> {
    out: W,
    rows: Spill,
    problems: Spill,
}

impl<W: Write> JsonSink<W> {
    /// A sink writing to `out`.
    pub fn new(out: W) -> io::Result<Self> {
        Ok(JsonSink {
            out,
            rows: Spill::new()?,
            problems: Spill::new()?,
        })
    }
}

fn push<T: Serialize>(spill: &mut Spill, v: &T) -> io::Result<()> {
    let first = spill.is_empty();
    let w = spill.entry();
    if !first {
        w.write_all(b",\n")?;
    }
    serde_json::to_writer(w, v).map_err(io::Error::other)
}

/// A dead-lettered email as the JSON shows it.
#[derive(Serialize)]
struct DeadView<'a> {
    claim_id: &'a str,
    timer: String,
    started_at: String,
    email: String,
    to: &'a str,
    locale: &'a str,
    attempts: i32,
    last_error: Option<&'a str>,
}

/// The view of a dead-lettered email shared by JSON and HTML.
pub(super) fn dead_view(d: &DeadEmail) -> serde_json::Value {
    let e = &d.email;
    serde_json::to_value(DeadView {
        claim_id: &e.claim_id,
        timer: e.timer.to_string(),
        started_at: e.start.to_rfc3339(),
        email: e.email.to_string(),
        to: &e.to_address,
        locale: &e.locale,
        attempts: d.attempts,
        last_error: d.last_error.as_deref(),
    })
    .unwrap_or_default()
}

impl<W: Write> Sink for JsonSink<W> {
    fn row(&mut self, r: &Row) -> io::Result<()> {
        push(&mut self.rows, r)
    }

    fn problem(&mut self, p: &ProblemRow) -> io::Result<()> {
        push(&mut self.problems, p)
    }

    fn finish(&mut self, summary: &Summary, dead: &[DeadEmail]) -> io::Result<()> {
        write!(
            self.out,
            "{{\"report\":\"dry-run\",\"version\":{JSON_VERSION},\"summary\":"
        )?;
        serde_json::to_writer_pretty(&mut self.out, summary).map_err(io::Error::other)?;
        self.out.write_all(b",\n\"rows\":[\n")?;
        self.rows.drain_into(&mut self.out)?;
        self.out.write_all(b"\n],\n\"problems\":[\n")?;
        self.problems.drain_into(&mut self.out)?;
        self.out.write_all(b"\n],\n\"dead_emails\":[\n")?;
        for (i, d) in dead.iter().enumerate() {
            if i > 0 {
                self.out.write_all(b",\n")?;
            }
            serde_json::to_writer(&mut self.out, &dead_view(d)).map_err(io::Error::other)?;
        }
        self.out.write_all(b"\n]}\n")?;
        self.out.flush()
    }
}
