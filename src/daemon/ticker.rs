//! Waiting for the schedule's instants: one trigger per instant, never before it by the wall
//! clock, and instants that passed while a pass ran are skipped (said once), not run late.

use chrono::{DateTime, Utc};

use super::Schedule;

/// Yields the schedule's instants one at a time as the wall clock reaches them.
#[derive(Clone, Debug)]
pub struct Ticker {
    schedule: Schedule,
    last: Option<DateTime<Utc>>,
}

/// One trigger of a [`Ticker`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Trigger {
    /// The schedule instant this trigger is for.
    pub at: DateTime<Utc>,
    /// Instants after the previous trigger that passed unserved (a pass ran past them).
    pub missed: u32,
}

impl Ticker {
    /// A ticker whose first trigger is the schedule's first instant after the clock's time.
    pub fn new(schedule: Schedule) -> Self {
        Self {
            schedule,
            last: None,
        }
    }

    /// Waits until `now()` reaches the next instant after both the previous trigger and the
    /// time now, and returns it; `None` when the schedule never fires again. `now` reads the
    /// wall clock (tests pass a clock driven by tokio's paused time). The wait re-reads the clock
    /// after each sleep, so a timer that wakes a little early cannot trigger early.
    pub async fn tick(
        &mut self,
        now: &(dyn Fn() -> DateTime<Utc> + Send + Sync),
    ) -> Option<Trigger> {
        let start = now();
        let mut missed = 0u32;
        let mut next = match self.last {
            Some(last) => self.schedule.next_after(last)?,
            None => self.schedule.next_after(start)?,
        };
        while next <= start {
            missed = missed.saturating_add(1);
            next = self.schedule.next_after(next)?;
        }
        loop {
            let n = now();
            if n >= next {
                break;
            }
            let wait = (next - n).to_std().unwrap_or_default();
            tokio::time::sleep(wait).await;
        }
        self.last = Some(next);
        Some(Trigger { at: next, missed })
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    /// A wall clock that starts at `start` and moves with tokio's (paused) clock.
    fn paused_clock(start: &str) -> Arc<dyn Fn() -> DateTime<Utc> + Send + Sync> {
        let base: DateTime<Utc> = start.parse().unwrap();
        let origin = tokio::time::Instant::now();
        Arc::new(move || base + chrono::Duration::from_std(origin.elapsed()).unwrap())
    }

    #[tokio::test(start_paused = true)]
    async fn one_trigger_per_instant_and_never_before_it() {
        let clock = paused_clock("2026-01-05T11:59:59.490Z");
        let mut ticker = Ticker::new(Schedule::parse("0 * * * * *", chrono_tz::UTC).unwrap());
        let mut seen = Vec::new();
        while seen.len() < 5 {
            let t = ticker.tick(clock.as_ref()).await.unwrap();
            let fired_at = clock();
            assert!(fired_at >= t.at, "fired at {fired_at} before {}", t.at);
            assert!(
                fired_at - t.at < chrono::Duration::milliseconds(50),
                "{fired_at}"
            );
            assert_eq!(t.missed, 0);
            seen.push(t.at.to_rfc3339());
        }
        assert_eq!(
            seen,
            [
                "2026-01-05T12:00:00+00:00",
                "2026-01-05T12:01:00+00:00",
                "2026-01-05T12:02:00+00:00",
                "2026-01-05T12:03:00+00:00",
                "2026-01-05T12:04:00+00:00"
            ]
        );
        // 4 minutes and a half second of (paused) time: no extra trigger in between.
        assert!(clock() < "2026-01-05T12:04:00.100Z".parse::<DateTime<Utc>>().unwrap());
    }

    #[tokio::test(start_paused = true)]
    async fn a_pass_longer_than_the_interval_skips_instants_and_counts_them() {
        let clock = paused_clock("2026-01-05T12:00:30Z");
        let mut ticker = Ticker::new(Schedule::parse("0 * * * * *", chrono_tz::UTC).unwrap());
        let first = ticker.tick(clock.as_ref()).await.unwrap();
        assert_eq!(first.at.to_rfc3339(), "2026-01-05T12:01:00+00:00");
        // The pass takes 2.5 minutes: 12:02 and 12:03 pass unserved.
        tokio::time::sleep(std::time::Duration::from_secs(150)).await;
        let next = ticker.tick(clock.as_ref()).await.unwrap();
        assert_eq!(next.at.to_rfc3339(), "2026-01-05T12:04:00+00:00");
        assert_eq!(next.missed, 2);
    }
}
