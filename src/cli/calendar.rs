//! `cpor-worker calendar …`: the holiday calendars the worker uses.

use std::io::Write;
use std::path::Path;

use anyhow::Context;
use chrono::{Datelike, NaiveDate};
use clap::{Args, Subcommand};
use serde::Serialize;

use crate::calendar::{Calendars, HolidayKind, RANGE_END, RANGE_START};

/// Options of `calendar`.
#[derive(Debug, Args)]
pub struct CalendarArgs {
    /// What to show.
    #[command(subcommand)]
    pub command: CalendarCommand,
}

/// Subcommands of `calendar`.
#[derive(Debug, Subcommand)]
pub enum CalendarCommand {
    /// The holidays of one country's calendar in one year.
    Holidays(HolidaysArgs),
    /// The pending deadlines a candidate set of calendars would move.
    Diff(super::calendar_diff::DiffArgs),
}

/// Options of `calendar holidays`.
#[derive(Debug, Args)]
pub struct HolidaysArgs {
    /// Country (ISO 3166-1 alpha-2).
    #[arg(long, value_name = "CC")]
    pub country: String,
    /// Year (1970–2199, the years deadlines are counted in); default the current year in the
    /// calendar's time zone.
    #[arg(long, value_name = "YYYY")]
    pub year: Option<i32>,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

/// The JSON of `calendar holidays --json` (see docs/calendar.md).
#[derive(Serialize)]
struct Listing<'a> {
    country: String,
    calendar: &'a str,
    name: &'a str,
    countries: &'a [String],
    time_zone: &'a str,
    year: i32,
    source: &'a str,
    disabled_groups: &'a [String],
    fingerprint: String,
    holidays: Vec<Entry<'a>>,
}

#[derive(Serialize)]
struct Entry<'a> {
    date: NaiveDate,
    weekday: String,
    name: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    local_name: Option<&'a str>,
    group: &'a str,
    kind: HolidayKind,
    eve: bool,
    observed: bool,
}

/// Runs `calendar`.
pub async fn run(config: Option<&Path>, args: CalendarArgs) -> anyhow::Result<()> {
    match args.command {
        CalendarCommand::Holidays(args) => holidays(config, args),
        CalendarCommand::Diff(args) => super::calendar_diff::run(config, args).await,
    }
}

/// Runs `calendar holidays`.
fn holidays(config: Option<&Path>, args: HolidaysArgs) -> anyhow::Result<()> {
    let config = super::load_config(config)?;
    let cals = Calendars::load(&config.calendars_dir, &config.calendars_disabled_groups)
        .context("calendars")?;
    let cal = cals.for_country(&args.country).with_context(|| {
        let known: Vec<&str> = cals.countries().collect();
        format!(
            "unknown country {:?} (calendars serve: {})",
            args.country,
            known.join(", ")
        )
    })?;
    let year = match args.year {
        Some(y) => y,
        None => crate::clock::system()
            .now()
            .with_timezone(&cal.time_zone())
            .year(),
    };
    let (first, last) = (RANGE_START.year(), RANGE_END.year());
    if !(first..=last).contains(&year) {
        anyhow::bail!(
            "--year {year} is outside the years deadlines are counted in ({first} to {last})"
        );
    }
    let holidays = cal.holidays_in_year(year);
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    if args.json {
        let listing = Listing {
            country: args.country.to_ascii_uppercase(),
            calendar: cal.id(),
            name: cal.name(),
            countries: cal.countries(),
            time_zone: cal.time_zone().name(),
            year,
            source: cal.source().trim(),
            disabled_groups: cal.disabled_groups(),
            fingerprint: format!("{:016x}", cal.fingerprint()),
            holidays: holidays
                .iter()
                .map(|h| Entry {
                    date: h.date,
                    weekday: h.date.weekday().to_string(),
                    name: &h.name,
                    local_name: h.local_name.as_deref(),
                    group: &h.group,
                    kind: h.kind,
                    eve: h.kind == HolidayKind::Eve,
                    observed: h.observed,
                })
                .collect(),
        };
        serde_json::to_writer_pretty(&mut out, &listing)?;
        writeln!(out)?;
        return Ok(());
    }
    writeln!(
        out,
        "{} ({}), {}, time zone {}",
        cal.id(),
        cal.name(),
        year,
        cal.time_zone()
    )?;
    for h in &holidays {
        let local = h
            .local_name
            .as_deref()
            .map(|l| format!(" ({l})"))
            .unwrap_or_default();
        let mut tags = Vec::new();
        if *h.group != *"public" {
            tags.push(format!("group {}", h.group));
        }
        if h.kind != HolidayKind::Holiday {
            tags.push(format!("{:?}", h.kind).to_lowercase());
        }
        let tags = if tags.is_empty() {
            String::new()
        } else {
            format!("  [{}]", tags.join(", "))
        };
        writeln!(
            out,
            "{}  {}  {}{local}{tags}",
            h.date,
            h.date.weekday(),
            h.name
        )?;
    }
    if !cal.disabled_groups().is_empty() {
        writeln!(out, "switched off: {}", cal.disabled_groups().join(", "))?;
    }
    Ok(())
}
