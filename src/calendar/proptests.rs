//! Property tests: the O(1) engine against a plain day-by-day reference over 2000–2100.

use std::sync::OnceLock;

use chrono::{DateTime, Datelike, Days, NaiveDate, Utc};
use proptest::prelude::*;

use super::*;

fn cals() -> &'static Calendars {
    static CALS: OnceLock<Calendars> = OnceLock::new();
    CALS.get_or_init(|| Calendars::builtin().unwrap())
}

const IDS: [&str; 4] = ["SE", "US", "GB", "DE"];

fn cal(i: usize) -> &'static Calendar {
    cals().get(IDS[i % IDS.len()]).unwrap()
}

/// Business day by the rules alone: a weekday that no generated holiday of its year falls on.
fn slow_is_business_day(cal: &Calendar, day: NaiveDate) -> bool {
    !generate::is_weekend(day)
        && cal
            .holidays_in_year(day.year())
            .iter()
            .all(|h| h.date != day)
}

/// SPEC §3 read literally: step forward day by day, counting business days strictly after d0;
/// N = 0 rolls back to the last business day on or before d0 (numpy's roll='backward').
fn slow_add(cal: &Calendar, d0: NaiveDate, n: u32) -> NaiveDate {
    let mut day = d0;
    if n == 0 {
        while !slow_is_business_day(cal, day) {
            day = day.pred_opt().unwrap();
        }
        return day;
    }
    let mut left = n;
    while left > 0 {
        day = day.succ_opt().unwrap();
        if slow_is_business_day(cal, day) {
            left -= 1;
        }
    }
    day
}

fn date_2000_2100() -> impl Strategy<Value = NaiveDate> {
    let start = NaiveDate::from_ymd_opt(2000, 1, 1).unwrap();
    let days = NaiveDate::from_ymd_opt(2100, 12, 31)
        .unwrap()
        .signed_duration_since(start)
        .num_days();
    (0..=days as u64).prop_map(move |k| start.checked_add_days(Days::new(k)).unwrap())
}

const ZONES: [chrono_tz::Tz; 6] = [
    chrono_tz::Europe::Stockholm,
    chrono_tz::America::New_York,
    chrono_tz::America::Havana,
    chrono_tz::America::Santiago,
    chrono_tz::Asia::Beirut,
    chrono_tz::Pacific::Kiritimati,
];

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn lands_on_a_business_day_n_after(c in 0usize..4, d0 in date_2000_2100(), n in 1u32..400) {
        let cal = cal(c);
        let got = cal.add_business_days(d0, n).unwrap();
        prop_assert!(got > d0);
        prop_assert!(cal.is_business_day(got));
        prop_assert_eq!(cal.business_days_between(d0, got).unwrap(), i64::from(n));
    }

    #[test]
    fn never_earlier_when_n_grows(c in 0usize..4, d0 in date_2000_2100(), n in 0u32..400, more in 1u32..50) {
        let cal = cal(c);
        prop_assert!(cal.add_business_days(d0, n).unwrap() < cal.add_business_days(d0, n + more).unwrap());
    }

    #[test]
    fn agrees_with_the_slow_reference(c in 0usize..4, d0 in date_2000_2100(), n in 0u32..60) {
        let cal = cal(c);
        prop_assert_eq!(cal.add_business_days(d0, n).unwrap(), slow_add(cal, d0, n));
        prop_assert_eq!(cal.is_business_day(d0), slow_is_business_day(cal, d0));
    }

    #[test]
    fn calendar_days_ignore_holidays(c in 0usize..4, z in 0usize..6, secs in 946_684_800i64..4_133_894_400, n in 0u32..400) {
        let from = DateTime::<Utc>::from_timestamp(secs, 0).unwrap();
        let tz = ZONES[z];
        let got = deadline(cal(c), tz, from, DayCount::Calendar(n)).unwrap();
        let d0 = from.with_timezone(&tz).date_naive();
        prop_assert_eq!(got.last_day, d0.checked_add_days(Days::new(n.into())).unwrap());
        let other = deadline(cal(c + 1), tz, from, DayCount::Calendar(n)).unwrap();
        prop_assert_eq!(got, other);
    }

    #[test]
    fn deadline_is_the_start_of_the_next_local_day(c in 0usize..4, z in 0usize..6, secs in 946_684_800i64..4_133_894_400, n in 0u32..30) {
        let from = DateTime::<Utc>::from_timestamp(secs, 0).unwrap();
        let tz = ZONES[z];
        let got = deadline(cal(c), tz, from, DayCount::Business(n)).unwrap();
        let d0 = from.with_timezone(&tz).date_naive();
        prop_assert_eq!(got.last_day, slow_add(cal(c), d0, n));
        let next = got.last_day.succ_opt().unwrap();
        prop_assert_eq!(got.due.with_timezone(&tz).date_naive(), next);
        // Nothing earlier is on that local day.
        let before = got.due - chrono::TimeDelta::seconds(1);
        prop_assert!(before.with_timezone(&tz).date_naive() < next);
        if n > 0 {
            prop_assert!(got.due > from);
        }
    }
}
