//! Instants and dates written into JSON documents exactly as chrono's own `Serialize` writes
//! them (`2026-11-25T08:00:00Z`, `2026-11-25`), but as one string: chrono formats through
//! `Display`, which serde_json escapes piece by piece, a fifth of the cost of a fired timer's
//! history details. For `#[serde(serialize_with = "…")]`; years outside 0–9999 and leap seconds
//! go to chrono itself.

use chrono::{DateTime, Datelike, NaiveDate, Timelike, Utc};
use serde::{Serialize, Serializer};

/// Writes `n` as `width` decimal digits, zero-padded, at the start of `out`.
fn digits(out: &mut [u8], n: u32, width: usize) {
    let mut n = n;
    for slot in out[..width].iter_mut().rev() {
        *slot = b'0' + (n % 10) as u8;
        n /= 10;
    }
}

/// `YYYY-MM-DD` into `out[..10]`; false when the year needs chrono's signed form.
fn put_date(out: &mut [u8], d: NaiveDate) -> bool {
    let Ok(year) = u32::try_from(d.year()) else {
        return false;
    };
    if year > 9999 {
        return false;
    }
    digits(out, year, 4);
    out[4] = b'-';
    digits(&mut out[5..], d.month(), 2);
    out[7] = b'-';
    digits(&mut out[8..], d.day(), 2);
    true
}

/// The text chrono's `Serialize` gives `t` (RFC 3339, `Z`, as many fraction digits as needed:
/// none, 3, 6 or 9), or None where only chrono's formatter gives it.
fn instant_text(t: &DateTime<Utc>, out: &mut [u8; 30]) -> Option<usize> {
    let naive = t.naive_utc();
    let nanos = naive.nanosecond();
    if nanos >= 1_000_000_000 || !put_date(out, naive.date()) {
        return None;
    }
    out[10] = b'T';
    digits(&mut out[11..], naive.hour(), 2);
    out[13] = b':';
    digits(&mut out[14..], naive.minute(), 2);
    out[16] = b':';
    digits(&mut out[17..], naive.second(), 2);
    let mut len = 19;
    let (fraction, width) = match nanos {
        0 => (0, 0),
        n if n % 1_000_000 == 0 => (n / 1_000_000, 3),
        n if n % 1_000 == 0 => (n / 1_000, 6),
        n => (n, 9),
    };
    if width > 0 {
        out[len] = b'.';
        digits(&mut out[len + 1..], fraction, width);
        len += 1 + width;
    }
    out[len] = b'Z';
    Some(len + 1)
}

/// Serializes an instant as chrono does.
pub fn instant<S: Serializer>(t: &DateTime<Utc>, s: S) -> Result<S::Ok, S::Error> {
    let mut out = [0u8; 30];
    match instant_text(t, &mut out).and_then(|n| std::str::from_utf8(&out[..n]).ok()) {
        Some(text) => s.serialize_str(text),
        None => t.serialize(s),
    }
}

/// Serializes an optional instant as chrono does (`null` for None).
pub fn opt_instant<S: Serializer>(t: &Option<DateTime<Utc>>, s: S) -> Result<S::Ok, S::Error> {
    match t {
        Some(t) => instant(t, s),
        None => s.serialize_none(),
    }
}

/// Serializes a date as chrono does.
pub fn date<S: Serializer>(d: &NaiveDate, s: S) -> Result<S::Ok, S::Error> {
    let mut out = [0u8; 10];
    if put_date(&mut out, *d)
        && let Ok(text) = std::str::from_utf8(&out)
    {
        return s.serialize_str(text);
    }
    d.serialize(s)
}

/// Serializes an optional date as chrono does (`null` for None).
pub fn opt_date<S: Serializer>(d: &Option<NaiveDate>, s: S) -> Result<S::Ok, S::Error> {
    match d {
        Some(d) => date(d, s),
        None => s.serialize_none(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{NaiveTime, TimeZone};
    use proptest::prelude::*;

    #[derive(Serialize)]
    struct Ours {
        #[serde(serialize_with = "instant")]
        t: DateTime<Utc>,
        #[serde(serialize_with = "opt_instant")]
        o: Option<DateTime<Utc>>,
        #[serde(serialize_with = "date")]
        d: NaiveDate,
        #[serde(serialize_with = "opt_date")]
        od: Option<NaiveDate>,
    }

    #[derive(Serialize)]
    struct Chronos {
        t: DateTime<Utc>,
        o: Option<DateTime<Utc>>,
        d: NaiveDate,
        od: Option<NaiveDate>,
    }

    fn both(t: DateTime<Utc>, d: NaiveDate) -> (String, String) {
        let ours = Ours {
            t,
            o: Some(t),
            d,
            od: Some(d),
        };
        let chronos = Chronos {
            t,
            o: Some(t),
            d,
            od: Some(d),
        };
        (
            serde_json::to_string(&ours).unwrap(),
            serde_json::to_string(&chronos).unwrap(),
        )
    }

    #[test]
    fn the_usual_forms_and_the_ones_chrono_writes_itself() {
        let t = Utc.with_ymd_and_hms(2026, 11, 25, 8, 0, 0).unwrap();
        let d = NaiveDate::from_ymd_opt(2026, 11, 25).unwrap();
        let (ours, _) = both(t, d);
        assert_eq!(
            ours,
            r#"{"t":"2026-11-25T08:00:00Z","o":"2026-11-25T08:00:00Z","d":"2026-11-25","od":"2026-11-25"}"#
        );
        let none = Ours {
            t,
            o: None,
            d,
            od: None,
        };
        let text = serde_json::to_string(&none).unwrap();
        assert!(
            text.contains(r#""o":null"#) && text.contains(r#""od":null"#),
            "{text}"
        );
        // A leap second, a year past 9999 and one before 0 are chrono's own text.
        let leap = NaiveDate::from_ymd_opt(2016, 12, 31)
            .unwrap()
            .and_time(NaiveTime::from_hms_nano_opt(23, 59, 59, 1_250_000_000).unwrap())
            .and_utc();
        let far = NaiveDate::from_ymd_opt(10_000, 1, 1).unwrap();
        let before = NaiveDate::from_ymd_opt(-1, 6, 30).unwrap();
        for (t, d) in [
            (leap, far),
            (far.and_hms_opt(0, 0, 0).unwrap().and_utc(), before),
        ] {
            let (ours, chronos) = both(t, d);
            assert_eq!(ours, chronos);
        }
    }

    proptest! {
        #[test]
        fn every_instant_and_date_is_written_as_chrono_writes_it(
            secs in -70_000_000_000i64..300_000_000_000,
            nanos in prop_oneof![
                Just(0u32),
                (0u32..1000).prop_map(|m| m * 1_000_000),
                (0u32..1_000_000).prop_map(|u| u * 1_000),
                0u32..1_000_000_000,
            ],
            day in -800_000i32..3_700_000,
        ) {
            let t = DateTime::from_timestamp(secs, nanos).unwrap();
            let d = NaiveDate::from_num_days_from_ce_opt(day).unwrap();
            let (ours, chronos) = both(t, d);
            prop_assert_eq!(ours, chronos);
        }
    }
}
