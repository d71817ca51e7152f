//! The operator console that `run` serves on `http.listen`: server-rendered pages (minijinja,
//! templates compiled in, no external assets, no JavaScript needed: one inline script only sorts
//! tables) that are also JSON with `Accept: application/json` or `?format=json`, and the repair
//! endpoints behind the operator token. Pages only read; repairs go through [`crate::repair`].

mod actions;
mod auth;
mod lists;
mod pages;
mod passes;

use crate::report::SORT_JS;
use std::sync::{Arc, LazyLock};

use axum::Router;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use minijinja::Environment;
use serde::Serialize;

use crate::config::Secret;
use crate::mail::Mailer;
use crate::schedule::Schedule;
use crate::store::AnyStore;
use crate::worker::Engine;

pub use auth::CsrfKey;
pub use passes::{PassLog, PassRecord};

/// What the console's handlers share.
pub struct Console {
    /// The database.
    pub store: AnyStore,
    /// Calendars and settings (explain, resync).
    pub engine: Engine,
    /// Renders email previews; `None` shows no preview.
    pub mailer: Option<Arc<Mailer>>,
    /// The operator token; `None`: repairs are off.
    pub token: Option<Secret<String>>,
    /// The last passes of this process.
    pub passes: PassLog,
    /// When passes run (the next one is shown).
    pub schedule: Option<Schedule>,
    /// Signs the per-session CSRF tokens.
    pub csrf: CsrfKey,
    /// The wall clock (what is due now, when a repair happened).
    pub clock: crate::clock::SharedClock,
    env: Environment<'static>,
}

impl Console {
    /// A console over `store`; `token` enables repairs.
    pub fn new(
        store: AnyStore,
        engine: Engine,
        mailer: Option<Arc<Mailer>>,
        token: Option<Secret<String>>,
        passes: PassLog,
        schedule: Option<Schedule>,
        clock: crate::clock::SharedClock,
    ) -> Console {
        Console {
            store,
            engine,
            mailer,
            token,
            passes,
            schedule,
            clock,
            csrf: CsrfKey::random(),
            env: templates(),
        }
    }
}

/// The console's `Content-Security-Policy`: nothing from elsewhere, inline styles, and only the
/// one inline script whose hash it names.
static CSP: LazyLock<String> = LazyLock::new(|| {
    use base64::Engine as _;
    use sha2::Digest as _;
    let hash = base64::engine::general_purpose::STANDARD.encode(sha2::Sha256::digest(SORT_JS));
    format!(
        "default-src 'none'; style-src 'unsafe-inline'; script-src 'sha256-{hash}'; img-src data:; form-action 'self'"
    )
});

/// The console's routes, to merge into the daemon's router.
pub fn router(console: Arc<Console>) -> Router {
    Router::new()
        .route("/", get(pages::overview))
        .route("/claims", get(pages::claims))
        .route("/claims/{id}", get(pages::claim))
        .route("/problems", get(lists::problems))
        .route("/outbox", get(lists::outbox))
        .route("/sla", get(lists::sla))
        .route("/held", get(lists::held))
        .route("/outbox/{id}/retry", post(actions::outbox_retry))
        .route("/outbox/{id}/discard", post(actions::outbox_discard))
        .route("/claims/{id}/hold", post(actions::claim_hold))
        .route("/claims/{id}/release", post(actions::claim_release))
        .route("/claims/{id}/resync", post(actions::claim_resync))
        .with_state(console)
}

fn templates() -> Environment<'static> {
    let mut env = Environment::new();
    env.set_undefined_behavior(minijinja::UndefinedBehavior::Chainable);
    env.add_filter("urlencode", |s: String| path_segment(&s));
    env.add_filter("tojson", |v: minijinja::Value| {
        serde_json::to_string(&v).unwrap_or_default()
    });
    for (name, src) in [
        ("base.html", include_str!("templates/base.html")),
        ("overview.html", include_str!("templates/overview.html")),
        ("claim.html", include_str!("templates/claim.html")),
        ("claims.html", include_str!("templates/claims.html")),
        ("list.html", include_str!("templates/list.html")),
        ("message.html", include_str!("templates/message.html")),
    ] {
        // The templates are compiled in and tested: a syntax error is a build bug.
        if let Err(e) = env.add_template(name, src) {
            tracing::error!(template = name, error = %e, "console template does not parse");
        }
    }
    env
}

/// `s` percent-encoded for one URL path segment or query value (unreserved bytes kept).
pub(crate) fn path_segment(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// True when the request asks for JSON (`?format=json` or an `Accept` naming JSON first).
pub(crate) fn wants_json(headers: &HeaderMap, format: Option<&str>) -> bool {
    if let Some(f) = format {
        return f.eq_ignore_ascii_case("json");
    }
    headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|a| {
            let json = a.find("application/json");
            let html = a.find("text/html");
            matches!((json, html), (Some(j), Some(h)) if j < h)
                || (json.is_some() && html.is_none())
        })
}

/// A page's answer: its data as JSON, or rendered by `template` with the common fields.
pub(crate) struct Page<T: Serialize> {
    pub template: &'static str,
    pub title: String,
    pub data: T,
    pub status: StatusCode,
}

impl Console {
    /// Renders `page` as JSON or HTML, with the session cookie and CSRF token for forms.
    pub(crate) fn answer<T: Serialize>(
        &self,
        headers: &HeaderMap,
        format: Option<&str>,
        notice: Option<&str>,
        page: Page<T>,
    ) -> Response {
        if wants_json(headers, format) {
            return (page.status, axum::Json(page.data)).into_response();
        }
        let (session, cookie) = self.csrf.session(headers);
        let ctx = minijinja::context! {
            title => page.title,
            page => minijinja::value::Serde(&page.data),
            csrf => self.csrf.token(&session),
            sort_js => minijinja::Value::from_safe_string(SORT_JS.to_owned()),
            repairs => self.token.is_some(),
            notice => notice,
            now => self.clock.now().format("%Y-%m-%d %H:%M UTC").to_string(),
        };
        let body = self
            .env
            .get_template(page.template)
            .and_then(|t| t.render(ctx));
        let mut resp = match body {
            Ok(html) => (
                page.status,
                [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
                html,
            )
                .into_response(),
            Err(e) => (
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("console template {}: {e}\n", page.template),
            )
                .into_response(),
        };
        if let Some(Ok(v)) = cookie.map(|c| c.parse()) {
            resp.headers_mut().insert(header::SET_COOKIE, v);
        }
        if let Ok(v) = axum::http::HeaderValue::from_str(&CSP) {
            resp.headers_mut()
                .insert(header::CONTENT_SECURITY_POLICY, v);
        }
        resp
    }

    /// An error or notice page (JSON `{"error": …}` when asked).
    pub(crate) fn message(
        &self,
        headers: &HeaderMap,
        format: Option<&str>,
        status: StatusCode,
        text: &str,
    ) -> Response {
        #[derive(Serialize)]
        struct Msg<'a> {
            error: &'a str,
        }
        self.answer(
            headers,
            format,
            None,
            Page {
                template: "message.html",
                title: status.canonical_reason().unwrap_or("Error").to_owned(),
                data: Msg { error: text },
                status,
            },
        )
    }
}
