//! The console's list pages: problems, outbox by state, open SLA breaches, held claims.

use std::sync::Arc;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde::Serialize;

use super::pages::{Params, db_error, fmt};
use super::{Console, Page};
use crate::store::{ConsoleReads, Repairs, SlaAlert, TimerIndex};

/// A list page: what it lists, its rows, and which columns to show.
#[derive(Serialize)]
struct List<T: Serialize> {
    kind: &'static str,
    state: Option<String>,
    total: usize,
    rows: Vec<T>,
}

fn list<T: Serialize>(c: &Console, h: &HeaderMap, p: &Params, title: &str, l: List<T>) -> Response {
    let page = Page {
        template: "list.html",
        title: title.to_owned(),
        data: l,
        status: StatusCode::OK,
    };
    c.answer(h, fmt(p), p.get("notice").map(String::as_str), page)
}

#[derive(Serialize)]
struct ProblemRow {
    claim_id: String,
    problem: String,
}

/// `GET /problems`: claims the worker cannot process, and why.
pub async fn problems(State(c): State<Arc<Console>>, h: HeaderMap, p: Params) -> Response {
    let rows = match c.store.claim_problems().await {
        Ok(v) => v,
        Err(e) => return db_error(&c, &h, &p, e),
    };
    let total = rows.len();
    let rows = rows
        .into_iter()
        .take(1000)
        .map(|(claim_id, problem)| ProblemRow { claim_id, problem })
        .collect();
    list(
        &c,
        &h,
        &p,
        "Claims with problems",
        List {
            kind: "problems",
            state: None,
            total,
            rows,
        },
    )
}

/// `GET /outbox?state=`: outbox emails, newest first.
pub async fn outbox(State(c): State<Arc<Console>>, h: HeaderMap, p: Params) -> Response {
    let state = p.get("state").filter(|s| !s.is_empty()).cloned();
    let rows = match c.store.outbox_list(state.as_deref(), None, 500).await {
        Ok(v) => v,
        Err(e) => return db_error(&c, &h, &p, e),
    };
    let title = match &state {
        Some(s) => format!("Outbox: {s}"),
        None => "Outbox".to_owned(),
    };
    list(
        &c,
        &h,
        &p,
        &title,
        List {
            kind: "outbox",
            state,
            total: rows.len(),
            rows,
        },
    )
}

#[derive(Serialize)]
struct BreachRow {
    #[serde(flatten)]
    alert: SlaAlert,
    overdue_hours: i64,
}

/// `GET /sla`: open SLA breaches, oldest first.
pub async fn sla(State(c): State<Arc<Console>>, h: HeaderMap, p: Params) -> Response {
    let now = c.clock.now();
    let (rows, total) = match c.store.open_breaches(1000).await {
        Ok(v) => v,
        Err(e) => return db_error(&c, &h, &p, e),
    };
    let rows = rows
        .into_iter()
        .map(|a| BreachRow {
            overdue_hours: (now - a.due).num_hours(),
            alert: a,
        })
        .collect();
    list(
        &c,
        &h,
        &p,
        "Open SLA breaches",
        List {
            kind: "sla",
            state: None,
            total: total as usize,
            rows,
        },
    )
}

/// `GET /held`: claims an operator holds.
pub async fn held(State(c): State<Arc<Console>>, h: HeaderMap, p: Params) -> Response {
    let rows = match c.store.holds(None).await {
        Ok(v) => v,
        Err(e) => return db_error(&c, &h, &p, e),
    };
    list(
        &c,
        &h,
        &p,
        "Held claims",
        List {
            kind: "held",
            state: None,
            total: rows.len(),
            rows,
        },
    )
}
