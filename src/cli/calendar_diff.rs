//! `cpor-worker calendar diff --calendars-dir DIR`: what a candidate set of calendars would do to
//! the deadlines running now — every pending deadline whose last day would move, earlier or later,
//! whether the old day was already named in a sent email, and the day that would apply under
//! `calendar.never_shorten_communicated`. Reads only.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::Context;
use chrono::{DateTime, NaiveDate, Utc};
use clap::Args;
use serde::Serialize;

use crate::calendar::{Calendar, Calendars};
use crate::claim::Claim;
use crate::store::Store;
use crate::timers::{ClaimFacts, TimerKind, TimerSettings, TimerState, evaluate};

/// Options of `calendar diff`.
#[derive(Debug, Args)]
pub struct DiffArgs {
    /// Folder of candidate calendar files (read like `calendars.dir`).
    #[arg(long, value_name = "DIR")]
    pub calendars_dir: PathBuf,
    /// Output format: table, json or csv.
    #[arg(long, default_value = "table", value_parser = ["table", "json", "csv"])]
    pub format: String,
    /// The instant whose pending deadlines are compared (RFC 3339; default now).
    #[arg(long, value_name = "TIME")]
    pub at: Option<String>,
}

/// One pending deadline that the candidate calendars would move.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct DiffRow {
    /// The claim.
    pub claim_id: String,
    /// The timer whose deadline moves.
    pub timer: TimerKind,
    /// The last day now (as the worker applies it).
    pub old_last_day: NaiveDate,
    /// The last day the candidate calendars count.
    pub new_last_day: NaiveDate,
    /// `earlier` or `later`.
    pub direction: &'static str,
    /// True when a sent email already named this deadline.
    pub communicated: bool,
    /// The last day that would apply: `new_last_day`, unless it is earlier than a communicated
    /// day and `calendar.never_shorten_communicated` is on.
    pub applied_last_day: NaiveDate,
}

/// The pending deadlines of `claim` that move from `old` to `new`. Pure.
pub fn diff_claim(
    claim: &Claim,
    old: &Calendar,
    new: &Calendar,
    facts: &ClaimFacts,
    settings: TimerSettings,
    at: DateTime<Utc>,
) -> Vec<DiffRow> {
    let counted = TimerSettings {
        never_shorten_communicated: false,
        ..settings
    };
    let (Ok(before), Ok(counted), Ok(applied)) = (
        evaluate(claim, old, facts, settings, at),
        evaluate(claim, new, facts, counted, at),
        evaluate(claim, new, facts, settings, at),
    ) else {
        return Vec::new();
    };
    let mut rows = Vec::new();
    for ((b, c), a) in before.iter().zip(&counted).zip(&applied) {
        if !matches!(b.state, TimerState::Pending | TimerState::Due) {
            continue;
        }
        let (Some(bd), Some(cd), Some(ad), Some(start)) =
            (&b.deadline, &c.deadline, &a.deadline, b.start)
        else {
            continue;
        };
        // The reminder watches the response deadline: that timer's row says it.
        if b.kind == TimerKind::PartnerResponseReminder || bd.last_day == cd.last_day {
            continue;
        }
        rows.push(DiffRow {
            claim_id: claim.id.clone(),
            timer: b.kind,
            old_last_day: bd.last_day,
            new_last_day: cd.last_day,
            direction: if cd.last_day < bd.last_day {
                "earlier"
            } else {
                "later"
            },
            communicated: facts.communicated(b.kind, start).is_some(),
            applied_last_day: ad.last_day,
        });
    }
    rows
}

/// Runs `calendar diff`.
pub async fn run(config_path: Option<&Path>, args: DiffArgs) -> anyhow::Result<()> {
    let config = super::load_config(config_path)?;
    let at = match &args.at {
        Some(t) => super::parse_time("--at", t)?,
        None => crate::clock::system().now(),
    };
    let engine = super::tick::engine(&config)?;
    let candidate = Calendars::load(&args.calendars_dir, &config.calendars_disabled_groups)
        .with_context(|| format!("candidate calendars in {}", args.calendars_dir.display()))?;
    let store = super::dry_run::open_read_only(&config).await?;
    let mut rows = Vec::new();
    let mut after = String::new();
    loop {
        let page = store
            .claims_page(&after, 500)
            .await
            .context("reading claims")?;
        let Some(last) = page.last() else { break };
        after = last.id.clone();
        let ids: Vec<String> = page.iter().map(|c| c.id.clone()).collect();
        let mut facts = store
            .facts(&ids)
            .await
            .context("reading what the worker did")?;
        for c in &page {
            let Ok(claim) = &c.claim else { continue };
            let (Some(old), Some(new)) = (
                engine.calendars.for_country(&claim.country),
                candidate.for_country(&claim.country),
            ) else {
                continue;
            };
            let f = facts.remove(&claim.id).unwrap_or_default();
            rows.extend(diff_claim(claim, old, new, &f, engine.settings, at));
        }
    }
    let stdout = std::io::stdout();
    write_rows(&mut stdout.lock(), &rows, &args.format)?;
    Ok(())
}

fn write_rows(out: &mut impl Write, rows: &[DiffRow], format: &str) -> anyhow::Result<()> {
    let cells = |r: &DiffRow| {
        [
            r.claim_id.clone(),
            r.timer.to_string(),
            r.old_last_day.to_string(),
            r.new_last_day.to_string(),
            r.direction.to_owned(),
            r.communicated.to_string(),
            r.applied_last_day.to_string(),
        ]
    };
    const HEAD: [&str; 7] = [
        "claim_id",
        "timer",
        "old_last_day",
        "new_last_day",
        "direction",
        "communicated",
        "applied_last_day",
    ];
    match format {
        "json" => {
            serde_json::to_writer_pretty(&mut *out, rows)?;
            writeln!(out)?;
        }
        "csv" => {
            writeln!(out, "{}", HEAD.join(","))?;
            for r in rows {
                let line: Vec<String> = cells(r).iter().map(|c| csv_cell(c)).collect();
                writeln!(out, "{}", line.join(","))?;
            }
        }
        _ => {
            let body: Vec<[String; 7]> = rows.iter().map(cells).collect();
            let mut width = HEAD.map(str::len);
            for row in &body {
                for (w, c) in width.iter_mut().zip(row) {
                    *w = (*w).max(c.chars().count());
                }
            }
            let head = HEAD.map(str::to_owned);
            for row in std::iter::once(&head).chain(&body) {
                let line: Vec<String> = row
                    .iter()
                    .zip(width)
                    .map(|(c, w)| format!("{c:<w$}"))
                    .collect();
                writeln!(out, "{}", line.join("  ").trim_end())?;
            }
            writeln!(out, "{} deadline(s) would move", rows.len())?;
        }
    }
    Ok(())
}

/// A CSV cell, quoted when it holds a comma, quote or line break.
fn csv_cell(c: &str) -> String {
    if c.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", c.replace('"', "\"\""))
    } else {
        c.to_owned()
    }
}
