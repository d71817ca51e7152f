//! The one integration-test binary: a module per area.

mod cli_basic;
mod harness;
mod mail_cli;
mod mail_smtp;
mod mail_templates;
mod mail_token;
mod store_conformance;
