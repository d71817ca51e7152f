//! The one integration-test binary: a module per area.

mod cli_basic;
mod cli_calendar;
mod harness;
mod store_conformance;
