//! The daemon behind `run`: passes on a cron schedule, HTTP endpoints, graceful stop.

mod schedule;

pub use schedule::{Schedule, ScheduleError};
