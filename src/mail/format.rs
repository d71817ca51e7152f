//! Locale-aware formatting for templates, as minijinja filters reading the `lang` variable:
//! `long_date` (en "Friday, 8 January 2027", sv "fredag 8 januari 2027"), `utc_time`
//! ("2027-01-08 14:00 UTC") and `duration` (seconds → "2 days 10 hours" / "2 dagar 10 timmar").

use chrono::{DateTime, Datelike, NaiveDate, Utc, Weekday};
use minijinja::{Error, ErrorKind, State};

const EN_MONTHS: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];
const SV_MONTHS: [&str; 12] = [
    "januari",
    "februari",
    "mars",
    "april",
    "maj",
    "juni",
    "juli",
    "augusti",
    "september",
    "oktober",
    "november",
    "december",
];

fn lang(state: &State) -> String {
    state
        .lookup("lang")
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_else(|| "en".to_owned())
}

fn is_sv(lang: &str) -> bool {
    lang == "sv" || lang.starts_with("sv-")
}

/// Formats `date` in words for `lang` (Swedish for `sv*`, else English).
pub fn long_date_in(lang: &str, date: NaiveDate) -> String {
    let month = date.month0() as usize;
    if is_sv(lang) {
        let wd = match date.weekday() {
            Weekday::Mon => "måndag",
            Weekday::Tue => "tisdag",
            Weekday::Wed => "onsdag",
            Weekday::Thu => "torsdag",
            Weekday::Fri => "fredag",
            Weekday::Sat => "lördag",
            Weekday::Sun => "söndag",
        };
        format!("{wd} {} {} {}", date.day(), SV_MONTHS[month], date.year())
    } else {
        let wd = match date.weekday() {
            Weekday::Mon => "Monday",
            Weekday::Tue => "Tuesday",
            Weekday::Wed => "Wednesday",
            Weekday::Thu => "Thursday",
            Weekday::Fri => "Friday",
            Weekday::Sat => "Saturday",
            Weekday::Sun => "Sunday",
        };
        format!("{wd}, {} {} {}", date.day(), EN_MONTHS[month], date.year())
    }
}

/// Filter `long_date`: a `YYYY-MM-DD` value in words for the template's language.
pub fn long_date(state: &State, value: String) -> Result<String, Error> {
    let date = NaiveDate::parse_from_str(&value, "%Y-%m-%d").map_err(|e| {
        Error::new(
            ErrorKind::InvalidOperation,
            format!("long_date: `{value}` is not a YYYY-MM-DD date: {e}"),
        )
    })?;
    Ok(long_date_in(&lang(state), date))
}

/// Filter `utc_time`: an RFC 3339 instant as `YYYY-MM-DD HH:MM UTC`.
pub fn utc_time(value: String) -> Result<String, Error> {
    let t = DateTime::parse_from_rfc3339(&value).map_err(|e| {
        Error::new(
            ErrorKind::InvalidOperation,
            format!("utc_time: `{value}` is not an RFC 3339 instant: {e}"),
        )
    })?;
    Ok(t.with_timezone(&Utc)
        .format("%Y-%m-%d %H:%M UTC")
        .to_string())
}

/// Formats a number of seconds as days, hours and minutes (largest two units) for `lang`.
pub fn duration_in(lang: &str, seconds: i64) -> String {
    let s = seconds.max(0);
    let parts = [
        (s / 86400, 0),
        ((s % 86400) / 3600, 1),
        ((s % 3600) / 60, 2),
    ];
    let sv = is_sv(lang);
    let words: Vec<String> = parts
        .iter()
        .filter(|(n, _)| *n > 0)
        .take(2)
        .map(|&(n, unit)| {
            let w = match (sv, unit, n == 1) {
                (false, 0, true) => "day",
                (false, 0, false) => "days",
                (false, 1, true) => "hour",
                (false, 1, false) => "hours",
                (false, _, true) => "minute",
                (false, _, false) => "minutes",
                (true, 0, true) => "dag",
                (true, 0, false) => "dagar",
                (true, 1, true) => "timme",
                (true, 1, false) => "timmar",
                (true, _, true) => "minut",
                (true, _, false) => "minuter",
            };
            format!("{n} {w}")
        })
        .collect();
    if words.is_empty() {
        if sv {
            "under en minut"
        } else {
            "under a minute"
        }
        .to_owned()
    } else {
        words.join(" ")
    }
}

/// Filter `duration`: seconds in words for the template's language.
pub fn duration(state: &State, seconds: i64) -> String {
    duration_in(&lang(state), seconds)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_in_both_languages() {
        let d = NaiveDate::from_ymd_opt(2027, 1, 8).unwrap();
        assert_eq!(long_date_in("en", d), "Friday, 8 January 2027");
        assert_eq!(long_date_in("sv", d), "fredag 8 januari 2027");
        let d = NaiveDate::from_ymd_opt(2026, 6, 20).unwrap();
        assert_eq!(long_date_in("sv", d), "lördag 20 juni 2026");
    }

    #[test]
    fn durations_keep_the_two_largest_units() {
        assert_eq!(
            duration_in("en", 2 * 86400 + 10 * 3600 + 60),
            "2 days 10 hours"
        );
        assert_eq!(duration_in("sv", 3600 + 60), "1 timme 1 minut");
        assert_eq!(duration_in("en", 30), "under a minute");
    }
}
