//! Turning one claim's timers into the writes of a pass: the same [`evaluate`] and [`plan`] that
//! `dry-run` and `explain` show, then the claim's pending timers recomputed for its new state.

use chrono::{DateTime, Utc};

use crate::calendar::Calendars;
use crate::claim::{Claim, check_address, shorten};
use crate::lifecycle::{Actor, ClaimStatus};
use crate::store::{
    ChangedClaim, ClaimWrite, FireInput, HistoryEntry, OutboxEmail, Requeue, SyncedClaim, TimerRow,
    message_id,
};
use crate::timers::{
    CalendarRef, ClaimFacts, ClaimPlan, EmailKind, FUTURE_TOLERANCE, FiredTimer,
    HELD_ON_FIRST_SIGHT, TimerError, TimerKind, TimerSettings, TimerState, evaluate, plan,
};

/// What one claim came to in a fire batch, for the pass's tally and log.
#[derive(Clone, Debug, PartialEq)]
pub enum Decided {
    /// Effects were written (possibly none if nothing was due after all). The plan's history
    /// details and emails were moved into the write, not copied: they are empty here.
    Acted(ClaimPlan),
    /// The claim changed since its timers were computed: recomputed, nothing fired.
    Changed,
    /// The claim cannot be used; recorded as a problem, nothing fired.
    Problem(String),
    /// The claim row is gone; its timers were dropped.
    Gone,
}

/// The pending timers of a claim as the worker would index them, or the problem that prevents it.
pub fn sync_claim(
    calendars: &Calendars,
    settings: TimerSettings,
    claim: &ChangedClaim,
    facts: &ClaimFacts,
    now: DateTime<Utc>,
) -> SyncedClaim {
    let (mut pending, mut problem, requeue) = match &claim.claim {
        Err(bad) => (Vec::new(), Some(bad.problem.clone()), None),
        Ok(c) => {
            let (pending, problem) = pending_timers(calendars, settings, c, facts, now);
            let (dead, requeue) = dead_consent(calendars, c, facts, now);
            (pending, join(problem, dead), requeue)
        }
    };
    let mut held = Vec::new();
    if claim.first_sight {
        // Deployed onto old data: an obligation long overdue waits for an operator.
        let cutoff = now - settings.max_first_sight_age;
        let (old, keep): (Vec<TimerRow>, Vec<TimerRow>) = pending
            .into_iter()
            .partition(|t| is_obligation(t.kind) && t.due < cutoff);
        pending = keep;
        if !old.is_empty() {
            problem = join(problem, Some(held_problem(&old, settings)));
            held = old;
        }
    }
    SyncedClaim {
        claim_id: claim.id.clone(),
        version: claim.version,
        pending,
        problem,
        dirty_gen: claim.dirty_gen,
        requeue,
        held,
    }
}

/// Timers whose action reaches a partner or customer (an email, a status change): these are
/// held on first sight when long overdue; alerts and the dispute window's close are not.
fn is_obligation(kind: TimerKind) -> bool {
    !matches!(
        kind,
        TimerKind::ReviewStartSla
            | TimerKind::ReviewDecisionSla
            | TimerKind::DisputeReviewSla
            | TimerKind::DecisionSla
            | TimerKind::DisputeWindowClose
    )
}

fn held_problem(held: &[TimerRow], settings: TimerSettings) -> String {
    let list: Vec<String> = held
        .iter()
        .map(|t| format!("{} (due {})", t.kind, t.due.to_rfc3339()))
        .collect();
    format!(
        "held on first sight: {} fell due more than {} days before the worker first saw the \
         claim; an operator decides whether to release it",
        list.join(", "),
        settings.max_first_sight_age.num_days()
    )
}

fn join(a: Option<String>, b: Option<String>) -> Option<String> {
    match (a, b) {
        (Some(a), Some(b)) => Some(format!("{a}; {b}")),
        (a, b) => a.or(b),
    }
}

/// A claim whose consent email was dead-lettered cannot start its consent window: while the
/// address is the one that failed it is a problem; once the main system corrected it, the email
/// goes back to the outbox, to the new address (the problem, and the requeue).
fn dead_consent(
    calendars: &Calendars,
    claim: &Claim,
    facts: &ClaimFacts,
    now: DateTime<Utc>,
) -> (Option<String>, Option<Requeue>) {
    let dead = match (claim.status, claim.approved_at) {
        (ClaimStatus::Approved, Some(approved)) => facts.consent_dead(approved),
        _ => None,
    };
    let Some(dead) = dead else {
        return (None, None);
    };
    let error = dead.error.as_deref().unwrap_or("no reason recorded");
    if claim.customer_email.trim() == dead.to_address.trim() {
        let problem = format!(
            "the consent email to `{}` was dead-lettered ({}): the consent window cannot start \
             until customer_email is fixed",
            shorten(&dead.to_address),
            shorten(error)
        );
        return (Some(problem), None);
    }
    if let Err(e) = check_address(&claim.customer_email) {
        let problem =
            format!("consent_notification cannot send its email: column customer_email: {e}");
        return (Some(problem), None);
    }
    let history = HistoryEntry {
        claim_id: claim.id.clone(),
        occurred_at: now,
        actor: Actor::System,
        action: "consent_request_resent".to_owned(),
        details: serde_json::json!({
            "timer": TimerKind::ConsentNotification,
            "start": dead.approval,
            "to": claim.customer_email.trim(),
            "previous_address": dead.to_address,
            "previous_error": error,
            // The window it opens is counted when it is delivered.
            "deadline": null,
            "calendar": calendars.for_country(&claim.country).map(CalendarRef::from),
            "skipped": [],
        })
        .into(),
    };
    let requeue = Requeue {
        email: EmailKind::ConsentRequest,
        start: dead.approval,
        to_name: claim.customer_name.clone(),
        to_address: claim.customer_email.trim().to_owned(),
        history,
    };
    (None, Some(requeue))
}

/// The pending rows to keep for a claim whose timers cannot be computed: none, except for a
/// timestamp in the future, which gets one row due when that timestamp comes within
/// [`FUTURE_TOLERANCE`], so that the claim is looked at again by itself then.
fn problem_rows(e: &TimerError) -> Vec<TimerRow> {
    match e {
        TimerError::FutureTimestamp { timer, at, .. } => vec![TimerRow {
            kind: *timer,
            start: *at,
            due: *at - FUTURE_TOLERANCE,
        }],
        _ => Vec::new(),
    }
}

/// The claim's pending timer rows and its problem, if any (a claim whose timers cannot be
/// computed keeps only the rows [`problem_rows`] gives; a run held on first sight stays a
/// problem while it is current).
fn pending_timers(
    calendars: &Calendars,
    settings: TimerSettings,
    claim: &Claim,
    facts: &ClaimFacts,
    now: DateTime<Utc>,
) -> (Vec<TimerRow>, Option<String>) {
    let Some(cal) = calendars.for_country(&claim.country) else {
        let problem = format!("no holiday calendar serves country {}", claim.country);
        return (Vec::new(), Some(problem));
    };
    let timers = match evaluate(claim, cal, facts, settings, now) {
        Ok(t) => t,
        Err(e) => return (problem_rows(&e), Some(e.to_string())),
    };
    let held: Vec<TimerRow> = timers
        .iter()
        .filter(|t| matches!(&t.state, TimerState::Fired { outcome, .. } if outcome == HELD_ON_FIRST_SIGHT))
        .filter_map(|t| {
            Some(TimerRow {
                kind: t.kind,
                start: t.start?,
                due: t.due?,
            })
        })
        .collect();
    let rows = timers
        .into_iter()
        .filter(|t| matches!(t.state, TimerState::Pending | TimerState::Due))
        .filter_map(|t| {
            Some(TimerRow {
                kind: t.kind,
                start: t.start?,
                due: t.due?,
            })
        })
        .collect();
    let problem = (!held.is_empty()).then(|| held_problem(&held, settings));
    (rows, problem)
}

/// Decides what to write for one claim whose timers are due at `now`.
pub fn decide(
    calendars: &Calendars,
    settings: TimerSettings,
    mut input: FireInput,
    now: DateTime<Utc>,
) -> (ClaimWrite, Decided) {
    let resync = |version: i64, pending: Vec<TimerRow>, problem: Option<String>| SyncedClaim {
        claim_id: input.claim_id.clone(),
        version,
        pending,
        problem,
        dirty_gen: input.dirty_gen,
        requeue: None,
        held: Vec::new(),
    };
    let claim = match &input.claim {
        None => {
            let w = ClaimWrite {
                resync: Some(resync(input.synced_version, Vec::new(), None)),
                ..ClaimWrite::default()
            };
            return (w, Decided::Gone);
        }
        Some(Err(bad)) => {
            let w = ClaimWrite {
                resync: Some(resync(
                    input.synced_version,
                    Vec::new(),
                    Some(bad.problem.clone()),
                )),
                ..ClaimWrite::default()
            };
            return (w, Decided::Problem(bad.problem.clone()));
        }
        Some(Ok(c)) => c,
    };
    let recompute = |c: &Claim, f: &ClaimFacts| {
        let dead = dead_consent(calendars, c, f, now).0;
        let (p, problem) = pending_timers(calendars, settings, c, f, now);
        resync(c.version, p, join(problem, dead))
    };
    if claim.version != input.synced_version {
        let w = ClaimWrite {
            resync: Some(recompute(claim, &input.facts)),
            ..ClaimWrite::default()
        };
        return (w, Decided::Changed);
    }
    let Some(cal) = calendars.for_country(&claim.country) else {
        let problem = format!("no holiday calendar serves country {}", claim.country);
        let w = ClaimWrite {
            resync: Some(resync(claim.version, Vec::new(), Some(problem.clone()))),
            ..ClaimWrite::default()
        };
        return (w, Decided::Problem(problem));
    };
    let planned =
        evaluate(claim, cal, &input.facts, settings, now).and_then(|t| plan(claim, cal, &t, now));
    let mut plan = match planned {
        Ok(p) => p,
        Err(e) => {
            let problem = e.to_string();
            let w = ClaimWrite {
                resync: Some(resync(
                    claim.version,
                    problem_rows(&e),
                    Some(problem.clone()),
                )),
                ..ClaimWrite::default()
            };
            return (w, Decided::Problem(problem));
        }
    };
    let mut w = ClaimWrite::default();
    // The claim as the plan leaves it: copied only when a status changes (a notice leaves it).
    let mut after = std::borrow::Cow::Borrowed(claim);
    let mut facts = std::mem::take(&mut input.facts);
    for e in &mut plan.effects {
        if let Some(sc) = &e.status_change {
            w.status_change = Some(sc.clone());
            let after = after.to_mut();
            after.status = sc.to;
            if sc.to == ClaimStatus::Rejected {
                after.rejected_at = Some(now);
                after.rejection_reason = sc.rejection_reason.or(after.rejection_reason);
            }
            after.updated_at = Some(now);
            after.version += 1;
        }
        // Moved, not cloned: a history row's details are a tree of JSON values.
        let details = std::mem::take(&mut e.history.details);
        w.history.push(HistoryEntry {
            details,
            ..e.history.clone()
        });
        w.incentive |= e.incentive;
        if e.sla_alert {
            w.alerts.push((e.timer, e.start, e.due));
        }
        for m in std::mem::take(&mut e.emails) {
            let payload = crate::json_text::JsonText::of(&m);
            let not_after = m.not_after();
            w.emails.push(OutboxEmail {
                message_id: message_id(&claim.id, e.timer, e.start, m.kind),
                claim_id: claim.id.clone(),
                timer: e.timer,
                start: e.start,
                email: m.kind,
                to_name: m.to.name,
                to_address: m.to.address,
                locale: m.locale,
                payload,
                not_after,
                announced: e
                    .announced
                    .as_ref()
                    .filter(|_| m.last_day.is_some())
                    .map(|d| (d.last_day, d.passes_at)),
                calendar_version: Some(cal.version()),
                template_version: None,
            });
        }
        let label = e.outcome.label();
        w.fired.push((e.timer, e.start, e.due, label.clone()));
        facts.fired.push(fired(e.timer, e.start, now, label));
        for (kind, start) in &e.settles {
            let label = format!("fired: sent with {}", e.timer);
            w.fired.push((*kind, *start, *start, label.clone()));
            facts.fired.push(fired(*kind, *start, now, label));
        }
    }
    let mut resync = recompute(&after, &facts);
    if !plan.blocked.is_empty() {
        // A blocked timer leaves the index until the claim changes (its data is fixed).
        resync.pending.retain(|r| {
            !plan
                .blocked
                .iter()
                .any(|b| b.timer == r.kind && b.start == r.start)
        });
        let blocked: Vec<String> = plan.blocked.iter().map(|b| b.error().to_string()).collect();
        resync.problem = Some(
            resync
                .problem
                .into_iter()
                .chain(blocked)
                .collect::<Vec<_>>()
                .join("; "),
        );
    }
    w.resync = Some(resync);
    (w, Decided::Acted(plan))
}

fn fired(kind: TimerKind, start: DateTime<Utc>, at: DateTime<Utc>, outcome: String) -> FiredTimer {
    FiredTimer {
        kind,
        start,
        at,
        outcome,
    }
}
