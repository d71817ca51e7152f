//! Issue 17 item 8, the calendar part: out-of-range deadlines and years are refused with the
//! right date and limit, `calendar holidays` defaults to the current year, and the text output
//! of `deadline` says "1 business day" and lists the weekends it skipped.

use chrono::Datelike;
use serde_json::Value;

use crate::harness::{Cmd, text};

/// Runs `args` in an empty folder, which must succeed; its stdout.
fn ok(args: &[&str]) -> String {
    let dir = tempfile::tempdir().unwrap();
    Cmd::new(dir.path()).ok(args)
}

/// Runs `args` in an empty folder, expects exit status 2 and nothing on stdout; its stderr.
fn refused(args: &[&str]) -> String {
    let dir = tempfile::tempdir().unwrap();
    let out = Cmd::new(dir.path()).run(args);
    assert_eq!(out.status.code(), Some(2), "{args:?}");
    assert!(out.stdout.is_empty(), "{args:?} printed {:?}", out.stdout);
    text(&out.stderr)
}

#[test]
fn a_billion_business_days_names_the_last_day_counted_not_the_start() {
    for json in [false, true] {
        let mut args = vec![
            "deadline",
            "--country",
            "SE",
            "--from",
            "2026-03-02T10:00:00Z",
            "--business-days",
            "1000000000",
        ];
        if json {
            args.push("--json");
        }
        let err = refused(&args);
        assert!(
            err.contains("1000000000 business days after 2026-03-02 end after 2199-12-31"),
            "{err}"
        );
        assert!(!err.contains("2026-03-02 is outside"), "{err}");
    }
}

#[test]
fn calendar_day_deadlines_past_year_9999_are_refused() {
    for (from, n) in [
        ("9999-12-01T00:00:00Z", "60"),
        ("9999-12-31T12:00:00Z", "1"),
        ("2026-01-01T00:00:00Z", "4294967295"),
    ] {
        let err = refused(&[
            "deadline",
            "--country",
            "US",
            "--from",
            from,
            "--calendar-days",
            n,
            "--json",
        ]);
        assert!(err.contains("after 9999-12-31"), "{from} + {n}: {err}");
        assert!(!err.contains("+10000"), "{err}");
    }
    // The last day RFC 3339 can write still works when its end is in year 9999 in UTC.
    let out = ok(&[
        "deadline",
        "--country",
        "SE",
        "--from",
        "9999-12-30T12:00:00Z",
        "--calendar-days",
        "1",
        "--json",
    ]);
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["last_day"], "9999-12-31");
    assert_eq!(v["deadline"], "9999-12-31T23:00:00Z");
}

#[test]
fn batch_lines_past_year_9999_get_an_error_line() {
    let dir = tempfile::tempdir().unwrap();
    let input = concat!(
        r#"{"country":"US","from":"9999-12-01T00:00:00Z","calendar_days":60}"#,
        "\n",
        r#"{"country":"SE","from":"2026-03-02T10:00:00Z","business_days":1000000000}"#,
        "\n"
    );
    let out = Cmd::new(dir.path()).run_with_stdin(&["deadline", "--batch"], input.as_bytes());
    let text = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert!(!text.contains("+10000"), "{text}");
    assert_eq!(lines.len(), 2);
    assert!(
        lines[0]["error"]
            .as_str()
            .unwrap()
            .contains("after 9999-12-31")
    );
    assert_eq!(lines[0]["line"], 1);
    assert!(
        lines[1]["error"]
            .as_str()
            .unwrap()
            .contains("after 2199-12-31")
    );
}

#[test]
fn holidays_outside_the_counted_years_are_refused() {
    for year in ["0", "1969", "2200", "-5"] {
        let err = refused(&[
            "calendar",
            "holidays",
            "--country",
            "SE",
            &format!("--year={year}"),
        ]);
        assert!(err.contains("1970 to 2199"), "{year}: {err}");
    }
    for year in ["1970", "2199"] {
        ok(&["calendar", "holidays", "--country", "SE", "--year", year]);
    }
}

#[test]
fn holidays_default_to_the_current_year() {
    let before = chrono::Utc::now()
        .with_timezone(&chrono_tz::Europe::Stockholm)
        .year();
    let out = ok(&["calendar", "holidays", "--country", "SE", "--json"]);
    let after = chrono::Utc::now()
        .with_timezone(&chrono_tz::Europe::Stockholm)
        .year();
    let v: Value = serde_json::from_str(&out).unwrap();
    let year = v["year"].as_i64().unwrap();
    assert!(year == i64::from(before) || year == i64::from(after), "{v}");
    assert!(!v["holidays"].as_array().unwrap().is_empty());
}

#[test]
fn text_says_one_business_day_and_lists_skipped_weekends() {
    // Friday 2026-03-06: one business day later is Monday the 9th, past the weekend.
    let text = ok(&[
        "deadline",
        "--country",
        "SE",
        "--from",
        "2026-03-06T10:00:00+01:00",
        "--business-days",
        "1",
    ]);
    assert!(
        text.contains("counted:   1 business day strictly after 2026-03-06"),
        "{text}"
    );
    assert!(!text.contains("1 business days"), "{text}");
    assert!(text.contains("skipped: 2026-03-07 weekend (Sat)"), "{text}");
    assert!(text.contains("skipped: 2026-03-08 weekend (Sun)"), "{text}");
    // Holidays keep their names, weekend or not.
    let text = ok(&[
        "deadline",
        "--country",
        "SE",
        "--from",
        "2026-12-23T15:00:00+01:00",
        "--business-days",
        "5",
    ]);
    assert!(text.contains("counted:   5 business days"), "{text}");
    assert!(text.contains("2026-12-24 \"Christmas Eve\""), "{text}");
    assert!(text.contains("skipped: 2026-12-27 weekend (Sun)"), "{text}");
    let text = ok(&[
        "deadline",
        "--country",
        "SE",
        "--from",
        "2026-03-06T10:00:00+01:00",
        "--calendar-days",
        "1",
    ]);
    assert!(
        text.contains("counted:   1 calendar day strictly"),
        "{text}"
    );
}
