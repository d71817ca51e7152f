//! When the daemon's passes run: a cron expression (with seconds) read in a time zone. Pure.
//! Each next instant is computed afresh in the zone, so a local-time schedule stays right across
//! DST changes (unlike a fixed UTC offset taken once at start-up).

use chrono::{DateTime, Timelike, Utc};
use chrono_tz::Tz;
use croner::Cron;
use croner::parser::{CronParser, Seconds};

/// A parsed pass schedule.
#[derive(Clone, Debug)]
pub struct Schedule {
    cron: Cron,
    tz: Tz,
}

/// The cron expression could not be parsed.
#[derive(Debug, thiserror::Error)]
#[error("cron expression `{expr}`: {reason}")]
pub struct ScheduleError {
    /// The expression.
    pub expr: String,
    /// Why.
    pub reason: String,
}

impl Schedule {
    /// Parses `expr` (6 fields: sec min hour day month weekday) to be read in `tz`.
    pub fn parse(expr: &str, tz: Tz) -> Result<Schedule, ScheduleError> {
        let cron = CronParser::builder()
            .seconds(Seconds::Required)
            .dom_and_dow(true)
            .build()
            .parse(expr)
            .map_err(|e| ScheduleError {
                expr: expr.to_owned(),
                reason: e.to_string(),
            })?;
        Ok(Schedule { cron, tz })
    }

    /// The first pass instant strictly after `after`, or `None` if the expression never fires again.
    ///
    /// ```
    /// use cpor_worker::schedule::Schedule;
    /// let s = Schedule::parse("0 30 9 * * *", chrono_tz::Europe::Stockholm).unwrap();
    /// // 09:30 in Stockholm is 08:30 UTC in winter and 07:30 UTC after the clocks go forward.
    /// let before = s.next_after("2026-03-28T12:00:00Z".parse().unwrap()).unwrap();
    /// assert_eq!(before.to_rfc3339(), "2026-03-29T07:30:00+00:00");
    /// ```
    pub fn next_after(&self, after: DateTime<Utc>) -> Option<DateTime<Utc>> {
        // croner keeps the sub-second part of `after` (10:00:30.49 → 10:01:00.49): cron
        // instants are whole seconds, so search from the whole second at or before `after`.
        let after = after.with_nanosecond(0).unwrap_or(after);
        self.cron
            .find_next_occurrence(&after.with_timezone(&self.tz), false)
            .ok()
            .map(|t| t.with_timezone(&Utc))
    }

    /// True when the expression fires at least once in a 400-year cycle of the calendar (after
    /// which dates and weekdays repeat): `0 0 0 30 2 *` (30 February) never does.
    pub fn ever_fires(&self) -> bool {
        let Some(start) = DateTime::from_timestamp(946_684_800, 0) else {
            return true;
        };
        self.next_after(start)
            .is_some_and(|t| t < start + chrono::Duration::days(146_097))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono_tz::{America, Europe};

    fn t(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    #[test]
    fn every_minute_by_default() {
        let s = Schedule::parse("0 * * * * *", chrono_tz::UTC).unwrap();
        assert_eq!(
            s.next_after(t("2026-01-01T10:00:00Z")),
            Some(t("2026-01-01T10:01:00Z"))
        );
        assert_eq!(
            s.next_after(t("2026-01-01T10:00:30Z")),
            Some(t("2026-01-01T10:01:00Z"))
        );
        // Whole seconds, whatever the fraction of the instant searched from.
        assert_eq!(
            s.next_after(t("2026-01-01T10:00:59.490Z")),
            Some(t("2026-01-01T10:01:00Z"))
        );
        assert_eq!(
            s.next_after(t("2026-01-01T10:01:00.001Z")),
            Some(t("2026-01-01T10:02:00Z"))
        );
    }

    #[test]
    fn local_time_survives_spring_and_autumn_changes() {
        let s = Schedule::parse("0 30 9 * * *", Europe::Stockholm).unwrap();
        // Day by day across the March change: 08:30 UTC, then 07:30 UTC.
        let mut at = t("2026-03-27T12:00:00Z");
        let mut seen = Vec::new();
        for _ in 0..4 {
            at = s.next_after(at).unwrap();
            seen.push(at.to_rfc3339());
        }
        assert_eq!(
            seen,
            [
                "2026-03-28T08:30:00+00:00",
                "2026-03-29T07:30:00+00:00",
                "2026-03-30T07:30:00+00:00",
                "2026-03-31T07:30:00+00:00"
            ]
        );
        // And back in October.
        let after = s.next_after(t("2026-10-25T06:00:00Z")).unwrap();
        assert_eq!(after, t("2026-10-25T08:30:00Z"));
    }

    #[test]
    fn a_time_inside_the_spring_gap_still_runs_that_day() {
        // 02:30 does not exist in New York on 8 March 2026.
        let s = Schedule::parse("0 30 2 * * *", America::New_York).unwrap();
        let next = s.next_after(t("2026-03-08T05:00:00Z")).unwrap();
        assert!(
            next >= t("2026-03-08T06:59:00Z") && next <= t("2026-03-09T06:30:00Z"),
            "{next}"
        );
    }

    #[test]
    fn an_expression_that_never_fires_is_told_apart() {
        for never in ["0 0 0 30 2 *", "0 0 0 31 4 *"] {
            assert!(
                !Schedule::parse(never, chrono_tz::UTC).unwrap().ever_fires(),
                "{never}"
            );
        }
        for ever in ["0 * * * * *", "0 0 0 29 2 *", "0 0 12 13 * FRI"] {
            assert!(
                Schedule::parse(ever, chrono_tz::UTC).unwrap().ever_fires(),
                "{ever}"
            );
        }
    }

    #[test]
    fn bad_expressions_are_named() {
        let err = Schedule::parse("61 * * * * *", chrono_tz::UTC).unwrap_err();
        assert!(err.to_string().contains("61 * * * * *"), "{err}");
    }
}
