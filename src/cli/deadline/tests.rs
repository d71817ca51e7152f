//! `--batch` in parallel with the fast JSON path writes exactly what the sequential serde_json
//! path writes, for plain lines and for every odd line the fast reader gives up on.

use std::sync::LazyLock;

use super::batch::{batch, batch_sequential};
use super::json::parse_line;
use crate::calendar::Calendars;

static CALS: LazyLock<Calendars> = LazyLock::new(|| Calendars::builtin().expect("calendars"));

/// A random input line: mostly plain, sometimes odd in one of many ways.
fn line(rng: &mut fastrand::Rng) -> String {
    let cc = ["SE", "US", "GB", "DE", "se", "ZZ", "S\\u0045", "\"", ""][rng.usize(..9)];
    let zone = [
        None,
        Some("\"Europe/Stockholm\""),
        Some("\"America/New_York\""),
        Some("\"America/Havana\""),
        Some("\"Asia/Tokyo\""),
        Some("null"),
        Some("\"Mars/Base\""),
        Some("\"Europe\\/Berlin\""),
        Some("5"),
    ][rng.usize(..9)];
    let secs = rng.i64(-86_400..7_300_000_000);
    let from =
        chrono::DateTime::from_timestamp(secs, 0).map_or("x".to_owned(), |t| match rng.u8(..4) {
            0 => t.to_rfc3339(),
            1 => t.format("%Y-%m-%dT%H:%M:%S%.3f+05:30").to_string(),
            2 => t.format("%Y-%m-%dT%H:%M:%SZ").to_string(),
            _ => t.format("%Y-%m-%d %H:%M:%S-03:00").to_string(),
        });
    let n = [
        "5",
        "0",
        "1",
        "60",
        "400",
        "1000000000",
        "4294967295",
        "4294967296",
        "05",
        "5.0",
        "-1",
        "1e3",
        "null",
        "\"5\"",
    ][rng.usize(..14)];
    let count = match rng.u8(..10) {
        0 => format!("\"calendar_days\":{n},\"business_days\":{n}"),
        1 => String::new(),
        2..=4 => format!("\"calendar_days\":{n}"),
        _ => format!("\"business_days\":{n}"),
    };
    let mut fields = vec![
        format!("\"country\":\"{cc}\""),
        format!("\"from\":\"{from}\""),
    ];
    if let Some(z) = zone {
        fields.push(format!("\"time_zone\":{z}"));
    }
    if !count.is_empty() {
        fields.push(count);
    }
    match rng.u8(..12) {
        0 => fields.push("\"extra\":[1,{\"a\":true}]".to_owned()),
        1 => fields.push("\"note\":\"caf\u{e9} \\\"x\\\"\"".to_owned()),
        2 => fields.push("\"country\":\"SE\"".to_owned()),
        _ => {}
    }
    rng.shuffle(&mut fields);
    let sep = [",", " , ", ",\t"][rng.usize(..3)];
    let body = format!("{{{}}}", fields.join(sep));
    match rng.u8(..40) {
        0 => String::new(),
        1 => "not json".to_owned(),
        2 => format!("  {body}  \r"),
        3 => format!("{body} trailing"),
        4 => body.replace('{', "[").replace('}', "]"),
        5 => format!("{body},"),
        _ => body,
    }
}

#[test]
fn parallel_fast_output_is_byte_identical_to_the_sequential_path() {
    let mut rng = fastrand::Rng::with_seed(15);
    for round in 0..6 {
        let mut input: Vec<u8> = Vec::new();
        for _ in 0..3_000 {
            input.extend_from_slice(line(&mut rng).as_bytes());
            input.push(b'\n');
        }
        input.extend_from_slice(b"\xff\xfe not utf-8\n");
        if round % 2 == 1 {
            // The last line without its newline still counts.
            input.extend_from_slice(line(&mut rng).as_bytes());
        }
        let expected = batch_sequential(&CALS, &input);
        assert!(expected.ends_with(b"\n"));
        for (threads, chunk) in [(1, 1 << 20), (2, 1 << 20), (2, 777), (3, 64), (2, 1)] {
            let mut out = Vec::new();
            batch(&CALS, &input[..], &mut out, threads, chunk).unwrap();
            assert!(
                out == expected,
                "threads {threads}, chunk {chunk}: output differs from the sequential path"
            );
        }
    }
}

#[test]
fn the_fast_reader_takes_plain_lines_and_leaves_the_rest_to_serde() {
    let plain = br#"{"country":"SE","time_zone":null,"from":"2026-12-23T15:00:00+01:00","business_days":5,"x":"y"}"#;
    let l = parse_line(plain).unwrap();
    assert_eq!((&*l.country, l.time_zone.as_deref()), ("SE", None));
    assert_eq!((l.business_days, l.calendar_days), (Some(5), None));
    // Missing optional keys are None, as with serde; a line without a count still parses
    // (the error about the count is the caller's, worded the same for both paths).
    let l = parse_line(br#"{"country":"US","from":"x","calendar_days":7}"#).unwrap();
    assert_eq!(
        (l.time_zone, l.business_days, l.calendar_days),
        (None, None, Some(7))
    );
    assert!(parse_line(br#"{"country":"US","from":"x"}"#).is_some());
    for odd in [
        &br#"{"country":"S\u0045","from":"x","business_days":5}"#[..],
        br#"{"country":"SE","country":"SE","from":"x","business_days":5}"#,
        br#"{"country":"SE","from":"x","business_days":05}"#,
        br#"{"country":"SE","from":"x","business_days":5.0}"#,
        br#"{"country":"SE","from":"x","business_days":4294967296}"#,
        br#"{"country":"SE","from":"x","ok":true}"#,
        br#"{"country":"SE","from":"x"} x"#,
        br#"{"country":"SE","from":"x",}"#,
        b"{}",
        b"",
    ] {
        assert!(
            parse_line(odd).is_none(),
            "{}",
            String::from_utf8_lossy(odd)
        );
    }
}

#[test]
fn empty_input_gives_empty_output() {
    let mut out = Vec::new();
    batch(&CALS, &b""[..], &mut out, 2, 64).unwrap();
    assert!(out.is_empty());
    assert!(batch_sequential(&CALS, b"").is_empty());
}
