//! When to try a failed email again: exponential backoff with jitter, capped, and a number of
//! attempts after which a temporary failure is dead-lettered. Pure: `now` and the jitter are
//! passed in.

use std::time::Duration;

use chrono::{DateTime, Utc};

use super::delivery::DeliveryError;

/// Backoff settings; [`RetryPolicy::default`] is 30 s × 2^n, capped at 1 h, ±20 %, 10 attempts.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RetryPolicy {
    /// Delay after the first failed attempt.
    pub base: Duration,
    /// No delay is longer than this (before jitter).
    pub cap: Duration,
    /// Relative jitter: 0.2 spreads each delay over ±20 %.
    pub jitter: f64,
    /// Attempts in all; a temporary failure on the last one is dead-lettered.
    pub max_attempts: u32,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            base: Duration::from_secs(30),
            cap: Duration::from_secs(3600),
            jitter: 0.2,
            max_attempts: 10,
        }
    }
}

/// What to do with an email after a failed attempt.
#[derive(Clone, Debug, PartialEq)]
pub enum RetryDecision {
    /// Try again at this instant.
    RetryAt(DateTime<Utc>),
    /// Give up: a permanent failure, or the attempts are used up.
    DeadLetter,
}

impl RetryPolicy {
    /// When to make the next attempt after `attempt` attempts failed (1 = the first failed);
    /// `jitter_source` returns a number in `[0, 1)` (e.g. `fastrand::f64`).
    pub fn next_attempt(
        &self,
        attempt: u32,
        now: DateTime<Utc>,
        jitter_source: &mut dyn FnMut() -> f64,
    ) -> DateTime<Utc> {
        let exp = attempt.saturating_sub(1).min(30);
        let base = self.base.as_secs_f64() * f64::from(1u32 << exp);
        let capped = base.min(self.cap.as_secs_f64());
        let unit = jitter_source().clamp(0.0, 1.0);
        let factor = 1.0 + self.jitter * (2.0 * unit - 1.0);
        let millis = (capped * factor * 1000.0).round().max(0.0) as i64;
        now + chrono::Duration::milliseconds(millis)
    }

    /// Retry or dead-letter after attempt number `attempt` (1-based) failed with `error`.
    pub fn decide(
        &self,
        attempt: u32,
        error: &DeliveryError,
        now: DateTime<Utc>,
        jitter_source: &mut dyn FnMut() -> f64,
    ) -> RetryDecision {
        match error {
            DeliveryError::Temporary(_) if attempt < self.max_attempts => {
                RetryDecision::RetryAt(self.next_attempt(attempt, now, jitter_source))
            }
            _ => RetryDecision::DeadLetter,
        }
    }
}

/// [`RetryPolicy::next_attempt`] of the default policy.
pub fn next_attempt(
    attempt: u32,
    now: DateTime<Utc>,
    jitter_source: &mut dyn FnMut() -> f64,
) -> DateTime<Utc> {
    RetryPolicy::default().next_attempt(attempt, now, jitter_source)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secs(policy: &RetryPolicy, attempt: u32, unit: f64) -> i64 {
        let now = DateTime::from_timestamp(0, 0).unwrap();
        (policy.next_attempt(attempt, now, &mut || unit) - now).num_seconds()
    }

    #[test]
    fn doubles_from_30_seconds_and_caps_at_an_hour() {
        let p = RetryPolicy::default();
        let mid: Vec<i64> = (1..=9).map(|a| secs(&p, a, 0.5)).collect();
        assert_eq!(mid, [30, 60, 120, 240, 480, 960, 1920, 3600, 3600]);
        assert_eq!(secs(&p, 1000, 0.5), 3600);
    }

    #[test]
    fn jitter_stays_within_twenty_percent() {
        let p = RetryPolicy::default();
        assert_eq!(secs(&p, 1, 0.0), 24);
        assert_eq!(secs(&p, 1, 0.999_999), 36);
        assert_eq!(secs(&p, 8, 0.0), 2880);
        assert_eq!(secs(&p, 8, 7.0), 4320, "out-of-range jitter is clamped");
    }

    #[test]
    fn temporary_failures_retry_until_max_attempts_permanent_never() {
        let p = RetryPolicy::default();
        let now = DateTime::from_timestamp(0, 0).unwrap();
        let temp = DeliveryError::Temporary("451".into());
        let perm = DeliveryError::Permanent("550".into());
        assert!(matches!(
            p.decide(9, &temp, now, &mut || 0.5),
            RetryDecision::RetryAt(_)
        ));
        assert_eq!(
            p.decide(10, &temp, now, &mut || 0.5),
            RetryDecision::DeadLetter
        );
        assert_eq!(
            p.decide(1, &perm, now, &mut || 0.5),
            RetryDecision::DeadLetter
        );
    }
}
