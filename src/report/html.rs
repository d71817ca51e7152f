//! `--format html`: one self-contained page (inline CSS, an inline SVG bar chart of actions per
//! day, one inline script that only sorts tables, nothing fetched): summary, chart, then the
//! rows, problems and dead emails. Table rows are rendered as they come into spill files.
//!
//! Every instant is one unbreakable `<time>`; a name (status, timer, action, zone) may wrap only
//! after its `_` or `/`; a value that comes from the data (an id, an address, a problem) is a
//! `<span class=v>` that may wrap anywhere and is at most 32em wide. So no value, however long,
//! makes the page wider than the window, and names stay readable.

use std::io::{self, Write};

use super::chart::chart;
use super::rows::{ProblemRow, Row, When};
use super::scan::Sink;
use super::spill::Spill;
use super::summary::Summary;
use super::{short_local, short_utc};
use crate::store::DeadEmail;

/// Writes the page at the end, table rows kept on disk meanwhile.
pub struct HtmlSink<W: Write> {
    out: W,
    now: Spill,
    horizon: Spill,
    problems: Spill,
}

impl<W: Write> HtmlSink<W> {
    /// A sink writing to `out`.
    pub fn new(out: W) -> io::Result<Self> {
        Ok(HtmlSink {
            out,
            now: Spill::new()?,
            horizon: Spill::new()?,
            problems: Spill::new()?,
        })
    }
}

/// `s` with `& < > " '` escaped for HTML text and attributes.
pub fn esc(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&#39;"),
            c => o.push(c),
        }
    }
    o
}

const CSS: &str = "body{font:14px/1.4 system-ui,sans-serif;margin:24px;color:#222}\
h1{font-size:20px}h2{font-size:16px;margin-top:28px}h1,p{overflow-wrap:anywhere}\
table{border-collapse:collapse;margin:8px 0}th,td{border:1px solid #ccc;padding:3px 6px;text-align:left;vertical-align:top}\
th{background:#f3f3f3}td.n{text-align:right}time{white-space:nowrap}tr.sla td{background:#fff1f0}\
th[aria-sort=ascending]::after{content:\" \\25B2\"}th[aria-sort=descending]::after{content:\" \\25BC\"}\
svg{max-width:100%;height:auto}.v{display:inline-block;max-width:32em;overflow-wrap:anywhere}\
.legend span{display:inline-block;margin-right:14px}.legend i{display:inline-block;width:11px;height:11px;margin-right:4px}\
small{color:#666}";

/// A value from the data, escaped, in a span that wraps anywhere (see the module's doc).
fn val(s: &str) -> String {
    format!("<span class=v>{}</span>", esc(s))
}

/// A name (`partner_action_required`, `Europe/Stockholm`), escaped, breakable only after `_`
/// and `/`.
fn name(s: &str) -> String {
    esc(s).replace('_', "_<wbr>").replace('/', "/<wbr>")
}

/// An instant as one unbreakable `<time>`: `2026-12-23 14:00` plus `suffix` (e.g. ` UTC`).
fn time_utc(t: chrono::DateTime<chrono::Utc>, suffix: &str, class: &str) -> String {
    format!(
        "<time class=\"{class}\" datetime=\"{}\">{}{suffix}</time>",
        t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        short_utc(t)
    )
}

fn row_html(r: &Row, w: &mut impl Write) -> io::Result<()> {
    let cls = if r.sla_breach { " class=\"sla\"" } else { "" };
    let emails: Vec<String> = r
        .emails
        .iter()
        .map(|e| {
            format!(
                "{} ({}) → {}",
                name(e.kind.as_str()),
                esc(&e.locale),
                val(&e.to)
            )
        })
        .collect();
    // The UTC instant first and whole: it is what the worker acts on.
    let deadline = match (r.last_day, &r.deadline_local, r.deadline_utc) {
        (Some(d), Some(l), Some(u)) => format!(
            "<td data-sort=\"{}\">{}<br><small>last day <time>{d}</time><br><time class=\"local\" datetime=\"{}\">{}</time> {}</small></td>",
            u.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            time_utc(u, " UTC", "utc"),
            esc(l),
            esc(&short_local(l)),
            name(&r.time_zone),
        ),
        _ => "<td><small>immediate</small></td>".to_owned(),
    };
    // The stored timers used other calendars: the next pass moves the deadline to this one.
    let deadline = if r.computed_with_older_calendars {
        deadline.replacen(
            "</td>",
            "<br><small class=\"older\" title=\"the worker's stored timers of this claim were computed with calendars other than those in force; the next pass recomputes them\">computed with older calendars</small></td>",
            1,
        )
    } else {
        deadline
    };
    let becomes = r
        .new_status
        .map(|s| format!(" → {}", name(s.as_str())))
        .unwrap_or_default();
    writeln!(
        w,
        "<tr{cls}><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td>{}<td class=n>{}</td><td>{}{becomes}<br><small class=\"outcome\">{}</small></td><td>{}</td></tr>",
        val(&r.claim_id),
        name(r.status.as_str()),
        name(r.timer.as_str()),
        time_utc(r.started_at, "", "start"),
        time_utc(r.due_at, "", "due"),
        deadline,
        r.business_days_left
            .map(|n| n.to_string())
            .unwrap_or_default(),
        name(&r.action),
        esc(&r.outcome_text()),
        emails.join("<br>")
    )
}

const ROW_HEAD: &str = "<table class=\"sortable rows\"><thead><tr><th>claim</th><th>status</th><th>timer</th><th>started (UTC)</th><th>due (UTC)</th><th>deadline</th><th>business days left</th><th>action</th><th>emails</th></tr></thead><tbody>\n";

fn section(
    out: &mut dyn Write,
    id: &str,
    title: &str,
    spill: &mut Spill,
    head: &str,
) -> io::Result<()> {
    writeln!(
        out,
        "<section id=\"{id}\"><h2>{} ({})</h2>",
        esc(title),
        spill.len()
    )?;
    if spill.is_empty() {
        return writeln!(out, "<p>None.</p></section>");
    }
    out.write_all(head.as_bytes())?;
    spill.drain_into(out)?;
    writeln!(out, "</tbody></table></section>")
}

impl<W: Write> Sink for HtmlSink<W> {
    fn row(&mut self, r: &Row) -> io::Result<()> {
        match r.when {
            When::Now => row_html(r, self.now.entry()),
            When::Horizon => row_html(r, self.horizon.entry()),
        }
    }

    fn problem(&mut self, p: &ProblemRow) -> io::Result<()> {
        writeln!(
            self.problems.entry(),
            "<tr><td>{}</td><td>{}</td><td>{}</td></tr>",
            val(&p.claim_id),
            name(p.kind),
            val(&p.problem)
        )
    }

    fn finish(&mut self, s: &Summary, dead: &[DeadEmail]) -> io::Result<()> {
        let out: &mut dyn Write = &mut self.out;
        let title = format!("cpor-worker dry-run at {} UTC", short_utc(s.at));
        write!(
            out,
            "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{t}</title><style>{CSS}</style></head><body>\n<h1>{t}</h1>\n<p>Horizon {} (until {} UTC). Claims read {}, shown {}.</p>\n",
            esc(&s.horizon),
            short_utc(s.until),
            s.claims_read,
            s.claims_matched,
            t = esc(&title)
        )?;
        writeln!(
            out,
            "<h2>Summary</h2>\n<table><tr><th>due now</th><th>within horizon</th><th>emails</th><th>SLA breaches now</th><th>SLA breaches in horizon</th><th>claims with problems</th><th>dead-lettered emails</th><th>claims computed with older calendars</th></tr>\n<tr><td class=n>{}</td><td class=n>{}</td><td class=n>{}</td><td class=n>{}</td><td class=n>{}</td><td class=n>{}</td><td class=n>{}</td><td class=n>{}</td></tr></table>",
            s.rows_now,
            s.rows_horizon,
            s.emails,
            s.sla_breaches_now,
            s.sla_breaches_horizon,
            s.problems,
            s.dead_emails,
            s.claims_computed_with_older_calendars
        )?;
        writeln!(
            out,
            "<table class=\"sortable\"><thead><tr><th>action</th><th>now</th><th>horizon</th></tr></thead><tbody>"
        )?;
        for (a, c) in &s.by_action {
            writeln!(
                out,
                "<tr><td>{}</td><td class=n>{}</td><td class=n>{}</td></tr>",
                esc(a),
                c.now,
                c.horizon
            )?;
        }
        writeln!(out, "</tbody></table>\n<h2>Actions per day (UTC)</h2>")?;
        out.write_all(chart(s).as_bytes())?;
        let due_now = format!("Due now: what tick --at {} would do", s.at.to_rfc3339());
        section(out, "now", &due_now, &mut self.now, ROW_HEAD)?;
        section(
            out,
            "horizon",
            "Due within the horizon",
            &mut self.horizon,
            ROW_HEAD,
        )?;
        section(
            out,
            "problems",
            "Claims that cannot be processed",
            &mut self.problems,
            "<table class=\"sortable\"><thead><tr><th>claim</th><th>problem</th><th>detail</th></tr></thead><tbody>\n",
        )?;
        writeln!(out, "<h2>Dead-lettered emails ({})</h2>", dead.len())?;
        if dead.is_empty() {
            writeln!(out, "<p>None.</p>")?;
        } else {
            writeln!(
                out,
                "<table class=\"sortable\"><thead><tr><th>claim</th><th>email</th><th>to</th><th>attempts</th><th>last error</th></tr></thead><tbody>"
            )?;
            for d in dead {
                let e = &d.email;
                writeln!(
                    out,
                    "<tr><td>{}</td><td>{} ({})</td><td>{}</td><td class=n>{}</td><td>{}</td></tr>",
                    val(&e.claim_id),
                    name(e.email.as_str()),
                    esc(&e.locale),
                    val(&e.to_address),
                    d.attempts,
                    val(d.last_error.as_deref().unwrap_or(""))
                )?;
            }
            writeln!(out, "</tbody></table>")?;
        }
        writeln!(out, "<script>{}</script>\n</body></html>", super::SORT_JS)?;
        out.flush()
    }
}

#[cfg(test)]
mod tests {
    use chrono::{DateTime, Utc};

    use super::*;
    use crate::report::rows::sample_row;

    fn at() -> DateTime<Utc> {
        "2026-12-24T09:00:00Z".parse().expect("test instant")
    }

    /// The whole page for `rows` and `problems`.
    fn page(rows: &[Row], problems: &[ProblemRow]) -> String {
        let mut s = Summary::new(at(), at() + chrono::Duration::days(14), "2w");
        let mut buf = Vec::new();
        let mut sink = HtmlSink::new(&mut buf).expect("spill files");
        for r in rows {
            s.add_row(r);
            sink.row(r).expect("row");
        }
        for p in problems {
            s.add_problem(p);
            sink.problem(p).expect("problem");
        }
        sink.finish(&s, &[]).expect("page");
        drop(sink);
        String::from_utf8(buf).expect("UTF-8")
    }

    #[test]
    fn rows_in_the_horizon_never_say_fired() {
        let html = page(
            &[
                sample_row(When::Now, "fired"),
                sample_row(When::Horizon, "fired"),
            ],
            &[],
        );
        let horizon = &html[html.find("id=\"horizon\"").expect("horizon section")..];
        assert!(horizon.contains(">will fire</small>"), "{horizon}");
        assert!(!html.contains(">fired<"), "{html}");
        assert!(html.contains("auto_<wbr>rejected → rejected"), "{html}");
    }

    #[test]
    fn instants_are_unbreakable_and_the_utc_deadline_whole() {
        let html = page(&[sample_row(When::Horizon, "fired")], &[]);
        assert!(
            html.contains(
                "<time class=\"utc\" datetime=\"2027-01-04T23:00:00Z\">2027-01-04 23:00 UTC</time>"
            ),
            "{html}"
        );
        assert!(
            html.contains(">2027-01-05 00:00 +01:00</time> Europe/<wbr>Stockholm"),
            "{html}"
        );
        assert!(html.contains("time{white-space:nowrap}"));
        assert!(!html.contains('…'), "nothing is cut");
    }

    #[test]
    fn a_ten_thousand_character_value_may_wrap() {
        let long = "N".repeat(10_000);
        let mut r = sample_row(When::Now, "fired");
        r.claim_id = long.clone();
        r.emails[0].to = format!("{long}@nordljus.example");
        let p = ProblemRow {
            claim_id: "CPOR-1".into(),
            kind: "held",
            problem: long.clone(),
        };
        let html = page(&[r], &[p]);
        // Shown whole (a reader may need it), in cells that may break anywhere.
        assert!(
            html.contains(&format!("<tr><td><span class=v>{long}</span></td>")),
            "claim id"
        );
        assert!(html.contains(&format!("→ <span class=v>{long}@nordljus.example</span>")));
        assert!(html.contains(&format!("<td><span class=v>{long}</span></td></tr>")));
        assert!(html.contains(".v{display:inline-block;max-width:32em;overflow-wrap:anywhere}"));
        // Only instants are unbreakable (the claim column used to be).
        assert_eq!(
            html.matches("nowrap").count(),
            1,
            "time{{white-space:nowrap}}"
        );
    }

    #[test]
    fn tables_sort_with_one_inline_script_and_fetch_nothing() {
        let html = page(&[sample_row(When::Now, "fired")], &[]);
        assert_eq!(html.matches("<script").count(), 1);
        assert!(html.contains("<script>") && !html.contains("src="));
        assert!(!html.contains("http:") && !html.contains("https:"));
        assert!(html.contains("<table class=\"sortable rows\"><thead>"));
        assert_eq!(
            html.matches("<tbody>").count(),
            html.matches("</tbody>").count()
        );
    }
}
