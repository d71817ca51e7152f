//! One claim → the rows of the dry-run report: each timer due at the report's instant (what a
//! pass at that instant does) and each timer due within the horizon after it (what the pass at
//! its due instant would do), or the problem that stops the claim. Pure.

use chrono::{DateTime, NaiveDate, Utc};
use serde::Serialize;

use crate::calendar::{Calendar, Calendars};
use crate::claim::Claim;
use crate::lifecycle::ClaimStatus;
use crate::store::ChangedClaim;
use crate::timers::{
    ClaimFacts, DeadlineInfo, Effect, EmailKind, Timer, TimerKind, TimerSettings, TimerState,
    evaluate, plan,
};

/// The instants a report covers: due at `at`, and due in `(at, until]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Window {
    /// The instant a pass is previewed at.
    pub at: DateTime<Utc>,
    /// The end of the horizon (inclusive).
    pub until: DateTime<Utc>,
}

/// Which claims a report shows.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Filter {
    /// Only this status.
    pub status: Option<ClaimStatus>,
    /// Only this country (upper case).
    pub country: Option<String>,
}

impl Filter {
    /// True when `claim` passes the filter.
    pub fn matches(&self, claim: &Claim) -> bool {
        self.status.is_none_or(|s| s == claim.status)
            && self
                .country
                .as_deref()
                .is_none_or(|c| c.eq_ignore_ascii_case(&claim.country))
    }

    /// True when no filter is set (then rows that cannot be parsed are shown too).
    pub fn is_empty(&self) -> bool {
        self.status.is_none() && self.country.is_none()
    }
}

/// When a row's action happens.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum When {
    /// On the pass at the report's instant (the timer is due, possibly overdue).
    Now,
    /// Later, within the horizon, on the first pass at or after the timer's due instant.
    Horizon,
}

/// An email a row's action sends.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct RowEmail {
    /// Which email (template).
    pub kind: EmailKind,
    /// Recipient address.
    pub to: String,
    /// The locale it is written in.
    pub locale: String,
}

/// One timer run the report previews.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Row {
    /// Now or within the horizon.
    pub when: When,
    /// The claim.
    pub claim_id: String,
    /// Its status.
    pub status: ClaimStatus,
    /// Its country.
    pub country: String,
    /// The timer.
    pub timer: TimerKind,
    /// The event the timer counts from.
    pub started_at: DateTime<Utc>,
    /// When the timer is due.
    pub due_at: DateTime<Utc>,
    /// The deadline's last day (inclusive, local), when the timer counts days.
    pub last_day: Option<NaiveDate>,
    /// The instant the deadline passes, UTC.
    pub deadline_utc: Option<DateTime<Utc>>,
    /// The same instant in the deadline's time zone (RFC 3339 with offset).
    pub deadline_local: Option<String>,
    /// The zone the days are counted in.
    pub time_zone: String,
    /// `business` or `calendar` days, when the timer counts days.
    pub counting: Option<&'static str>,
    /// How many days it counts.
    pub days: Option<u32>,
    /// Business days from the report instant's local date to the last day (negative: overdue).
    pub business_days_left: Option<i64>,
    /// The history action the pass writes, e.g. `auto_rejected`.
    pub action: String,
    /// `fired`, or `skipped: <why>`.
    pub outcome: String,
    /// The status the action moves the claim to.
    pub new_status: Option<ClaimStatus>,
    /// An SLA breach is raised.
    pub sla_breach: bool,
    /// The claim is forwarded to incentive evaluation.
    pub incentive: bool,
    /// Emails sent.
    pub emails: Vec<RowEmail>,
    /// The worker's stored pending timers of this claim were computed with calendars other than
    /// those in force: the next pass recomputes them, and this row's deadline is the new one.
    pub computed_with_older_calendars: bool,
}

impl Row {
    /// The outcome in the row's tense, for people: `fires` or `skips: <why>` on the pass at the
    /// report's instant, `will fire` or `will skip: <why>` for a row later in the horizon (a
    /// preview never says `fired`; JSON and CSV keep the machine value in [`Row::outcome`]).
    pub fn outcome_text(&self) -> String {
        let (fire, skip) = match self.when {
            When::Now => ("fires", "skips"),
            When::Horizon => ("will fire", "will skip"),
        };
        if self.outcome == "fired" {
            return fire.to_owned();
        }
        match self.outcome.strip_prefix("skipped") {
            Some(why) => format!("{skip}{why}"),
            None => self.outcome.clone(),
        }
    }
}

/// A claim the report (and the worker) cannot process.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ProblemRow {
    /// The claim.
    pub claim_id: String,
    /// `bad_row`, `unknown_country`, `timer_error`, or `held` (by an operator).
    pub kind: &'static str,
    /// What is wrong.
    pub problem: String,
}

/// What one claim contributes to the report.
#[derive(Clone, Debug, PartialEq)]
pub enum ClaimRows {
    /// Filtered out.
    Skipped,
    /// Its rows (possibly none).
    Rows(Vec<Row>),
    /// It cannot be processed.
    Problem(ProblemRow),
}

/// The report rows of one claim read in bulk.
pub fn claim_rows(
    c: &ChangedClaim,
    facts: &ClaimFacts,
    cals: &Calendars,
    settings: TimerSettings,
    window: Window,
    filter: &Filter,
) -> ClaimRows {
    let problem = |kind, problem: String| {
        ClaimRows::Problem(ProblemRow {
            claim_id: c.id.clone(),
            kind,
            problem,
        })
    };
    let claim = match &c.claim {
        Err(bad) if filter.is_empty() => return problem("bad_row", bad.problem.clone()),
        Err(_) => return ClaimRows::Skipped,
        Ok(claim) => claim,
    };
    if !filter.matches(claim) {
        return ClaimRows::Skipped;
    }
    let Some(cal) = cals.for_country(&claim.country) else {
        return problem(
            "unknown_country",
            format!("no holiday calendar serves country {}", claim.country),
        );
    };
    match rows_of(claim, cal, facts, settings, window) {
        Ok(rows) => ClaimRows::Rows(rows),
        Err(e) => problem("timer_error", e.to_string()),
    }
}

fn rows_of(
    claim: &Claim,
    cal: &Calendar,
    facts: &ClaimFacts,
    settings: TimerSettings,
    w: Window,
) -> Result<Vec<Row>, crate::timers::TimerError> {
    let timers = evaluate(claim, cal, facts, settings, w.at)?;
    let mut rows = Vec::new();
    if timers.iter().any(Timer::is_due) {
        let p = plan(claim, cal, &timers, w.at)?;
        if let Some(b) = p.blocked.first() {
            return Err(b.error());
        }
        for e in &p.effects {
            let t = timers.iter().find(|t| t.kind == e.timer);
            rows.push(row(
                claim,
                cal,
                w,
                When::Now,
                t,
                Some(e),
                e.timer,
                e.start,
                e.due,
            ));
        }
    }
    for t in &timers {
        let (TimerState::Pending, Some(start), Some(due)) = (&t.state, t.start, t.due) else {
            continue;
        };
        if due > w.until {
            continue;
        }
        // What the pass at the due instant would do: the same functions, at that instant.
        let later = evaluate(claim, cal, facts, settings, due)?;
        let p = plan(claim, cal, &later, due)?;
        let e = p
            .effects
            .iter()
            .find(|e| e.timer == t.kind && e.start == start);
        rows.push(row(
            claim,
            cal,
            w,
            When::Horizon,
            Some(t),
            e,
            t.kind,
            start,
            due,
        ));
    }
    Ok(rows)
}

#[allow(clippy::too_many_arguments)]
fn row(
    claim: &Claim,
    cal: &Calendar,
    w: Window,
    when: When,
    timer: Option<&Timer>,
    effect: Option<&Effect>,
    kind: TimerKind,
    start: DateTime<Utc>,
    due: DateTime<Utc>,
) -> Row {
    let dl: Option<&DeadlineInfo> = timer.and_then(|t| t.deadline.as_ref());
    let tz = dl
        .map(|d| d.time_zone)
        .unwrap_or_else(|| crate::timers::claim_time_zone(claim, cal));
    let today = w.at.with_timezone(&tz).date_naive();
    let (action, outcome) = match effect {
        Some(e) => (e.history.action.clone(), e.outcome.label()),
        None => (
            "not_reached".to_owned(),
            "skipped: an earlier action changes the claim's status first".to_owned(),
        ),
    };
    Row {
        when,
        claim_id: claim.id.clone(),
        status: claim.status,
        country: claim.country.clone(),
        timer: kind,
        started_at: start,
        due_at: due,
        last_day: dl.map(|d| d.last_day),
        deadline_utc: dl.map(|d| d.passes_at),
        deadline_local: dl.map(|d| d.passes_at.with_timezone(&tz).to_rfc3339()),
        time_zone: tz.name().to_owned(),
        counting: dl.map(|d| d.counting),
        days: dl.map(|d| d.days),
        business_days_left: dl.and_then(|d| cal.business_days_between(today, d.last_day).ok()),
        action,
        outcome,
        new_status: effect.and_then(|e| e.status_change.as_ref().map(|s| s.to)),
        sla_breach: effect.is_some_and(|e| e.sla_alert),
        incentive: effect.is_some_and(|e| e.incentive),
        emails: effect
            .map(|e| {
                e.emails
                    .iter()
                    .map(|m| RowEmail {
                        kind: m.kind,
                        to: m.to.address.clone(),
                        locale: m.locale.clone(),
                    })
                    .collect()
            })
            .unwrap_or_default(),
        computed_with_older_calendars: false,
    }
}

/// A row as the report shows CPOR-100006's Swedish response deadline (5 business days over
/// Christmas, passing 2027-01-04 23:00 UTC), for the sinks' tests.
#[cfg(test)]
pub(crate) fn sample_row(when: When, outcome: &str) -> Row {
    let utc = |s: &str| s.parse::<DateTime<Utc>>().expect("test instant");
    Row {
        when,
        claim_id: "CPOR-100006".into(),
        status: ClaimStatus::PartnerActionRequired,
        country: "SE".into(),
        timer: TimerKind::PartnerResponseDeadline,
        started_at: utc("2026-12-23T10:00:00Z"),
        due_at: utc("2027-01-04T23:00:00Z"),
        last_day: NaiveDate::from_ymd_opt(2027, 1, 4),
        deadline_utc: Some(utc("2027-01-04T23:00:00Z")),
        deadline_local: Some("2027-01-05T00:00:00+01:00".into()),
        time_zone: "Europe/Stockholm".into(),
        counting: Some("business"),
        days: Some(5),
        business_days_left: Some(4),
        action: "auto_rejected".into(),
        outcome: outcome.into(),
        new_status: Some(ClaimStatus::Rejected),
        sla_breach: false,
        incentive: false,
        emails: vec![RowEmail {
            kind: EmailKind::ClaimRejected,
            to: "claims@nordljus.example".into(),
            locale: "sv-SE".into(),
        }],
        computed_with_older_calendars: false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_preview_says_what_will_happen_never_fired() {
        let text = |w, o| sample_row(w, o).outcome_text();
        assert_eq!(text(When::Now, "fired"), "fires");
        assert_eq!(text(When::Horizon, "fired"), "will fire");
        assert_eq!(
            text(When::Horizon, "skipped: the claim was approved"),
            "will skip: the claim was approved"
        );
        assert_eq!(text(When::Now, "skipped: held"), "skips: held");
    }
}
