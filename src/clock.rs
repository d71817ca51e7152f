//! The wall clock, read in one place: the daemon and the HTTP endpoints take the time from a
//! [`Clock`] handed to them, so a pass uses one instant throughout and tests can set the time.

use std::sync::{Arc, Mutex};

use chrono::{DateTime, SubsecRound, Utc};

/// A source of the current instant.
pub trait Clock: Send + Sync + std::fmt::Debug {
    /// The current instant.
    fn now(&self) -> DateTime<Utc>;
}

/// A clock shared between the daemon and its HTTP handlers.
pub type SharedClock = Arc<dyn Clock>;

/// The operating system's clock.
#[derive(Clone, Copy, Debug, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    /// Microseconds: what both databases keep, so an instant read back equals the one written.
    fn now(&self) -> DateTime<Utc> {
        Utc::now().trunc_subsecs(6)
    }
}

/// The system clock as a [`SharedClock`].
pub fn system() -> SharedClock {
    Arc::new(SystemClock)
}

/// A clock that reads the instant it was set to (tests, replays).
#[derive(Debug)]
pub struct FixedClock(Mutex<DateTime<Utc>>);

impl FixedClock {
    /// A clock standing at `at`.
    pub fn new(at: DateTime<Utc>) -> Self {
        Self(Mutex::new(at))
    }

    /// Moves the clock to `at`.
    pub fn set(&self, at: DateTime<Utc>) {
        *self.0.lock().unwrap_or_else(|e| e.into_inner()) = at;
    }
}

impl Clock for FixedClock {
    fn now(&self) -> DateTime<Utc> {
        *self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fixed_clock_reads_what_it_was_set_to() {
        let a: DateTime<Utc> = "2027-01-12T23:00:00Z".parse().unwrap();
        let b: DateTime<Utc> = "2027-01-13T00:00:00Z".parse().unwrap();
        let c = FixedClock::new(a);
        assert_eq!(c.now(), a);
        c.set(b);
        assert_eq!(c.now(), b);
        let now = SystemClock.now();
        assert!(now > a - chrono::Duration::days(365 * 100));
        assert_eq!(now.timestamp_subsec_nanos() % 1000, 0);
    }
}
