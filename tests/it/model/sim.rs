//! The simulated main system: claims that walk random legal SPEC §2 paths (re-opened lifecycles
//! included), written with raw SQL in varied timestamp formats, some committed late.

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, FixedOffset, SubsecRound, Utc};
use cpor_worker::store::{AnyStore, Backend, Store};

use crate::harness::exec;

/// The claim columns the simulation writes, as the main system last committed them.
#[derive(Clone, Debug, Default)]
pub struct Row {
    pub status: &'static str,
    pub submitted_at: Option<DateTime<Utc>>,
    pub review_started_at: Option<DateTime<Utc>>,
    pub info_requested_at: Option<DateTime<Utc>>,
    pub approved_at: Option<DateTime<Utc>>,
    pub rejected_at: Option<DateTime<Utc>>,
    pub rejection_reason: Option<String>,
    pub customer_declined_at: Option<DateTime<Utc>>,
    pub dispute_opened_at: Option<DateTime<Utc>>,
    pub dispute_resolved_at: Option<DateTime<Utc>>,
}

impl Row {
    /// A dispute of the current rejection (one opened before it belongs to an earlier one).
    pub fn dispute_of_this_rejection(&self) -> Option<DateTime<Utc>> {
        self.dispute_opened_at
            .filter(|o| self.rejected_at.is_none_or(|r| *o >= r))
    }
}

/// One simulated claim and what the simulation knows about it.
#[derive(Clone, Debug)]
pub struct SimClaim {
    pub id: String,
    pub country: &'static str,
    pub tz: Option<&'static str>,
    pub row: Row,
    /// The latest event instant written (each new event lies after it).
    pub last_event: DateTime<Utc>,
    /// `rejected_at` of a rejection the worker made itself (its notice is settled by it).
    pub worker_rejected: Option<DateTime<Utc>>,
    /// Consent emails delivered, by the approval they belong to: approved_at → pass instant.
    pub consent_sent: BTreeMap<DateTime<Utc>, DateTime<Utc>>,
    /// Its customer address is one the SMTP server refuses (a consent email to it is
    /// dead-lettered) and the main system has not corrected it yet.
    pub bad_address: bool,
    /// What happened to it, for violation messages.
    pub log: Vec<String>,
}

/// The customer address the test SMTP server refuses (`--reject`).
pub const REFUSED: &str = "gone@akerlund.example";

pub const INFO_REASONS: &[&str] = &[
    "missing_all_poe",
    "missing_customer_signature",
    "missing_or_old_dates",
    "missing_partner_solution",
    "missing_products",
];
pub const REVIEWER_REJECTIONS: &[&str] = &[
    "insufficient_poe",
    "customer_consent_missing_in_poe",
    "missing_products",
    "poe_not_available",
];
const COUNTRIES: &[(&str, &[Option<&str>])] = &[
    (
        "SE",
        &[
            None,
            None,
            Some("Europe/Stockholm"),
            Some("America/New_York"),
        ],
    ),
    (
        "US",
        &[None, Some("America/Los_Angeles"), Some("Pacific/Auckland")],
    ),
    ("GB", &[None, Some("Europe/London")]),
    ("DE", &[None, Some("Asia/Kolkata")]),
];

/// Seeded randomness with a few helpers.
pub struct Dice(pub fastrand::Rng);

impl Dice {
    pub fn chance(&mut self, p: f64) -> bool {
        self.0.f64() < p
    }
    pub fn pick<'a, T>(&mut self, xs: &'a [T]) -> &'a T {
        &xs[self.0.usize(..xs.len())]
    }
    pub fn secs(&mut self, lo: i64, hi: i64) -> Duration {
        Duration::seconds(self.0.i64(lo..=hi))
    }
}

/// A timestamp as the main system might write it: the SQL literal and the instant the database
/// keeps of it (PostgreSQL rounds to microseconds).
pub fn literal(
    dice: &mut Dice,
    backend: Backend,
    at: DateTime<Utc>,
) -> (String, DateTime<Utc>, &'static str) {
    let at = at.trunc_subsecs(0);
    let formats: &[&str] = match backend {
        Backend::Sqlite => &["rfc3339", "spaced", "offset", "unix", "nanos", "millis+01"],
        Backend::Postgres => &["rfc3339", "offset", "nanos", "millis+01"],
    };
    let f = *dice.pick(formats);
    let west = FixedOffset::west_opt(5 * 3600).expect("offset");
    let east = FixedOffset::east_opt(3600).expect("offset");
    match f {
        "spaced" => (format!("'{}'", at.format("%Y-%m-%d %H:%M:%S")), at, f),
        "offset" => (
            format!(
                "'{}'",
                at.with_timezone(&west).format("%Y-%m-%dT%H:%M:%S%:z")
            ),
            at,
            f,
        ),
        "unix" => (at.timestamp().to_string(), at, f),
        "nanos" => {
            let ns = dice.0.u32(1..1_000_000_000);
            let exact = at + Duration::nanoseconds(i64::from(ns));
            let kept = match backend {
                Backend::Postgres => exact.round_subsecs(6),
                Backend::Sqlite => exact,
            };
            (
                format!("'{}.{ns:09}Z'", at.format("%Y-%m-%dT%H:%M:%S")),
                kept,
                f,
            )
        }
        "millis+01" => {
            let ms = dice.0.i64(0..1000);
            let exact = at + Duration::milliseconds(ms);
            (
                format!(
                    "'{}'",
                    exact
                        .with_timezone(&east)
                        .format("%Y-%m-%dT%H:%M:%S%.3f%:z")
                ),
                exact,
                f,
            )
        }
        _ => (format!("'{}'", at.format("%Y-%m-%dT%H:%M:%SZ")), at, f),
    }
}

/// Writes `sets` (column, SQL value) to claim `id` as the main system would: one UPDATE that
/// bumps the version and (mostly) sets `updated_at`.
async fn update(
    store: &AnyStore,
    dice: &mut Dice,
    id: &str,
    sets: &[(&str, String)],
    at: DateTime<Utc>,
) {
    let mut parts: Vec<String> = sets.iter().map(|(c, v)| format!("{c} = {v}")).collect();
    if !dice.chance(0.15) {
        // Sometimes only the version moves: the change record, not the timestamp, must name it.
        let (lit, _, _) = literal(dice, store.backend(), at);
        parts.push(format!("updated_at = {lit}"));
    }
    parts.push("version = version + 1".to_owned());
    exec(
        store,
        &format!("UPDATE claims SET {} WHERE id = '{id}'", parts.join(", ")),
    )
    .await;
}

/// Inserts a new claim in a random early status, events at `at`.
pub async fn create(store: &AnyStore, dice: &mut Dice, id: String, at: DateTime<Utc>) -> SimClaim {
    let (country, zones) = *dice.pick(COUNTRIES);
    let tz = *dice.pick(zones);
    let mut row = Row::default();
    let mut cols = String::new();
    let mut vals = String::new();
    let ts = |dice: &mut Dice, col: &str, cols: &mut String, vals: &mut String| {
        let (lit, kept, _) = literal(dice, store.backend(), at);
        cols.push_str(&format!(", {col}"));
        vals.push_str(&format!(", {lit}"));
        kept
    };
    let roll = dice.0.u32(0..100);
    row.status = match roll {
        0..15 => "draft",
        15..55 => "submitted",
        55..70 => "partner_action_required",
        70..88 => "approved",
        _ => "rejected",
    };
    match row.status {
        "submitted" => row.submitted_at = Some(ts(dice, "submitted_at", &mut cols, &mut vals)),
        "partner_action_required" => {
            row.info_requested_at = Some(ts(dice, "info_requested_at", &mut cols, &mut vals));
            cols.push_str(", info_request_reason");
            vals.push_str(&format!(", '{}'", dice.pick(INFO_REASONS)));
        }
        "approved" => row.approved_at = Some(ts(dice, "approved_at", &mut cols, &mut vals)),
        "rejected" => {
            row.rejected_at = Some(ts(dice, "rejected_at", &mut cols, &mut vals));
            let r = if dice.chance(0.5) {
                "partner_request"
            } else {
                dice.pick(REVIEWER_REJECTIONS)
            };
            row.rejection_reason = Some(r.to_owned());
            cols.push_str(", rejection_reason");
            vals.push_str(&format!(", '{r}'"));
        }
        _ => {}
    }
    let (updated, _, _) = literal(dice, store.backend(), at);
    let tz_val = tz.map_or("NULL".to_owned(), |z| format!("'{z}'"));
    let locale = dice.pick(&["sv-SE", "en", "de-DE", "en-GB"]);
    let bad_address = dice.chance(0.12);
    let customer = if bad_address {
        REFUSED
    } else {
        "it@akerlund.example"
    };
    exec(
        store,
        &format!(
            "INSERT INTO claims (id, status, partner_name, partner_email, customer_name, \
             customer_email, products, country, time_zone, locale, updated_at, version{cols}) \
             VALUES ('{id}', '{status}', 'Nordljus Konsult AB', 'claims@nordljus.example', \
             'Åkerlund & Söner AB', '{customer}', 'Dynamics 365 Sales', '{country}', \
             {tz_val}, '{locale}', {updated}, 1{vals})",
            status = row.status
        ),
    )
    .await;
    let last_event = [
        row.submitted_at,
        row.info_requested_at,
        row.approved_at,
        row.rejected_at,
    ]
    .into_iter()
    .flatten()
    .max()
    .unwrap_or(at);
    SimClaim {
        log: vec![format!(
            "created {} at {at} ({country}, {tz:?}{})",
            row.status,
            if bad_address { ", refused address" } else { "" }
        )],
        bad_address,
        id,
        country,
        tz,
        row,
        last_event,
        worker_rejected: None,
        consent_sent: BTreeMap::new(),
    }
}

/// One random legal step of the main system on `c` at (wall) instant `now`: the event is dated
/// a little before `now`, or (a late commit) hours before it, but after the claim's last event.
pub async fn step(store: &AnyStore, dice: &mut Dice, c: &mut SimClaim, now: DateTime<Utc>) {
    if c.bad_address && c.row.status == "approved" && dice.chance(0.3) {
        // The main system corrects the customer's address (the consent round must restart).
        c.bad_address = false;
        c.log.push(format!("customer address corrected at {now}"));
        let sets = [("customer_email", "'it@akerlund.example'".to_owned())];
        update(store, dice, &c.id, &sets, now).await;
        return;
    }
    let late = dice.chance(0.15);
    let back = if late {
        dice.secs(3600, 8 * 3600)
    } else {
        dice.secs(0, 1800)
    };
    let floor = c.last_event + Duration::seconds(2);
    let ev = (now - back).max(floor);
    if ev > now + Duration::hours(1) {
        return; // the claim's last event is still ahead of the clock (a step back): wait
    }
    let backend = store.backend();
    let mut sets: Vec<(&str, String)> = Vec::new();
    let stamp = |dice: &mut Dice, col: &'static str, sets: &mut Vec<(&str, String)>| {
        let (lit, kept, _) = literal(dice, backend, ev);
        sets.push((col, lit));
        kept
    };
    let r = &mut c.row;
    let what: String;
    // Some statuses mostly wait: customers rarely decline, partners take their time.
    let idle = match r.status {
        "approved" => 0.8,
        "partner_action_required" | "rejected" => 0.5,
        _ => 0.0,
    };
    if dice.chance(idle) {
        return;
    }
    match r.status {
        "draft" => {
            r.status = "submitted";
            r.submitted_at = Some(stamp(dice, "submitted_at", &mut sets));
            what = "submitted".into();
        }
        "submitted" if dice.chance(0.8) => {
            r.status = "under_review";
            r.review_started_at = Some(stamp(dice, "review_started_at", &mut sets));
            what = "review started".into();
        }
        "submitted" | "partner_action_required" if dice.chance(0.3) => {
            r.status = "rejected";
            r.rejected_at = Some(stamp(dice, "rejected_at", &mut sets));
            r.rejection_reason = Some("partner_request".into());
            sets.push(("rejection_reason", "'partner_request'".into()));
            what = "rejected at the partner's request".into();
        }
        "partner_action_required" => {
            r.status = "submitted";
            r.submitted_at = Some(stamp(dice, "submitted_at", &mut sets));
            what = "resubmitted".into();
        }
        "under_review" => {
            let roll = dice.0.u32(0..100);
            if roll < 35 {
                r.status = "partner_action_required";
                r.info_requested_at = Some(stamp(dice, "info_requested_at", &mut sets));
                let reason = dice.pick(INFO_REASONS);
                sets.push(("info_request_reason", format!("'{reason}'")));
                what = format!("information requested ({reason})");
            } else if roll < 70 {
                r.status = "approved";
                r.approved_at = Some(stamp(dice, "approved_at", &mut sets));
                what = "approved".into();
            } else if roll < 90 {
                let reason = dice.pick(REVIEWER_REJECTIONS);
                r.status = "rejected";
                r.rejected_at = Some(stamp(dice, "rejected_at", &mut sets));
                r.rejection_reason = Some((*reason).into());
                sets.push(("rejection_reason", format!("'{reason}'")));
                what = format!("rejected ({reason})");
            } else {
                r.status = "rejected";
                r.rejected_at = Some(stamp(dice, "rejected_at", &mut sets));
                r.rejection_reason = Some("partner_request".into());
                sets.push(("rejection_reason", "'partner_request'".into()));
                what = "rejected at the partner's request".into();
            }
        }
        "approved" if dice.chance(0.75) => {
            // The customer declines (the worker rejects, or reports a late decline).
            r.customer_declined_at = Some(stamp(dice, "customer_declined_at", &mut sets));
            what = "customer declined".into();
        }
        "approved" => {
            // The main system rejects an approved claim itself (a re-opened lifecycle).
            let reason = dice.pick(REVIEWER_REJECTIONS);
            r.status = "rejected";
            r.rejected_at = Some(stamp(dice, "rejected_at", &mut sets));
            r.rejection_reason = Some((*reason).into());
            sets.push(("rejection_reason", format!("'{reason}'")));
            what = format!("rejected again by a reviewer ({reason})");
        }
        "rejected" if r.dispute_of_this_rejection().is_none() => {
            r.dispute_opened_at = Some(stamp(dice, "dispute_opened_at", &mut sets));
            what = "dispute opened".into();
        }
        "rejected" if r.dispute_resolved_at < r.dispute_opened_at && dice.chance(0.5) => {
            let at = stamp(dice, "approved_at", &mut sets);
            let lit = sets.last().map(|s| s.1.clone()).unwrap_or_default();
            sets.push(("dispute_resolved_at", lit));
            r.status = "approved";
            r.approved_at = Some(at);
            r.dispute_resolved_at = Some(at);
            what = "dispute overturned: approved again".into();
        }
        "rejected" if r.dispute_resolved_at < r.dispute_opened_at => {
            r.dispute_resolved_at = Some(stamp(dice, "dispute_resolved_at", &mut sets));
            what = "dispute upheld".into();
        }
        _ => return,
    }
    if sets.is_empty() {
        return;
    }
    let status = r.status;
    sets.push(("status", format!("'{status}'")));
    c.last_event = ev + Duration::seconds(1);
    c.log.push(format!(
        "{what} (event {ev}{}, written at {now})",
        if late { ", late commit" } else { "" }
    ));
    update(store, dice, &c.id, &sets, now).await;
}
