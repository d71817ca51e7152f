//! Reading rows the same way on both backends: each backend says how it reads text, integers,
//! instants and JSON ([`ReadRow`], in `read.rs`); everything built from rows (claims, history,
//! outbox emails, alerts) is read once, here, so one bad value names its column instead of
//! failing a query.

use std::collections::HashMap;

use chrono::{DateTime, Utc};

pub(crate) use super::read::{ReadRow, parse_ts};
use super::work::UNREADABLE_VERSION;
use super::{
    ChangedClaim, DeadEmail, HistoryEntry, LoadedClaim, OutboxEmail, PendingEmail, SlaAlert,
    StoreError,
};
use crate::claim::{BadClaim, Claim, ClaimRow};
use crate::timers::{
    ClaimFacts, Communicated, DeadConsent, EmailKind, FiredTimer, StatusSeen, TimerKind,
};

/// Reads `col` of a worker table, naming `table.col` in the error.
fn need<T>(table: &str, col: &str, v: Result<Option<T>, String>) -> Result<T, StoreError> {
    match v {
        Ok(Some(v)) => Ok(v),
        Ok(None) => Err(StoreError::corrupt(&format!("{table}.{col}"), "is NULL")),
        Err(e) => Err(StoreError::corrupt(&format!("{table}.{col}"), e)),
    }
}

fn text<R: ReadRow>(r: &R, table: &str, col: &str) -> Result<String, StoreError> {
    need(table, col, r.text(col))
}

fn instant<R: ReadRow>(r: &R, table: &str, col: &str) -> Result<DateTime<Utc>, StoreError> {
    need(table, col, r.instant(col))
}

fn parsed<R: ReadRow, T: std::str::FromStr>(r: &R, table: &str, col: &str) -> Result<T, StoreError>
where
    T::Err: std::fmt::Display,
{
    text(r, table, col)?
        .parse()
        .map_err(|e| StoreError::corrupt(&format!("{table}.{col}"), e))
}

/// How a claim whose `id` is NULL is named in reports.
pub const NULL_ID: &str = "<NULL id>";

fn unreadable_id(problem: String) -> BadClaim {
    BadClaim {
        claim_id: NULL_ID.to_owned(),
        problem: format!("column id: {problem}"),
    }
}

/// Reads the SPEC §5 columns of a claim row.
pub(crate) fn claim_row<R: ReadRow>(row: &R) -> Result<ClaimRow, BadClaim> {
    let id = match row.text("id") {
        Ok(Some(id)) => id,
        Ok(None) => return Err(unreadable_id("is NULL".to_owned())),
        Err(e) => return Err(unreadable_id(e)),
    };
    let bad = |column: &str, e: String| BadClaim {
        claim_id: id.clone(),
        problem: format!("column {column}: {e}"),
    };
    let text = |column: &str| row.text(column).map_err(|e| bad(column, e));
    let time = |column: &str| row.instant(column).map_err(|e| bad(column, e));
    let status = text("status")?.ok_or_else(|| bad("status", "is NULL".to_owned()))?;
    let version = row.int("version").map_err(|e| bad("version", e))?;
    Ok(ClaimRow {
        status,
        partner_id: text("partner_id")?,
        partner_name: text("partner_name")?,
        partner_email: text("partner_email")?,
        customer_tenant_id: text("customer_tenant_id")?,
        customer_name: text("customer_name")?,
        customer_email: text("customer_email")?,
        products: text("products")?,
        country: text("country")?,
        time_zone: text("time_zone")?,
        locale: text("locale")?,
        submitted_at: time("submitted_at")?,
        review_started_at: time("review_started_at")?,
        info_requested_at: time("info_requested_at")?,
        info_request_reason: text("info_request_reason")?,
        approved_at: time("approved_at")?,
        rejected_at: time("rejected_at")?,
        rejection_reason: text("rejection_reason")?,
        customer_declined_at: time("customer_declined_at")?,
        dispute_opened_at: time("dispute_opened_at")?,
        dispute_resolved_at: time("dispute_resolved_at")?,
        updated_at: time("updated_at")?,
        version,
        id,
    })
}

/// A claim row parsed, or why it cannot be used.
pub(crate) fn read_claim<R: ReadRow>(row: &R) -> LoadedClaim {
    Claim::try_from(claim_row(row)?)
}

/// A claim row read for syncing, with its `updated_at` and sync generation (`cpor_dirty_gen`).
///
/// A claim column that cannot be read makes the claim bad, never the read: the id reads as
/// `<NULL id>` when NULL, the version as [`UNREADABLE_VERSION`] when not an integer.
pub(crate) fn changed<R: ReadRow>(row: &R) -> Result<ChangedClaim, StoreError> {
    Ok(ChangedClaim {
        id: row
            .text("id")
            .ok()
            .flatten()
            .unwrap_or_else(|| NULL_ID.to_owned()),
        version: row.int("version").unwrap_or(UNREADABLE_VERSION),
        updated_at: row.instant("updated_at").ok().flatten(),
        dirty_gen: row
            .int("cpor_dirty_gen")
            .map_err(|e| StoreError::corrupt("cpor_claim_sync.dirty_gen", e))?,
        first_sight: row.int("cpor_seen").is_ok_and(|n| n == 0),
        claim: read_claim(row),
    })
}

/// The sync rows joined by [`super::claims::changed_select!`], by claim (claims without one
/// are left out; so is a row whose values do not read, which is then written as for a claim
/// without one).
pub(crate) fn sync_rows<R: ReadRow>(rows: &[R]) -> super::Map<String, super::work::SyncRow> {
    rows.iter()
        .filter_map(|r| {
            let row = super::work::SyncRow {
                version: r.int("cpor_sync_version").ok()?,
                fingerprint: r.text("cpor_sync_fingerprint").ok()??,
                problem: r.text("cpor_sync_problem").ok()?,
                dirty: r.int("cpor_sync_dirty").ok()? != 0,
            };
            Some((r.text("id").ok()??, row))
        })
        .collect()
}

/// Claim rows read for syncing, one per id (see [`super::work::one_per_id`]).
pub(crate) fn changed_claims<R: ReadRow>(rows: &[R]) -> Result<Vec<ChangedClaim>, StoreError> {
    Ok(super::work::one_per_id(
        rows.iter().map(changed).collect::<Result<_, _>>()?,
    ))
}

/// A `claim_history` row.
pub(crate) fn history_entry<R: ReadRow>(r: &R) -> Result<HistoryEntry, StoreError> {
    const T: &str = "claim_history";
    Ok(HistoryEntry {
        claim_id: text(r, T, "claim_id")?,
        occurred_at: instant(r, T, "occurred_at")?,
        actor: parsed(r, T, "actor")?,
        action: text(r, T, "action")?,
        details: r
            .json("details")
            .map_err(|e| StoreError::corrupt("claim_history.details", e))?,
    })
}

/// A `cpor_outbox` row.
pub(crate) fn outbox_email<R: ReadRow>(r: &R) -> Result<OutboxEmail, StoreError> {
    const T: &str = "cpor_outbox";
    Ok(OutboxEmail {
        message_id: text(r, T, "message_id")?,
        claim_id: text(r, T, "claim_id")?,
        timer: parsed(r, T, "timer")?,
        start: instant(r, T, "started_at")?,
        email: parsed(r, T, "email")?,
        to_name: text(r, T, "to_name")?,
        to_address: text(r, T, "to_address")?,
        locale: text(r, T, "locale")?,
        payload: r
            .json("payload")
            .map_err(|e| StoreError::corrupt("cpor_outbox.payload", e))?,
        not_after: r
            .instant("not_after")
            .map_err(|e| StoreError::corrupt("cpor_outbox.not_after", e))?,
        announced: announced(r)?,
        calendar_version: r
            .text("calendar_version")
            .map_err(|e| StoreError::corrupt("cpor_outbox.calendar_version", e))?,
        template_version: r
            .text("template_version")
            .map_err(|e| StoreError::corrupt("cpor_outbox.template_version", e))?,
    })
}

/// The deadline an outbox row announced: its last day and the instant it passes.
fn announced<R: ReadRow>(r: &R) -> Result<Option<(chrono::NaiveDate, DateTime<Utc>)>, StoreError> {
    let day = r
        .text("announced_last_day")
        .map_err(|e| StoreError::corrupt("cpor_outbox.announced_last_day", e))?;
    let at = r
        .instant("announced_passes_at")
        .map_err(|e| StoreError::corrupt("cpor_outbox.announced_passes_at", e))?;
    match (day, at) {
        (Some(day), Some(at)) => day
            .parse()
            .map(|d| Some((d, at)))
            .map_err(|e| StoreError::corrupt("cpor_outbox.announced_last_day", e)),
        _ => Ok(None),
    }
}

fn attempts<R: ReadRow>(r: &R) -> Result<i32, StoreError> {
    let n = r
        .int("attempts")
        .map_err(|e| StoreError::corrupt("cpor_outbox.attempts", e))?;
    i32::try_from(n).map_err(|e| StoreError::corrupt("cpor_outbox.attempts", e))
}

/// A `cpor_outbox` row taken for an attempt.
pub(crate) fn pending_email<R: ReadRow>(r: &R) -> Result<PendingEmail, StoreError> {
    Ok(PendingEmail {
        id: r
            .int("id")
            .map_err(|e| StoreError::corrupt("cpor_outbox.id", e))?,
        attempts: attempts(r)?,
        email: outbox_email(r)?,
    })
}

/// A dead-lettered `cpor_outbox` row.
pub(crate) fn dead_email<R: ReadRow>(r: &R) -> Result<DeadEmail, StoreError> {
    Ok(DeadEmail {
        email: outbox_email(r)?,
        attempts: attempts(r)?,
        last_error: r
            .text("last_error")
            .map_err(|e| StoreError::corrupt("cpor_outbox.last_error", e))?,
    })
}

/// The history row of an outbox email settled without a delivery: `email_expired` (its
/// `not_after` passed) or `email_withdrawn` (`why`: the claim moved on).
pub(crate) fn unsent_history<R: ReadRow>(
    r: &R,
    now: DateTime<Utc>,
    withdrawn: Option<&str>,
) -> Result<super::HistoryEntry, StoreError> {
    const T: &str = "cpor_outbox";
    let not_after = r
        .instant("not_after")
        .map_err(|e| StoreError::corrupt("cpor_outbox.not_after", e))?;
    let (action, outcome) = match withdrawn {
        None => (
            "email_expired",
            "not sent: its deadline passed before it could be delivered",
        ),
        Some(why) => ("email_withdrawn", why),
    };
    Ok(super::HistoryEntry {
        claim_id: text(r, T, "claim_id")?,
        occurred_at: now,
        actor: crate::lifecycle::Actor::System,
        action: action.to_owned(),
        details: serde_json::json!({
            "email": text(r, T, "email")?,
            "timer": text(r, T, "timer")?,
            "start": instant(r, T, "started_at")?,
            "not_after": not_after,
            "message_id": text(r, T, "message_id")?,
            "announced": announced(r)?.map(|(last_day, passes_at)| serde_json::json!({
                "last_day": last_day,
                "passes_at": passes_at,
            })),
            "calendar_version": r
                .text("calendar_version")
                .map_err(|e| StoreError::corrupt("cpor_outbox.calendar_version", e))?,
            "outcome": outcome,
        })
        .into(),
    })
}

/// The deadline a sent outbox row named, as the run of the timer that watches it: a reminder
/// names its run's response deadline, an approval notice (and the consent request, from when it
/// was sent) the consent window, a rejection email the dispute window of that rejection.
fn communicated<R: ReadRow>(r: &R) -> Result<Option<(String, Communicated)>, StoreError> {
    const T: &str = "cpor_outbox";
    let Some((last_day, passes_at)) = announced(r)? else {
        return Ok(None);
    };
    let email: EmailKind = parsed(r, T, "email")?;
    let timer: TimerKind = parsed(r, T, "timer")?;
    let (deadline, start) = match (email, timer) {
        (EmailKind::PartnerResponseReminder, _) => (
            TimerKind::PartnerResponseDeadline,
            instant(r, T, "started_at")?,
        ),
        (EmailKind::PartnerApprovalNotice, _) => {
            (TimerKind::ConsentWindowClose, instant(r, T, "started_at")?)
        }
        (EmailKind::ConsentRequest, _) => {
            (TimerKind::ConsentWindowClose, instant(r, T, "sent_at")?)
        }
        (EmailKind::ClaimRejected, TimerKind::RejectionNotice) => {
            (TimerKind::DisputeWindowClose, instant(r, T, "started_at")?)
        }
        // An auto-rejection's email: the rejection happened on the pass that queued it.
        (EmailKind::ClaimRejected, _) => {
            (TimerKind::DisputeWindowClose, instant(r, T, "created_at")?)
        }
        _ => return Ok(None),
    };
    let c = Communicated {
        timer: deadline,
        start,
        last_day,
        passes_at,
    };
    Ok(Some((text(r, T, "claim_id")?, c)))
}

/// A `cpor_sla_alerts` row.
pub(crate) fn sla_alert<R: ReadRow>(r: &R) -> Result<SlaAlert, StoreError> {
    const T: &str = "cpor_sla_alerts";
    Ok(SlaAlert {
        claim_id: text(r, T, "claim_id")?,
        timer: parsed(r, T, "timer")?,
        start: instant(r, T, "started_at")?,
        due: instant(r, T, "due_at")?,
        raised_at: instant(r, T, "raised_at")?,
    })
}

/// `cpor_timers` rows split into the runs as stored (pending in full, every row's key) and the
/// fired or held rows (for [`facts`]).
pub(crate) fn pending_runs<R: ReadRow>(
    rows: Vec<R>,
) -> Result<(super::work::Stored, Vec<R>), StoreError> {
    const T: &str = "cpor_timers";
    let pending_state = super::TimerState::Pending.as_str();
    let mut stored = super::work::Stored::default();
    let mut others = Vec::new();
    let acted = [
        super::TimerState::Fired.as_str(),
        super::TimerState::Held.as_str(),
    ];
    for r in rows {
        let state = text(&r, T, "state")?;
        let key = (
            text(&r, T, "claim_id")?,
            text(&r, T, "timer")?,
            instant(&r, T, "started_at")?,
        );
        if state == pending_state {
            stored.pending.push((
                key.0.clone(),
                key.1.clone(),
                key.2,
                instant(&r, T, "due_at")?,
                r.int("claim_version")
                    .map_err(|e| StoreError::corrupt("cpor_timers.claim_version", e))?,
            ));
        } else if acted.contains(&state.as_str()) {
            others.push(r);
        }
        stored.keys.insert(key);
    }
    Ok((stored, others))
}

/// Gathers, per claim, the fired `cpor_timers` rows, from the claims' `cpor_outbox` rows the
/// delivered and dead-lettered consent emails and the deadlines announced, and the status
/// timeline into [`ClaimFacts`].
pub(crate) fn facts<R: ReadRow>(
    fired: &[R],
    outbox: &[R],
    timeline: &[R],
) -> Result<HashMap<String, ClaimFacts>, StoreError> {
    const T: &str = "cpor_timers";
    let mut facts: HashMap<String, ClaimFacts> = HashMap::new();
    for r in fired {
        facts
            .entry(text(r, T, "claim_id")?)
            .or_default()
            .fired
            .push(FiredTimer {
                kind: parsed(r, T, "timer")?,
                start: instant(r, T, "started_at")?,
                at: r.instant("fired_at").ok().flatten().unwrap_or_default(),
                outcome: r.text("outcome").ok().flatten().unwrap_or_default(),
            });
    }
    for r in outbox {
        const T: &str = "cpor_outbox";
        let state = r.text("state").ok().flatten();
        let is = |s: super::OutboxState| state.as_deref() == Some(s.as_str());
        let consent =
            r.text("email").ok().flatten().as_deref() == Some(EmailKind::ConsentRequest.as_str());
        if consent && is(super::OutboxState::Sent) && r.instant("sent_at").ok().flatten().is_some()
        {
            let sent = (instant(r, T, "started_at")?, instant(r, T, "sent_at")?);
            facts
                .entry(text(r, T, "claim_id")?)
                .or_default()
                .consent_sent
                .push(sent);
        }
        if consent && is(super::OutboxState::Dead) {
            let dead = DeadConsent {
                approval: instant(r, T, "started_at")?,
                to_address: text(r, T, "to_address")?,
                error: r.text("last_error").ok().flatten(),
            };
            facts
                .entry(text(r, T, "claim_id")?)
                .or_default()
                .consent_dead
                .push(dead);
        }
        if is(super::OutboxState::Sent)
            && let Some((claim, c)) = communicated(r)?
        {
            facts.entry(claim).or_default().communicated.push(c);
        }
    }
    for r in timeline {
        const T: &str = "cpor_status_timeline";
        let status = |col: &str| r.text(col).ok().flatten().and_then(|s| s.parse().ok());
        let seen = StatusSeen {
            at: instant(r, T, "changed_at")?,
            old: status("old_status"),
            new: status("new_status"),
        };
        add_step(&mut facts, &text(r, T, "claim_id")?, seen);
    }
    Ok(facts)
}

/// Adds a status change to its claim's timeline, after those there (read in the order they
/// were recorded). The same change seen twice (two change records of one claim with the same
/// time and new status) is one: the first, the earliest recorded.
fn add_step(facts: &mut HashMap<String, ClaimFacts>, claim: &str, seen: StatusSeen) {
    let Some(claim_facts) = facts.get_mut(claim) else {
        let timeline = vec![seen];
        facts.insert(
            claim.to_owned(),
            ClaimFacts {
                timeline,
                ..ClaimFacts::default()
            },
        );
        return;
    };
    let timeline = &mut claim_facts.timeline;
    if !timeline
        .iter()
        .any(|s| s.at == seen.at && s.new == seen.new)
    {
        timeline.push(seen);
    }
}

/// Adds a page's status changes (recorded after every timeline row read) to the timelines of
/// the claims in `facts`' page, as if written and read back.
pub(crate) fn add_status_records(
    facts: &mut HashMap<String, ClaimFacts>,
    claims: &std::collections::HashSet<&str>,
    records: &[super::StatusRecord],
) {
    for r in records
        .iter()
        .filter(|r| claims.contains(r.claim_id.as_str()))
    {
        let status = |s: &Option<String>| s.as_deref().and_then(|s| s.parse().ok());
        let seen = StatusSeen {
            // As stored: to the microsecond (both backends truncate), so it meets its equal.
            at: chrono::SubsecRound::trunc_subsecs(r.at, 6),
            old: status(&r.old_status),
            new: status(&r.new_status),
        };
        add_step(facts, &r.claim_id, seen);
    }
}
