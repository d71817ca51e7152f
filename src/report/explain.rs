//! `explain`: one claim's timers at an instant — every kind, the reason when one does not apply,
//! its start, deadline and state, and for business-day deadlines each day from d0+1 to the last
//! day, counted or skipped and why (weekend, or the holiday's name). Pure.

use chrono::{DateTime, Datelike, NaiveDate, Utc, Weekday};
use serde::Serialize;

use crate::calendar::Calendar;
use crate::claim::Claim;
use crate::lifecycle::ClaimStatus;
use crate::store::{HistoryEntry, OutboxEmail};
use crate::timers::{
    ClaimFacts, DeadlineInfo, Paused, TimerError, TimerKind, TimerSettings, TimerState,
    claim_time_zone, evaluate, plan,
};

/// One day between d0 and a deadline's last day.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct DayLine {
    /// The local date.
    pub date: NaiveDate,
    /// True when it counts as a business day.
    pub counted: bool,
    /// Which business day it is (1-based) when counted.
    pub number: Option<u32>,
    /// Why it was skipped: `weekend`, `holiday`, both, or `paused` (the partner's time).
    pub skipped_because: Option<String>,
    /// The holiday on that day, as "Local name (English name)".
    pub holiday: Option<String>,
    /// The whole line in words, e.g. "Thu 24 Dec 2026 skipped: Julafton (Christmas Eve)".
    pub text: String,
}

/// What a due timer does on the pass at the explained instant.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct DueAction {
    /// The history action.
    pub action: String,
    /// `fired` or `skipped: …`.
    pub outcome: String,
    /// Emails: `kind (locale) -> address`.
    pub emails: Vec<String>,
}

/// One timer explained.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct TimerExplanation {
    /// Which timer.
    pub timer: TimerKind,
    /// `not_applicable`, `pending`, `due` or `fired`.
    pub state: &'static str,
    /// Why it does not apply, or what happened when it fired.
    pub note: Option<String>,
    /// When it fired.
    pub fired_at: Option<DateTime<Utc>>,
    /// The event it counts from.
    pub start: Option<DateTime<Utc>>,
    /// The instant it is due.
    pub due: Option<DateTime<Utc>>,
    /// The deadline it watches.
    pub deadline: Option<DeadlineInfo>,
    /// How the days were counted, in words.
    pub counting: Option<String>,
    /// The decision SLA's pauses (the partner's time), each adding business days.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub paused: Vec<Paused>,
    /// d0+1 ..= last day, for business-day deadlines.
    pub days: Vec<DayLine>,
    /// What it does now, when due.
    pub due_action: Option<DueAction>,
}

/// The claim as explain shows it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ClaimHeader {
    /// Id.
    pub id: String,
    /// Status.
    pub status: ClaimStatus,
    /// Country.
    pub country: String,
    /// Calendar id.
    pub calendar: String,
    /// The calendar's version ([`Calendar::version`]), as history rows record it.
    pub calendar_version: String,
    /// The zone days are counted in (and whether it is the claim's own).
    pub time_zone: String,
    /// True when the zone is the claim's own, false when it is the calendar's.
    pub own_time_zone: bool,
    /// Locale.
    pub locale: String,
    /// Version.
    pub version: i64,
}

/// An outbox email of the claim, with its delivery state.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct EmailLine {
    /// Which email.
    pub email: String,
    /// The timer that sent it.
    pub timer: String,
    /// Recipient.
    pub to: String,
    /// Locale.
    pub locale: String,
    /// `pending`, `sent`, `dead`, …
    pub state: String,
}

/// Everything `explain` shows about one claim.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Explanation {
    /// The instant explained.
    pub at: DateTime<Utc>,
    /// The claim.
    pub claim: ClaimHeader,
    /// Every timer kind, in SPEC order.
    pub timers: Vec<TimerExplanation>,
    /// The claim's history, oldest first.
    pub history: Vec<HistoryEntry>,
    /// The claim's outbox emails, oldest first.
    pub emails: Vec<EmailLine>,
}

/// Explains `claim`'s timers at `at` (history and emails are added by [`with_records`](Explanation::with_records)).
pub fn explain(
    claim: &Claim,
    cal: &Calendar,
    facts: &ClaimFacts,
    settings: TimerSettings,
    at: DateTime<Utc>,
) -> Result<Explanation, TimerError> {
    let timers = evaluate(claim, cal, facts, settings, at)?;
    let planned = plan(claim, cal, &timers, at)?;
    if let Some(b) = planned.blocked.first() {
        return Err(b.error());
    }
    let tz = claim_time_zone(claim, cal);
    let explained = timers
        .iter()
        .map(|t| {
            let (state, note, fired_at) = match &t.state {
                TimerState::NotApplicable { reason } => {
                    ("not_applicable", Some(reason.clone()), None)
                }
                TimerState::Pending => ("pending", None, None),
                TimerState::Due => ("due", None, None),
                TimerState::Fired { at, outcome } => ("fired", Some(outcome.clone()), Some(*at)),
            };
            let due_action =
                planned
                    .effects
                    .iter()
                    .find(|e| e.timer == t.kind)
                    .map(|e| DueAction {
                        action: e.history.action.clone(),
                        outcome: e.outcome.label(),
                        emails: e
                            .emails
                            .iter()
                            .map(|m| format!("{} ({}) -> {}", m.kind, m.locale, m.to.address))
                            .collect(),
                    });
            let (counting, days) = match &t.deadline {
                Some(d) => counted(cal, d, t.kind, &t.paused),
                None if t.start.is_some() => (
                    Some("due immediately when it starts".to_owned()),
                    Vec::new(),
                ),
                None => (None, Vec::new()),
            };
            TimerExplanation {
                timer: t.kind,
                state,
                note,
                fired_at,
                start: t.start,
                due: t.due,
                deadline: t.deadline.clone(),
                counting,
                paused: t.paused.clone(),
                days,
                due_action,
            }
        })
        .collect();
    Ok(Explanation {
        at,
        claim: ClaimHeader {
            id: claim.id.clone(),
            status: claim.status,
            country: claim.country.clone(),
            calendar: cal.id().to_owned(),
            calendar_version: cal.version(),
            time_zone: tz.name().to_owned(),
            own_time_zone: claim.time_zone.is_some(),
            locale: claim.locale.clone(),
            version: claim.version,
        },
        timers: explained,
        history: Vec::new(),
        emails: Vec::new(),
    })
}

impl Explanation {
    /// Adds the claim's history and outbox emails (with their states).
    pub fn with_records(
        mut self,
        history: Vec<HistoryEntry>,
        emails: Vec<(OutboxEmail, String)>,
    ) -> Self {
        self.history = history;
        self.emails = emails
            .into_iter()
            .map(|(e, state)| EmailLine {
                email: e.email.to_string(),
                timer: e.timer.to_string(),
                to: e.to_address,
                locale: e.locale,
                state,
            })
            .collect();
        self
    }
}

/// A date as "Thu 24 Dec 2026".
pub fn long_day(d: NaiveDate) -> String {
    d.format("%a %-d %b %Y").to_string()
}

fn counted(
    cal: &Calendar,
    d: &DeadlineInfo,
    kind: TimerKind,
    paused: &[Paused],
) -> (Option<String>, Vec<DayLine>) {
    let from = long_day(d.from_date);
    let last = long_day(d.last_day);
    let reminder = if kind == TimerKind::PartnerResponseReminder {
        " (the reminder is due at the start of a day before the response deadline passes)"
    } else {
        ""
    };
    if d.counting != "business" {
        let text = format!(
            "{} calendar days after d0 = {from} ({}): every day counts; last day {last}, passes at the start of the next day{reminder}",
            d.days, d.time_zone
        );
        return (Some(text), Vec::new());
    }
    // A pause adds the business days after its first local date up to and including its last
    // (as `decision_run` counts them): those are the partner's, not counted towards the SLA.
    let local = |t: DateTime<Utc>| t.with_timezone(&d.time_zone).date_naive();
    let pauses: Vec<(NaiveDate, NaiveDate)> = paused
        .iter()
        .filter_map(|p| Some((local(p.from), local(p.to?))))
        .collect();
    let is_paused = |date: NaiveDate| pauses.iter().any(|(a, b)| *a < date && date <= *b);
    let added: u32 = paused.iter().map(|p| p.business_days).sum();
    let own = d.days.saturating_sub(added);
    let text = if added == 0 {
        format!(
            "{} business days after d0 = {from} ({}, calendar {}): the {}th business day strictly after d0 is {last}; the deadline passes at the start of the next local day{reminder}",
            d.days,
            d.time_zone,
            cal.id(),
            d.days
        )
    } else {
        format!(
            "{own} business days after d0 = {from} ({}, calendar {}), plus {added} paused business day(s) of the partner's: the {}th business day strictly after d0 is {last}; the deadline passes at the start of the next local day",
            d.time_zone,
            cal.id(),
            d.days
        )
    };
    let mut days = Vec::new();
    let mut n = 0;
    let mut day = d.from_date.succ_opt();
    while let Some(date) = day.filter(|x| *x <= d.last_day) {
        let weekend = matches!(date.weekday(), Weekday::Sat | Weekday::Sun);
        let holiday = cal.holiday(date).map(|h| match &h.local_name {
            Some(local) if **local != *h.name => format!("{local} ({})", h.name),
            _ => h.name.to_string(),
        });
        let business = cal.is_business_day(date);
        let counted = business && !is_paused(date);
        let (why, text) = if counted {
            n += 1;
            (
                None,
                format!("{} counted: business day {n} of {own}", long_day(date)),
            )
        } else if business {
            (
                Some("paused"),
                format!(
                    "{} skipped: paused (partner action required)",
                    long_day(date)
                ),
            )
        } else {
            match (weekend, &holiday) {
                (true, Some(h)) => (
                    Some("weekend, holiday"),
                    format!(
                        "{} skipped: weekend ({}), also {h}",
                        long_day(date),
                        date.weekday()
                    ),
                ),
                (true, None) => (
                    Some("weekend"),
                    format!("{} skipped: weekend ({})", long_day(date), date.weekday()),
                ),
                (false, Some(h)) => (Some("holiday"), format!("{} skipped: {h}", long_day(date))),
                (false, None) => (
                    Some("holiday"),
                    format!("{} skipped: not a business day", long_day(date)),
                ),
            }
        };
        days.push(DayLine {
            date,
            counted,
            number: counted.then_some(n),
            skipped_because: why.map(str::to_owned),
            holiday,
            text,
        });
        day = date.succ_opt();
    }
    (Some(text), days)
}
