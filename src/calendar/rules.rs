//! The calendar file format (TOML) and its validation into [`CalendarDef`]: every problem is an
//! error naming the file and line, so a bad calendar stops start-up instead of miscounting.

use std::collections::BTreeSet;
use std::ops::Range;

use chrono::{NaiveDate, Weekday};
use chrono_tz::Tz;
use serde::Deserialize;
use toml::Spanned;

use super::CalendarError;

/// What kind of non-working day a rule produces (shown in listings; eves are flagged).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum HolidayKind {
    /// A public (bank, federal) holiday.
    Holiday,
    /// The eve of a holiday, a non-working day by custom (e.g. Sweden's Christmas Eve).
    Eve,
    /// A one-off or company closure.
    Closure,
}

/// How a holiday that falls on a weekend is observed on a weekday as well.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Observed {
    /// Not moved.
    None,
    /// US federal: Saturday → the Friday before, Sunday → the Monday after.
    NearestWeekday,
    /// UK substitute day: the next weekday that is not already a holiday.
    Substitute,
}

/// When a rule falls in a given year.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum DateRule {
    /// The same month and day every year.
    Fixed {
        /// 1–12.
        month: u32,
        /// Day of the month.
        day: u32,
    },
    /// Days after (negative: before) Western Easter Sunday.
    Easter(i64),
    /// The n-th (negative: from the end) given weekday of a month.
    NthWeekday {
        /// 1–12.
        month: u32,
        /// 1..=5, or -1..=-5 counting from the end.
        nth: i32,
        /// The weekday.
        weekday: Weekday,
    },
    /// The one given weekday in the seven days starting at `from` (month, day).
    WeekdayBetween {
        /// First possible (month, day).
        from: (u32, u32),
        /// The weekday.
        weekday: Weekday,
    },
}

/// One validated holiday rule.
#[derive(Clone, Debug)]
pub struct Rule {
    /// English name.
    pub name: String,
    /// Name in the country's language, if given.
    pub local_name: Option<String>,
    /// The switchable group (`public` unless the file says otherwise).
    pub group: String,
    /// Holiday, eve or closure.
    pub kind: HolidayKind,
    /// When it falls.
    pub date: DateRule,
    /// Weekend shift.
    pub observed: Observed,
    /// First year it applies.
    pub first_year: i32,
    /// Last year it applies.
    pub last_year: i32,
    /// Years it does not apply (moved days are then listed as explicit dates).
    pub skip_years: Vec<i32>,
    /// Line in the file.
    pub line: usize,
}

/// One explicit date (one-off holiday, moved day or company closure).
#[derive(Clone, Debug)]
pub struct ExtraDate {
    /// The day.
    pub date: NaiveDate,
    /// English name.
    pub name: String,
    /// Name in the country's language, if given.
    pub local_name: Option<String>,
    /// The switchable group.
    pub group: String,
    /// Holiday, eve or closure.
    pub kind: HolidayKind,
    /// Line in the file.
    pub line: usize,
}

/// A parsed, validated calendar file.
#[derive(Clone, Debug)]
pub struct CalendarDef {
    /// Calendar id (e.g. `SE`).
    pub id: String,
    /// Human name.
    pub name: String,
    /// Default time zone.
    pub time_zone: Tz,
    /// ISO 3166-1 alpha-2 codes served.
    pub countries: Vec<String>,
    /// Where the rules come from.
    pub source: String,
    /// The file's own `version` (optional), recorded with every deadline it counts.
    pub version: Option<String>,
    /// Recurring rules.
    pub rules: Vec<Rule>,
    /// Explicit dates.
    pub dates: Vec<ExtraDate>,
    /// The file it came from (for error messages).
    pub origin: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    id: Spanned<String>,
    name: String,
    time_zone: Spanned<String>,
    countries: Spanned<Vec<String>>,
    source: String,
    version: Option<String>,
    #[serde(default)]
    rule: Vec<Spanned<RawRule>>,
    #[serde(default)]
    date: Vec<Spanned<RawDate>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRule {
    name: String,
    local_name: Option<String>,
    group: Option<String>,
    kind: Option<HolidayKind>,
    date: Option<String>,
    easter: Option<i64>,
    month: Option<u32>,
    nth: Option<i32>,
    weekday: Option<String>,
    between: Option<[String; 2]>,
    observed: Option<String>,
    first_year: Option<i32>,
    last_year: Option<i32>,
    #[serde(default)]
    skip_years: Vec<i32>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDate {
    date: toml::value::Datetime,
    name: String,
    local_name: Option<String>,
    group: Option<String>,
    kind: Option<HolidayKind>,
}

/// Earliest year a rule may name; rules are meant for the engine's range and a margin.
pub const MIN_RULE_YEAR: i32 = 1900;
/// Latest year a rule may name.
pub const MAX_RULE_YEAR: i32 = 2400;

/// Parses and validates one calendar file; `origin` names it in errors.
pub fn parse(text: &str, origin: &str) -> Result<CalendarDef, CalendarError> {
    let err = |span: Option<Range<usize>>, message: String| CalendarError::Rule {
        file: origin.to_owned(),
        line: span.map_or(1, |s| line_of(text, s.start)),
        message,
    };
    let raw: RawFile = toml::from_str(text).map_err(|e| {
        let message = e.message().trim_end().to_owned();
        err(e.span(), message)
    })?;
    let id = raw.id.get_ref().trim().to_owned();
    if id.is_empty()
        || !id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        return Err(err(
            Some(raw.id.span()),
            format!("id {id:?} must be letters, digits, - or _"),
        ));
    }
    let time_zone: Tz = raw.time_zone.get_ref().parse().map_err(|_| {
        err(
            Some(raw.time_zone.span()),
            format!("unknown time zone {:?}", raw.time_zone.get_ref()),
        )
    })?;
    let mut countries = Vec::new();
    for c in raw.countries.get_ref() {
        if c.len() != 2 || !c.chars().all(|ch| ch.is_ascii_uppercase()) {
            return Err(err(
                Some(raw.countries.span()),
                format!("country {c:?} is not an ISO 3166-1 alpha-2 code (two capital letters)"),
            ));
        }
        countries.push(c.clone());
    }
    let mut rules = Vec::new();
    for r in &raw.rule {
        let line = line_of(text, r.span().start);
        rules.push(rule(r.get_ref(), line).map_err(|m| err(Some(r.span()), m))?);
    }
    let mut dates = Vec::new();
    for d in &raw.date {
        let line = line_of(text, d.span().start);
        dates.push(extra_date(d.get_ref(), line).map_err(|m| err(Some(d.span()), m))?);
    }
    let def = CalendarDef {
        id,
        name: raw.name,
        time_zone,
        countries,
        source: raw.source,
        version: raw
            .version
            .map(|v| v.trim().to_owned())
            .filter(|v| !v.is_empty()),
        rules,
        dates,
        origin: origin.to_owned(),
    };
    check_overlaps(&def)?;
    Ok(def)
}

/// 1-based line of a byte offset.
fn line_of(text: &str, offset: usize) -> usize {
    text.as_bytes()[..offset.min(text.len())]
        .iter()
        .filter(|&&b| b == b'\n')
        .count()
        + 1
}

fn group(g: &Option<String>) -> Result<String, String> {
    let g = g.as_deref().unwrap_or("public");
    if g.is_empty()
        || !g
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-')
    {
        return Err(format!(
            "group {g:?} must be lower-case letters, digits, - or _"
        ));
    }
    Ok(g.to_owned())
}

fn rule(r: &RawRule, line: usize) -> Result<Rule, String> {
    let weekday = r.weekday.as_deref().map(parse_weekday).transpose()?;
    let date = match (&r.date, r.easter, r.month, r.nth, weekday, &r.between) {
        (Some(md), None, None, None, None, None) => {
            let (month, day) = month_day(md)?;
            DateRule::Fixed { month, day }
        }
        (None, Some(off), None, None, None, None) => {
            if !(-100..=100).contains(&off) {
                return Err(format!("easter offset {off} is outside -100..=100"));
            }
            DateRule::Easter(off)
        }
        (None, None, Some(month), Some(nth), Some(weekday), None) => {
            if !(1..=12).contains(&month) {
                return Err(format!("month {month} is not 1–12"));
            }
            if nth == 0 || !(-5..=5).contains(&nth) {
                return Err(format!("nth {nth} must be 1..=5 or -1..=-5 (last)"));
            }
            DateRule::NthWeekday {
                month,
                nth,
                weekday,
            }
        }
        (None, None, None, None, Some(weekday), Some([a, b])) => {
            let from = month_day(a)?;
            let to = month_day(b)?;
            // A leap year is where the distance is checked; Feb 29 only counts there.
            let d = |(m, dd): (u32, u32)| NaiveDate::from_ymd_opt(2000, m, dd);
            match (d(from), d(to)) {
                (Some(x), Some(y)) if (y - x).num_days() == 6 => {}
                _ => {
                    return Err(format!(
                        "between [{a:?}, {b:?}] must span exactly seven days within one year"
                    ));
                }
            }
            DateRule::WeekdayBetween { from, weekday }
        }
        _ => {
            return Err(
                "a rule needs exactly one of: date = \"MM-DD\"; easter = OFFSET; month + nth + weekday; weekday + between"
                    .to_owned(),
            );
        }
    };
    let observed = match r.observed.as_deref() {
        None | Some("none") => Observed::None,
        Some("nearest_weekday") => Observed::NearestWeekday,
        Some("substitute") => Observed::Substitute,
        Some(o) => {
            return Err(format!(
                "observed {o:?} is not one of none, nearest_weekday, substitute"
            ));
        }
    };
    let first_year = r.first_year.unwrap_or(MIN_RULE_YEAR);
    let last_year = r.last_year.unwrap_or(MAX_RULE_YEAR);
    if !(MIN_RULE_YEAR..=MAX_RULE_YEAR).contains(&first_year)
        || !(MIN_RULE_YEAR..=MAX_RULE_YEAR).contains(&last_year)
        || first_year > last_year
    {
        return Err(format!(
            "first_year {first_year} / last_year {last_year} must be ordered and within {MIN_RULE_YEAR}–{MAX_RULE_YEAR}"
        ));
    }
    if let Some(y) = r
        .skip_years
        .iter()
        .find(|y| !(first_year..=last_year).contains(*y))
    {
        return Err(format!("skip_years names {y}, outside the rule's years"));
    }
    if let DateRule::Fixed { month: 2, day: 29 } = date {
        return Err("02-29 does not occur every year; list the dates explicitly".to_owned());
    }
    Ok(Rule {
        name: nonempty(&r.name)?,
        local_name: r.local_name.clone(),
        group: group(&r.group)?,
        kind: r.kind.unwrap_or(HolidayKind::Holiday),
        date,
        observed,
        first_year,
        last_year,
        skip_years: r.skip_years.clone(),
        line,
    })
}

fn extra_date(d: &RawDate, line: usize) -> Result<ExtraDate, String> {
    let date = match (d.date.date, d.date.time, d.date.offset) {
        (Some(x), None, None) => {
            NaiveDate::from_ymd_opt(x.year.into(), x.month.into(), x.day.into())
        }
        _ => None,
    }
    .ok_or_else(|| format!("date {} must be a plain date like 2022-09-19", d.date))?;
    Ok(ExtraDate {
        date,
        name: nonempty(&d.name)?,
        local_name: d.local_name.clone(),
        group: group(&d.group)?,
        kind: d.kind.unwrap_or(HolidayKind::Holiday),
        line,
    })
}

fn nonempty(s: &str) -> Result<String, String> {
    if s.trim().is_empty() {
        return Err("name must not be empty".to_owned());
    }
    Ok(s.to_owned())
}

fn month_day(s: &str) -> Result<(u32, u32), String> {
    let bad = || format!("{s:?} is not a month-day like \"12-25\"");
    let (m, d) = s.split_once('-').ok_or_else(bad)?;
    let (m, d): (u32, u32) = (m.parse().map_err(|_| bad())?, d.parse().map_err(|_| bad())?);
    NaiveDate::from_ymd_opt(2000, m, d).ok_or_else(bad)?;
    Ok((m, d))
}

fn parse_weekday(s: &str) -> Result<Weekday, String> {
    s.parse::<Weekday>()
        .map_err(|_| format!("weekday {s:?} is not one of Mon, Tue, Wed, Thu, Fri, Sat, Sun"))
}

/// Two rules with the same name, or the same date rule, in overlapping years; or two explicit
/// entries for one date and group. (Different holidays that coincide in some year, like
/// Ascension Day on 1 May 2008, are fine.)
fn check_overlaps(def: &CalendarDef) -> Result<(), CalendarError> {
    let overlap = |a: &Rule, b: &Rule| {
        a.group == b.group && a.first_year <= b.last_year && b.first_year <= a.last_year
    };
    for (i, b) in def.rules.iter().enumerate() {
        for a in &def.rules[..i] {
            if overlap(a, b) && (a.name == b.name || a.date == b.date) {
                return Err(CalendarError::Rule {
                    file: def.origin.clone(),
                    line: b.line,
                    message: format!(
                        "rule {:?} overlaps the rule {:?} on line {} (same name or same day, overlapping years); split them with first_year/last_year",
                        b.name, a.name, a.line
                    ),
                });
            }
        }
    }
    let mut seen = BTreeSet::new();
    for d in &def.dates {
        if !seen.insert((d.date, d.group.as_str())) {
            return Err(CalendarError::Rule {
                file: def.origin.clone(),
                line: d.line,
                message: format!("date {} is listed twice in group {}", d.date, d.group),
            });
        }
    }
    Ok(())
}
