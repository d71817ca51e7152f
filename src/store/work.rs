//! Row types of the worker's own tables: timers, claim sync state, outbox, and one claim's writes.

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::{HistoryEntry, OutboxState, StatusChange};
use crate::claim::{BadClaim, Claim};
use crate::timers::{ClaimFacts, EmailKind, TimerKind};

/// A pending run of a timer, as the index holds it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct TimerRow {
    /// Which timer.
    pub kind: TimerKind,
    /// Its start (with the claim and kind, the run's identity).
    pub start: DateTime<Utc>,
    /// When it is due.
    pub due: DateTime<Utc>,
}

/// A claim's pending timers as computed from one version of it.
#[derive(Clone, Debug, PartialEq)]
pub struct SyncedClaim {
    /// The claim.
    pub claim_id: String,
    /// The version they were computed from.
    pub version: i64,
    /// The pending timers (replacing all pending rows of the claim).
    pub pending: Vec<TimerRow>,
    /// Why the claim's timers could not be computed, if so (then `pending` is empty).
    pub problem: Option<String>,
    /// The claim's `dirty_gen` when it was read: the dirty flag is cleared only if unchanged.
    pub dirty_gen: i64,
    /// A dead-lettered consent email to send again to a corrected address.
    pub requeue: Option<Requeue>,
    /// Timer runs held on first sight (recorded as `held`, never fired until released).
    pub held: Vec<TimerRow>,
}

/// A dead-lettered email put back in the outbox with a corrected recipient.
#[derive(Clone, Debug, PartialEq)]
pub struct Requeue {
    /// Which email.
    pub email: EmailKind,
    /// Its timer run's start.
    pub start: DateTime<Utc>,
    /// The recipient's name now.
    pub to_name: String,
    /// The recipient's address now.
    pub to_address: String,
    /// The history row that records it.
    pub history: HistoryEntry,
}

/// A claim read for syncing, with the `updated_at` that moves the watermark.
#[derive(Clone, Debug)]
pub struct ChangedClaim {
    /// The claim's id.
    pub id: String,
    /// Its version as stored.
    pub version: i64,
    /// Its `updated_at` as stored.
    pub updated_at: Option<DateTime<Utc>>,
    /// The parsed claim, or why it cannot be used.
    pub claim: Result<Claim, BadClaim>,
    /// Its `dirty_gen` when read (0 when never synced).
    pub dirty_gen: i64,
    /// True when the worker has never computed this claim's timers (first sight).
    pub first_sight: bool,
}

/// A pending timer run as stored: claim, timer, start, due, the claim version it came from.
pub(crate) type StoredRun = (String, String, DateTime<Utc>, DateTime<Utc>, i64);

/// A `cpor_timers` row's key: claim, timer, start (one row per run).
pub(crate) type RunKey = (String, String, DateTime<Utc>);

/// What is stored for a batch's claims, read under their row locks (a claim seen first: before
/// its sync row, its lease, is inserted): their timer rows (the pending runs in full and the
/// key of every row in any state), whether they have a sync row and which, and their emails'
/// Message-IDs. No one else writes these until the locks are released (the lease: a claim
/// with no sync row has none of these rows, and a second page that sees it first waits on the
/// lease and then leaves it), so a write inserts only what has no row, without a conflict check
/// (save for a claim whose sync row was deleted while its rows stayed: see `unread`).
#[derive(Debug, Default)]
pub(crate) struct Stored {
    /// The pending runs.
    pub pending: Vec<StoredRun>,
    /// The key of every row read, whatever its state.
    pub keys: super::Set<RunKey>,
    /// Claims that had no `cpor_claim_sync` row when read (first sight, read without a row
    /// lock): the backend's `claim_first_sight` inserts theirs before their other writes.
    pub unsynced: super::Set<String>,
    /// Claims seen first whose timer rows were not read (they are expected to have none):
    /// the PostgreSQL `write_sync` locks them and reads theirs only if it meets one (their
    /// sync rows were deleted while their timers stayed).
    pub unread: super::Set<String>,
    /// The claims' `cpor_claim_sync` rows as read (a row the write would leave as it is is
    /// not written: no lock taken on it).
    pub sync_rows: super::Map<String, SyncRow>,
    /// The Message-ID of every email of the claims (a fire batch inserts only its others).
    pub message_ids: super::Set<String>,
}

/// A claim's `cpor_claim_sync` row: what its stored timers were computed from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SyncRow {
    /// The claim version.
    pub version: i64,
    /// The calendars' fingerprint.
    pub fingerprint: String,
    /// Why its timers could not be computed, if so.
    pub problem: Option<String>,
    /// Marked for recomputation.
    pub dirty: bool,
}

/// What one sync page did ([`super::TimerIndex::sync_changes`]).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ChangePage {
    /// Change records taken (0: none was left that no one else holds); all deleted but `left`.
    pub records: usize,
    /// How many of the records name a claim row whose `id` is NULL (it cannot be tracked).
    pub null_ids: usize,
    /// Claims whose timers were computed and saved.
    pub synced: usize,
    /// Records left in place: their claim was held by another transaction (a replica's batch,
    /// the main system), so a later page takes them again.
    pub left: usize,
    /// Claims this page saw first and computed, whose result it dropped: another transaction
    /// wrote their sync row first (their records are among `left`).
    pub lost: Vec<String>,
    /// The last record's sequence number (the page's `after_seq` when it took none): the next
    /// page of the pass takes records after it.
    pub last_seq: i64,
}

/// One status change seen by the change capture.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StatusRecord {
    /// The claim.
    pub claim_id: String,
    /// The status before (None for an insert).
    pub old_status: Option<String>,
    /// The status after.
    pub new_status: Option<String>,
    /// When: the event time the main system gave the new status (`submitted_at`, …), else the
    /// instant the change was recorded in the writer's transaction.
    pub at: DateTime<Utc>,
}

/// The claims among `claims` whose status timeline their timers read: those readable, in a
/// status the decision SLA runs in.
pub(crate) fn timeline_ids<'a>(claims: impl Iterator<Item = &'a ChangedClaim>) -> Vec<&'a str> {
    claims
        .filter(|c| {
            c.claim
                .as_ref()
                .is_ok_and(|c| crate::timers::decision_sla_runs_in(c.status))
        })
        .map(|c| c.id.as_str())
        .collect()
}

/// The status changes among change records (`claim_id`, `old_status`, `new_status`, `event_at`,
/// `recorded_at` rows): records that name no claim or keep the status are left out.
pub(crate) fn status_records<R: super::row::ReadRow>(records: &[R]) -> Vec<StatusRecord> {
    records
        .iter()
        .filter_map(|r| {
            let claim_id = r.text("claim_id").ok().flatten()?;
            let old_status = r.text("old_status").ok().flatten();
            let new_status = r.text("new_status").ok().flatten();
            if old_status == new_status {
                return None;
            }
            let event = r
                .text("event_at")
                .ok()
                .flatten()
                .and_then(|s| super::row::parse_ts(&s).ok());
            let at = event.or_else(|| r.instant("recorded_at").ok().flatten())?;
            Some(StatusRecord {
                claim_id,
                old_status,
                new_status,
                at,
            })
        })
        .collect()
}

/// The version recorded for a claim whose `version` column cannot be read as an integer.
pub const UNREADABLE_VERSION: i64 = -1;

/// True when at least nine in ten of the ids, in the order given, follow one that sorts
/// before them (bytewise): claims inserted with ids that grow, as their records came.
pub(crate) fn mostly_ascending<S: AsRef<str>>(ids: &[S]) -> bool {
    let pairs = ids.len().saturating_sub(1);
    let ascending = ids
        .windows(2)
        .filter(|w| w[0].as_ref() < w[1].as_ref())
        .count();
    ascending * 10 >= pairs * 9
}

/// Claims read by id, one per id: rows sharing an id (a table without a key) become one bad
/// claim naming how many rows share it, so nothing fires for an arbitrary one of them.
pub(crate) fn one_per_id(rows: Vec<ChangedClaim>) -> Vec<ChangedClaim> {
    // Read `ORDER BY id`, rows sharing an id are neighbours (unless the database's collation
    // orders ids otherwise than bytes do): counted without hashing every id.
    let sorted = rows.windows(2).all(|w| w[0].id <= w[1].id);
    let mut out: Vec<ChangedClaim> = Vec::with_capacity(rows.len());
    let mut shared: Vec<(usize, usize)> = Vec::new();
    if sorted {
        for r in rows {
            match out.last() {
                Some(last) if last.id == r.id => match shared.last_mut() {
                    Some((i, n)) if *i == out.len() - 1 => *n += 1,
                    _ => shared.push((out.len() - 1, 2)),
                },
                _ => out.push(r),
            }
        }
    } else {
        let mut counts: std::collections::HashMap<String, usize> = std::collections::HashMap::new();
        for r in rows {
            let n = counts.entry(r.id.clone()).or_default();
            *n += 1;
            if *n == 1 {
                out.push(r);
            }
        }
        shared = out
            .iter()
            .enumerate()
            .filter_map(|(i, c)| Some((i, counts[&c.id])).filter(|(_, n)| *n > 1))
            .collect();
    }
    for (i, n) in shared {
        let c = &mut out[i];
        c.claim = Err(BadClaim {
            claim_id: c.id.clone(),
            problem: format!("{n} rows of claims have this id: ids must be unique"),
        });
        c.version = UNREADABLE_VERSION;
    }
    out
}

/// An email to write to the outbox.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct OutboxEmail {
    /// Stable across retries and re-sends: derived from the claim, the timer run and the email.
    pub message_id: String,
    /// The claim.
    pub claim_id: String,
    /// The timer that sends it.
    pub timer: TimerKind,
    /// The timer run's start.
    pub start: DateTime<Utc>,
    /// Which email.
    pub email: EmailKind,
    /// Recipient's name.
    pub to_name: String,
    /// Recipient's address.
    pub to_address: String,
    /// The claim's locale.
    pub locale: String,
    /// What the template shows (the timers' `EmailPlan`, as JSON).
    pub payload: crate::json_text::JsonText,
    /// Never sent at or after this instant (a reminder after its deadline): it expires instead.
    pub not_after: Option<DateTime<Utc>>,
    /// The deadline the email names, if any: its last day and the instant it passes.
    pub announced: Option<(chrono::NaiveDate, DateTime<Utc>)>,
    /// The version of the calendar that counted that deadline ([`crate::calendar::Calendar::version`]).
    pub calendar_version: Option<String>,
    /// The version of the template set it was queued under ([`crate::mail::Templates::version`]).
    pub template_version: Option<String>,
}

/// Everything a pass writes for one claim, in one transaction with the claim's other writes.
#[derive(Clone, Debug, Default)]
pub struct ClaimWrite {
    /// A status change, compare-and-set on the version the timers were computed from.
    pub status_change: Option<StatusChange>,
    /// History rows, one per action.
    pub history: Vec<HistoryEntry>,
    /// Emails for the outbox.
    pub emails: Vec<OutboxEmail>,
    /// Forward the claim to incentive evaluation (once per claim, ever).
    pub incentive: bool,
    /// SLA breaches: (timer, start, due).
    pub alerts: Vec<(TimerKind, DateTime<Utc>, DateTime<Utc>)>,
    /// Timer runs acted on: (timer, start, due, outcome).
    pub fired: Vec<(TimerKind, DateTime<Utc>, DateTime<Utc>, String)>,
    /// The claim's pending timers afterwards.
    pub resync: Option<SyncedClaim>,
}

/// What a fire batch hands the decision for one claim.
#[derive(Debug)]
pub struct FireInput {
    /// The claim's id.
    pub claim_id: String,
    /// The claim as stored now, locked for the transaction; `None` if it was deleted.
    pub claim: Option<Result<Claim, BadClaim>>,
    /// The version its due timers were computed from.
    pub synced_version: i64,
    /// What the worker already did for it.
    pub facts: ClaimFacts,
    /// Its `dirty_gen` when read.
    pub dirty_gen: i64,
}

/// An outbox email due for a delivery attempt.
#[derive(Clone, Debug, PartialEq)]
pub struct PendingEmail {
    /// Row id.
    pub id: i64,
    /// Attempts made so far.
    pub attempts: i32,
    /// The email.
    pub email: OutboxEmail,
}

/// An outbox email that will not be delivered, with why.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct DeadEmail {
    /// The email.
    pub email: OutboxEmail,
    /// Attempts made.
    pub attempts: i32,
    /// The last error.
    pub last_error: Option<String>,
}

/// An SLA breach raised by a pass.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct SlaAlert {
    /// The claim.
    pub claim_id: String,
    /// The SLA timer.
    pub timer: TimerKind,
    /// Its start.
    pub start: DateTime<Utc>,
    /// When the SLA ended.
    pub due: DateTime<Utc>,
    /// When the breach was raised.
    pub raised_at: DateTime<Utc>,
}

/// Counts of the outbox by state, for metrics and the report.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct OutboxCounts {
    /// Waiting for delivery.
    pub pending: i64,
    /// Delivered.
    pub sent: i64,
    /// Dead-lettered.
    pub dead: i64,
}

impl OutboxCounts {
    /// Adds `n` emails in outbox `state` (`sending` counts as pending).
    pub(crate) fn add(&mut self, state: &str, n: i64) {
        match state.parse() {
            Ok(OutboxState::Sent) => self.sent += n,
            Ok(OutboxState::Dead) => self.dead += n,
            Ok(OutboxState::Pending | OutboxState::Sending) => self.pending += n,
            // Expired, withdrawn and discarded emails were settled without a delivery.
            _ => {}
        }
    }
}

/// Builds the `Message-ID` of an email: the same for the same claim, timer run and email.
pub fn message_id(
    claim_id: &str,
    timer: TimerKind,
    start: DateTime<Utc>,
    email: EmailKind,
) -> String {
    let mut safe = String::with_capacity(claim_id.len());
    for b in claim_id.bytes() {
        if b.is_ascii_alphanumeric() || b == b'-' || b == b'_' {
            safe.push(char::from(b));
        } else {
            safe.push_str(&format!("={b:02X}"));
        }
    }
    format!(
        "<cpor.{safe}.{timer}.{}.{email}@cpor-worker.invalid>",
        start.timestamp_micros()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_inserted_as_they_grow_are_mostly_ascending_and_random_ones_are_not() {
        let grown: Vec<String> = (0..100).map(|i| format!("c{i:08}")).collect();
        assert!(mostly_ascending(&grown));
        let mut one_late = grown.clone();
        one_late.swap(10, 50);
        assert!(mostly_ascending(&one_late));
        // A page of random ids (UUIDs in the heap order the migration wrote them in).
        let random: Vec<String> = (0u64..100)
            .map(|i| format!("{:016x}", i.wrapping_mul(0x9e37_79b9_7f4a_7c15)))
            .collect();
        assert!(!mostly_ascending(&random));
        let descending: Vec<&String> = grown.iter().rev().collect();
        assert!(!mostly_ascending(&descending));
    }

    fn changed(id: &str) -> ChangedClaim {
        ChangedClaim {
            id: id.to_owned(),
            version: 1,
            updated_at: None,
            claim: Err(BadClaim {
                claim_id: id.to_owned(),
                problem: "unread".to_owned(),
            }),
            dirty_gen: 0,
            first_sight: false,
        }
    }

    fn summary(out: &[ChangedClaim]) -> Vec<(String, i64, String)> {
        out.iter()
            .map(|c| {
                let problem = c.claim.as_ref().err().map(|b| b.problem.clone());
                (c.id.clone(), c.version, problem.unwrap_or_default())
            })
            .collect()
    }

    #[test]
    fn rows_sharing_an_id_become_one_bad_claim_in_order_or_not() {
        let three = "3 rows of claims have this id: ids must be unique".to_owned();
        let two = "2 rows of claims have this id: ids must be unique".to_owned();
        let sorted = ["a", "b", "b", "b", "c", "d", "d"].map(changed).to_vec();
        assert_eq!(
            summary(&one_per_id(sorted)),
            vec![
                ("a".into(), 1, "unread".into()),
                ("b".into(), UNREADABLE_VERSION, three.clone()),
                ("c".into(), 1, "unread".into()),
                ("d".into(), UNREADABLE_VERSION, two.clone()),
            ]
        );
        let unsorted = ["b", "a", "b", "c", "b"].map(changed).to_vec();
        assert_eq!(
            summary(&one_per_id(unsorted)),
            vec![
                ("b".into(), UNREADABLE_VERSION, three),
                ("a".into(), 1, "unread".into()),
                ("c".into(), 1, "unread".into()),
            ]
        );
    }
}
