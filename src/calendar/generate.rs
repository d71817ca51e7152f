//! Turns validated rules into the holidays of a year: the slow, obviously-correct path that
//! the engine runs once per year at start-up (and for years outside its range).

use std::sync::Arc;

use chrono::{Datelike, Days, NaiveDate, Weekday};

use super::CalendarError;
use super::rules::{CalendarDef, DateRule, HolidayKind, Observed, Rule};

/// One non-working day of a calendar, with why.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Holiday {
    /// The day.
    pub date: NaiveDate,
    /// English name; a moved day says "(observed)" or "(substitute day)".
    pub name: Arc<str>,
    /// Name in the country's language, if the calendar gives one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub local_name: Option<Arc<str>>,
    /// Rule group (`public`, `eves`, …), switchable as `CALENDAR/GROUP`.
    pub group: Arc<str>,
    /// Holiday, eve or closure.
    pub kind: HolidayKind,
    /// True for the weekday a weekend holiday is observed on.
    pub observed: bool,
}

/// The rules and dates of `def` that are in force (groups not disabled), shared by all years.
pub struct Active {
    rules: Vec<ActiveRule>,
    dates: Vec<Holiday>,
}

/// A rule with its strings shared by every holiday it produces.
struct ActiveRule {
    rule: Rule,
    name: Arc<str>,
    local_name: Option<Arc<str>>,
    group: Arc<str>,
}

impl Active {
    /// Keeps the rules and dates whose group is not in `disabled` (group names, no prefix).
    pub fn new(def: &CalendarDef, disabled: &[&str]) -> Self {
        let on = |g: &str| !disabled.contains(&g);
        let rules = def
            .rules
            .iter()
            .filter(|r| on(&r.group))
            .map(|r| ActiveRule {
                rule: r.clone(),
                name: Arc::from(r.name.as_str()),
                local_name: r.local_name.as_deref().map(Arc::from),
                group: Arc::from(r.group.as_str()),
            })
            .collect();
        let mut dates: Vec<Holiday> = def
            .dates
            .iter()
            .filter(|d| on(&d.group))
            .map(|d| Holiday {
                date: d.date,
                name: Arc::from(d.name.as_str()),
                local_name: d.local_name.as_deref().map(Arc::from),
                group: Arc::from(d.group.as_str()),
                kind: d.kind,
                observed: false,
            })
            .collect();
        dates.sort_by_key(|h| h.date);
        Active { rules, dates }
    }

    /// Every holiday dated in `year`, sorted by date (a day may appear twice when two
    /// holidays coincide).
    pub fn year(&self, year: i32) -> Vec<Holiday> {
        let mut out = self.rules_year(year);
        let from = self.dates.partition_point(|h| h.date.year() < year);
        out.extend(
            self.dates[from..]
                .iter()
                .take_while(|h| h.date.year() == year)
                .cloned(),
        );
        out.sort_by_key(|h| (h.date, h.observed));
        out
    }

    /// Explicit dates that repeat a day a rule of the same group already gives (a mistake).
    pub fn check_dates(&self, def: &CalendarDef) -> Result<(), CalendarError> {
        for d in &def.dates {
            let clash = self
                .rules_year(d.date.year())
                .into_iter()
                .find(|h| h.date == d.date && *h.group == *d.group);
            if let Some(h) = clash {
                return Err(CalendarError::Rule {
                    file: def.origin.clone(),
                    line: d.line,
                    message: format!(
                        "date {} ({}) is already the holiday {:?} of a rule that year",
                        d.date, d.name, h.name
                    ),
                });
            }
        }
        Ok(())
    }

    /// The rule holidays dated in `year`. Rules of the neighbouring years are evaluated too,
    /// since an observed day can cross New Year (US: 1 Jan on a Saturday is observed on 31 Dec).
    fn rules_year(&self, year: i32) -> Vec<Holiday> {
        let mut out = Vec::with_capacity(24);
        for y in year - 1..=year + 1 {
            self.rule_year(y, &mut out);
        }
        out.retain(|h| h.date.year() == year);
        out
    }

    fn rule_year(&self, y: i32, out: &mut Vec<Holiday>) {
        let mut fresh: Vec<(Holiday, Observed)> = Vec::with_capacity(self.rules.len());
        for a in &self.rules {
            let r = &a.rule;
            if y < r.first_year || y > r.last_year || r.skip_years.contains(&y) {
                continue;
            }
            let Some(date) = date_in(&r.date, y) else {
                continue;
            };
            let h = Holiday {
                date,
                name: a.name.clone(),
                local_name: a.local_name.clone(),
                group: a.group.clone(),
                kind: r.kind,
                observed: false,
            };
            fresh.push((h, r.observed));
        }
        // Weekend shifts, in date order so UK substitutes take the next free weekday.
        fresh.sort_by_key(|(h, _)| h.date);
        let mut taken: Vec<NaiveDate> = fresh
            .iter()
            .map(|(h, _)| h.date)
            .filter(|d| !is_weekend(*d))
            .collect();
        for (h, obs) in fresh {
            let d = h.date;
            let moved = match obs {
                _ if !is_weekend(d) => None,
                Observed::None => None,
                Observed::NearestWeekday if d.weekday() == Weekday::Sat => {
                    d.pred_opt().map(|m| (m, "observed"))
                }
                Observed::NearestWeekday => d.succ_opt().map(|m| (m, "observed")),
                Observed::Substitute => {
                    let mut m = d.succ_opt();
                    while let Some(x) = m.filter(|x| is_weekend(*x) || taken.contains(x)) {
                        m = x.succ_opt();
                    }
                    m.map(|m| (m, "substitute day"))
                }
            };
            if let Some((moved, suffix)) = moved {
                taken.push(moved);
                out.push(Holiday {
                    date: moved,
                    name: Arc::from(format!("{} ({suffix})", h.name)),
                    observed: true,
                    ..h.clone()
                });
            }
            out.push(h);
        }
    }
}

/// Saturday or Sunday.
pub fn is_weekend(d: NaiveDate) -> bool {
    matches!(d.weekday(), Weekday::Sat | Weekday::Sun)
}

/// The day a rule gives in year `y` (None if that year has no such day).
pub fn date_in(rule: &DateRule, y: i32) -> Option<NaiveDate> {
    match *rule {
        DateRule::Fixed { month, day } => NaiveDate::from_ymd_opt(y, month, day),
        DateRule::Easter(off) => {
            let e = easter(y)?;
            if off >= 0 {
                e.checked_add_days(Days::new(off.unsigned_abs()))
            } else {
                e.checked_sub_days(Days::new(off.unsigned_abs()))
            }
        }
        DateRule::NthWeekday {
            month,
            nth,
            weekday,
        } => {
            if nth > 0 {
                NaiveDate::from_weekday_of_month_opt(y, month, weekday, u8::try_from(nth).ok()?)
            } else {
                let next = if month == 12 {
                    NaiveDate::from_ymd_opt(y + 1, 1, 1)
                } else {
                    NaiveDate::from_ymd_opt(y, month + 1, 1)
                }?;
                let last = next.pred_opt()?;
                let back = (7 + last.weekday().num_days_from_monday()
                    - weekday.num_days_from_monday())
                    % 7;
                let weeks = u64::from(nth.unsigned_abs() - 1) * 7;
                let d = last.checked_sub_days(Days::new(u64::from(back) + weeks))?;
                (d.month() == month).then_some(d)
            }
        }
        DateRule::WeekdayBetween {
            from: (m, d),
            weekday,
        } => {
            let start = NaiveDate::from_ymd_opt(y, m, d)?;
            let ahead =
                (7 + weekday.num_days_from_monday() - start.weekday().num_days_from_monday()) % 7;
            start.checked_add_days(Days::new(u64::from(ahead)))
        }
    }
}

/// Western (Gregorian) Easter Sunday, by the anonymous Gregorian algorithm.
pub fn easter(y: i32) -> Option<NaiveDate> {
    let a = y % 19;
    let b = y / 100;
    let c = y % 100;
    let d = b / 4;
    let e = b % 4;
    let f = (b + 8) / 25;
    let g = (b - f + 1) / 3;
    let h = (19 * a + b - d - g + 15) % 30;
    let i = c / 4;
    let k = c % 4;
    let l = (32 + 2 * e + 2 * i - h - k) % 7;
    let m = (a + 11 * h + 22 * l) / 451;
    let month = (h + l - 7 * m + 114) / 31;
    let day = (h + l - 7 * m + 114) % 31 + 1;
    NaiveDate::from_ymd_opt(y, u32::try_from(month).ok()?, u32::try_from(day).ok()?)
}
