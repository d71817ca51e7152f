//! `cpor-worker deadline`: the arithmetic of SPEC §3 alone, one deadline or a batch.

mod batch;
mod json;
#[cfg(test)]
mod tests;

use std::borrow::Cow;
use std::io::Write;
use std::path::Path;

use anyhow::Context;
use chrono::{DateTime, Datelike, NaiveDate, Timelike, Utc};
use chrono_tz::Tz;
use clap::Args;
use serde::{Deserialize, Serialize};

use crate::calendar::{Calendar, Calendars, DayCount, Deadline, deadline};

/// Options of `deadline`.
#[derive(Debug, Args)]
pub struct DeadlineArgs {
    /// Country whose calendar counts (ISO 3166-1 alpha-2).
    #[arg(long, value_name = "CC", required_unless_present = "batch")]
    pub country: Option<String>,
    /// IANA time zone; default the calendar's.
    #[arg(long, value_name = "TZ")]
    pub time_zone: Option<String>,
    /// The event's instant (RFC 3339).
    #[arg(long, value_name = "TIME", required_unless_present = "batch")]
    pub from: Option<String>,
    /// Count N business days.
    #[arg(long, value_name = "N", conflicts_with = "calendar_days")]
    pub business_days: Option<u32>,
    /// Count N calendar days.
    #[arg(long, value_name = "N")]
    pub calendar_days: Option<u32>,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
    /// Read JSON lines on stdin, write one JSON line per input line.
    #[arg(long, conflicts_with_all = ["country", "from", "business_days", "calendar_days"])]
    pub batch: bool,
}

/// Runs `deadline`.
pub fn run(config: Option<&Path>, args: DeadlineArgs) -> anyhow::Result<()> {
    let config = super::load_config(config)?;
    let cals = Calendars::load(&config.calendars_dir, &config.calendars_disabled_groups)
        .context("calendars")?;
    if args.batch {
        let stdout = std::io::stdout();
        let mut out = std::io::BufWriter::with_capacity(1 << 16, stdout.lock());
        let threads = std::thread::available_parallelism().map_or(1, |n| n.get().min(16));
        batch::batch(
            &cals,
            std::io::stdin().lock(),
            &mut out,
            threads,
            batch::CHUNK,
        )?;
        out.flush().context("writing stdout")?;
        return Ok(());
    }
    let count = match (args.business_days, args.calendar_days) {
        (Some(n), None) => DayCount::Business(n),
        (None, Some(n)) => DayCount::Calendar(n),
        _ => anyhow::bail!("give one of --business-days N or --calendar-days N"),
    };
    let country = args.country.as_deref().unwrap_or_default();
    let from = args.from.as_deref().unwrap_or_default();
    let mut zones = ZoneCache::default();
    let (cal, d) = compute(
        &cals,
        &mut zones,
        country,
        args.time_zone.as_deref(),
        from,
        count,
    )
    .map_err(anyhow::Error::msg)?;
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    if args.json {
        write_json(&mut out, country, cal, from, &d)?;
    } else {
        write_text(&mut out, cal, from, &d)?;
    }
    Ok(())
}

/// One input line of `--batch`.
#[derive(Deserialize)]
struct Line<'a> {
    #[serde(borrow)]
    country: Cow<'a, str>,
    #[serde(borrow, default)]
    time_zone: Option<Cow<'a, str>>,
    #[serde(borrow)]
    from: Cow<'a, str>,
    business_days: Option<u32>,
    calendar_days: Option<u32>,
}

/// One output line (and the shape of `deadline --json`).
#[derive(Serialize)]
struct Answer<'a> {
    deadline: &'a str,
    last_day: NaiveDate,
    country: &'a str,
    calendar: &'a str,
    time_zone: &'a str,
    from: &'a str,
    from_date: NaiveDate,
    #[serde(skip_serializing_if = "Option::is_none")]
    business_days: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    calendar_days: Option<u32>,
}

/// An output line for an input line that could not be answered.
#[derive(Serialize)]
struct Failure<'a> {
    error: &'a str,
    line: u64,
}

/// Remembers the zones parsed so far (up to 64), since batches repeat a few of them.
#[derive(Default)]
struct ZoneCache {
    known: Vec<(Box<str>, Tz)>,
}

impl ZoneCache {
    fn parse(&mut self, name: &str) -> Result<Tz, String> {
        if let Some((_, tz)) = self.known.iter().find(|(n, _)| **n == *name) {
            return Ok(*tz);
        }
        let tz: Tz = name
            .parse()
            .map_err(|_| format!("unknown time zone {name:?} (expected an IANA name)"))?;
        if self.known.len() < 64 {
            self.known.push((name.into(), tz));
        }
        Ok(tz)
    }
}

fn compute<'c>(
    cals: &'c Calendars,
    zones: &mut ZoneCache,
    country: &str,
    time_zone: Option<&str>,
    from: &str,
    count: DayCount,
) -> Result<(&'c Calendar, Deadline), String> {
    let cal = cals.for_country(country).ok_or_else(|| {
        let known: Vec<&str> = cals.countries().collect();
        format!(
            "unknown country {country:?} (calendars serve: {})",
            known.join(", ")
        )
    })?;
    let tz = match time_zone {
        Some(name) => zones.parse(name)?,
        None => cal.time_zone(),
    };
    let from = DateTime::parse_from_rfc3339(from)
        .map_err(|e| format!("from {from:?} is not an RFC 3339 time: {e}"))?
        .with_timezone(&Utc);
    let d = deadline(cal, tz, from, count).map_err(|e| e.to_string())?;
    Ok((cal, d))
}

fn write_json(
    out: &mut impl Write,
    country: &str,
    cal: &Calendar,
    from: &str,
    d: &Deadline,
) -> std::io::Result<()> {
    let mut buf = [0u8; 20];
    let (business_days, calendar_days) = match d.count {
        DayCount::Business(n) => (Some(n), None),
        DayCount::Calendar(n) => (None, Some(n)),
    };
    let answer = Answer {
        deadline: &rfc3339_utc(d.due, &mut buf),
        last_day: d.last_day,
        country,
        calendar: cal.id(),
        time_zone: d.time_zone.name(),
        from,
        from_date: d.from_date,
        business_days,
        calendar_days,
    };
    serde_json::to_writer(&mut *out, &answer)?;
    out.write_all(b"\n")
}

fn write_text(
    out: &mut impl Write,
    cal: &Calendar,
    from: &str,
    d: &Deadline,
) -> anyhow::Result<()> {
    let plural = |n: u32| if n == 1 { "" } else { "s" };
    let counted = match d.count {
        DayCount::Business(n) => format!("{n} business day{}", plural(n)),
        DayCount::Calendar(n) => format!("{n} calendar day{}", plural(n)),
    };
    writeln!(
        out,
        "calendar:  {} ({}), time zone {}",
        cal.id(),
        cal.name(),
        d.time_zone
    )?;
    writeln!(out, "from:      {from} (local date {})", d.from_date)?;
    writeln!(out, "counted:   {counted} strictly after {}", d.from_date)?;
    if let DayCount::Business(_) = d.count {
        for day in d
            .from_date
            .iter_days()
            .skip(1)
            .take_while(|x| *x <= d.last_day)
        {
            if cal.is_business_day(day) {
                continue;
            }
            match cal.holiday(day) {
                Some(h) => writeln!(
                    out,
                    "  skipped: {day} {:?} ({}, group {})",
                    &*h.name,
                    day.weekday(),
                    h.group
                )?,
                None => writeln!(out, "  skipped: {day} weekend ({})", day.weekday())?,
            }
        }
    }
    writeln!(out, "last day:  {} (inclusive)", d.last_day)?;
    let local = d.due.with_timezone(&d.time_zone);
    writeln!(
        out,
        "deadline:  {} ({} local)",
        d.due.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        local.to_rfc3339()
    )?;
    Ok(())
}

/// `YYYY-MM-DDTHH:MM:SSZ` without allocating (falls back to chrono outside years 0–9999).
fn rfc3339_utc(t: DateTime<Utc>, buf: &mut [u8; 20]) -> Cow<'_, str> {
    let y = t.year();
    if !(0..=9999).contains(&y) || t.nanosecond() != 0 {
        return Cow::Owned(t.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true));
    }
    let digits = |buf: &mut [u8; 20], at: usize, v: u32, n: usize| {
        let mut v = v;
        for i in (0..n).rev() {
            buf[at + i] = b'0' + (v % 10) as u8;
            v /= 10;
        }
    };
    buf.copy_from_slice(b"0000-00-00T00:00:00Z");
    digits(buf, 0, y.unsigned_abs(), 4);
    digits(buf, 5, t.month(), 2);
    digits(buf, 8, t.day(), 2);
    digits(buf, 11, t.hour(), 2);
    digits(buf, 14, t.minute(), 2);
    digits(buf, 17, t.second(), 2);
    Cow::Borrowed(std::str::from_utf8(buf).unwrap_or(""))
}
