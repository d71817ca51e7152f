//! The repair endpoints: `POST /outbox/{id}/retry|discard`, `POST /claims/{id}/hold|release|resync`.
//! Each needs the operator token (bearer, or the form's field with the session's CSRF token);
//! without a configured token every repair is refused and the answer says how to enable them.

use std::collections::HashMap;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};

use super::Console;
use super::auth::{bearer, token_ok};
use crate::repair::{self, Done, Operator, RepairError};
use crate::store::StoreError;

/// What the page says when repairs are off.
pub const REPAIRS_OFF: &str = "repairs are off: set http.operator_token_file (or CPOR_OPERATOR_TOKEN) \
     to a token of at least 16 bytes and restart `cpor-worker run`";

/// The fields a repair takes, from a form or a JSON body.
struct Fields(HashMap<String, String>);

impl Fields {
    fn parse(headers: &HeaderMap, body: &Bytes) -> Fields {
        let json = headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|c| c.starts_with("application/json"));
        let map = if json {
            serde_json::from_slice::<HashMap<String, serde_json::Value>>(body)
                .unwrap_or_default()
                .into_iter()
                .filter_map(|(k, v)| match v {
                    serde_json::Value::String(s) => Some((k, s)),
                    _ => None,
                })
                .collect()
        } else {
            url::form_urlencoded::parse(body).into_owned().collect()
        };
        Fields(map)
    }

    fn get(&self, k: &str) -> Option<&str> {
        self.0
            .get(k)
            .map(String::as_str)
            .filter(|s| !s.trim().is_empty())
    }
}

/// Checks who asks; `Err` is the refusal to send.
fn authorize(c: &Console, headers: &HeaderMap, f: &Fields) -> Result<bool, (StatusCode, String)> {
    let Some(token) = &c.token else {
        return Err((StatusCode::FORBIDDEN, REPAIRS_OFF.to_owned()));
    };
    if let Some(given) = bearer(headers) {
        return if token_ok(token, given) {
            Ok(true)
        } else {
            Err((StatusCode::FORBIDDEN, "wrong operator token".to_owned()))
        };
    }
    if !c.csrf.verify(headers, f.get("csrf").unwrap_or_default()) {
        return Err((
            StatusCode::FORBIDDEN,
            "the form's CSRF token is missing or stale: reload the page and try again".to_owned(),
        ));
    }
    match f.get("token") {
        Some(given) if token_ok(token, given) => Ok(false),
        Some(_) => Err((StatusCode::FORBIDDEN, "wrong operator token".to_owned())),
        None => Err((
            StatusCode::FORBIDDEN,
            "a repair needs the operator token (Authorization: Bearer, or the form's token field)"
                .to_owned(),
        )),
    }
}

fn status_of(e: &RepairError) -> StatusCode {
    match e {
        RepairError::Store(StoreError::NotFound(_)) | RepairError::NoEmail(_) => {
            StatusCode::NOT_FOUND
        }
        RepairError::Store(_) => StatusCode::INTERNAL_SERVER_ERROR,
        RepairError::NoReason => StatusCode::BAD_REQUEST,
        RepairError::WrongState { .. } | RepairError::AlreadyHeld(_) | RepairError::NotHeld(_) => {
            StatusCode::CONFLICT
        }
    }
}

/// Runs one repair after the checks and answers: JSON for scripts, a redirect to the claim's
/// page (with the outcome as a notice) for browsers.
async fn respond<F, Fut>(c: Arc<Console>, headers: HeaderMap, body: Bytes, run: F) -> Response
where
    F: FnOnce(Arc<Console>, Operator) -> Fut,
    Fut: std::future::Future<Output = Result<Done, RepairError>> + Send + 'static,
{
    let f = Fields::parse(&headers, &body);
    let script = match authorize(&c, &headers, &f) {
        Ok(script) => script,
        Err((status, text)) => {
            tracing::warn!(status = %status, "console repair refused: {text}");
            return c.message(&headers, json_format(&headers), status, &text);
        }
    };
    let op = Operator {
        who: f
            .get("by")
            .map(|s| s.chars().take(100).collect())
            .unwrap_or_else(|| "console".to_owned()),
        reason: f.get("reason").map(|s| s.chars().take(2000).collect()),
        at: c.clock.now(),
    };
    // In a task of its own, so that it runs to its end if the client goes away: a write
    // dropped halfway through a `COPY` would leave its connection out of step with the server.
    let outcome = match tokio::spawn(run(c.clone(), op)).await {
        Ok(outcome) => outcome,
        Err(e) => {
            let text = format!("the repair stopped before it ended: {e}");
            tracing::error!("console repair: {text}");
            return c.message(
                &headers,
                json_format(&headers),
                StatusCode::INTERNAL_SERVER_ERROR,
                &text,
            );
        }
    };
    match outcome {
        Ok(done) => {
            tracing::info!(claim_id = %done.claim_id, action = done.action, "console repair: {}", done.message);
            if script || super::wants_json(&headers, None) {
                (StatusCode::OK, axum::Json(done)).into_response()
            } else {
                let notice: String =
                    url::form_urlencoded::byte_serialize(done.message.as_bytes()).collect();
                let id = super::path_segment(&done.claim_id);
                Redirect::to(&format!("/claims/{id}?notice={notice}")).into_response()
            }
        }
        Err(e) => {
            let status = status_of(&e);
            c.message(&headers, json_format(&headers), status, &e.to_string())
        }
    }
}

/// Scripts sending a bearer token get JSON errors.
fn json_format(headers: &HeaderMap) -> Option<&'static str> {
    bearer(headers).map(|_| "json")
}

/// `POST /outbox/{id}/retry`.
pub async fn outbox_retry(
    State(c): State<Arc<Console>>,
    Path(id): Path<i64>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    respond(c, headers, body, move |c, op| async move {
        repair::retry(&c.store, id, &op).await
    })
    .await
}

/// `POST /outbox/{id}/discard`.
pub async fn outbox_discard(
    State(c): State<Arc<Console>>,
    Path(id): Path<i64>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    respond(c, headers, body, move |c, op| async move {
        repair::discard(&c.store, id, &op).await
    })
    .await
}

/// `POST /claims/{id}/hold`.
pub async fn claim_hold(
    State(c): State<Arc<Console>>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    respond(c, headers, body, move |c, op| async move {
        repair::hold(&c.store, &id, &op).await
    })
    .await
}

/// `POST /claims/{id}/release`.
pub async fn claim_release(
    State(c): State<Arc<Console>>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    respond(c, headers, body, move |c, op| async move {
        repair::release(&c.store, &id, &op).await
    })
    .await
}

/// `POST /claims/{id}/resync`.
pub async fn claim_resync(
    State(c): State<Arc<Console>>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    respond(c, headers, body, move |c, op| async move {
        repair::resync(&c.store, &c.engine, &id, &op).await
    })
    .await
}
