//! The end-to-end decision SLA of the source: a decision (approved or rejected) within
//! [`DECISION_SLA_DAYS`] business days of submission, the clock paused while the claim waits
//! for the partner (`partner_action_required`). Built from the claim's status timeline. Pure.

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::ClaimFacts;
use crate::calendar::{Calendar, CalendarError};
use crate::claim::Claim;
use crate::lifecycle::ClaimStatus;
use chrono_tz::Tz;

/// Business days from submission to a decision, pauses excluded.
pub const DECISION_SLA_DAYS: u32 = 10;

/// One status change the worker observed (a row of `cpor_status_timeline`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StatusSeen {
    /// When (the event time the main system gave the new status, else when it was recorded).
    pub at: DateTime<Utc>,
    /// The status before, if known.
    pub old: Option<ClaimStatus>,
    /// The status after.
    pub new: Option<ClaimStatus>,
}

/// A stretch of the partner's time, which does not count towards the decision SLA.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Paused {
    /// When the claim entered `partner_action_required`.
    pub from: DateTime<Utc>,
    /// When it left it (None: still paused).
    pub to: Option<DateTime<Utc>>,
    /// Business days the pause adds: those after `from`'s local date up to and including
    /// `to`'s (the same counting as a deadline, so a pause within one day adds none).
    pub business_days: u32,
}

/// The decision SLA's current run: when it started and its pauses so far.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DecisionRun {
    /// The submission it counts from.
    pub start: DateTime<Utc>,
    /// Partner-action rounds since then, in order.
    pub paused: Vec<Paused>,
}

impl DecisionRun {
    /// True while the claim waits for the partner.
    pub fn is_paused(&self) -> bool {
        self.paused.last().is_some_and(|p| p.to.is_none())
    }

    /// Business days added by the finished pauses.
    pub fn paused_days(&self) -> u32 {
        self.paused.iter().map(|p| p.business_days).sum()
    }
}

/// The decision SLA's run for `claim` from `facts.timeline`: it starts at the latest
/// submission that did not answer an information request (a resubmission continues the run)
/// and ends with a decision; without a timeline it starts at `submitted_at`, unpaused.
pub fn decision_run(
    claim: &Claim,
    cal: &Calendar,
    tz: Tz,
    facts: &ClaimFacts,
) -> Result<Option<DecisionRun>, CalendarError> {
    use ClaimStatus as S;
    let mut start: Option<DateTime<Utc>> = None;
    let mut open: Vec<(DateTime<Utc>, Option<DateTime<Utc>>)> = Vec::new();
    let mut timeline = facts.timeline.clone();
    timeline.sort_by_key(|s| s.at);
    for s in &timeline {
        match s.new {
            Some(S::Submitted) if s.old != Some(S::PartnerActionRequired) => {
                start = Some(s.at);
                open.clear();
            }
            Some(S::Approved | S::Rejected | S::Draft) => {
                start = None;
                open.clear();
            }
            Some(S::PartnerActionRequired) if start.is_some() => open.push((s.at, None)),
            _ => {}
        }
        if s.old == Some(S::PartnerActionRequired)
            && let Some(last) = open.last_mut().filter(|p| p.1.is_none())
        {
            last.1 = Some(s.at);
        }
    }
    let start = match start.or(claim.submitted_at) {
        Some(s) => s,
        None => return Ok(None),
    };
    if open.is_empty()
        && claim.status == S::PartnerActionRequired
        && let Some(asked) = claim.info_requested_at.filter(|at| *at >= start)
    {
        open.push((asked, None));
    }
    let day = |t: DateTime<Utc>| t.with_timezone(&tz).date_naive();
    let mut paused = Vec::new();
    for (from, to) in open {
        let business_days = match to {
            Some(to) => {
                u32::try_from(cal.business_days_between(day(from), day(to))?.max(0)).unwrap_or(0)
            }
            None => 0,
        };
        paused.push(Paused {
            from,
            to,
            business_days,
        });
    }
    Ok(Some(DecisionRun { start, paused }))
}
