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
//! - [`mail`]: email templates per locale, decline tokens, SMTP and .eml delivery, retry policy.
//! - [`repair`]: operator repairs (hold, release, resync, outbox retry/discard) with their history.
//! - [`demo`]: sample claims for trying the worker out.
//! - [`schedule`]: when `run`'s passes happen: a cron expression read in a time zone (pure).
//! - [`clock`]: the wall clock, read only at the edge and handed down.
//! - [`daemon`]: `run`: passes on the schedule, HTTP endpoints, graceful stop.
//! - [`console`]: the operator console `run` serves: pages (HTML or JSON) and repair endpoints.
//! - [`http`]: `/healthz`, `/readyz`, `/metrics`.
//! - [`telemetry`]: log output and metric names.
//! - [`cli`]: the command line.
//!
//! # One firing, end to end
//! 1. [`daemon::Daemon::one_pass`] reads the [`clock`] once and runs [`worker::Engine::pass`] at that instant.
//! 2. [`worker::Engine::sync`] takes the claims' change records and saves each one's timers ([`timers::evaluate`]) in the store's timer index ([`store::TimerIndex::save_sync`]).
//! 3. [`worker::Engine::fire`] asks [`store::TimerIndex::fire_batch`] for claims with due timers; [`worker::decide`] runs [`timers::plan`] on each, and the batch writes status, history, outbox rows and fired timers in one transaction.
//! 4. [`worker::Mailer::deliver`] takes due outbox rows, renders each [`mail::EmailKind`] with [`mail::Templates`] and sends it through a [`mail::Transport`].
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
pub mod lifecycle;
pub mod mail;
pub mod repair;
pub mod report;
pub mod schedule;
pub mod store;
pub mod telemetry;
pub mod timers;
pub mod worker;
