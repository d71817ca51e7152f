//! The console's read-only pages; each builds its data once, shown as HTML or JSON.

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use chrono::{DateTime, Duration, Utc};
use serde::Serialize;

use super::passes::PassRecord;
use super::{Console, Page};
use crate::mail::{EmailContext, Letter};
use crate::report::explain::explain;
use crate::store::{
    ClaimHit, ConsoleReads, HistoryEntry, Hold, OutboxCounts, OutboxRow, Repairs, Store,
    StoreError, TimerRecord,
};

pub(super) type Params = Query<HashMap<String, String>>;

pub(super) fn fmt(p: &Params) -> Option<&str> {
    p.get("format").map(String::as_str)
}

pub(super) fn db_error(c: &Console, h: &HeaderMap, p: &Params, e: StoreError) -> Response {
    c.message(
        h,
        fmt(p),
        StatusCode::SERVICE_UNAVAILABLE,
        &format!("database: {e}"),
    )
}

/// Counts on the overview stop at this many ("10000+"): the page then costs the same on a
/// database of any size (docs/operations.md, "Console and repairs").
pub(crate) const OVERVIEW_CAP: i64 = 10_000;

/// Open SLA breaches are counted up to this many ("1000+"): each is checked against its claim.
pub(crate) const BREACH_CAP: i64 = 1_000;

/// One day's bar of the due chart.
#[derive(Serialize)]
struct DayBar {
    date: String,
    due: i64,
    /// More than `due` (the overview's cap) are due that day.
    over_cap: bool,
    /// Bar height, percent of the tallest.
    pct: i64,
}

/// The overview's counts, each with the list it links to.
#[derive(Serialize)]
struct Counts {
    due_now: i64,
    due_next_7_days: i64,
    open_sla_breaches: i64,
    problems: i64,
    held: i64,
    outbox: OutboxCounts,
    /// Where counting stopped: a count equal to it with its name in `over_cap` means "more".
    cap: i64,
    /// Where counting open SLA breaches stopped.
    breach_cap: i64,
    /// The counts that went past their cap (shown as the cap and "+").
    over_cap: Vec<&'static str>,
    /// Claims whose pending timers were computed with calendars other than those in force.
    computed_with_older_calendars: i64,
}

#[derive(Serialize)]
struct Overview {
    passes: Vec<PassRecord>,
    next_pass: Option<DateTime<Utc>>,
    counts: Counts,
    due_per_day: Vec<DayBar>,
    chart_max: i64,
}

/// `GET /`: the last passes, the next one, the counts, the week's due chart.
pub async fn overview(State(c): State<Arc<Console>>, h: HeaderMap, p: Params) -> Response {
    let now = c.clock.now();
    let today = now.date_naive();
    let start = today.and_time(chrono::NaiveTime::MIN).and_utc();
    let day_starts: Vec<DateTime<Utc>> = (0..=7).map(|i| start + Duration::days(i)).collect();
    let s = &c.store;
    let fingerprint = c.engine.fingerprint();
    let got = tokio::try_join!(
        s.overview_counts(now, &day_starts, OVERVIEW_CAP, BREACH_CAP),
        async { Ok(s.holds(None).await?.len() as i64) },
        s.count_older_calendar_claims(&fingerprint, OVERVIEW_CAP),
    );
    let (n, held, older) = match got {
        Ok(v) => v,
        Err(e) => return db_error(&c, &h, &p, e),
    };
    let mut over_cap = Vec::new();
    let mut clamp_to = |cap: i64, name: &'static str, v: i64| {
        if v > cap {
            over_cap.push(name);
        }
        v.min(cap)
    };
    let open_sla_breaches = clamp_to(BREACH_CAP, "open_sla_breaches", n.open_sla_breaches);
    let mut clamp = |name: &'static str, v: i64| clamp_to(OVERVIEW_CAP, name, v);
    let due_now = clamp("due_now", n.due_now);
    let computed_with_older_calendars = clamp("computed_with_older_calendars", older);
    let problems = clamp("problems", n.problems);
    let outbox = OutboxCounts {
        pending: clamp("outbox.pending", n.pending_emails),
        sent: clamp("outbox.sent", n.sent_emails),
        dead: clamp("outbox.dead", n.dead_emails),
    };
    let mut bars: Vec<DayBar> = n
        .due_per_day
        .iter()
        .enumerate()
        .map(|(i, &due)| DayBar {
            date: day_starts[i].format("%Y-%m-%d").to_string(),
            due: due.min(OVERVIEW_CAP),
            over_cap: due > OVERVIEW_CAP,
            pct: 0,
        })
        .collect();
    if bars.iter().any(|b| b.over_cap) {
        over_cap.push("due_next_7_days");
    }
    let max = bars.iter().map(|b| b.due).max().unwrap_or(0);
    for b in &mut bars {
        b.pct = if max > 0 { b.due * 100 / max } else { 0 };
    }
    let data = Overview {
        passes: c.passes.recent(),
        next_pass: c.schedule.as_ref().and_then(|s| s.next_after(now)),
        counts: Counts {
            due_now,
            due_next_7_days: bars.iter().map(|b| b.due).sum(),
            open_sla_breaches,
            problems,
            held,
            outbox,
            cap: OVERVIEW_CAP,
            breach_cap: BREACH_CAP,
            over_cap,
            computed_with_older_calendars,
        },
        due_per_day: bars,
        chart_max: max,
    };
    let page = Page {
        template: "overview.html",
        title: "Overview".to_owned(),
        data,
        status: StatusCode::OK,
    };
    c.answer(&h, fmt(&p), None, page)
}

/// An email of the claim with its rendered preview (decline links hidden).
#[derive(Serialize)]
struct EmailView {
    #[serde(flatten)]
    row: OutboxRow,
    preview_subject: Option<String>,
    preview_text: Option<String>,
    preview_error: Option<String>,
}

#[derive(Serialize)]
struct ClaimView {
    id: String,
    claim: Option<serde_json::Value>,
    problem: Option<String>,
    hold: Option<Hold>,
    /// Its pending timers were computed with calendars other than those in force.
    computed_with_older_calendars: bool,
    timers: Vec<TimerRecord>,
    explain: Option<serde_json::Value>,
    explain_text: Option<String>,
    history: Vec<HistoryEntry>,
    emails: Vec<EmailView>,
}

fn preview(c: &Console, row: OutboxRow, now: DateTime<Utc>) -> EmailView {
    let rendered = c.mailer.as_ref().map(|m| {
        let letter = Letter::from(&row.email);
        let link = match m.context(&letter, now) {
            Ok(EmailContext::ConsentRequest(x)) => Some(x.decline_link),
            _ => None,
        };
        m.compose(&letter, now).map(|out| {
            let hide = |s: String| match &link {
                Some(l) => s.replace(l.as_str(), "[decline link: not shown in the console]"),
                None => s,
            };
            (hide(out.subject), hide(out.text))
        })
    });
    let (preview_subject, preview_text, preview_error) = match rendered {
        Some(Ok((s, t))) => (Some(s), Some(t), None),
        Some(Err(e)) => (None, None, Some(e)),
        None => (None, None, None),
    };
    EmailView {
        row,
        preview_subject,
        preview_text,
        preview_error,
    }
}

/// `GET /claims/{id}`: the claim's whole story.
pub async fn claim(
    State(c): State<Arc<Console>>,
    Path(id): Path<String>,
    h: HeaderMap,
    p: Params,
) -> Response {
    let now = c.clock.now();
    let s = &c.store;
    let (claim, mut problem) = match s.claim(&id).await {
        Ok(claim) => (Some(claim), None),
        Err(StoreError::NotFound(_)) => {
            return c.message(
                &h,
                fmt(&p),
                StatusCode::NOT_FOUND,
                &format!("claim `{id}` not found"),
            );
        }
        Err(StoreError::BadClaim(b)) => (None, Some(b.problem)),
        Err(e) => return db_error(&c, &h, &p, e),
    };
    let got = async {
        let ids = [id.clone()];
        Ok::<_, StoreError>((
            s.claim_problem(&id).await?,
            s.holds(Some(&ids)).await?.pop(),
            s.claim_timers(&id).await?,
            s.history(&id).await?,
            s.outbox_list(None, Some(&id), 200).await?,
            s.facts(&ids).await?.remove(&id).unwrap_or_default(),
            !s.older_calendar_claims(&c.engine.fingerprint(), &id, &id)
                .await?
                .is_empty(),
        ))
    }
    .await;
    let (stored_problem, hold, timers, history, emails, facts, older) = match got {
        Ok(v) => v,
        Err(e) => return db_error(&c, &h, &p, e),
    };
    problem = problem.or(stored_problem);
    let (explain_json, explain_text) = match &claim {
        Some(cl) => match c.engine.calendars.for_country(&cl.country) {
            Some(cal) => match explain(cl, cal, &facts, c.engine.settings, now) {
                Ok(x) => {
                    let mut text = Vec::new();
                    let _ = crate::report::write_explanation(&mut text, &x);
                    (
                        serde_json::to_value(&x).ok(),
                        Some(String::from_utf8_lossy(&text).into_owned()),
                    )
                }
                Err(e) => (None, Some(format!("cannot be explained: {e}"))),
            },
            None => (
                None,
                Some(format!("no holiday calendar serves country {}", cl.country)),
            ),
        },
        None => (None, None),
    };
    let mut emails: Vec<EmailView> = emails.into_iter().map(|r| preview(&c, r, now)).collect();
    emails.reverse();
    let data = ClaimView {
        id: id.clone(),
        claim: claim.as_ref().and_then(|cl| serde_json::to_value(cl).ok()),
        problem,
        hold,
        computed_with_older_calendars: older,
        timers,
        explain: explain_json,
        explain_text,
        history,
        emails,
    };
    let notice = p.get("notice").cloned();
    let page = Page {
        template: "claim.html",
        title: format!("Claim {id}"),
        data,
        status: StatusCode::OK,
    };
    c.answer(&h, fmt(&p), notice.as_deref(), page)
}

#[derive(Serialize)]
struct Found {
    q: String,
    claims: Vec<ClaimHit>,
}

/// `GET /claims?q=`: find claims by id, partner id or name, or email.
pub async fn claims(State(c): State<Arc<Console>>, h: HeaderMap, p: Params) -> Response {
    let q = p.get("q").map(|s| s.trim().to_owned()).unwrap_or_default();
    let claims = if q.is_empty() {
        Vec::new()
    } else {
        match c.store.search_claims(&q, 200).await {
            Ok(v) => v,
            Err(e) => return db_error(&c, &h, &p, e),
        }
    };
    let page = Page {
        template: "claims.html",
        title: "Find claims".to_owned(),
        data: Found { q, claims },
        status: StatusCode::OK,
    };
    c.answer(&h, fmt(&p), None, page)
}
