//! Locale-aware formatting for templates. Dates in words and time-zone names come from CLDR
//! through ICU4X's compiled data (`icu_datetime`), never from tables of our own:
//!
//! - filter `long_date`: a `YYYY-MM-DD` date in words for the recipient's locale (en-US
//!   "Tuesday, January 12, 2027", en-GB "Tuesday, 12 January 2027", sv "tisdag 12 januari 2027",
//!   de "Dienstag, 12. Januar 2027");
//! - [`zone_name_in`]: the name people know a zone by, CLDR's exemplar city in the recipient's
//!   language ("Stockholm", sv "Köpenhamn", de "Kopenhagen"); rendered as `time_zone_name`;
//! - filter `utc_time` ("2027-01-08 14:00 UTC") and `duration` (seconds → "2 days 10 hours").
//!
//! The locale used is [`text_locale`]: the recipient's locale when the template folder is in
//! its language (`en-GB` with `en/`), else the folder's language with the recipient's region
//! (`fi-FI` falling back to `en/` writes dates as `en-FI`: English words, Finnish order).

use chrono::{DateTime, Datelike, NaiveDate, Utc};
use chrono_tz::{OffsetComponents, Tz};
use icu_datetime::fieldsets::YMDE;
use icu_datetime::fieldsets::zone::ExemplarCity;
use icu_datetime::input::{Date, TimeZone};
use icu_datetime::{FixedCalendarDateTimeFormatter, NoCalendarFormatter};
use icu_locale_core::Locale;
use minijinja::{Error, ErrorKind, State};

/// The locale text is written in when `recipient` is rendered with templates of folder `lang`.
///
/// ```
/// use cpor_worker::mail::format::text_locale;
/// assert_eq!(text_locale("en-GB", "en").to_string(), "en-GB");
/// assert_eq!(text_locale("de_DE", "de").to_string(), "de-DE");
/// assert_eq!(text_locale("fi-FI", "en").to_string(), "en-FI");
/// assert_eq!(text_locale("not a locale", "sv").to_string(), "sv");
/// ```
pub fn text_locale(recipient: &str, lang: &str) -> Locale {
    let folder = parse(lang).unwrap_or_else(|| Locale::UNKNOWN.clone());
    let Some(mut wanted) = parse(recipient) else {
        return folder;
    };
    if wanted.id.language == folder.id.language {
        if wanted.id.region.is_none() {
            wanted.id.region = folder.id.region;
        }
        return wanted;
    }
    let mut out = folder;
    if out.id.region.is_none() {
        out.id.region = wanted.id.region;
    }
    out
}

fn parse(tag: &str) -> Option<Locale> {
    Locale::try_from_str(&tag.trim().replace('_', "-"))
        .ok()
        .filter(|l| !l.id.language.is_unknown())
}

/// `date` in words for `locale` (CLDR's long date with weekday, Gregorian calendar).
///
/// ```
/// use chrono::NaiveDate;
/// use cpor_worker::mail::format::{long_date_in, text_locale};
/// let d = NaiveDate::from_ymd_opt(2027, 1, 12).unwrap();
/// assert_eq!(long_date_in(&text_locale("en-US", "en"), d), "Tuesday, January 12, 2027");
/// assert_eq!(long_date_in(&text_locale("sv-SE", "sv"), d), "tisdag 12 januari 2027");
/// ```
pub fn long_date_in(locale: &Locale, date: NaiveDate) -> String {
    let iso = u8::try_from(date.month())
        .ok()
        .zip(u8::try_from(date.day()).ok())
        .and_then(|(m, d)| Date::try_new_gregorian(date.year(), m, d).ok());
    let formatter = FixedCalendarDateTimeFormatter::try_new(locale.into(), YMDE::long());
    match (iso, formatter) {
        (Some(d), Ok(f)) => f.format(&d).to_string(),
        // Compiled data covers every locale (falling back to the root), so this is not reached;
        // an ISO date is still better than failing the email.
        _ => date.format("%Y-%m-%d").to_string(),
    }
}

/// The name people know `tz` by, in `locale`'s language: CLDR's exemplar city ("Stockholm",
/// "New York"; sv "Köpenhamn", de "Kopenhagen"). Zones without a city: "UTC", or the UTC
/// offset for `Etc/GMT±N` ("UTC−05:00"); a zone CLDR does not know yet: the city part of
/// its IANA name (`America/Ciudad_Juarez` → "Ciudad Juarez").
///
/// ```
/// use cpor_worker::mail::format::{text_locale, zone_name_in};
/// let de = text_locale("de-DE", "de");
/// assert_eq!(zone_name_in(&de, chrono_tz::Europe::Stockholm), "Stockholm");
/// assert_eq!(zone_name_in(&de, chrono_tz::Europe::Copenhagen), "Kopenhagen");
/// assert_eq!(zone_name_in(&de, chrono_tz::UTC), "UTC");
/// ```
pub fn zone_name_in(locale: &Locale, tz: Tz) -> String {
    let name = tz.name();
    let id = TimeZone::from_iana_id(name);
    if id.as_str().starts_with("utc") || name.starts_with("Etc/") {
        return utc_offset_name(tz);
    }
    let city = |id: TimeZone| {
        NoCalendarFormatter::try_new(locale.into(), ExemplarCity)
            .ok()
            .map(|f| f.format(&id.without_offset()).to_string())
    };
    match (id.is_unknown(), city(id), city(TimeZone::UNKNOWN)) {
        (false, Some(c), unknown) if Some(&c) != unknown.as_ref() => c,
        _ => name.rsplit('/').next().unwrap_or(name).replace('_', " "),
    }
}

/// "UTC" for a zone always at offset zero, else "UTC+HH:MM" (a fixed-offset `Etc/` zone).
fn utc_offset_name(tz: Tz) -> String {
    let epoch = DateTime::<Utc>::UNIX_EPOCH.with_timezone(&tz);
    let offset = epoch.offset();
    let secs = (offset.base_utc_offset() + offset.dst_offset()).num_seconds();
    if secs == 0 {
        return "UTC".to_owned();
    }
    let sign = if secs < 0 { '−' } else { '+' };
    let m = secs.unsigned_abs() / 60;
    format!("UTC{sign}{:02}:{:02}", m / 60, m % 60)
}

fn var(state: &State, name: &str) -> Option<String> {
    state
        .lookup(name)
        .and_then(|v| v.as_str().map(str::to_owned))
}

/// The locale of the template being rendered: its `locale` variable in its `lang` folder.
fn state_locale(state: &State) -> Locale {
    let lang = var(state, "lang").unwrap_or_else(|| "en".to_owned());
    text_locale(&var(state, "locale").unwrap_or_else(|| lang.clone()), &lang)
}

/// Filter `long_date`: a `YYYY-MM-DD` value in words for the recipient's locale.
pub fn long_date(state: &State, value: String) -> Result<String, Error> {
    let date = NaiveDate::parse_from_str(&value, "%Y-%m-%d").map_err(|e| {
        Error::new(
            ErrorKind::InvalidOperation,
            format!("long_date: `{value}` is not a YYYY-MM-DD date: {e}"),
        )
    })?;
    Ok(long_date_in(&state_locale(state), date))
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

/// Formats a number of seconds as days, hours and minutes (largest two units) for `lang`
/// (English, Swedish or German words; English for any other language).
pub fn duration_in(lang: &str, seconds: i64) -> String {
    let s = seconds.max(0);
    let parts = [
        (s / 86400, 0),
        ((s % 86400) / 3600, 1),
        ((s % 3600) / 60, 2),
    ];
    let primary = lang.split(['-', '_']).next().unwrap_or("en");
    let words: &[&str; 7] = match primary {
        "sv" => &[
            "dag",
            "dagar",
            "timme",
            "timmar",
            "minut",
            "minuter",
            "under en minut",
        ],
        "de" => &[
            "Tag",
            "Tage",
            "Stunde",
            "Stunden",
            "Minute",
            "Minuten",
            "unter einer Minute",
        ],
        _ => &[
            "day",
            "days",
            "hour",
            "hours",
            "minute",
            "minutes",
            "under a minute",
        ],
    };
    let shown: Vec<String> = parts
        .iter()
        .filter(|(n, _)| *n > 0)
        .take(2)
        .map(|&(n, unit)| format!("{n} {}", words[unit * 2 + usize::from(n != 1)]))
        .collect();
    if shown.is_empty() {
        words[6].to_owned()
    } else {
        shown.join(" ")
    }
}

/// Filter `duration`: seconds in words for the template's language.
pub fn duration(state: &State, seconds: i64) -> String {
    duration_in(&var(state, "lang").unwrap_or_default(), seconds)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(y: i32, m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, d).unwrap()
    }

    fn in_locale(recipient: &str, lang: &str, d: NaiveDate) -> String {
        long_date_in(&text_locale(recipient, lang), d)
    }

    #[test]
    fn dates_follow_cldr_per_locale() {
        let d = day(2027, 1, 12);
        assert_eq!(in_locale("en-US", "en", d), "Tuesday, January 12, 2027");
        assert_eq!(in_locale("en-GB", "en", d), "Tuesday, 12 January 2027");
        assert_eq!(in_locale("en-AU", "en", d), "Tuesday 12 January 2027");
        assert_eq!(in_locale("sv-SE", "sv", d), "tisdag 12 januari 2027");
        assert_eq!(in_locale("sv", "sv", d), "tisdag 12 januari 2027");
        assert_eq!(in_locale("de-DE", "de", d), "Dienstag, 12. Januar 2027");
        assert_eq!(in_locale("de-AT", "de", d), "Dienstag, 12. Jänner 2027");
        assert_eq!(
            in_locale("sv", "sv", day(2026, 6, 20)),
            "lördag 20 juni 2026"
        );
    }

    #[test]
    fn a_locale_without_templates_keeps_its_region_in_the_folder_language() {
        let d = day(2027, 1, 12);
        assert_eq!(in_locale("fi-FI", "en", d), "Tuesday, 12 January 2027");
        assert_eq!(in_locale("fr", "en", d), "Tuesday, January 12, 2027");
        assert_eq!(in_locale("", "en", d), "Tuesday, January 12, 2027");
        assert_eq!(text_locale("sv_FI", "sv-FI").to_string(), "sv-FI");
        assert_eq!(text_locale("sv", "sv-FI").to_string(), "sv-FI");
    }

    #[test]
    fn zones_are_named_by_their_city_in_the_readers_language() {
        use chrono_tz::{America, Asia, Etc, Europe};
        let sv = text_locale("sv-SE", "sv");
        let de = text_locale("de-DE", "de");
        let en = text_locale("en-GB", "en");
        assert_eq!(zone_name_in(&en, Europe::Stockholm), "Stockholm");
        assert_eq!(zone_name_in(&sv, Europe::Copenhagen), "Köpenhamn");
        assert_eq!(zone_name_in(&de, Europe::Copenhagen), "Kopenhagen");
        assert_eq!(zone_name_in(&de, Europe::Vienna), "Wien");
        assert_eq!(zone_name_in(&en, America::New_York), "New York");
        assert_eq!(zone_name_in(&de, Asia::Kolkata), "Kalkutta");
        assert_eq!(zone_name_in(&en, chrono_tz::UTC), "UTC");
        assert_eq!(zone_name_in(&en, Etc::GMTPlus5), "UTC−05:00");
        assert_eq!(zone_name_in(&sv, Etc::GMTMinus1), "UTC+01:00");
    }

    #[test]
    fn durations_keep_the_two_largest_units() {
        assert_eq!(
            duration_in("en", 2 * 86400 + 10 * 3600 + 60),
            "2 days 10 hours"
        );
        assert_eq!(duration_in("sv", 3600 + 60), "1 timme 1 minut");
        assert_eq!(duration_in("de", 86400 + 2 * 60), "1 Tag 2 Minuten");
        assert_eq!(duration_in("en", 30), "under a minute");
    }
}
