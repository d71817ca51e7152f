//! The daemon's HTTP endpoints: `/healthz` (alive), `/readyz` (database reachable and migrations
//! current), `/metrics` (Prometheus), `/report` (the dry-run JSON at now). The caller binds the
//! listener and owns shutdown.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::get;
use metrics_exporter_prometheus::PrometheusHandle;

use crate::calendar::Calendars;
use crate::clock::SharedClock;
use crate::report::scan::ScanInput;
use crate::report::{Filter, Format, Window, parse_horizon, scan};
use crate::store::{AnyStore, Store};
use crate::timers::TimerSettings;

/// What the handlers need.
#[derive(Clone)]
pub struct AppState {
    /// The database.
    pub store: AnyStore,
    /// Renders the metrics.
    pub metrics: PrometheusHandle,
    /// Calendars in force (for `/report`).
    pub calendars: Arc<Calendars>,
    /// Timer settings in force (for `/report`).
    pub settings: TimerSettings,
    /// The wall clock (`/report` is at its now).
    pub clock: SharedClock,
}

/// The router, testable without a socket.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .route("/report", get(report))
        .with_state(state)
}

async fn readyz(State(state): State<AppState>) -> impl IntoResponse {
    let check =
        tokio::time::timeout(Duration::from_secs(2), state.store.migrations_current()).await;
    match check {
        Ok(Ok(true)) => (StatusCode::OK, "ready\n".to_owned()),
        Ok(Ok(false)) => (
            StatusCode::SERVICE_UNAVAILABLE,
            "migrations not current\n".to_owned(),
        ),
        Ok(Err(e)) => (StatusCode::SERVICE_UNAVAILABLE, format!("database: {e}\n")),
        Err(_) => (
            StatusCode::SERVICE_UNAVAILABLE,
            "database: no answer within 2 s\n".to_owned(),
        ),
    }
}

async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    state.metrics.run_upkeep();
    (
        [("content-type", "text/plain; version=0.0.4")],
        state.metrics.render(),
    )
}

/// The dry-run report at the current instant as JSON; `?horizon=36h` (default `7d`).
async fn report(
    State(state): State<AppState>,
    Query(params): Query<HashMap<String, String>>,
) -> impl IntoResponse {
    let horizon_text = params
        .get("horizon")
        .cloned()
        .unwrap_or_else(|| "7d".to_owned());
    let horizon = match parse_horizon(&horizon_text) {
        Ok(h) => h,
        Err(e) => {
            return (
                StatusCode::BAD_REQUEST,
                [("content-type", "text/plain")],
                format!("horizon: {e}\n"),
            );
        }
    };
    // The report's sinks are not Send: run it on a blocking thread with its own executor.
    let runtime = tokio::runtime::Handle::current();
    let result = tokio::task::spawn_blocking(move || {
        runtime.block_on(async move {
            let at = state.clock.now();
            let filter = Filter::default();
            let input = ScanInput {
                calendars: &state.calendars,
                settings: state.settings,
                window: Window {
                    at,
                    until: at + horizon,
                },
                horizon: &horizon_text,
                filter: &filter,
            };
            let mut buf = Vec::new();
            {
                let mut sink = Format::Json.sink(&mut buf).map_err(|e| e.to_string())?;
                scan(&state.store, &input, sink.as_mut(), &|_| {})
                    .await
                    .map_err(|e| e.to_string())?;
            }
            Ok::<_, String>(buf)
        })
    })
    .await;
    match result {
        Ok(Ok(body)) => (
            StatusCode::OK,
            [("content-type", "application/json")],
            String::from_utf8_lossy(&body).into_owned(),
        ),
        Ok(Err(e)) => (
            StatusCode::SERVICE_UNAVAILABLE,
            [("content-type", "text/plain")],
            format!("report: {e}\n"),
        ),
        Err(e) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            [("content-type", "text/plain")],
            format!("report: {e}\n"),
        ),
    }
}
