//! The invariants checked after every pass, claim by claim, against the oracle.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use cpor_worker::store::HistoryEntry;

use super::oracle::{Oracle, Run, same_instant};
use super::sim::SimClaim;

/// One history row as the checks see it: action, timer, run start, when.
#[derive(Clone, Debug, PartialEq)]
pub struct Act {
    pub action: String,
    pub timer: String,
    pub start: Option<DateTime<Utc>>,
    pub at: DateTime<Utc>,
    pub email: String,
}

impl Act {
    pub fn of(h: &HistoryEntry) -> Act {
        let s = |k: &str| h.details[k].as_str().unwrap_or_default().to_owned();
        Act {
            action: h.action.clone(),
            timer: s("timer"),
            start: h.details["start"]
                .as_str()
                .and_then(|t| t.parse::<DateTime<Utc>>().ok()),
            at: h.occurred_at,
            email: s("email"),
        }
    }

    fn is_run(&self, run: &Run) -> bool {
        self.timer == run.timer && self.start.is_some_and(|s| same_instant(s, run.start))
    }
}

/// An email of the outbox as the checks see it: kind, run start, state.
#[derive(Clone, Debug, PartialEq)]
pub struct Mail {
    pub kind: String,
    pub timer: String,
    pub start: DateTime<Utc>,
    pub state: String,
    pub not_after: Option<DateTime<Utc>>,
}

/// What a claim looked like before and after one pass at `at`.
pub struct PassView<'a> {
    pub seed: u64,
    pub at: DateTime<Utc>,
    pub claim_before: &'a SimClaim,
    pub claim_after: &'a SimClaim,
    pub acts_before: &'a [Act],
    pub acts_after: &'a [Act],
    pub mails_before: &'a [Mail],
    pub mails_after: &'a [Mail],
    pub incentive: bool,
    /// The problem the worker reports for the claim, if any (pass outcome or problem rows).
    pub problem: Option<String>,
}

fn forwarded_in(acts: &[Act]) -> impl Fn(DateTime<Utc>) -> bool + '_ {
    move |sent| {
        acts.iter().any(|a| {
            a.action == "forwarded_to_incentive_evaluation"
                && a.start.is_some_and(|s| same_instant(s, sent))
        })
    }
}

/// Checks one claim after one pass; returns the violations, each naming claim, seed, instant,
/// what was expected and what was observed.
pub fn pass(
    oracle: &Oracle,
    v: &PassView,
    acted: &mut usize,
    stale: &mut Vec<String>,
) -> Vec<String> {
    let c = v.claim_after;
    let mut out = Vec::new();
    let mut say = |what: String| {
        out.push(format!(
            "seed {} claim {} pass at {}: {what}\n    claim history: {}",
            v.seed,
            c.id,
            v.at.to_rfc3339(),
            c.log.join("; ")
        ))
    };
    let before = oracle.runs(v.claim_before, &forwarded_in(v.acts_before));
    let after = oracle.runs(v.claim_after, &forwarded_in(v.acts_after));
    let mut due: Vec<&Run> = Vec::new();
    for r in before.iter().chain(after.iter()).filter(|r| r.due <= v.at) {
        if !due
            .iter()
            .any(|d| d.timer == r.timer && same_instant(d.start, r.start))
        {
            due.push(r);
        }
    }
    // New history rows (a multiset difference: passes may step back in time).
    let mut seen: Vec<&Act> = v.acts_before.iter().collect();
    let mut new = Vec::new();
    for a in v.acts_after {
        if let Some(i) = seen.iter().position(|b| *b == a) {
            seen.remove(i);
        } else {
            new.push(a);
        }
    }
    let dead_consent = |mails: &[Mail], start: DateTime<Utc>| {
        let of_run: Vec<&Mail> = mails
            .iter()
            .filter(|m| m.kind == "consent_request" && same_instant(m.start, start))
            .collect();
        of_run.last().is_some_and(|m| m.state == "dead")
    };
    for a in &new {
        if a.action == "email_expired" || a.action == "email_withdrawn" {
            continue;
        }
        if a.action == "consent_request_resent" {
            // Only for a claim whose customer address was refused, once it was corrected. (The
            // dead-lettered email is put back into the outbox, so its state no longer shows
            // it; it may also go dead in this very pass, whose next round re-sends it.)
            let refused = v
                .claim_before
                .log
                .iter()
                .any(|l| l.contains("refused address"));
            let ok = refused && !v.claim_before.bad_address;
            if !ok {
                say(format!(
                    "consent email re-sent ({:?}) without a dead-lettered one and a corrected \
                     address",
                    a.start
                ));
            }
            continue;
        }
        match due.iter().find(|r| a.is_run(r)) {
            None => say(format!(
                "nothing wrongly acted: `{}` ({} run from {:?}) was recorded, but no such run \
                 was due; due runs: {:?}",
                a.action,
                a.timer,
                a.start,
                due.iter().map(|r| (r.timer, r.start)).collect::<Vec<_>>()
            )),
            Some(r) if r.action_at(a.at) != a.action => say(format!(
                "wrong action for {} run from {}: expected `{}`, observed `{}`",
                r.timer,
                r.start,
                r.action_at(a.at),
                a.action
            )),
            Some(_) => *acted += 1,
        }
    }
    // Nothing twice: one history row per timer run.
    let mut runs: BTreeMap<(String, i64), usize> = BTreeMap::new();
    for a in v.acts_after.iter().filter(|a| {
        !matches!(
            a.action.as_str(),
            "email_expired" | "email_withdrawn" | "consent_request_resent"
        )
    }) {
        let key = (a.timer.clone(), a.start.map_or(0, |s| s.timestamp_millis()));
        *runs.entry(key).or_default() += 1;
    }
    for ((timer, start), n) in runs {
        let fresh = new
            .iter()
            .any(|a| a.timer == timer && a.start.map_or(0, |s| s.timestamp_millis()) == start);
        if n > 1 && fresh {
            say(format!(
                "nothing twice: the {timer} run from {start} ms has {n} history rows, expected 1"
            ));
        }
    }
    // Nothing missed: every run due at this pass was acted on (or the claim is a visible problem).
    for r in &due {
        if !v.acts_after.iter().any(|a| a.is_run(r)) {
            match &v.problem {
                Some(p) => say(format!(
                    "a generated (valid) claim is reported as a problem instead of acting on \
                     its {} run from {} (due {}): {p}",
                    r.timer, r.start, r.due
                )),
                None => say(format!(
                    "nothing missed: the {} run from {} was due at {} and expected `{}`; not acted \
                     on and not reported (silently stuck)",
                    r.timer,
                    r.start,
                    r.due,
                    r.action_at(v.at)
                )),
            }
        }
    }
    // A consent round that cannot start is a visible problem until the address is corrected.
    // (From the pass after the one that dead-lettered it: a pass computes problems before it
    // delivers.)
    let b = v.claim_before;
    if b.row.status == "approved"
        && c.row.status == "approved"
        && b.bad_address
        && b.row
            .approved_at
            .is_some_and(|a| dead_consent(v.mails_before, a))
        && v.problem.is_none()
    {
        say(
            "silently stuck: the consent email was dead-lettered and the address is not \
             corrected, but the claim is not reported as a problem"
                .to_owned(),
        );
    }
    // Incentive evaluation exactly for forwarded claims.
    let forwarded = v
        .acts_after
        .iter()
        .any(|a| a.action == "forwarded_to_incentive_evaluation");
    if forwarded != v.incentive {
        say(format!(
            "incentive request: expected {} (forwarded: {forwarded}), observed {}",
            forwarded, v.incentive
        ));
    }
    // Emails: reminders never delivered at or after their deadline; expired ones recorded.
    for m in v.mails_after {
        let was = v
            .mails_before
            .iter()
            .find(|b| b.kind == m.kind && b.timer == m.timer && same_instant(b.start, m.start))
            .map(|b| b.state.as_str());
        if was == Some(m.state.as_str()) {
            continue;
        }
        let deadline =
            (m.kind == "partner_response_reminder").then(|| oracle.response(c, m.start).1);
        match m.state.as_str() {
            "sent" => {
                if let Some(why) = stale_delivery(c, m) {
                    stale.push(format!(
                        "seed {} claim {} pass at {}: {} email of the {} run from {} delivered \
                         although {why}\n    claim history: {}",
                        v.seed,
                        c.id,
                        v.at.to_rfc3339(),
                        m.kind,
                        m.timer,
                        m.start,
                        c.log.join("; ")
                    ));
                }
                if let Some(d) = deadline.filter(|d| v.at >= *d) {
                    say(format!(
                        "reminder delivered at {} but its deadline passed at {d}: expected it \
                         expired (`email_expired`)",
                        v.at
                    ));
                }
            }
            "expired" => {
                if let Some(d) = deadline.filter(|d| v.at < *d) {
                    say(format!(
                        "reminder expired at {} before its deadline {d}: expected it delivered",
                        v.at
                    ));
                }
                if !new
                    .iter()
                    .any(|a| a.action == "email_expired" && a.email == m.kind)
                {
                    say(format!(
                        "{} email expired at {} with no `email_expired` history row",
                        m.kind, v.at
                    ));
                }
            }
            "withdrawn" => {
                if stale_delivery(c, m).is_none() {
                    say(format!(
                        "{} email of the {} run from {} withdrawn at {} although it still \
                         applies",
                        m.kind, m.timer, m.start, v.at
                    ));
                }
                if !new
                    .iter()
                    .any(|a| a.action == "email_withdrawn" && a.email == m.kind)
                {
                    say(format!(
                        "{} email withdrawn at {} with no `email_withdrawn` history row",
                        m.kind, v.at
                    ));
                }
            }
            "dead" if m.kind == "consent_request" => {}
            "dead" => say(format!(
                "{} email dead-lettered (partner addresses are valid; outages are short)",
                m.kind
            )),
            _ => {}
        }
    }
    // One outbox email per timer run and kind.
    for (i, m) in v.mails_after.iter().enumerate() {
        if v.mails_after[..i].iter().any(|b| {
            b.kind == m.kind
                && b.timer == m.timer
                && same_instant(b.start, m.start)
                && b.state != "dead"
        }) {
            say(format!(
                "nothing twice: two outbox emails `{}` for the {} run from {}",
                m.kind, m.timer, m.start
            ));
        }
    }
    out
}

/// Why delivering `m` now tells its recipient something no longer true: the run it belongs to
/// is not the claim's current one (SPEC §4: consent "while approved", the reminder "while
/// partner action is required", the notice "while rejected").
fn stale_delivery(c: &SimClaim, m: &Mail) -> Option<String> {
    let r = &c.row;
    let current = |status: &str, at: Option<DateTime<Utc>>| {
        r.status == status && at.is_some_and(|a| same_instant(a, m.start))
    };
    // A decline of this approval (not of an earlier one) ends what its emails announce.
    let declined = r
        .customer_declined_at
        .is_some_and(|d| r.approved_at.is_none_or(|a| d >= a));
    let ok = match (m.kind.as_str(), m.timer.as_str()) {
        ("consent_request", _) => current("approved", r.approved_at) && !declined,
        ("partner_response_reminder", _) => current("partner_action_required", r.info_requested_at),
        ("claim_rejected", "rejection_notice") => current("rejected", r.rejected_at),
        // The worker's own rejection: its email is stale once the claim is no longer rejected
        // (a dispute overturned it while the email waited out an outage).
        ("claim_rejected", _) => r.status == "rejected",
        ("partner_approval_notice", _) => r.status == "approved" && !declined,
        _ => true,
    };
    (!ok).then(|| {
        format!(
            "the claim is now {} ({})",
            r.status,
            c.log.last().cloned().unwrap_or_default()
        )
    })
}
