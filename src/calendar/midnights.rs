//! Every local midnight of a time zone over the calendar range, as a table built once per zone
//! on first use: the local date of an instant and the first instant of a local day become O(1)
//! array lookups instead of a search through the zone's transitions.

use std::sync::{LazyLock, OnceLock};

use chrono::{DateTime, Datelike, NaiveDate, Utc};
use chrono_tz::{TZ_VARIANTS, Tz};

use super::engine::{RANGE_END, RANGE_START};
use super::zone::start_of_local_day_slow;

/// `starts[i]`: Unix seconds of the first instant of local day `RANGE_START + i`, one day past
/// `RANGE_END` included.
pub(super) struct Midnights {
    starts: Vec<i64>,
    /// The same instants, ready to hand out.
    instants: Vec<DateTime<Utc>>,
}

/// One lazily built table per zone.
static TABLES: LazyLock<Vec<OnceLock<Option<Midnights>>>> =
    LazyLock::new(|| TZ_VARIANTS.iter().map(|_| OnceLock::new()).collect());

/// Days since [`RANGE_START`] (negative dates give `None`).
pub(super) fn day_index(date: NaiveDate) -> Option<usize> {
    usize::try_from(date.num_days_from_ce() - RANGE_START.num_days_from_ce()).ok()
}

/// The table of `tz`, built on first use (about 84,000 days); `None` if a day has no midnight
/// the slow path can find (then callers use the slow path, which reports the error).
pub(super) fn midnights(tz: Tz) -> Option<&'static Midnights> {
    let slot = TABLES.get(tz as usize)?;
    slot.get_or_init(|| Midnights::build(tz)).as_ref()
}

impl Midnights {
    fn build(tz: Tz) -> Option<Midnights> {
        let end = RANGE_END.succ_opt()?;
        let days = day_index(end)? + 1;
        let mut instants = Vec::with_capacity(days);
        let mut d = RANGE_START;
        for _ in 0..days {
            instants.push(start_of_local_day_slow(d, tz).ok()?);
            d = d.succ_opt()?;
        }
        let starts = instants.iter().map(DateTime::timestamp).collect();
        Some(Midnights { starts, instants })
    }

    /// Unix seconds of the first instant of every local day, one past `RANGE_END` included.
    pub(super) fn starts(&self) -> &[i64] {
        &self.starts
    }

    /// The first instant of the local day with index `i`.
    #[inline]
    pub(super) fn start_at_index(&self, i: usize) -> Option<DateTime<Utc>> {
        self.instants.get(i).copied()
    }

    /// The first instant of local day `date`, or `None` outside the table.
    #[inline]
    pub(super) fn start_of_day(&self, date: NaiveDate) -> Option<DateTime<Utc>> {
        self.start_at_index(day_index(date)?)
    }

    /// The local date `t` falls on, or `None` outside the table.
    #[cfg(test)]
    pub(super) fn local_date(&self, t: DateTime<Utc>) -> Option<NaiveDate> {
        RANGE_START.checked_add_days(chrono::Days::new(self.local_index(t)? as u64))
    }

    /// The index of the local day `t` falls on, or `None` outside the table.
    #[cfg(test)]
    pub(super) fn local_index(&self, t: DateTime<Utc>) -> Option<usize> {
        let secs = t.timestamp();
        let first = *self.starts.first()?;
        let last = *self.starts.last()?;
        if secs < first || secs >= last {
            return None;
        }
        // Days are 23–25 hours long: the estimate is at most one day off.
        let mut i = usize::try_from((secs - first) / 86_400)
            .ok()?
            .min(self.starts.len() - 2);
        while i > 0 && self.starts[i] > secs {
            i -= 1;
        }
        while i + 2 < self.starts.len() && self.starts[i + 1] <= secs {
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
