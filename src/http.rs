//! The daemon's HTTP endpoints: `/healthz` (alive), `/readyz` (database reachable and migrations
//! current), `/metrics` (Prometheus). The caller binds the listener and owns shutdown.

use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::get;
use metrics_exporter_prometheus::PrometheusHandle;

use crate::store::{AnyStore, Store};

/// What the handlers need.
#[derive(Clone)]
pub struct AppState {
    /// The database.
    pub store: AnyStore,
    /// Renders the metrics.
    pub metrics: PrometheusHandle,
}

/// The router, testable without a socket.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
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
