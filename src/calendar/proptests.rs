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
        prop_assert_eq!(&got, &other);
        // The same without a calendar (the consent window counted at delivery).
        prop_assert_eq!(got, deadline_in_calendar_days(tz, from, n).unwrap());
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

/// SPEC §3 from the zone rules and the day-by-day count alone: chrono-tz for the local date,
/// [`slow_add`] for the last day, the transition search for the next local day's first instant.
fn reference(
    cal: &Calendar,
    tz: chrono_tz::Tz,
    from: DateTime<Utc>,
    count: DayCount,
) -> Option<Deadline> {
    let from_date = from.with_timezone(&tz).date_naive();
    let range = RANGE_START..=RANGE_END;
    let last_day = match count {
        // Business days are counted inside the range only (else: an error).
        DayCount::Business(n) => {
            let last = slow_add(cal, from_date, n);
            if !range.contains(&from_date) || !range.contains(&last) {
                return None;
            }
            last
        }
        DayCount::Calendar(n) => from_date.checked_add_days(Days::new(n.into()))?,
    };
    let due = zone::start_of_local_day_slow(last_day.succ_opt()?, tz).ok()?;
    Some(Deadline {
        from,
        from_date,
        last_day,
        due,
        time_zone: tz,
        count,
    })
}

/// Zones with DST changes at or around midnight, skipped days and odd offsets.
const EDGE_ZONES: [chrono_tz::Tz; 10] = [
    chrono_tz::Europe::Stockholm,
    chrono_tz::America::New_York,
    chrono_tz::America::Havana,
    chrono_tz::America::Santiago,
    chrono_tz::Asia::Beirut,
    chrono_tz::Australia::Lord_Howe,
    chrono_tz::Pacific::Apia,
    chrono_tz::Pacific::Kiritimati,
    chrono_tz::Asia::Tokyo,
    chrono_tz::UTC,
];

/// An instant within two days of a DST change's season (March, April, September–November) or
/// of a year boundary, in any year of the range.
fn edge_instant() -> impl Strategy<Value = DateTime<Utc>> {
    (
        1970i32..=2199,
        prop::sample::select(vec![
            (3, 8),
            (3, 25),
            (4, 1),
            (9, 20),
            (10, 25),
            (11, 1),
            (12, 31),
            (1, 1),
        ]),
        0u32..8,
        -172_800i64..172_800,
    )
        .prop_filter_map("valid day", |(y, (m, d), shift, secs)| {
            let day =
                NaiveDate::from_ymd_opt(y, m, d)?.checked_add_days(Days::new(shift.into()))?;
            let t = day.and_hms_opt(0, 0, 0)?.and_utc().timestamp() + secs;
            DateTime::from_timestamp(t, 0)
        })
}

fn check_against_reference(
    c: usize,
    z: usize,
    from: DateTime<Utc>,
    n: u32,
    business: bool,
) -> Result<(), TestCaseError> {
    let (cal, tz) = (cal(c), EDGE_ZONES[z % EDGE_ZONES.len()]);
    let count = if business {
        DayCount::Business(n)
    } else {
        DayCount::Calendar(n)
    };
    let got = deadline(cal, tz, from, count);
    match reference(cal, tz, from, count) {
        Some(want) => prop_assert_eq!(got.ok(), Some(want)),
        // Outside the range: business days are refused naming the date or the limit.
        None => {
            let err = got.expect_err("outside the range");
            prop_assert!(
                matches!(
                    err,
                    CalendarError::PastRange { .. } | CalendarError::OutOfRange { .. }
                ),
                "{}",
                err
            );
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(3000))]

    #[test]
    fn fast_deadline_equals_the_reference_near_dst_changes_and_new_year(
        c in 0usize..4, z in 0usize..10, from in edge_instant(), n in 0u32..45, business in any::<bool>()
    ) {
        check_against_reference(c, z, from, n, business)?;
    }

    #[test]
    fn fast_deadline_equals_the_reference_across_the_whole_range(
        c in 0usize..4, z in 0usize..10, secs in -86_400i64..7_258_204_800, n in 0u32..45, business in any::<bool>()
    ) {
        let from = DateTime::<Utc>::from_timestamp(secs, 0).unwrap();
        check_against_reference(c, z, from, n, business)?;
    }
}

/// The tables' ends and odd days, every hour, in every edge zone and calendar: the first days
/// of 1970 (east of UTC they start at negative Unix seconds), Apia's skipped 2011-12-30, and the
/// last days of the range with deadlines ending on 2199-12-31, on the extra day 2200-01-01
/// and after it.
#[test]
fn fast_deadline_equals_the_reference_at_the_tables_ends() {
    let at = |s: &str| s.parse::<DateTime<Utc>>().unwrap();
    let hours = |from: &str, to: &str| {
        let (a, b) = (at(from).timestamp(), at(to).timestamp());
        (a..=b)
            .step_by(3600)
            .map(|s| DateTime::from_timestamp(s, 0).unwrap())
    };
    let instants: Vec<DateTime<Utc>> = hours("1969-12-31T00:00:00Z", "1970-01-03T00:00:00Z")
        .chain(hours("2011-12-28T00:00:00Z", "2012-01-02T00:00:00Z"))
        .chain(hours("2199-12-28T00:00:00Z", "2200-01-02T12:00:00Z"))
        .collect();
    for c in 0..4 {
        for z in 0..EDGE_ZONES.len() {
            for &from in &instants {
                for n in 0..4 {
                    for business in [true, false] {
                        check_against_reference(c, z, from, n, business).unwrap();
                    }
                }
            }
        }
    }
}

#[test]
fn out_of_range_errors_name_the_right_date_and_limit() {
    let se = cal(0);
    let d = |y, m, d| NaiveDate::from_ymd_opt(y, m, d).unwrap();
    let past = se
        .add_business_days(d(2026, 3, 2), 1_000_000_000)
        .unwrap_err();
    assert_eq!(
        past.to_string(),
        "1000000000 business days after 2026-03-02 end after 2199-12-31, the last day business days are counted to (1970-01-01 to 2199-12-31)"
    );
    let one = se.add_business_days(d(2199, 12, 31), 1).unwrap_err();
    assert!(
        one.to_string()
            .starts_with("1 business day after 2199-12-31 ends after"),
        "{one}"
    );
    let before = se.add_business_days(d(1969, 12, 31), 1).unwrap_err();
    assert!(
        before.to_string().starts_with("1969-12-31 is outside"),
        "{before}"
    );
    let at = |s: &str| s.parse::<DateTime<Utc>>().unwrap();
    let tz = chrono_tz::America::New_York;
    let far = deadline(se, tz, at("9999-12-01T12:00:00Z"), DayCount::Calendar(60)).unwrap_err();
    assert!(
        matches!(far, CalendarError::PastYear9999 { n: 60, .. }),
        "{far}"
    );
    assert!(far.to_string().contains("after 9999-12-31"), "{far}");
    let huge = deadline(
        se,
        tz,
        at("2026-01-01T00:00:00Z"),
        DayCount::Calendar(u32::MAX),
    )
    .unwrap_err();
    assert!(matches!(huge, CalendarError::PastYear9999 { .. }), "{huge}");
    // The last day RFC 3339 can name, and its end inside year 9999 in UTC, still work.
    let last = deadline(
        se,
        chrono_tz::Europe::Stockholm,
        at("9999-12-30T12:00:00Z"),
        DayCount::Calendar(1),
    )
    .unwrap();
    assert_eq!(last.due, at("9999-12-31T23:00:00Z"));
    let utc_end = deadline(se, tz, at("9999-12-30T12:00:00Z"), DayCount::Calendar(1)).unwrap_err();
    assert!(
        matches!(utc_end, CalendarError::PastYear9999 { .. }),
        "{utc_end}"
    );
    let early = deadline(
        se,
        chrono_tz::America::New_York,
        at("0000-01-01T00:00:00Z"),
        DayCount::Calendar(0),
    )
    .unwrap_err();
    assert!(
        matches!(early, CalendarError::BeforeYear0 { .. }),
        "{early}"
    );
}
