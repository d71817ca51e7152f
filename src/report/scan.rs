//! Every claim, page by page (`claims_page` + `facts`), turned into rows and handed to a sink as
//! they come: memory holds one page, the summary and what the sink chooses to keep.

use std::collections::{HashMap, HashSet};

use crate::calendar::Calendars;
use crate::store::{ChangedClaim, DeadEmail, Hold, Repairs, Store};
use crate::timers::{ClaimFacts, TimerSettings};

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

/// A page of claims, their facts, and those whose stored timers used other calendars.
type Page = (
    Vec<ChangedClaim>,
    HashMap<String, ClaimFacts>,
    HashSet<String>,
);

async fn fetch<S: Store>(store: &S, after: String, fingerprint: &str) -> Result<Page, ReportError> {
    let page = store.claims_page(&after, PAGE).await?;
    let ids: Vec<String> = page.iter().map(|c| c.id.clone()).collect();
    let facts = store.facts(&ids).await?;
    let older = match (ids.first(), ids.last()) {
        (Some(first), Some(last)) => store
            .older_calendar_claims(fingerprint, first, last)
            .await?
            .into_iter()
            .collect(),
        _ => HashSet::new(),
    };
    Ok((page, facts, older))
}

/// The rows of each claim of a page, in page order, computed on two threads (pure work).
fn evaluate_page(
    page: &[ChangedClaim],
    facts: &HashMap<String, ClaimFacts>,
    input: &ScanInput<'_>,
) -> Vec<ClaimRows> {
    let none = ClaimFacts::default();
    let one = |c: &ChangedClaim| {
        let f = facts.get(&c.id).unwrap_or(&none);
        claim_rows(
            c,
            f,
            input.calendars,
            input.settings,
            input.window,
            input.filter,
        )
    };
    if page.len() < 64 {
        return page.iter().map(one).collect();
    }
    let (a, b) = page.split_at(page.len() / 2);
    std::thread::scope(|s| {
        let second = s.spawn(|| b.iter().map(one).collect::<Vec<_>>());
        let mut rows: Vec<ClaimRows> = a.iter().map(one).collect();
        // A panic in the helper thread is a bug in pure code: re-raise it here.
        match second.join() {
            Ok(more) => rows.extend(more),
            Err(panic) => std::panic::resume_unwind(panic),
        }
        rows
    })
}

/// Reads every claim in pages, writes its rows to `sink`, then the summary and dead-lettered
/// emails; `progress` is told how many claims have been read after each page. A claim an
/// operator holds shows as a `held` problem (with who, since when and why) instead of its rows:
/// none of them fires while it is held.
pub async fn scan<S: Repairs>(
    store: &S,
    input: &ScanInput<'_>,
    sink: &mut dyn Sink,
    progress: &dyn Fn(u64),
) -> Result<Summary, ReportError> {
    let w = input.window;
    let mut summary = Summary::new(w.at, w.until, input.horizon);
    // A database not yet migrated to the holds table has no holds.
    let holds: HashMap<String, Hold> = store
        .holds(None)
        .await
        .unwrap_or_default()
        .into_iter()
        .map(|h| (h.claim_id.clone(), h))
        .collect();
    let fingerprint = input.calendars.fingerprint();
    let fingerprint = fingerprint.as_str();
    let mut next = Some(fetch(store, String::new(), fingerprint).await?);
    while let Some((page, facts, older)) = next.take() {
        let Some(last) = page.last() else { break };
        let more = page.len() as i64 == PAGE;
        let last_id = last.id.clone();
        // The next page is read while this one is evaluated and written.
        let fetch_next = async {
            if more {
                fetch(store, last_id, fingerprint).await.map(Some)
            } else {
                Ok(None)
            }
        };
        let work = async {
            for rows in evaluate_page(&page, &facts, input) {
                summary.claims_read += 1;
                match rows {
                    ClaimRows::Skipped => {}
                    ClaimRows::Rows(rows)
                        if rows
                            .first()
                            .is_some_and(|r| holds.contains_key(&r.claim_id)) =>
                    {
                        summary.claims_matched += 1;
                        let h = &holds[&rows[0].claim_id];
                        let p = ProblemRow {
                            claim_id: h.claim_id.clone(),
                            kind: "held",
                            problem: format!(
                                "held by {} since {}: {}; none of its {} timer run(s) fires until it is released",
                                h.held_by,
                                h.held_at.to_rfc3339(),
                                h.reason,
                                rows.len()
                            ),
                        };
                        summary.add_problem(&p);
                        sink.problem(&p)?;
                    }
                    ClaimRows::Rows(mut rows) => {
                        summary.claims_matched += 1;
                        if rows.first().is_some_and(|r| older.contains(&r.claim_id)) {
                            summary.claims_computed_with_older_calendars += 1;
                            for r in &mut rows {
                                r.computed_with_older_calendars = true;
                            }
                        }
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
            Ok::<(), ReportError>(())
        };
        let (fetched, worked) = tokio::join!(fetch_next, work);
        worked?;
        next = fetched?;
    }
    let dead = store.dead_emails().await?;
    summary.dead_emails = dead.len() as u64;
    sink.finish(&summary, &dead)?;
    Ok(summary)
}
