//! Log output through tracing (text on a terminal, JSON lines when asked) and the metrics the
//! daemon exports in Prometheus format; every metric name lives here.

use std::io::{IsTerminal, Write};

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use tracing_subscriber::EnvFilter;

use crate::config::LogFormat;

/// Passes run, by result (`ok` / `error`).
pub const PASSES: &str = "cpor_passes_total";
/// Timer runs acted on, by `timer` and `outcome` (`fired` / `skipped`).
pub const TIMERS_FIRED: &str = "cpor_timers_fired_total";
/// Emails delivered.
pub const EMAILS_SENT: &str = "cpor_emails_sent_total";
/// Delivery attempts that failed temporarily and will be retried.
pub const EMAILS_RETRIED: &str = "cpor_emails_retried_total";
/// Emails dead-lettered.
pub const EMAILS_DEAD: &str = "cpor_emails_dead_lettered_total";
/// Seconds a pass took.
pub const PASS_SECONDS: &str = "cpor_pass_duration_seconds";
/// Timers due but not yet fired at the end of the last pass.
pub const OVERDUE_TIMERS: &str = "cpor_overdue_timers";
/// Unix time of the last pass that completed without error.
pub const LAST_SUCCESS: &str = "cpor_last_successful_pass_timestamp_seconds";
/// SLA breaches raised, by `timer`.
pub const SLA_BREACHES: &str = "cpor_sla_breaches_total";
/// Claims skipped because their row or timers are unusable, per pass.
pub const CLAIMS_SKIPPED: &str = "cpor_claims_skipped_total";
/// Emails not sent because the deadline they name passed first.
pub const EMAILS_EXPIRED: &str = "cpor_emails_expired_total";
/// Emails withdrawn unsent because their claim moved on while they waited.
pub const EMAILS_WITHDRAWN: &str = "cpor_emails_withdrawn_total";
/// Claims left alone because the main system changed them meanwhile.
pub const CLAIMS_CHANGED_MEANWHILE: &str = "cpor_claims_changed_meanwhile_total";
/// Emails written in a fallback language because the claim's locale has no templates.
pub const LOCALE_FALLBACKS: &str = "cpor_email_locale_fallbacks_total";
/// Emails waiting in the outbox / dead-lettered, by `state`.
pub const OUTBOX: &str = "cpor_outbox_emails";
/// Claims held, by `by`: `worker` (the database refused the worker's writes for them) or
/// `operator`.
pub const CLAIMS_HELD: &str = "cpor_claims_held";

/// Installs the global subscriber writing to stderr; a second call does nothing. Colours only
/// when stderr is a terminal; in text lines, line breaks and other control characters inside
/// values are escaped so one event stays one line.
pub fn init(format: LogFormat, filter: &str) {
    let filter = EnvFilter::try_new(filter).unwrap_or_else(|_| EnvFilter::new("info"));
    let ansi = std::io::stderr().is_terminal();
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(ansi);
    let _ = match format {
        LogFormat::Text => builder.with_writer(move || OneLine::new(ansi)).try_init(),
        LogFormat::Json => builder
            .with_writer(std::io::stderr)
            .json()
            .flatten_event(true)
            .try_init(),
    };
}

/// A writer for one text log event: collects it, then writes it to stderr as one line.
pub struct OneLine {
    buf: Vec<u8>,
    keep_escape: bool,
}

impl OneLine {
    /// A writer for one event; `keep_escape` keeps ESC bytes (the subscriber's own colours).
    pub fn new(keep_escape: bool) -> Self {
        Self {
            buf: Vec::with_capacity(256),
            keep_escape,
        }
    }
}

impl std::io::Write for OneLine {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        self.buf.extend_from_slice(data);
        Ok(data.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Drop for OneLine {
    fn drop(&mut self) {
        let line = escape_line(&self.buf, self.keep_escape);
        let _ = std::io::stderr().lock().write_all(&line);
    }
}

/// Escapes CR, LF (but a final one) and other control characters except tab as `\r`, `\n`,
/// `\xNN`; ESC is kept only when `keep_escape`.
pub fn escape_line(bytes: &[u8], keep_escape: bool) -> Vec<u8> {
    let (body, end) = match bytes.split_last() {
        Some((b'\n', body)) => (body, &b"\n"[..]),
        _ => (bytes, &b""[..]),
    };
    let mut out = Vec::with_capacity(bytes.len() + 8);
    for &b in body {
        match b {
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            b'\t' => out.push(b),
            0x1b if keep_escape => out.push(b),
            b if b < 0x20 || b == 0x7f => out.extend_from_slice(format!("\\x{b:02x}").as_bytes()),
            b => out.push(b),
        }
    }
    out.extend_from_slice(end);
    out
}

/// The metrics exporter could not be installed.
#[derive(Debug, thiserror::Error)]
#[error("metrics: {0}")]
pub struct MetricsError(String);

/// Installs the Prometheus recorder (once per process) and returns the handle that renders it.
pub fn install_metrics() -> Result<PrometheusHandle, MetricsError> {
    static HANDLE: std::sync::OnceLock<PrometheusHandle> = std::sync::OnceLock::new();
    if let Some(h) = HANDLE.get() {
        return Ok(h.clone());
    }
    let handle = PrometheusBuilder::new()
        .set_buckets_for_metric(
            Matcher::Full(PASS_SECONDS.to_owned()),
            &[0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0],
        )
        .map_err(|e| MetricsError(e.to_string()))?
        .install_recorder()
        .map_err(|e| MetricsError(e.to_string()))?;
    Ok(HANDLE.get_or_init(|| handle).clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_event_stays_one_line() {
        let out = escape_line(b"claim_id=A\r\nB \x1b[31m x\n", false);
        assert_eq!(out, b"claim_id=A\\r\\nB \\x1b[31m x\n");
        assert_eq!(escape_line(b"\x1b[2mok\n", true), b"\x1b[2mok\n");
    }
}
