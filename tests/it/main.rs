//! The one integration-test binary: a module per area.

#[macro_use]
mod harness;

mod bad_data;
mod calendar_diff;
mod cli_basic;
mod cli_calendar;
mod cli_calendar_edges;
mod cli_report;
mod cli_run;
mod cli_tick;
mod console_browser;
mod console_http;
mod crash;
mod customer_locale;
mod decision_sla;
mod edges_cli;
mod edges_db;
mod edges_fresh;
mod edges_run;
mod hostile;
mod mail_cli;
mod mail_smtp;
mod mail_templates;
mod mail_tls;
mod mail_token;
mod model;
mod never_miss;
mod never_miss_bad_rows;
mod never_miss_mail;
mod older_calendars;
mod outages;
mod provenance;
mod refused;
mod repair_cli;
mod repair_store;
mod replicas;
mod report_browser;
mod store_conformance;
mod store_contract;
mod store_first_sight;
mod store_idle_probe;
mod store_outbox;
mod store_sync_range;
mod timers_lifecycle;
