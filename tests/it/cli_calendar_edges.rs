//! Issue 17 item 8, the calendar part: out-of-range deadlines and years are refused with the
//! right date and limit, `calendar holidays` defaults to the current year, and the text output
//! of `deadline` says "1 business day" and lists the weekends it skipped.

use std::io::Write;
use std::process::{Command, Output, Stdio};

use chrono::Datelike;
use serde_json::Value;

fn run(args: &[&str]) -> Output {
    let dir = tempfile::tempdir().unwrap();
    Command::new(env!("CARGO_BIN_EXE_cpor-worker"))
        .current_dir(dir.path())
        .args(args)
        .env_remove("CPOR_CONFIG")
        .output()
        .unwrap()
}

/// Runs `args`, expects exit status 2 and returns stderr.
fn refused(args: &[&str]) -> String {
    let out = run(args);
    assert_eq!(out.status.code(), Some(2), "{args:?}");
    assert!(out.stdout.is_empty(), "{args:?} printed {:?}", out.stdout);
    String::from_utf8(out.stderr).unwrap()
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
    let out = run(&[
        "deadline",
        "--country",
        "SE",
        "--from",
        "9999-12-30T12:00:00Z",
        "--calendar-days",
        "1",
        "--json",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["last_day"], "9999-12-31");
    assert_eq!(v["deadline"], "9999-12-31T23:00:00Z");
}

#[test]
fn batch_lines_past_year_9999_get_an_error_line() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_cpor-worker"))
        .args(["deadline", "--batch"])
        .env_remove("CPOR_CONFIG")
        .current_dir(tempfile::tempdir().unwrap().path())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(
            concat!(
                r#"{"country":"US","from":"9999-12-01T00:00:00Z","calendar_days":60}"#,
                "\n",
                r#"{"country":"SE","from":"2026-03-02T10:00:00Z","business_days":1000000000}"#,
                "\n"
            )
            .as_bytes(),
        )
        .unwrap();
    let out = child.wait_with_output().unwrap();
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
        let out = run(&["calendar", "holidays", "--country", "SE", "--year", year]);
        assert!(out.status.success(), "{year}");
    }
}

#[test]
fn holidays_default_to_the_current_year() {
    let before = chrono::Utc::now()
        .with_timezone(&chrono_tz::Europe::Stockholm)
        .year();
    let out = run(&["calendar", "holidays", "--country", "SE", "--json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let after = chrono::Utc::now()
        .with_timezone(&chrono_tz::Europe::Stockholm)
        .year();
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let year = v["year"].as_i64().unwrap();
    assert!(year == i64::from(before) || year == i64::from(after), "{v}");
    assert!(!v["holidays"].as_array().unwrap().is_empty());
}

#[test]
fn text_says_one_business_day_and_lists_skipped_weekends() {
    // Friday 2026-03-06: one business day later is Monday the 9th, past the weekend.
    let out = run(&[
        "deadline",
        "--country",
        "SE",
        "--from",
        "2026-03-06T10:00:00+01:00",
        "--business-days",
        "1",
    ]);
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.contains("counted:   1 business day strictly after 2026-03-06"),
        "{text}"
    );
    assert!(!text.contains("1 business days"), "{text}");
    assert!(text.contains("skipped: 2026-03-07 weekend (Sat)"), "{text}");
    assert!(text.contains("skipped: 2026-03-08 weekend (Sun)"), "{text}");
    // Holidays keep their names, weekend or not.
    let out = run(&[
        "deadline",
        "--country",
        "SE",
        "--from",
        "2026-12-23T15:00:00+01:00",
        "--business-days",
        "5",
    ]);
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("counted:   5 business days"), "{text}");
    assert!(text.contains("2026-12-24 \"Christmas Eve\""), "{text}");
    assert!(text.contains("skipped: 2026-12-27 weekend (Sun)"), "{text}");
    let out = run(&[
        "deadline",
        "--country",
        "SE",
        "--from",
        "2026-03-06T10:00:00+01:00",
        "--calendar-days",
        "1",
    ]);
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.contains("counted:   1 calendar day strictly"),
        "{text}"
    );
}
