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
    #[serde(serialize_with = "crate::rfc3339::instant")]
    pub from: DateTime<Utc>,
    /// When it left it (None: still paused).
    #[serde(serialize_with = "crate::rfc3339::opt_instant")]
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

/// True when the decision SLA runs for a claim in `status`: the only timer that reads the
/// status timeline, so a claim in any other status is evaluated without reading it.
pub fn decision_sla_runs_in(status: ClaimStatus) -> bool {
    matches!(
        status,
        ClaimStatus::Submitted | ClaimStatus::UnderReview | ClaimStatus::PartnerActionRequired
    )
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
    // The status before each change: as recorded, else the one observed before it (a writer
    // that replaces rows, e.g. SQLite's INSERT OR REPLACE, records inserts only).
    let mut prev: Option<ClaimStatus> = None;
    for s in &timeline {
        let before = s.old.or(prev);
        prev = s.new;
        match s.new {
            Some(S::Submitted) if before != Some(S::PartnerActionRequired) => {
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
        if before == Some(S::PartnerActionRequired)
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::calendar::Calendars;
    use crate::claim::ClaimRow;

    fn t(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    fn seen(at: &str, old: Option<ClaimStatus>, new: ClaimStatus) -> StatusSeen {
        StatusSeen {
            at: t(at),
            old,
            new: Some(new),
        }
    }

    #[test]
    fn two_rounds_add_the_partners_business_days_and_an_open_round_pauses() {
        use ClaimStatus as S;
        let cals = Calendars::builtin().unwrap();
        let se = cals.for_country("SE").unwrap();
        let claim = |status: &str| {
            Claim::try_from(ClaimRow {
                id: "c1".into(),
                status: status.into(),
                country: Some("SE".into()),
                submitted_at: Some(t("2027-02-15T10:00:00Z")),
                ..ClaimRow::default()
            })
            .unwrap()
        };
        let mut facts = ClaimFacts {
            timeline: vec![
                seen("2027-02-01T09:00:00Z", None, S::Submitted),
                seen(
                    "2027-02-03T10:00:00Z",
                    Some(S::UnderReview),
                    S::PartnerActionRequired,
                ),
                // Recorded as an insert (no old status): still a resubmission.
                seen("2027-02-05T10:00:00Z", None, S::Submitted),
                seen(
                    "2027-02-09T10:00:00Z",
                    Some(S::UnderReview),
                    S::PartnerActionRequired,
                ),
                seen(
                    "2027-02-15T10:00:00Z",
                    Some(S::PartnerActionRequired),
                    S::Submitted,
                ),
            ],
            ..ClaimFacts::default()
        };
        let run = decision_run(&claim("submitted"), se, se.time_zone(), &facts)
            .unwrap()
            .unwrap();
        assert_eq!(run.start, t("2027-02-01T09:00:00Z"));
        let days: Vec<u32> = run.paused.iter().map(|p| p.business_days).collect();
        assert_eq!(days, [2, 4]);
        assert!(!run.is_paused());
        facts.timeline.push(seen(
            "2027-02-17T10:00:00Z",
            Some(S::UnderReview),
            S::PartnerActionRequired,
        ));
        let run = decision_run(
            &claim("partner_action_required"),
            se,
            se.time_zone(),
            &facts,
        )
        .unwrap()
        .unwrap();
        assert!(run.is_paused());
        assert_eq!(run.paused_days(), 6);
        // A decision ends the run; a new submission starts another.
        facts.timeline.push(seen(
            "2027-02-18T10:00:00Z",
            Some(S::PartnerActionRequired),
            S::Rejected,
        ));
        facts
            .timeline
            .push(seen("2027-03-01T10:00:00Z", Some(S::Draft), S::Submitted));
        let run = decision_run(&claim("submitted"), se, se.time_zone(), &facts)
            .unwrap()
            .unwrap();
        assert_eq!(run.start, t("2027-03-01T10:00:00Z"));
        assert!(run.paused.is_empty());
    }
}
