//! Where a deadline came from, as every history and outbox row records it: the calendar (id and
//! version) and the days the count skipped, with why. Pure.

use chrono::{Datelike, NaiveDate, Weekday};
use serde::Serialize;

use super::DeadlineInfo;
use crate::calendar::Calendar;

/// A calendar as recorded with a deadline: its id and version ([`Calendar::version`]).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct CalendarRef {
    /// The calendar's id.
    pub id: String,
    /// Its version: the file's `version` (if any), `+`, and the content hash.
    pub version: String,
}

impl From<&Calendar> for CalendarRef {
    fn from(cal: &Calendar) -> Self {
        CalendarRef {
            id: cal.id().to_owned(),
            version: cal.version(),
        }
    }
}

/// A day a business-day count passed over.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct SkippedDay {
    /// The local date.
    #[serde(serialize_with = "crate::rfc3339::date")]
    pub date: NaiveDate,
    /// `weekend`, or the holiday's name.
    pub why: String,
}

/// The days between d0 (exclusive) and the last day (inclusive) that a business-day deadline
/// did not count, each with why; none for calendar-day deadlines (every day counts).
pub fn skipped_days(cal: &Calendar, d: &DeadlineInfo) -> Vec<SkippedDay> {
    if d.counting != "business" {
        return Vec::new();
    }
    d.from_date
        .iter_days()
        .skip(1)
        .take_while(|day| *day <= d.last_day)
        .filter(|day| !cal.is_business_day(*day))
        .map(|date| {
            let why = match (date.weekday(), cal.holiday(date)) {
                (Weekday::Sat | Weekday::Sun, _) => "weekend".to_owned(),
                (_, Some(h)) => h.name.to_string(),
                (_, None) => "not a business day".to_owned(),
            };
            SkippedDay { date, why }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::calendar::{Calendars, DayCount, deadline};

    #[test]
    fn christmas_week_skips_named_holidays_and_weekends() {
        let cals = Calendars::builtin().unwrap();
        let se = cals.for_country("SE").unwrap();
        let from = "2026-12-23T14:00:00Z".parse().unwrap();
        let d = deadline(se, se.time_zone(), from, DayCount::Business(5)).unwrap();
        let info = DeadlineInfo::from(&d);
        assert_eq!(info.from, from);
        let skipped: Vec<(String, String)> = skipped_days(se, &info)
            .into_iter()
            .map(|s| (s.date.to_string(), s.why))
            .collect();
        let want = [
            ("2026-12-24", "Christmas Eve"),
            ("2026-12-25", "Christmas Day"),
            ("2026-12-26", "weekend"),
            ("2026-12-27", "weekend"),
            ("2026-12-31", "New Year's Eve"),
            ("2027-01-01", "New Year's Day"),
            ("2027-01-02", "weekend"),
            ("2027-01-03", "weekend"),
        ];
        let want: Vec<(String, String)> = want
            .iter()
            .map(|(a, b)| ((*a).to_owned(), (*b).to_owned()))
            .collect();
        assert_eq!(skipped, want);
    }

    #[test]
    fn calendar_version_names_file_version_and_hash() {
        let cals = Calendars::builtin().unwrap();
        let se = cals.for_country("SE").unwrap();
        let r = CalendarRef::from(se);
        assert_eq!(r.id, "SE");
        assert_eq!(r.version, format!("2026.1+{:016x}", se.fingerprint()));
        let calendar_days = deadline(
            se,
            se.time_zone(),
            "2026-12-23T14:00:00Z".parse().unwrap(),
            DayCount::Calendar(30),
        )
        .unwrap();
        assert!(skipped_days(se, &DeadlineInfo::from(&calendar_days)).is_empty());
    }

    #[test]
    fn a_communicated_last_day_is_never_shortened() {
        use crate::claim::{Claim, ClaimRow};
        use crate::timers::{ClaimFacts, Communicated, TimerKind, TimerSettings, evaluate};
        let cals = Calendars::builtin().unwrap();
        let se = cals.for_country("SE").unwrap();
        let t = |s: &str| s.parse::<chrono::DateTime<chrono::Utc>>().unwrap();
        let claim = Claim::try_from(ClaimRow {
            id: "c1".into(),
            status: "partner_action_required".into(),
            country: Some("SE".into()),
            info_requested_at: Some(t("2026-12-23T14:00:00Z")),
            ..ClaimRow::default()
        })
        .unwrap();
        let told = |day: &str, at: &str| ClaimFacts {
            communicated: vec![Communicated {
                timer: TimerKind::PartnerResponseDeadline,
                start: t("2026-12-23T14:00:00Z"),
                last_day: day.parse().unwrap(),
                passes_at: t(at),
            }],
            ..ClaimFacts::default()
        };
        let deadline = |facts: &ClaimFacts, on: bool| {
            let settings = TimerSettings {
                reminder_lead_business_days: 0,
                max_first_sight_age: chrono::Duration::days(14),
                never_shorten_communicated: on,
            };
            let timers = evaluate(&claim, se, facts, settings, t("2026-12-24T00:00:00Z")).unwrap();
            let d = timers
                .into_iter()
                .find(|x| x.kind == TimerKind::PartnerResponseDeadline)
                .unwrap();
            (d.due.unwrap(), d.deadline.unwrap())
        };
        // Told 7 January (a calendar then had two more holidays): kept, with the rule named.
        let later = told("2027-01-07", "2027-01-07T23:00:00Z");
        let (due, d) = deadline(&later, true);
        assert_eq!(d.last_day.to_string(), "2027-01-07");
        assert_eq!(due, t("2027-01-07T23:00:00Z"));
        assert_eq!(d.rule, "never_shorten_communicated");
        assert_eq!(d.counted_last_day.unwrap().to_string(), "2027-01-05");
        // The setting off: the calendar in force decides.
        let (_, d) = deadline(&later, false);
        assert_eq!(
            (d.last_day.to_string(), d.rule),
            ("2027-01-05".into(), "calendar")
        );
        // Told an earlier day: a deadline may move later.
        let (_, d) = deadline(&told("2027-01-04", "2027-01-04T23:00:00Z"), true);
        assert_eq!(
            (d.last_day.to_string(), d.rule),
            ("2027-01-05".into(), "calendar")
        );
    }
}
