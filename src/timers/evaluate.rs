//! The evaluator: every timer of one claim at an instant, with its state and deadline (pure).

use chrono::{DateTime, Utc};
use chrono_tz::Tz;

use super::{
    CONSENT_WINDOW_DAYS, ClaimFacts, DECISION_SLA_DAYS, DISPUTE_WINDOW_DAYS, DeadlineInfo,
    DecisionRun, FUTURE_TOLERANCE, PARTNER_RESPONSE_DAYS, REVIEW_SLA_DAYS, RULE_NEVER_SHORTEN,
    Timer, TimerError, TimerKind, TimerSettings, TimerState, claim_time_zone, decision_run,
};
use crate::calendar::{Calendar, DayCount, Deadline, deadline, start_of_local_day};
use crate::claim::Claim;
use crate::lifecycle::ClaimStatus;

/// Every timer of `claim` at `now`, in SPEC §4 order, each with its state.
///
/// ```
/// use chrono::{DateTime, Utc};
/// use cpor_worker::calendar::Calendars;
/// use cpor_worker::claim::{Claim, ClaimRow};
/// use cpor_worker::timers::{evaluate, ClaimFacts, TimerKind, TimerSettings, TimerState};
///
/// let cals = Calendars::builtin().unwrap();
/// let at = |s: &str| Some(s.parse::<DateTime<Utc>>().unwrap());
/// let claim = Claim::try_from(ClaimRow {
///     id: "c1".into(),
///     status: "partner_action_required".into(),
///     country: Some("SE".into()),
///     info_requested_at: at("2026-12-23T14:00:00Z"),
///     ..ClaimRow::default()
/// })
/// .unwrap();
/// let settings = TimerSettings { reminder_lead_business_days: 0, max_first_sight_age: chrono::Duration::days(14), never_shorten_communicated: true };
/// let now = "2027-01-05T23:00:00Z".parse().unwrap();
/// let timers = evaluate(&claim, cals.for_country("SE").unwrap(), &ClaimFacts::default(), settings, now).unwrap();
/// let deadline = timers.iter().find(|t| t.kind == TimerKind::PartnerResponseDeadline).unwrap();
/// assert_eq!(deadline.state, TimerState::Due);
/// assert_eq!(deadline.deadline.as_ref().unwrap().last_day.to_string(), "2027-01-05");
/// ```
pub fn evaluate(
    claim: &Claim,
    cal: &Calendar,
    facts: &ClaimFacts,
    settings: TimerSettings,
    now: DateTime<Utc>,
) -> Result<Vec<Timer>, TimerError> {
    let tz = claim_time_zone(claim, cal);
    let ev = Evaluator {
        claim,
        cal,
        tz,
        facts,
        now,
        never_shorten: settings.never_shorten_communicated,
    };
    // Pushed into a vector of the right size: collecting the results grew one from nothing,
    // copying every timer (176 bytes) on each growth, twice per claim in a fire batch.
    let mut timers = Vec::with_capacity(TimerKind::ALL.len());
    for kind in TimerKind::ALL {
        timers.push(ev.timer(*kind, settings)?);
    }
    Ok(timers)
}

/// Evaluates the timers of one claim.
struct Evaluator<'a> {
    claim: &'a Claim,
    cal: &'a Calendar,
    tz: Tz,
    facts: &'a ClaimFacts,
    now: DateTime<Utc>,
    never_shorten: bool,
}

/// A customer's decline as it bears on the current approval.
enum Decline {
    /// No decline recorded.
    None,
    /// Declined before the current approval: it belonged to an earlier round.
    Earlier,
    /// Declined within the consent window (or before the consent email went out).
    InWindow(DateTime<Utc>),
    /// Declined at or after the end of the consent window, or recorded only after the claim was
    /// forwarded: reported, not acted on.
    Late(DateTime<Utc>),
}

/// How one timer starts and counts, before its state is known.
enum Shape {
    NotApplicable(String),
    /// Due `count` after `start` (immediately when `count` is None).
    Counting(DateTime<Utc>, Option<DayCount>),
    /// The reminder: due at the start of a day before the deadline.
    Reminder(DateTime<Utc>),
    /// The decision SLA: its run, with the pauses that extend it.
    Decision(DecisionRun),
}

impl Evaluator<'_> {
    fn need(
        &self,
        v: Option<DateTime<Utc>>,
        column: &'static str,
    ) -> Result<DateTime<Utc>, TimerError> {
        v.ok_or(TimerError::MissingTimestamp {
            status: self.claim.status,
            column,
        })
    }

    /// `at` (the value of `column`, which `kind` counts from), unless it lies in the future.
    fn not_future(
        &self,
        kind: TimerKind,
        at: DateTime<Utc>,
        column: &'static str,
    ) -> Result<DateTime<Utc>, TimerError> {
        if at > self.now + FUTURE_TOLERANCE {
            return Err(TimerError::FutureTimestamp {
                timer: kind,
                column,
                at,
                now: self.now,
                tolerance_hours: FUTURE_TOLERANCE.num_hours(),
            });
        }
        Ok(at)
    }

    /// The event timestamp `column` that `kind` counts from: present, and not in the future.
    fn event(
        &self,
        kind: TimerKind,
        v: Option<DateTime<Utc>>,
        column: &'static str,
    ) -> Result<DateTime<Utc>, TimerError> {
        self.not_future(kind, self.need(v, column)?, column)
    }

    fn shape(&self, kind: TimerKind) -> Result<Shape, TimerError> {
        use ClaimStatus as S;
        use TimerKind as K;
        let c = self.claim;
        let na = |why: &str| Ok(Shape::NotApplicable(why.to_owned()));
        let business = |n| Some(DayCount::Business(n));
        let calendar = |n| Some(DayCount::Calendar(n));
        match kind {
            K::ReviewStartSla if c.status == S::Submitted => Ok(Shape::Counting(
                self.event(kind, c.submitted_at, "submitted_at")?,
                business(REVIEW_SLA_DAYS),
            )),
            K::ReviewStartSla => na("runs while the claim is submitted"),
            K::ReviewDecisionSla if c.status == S::UnderReview => Ok(Shape::Counting(
                self.event(kind, c.review_started_at, "review_started_at")?,
                business(REVIEW_SLA_DAYS),
            )),
            K::ReviewDecisionSla => na("runs while the claim is under review"),
            K::PartnerResponseReminder | K::PartnerResponseDeadline
                if c.status == S::PartnerActionRequired =>
            {
                let start = self.event(kind, c.info_requested_at, "info_requested_at")?;
                Ok(if kind == K::PartnerResponseReminder {
                    Shape::Reminder(start)
                } else {
                    Shape::Counting(start, business(PARTNER_RESPONSE_DAYS))
                })
            }
            K::PartnerResponseReminder | K::PartnerResponseDeadline => {
                na("runs while partner action is required")
            }
            K::ConsentNotification | K::PartnerApprovalNotice | K::ConsentWindowClose
                if c.status != S::Approved =>
            {
                na("runs while the claim is approved")
            }
            K::ConsentNotification | K::PartnerApprovalNotice | K::ConsentWindowClose
                if matches!(self.decline(kind)?, Decline::InWindow(_)) =>
            {
                na("the customer declined")
            }
            K::ConsentNotification => Ok(Shape::Counting(
                self.event(kind, c.approved_at, "approved_at")?,
                None,
            )),
            K::PartnerApprovalNotice | K::ConsentWindowClose => {
                let approved = self.event(kind, c.approved_at, "approved_at")?;
                match self.facts.consent_sent_at(approved) {
                    None => na("waits for the consent email to be sent"),
                    Some(sent) if kind == K::PartnerApprovalNotice => {
                        Ok(Shape::Counting(sent, None))
                    }
                    Some(sent) => Ok(Shape::Counting(sent, calendar(CONSENT_WINDOW_DAYS))),
                }
            }
            K::CustomerDecline if c.status != S::Approved => na("runs while the claim is approved"),
            // A late decline is due too: the plan records it as not acted on (SPEC §4: seven days).
            K::CustomerDecline => match self.decline(kind)? {
                Decline::InWindow(at) | Decline::Late(at) => Ok(Shape::Counting(
                    self.not_future(kind, at, "customer_declined_at")?,
                    None,
                )),
                Decline::Earlier => na("the decline belongs to an earlier approval"),
                Decline::None => na("the customer has not declined"),
            },
            K::RejectionNotice | K::DisputeWindowClose | K::DisputeReviewSla
                if c.status != S::Rejected =>
            {
                na("runs while the claim is rejected")
            }
            K::RejectionNotice => Ok(Shape::Counting(
                self.event(kind, c.rejected_at, "rejected_at")?,
                None,
            )),
            K::DisputeWindowClose => {
                let rejected = self.event(kind, c.rejected_at, "rejected_at")?;
                if c.disputed_rejection().is_some() {
                    na("a dispute of this rejection was opened")
                } else {
                    Ok(Shape::Counting(rejected, calendar(DISPUTE_WINDOW_DAYS)))
                }
            }
            K::DecisionSla if !super::decision::decision_sla_runs_in(c.status) => {
                na("runs from submission until a decision")
            }
            K::DecisionSla => {
                let run = decision_run(c, self.cal, self.tz, self.facts).map_err(|source| {
                    TimerError::Calendar {
                        timer: kind,
                        source,
                    }
                })?;
                let Some(run) = run else {
                    return na("no submission recorded (submitted_at is empty)");
                };
                let run = DecisionRun {
                    start: self.not_future(kind, run.start, "submitted_at")?,
                    ..run
                };
                if let Some(p) = run.paused.last().filter(|_| run.is_paused()) {
                    return na(&format!(
                        "paused: waiting for the partner since {} ({} earlier round(s), {} business day(s) added)",
                        p.from.to_rfc3339(),
                        run.paused.len() - 1,
                        run.paused_days()
                    ));
                }
                Ok(Shape::Decision(run))
            }
            K::DisputeReviewSla => match c.disputed_rejection() {
                None => na("no dispute of this rejection is open"),
                Some(_) if c.dispute_resolved_at >= c.dispute_opened_at => {
                    na("the dispute was resolved")
                }
                Some(opened) => Ok(Shape::Counting(
                    self.not_future(kind, opened, "dispute_opened_at")?,
                    business(REVIEW_SLA_DAYS),
                )),
            },
        }
    }

    /// The consent window of the current approval (its start and deadline), once its consent
    /// email was delivered.
    fn consent_window(
        &self,
        kind: TimerKind,
    ) -> Result<Option<(DateTime<Utc>, Deadline)>, TimerError> {
        let sent = self
            .claim
            .approved_at
            .and_then(|approved| self.facts.consent_sent_at(approved));
        sent.map(|sent| {
            self.deadline(kind, sent, DayCount::Calendar(CONSENT_WINDOW_DAYS))
                .map(|d| (sent, d))
        })
        .transpose()
    }

    /// The customer's decline, judged against the current approval and its consent window.
    fn decline(&self, kind: TimerKind) -> Result<Decline, TimerError> {
        let c = self.claim;
        let Some(at) = c.customer_declined_at else {
            return Ok(Decline::None);
        };
        if c.approved_at.is_some_and(|approved| at < approved) {
            return Ok(Decline::Earlier);
        }
        Ok(match self.consent_window(kind)? {
            Some((_, window)) if at >= window.due => Decline::Late(at),
            Some((sent, _))
                if self
                    .facts
                    .fired(TimerKind::ConsentWindowClose, sent)
                    .is_some() =>
            {
                Decline::Late(at)
            }
            _ => Decline::InWindow(at),
        })
    }

    fn deadline(
        &self,
        kind: TimerKind,
        start: DateTime<Utc>,
        count: DayCount,
    ) -> Result<Deadline, TimerError> {
        deadline(self.cal, self.tz, start, count).map_err(|source| TimerError::Calendar {
            timer: kind,
            source,
        })
    }

    fn timer(&self, kind: TimerKind, settings: TimerSettings) -> Result<Timer, TimerError> {
        let (start, due, dl) = match self.shape(kind)? {
            Shape::NotApplicable(reason) => {
                return Ok(Timer {
                    kind,
                    start: None,
                    due: None,
                    deadline: None,
                    paused: Vec::new(),
                    state: TimerState::NotApplicable { reason },
                });
            }
            Shape::Counting(start, None) => (start, start, None),
            Shape::Counting(start, Some(count)) => {
                let d = self.deadline(kind, start, count)?;
                let info = self.kept(kind, start, DeadlineInfo::from(&d));
                let timer = self.finish(kind, start, info.passes_at, Some(info));
                return Ok(timer);
            }
            Shape::Decision(run) => {
                let days = DECISION_SLA_DAYS + run.paused_days();
                let d = self.deadline(kind, run.start, DayCount::Business(days))?;
                let info = DeadlineInfo::from(&d);
                let mut timer = self.finish(kind, run.start, info.passes_at, Some(info));
                timer.paused = run.paused;
                return Ok(timer);
            }
            Shape::Reminder(start) => {
                let d = self.deadline(kind, start, DayCount::Business(PARTNER_RESPONSE_DAYS))?;
                let lead = settings
                    .reminder_lead_business_days
                    .min(PARTNER_RESPONSE_DAYS - 1);
                let day = self
                    .cal
                    .add_business_days(d.from_date, PARTNER_RESPONSE_DAYS - lead)
                    .and_then(|day| start_of_local_day(day, self.tz))
                    .map_err(|source| TimerError::Calendar {
                        timer: kind,
                        source,
                    })?;
                (start, day, Some(d))
            }
        };
        Ok(self.finish(kind, start, due, dl.as_ref().map(DeadlineInfo::from)))
    }

    /// The deadline `d` of run (`kind`, `start`), unless a sent email named a later last day
    /// and `never_shorten` holds: then that day, with the rule that kept it.
    fn kept(&self, kind: TimerKind, start: DateTime<Utc>, d: DeadlineInfo) -> DeadlineInfo {
        match self.facts.communicated(kind, start) {
            Some(c) if self.never_shorten && c.passes_at > d.passes_at => DeadlineInfo {
                counted_last_day: Some(d.last_day),
                last_day: c.last_day,
                passes_at: c.passes_at,
                rule: RULE_NEVER_SHORTEN,
                ..d
            },
            _ => d,
        }
    }

    fn finish(
        &self,
        kind: TimerKind,
        start: DateTime<Utc>,
        due: DateTime<Utc>,
        deadline: Option<DeadlineInfo>,
    ) -> Timer {
        let state = match self.facts.fired(kind, start) {
            Some(f) => TimerState::Fired {
                at: f.at,
                outcome: f.outcome.clone(),
            },
            None if due <= self.now => TimerState::Due,
            None => TimerState::Pending,
        };
        Timer {
            kind,
            start: Some(start),
            due: Some(due),
            deadline,
            paused: Vec::new(),
            state,
        }
    }
}
