//! What the due timers of one claim do: status changes, history rows, emails, incentive requests
//! and alerts, decided purely from the claim, its timers and the instant.

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use serde::Serialize;

use super::provenance::{CalendarRef, skipped_days};
use super::{
    CONSENT_WINDOW_DAYS, DISPUTE_WINDOW_DAYS, DeadlineInfo, Timer, TimerError, TimerKind,
    claim_time_zone,
};
use crate::calendar::{Calendar, DayCount, Deadline, deadline};
use crate::claim::Claim;
use crate::json_text::JsonText;
use crate::lifecycle::{Actor, ClaimStatus, RejectionReason};
use crate::lifecycle::{HistoryEntry, StatusChange};
pub use crate::mail::{EmailKind, EmailPlan, Recipient};

/// Whether a due timer's action was taken or deliberately skipped.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "outcome", content = "why", rename_all = "snake_case")]
pub enum Outcome {
    /// The action was taken.
    Fired,
    /// Nothing was sent or changed, for the reason given (recorded so it never fires later).
    Skipped(String),
}

impl Outcome {
    /// `fired`, or `skipped: <why>`, as stored.
    pub fn label(&self) -> String {
        match self {
            Outcome::Fired => "fired".to_owned(),
            Outcome::Skipped(why) => format!("skipped: {why}"),
        }
    }
}

/// One due timer's effects, all written in one transaction.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Effect {
    /// The timer.
    pub timer: TimerKind,
    /// Its start (identifies the run).
    pub start: DateTime<Utc>,
    /// The instant it was due.
    pub due: DateTime<Utc>,
    /// Taken or skipped.
    pub outcome: Outcome,
    /// A status change, for auto-rejections.
    #[serde(skip)]
    pub status_change: Option<StatusChange>,
    /// The history row.
    #[serde(skip)]
    pub history: HistoryEntry,
    /// Emails to send.
    pub emails: Vec<EmailPlan>,
    /// Forward to incentive evaluation.
    pub incentive: bool,
    /// An SLA breach to raise.
    pub sla_alert: bool,
    /// Other timer runs this effect settles (the rejection notice sent with an auto-rejection).
    pub settles: Vec<(TimerKind, DateTime<Utc>)>,
    /// The deadline its email names (to respond, to decline, to dispute), if any.
    pub announced: Option<DeadlineInfo>,
}

/// The effects of one claim's due timers at one instant.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ClaimPlan {
    /// The claim.
    pub claim_id: String,
    /// The status the plan was made for.
    pub expected_status: ClaimStatus,
    /// The version the plan was made for.
    pub expected_version: i64,
    /// The calendar used.
    pub calendar: String,
    /// In due order; stops after a status change (later timers would be stale).
    pub effects: Vec<Effect>,
    /// Due timers that cannot act until the claim's data is fixed (nothing is recorded for them).
    pub blocked: Vec<Blocked>,
}

/// A due timer whose email lacks what it needs: a named problem of the claim, not an action.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Blocked {
    /// The timer.
    pub timer: TimerKind,
    /// Its start (the run).
    pub start: DateTime<Utc>,
    /// What must be fixed, naming the column.
    pub problem: String,
}

impl Blocked {
    /// The problem as the claim's error, as `dry-run` and `explain` report it.
    pub fn error(&self) -> TimerError {
        TimerError::EmailData {
            timer: self.timer,
            problem: self.problem.clone(),
        }
    }
}

/// Decides what the due timers among `timers` do at `now`.
pub fn plan(
    claim: &Claim,
    cal: &Calendar,
    timers: &[Timer],
    now: DateTime<Utc>,
) -> Result<ClaimPlan, TimerError> {
    let tz = claim_time_zone(claim, cal);
    let mut due: Vec<(&Timer, DateTime<Utc>, DateTime<Utc>)> = timers
        .iter()
        .filter(|t| t.is_due())
        .filter_map(|t| Some((t, t.start?, t.due?)))
        .collect();
    due.sort_by_key(|(_, _, due)| *due);
    let mut effects = Vec::new();
    let mut blocked = Vec::new();
    for (t, start, due) in due {
        let planned = Planner {
            claim,
            cal,
            tz,
            timers,
            now,
        }
        .effect(t, start, due);
        let effect = match planned {
            Ok(effect) => effect,
            // Only this timer waits for the data to be fixed; the claim's others go on.
            Err(TimerError::EmailData { timer, problem }) => {
                blocked.push(Blocked {
                    timer,
                    start,
                    problem,
                });
                continue;
            }
            Err(e) => return Err(e),
        };
        let changes_status = effect.status_change.is_some();
        effects.push(effect);
        if changes_status {
            break;
        }
    }
    Ok(ClaimPlan {
        claim_id: claim.id.clone(),
        expected_status: claim.status,
        expected_version: claim.version,
        calendar: cal.id().to_owned(),
        effects,
        blocked,
    })
}

struct Planner<'a> {
    claim: &'a Claim,
    cal: &'a Calendar,
    tz: Tz,
    timers: &'a [Timer],
    now: DateTime<Utc>,
}

impl Planner<'_> {
    fn email(&self, kind: EmailKind, to_customer: bool) -> EmailPlan {
        let c = self.claim;
        let (name, address) = if to_customer {
            (&c.customer_name, &c.customer_email)
        } else {
            (&c.partner_name, &c.partner_email)
        };
        EmailPlan {
            kind,
            to: Recipient {
                name: name.clone(),
                address: address.clone(),
            },
            locale: locale_with_region(
                if to_customer {
                    c.customer_email_locale()
                } else {
                    &c.locale
                },
                &c.country,
            ),
            claim_id: c.id.clone(),
            partner_name: c.partner_name.clone(),
            customer_name: c.customer_name.clone(),
            products: c.products.clone(),
            info_request_reason: None,
            rejection_reason: None,
            last_day: None,
            window_end: None,
            time_zone: self.tz.name().to_owned(),
        }
    }

    /// A calendar-day window opening now.
    fn window_from_now(&self, timer: TimerKind, days: u32) -> Result<Deadline, TimerError> {
        deadline(self.cal, self.tz, self.now, DayCount::Calendar(days))
            .map_err(|source| TimerError::Calendar { timer, source })
    }

    /// An email naming the deadline `d` as its last day.
    fn email_naming(&self, kind: EmailKind, to_customer: bool, d: &DeadlineInfo) -> EmailPlan {
        let mut e = self.email(kind, to_customer);
        e.last_day = Some(d.last_day);
        e.window_end = Some(d.passes_at);
        e
    }

    fn deadline_of(&self, kind: TimerKind) -> Option<&super::DeadlineInfo> {
        self.timers
            .iter()
            .find(|t| t.kind == kind)
            .and_then(|t| t.deadline.as_ref())
    }

    /// Why a decline at `declined` is not acted on: it came after the consent window of the
    /// current approval closed, or only after the claim was forwarded.
    fn decline_not_acted_on(&self, declined: DateTime<Utc>) -> Option<String> {
        let close = self
            .timers
            .iter()
            .find(|t| t.kind == TimerKind::ConsentWindowClose)?;
        let window = close.deadline.as_ref()?;
        if declined >= window.passes_at {
            Some(format!(
                "the customer declined at {}, after the consent window closed (last day {})",
                declined.to_rfc3339(),
                window.last_day
            ))
        } else if matches!(close.state, super::TimerState::Fired { .. }) {
            Some(
                "the decline was recorded after the claim had been forwarded to incentive \
                 evaluation; an operator must decide"
                    .to_owned(),
            )
        } else {
            None
        }
    }

    fn effect(
        &self,
        t: &Timer,
        start: DateTime<Utc>,
        due: DateTime<Utc>,
    ) -> Result<Effect, TimerError> {
        use TimerKind as K;
        let mut e = Effect {
            timer: t.kind,
            start,
            due,
            outcome: Outcome::Fired,
            status_change: None,
            history: HistoryEntry {
                claim_id: self.claim.id.clone(),
                occurred_at: self.now,
                actor: Actor::System,
                action: String::new(),
                details: JsonText::default(),
            },
            emails: Vec::new(),
            incentive: false,
            sla_alert: false,
            settles: Vec::new(),
            announced: None,
        };
        let mut reason: Option<&str> = None;
        // The deadline a row without its own is about (the dispute window of a skipped notice).
        let mut about: Option<DeadlineInfo> = None;
        let action = match t.kind {
            K::ReviewStartSla | K::ReviewDecisionSla | K::DisputeReviewSla | K::DecisionSla => {
                e.sla_alert = true;
                "sla_breached"
            }
            K::PartnerResponseReminder => {
                let response = self
                    .deadline_of(K::PartnerResponseDeadline)
                    .or(t.deadline.as_ref());
                match response {
                    Some(d) if self.now >= d.passes_at => {
                        e.outcome = Outcome::Skipped(
                            "the response deadline passed before the reminder could be sent".into(),
                        );
                        "reminder_skipped"
                    }
                    _ => {
                        let mut m = self.email(EmailKind::PartnerResponseReminder, false);
                        m.info_request_reason = self.claim.info_request_reason;
                        m.last_day = response.map(|d| d.last_day);
                        m.window_end = response.map(|d| d.passes_at);
                        e.emails.push(m);
                        e.announced = response.cloned();
                        "reminder_sent"
                    }
                }
            }
            K::CustomerDecline if let Some(why) = self.decline_not_acted_on(start) => {
                e.outcome = Outcome::Skipped(why);
                "customer_decline_ignored"
            }
            K::PartnerResponseDeadline | K::CustomerDecline => {
                let (r, action) = if t.kind == K::CustomerDecline {
                    (
                        RejectionReason::CustomerDeclined,
                        "customer_decline_applied",
                    )
                } else {
                    (RejectionReason::NoPartnerResponse, "auto_rejected")
                };
                // The worker rejects: the rejection email goes with it, settling the notice.
                e.status_change = Some(StatusChange {
                    to: ClaimStatus::Rejected,
                    rejection_reason: Some(r),
                });
                let window =
                    DeadlineInfo::from(&self.window_from_now(t.kind, DISPUTE_WINDOW_DAYS)?);
                let mut m = self.email_naming(EmailKind::ClaimRejected, false, &window);
                m.rejection_reason = Some(r);
                e.emails.push(m);
                e.announced = Some(window);
                e.settles.push((K::RejectionNotice, self.now));
                reason = Some(r.as_str());
                action
            }
            K::ConsentNotification => {
                let window =
                    DeadlineInfo::from(&self.window_from_now(t.kind, CONSENT_WINDOW_DAYS)?);
                e.emails
                    .push(self.email_naming(EmailKind::ConsentRequest, true, &window));
                e.announced = Some(window);
                "consent_requested"
            }
            K::PartnerApprovalNotice => {
                let window = self.deadline_of(K::ConsentWindowClose);
                let mut m = self.email(EmailKind::PartnerApprovalNotice, false);
                m.last_day = window.map(|d| d.last_day);
                m.window_end = window.map(|d| d.passes_at);
                e.emails.push(m);
                e.announced = window.cloned();
                "approval_notice_sent"
            }
            K::ConsentWindowClose => {
                e.incentive = true;
                e.emails
                    .push(self.email(EmailKind::ForwardedToIncentiveEvaluation, false));
                "forwarded_to_incentive_evaluation"
            }
            K::RejectionNotice => {
                // The dispute window counts from the rejection, whether or not a dispute is open.
                let window = deadline(
                    self.cal,
                    self.tz,
                    start,
                    DayCount::Calendar(DISPUTE_WINDOW_DAYS),
                )
                .map_err(|source| TimerError::Calendar {
                    timer: t.kind,
                    source,
                })?;
                let window = DeadlineInfo::from(&window);
                about = Some(window.clone());
                if self.claim.disputed_rejection().is_some() {
                    e.outcome =
                        Outcome::Skipped("the partner has already disputed the rejection".into());
                    "rejection_notice_skipped"
                } else if self.now >= window.passes_at {
                    e.outcome = Outcome::Skipped("the dispute window had already closed".into());
                    "rejection_notice_skipped"
                } else {
                    let mut m = self.email_naming(EmailKind::ClaimRejected, false, &window);
                    m.rejection_reason = self.claim.rejection_reason;
                    e.emails.push(m);
                    e.announced = Some(window);
                    reason = self.claim.rejection_reason.map(RejectionReason::as_str);
                    "rejection_notice_sent"
                }
            }
            K::DisputeWindowClose => "dispute_window_closed",
        };
        for m in &e.emails {
            check_email(m).map_err(|problem| TimerError::EmailData {
                timer: t.kind,
                problem,
            })?;
        }
        e.history.action = action.to_owned();
        // The deadline the row is about: the timer's own, else the one its email names, else
        // (an immediate timer with no email, e.g. a decline not acted on) the consent window.
        let shown = t
            .deadline
            .clone()
            .or_else(|| e.announced.clone())
            .or(about)
            .or_else(|| self.deadline_of(K::ConsentWindowClose).cloned());
        let skipped = shown
            .as_ref()
            .map(|d| skipped_days(self.cal, d))
            .unwrap_or_default();
        e.history.details = JsonText::of(&FiredDetails {
            timer: t.kind,
            start,
            due,
            deadline: shown.as_ref(),
            announced: e.announced.as_ref(),
            calendar: CalendarRef::from(self.cal),
            skipped,
            paused: &t.paused,
            time_zone: self.tz.name(),
            reason,
            outcome: e.outcome.label(),
        });
        Ok(e)
    }
}

/// The `details` of the history row a fired or skipped timer writes: what it acted on and how
/// its deadline was counted.
#[derive(Serialize)]
struct FiredDetails<'a> {
    timer: TimerKind,
    #[serde(serialize_with = "crate::rfc3339::instant")]
    start: DateTime<Utc>,
    #[serde(serialize_with = "crate::rfc3339::instant")]
    due: DateTime<Utc>,
    deadline: Option<&'a DeadlineInfo>,
    announced: Option<&'a DeadlineInfo>,
    calendar: CalendarRef,
    skipped: Vec<super::provenance::SkippedDay>,
    paused: &'a [super::Paused],
    time_zone: &'a str,
    reason: Option<&'a str>,
    outcome: String,
}

/// The locale an email is written in: the claim's, with the claim's country as the region when
/// the locale names none (`en` in Sweden is `en-SE`: English words, day-month order), so dates
/// follow where the reader is rather than CLDR's default region for the language.
fn locale_with_region(locale: &str, country: &str) -> String {
    if locale.contains('-') || country.is_empty() {
        locale.to_owned()
    } else {
        format!("{locale}-{country}")
    }
}

/// Checks that an email has what its template must say and an address it can go to, so that
/// an action is never recorded as sent with an email that cannot be.
fn check_email(m: &EmailPlan) -> Result<(), String> {
    let column = if m.kind == EmailKind::ConsentRequest {
        "customer_email"
    } else {
        "partner_email"
    };
    crate::claim::check_address(&m.to.address).map_err(|e| format!("column {column}: {e}"))?;
    let needs = |ok: bool, what: &str| {
        if ok {
            Ok(())
        } else {
            Err(format!("{} needs {what}, which is empty", m.kind))
        }
    };
    match m.kind {
        EmailKind::PartnerResponseReminder => needs(
            m.info_request_reason.is_some(),
            "column info_request_reason",
        ),
        EmailKind::ClaimRejected => needs(m.rejection_reason.is_some(), "column rejection_reason"),
        _ => Ok(()),
    }
}
