//! Every local midnight of a time zone over the calendar range, as a table built once per zone
//! on first use: the local date of an instant and the first instant of a local day become O(1)
//! array lookups instead of a search through the zone's transitions. A day is one byte, the
//! index of its midnight's offset among the few the zone ever had, so a zone's table over the
//! range is about 84 kB and stays in a core's cache.

use std::sync::{LazyLock, OnceLock};

use chrono::{DateTime, Datelike, NaiveDate, NaiveDateTime, NaiveTime, Utc};
use chrono_tz::{TZ_VARIANTS, Tz};

use super::engine::{RANGE_END, RANGE_START};
use super::zone::start_of_local_day_slow;

/// Days of [`DATES`] before `RANGE_START`.
const DATES_BEFORE: usize = 1;

/// `DATES[DATES_BEFORE + i]`: the date `RANGE_START + i`, from the day before the range (where
/// its first local midnights east of UTC fall) to the day after it (the tables' extra day).
static DATES: LazyLock<Box<[NaiveDate]>> = LazyLock::new(|| {
    let first = RANGE_START - chrono::Days::new(DATES_BEFORE as u64);
    let last = RANGE_END + chrono::Days::new(1);
    first.iter_days().take_while(|d| *d <= last).collect()
});

/// Where a local day's first instant lies, relative to UTC midnight of the same date.
#[derive(Clone, Copy, PartialEq, Eq)]
struct Offset {
    /// Seconds after UTC midnight (negative: before).
    secs: i32,
    /// Days from the local date to the UTC date of the first instant.
    days: isize,
    /// The UTC time of day of the first instant.
    time: NaiveTime,
}

/// One zone's local days, `RANGE_START ..= RANGE_END + 1`.
pub(super) struct Midnights {
    /// `kind[i]`: the index in `offsets` of local day `i`'s first instant.
    kind: Box<[u8]>,
    /// The distinct offsets (at most 256; zones have had a handful).
    offsets: Vec<Offset>,
    /// [`DATES`].
    dates: &'static [NaiveDate],
}

/// One lazily built table per zone.
static TABLES: LazyLock<Vec<OnceLock<Option<Midnights>>>> =
    LazyLock::new(|| TZ_VARIANTS.iter().map(|_| OnceLock::new()).collect());

/// Days since [`RANGE_START`] (negative dates give `None`).
pub(super) fn day_index(date: NaiveDate) -> Option<usize> {
    usize::try_from(date.num_days_from_ce() - RANGE_START.num_days_from_ce()).ok()
}

/// The table of `tz`, built on first use (about 84,000 days); `None` if a day has no midnight
/// the slow path can find, or the zone had more than 256 offsets at midnight (then callers use
/// the slow path, which reports any error).
pub(super) fn midnights(tz: Tz) -> Option<&'static Midnights> {
    let slot = TABLES.get(tz as usize)?;
    slot.get_or_init(|| Midnights::build(tz)).as_ref()
}

impl Midnights {
    fn build(tz: Tz) -> Option<Midnights> {
        let end = RANGE_END.succ_opt()?;
        let days = day_index(end)? + 1;
        let mut kind = Vec::with_capacity(days);
        let mut offsets: Vec<Offset> = Vec::new();
        let mut d = RANGE_START;
        for _ in 0..days {
            let start = start_of_local_day_slow(d, tz).ok()?;
            let midnight = d.and_time(NaiveTime::MIN).and_utc();
            let secs = i32::try_from((start - midnight).num_seconds()).ok()?;
            let offset = Offset {
                secs,
                days: isize::try_from(secs.div_euclid(86_400)).ok()?,
                time: start.time(),
            };
            let k = match offsets.iter().position(|o| *o == offset) {
                Some(k) => k,
                None => {
                    offsets.push(offset);
                    offsets.len() - 1
                }
            };
            kind.push(u8::try_from(k).ok()?);
            d = d.succ_opt()?;
        }
        Some(Midnights {
            kind: kind.into(),
            offsets,
            dates: &DATES,
        })
    }

    /// The offset of local day `i`'s first instant.
    #[inline(always)]
    fn offset(&self, i: usize) -> Option<Offset> {
        self.offsets.get(usize::from(*self.kind.get(i)?)).copied()
    }

    /// Unix seconds of the first instant of local day `i`.
    #[inline(always)]
    fn start_secs(&self, i: usize) -> Option<i64> {
        Some(86_400 * i as i64 + i64::from(self.offset(i)?.secs))
    }

    /// The date of local day `i` (`RANGE_START + i`), one day past `RANGE_END` included.
    #[inline(always)]
    pub(super) fn date_at(&self, i: usize) -> Option<NaiveDate> {
        if i >= self.kind.len() {
            return None;
        }
        self.dates.get(i.checked_add(DATES_BEFORE)?).copied()
    }

    /// The first instant of the local day with index `i` (its UTC date is the local one or
    /// the day before: no zone since 1970 is 24 hours ahead of UTC or behind it).
    #[inline]
    pub(super) fn start_at_index(&self, i: usize) -> Option<DateTime<Utc>> {
        let o = self.offset(i)?;
        let utc_day = (i + DATES_BEFORE).checked_add_signed(o.days)?;
        let date = *self.dates.get(utc_day)?;
        Some(NaiveDateTime::new(date, o.time).and_utc())
    }

    /// The first instant of local day `date`, or `None` outside the table.
    #[inline]
    pub(super) fn start_of_day(&self, date: NaiveDate) -> Option<DateTime<Utc>> {
        self.start_at_index(day_index(date)?)
    }

    /// The local date `t` falls on, or `None` outside the table.
    #[cfg(test)]
    pub(super) fn local_date(&self, t: DateTime<Utc>) -> Option<NaiveDate> {
        self.date_at(self.local_index(t.timestamp())?)
    }

    /// The index of the local day Unix second `secs` falls on, or `None` outside the table
    /// (the last day, one past `RANGE_END`, is there only to end the one before).
    #[inline]
    pub(super) fn local_index(&self, secs: i64) -> Option<usize> {
        let len = self.kind.len();
        if len < 2 || secs < self.start_secs(0)? || secs >= self.start_secs(len - 1)? {
            return None;
        }
        // Local days are 0–25 hours long: the estimate is at most a day or two off.
        let mut i = usize::try_from(secs.div_euclid(86_400))
            .unwrap_or(0)
            .min(len - 2);
        while i > 0 && self.start_secs(i)? > secs {
            i -= 1;
        }
        while i + 2 < len && self.start_secs(i + 1)? <= secs {
            i += 1;
        }
        Some(i)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    static CALENDARS: LazyLock<crate::calendar::Calendars> =
        LazyLock::new(|| crate::calendar::Calendars::builtin().expect("calendars"));

    const ZONES: [Tz; 8] = [
        chrono_tz::Europe::Stockholm,
        chrono_tz::America::New_York,
        chrono_tz::America::Havana,
        chrono_tz::America::Santiago,
        chrono_tz::Asia::Beirut,
        chrono_tz::Australia::Lord_Howe,
        chrono_tz::Pacific::Apia,
        chrono_tz::UTC,
    ];

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        #[test]
        fn table_agrees_with_the_zone_rules(zone in 0usize..ZONES.len(), secs in 0i64..7_258_118_400) {
            let tz = ZONES[zone];
            let m = midnights(tz).expect("table");
            let t = DateTime::from_timestamp(secs, 0).expect("instant");
            let date = t.with_timezone(&tz).date_naive();
            // West of UTC the first hours of 1970 are local days before the table's range:
            // the table answers None and callers take the slow path.
            let in_range = (RANGE_START..=RANGE_END).contains(&date);
            prop_assert_eq!(m.local_date(t), in_range.then_some(date));
            // The table also holds the start of the day after RANGE_END (where that day ends).
            let in_table = date >= RANGE_START && date <= RANGE_END + chrono::Days::new(1);
            let slow = start_of_local_day_slow(date, tz).ok().map(|s| s.timestamp());
            prop_assert_eq!(m.start_of_day(date).map(|s| s.timestamp()),
                if in_table { slow } else { None });
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        #[test]
        fn deadlines_through_the_table_match_the_zone_rules(
            zone in 0usize..ZONES.len(),
            secs in 946_684_800i64..4_102_444_800,
            n in 0u32..60,
            business in any::<bool>(),
        ) {
            use crate::calendar::{DayCount, deadline};
            let se = CALENDARS.for_country("SE").expect("SE");
            let tz = ZONES[zone];
            let from = DateTime::from_timestamp(secs, 0).expect("instant");
            let count = if business { DayCount::Business(n) } else { DayCount::Calendar(n) };
            let fast = deadline(se, tz, from, count).expect("deadline");
            let d0 = from.with_timezone(&tz).date_naive();
            let last = if business {
                se.add_business_days(d0, n).expect("add")
            } else {
                d0 + chrono::Days::new(u64::from(n))
            };
            prop_assert_eq!(fast.from_date, d0);
            prop_assert_eq!(fast.last_day, last);
            prop_assert_eq!(fast.due, start_of_local_day_slow(last.succ_opt().expect("succ"), tz).expect("midnight"));
        }
    }

    #[test]
    fn outside_the_range_there_is_no_answer() {
        let m = midnights(chrono_tz::UTC).expect("table");
        let before = DateTime::from_timestamp(-86_400, 0).expect("instant");
        assert_eq!(m.local_date(before), None);
        assert_eq!(
            m.start_of_day(NaiveDate::from_ymd_opt(2300, 1, 1).expect("date")),
            None
        );
    }
}
