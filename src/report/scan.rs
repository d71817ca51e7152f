//! Every claim, page by page (`claims_page` + `facts`), turned into rows and handed to a sink as
//! they come: memory holds one page, the summary and what the sink chooses to keep.

use crate::calendar::Calendars;
use crate::store::{DeadEmail, Store};
use crate::timers::TimerSettings;

use super::rows::{ClaimRows, Filter, ProblemRow, Row, Window, claim_rows};
use super::{ReportError, Summary};

/// Claims read per page.
pub const PAGE: i64 = 2000;

/// Where report rows go, as they are found.
pub trait Sink {
    /// One timer row.
    fn row(&mut self, row: &Row) -> std::io::Result<()>;
    /// One claim that cannot be processed.
    fn problem(&mut self, p: &ProblemRow) -> std::io::Result<()>;
    /// The end: the summary is complete; the dead-lettered emails.
    fn finish(&mut self, summary: &Summary, dead: &[DeadEmail]) -> std::io::Result<()>;
}

/// What a scan needs besides the store and the sink.
pub struct ScanInput<'a> {
    /// Calendars in force.
    pub calendars: &'a Calendars,
    /// Timer settings in force.
    pub settings: TimerSettings,
    /// The report's instants.
    pub window: Window,
    /// The horizon as given (for the summary).
    pub horizon: &'a str,
    /// Which claims.
    pub filter: &'a Filter,
}

/// Reads every claim in pages, writes its rows to `sink`, then the summary and dead-lettered
/// emails; `progress` is told how many claims have been read after each page.
pub async fn scan<S: Store>(
    store: &S,
    input: &ScanInput<'_>,
    sink: &mut dyn Sink,
    progress: &dyn Fn(u64),
) -> Result<Summary, ReportError> {
    let w = input.window;
    let mut summary = Summary::new(w.at, w.until, input.horizon);
    let mut after = String::new();
    loop {
        let page = store.claims_page(&after, PAGE).await?;
        let Some(last) = page.last() else { break };
        after = last.id.clone();
        let ids: Vec<String> = page.iter().map(|c| c.id.clone()).collect();
        let facts = store.facts(&ids).await?;
        let none = Default::default();
        for c in &page {
            summary.claims_read += 1;
            let f = facts.get(&c.id).unwrap_or(&none);
            match claim_rows(c, f, input.calendars, input.settings, w, input.filter) {
                ClaimRows::Skipped => {}
                ClaimRows::Rows(rows) => {
                    summary.claims_matched += 1;
                    for r in &rows {
                        summary.add_row(r);
                        sink.row(r)?;
                    }
                }
                ClaimRows::Problem(p) => {
                    summary.claims_matched += 1;
                    summary.add_problem(&p);
                    sink.problem(&p)?;
                }
            }
        }
        progress(summary.claims_read);
        if (page.len() as i64) < PAGE {
            break;
        }
    }
    let dead = store.dead_emails().await?;
    summary.dead_emails = dead.len() as u64;
    sink.finish(&summary, &dead)?;
    Ok(summary)
}
