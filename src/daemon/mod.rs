//! The daemon behind `run`: passes on a cron schedule (never two at once), outbox delivery, the
//! HTTP endpoints, and a graceful stop that lets the batch in hand finish.

mod ticker;

use std::sync::Arc;
use std::time::Instant;

use metrics_exporter_prometheus::PrometheusHandle;
use tokio::net::TcpListener;

pub use crate::schedule::{Schedule, ScheduleError};
pub use ticker::{Ticker, Trigger};

use crate::clock::SharedClock;
use crate::config::Secret;
use crate::console::{Console, PassLog, PassRecord};
use crate::http::{AppState, router};
use crate::mail::Mailer;
use crate::store::{AnyStore, Outbox, Repairs, TimerIndex};
use crate::telemetry;
use crate::worker::refused;
use crate::worker::{Engine, TickOutcome};

/// Everything `run` needs, handed in by the caller.
pub struct Daemon {
    /// Timer engine (its `stop` token stops the daemon).
    pub engine: Engine,
    /// The database.
    pub store: AnyStore,
    /// Delivery of the outbox (and the console's email previews).
    pub mailer: Arc<Mailer>,
    /// When passes run.
    pub schedule: Schedule,
    /// The metrics the HTTP endpoint renders.
    pub metrics: PrometheusHandle,
    /// The wall clock: each pass reads it once.
    pub clock: SharedClock,
    /// The console's operator token; `None`: repairs are off.
    pub operator_token: Option<Secret<String>>,
    /// The last passes, shown by the console.
    pub passes: PassLog,
}

/// The daemon could not start or stopped on an error.
#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    /// The HTTP server failed.
    #[error("http server: {0}")]
    Http(#[from] std::io::Error),
}

impl Daemon {
    /// Serves HTTP on `listener` and runs passes on the schedule until `engine.stop` is cancelled.
    pub async fn run(self, listener: TcpListener) -> Result<(), DaemonError> {
        let stop = self.engine.stop.clone();
        let app = router(AppState {
            store: self.store.clone(),
            metrics: self.metrics.clone(),
            calendars: self.engine.calendars.clone(),
            settings: self.engine.settings,
            clock: self.clock.clone(),
        })
        .merge(crate::console::router(Arc::new(Console::new(
            self.store.clone(),
            self.engine.clone(),
            Some(self.mailer.clone()),
            self.operator_token.clone(),
            self.passes.clone(),
            Some(self.schedule.clone()),
            self.clock.clone(),
        ))));
        let http_stop = stop.clone();
        let http = tokio::spawn(async move {
            axum::serve(listener, app)
                .with_graceful_shutdown(async move { http_stop.cancelled().await })
                .await
        });

        // Passes run one after another in this loop, so two never overlap; an instant that
        // passes while a pass runs is skipped (and said), not run late.
        let mut ticker = Ticker::new(self.schedule.clone());
        let clock = self.clock.clone();
        let wall = move || clock.now();
        loop {
            tokio::select! {
                _ = stop.cancelled() => break,
                trigger = ticker.tick(&wall) => match trigger {
                    Some(t) => {
                        if t.missed > 0 {
                            tracing::warn!(
                                missed = t.missed,
                                "the previous pass ran past {} scheduled instant(s): they were skipped",
                                t.missed
                            );
                        }
                        tracing::debug!(trigger = %t.at.to_rfc3339(), "scheduled pass");
                        self.one_pass().await;
                    }
                    None => {
                        tracing::warn!("the cron schedule never fires again: no more passes");
                        stop.cancelled().await;
                        break;
                    }
                },
            }
        }
        match http.await {
            Ok(r) => r?,
            Err(e) => tracing::error!(error = %e, "http server task failed"),
        }
        tracing::info!("stopped");
        Ok(())
    }

    /// Runs one pass at the current time and records its metrics; errors are logged, not fatal.
    /// The clock is read once: the pass and the overdue gauge after it use the same instant.
    pub async fn one_pass(&self) {
        let started = Instant::now();
        let now = self.clock.now();
        let result = self.engine.pass(&self.store, Some(&self.mailer), now).await;
        let seconds = started.elapsed().as_secs_f64();
        metrics::histogram!(telemetry::PASS_SECONDS).record(seconds);
        self.passes.push(match &result {
            Ok(o) => PassRecord {
                at: now,
                seconds,
                fired: o.fired.iter().map(|(k, n)| (k.to_string(), *n)).collect(),
                sent: o.delivery.sent,
                problems: o.problems.len(),
                error: None,
            },
            Err(e) => PassRecord {
                at: now,
                seconds,
                fired: Default::default(),
                sent: 0,
                problems: 0,
                error: Some(e.to_string()),
            },
        });
        match result {
            Ok(outcome) => {
                record(&outcome);
                metrics::counter!(telemetry::PASSES, "result" => "ok").increment(1);
                metrics::gauge!(telemetry::LAST_SUCCESS).set(now.timestamp() as f64);
                let consent = outcome.delivery.consent_sent;
                tracing::info!(
                    at = %now.to_rfc3339(),
                    recomputed = outcome.synced,
                    acted = outcome.fired.values().sum::<usize>(),
                    sent = outcome.delivery.sent,
                    skipped_claims = outcome.problems.len(),
                    "pass done{}",
                    if consent > 0 {
                        format!(
                            " (recomputed counts timer computations: the {consent} claim(s) whose \
                             consent email went out were computed again, as their consent window \
                             starts at delivery)"
                        )
                    } else {
                        String::new()
                    }
                );
            }
            Err(e) => {
                metrics::counter!(telemetry::PASSES, "result" => "error").increment(1);
                tracing::error!(error = %e, "pass failed; the next one retries");
            }
        }
        match self.store.count_due(now).await {
            Ok(due) => metrics::gauge!(telemetry::OVERDUE_TIMERS).set(due as f64),
            Err(e) => tracing::warn!(error = %e, "cannot count overdue timers"),
        }
        // The outbox gauge the dead-letter alert reads (deploy/prometheus/alerts.yml).
        match self.store.outbox_counts().await {
            Ok(c) => {
                metrics::gauge!(telemetry::OUTBOX, "state" => "pending").set(c.pending as f64);
                metrics::gauge!(telemetry::OUTBOX, "state" => "dead").set(c.dead as f64);
            }
            Err(e) => tracing::warn!(error = %e, "cannot count outbox emails"),
        }
        // A claim the worker held because the database refused its writes fires no more
        // until an operator releases it, and is not overdue: the alert reads this.
        match self.store.holds(None).await {
            Ok(holds) => {
                let by_worker = refused::by_worker(&holds);
                let gauge = |by: &'static str, n: usize| {
                    metrics::gauge!(telemetry::CLAIMS_HELD, "by" => by).set(n as f64);
                };
                gauge("worker", by_worker);
                gauge("operator", holds.len() - by_worker);
            }
            Err(e) => tracing::warn!(error = %e, "cannot count held claims"),
        }
    }
}

/// Adds a pass's outcome to the metrics.
fn record(outcome: &TickOutcome) {
    for (acted, n) in &outcome.fired {
        let timer = acted.timer.as_str();
        let result = acted.result();
        metrics::counter!(telemetry::TIMERS_FIRED, "timer" => timer, "outcome" => result)
            .increment(*n as u64);
        if acted.timer.is_sla() && acted.skipped.is_none() {
            metrics::counter!(telemetry::SLA_BREACHES, "timer" => timer).increment(*n as u64);
        }
    }
    metrics::counter!(telemetry::CLAIMS_SKIPPED).increment(outcome.problems.len() as u64);
    metrics::counter!(telemetry::CLAIMS_CHANGED_MEANWHILE)
        .increment(outcome.changed_meanwhile as u64);
}

/// Resolves when the process gets SIGTERM or Ctrl-C.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
}
