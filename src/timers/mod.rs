//! Which timers a claim has at an instant (SPEC §4), when each is due, and in what state. Pure:
//! `tick`, `dry-run` and `explain` all call [`evaluate`]; nothing else decides what is due.

mod decision;
mod evaluate;
mod plan;
mod provenance;

use chrono::{DateTime, NaiveDate, Utc};
use chrono_tz::Tz;
use serde::Serialize;

use crate::calendar::{Calendar, CalendarError, DayCount, Deadline};
use crate::claim::Claim;
use crate::lifecycle::{ClaimStatus, id_enum};

pub use decision::{
    DECISION_SLA_DAYS, DecisionRun, Paused, StatusSeen, decision_run, decision_sla_runs_in,
};
pub use evaluate::evaluate;
pub use plan::{Blocked, ClaimPlan, Effect, EmailKind, EmailPlan, Outcome, Recipient, plan};
pub use provenance::{CalendarRef, SkippedDay, skipped_days};

/// Business days the partner has to answer an information request.
pub const PARTNER_RESPONSE_DAYS: u32 = 5;
/// Business days of each reviewer SLA.
pub const REVIEW_SLA_DAYS: u32 = 5;
/// Calendar days the customer has to decline after the consent email was sent (defined with
/// the email, whose delivery opens the window).
pub use crate::mail::CONSENT_WINDOW_DAYS;
/// Calendar days the partner has to dispute a rejection.
pub const DISPUTE_WINDOW_DAYS: u32 = 30;
/// How far after the evaluated instant an event timestamp may lie before the claim is reported
/// as bad data ([`TimerError::FutureTimestamp`]): clocks of the main system and the worker may
/// differ a little, but an event a day ahead of the clock did not happen yet.
pub const FUTURE_TOLERANCE: chrono::Duration = chrono::Duration::days(1);

id_enum!(
    /// The timers of SPEC §4 (plus the partner approval notice, the second half of consent_notification).
    TimerKind, "timer", {
        /// Review not started within 5 business days of submission.
        ReviewStartSla => "review_start_sla",
        /// No decision within 5 business days of the review's start.
        ReviewDecisionSla => "review_decision_sla",
        /// Reminder to the partner at the start of the response deadline's last day.
        PartnerResponseReminder => "partner_response_reminder",
        /// Auto-reject when the partner did not answer within 5 business days.
        PartnerResponseDeadline => "partner_response_deadline",
        /// Consent email to the customer once the claim is approved.
        ConsentNotification => "consent_notification",
        /// Approval email to the partner once the consent email was sent, naming the window's last day.
        PartnerApprovalNotice => "partner_approval_notice",
        /// Forward to incentive evaluation 7 calendar days after the consent email was sent.
        ConsentWindowClose => "consent_window_close",
        /// Reject with `customer_declined` when the customer declined.
        CustomerDecline => "customer_decline",
        /// One rejection email to the partner per rejection.
        RejectionNotice => "rejection_notice",
        /// Close the dispute window 30 calendar days after the rejection.
        DisputeWindowClose => "dispute_window_close",
        /// Reviewers did not answer a dispute within 5 business days.
        DisputeReviewSla => "dispute_review_sla",
        /// No decision within 10 business days of submission, partner-action rounds paused.
        DecisionSla => "decision_sla",
    }
);

impl TimerKind {
    /// A reviewer SLA (the ids ending in `_sla`): a breach alerts operations, nobody is emailed.
    pub fn is_sla(self) -> bool {
        self.as_str().ends_with("_sla")
    }
}

/// Where a timer stands at the evaluated instant.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum TimerState {
    /// The claim is not in the situation this timer runs in.
    NotApplicable {
        /// Why, in words.
        reason: String,
    },
    /// Running; not yet due.
    Pending,
    /// Due now: its action is taken on this pass.
    Due,
    /// Its action was taken.
    Fired {
        /// When.
        at: DateTime<Utc>,
        /// What happened.
        outcome: String,
    },
}

/// One timer of one claim.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Timer {
    /// Which timer.
    pub kind: TimerKind,
    /// The event it counts from (also what makes each run of a timer distinct).
    pub start: Option<DateTime<Utc>>,
    /// The instant it is due.
    pub due: Option<DateTime<Utc>>,
    /// The deadline it watches, with its last day, when it counts days.
    pub deadline: Option<DeadlineInfo>,
    /// The decision SLA's pauses (partner-action rounds); empty for other timers.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub paused: Vec<Paused>,
    /// Where it stands.
    #[serde(flatten)]
    pub state: TimerState,
}

/// A deadline as shown to people: last day inclusive, local, and the instant it passes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct DeadlineInfo {
    /// The event counted from.
    #[serde(serialize_with = "crate::rfc3339::instant")]
    pub from: DateTime<Utc>,
    /// The event's local date (d0).
    #[serde(serialize_with = "crate::rfc3339::date")]
    pub from_date: NaiveDate,
    /// The last day, inclusive, in `time_zone`.
    #[serde(serialize_with = "crate::rfc3339::date")]
    pub last_day: NaiveDate,
    /// The instant the deadline passes (the start of the next local day).
    #[serde(serialize_with = "crate::rfc3339::instant")]
    pub passes_at: DateTime<Utc>,
    /// The zone days were counted in.
    #[serde(serialize_with = "ser_tz")]
    pub time_zone: Tz,
    /// `business` or `calendar`.
    pub counting: &'static str,
    /// How many days.
    pub days: u32,
    /// Which rule gave `last_day`: `calendar` (counted), or `never_shorten_communicated` (the
    /// day already named in a sent email, later than the calendar in force now gives).
    pub rule: &'static str,
    /// The last day the calendar gives, when a rule other than `calendar` applied.
    #[serde(
        skip_serializing_if = "Option::is_none",
        serialize_with = "crate::rfc3339::opt_date"
    )]
    pub counted_last_day: Option<NaiveDate>,
}

/// [`DeadlineInfo::rule`] when the calendar's count stands.
pub const RULE_CALENDAR: &str = "calendar";
/// [`DeadlineInfo::rule`] when a communicated day was kept (setting
/// `calendar.never_shorten_communicated`).
pub const RULE_NEVER_SHORTEN: &str = "never_shorten_communicated";

fn ser_tz<S: serde::Serializer>(tz: &Tz, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(tz.name())
}

impl From<&Deadline> for DeadlineInfo {
    fn from(d: &Deadline) -> Self {
        let (counting, days) = match d.count {
            DayCount::Business(n) => ("business", n),
            DayCount::Calendar(n) => ("calendar", n),
        };
        DeadlineInfo {
            from: d.from,
            from_date: d.from_date,
            last_day: d.last_day,
            passes_at: d.due,
            time_zone: d.time_zone,
            counting,
            days,
            rule: RULE_CALENDAR,
            counted_last_day: None,
        }
    }
}

/// What the worker already did for a claim: its fired timers and the consent email's delivery.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ClaimFacts {
    /// Timers already fired or skipped, by kind and start.
    pub fired: Vec<FiredTimer>,
    /// Consent emails delivered: (the approval they were for, when delivered).
    pub consent_sent: Vec<(DateTime<Utc>, DateTime<Utc>)>,
    /// Consent emails dead-lettered, not (yet) delivered.
    pub consent_dead: Vec<DeadConsent>,
    /// Deadlines already named to a partner or customer in a sent email.
    pub communicated: Vec<Communicated>,
    /// The claim's status changes as observed (`cpor_status_timeline`), oldest first.
    pub timeline: Vec<StatusSeen>,
}

/// A deadline named in a sent email, as the timer run that watches it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Communicated {
    /// The timer whose deadline it is.
    pub timer: TimerKind,
    /// That timer run's start.
    pub start: DateTime<Utc>,
    /// The last day the email named.
    pub last_day: NaiveDate,
    /// The instant that day ended.
    pub passes_at: DateTime<Utc>,
}

/// A consent email that could not be delivered: the round cannot start until it is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeadConsent {
    /// The approval it was for (its run).
    pub approval: DateTime<Utc>,
    /// Where it was addressed.
    pub to_address: String,
    /// Why it was dead-lettered.
    pub error: Option<String>,
}

/// A timer run that has been acted on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FiredTimer {
    /// Which timer.
    pub kind: TimerKind,
    /// Its start (the run).
    pub start: DateTime<Utc>,
    /// When it fired.
    pub at: DateTime<Utc>,
    /// What happened (`fired`, `skipped: …`).
    pub outcome: String,
}

impl ClaimFacts {
    fn fired(&self, kind: TimerKind, start: DateTime<Utc>) -> Option<&FiredTimer> {
        self.fired
            .iter()
            .find(|f| f.kind == kind && f.start == start)
    }

    /// The latest deadline of the run (`kind`, `start`) named in a sent email.
    pub fn communicated(&self, kind: TimerKind, start: DateTime<Utc>) -> Option<&Communicated> {
        self.communicated
            .iter()
            .filter(|c| c.timer == kind && c.start == start)
            .max_by_key(|c| c.passes_at)
    }

    /// The dead-lettered consent email of the approval at `approved_at`, unless one was delivered.
    pub fn consent_dead(&self, approved_at: DateTime<Utc>) -> Option<&DeadConsent> {
        if self.consent_sent_at(approved_at).is_some() {
            return None;
        }
        self.consent_dead.iter().find(|d| d.approval == approved_at)
    }

    /// When the consent email for the approval at `approved_at` was delivered.
    pub fn consent_sent_at(&self, approved_at: DateTime<Utc>) -> Option<DateTime<Utc>> {
        self.consent_sent
            .iter()
            .find(|(approval, _)| *approval == approved_at)
            .map(|(_, sent)| *sent)
    }
}

/// The outcome recorded for a timer run held on first sight (`cpor_timers.outcome`, state
/// `held`): it counts as acted on (it never fires by itself) and stays a problem of its claim.
pub const HELD_ON_FIRST_SIGHT: &str =
    "held: it was long overdue when the worker first saw the claim";

/// Settings that shape timers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TimerSettings {
    /// Business days before the response deadline's last day that the reminder is due.
    pub reminder_lead_business_days: u32,
    /// On first sight of a claim, an obligation due longer ago than this is held for an
    /// operator instead of acted on (a deployment onto old data sends nothing stale).
    pub max_first_sight_age: chrono::Duration,
    /// A deadline already named in a sent email never moves earlier (setting
    /// `calendar.never_shorten_communicated`, default true).
    pub never_shorten_communicated: bool,
}

/// Why a claim's timers cannot be worked out; the claim is skipped and reported.
#[derive(Debug, thiserror::Error)]
pub enum TimerError {
    /// The claim's status needs a timestamp the row lacks.
    #[error("status `{status}` needs `{column}`, which is empty")]
    MissingTimestamp {
        /// The claim's status.
        status: ClaimStatus,
        /// The empty column.
        column: &'static str,
    },
    /// An event timestamp the timer counts from lies more than [`FUTURE_TOLERANCE`] after the
    /// evaluated instant. The worker re-examines the claim once the instant is within tolerance.
    #[error(
        "timestamp `{column}` ({at}) is in the future: more than {tolerance_hours} h after {now}"
    )]
    FutureTimestamp {
        /// The timer that counts from it.
        timer: TimerKind,
        /// The column.
        column: &'static str,
        /// Its value.
        at: DateTime<Utc>,
        /// The evaluated instant.
        now: DateTime<Utc>,
        /// [`FUTURE_TOLERANCE`] in hours, for the message.
        tolerance_hours: i64,
    },
    /// A due timer's email lacks what it must say or where it must go; nothing is recorded as
    /// sent until the claim's data is fixed.
    #[error("{timer} cannot send its email: {problem}")]
    EmailData {
        /// The timer whose email it is.
        timer: TimerKind,
        /// What is missing or wrong, naming the column.
        problem: String,
    },
    /// The day arithmetic failed (date out of the calendar's range, …).
    #[error("deadline of {timer}: {source}")]
    Calendar {
        /// The timer being computed.
        timer: TimerKind,
        /// Why.
        source: CalendarError,
    },
}

/// The zone a claim's days are counted in: its own, else its calendar's.
pub fn claim_time_zone(claim: &Claim, cal: &Calendar) -> Tz {
    claim.time_zone.unwrap_or_else(|| cal.time_zone())
}

impl Timer {
    /// True when this timer's action is due on this pass.
    pub fn is_due(&self) -> bool {
        self.state == TimerState::Due
    }
}

#[cfg(test)]
mod tests;
