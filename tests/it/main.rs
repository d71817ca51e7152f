//! The one integration-test binary: a module per area.

#[macro_use]
mod harness;

mod cli_basic;
mod cli_calendar;
mod cli_report;
mod store_conformance;
mod timers_lifecycle;
