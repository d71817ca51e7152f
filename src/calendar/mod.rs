//! Holiday calendars as data, business-day arithmetic and time zones (SPEC §3). Pure, except
//! that [`Calendars::load`] reads the configured folder of calendar files.
//!
//! - [`rules`]: the calendar file format (TOML) and its validation, errors naming file and line.
//! - `generate`: rules → the holidays of a year (the slow, obviously correct path).
//! - `engine`: [`Calendar`], O(1) business-day arithmetic over a precomputed range.
//! - `zone`: [`deadline`] and [`start_of_local_day`], the instants of SPEC §3.
//! - `builtin`: the calendars shipped in `config/calendars/`, compiled in.

mod builtin;
mod days;
mod engine;
mod generate;
mod midnights;
pub mod rules;
mod zone;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use chrono::NaiveDate;
use chrono_tz::Tz;

pub use builtin::BUILTIN;
pub use engine::{Calendar, RANGE_END, RANGE_START};
pub use generate::Holiday;
pub use rules::HolidayKind;
pub use zone::{DayCount, Deadline, deadline, deadline_in_calendar_days, start_of_local_day};

/// Why calendars could not be loaded, or a date could not be counted.
#[derive(Debug, thiserror::Error)]
pub enum CalendarError {
    /// A calendar file is invalid: bad TOML, an unknown key, a bad or overlapping rule.
    #[error("{file}:{line}: {message}")]
    Rule {
        /// The file (or `built-in …`).
        file: String,
        /// 1-based line.
        line: usize,
        /// What is wrong.
        message: String,
    },
    /// The calendar folder or a file in it could not be read.
    #[error("cannot read {path}: {source}")]
    Io {
        /// The folder or file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// Two files of the calendar folder define the same id.
    #[error("calendar {id} is defined twice: in {first} and in {second}")]
    DuplicateId {
        /// The id.
        id: String,
        /// One file.
        first: String,
        /// The other.
        second: String,
    },
    /// Two calendars claim the same country.
    #[error("country {country} is served by two calendars: {first} and {second}")]
    DuplicateCountry {
        /// The country.
        country: String,
        /// One calendar id.
        first: String,
        /// The other.
        second: String,
    },
    /// An entry of `calendars.disabled_groups` names no calendar group.
    #[error("calendars.disabled_groups: {entry:?}: {reason}")]
    UnknownGroup {
        /// The entry.
        entry: String,
        /// Why it matches nothing.
        reason: String,
    },
    /// A date outside the range the engine counts.
    #[error("{date} is outside the range business days are counted in ({start} to {end})")]
    OutOfRange {
        /// The date.
        date: NaiveDate,
        /// First day counted.
        start: NaiveDate,
        /// Last day counted.
        end: NaiveDate,
    },
    /// The N-th business day after a day in the range falls past its last day.
    #[error(
        "{n} business {days} after {from} {ends} after {end}, the last day business days are counted to ({start} to {end})",
        days = if *n == 1 { "day" } else { "days" },
        ends = if *n == 1 { "ends" } else { "end" }
    )]
    PastRange {
        /// d0, inside the range.
        from: NaiveDate,
        /// N.
        n: u32,
        /// First day counted.
        start: NaiveDate,
        /// Last day counted.
        end: NaiveDate,
    },
    /// A deadline past 9999-12-31, which RFC 3339 cannot write.
    #[error("{n} calendar {days} after {from} {ends} after 9999-12-31, the last day an RFC 3339 time can name", days = if *n == 1 { "day" } else { "days" }, ends = if *n == 1 { "ends" } else { "end" })]
    PastYear9999 {
        /// d0.
        from: NaiveDate,
        /// N.
        n: u32,
    },
    /// A deadline before 0000-01-01, which RFC 3339 cannot write.
    #[error(
        "the deadline from {from} falls before 0000-01-01, the first day an RFC 3339 time can name"
    )]
    BeforeYear0 {
        /// d0.
        from: NaiveDate,
    },
    /// Date arithmetic past what chrono represents.
    #[error("date arithmetic overflows after {0}")]
    Overflow(NaiveDate),
    /// The time zone has no instant on that local day (never seen in tzdata).
    #[error("local day {date} has no instant in {tz}")]
    NoLocalMidnight {
        /// The day.
        date: NaiveDate,
        /// The zone.
        tz: Tz,
    },
}

/// Every calendar the worker knows: the built-ins, replaced or extended by the calendar folder.
pub struct Calendars {
    list: Vec<Calendar>,
    by_country: BTreeMap<String, usize>,
}

impl Calendars {
    /// Loads the built-ins, then every `*.toml` in `dir` (a missing folder is fine): a file
    /// whose id is a built-in's replaces it. `disabled_groups` entries are `CALENDAR/GROUP`.
    ///
    /// ```
    /// # use cpor_worker::calendar::Calendars;
    /// # use chrono::NaiveDate;
    /// let cals = Calendars::load("no/such/dir".as_ref(), &["SE/eves".to_owned()]).unwrap();
    /// let se = cals.for_country("SE").unwrap();
    /// assert!(se.is_business_day(NaiveDate::from_ymd_opt(2026, 12, 24).unwrap()));
    /// ```
    pub fn load(dir: &Path, disabled_groups: &[String]) -> Result<Calendars, CalendarError> {
        // (definition, read from the folder)
        let mut defs = Vec::new();
        for (name, text) in BUILTIN {
            defs.push((rules::parse(text, &format!("built-in {name}"))?, false));
        }
        for (path, text) in read_dir(dir)? {
            let def = rules::parse(&text, &path.display().to_string())?;
            match defs.iter_mut().find(|(d, _)| d.id == def.id) {
                Some((old, true)) => {
                    return Err(CalendarError::DuplicateId {
                        id: def.id.clone(),
                        first: old.origin.clone(),
                        second: def.origin,
                    });
                }
                Some(slot) => *slot = (def, true),
                None => defs.push((def, true)),
            }
        }
        let defs: Vec<_> = defs.into_iter().map(|(d, _)| d).collect();
        let disabled = split_groups(&defs, disabled_groups)?;
        let mut list = Vec::with_capacity(defs.len());
        let mut by_country = BTreeMap::new();
        for def in defs {
            let off: Vec<&str> = disabled
                .iter()
                .filter(|(c, _)| *c == def.id)
                .map(|(_, g)| *g)
                .collect();
            let cal = Calendar::new(def, &off)?;
            for c in cal.countries() {
                if let Some(&other) = by_country.get(c) {
                    let first: &Calendar = &list[other];
                    return Err(CalendarError::DuplicateCountry {
                        country: c.clone(),
                        first: format!("{} ({})", first.id(), first.origin()),
                        second: format!("{} ({})", cal.id(), cal.origin()),
                    });
                }
                by_country.insert(c.clone(), list.len());
            }
            list.push(cal);
        }
        Ok(Calendars { list, by_country })
    }

    /// Only the built-in calendars, all groups on.
    pub fn builtin() -> Result<Calendars, CalendarError> {
        Self::load(Path::new(""), &[])
    }

    /// The calendar serving country `cc` (ISO 3166-1 alpha-2, any case).
    pub fn for_country(&self, cc: &str) -> Option<&Calendar> {
        let i = match self.by_country.get(cc) {
            Some(i) => *i,
            None => *self.by_country.get(&cc.to_ascii_uppercase())?,
        };
        self.list.get(i)
    }

    /// The calendar with id `id`.
    pub fn get(&self, id: &str) -> Option<&Calendar> {
        self.list.iter().find(|c| c.id() == id)
    }

    /// Calendar ids, in load order (built-ins first).
    pub fn ids(&self) -> impl Iterator<Item = &str> {
        self.list.iter().map(Calendar::id)
    }

    /// Countries served, sorted.
    pub fn countries(&self) -> impl Iterator<Item = &str> {
        self.by_country.keys().map(String::as_str)
    }

    /// Every calendar.
    pub fn iter(&self) -> impl Iterator<Item = &Calendar> {
        self.list.iter()
    }

    /// One fingerprint of every calendar (16 hex digits): what the worker stores with each
    /// claim's pending timers (`cpor_claim_sync.fingerprint`), so a change shows as a mismatch.
    pub fn fingerprint(&self) -> String {
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for cal in self.iter() {
            h ^= cal.fingerprint();
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
        format!("{h:016x}")
    }
}

/// The `*.toml` files of `dir`, sorted by name; none if `dir` is empty or does not exist.
fn read_dir(dir: &Path) -> Result<Vec<(PathBuf, String)>, CalendarError> {
    if dir.as_os_str().is_empty() || !dir.exists() {
        return Ok(Vec::new());
    }
    let io = |path: &Path| {
        let path = path.to_owned();
        move |source| CalendarError::Io { path, source }
    };
    let mut paths = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(io(dir))? {
        let path = entry.map_err(io(dir))?.path();
        if path.extension().is_some_and(|e| e == "toml") {
            paths.push(path);
        }
    }
    paths.sort();
    paths
        .into_iter()
        .map(|p| std::fs::read_to_string(&p).map_err(io(&p)).map(|t| (p, t)))
        .collect()
}

/// `CALENDAR/GROUP` entries, each checked against the calendars' groups.
fn split_groups<'a>(
    defs: &[rules::CalendarDef],
    entries: &'a [String],
) -> Result<Vec<(&'a str, &'a str)>, CalendarError> {
    entries
        .iter()
        .map(|e| {
            let bad = |reason: String| CalendarError::UnknownGroup {
                entry: e.clone(),
                reason,
            };
            let (cal, group) = e
                .split_once('/')
                .ok_or_else(|| bad("expected CALENDAR/GROUP, e.g. SE/eves".to_owned()))?;
            let def = defs
                .iter()
                .find(|d| d.id == cal)
                .ok_or_else(|| bad(format!("no calendar {cal}")))?;
            let known = def
                .rules
                .iter()
                .map(|r| &r.group)
                .chain(def.dates.iter().map(|d| &d.group));
            if !known.clone().any(|g| g == group) {
                let mut groups: Vec<&String> = known.collect();
                groups.sort();
                groups.dedup();
                return Err(bad(format!(
                    "calendar {cal} has no group {group} (it has: {groups:?})"
                )));
            }
            Ok((cal, group))
        })
        .collect()
}

#[cfg(test)]
mod proptests;
#[cfg(test)]
mod tests;
