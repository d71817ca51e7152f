//! Unit tests of the calendar module: file format errors, rules, zones, loading.

use chrono::{DateTime, NaiveDate, Utc};
use chrono_tz::Tz;

use super::*;

fn d(y: i32, m: u32, day: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, day).unwrap()
}

fn utc(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

const HEAD: &str =
    "id = \"XX\"\nname = \"Test\"\ntime_zone = \"UTC\"\ncountries = [\"XX\"]\nsource = \"test\"\n";

fn parse_err(body: &str) -> String {
    let text = format!("{HEAD}{body}");
    match rules::parse(&text, "test.toml").and_then(|def| Calendar::new(def, &[])) {
        Ok(_) => panic!("accepted:\n{text}"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn easter_matches_known_dates() {
    for (y, m, day) in [
        (2000, 4, 23),
        (2008, 3, 23),
        (2019, 4, 21),
        (2026, 4, 5),
        (2038, 4, 25),
        (2100, 3, 28),
    ] {
        assert_eq!(generate::easter(y), Some(d(y, m, day)), "{y}");
    }
}

#[test]
fn bad_rules_name_file_and_line() {
    let e = parse_err("\n[[rule]]\nname = \"X\"\ndate = \"13-01\"\n");
    assert!(e.starts_with("test.toml:7:"), "{e}");
    assert!(e.contains("month-day"), "{e}");
    let e = parse_err("[[rule]]\nname = \"X\"\ndate = \"01-01\"\neaster = 1\n");
    assert!(
        e.starts_with("test.toml:6:") && e.contains("exactly one of"),
        "{e}"
    );
    let e = parse_err("[[rule]]\nname = \"X\"\ndate = \"01-01\"\ncolour = 1\n");
    assert!(e.starts_with("test.toml:9:") && e.contains("colour"), "{e}");
    let e =
        parse_err("[[rule]]\nname = \"X\"\nweekday = \"Sat\"\nbetween = [\"06-20\", \"06-27\"]\n");
    assert!(e.contains("seven days"), "{e}");
    let e = parse_err("[[rule]]\nname = \"X\"\nmonth = 5\nnth = 0\nweekday = \"Mon\"\n");
    assert!(e.contains("nth 0"), "{e}");
    let e = parse_err("[[rule]]\nname = \"X\"\ndate = \"01-01\"\nobserved = \"sometimes\"\n");
    assert!(e.contains("observed"), "{e}");
    let e = parse_err(
        "[[rule]]\nname = \"X\"\ndate = \"01-01\"\nfirst_year = 2000\nskip_years = [1999]\n",
    );
    assert!(e.contains("skip_years"), "{e}");
    let e = parse_err("[[date]]\ndate = 2022-09-19T10:00:00\nname = \"X\"\n");
    assert!(e.contains("plain date"), "{e}");
    let bad_zone = HEAD.replace("\"UTC\"", "\"Mars/Olympus\"");
    let e = rules::parse(&bad_zone, "z.toml").unwrap_err().to_string();
    assert!(
        e.starts_with("z.toml:3:") && e.contains("Mars/Olympus"),
        "{e}"
    );
}

#[test]
fn overlapping_rules_are_errors() {
    let same_name = "[[rule]]\nname = \"A\"\ndate = \"01-01\"\n\n[[rule]]\nname = \"A\"\ndate = \"01-02\"\nfirst_year = 2000\n";
    let e = parse_err(same_name);
    assert!(
        e.starts_with("test.toml:10:") && e.contains("line 6"),
        "{e}"
    );
    let same_day = "[[rule]]\nname = \"A\"\neaster = 1\n\n[[rule]]\nname = \"B\"\neaster = 1\n";
    assert!(parse_err(same_day).contains("overlaps"));
    let twice =
        "[[date]]\ndate = 2020-01-02\nname = \"A\"\n\n[[date]]\ndate = 2020-01-02\nname = \"B\"\n";
    assert!(parse_err(twice).starts_with("test.toml:10:"));
    let clash =
        "[[rule]]\nname = \"A\"\ndate = \"01-02\"\n\n[[date]]\ndate = 2020-01-02\nname = \"B\"\n";
    let e = parse_err(clash);
    assert!(
        e.starts_with("test.toml:10:") && e.contains("already"),
        "{e}"
    );
    // Split by years, and different groups, are fine.
    let split = "[[rule]]\nname = \"A\"\ndate = \"01-01\"\nlast_year = 1999\n\n[[rule]]\nname = \"A\"\ndate = \"01-02\"\nfirst_year = 2000\n\n[[rule]]\nname = \"A eve\"\ngroup = \"eves\"\ndate = \"01-01\"\n";
    rules::parse(&format!("{HEAD}{split}"), "ok.toml").unwrap();
}

#[test]
fn weekend_shifts() {
    let cals = Calendars::builtin().unwrap();
    let us = cals.for_country("US").unwrap();
    // 1 Jan 2028 is a Saturday: observed Friday 31 Dec 2027.
    assert!(!us.is_business_day(d(2027, 12, 31)));
    assert_eq!(
        &*us.holiday(d(2027, 12, 31)).unwrap().name,
        "New Year's Day (observed)"
    );
    assert!(us.holiday(d(2027, 12, 31)).unwrap().observed);
    let gb = cals.for_country("GB").unwrap();
    // Christmas on Sunday 2022: Boxing Day Monday, Christmas substitute Tuesday.
    assert_eq!(
        &*gb.holiday(d(2022, 12, 27)).unwrap().name,
        "Christmas Day (substitute day)"
    );
    assert_eq!(&*gb.holiday(d(2022, 12, 26)).unwrap().name, "Boxing Day");
    // New Year's Day on Saturday 2022 → Monday 3 January.
    assert!(!gb.is_business_day(d(2022, 1, 3)));
    for (y, m, day) in [
        (2022, 9, 19),
        (2023, 5, 8),
        (2022, 6, 2),
        (2022, 6, 3),
        (2012, 6, 4),
        (2020, 5, 8),
    ] {
        assert!(!gb.is_business_day(d(y, m, day)), "{y}-{m}-{day}");
    }
    // The moved days' usual dates are working days that year.
    assert!(gb.is_business_day(d(2022, 5, 30)) && gb.is_business_day(d(2020, 5, 4)));
}

#[test]
fn swedish_history_and_weekday_between() {
    let se = Calendars::builtin().unwrap();
    let se = se.for_country("SE").unwrap();
    assert!(se.holiday(d(2004, 6, 6)).is_none() && se.holiday(d(2005, 6, 6)).is_some());
    assert!(!se.is_business_day(d(2004, 5, 31)), "Whit Monday 2004");
    assert!(
        se.is_business_day(d(2005, 5, 16)),
        "no Whit Monday from 2005"
    );
    assert_eq!(&*se.holiday(d(2025, 6, 20)).unwrap().name, "Midsummer Eve");
    assert_eq!(
        &*se.holiday(d(2025, 11, 1)).unwrap().name,
        "All Saints' Day"
    );
}

#[test]
fn disabled_groups_and_errors() {
    let off = Calendars::load("".as_ref(), &["SE/eves".to_owned()]).unwrap();
    let on = Calendars::builtin().unwrap();
    let (se_off, se_on) = (
        off.for_country("SE").unwrap(),
        on.for_country("SE").unwrap(),
    );
    assert!(se_off.is_business_day(d(2026, 12, 24)));
    assert!(
        se_off
            .holidays_in_year(2026)
            .iter()
            .all(|h| h.kind != HolidayKind::Eve)
    );
    assert_ne!(se_off.fingerprint(), se_on.fingerprint());
    assert_eq!(
        se_on.fingerprint(),
        Calendars::builtin()
            .unwrap()
            .for_country("SE")
            .unwrap()
            .fingerprint()
    );
    assert_eq!(
        se_off.add_business_days(d(2026, 12, 23), 5).unwrap(),
        d(2026, 12, 31)
    );
    for bad in ["SE/eve", "XX/eves", "eves"] {
        let e = Calendars::load("".as_ref(), &[bad.to_owned()])
            .err()
            .unwrap();
        assert!(
            matches!(e, CalendarError::UnknownGroup { .. }),
            "{bad}: {e}"
        );
    }
}

#[test]
fn folder_adds_and_replaces_calendars() {
    let dir = tempfile::tempdir().unwrap();
    let se = std::fs::read_to_string("config/calendars/se.toml").unwrap();
    let company = se.replace("[[rule]]\nname = \"Epiphany\"", "[[date]]\ndate = 2026-03-03\nname = \"Company day\"\nkind = \"closure\"\n\n[[rule]]\nname = \"Epiphany\"");
    std::fs::write(dir.path().join("se.toml"), company).unwrap();
    let no = HEAD.replace("XX", "NO").replace("UTC", "Europe/Oslo");
    std::fs::write(
        dir.path().join("no.toml"),
        format!("{no}[[rule]]\nname = \"Constitution Day\"\ndate = \"05-17\"\n"),
    )
    .unwrap();
    std::fs::write(dir.path().join("notes.txt"), "ignored").unwrap();
    let cals = Calendars::load(dir.path(), &[]).unwrap();
    assert!(
        !cals
            .for_country("SE")
            .unwrap()
            .is_business_day(d(2026, 3, 3))
    );
    assert!(
        cals.for_country("SE")
            .unwrap()
            .origin()
            .ends_with("se.toml")
    );
    let no = cals.for_country("no").unwrap();
    assert_eq!(no.time_zone(), chrono_tz::Europe::Oslo);
    assert_eq!(
        &*no.holiday(d(2026, 5, 17)).unwrap().name,
        "Constitution Day"
    );
    assert_eq!(
        cals.ids().collect::<Vec<_>>(),
        ["SE", "US", "GB", "DE", "NO"]
    );
    // A second file with the same id, or a country served twice, is an error.
    let dup = HEAD
        .replace("XX\"\nname", "NO\"\nname")
        .replace("[\"XX\"]", "[\"SE\"]");
    std::fs::write(dir.path().join("zz.toml"), &dup).unwrap();
    let e = Calendars::load(dir.path(), &[]).err().unwrap().to_string();
    assert!(e.contains("defined twice"), "{e}");
    std::fs::write(
        dir.path().join("zz.toml"),
        dup.replace("id = \"NO\"", "id = \"ZZ\""),
    )
    .unwrap();
    let e = Calendars::load(dir.path(), &[]).err().unwrap().to_string();
    assert!(e.contains("country SE is served by two calendars"), "{e}");
    std::fs::write(dir.path().join("zz.toml"), "id = 1").unwrap();
    let e = Calendars::load(dir.path(), &[]).err().unwrap().to_string();
    assert!(e.contains("zz.toml:1:"), "{e}");
}

#[test]
fn out_of_range_is_an_error_not_a_panic() {
    let cals = Calendars::builtin().unwrap();
    let se = cals.for_country("SE").unwrap();
    assert!(matches!(
        se.add_business_days(d(1969, 12, 31), 1),
        Err(CalendarError::OutOfRange { .. })
    ));
    assert!(se.add_business_days(d(2199, 12, 1), 100).is_err());
    assert!(se.add_business_days(d(2026, 1, 1), u32::MAX).is_err());
    assert!(
        se.business_days_between(d(1800, 1, 1), d(2026, 1, 1))
            .is_err()
    );
    // Outside the range, is_business_day takes the slow path.
    assert!(!se.is_business_day(d(2300, 12, 25)));
    assert!(se.is_business_day(d(2300, 12, 27)));
    assert!(
        deadline(
            se,
            se.time_zone(),
            utc("2199-12-30T12:00:00Z"),
            DayCount::Calendar(5)
        )
        .is_ok()
    );
}

#[test]
fn start_of_day_across_midnight_transitions() {
    let cases: [(Tz, NaiveDate, &str); 5] = [
        // Gap: clocks jump 00:00 → 01:00.
        (
            chrono_tz::America::Havana,
            d(2024, 3, 10),
            "2024-03-10T05:00:00Z",
        ),
        (
            chrono_tz::America::Santiago,
            d(2024, 9, 8),
            "2024-09-08T04:00:00Z",
        ),
        (
            chrono_tz::Asia::Beirut,
            d(2024, 3, 31),
            "2024-03-30T22:00:00Z",
        ),
        // Ambiguous: 01:00 → 00:00, midnight happens twice; the earlier counts.
        (
            chrono_tz::America::Havana,
            d(2024, 11, 3),
            "2024-11-03T04:00:00Z",
        ),
        (
            chrono_tz::Europe::Stockholm,
            d(2026, 3, 29),
            "2026-03-28T23:00:00Z",
        ),
    ];
    for (tz, day, want) in cases {
        assert_eq!(
            start_of_local_day(day, tz).unwrap(),
            utc(want),
            "{tz} {day}"
        );
    }
}

#[test]
fn deadlines_use_the_claim_zone() {
    let cals = Calendars::builtin().unwrap();
    let us = cals.for_country("US").unwrap();
    // 23:30 in New York on Friday 8 March 2024 is already Saturday in UTC.
    let from = utc("2024-03-09T04:30:00Z");
    let ny = deadline(us, us.time_zone(), from, DayCount::Business(1)).unwrap();
    assert_eq!((ny.from_date, ny.last_day), (d(2024, 3, 8), d(2024, 3, 11)));
    // In Havana the last day ends where DST skips midnight.
    let hav = deadline(
        us,
        chrono_tz::America::Havana,
        utc("2024-03-08T12:00:00Z"),
        DayCount::Calendar(1),
    )
    .unwrap();
    assert_eq!(hav.last_day, d(2024, 3, 9));
    assert_eq!(hav.due, utc("2024-03-10T05:00:00Z"));
    // A Saturday start counts from the next business day; N = 0 rolls back.
    let se = cals.for_country("SE").unwrap();
    let sat = deadline(
        se,
        se.time_zone(),
        utc("2026-03-07T10:00:00Z"),
        DayCount::Business(1),
    )
    .unwrap();
    assert_eq!(sat.last_day, d(2026, 3, 9));
    assert_eq!(
        se.add_business_days(d(2026, 3, 7), 0).unwrap(),
        d(2026, 3, 6)
    );
}
