//! The engine the benches run: built-in calendars, no reminder lead, the 14-day first-sight
//! rule, communicated deadlines never shortened (the shipped defaults).

use std::sync::Arc;

use cpor_worker::calendar::Calendars;
use cpor_worker::timers::TimerSettings;
use cpor_worker::worker::Engine;
use tokio_util::sync::CancellationToken;

/// An engine firing `batch_size` claims per transaction.
pub fn engine(batch_size: i64) -> Engine {
    Engine {
        calendars: Arc::new(Calendars::builtin().expect("calendars")),
        settings: TimerSettings {
            reminder_lead_business_days: 0,
            max_first_sight_age: chrono::Duration::days(14),
            never_shorten_communicated: true,
        },
        batch_size,
        template_version: None,
        stop: CancellationToken::new(),
    }
}
