//! cpor-worker keeps the clock for CPOR customer-association claims: it computes every deadline
//! in business days, acts when one passes, and sends the emails that go with it.
//!
//! # Layout
//! - [`lifecycle`]: statuses, reasons, allowed transitions (pure).
//! - [`claim`]: one claim as the worker reads it, parsed from a database row (pure).
//! - [`calendar`]: holiday calendars as data, business-day arithmetic, time zones (pure).
//! - [`timers`]: which timers a claim has at an instant and what the due ones do (pure).
//! - [`store`]: the database behind one contract split by concern ([`store::Store`],
//!   [`store::TimerIndex`], [`store::Outbox`]), statements written once for PostgreSQL and SQLite.
//! - [`worker`]: one pass — recompute changed claims' timers, fire what is due.
//! - [`report`]: the operator's dry-run report and `explain`, from the same evaluate/plan.
//! - [`config`]: settings from the built-in defaults, a file and the environment, validated.
//! - [`mail`]: the emails: plans, templates per locale, decline tokens, SMTP and .eml transports,
//!   retry policy, and the outbox delivery over a queue the store implements.
//! - [`repair`]: operator repairs (hold, release, resync, outbox retry/discard) with their history.
//! - [`demo`]: sample claims for trying the worker out.
//! - [`json_text`]: history details and email payloads, kept as the JSON text they are stored as.
//! - [`schedule`]: when `run`'s passes happen: a cron expression read in a time zone (pure).
//! - [`clock`]: the wall clock, read only at the edge and handed down.
//! - [`daemon`]: `run`: passes on the schedule, HTTP endpoints, graceful stop.
//! - [`console`]: the operator console `run` serves: pages (HTML or JSON) and repair endpoints.
//! - [`http`]: `/healthz`, `/readyz`, `/metrics`.
//! - [`telemetry`]: log output and metric names.
//! - [`cli`]: the command line.
//!
//! One firing (daemon → pass → store → plan → outbox → mail): [`daemon::Daemon::one_pass`] runs
//! [`worker::Engine::pass`] at one clock reading; [`worker::Engine::fire`] takes claims with due
//! timers from [`store::TimerIndex::fire_batch`], [`worker::decide`] runs [`timers::plan`] on each,
//! and status, history and outbox rows commit together; [`mail::Mailer::deliver`] then takes them
//! from the store's [`mail::Queue`], builds [`mail::EmailPlan::context`], renders and sends it.
#![warn(missing_docs)]

pub mod calendar;
pub mod claim;
pub mod cli;
pub mod clock;
pub mod config;
pub mod console;
pub mod daemon;
pub mod demo;
pub mod http;
pub mod json_text;
pub mod lifecycle;
pub mod mail;
pub mod repair;
pub mod report;
pub mod rfc3339;
pub mod schedule;
pub mod store;
pub mod telemetry;
pub mod timers;
pub mod worker;
