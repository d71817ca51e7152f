//! Deadline instants (SPEC §3): the event's local date in the claim's time zone, the N-th
//! business (or calendar) day strictly after it, and the first instant of the day after that.

use chrono::{DateTime, Days, LocalResult, NaiveDate, TimeZone, Utc};
use chrono_tz::Tz;

use super::{Calendar, CalendarError};

/// The last day RFC 3339 can write.
const MAX_DAY: NaiveDate = NaiveDate::from_ymd_opt(9999, 12, 31).expect("valid date");
/// The first day RFC 3339 can write.
const MIN_DAY: NaiveDate = NaiveDate::from_ymd_opt(0, 1, 1).expect("valid date");

/// How a deadline counts: business days of the calendar, or every day.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DayCount {
    /// N business days.
    Business(u32),
    /// N calendar days.
    Calendar(u32),
}

/// A computed deadline.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Deadline {
    /// The event counted from.
    pub from: DateTime<Utc>,
    /// d0: the event's local date.
    pub from_date: NaiveDate,
    /// The deadline's last day (inclusive), a local date.
    pub last_day: NaiveDate,
    /// The instant the deadline passes: the first instant of the local day after `last_day`.
    pub due: DateTime<Utc>,
    /// The zone the days were counted in.
    pub time_zone: Tz,
    /// What was counted.
    pub count: DayCount,
}

/// The deadline of SPEC §3 for an event at `from`, counted in `tz` with `cal`.
///
/// ```
/// # use cpor_worker::calendar::{Calendars, DayCount, deadline};
/// # use chrono::{DateTime, NaiveDate, Utc};
/// let cals = Calendars::builtin().unwrap();
/// let se = cals.for_country("SE").unwrap();
/// let from: DateTime<Utc> = "2026-12-23T14:00:00Z".parse().unwrap();
/// let d = deadline(se, se.time_zone(), from, DayCount::Business(5)).unwrap();
/// assert_eq!(d.last_day, NaiveDate::from_ymd_opt(2027, 1, 5).unwrap());
/// assert_eq!(d.due.to_rfc3339(), "2027-01-05T23:00:00+00:00");
/// ```
pub fn deadline(
    cal: &Calendar,
    tz: Tz,
    from: DateTime<Utc>,
    count: DayCount,
) -> Result<Deadline, CalendarError> {
    let fast = super::midnights::midnights(tz)
        .and_then(|zone| cal.business_days().deadline(zone, tz, from, count));
    if let Some(d) = fast {
        return Ok(d);
    }
    let from_date = from.with_timezone(&tz).date_naive();
    match count {
        DayCount::Business(n) => ending(
            from,
            from_date,
            cal.add_business_days(from_date, n)?,
            tz,
            count,
        ),
        DayCount::Calendar(n) => deadline_in_calendar_days(tz, from, n),
    }
}

/// The deadline `n` calendar days after `from`, counted in `tz`: what [`deadline`] gives for
/// [`DayCount::Calendar`] with any calendar (holidays do not move calendar days), for callers
/// that hold no calendar (the consent window an email opens when it is delivered).
///
/// ```
/// # use cpor_worker::calendar::deadline_in_calendar_days;
/// # use chrono::{DateTime, NaiveDate, Utc};
/// let from: DateTime<Utc> = "2027-03-25T09:00:00Z".parse().unwrap();
/// let d = deadline_in_calendar_days(chrono_tz::Europe::Stockholm, from, 7).unwrap();
/// assert_eq!(d.last_day, NaiveDate::from_ymd_opt(2027, 4, 1).unwrap());
/// // Summer time began on 28 March: the day after ends at 22:00 UTC.
/// assert_eq!(d.due.to_rfc3339(), "2027-04-01T22:00:00+00:00");
/// ```
pub fn deadline_in_calendar_days(
    tz: Tz,
    from: DateTime<Utc>,
    n: u32,
) -> Result<Deadline, CalendarError> {
    let from_date = from.with_timezone(&tz).date_naive();
    let last_day = from_date
        .checked_add_days(Days::new(n.into()))
        .ok_or(CalendarError::PastYear9999 { from: from_date, n })?;
    ending(from, from_date, last_day, tz, DayCount::Calendar(n))
}

/// The deadline whose last day is `last_day`: it passes at the start of the next local day;
/// days RFC 3339 cannot write are refused.
fn ending(
    from: DateTime<Utc>,
    from_date: NaiveDate,
    last_day: NaiveDate,
    tz: Tz,
    count: DayCount,
) -> Result<Deadline, CalendarError> {
    let n = match count {
        DayCount::Business(n) | DayCount::Calendar(n) => n,
    };
    // RFC 3339 writes years 0000–9999 only: refuse what it cannot write.
    let past = CalendarError::PastYear9999 { from: from_date, n };
    if last_day > MAX_DAY {
        return Err(past);
    }
    let next = last_day.succ_opt().ok_or(past)?;
    let due = start_of_local_day(next, tz)?;
    if due.date_naive() > MAX_DAY {
        return Err(CalendarError::PastYear9999 { from: from_date, n });
    }
    if last_day < MIN_DAY || from_date < MIN_DAY || due.date_naive() < MIN_DAY {
        return Err(CalendarError::BeforeYear0 { from: from_date });
    }
    Ok(Deadline {
        from,
        from_date,
        last_day,
        due,
        time_zone: tz,
        count,
    })
}

/// The first instant of local day `date` in `tz`: local midnight; the earlier one when midnight
/// happens twice; where a DST change skips midnight, the first instant that exists after it.
///
/// ```
/// # use cpor_worker::calendar::start_of_local_day;
/// # use chrono::NaiveDate;
/// // Cuba moved clocks from 00:00 to 01:00 on 10 March 2024: the day starts at 01:00 local.
/// let d = NaiveDate::from_ymd_opt(2024, 3, 10).unwrap();
/// let t = start_of_local_day(d, chrono_tz::America::Havana).unwrap();
/// assert_eq!(t.to_rfc3339(), "2024-03-10T05:00:00+00:00");
/// ```
pub fn start_of_local_day(date: NaiveDate, tz: Tz) -> Result<DateTime<Utc>, CalendarError> {
    match super::midnights::midnights(tz).and_then(|m| m.start_of_day(date)) {
        Some(t) => Ok(t),
        None => start_of_local_day_slow(date, tz),
    }
}

/// [`start_of_local_day`] computed from the zone's rules (the table's source, and the fallback
/// outside its range).
pub(super) fn start_of_local_day_slow(
    date: NaiveDate,
    tz: Tz,
) -> Result<DateTime<Utc>, CalendarError> {
    let midnight = date.and_time(chrono::NaiveTime::MIN);
    match tz.from_local_datetime(&midnight) {
        LocalResult::Single(t) => Ok(t.with_timezone(&Utc)),
        LocalResult::Ambiguous(a, b) => Ok(a.min(b).with_timezone(&Utc)),
        LocalResult::None => {
            // Midnight falls in a gap: find the transition, the first instant whose local
            // time is at or after midnight. Local time only moves forward around a gap.
            let at = |secs: i64| {
                DateTime::from_timestamp(secs, 0)
                    .is_some_and(|u| u.with_timezone(&tz).naive_local() >= midnight)
            };
            let guess = midnight.and_utc().timestamp();
            let (mut lo, mut hi) = (guess - 30 * 3600, guess + 30 * 3600);
            if at(lo) || !at(hi) {
                return Err(CalendarError::NoLocalMidnight { date, tz });
            }
            while hi - lo > 1 {
                let mid = lo + (hi - lo) / 2;
                if at(mid) {
                    hi = mid;
                } else {
                    lo = mid;
                }
            }
            DateTime::from_timestamp(hi, 0).ok_or(CalendarError::Overflow(date))
        }
    }
}
