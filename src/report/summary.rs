//! The report's summary: counts per action and per day, kept while rows stream past (its size
//! depends on the horizon's days and the actions, never on the number of claims).

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDate, Utc};
use serde::Serialize;

use super::rows::{ProblemRow, Row, When};

/// Counts of one action.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct ActionCount {
    /// On the pass at the report's instant.
    pub now: u64,
    /// Within the horizon.
    pub horizon: u64,
}

/// Counts of one day of the horizon (UTC date of the due instant).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct DayCount {
    /// All actions that day.
    pub total: u64,
    /// Per action.
    pub actions: BTreeMap<String, u64>,
}

/// What the report found, in numbers.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Summary {
    /// The instant the pass is previewed at.
    pub at: DateTime<Utc>,
    /// The end of the horizon.
    pub until: DateTime<Utc>,
    /// The horizon as given, e.g. `7d`.
    pub horizon: String,
    /// Claim rows read.
    pub claims_read: u64,
    /// Claims that passed the filters.
    pub claims_matched: u64,
    /// Rows due on the pass at `at`.
    pub rows_now: u64,
    /// Rows due within the horizon.
    pub rows_horizon: u64,
    /// Emails the rows send.
    pub emails: u64,
    /// SLA breaches raised on the pass at `at`.
    pub sla_breaches_now: u64,
    /// SLA breaches that will be raised within the horizon.
    pub sla_breaches_horizon: u64,
    /// Claims that cannot be processed.
    pub problems: u64,
    /// Dead-lettered emails.
    pub dead_emails: u64,
    /// Claims shown whose stored pending timers were computed with calendars other than those
    /// in force (their rows say `computed_with_older_calendars`).
    pub claims_computed_with_older_calendars: u64,
    /// Per action.
    pub by_action: BTreeMap<String, ActionCount>,
    /// Rows due on the pass at `at` (any due day, overdue included).
    pub due_now: DayCount,
    /// Rows within the horizon, by the UTC date they are due; every day of the horizon appears.
    pub by_day: BTreeMap<NaiveDate, DayCount>,
}

impl Summary {
    /// An empty summary for the window `[at, until]`, every horizon day present with 0.
    pub fn new(at: DateTime<Utc>, until: DateTime<Utc>, horizon: &str) -> Self {
        let mut by_day = BTreeMap::new();
        let mut d = at.date_naive();
        while d <= until.date_naive() {
            by_day.insert(d, DayCount::default());
            match d.succ_opt() {
                Some(n) => d = n,
                None => break,
            }
        }
        Summary {
            at,
            until,
            horizon: horizon.to_owned(),
            claims_read: 0,
            claims_matched: 0,
            rows_now: 0,
            rows_horizon: 0,
            emails: 0,
            sla_breaches_now: 0,
            sla_breaches_horizon: 0,
            problems: 0,
            dead_emails: 0,
            claims_computed_with_older_calendars: 0,
            by_action: BTreeMap::new(),
            due_now: DayCount::default(),
            by_day,
        }
    }

    /// Counts one row.
    pub fn add_row(&mut self, r: &Row) {
        let a = self.by_action.entry(r.action.clone()).or_default();
        let day = match r.when {
            When::Now => {
                a.now += 1;
                self.rows_now += 1;
                self.sla_breaches_now += u64::from(r.sla_breach);
                &mut self.due_now
            }
            When::Horizon => {
                a.horizon += 1;
                self.rows_horizon += 1;
                self.sla_breaches_horizon += u64::from(r.sla_breach);
                self.by_day.entry(r.due_at.date_naive()).or_default()
            }
        };
        day.total += 1;
        *day.actions.entry(r.action.clone()).or_default() += 1;
        self.emails += r.emails.len() as u64;
    }

    /// Counts one problem.
    pub fn add_problem(&mut self, _p: &ProblemRow) {
        self.problems += 1;
    }

    /// The chart's bars: `now`, then each horizon day (`MM-DD`), with their counts.
    pub fn bars(&self) -> Vec<(String, &DayCount)> {
        std::iter::once(("now".to_owned(), &self.due_now))
            .chain(
                self.by_day
                    .iter()
                    .map(|(d, c)| (d.format("%m-%d").to_string(), c)),
            )
            .collect()
    }
}
