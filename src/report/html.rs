//! `--format html`: one self-contained page (inline CSS, an inline SVG bar chart of actions per
//! day, no script, nothing fetched): summary, chart, then the rows, problems and dead emails.
//! Table rows are rendered as they come into spill files.

use std::io::{self, Write};

use super::rows::{ProblemRow, Row, When};
use super::scan::Sink;
use super::short_utc;
use super::spill::Spill;
use super::summary::Summary;
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

/// Colours of the chart, by the action's position in the summary.
const PALETTE: &[&str] = &[
    "#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948", "#b07aa1", "#ff9da7",
    "#9c755f", "#bab0ac", "#86bcb6", "#d37295",
];

const CSS: &str = "body{font:14px/1.4 system-ui,sans-serif;margin:24px;color:#222}\
h1{font-size:20px}h2{font-size:16px;margin-top:28px}\
table{border-collapse:collapse;margin:8px 0}th,td{border:1px solid #ccc;padding:3px 6px;text-align:left;vertical-align:top}\
th{background:#f3f3f3}td.n{text-align:right}td:nth-child(-n+5){white-space:nowrap}tr.sla td{background:#fff1f0}\
.legend span{display:inline-block;margin-right:14px}.legend i{display:inline-block;width:11px;height:11px;margin-right:4px}\
small{color:#666}";

fn row_html(r: &Row, w: &mut impl Write) -> io::Result<()> {
    let cls = if r.sla_breach { " class=\"sla\"" } else { "" };
    let emails: Vec<String> = r
        .emails
        .iter()
        .map(|e| {
            format!(
                "{} ({}) → {}",
                esc(e.kind.as_str()),
                esc(&e.locale),
                esc(&e.to)
            )
        })
        .collect();
    let deadline = match (r.last_day, &r.deadline_local, r.deadline_utc) {
        (Some(d), Some(l), Some(u)) => format!(
            "last day {}<br><small>{} ({})<br>{} UTC</small>",
            d,
            esc(l),
            esc(&r.time_zone),
            short_utc(u)
        ),
        _ => "<small>immediate</small>".to_owned(),
    };
    writeln!(
        w,
        "<tr{cls}><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td class=n>{}</td><td>{}<br><small>{}</small></td><td>{}</td></tr>",
        esc(&r.claim_id),
        r.status,
        r.timer,
        short_utc(r.started_at),
        short_utc(r.due_at),
        deadline,
        r.business_days_left
            .map(|n| n.to_string())
            .unwrap_or_default(),
        esc(&r.action),
        esc(&r.outcome),
        emails.join("<br>")
    )
}

/// The SVG bar chart: one stacked bar per day (`now` first), coloured by action.
pub fn chart(s: &Summary) -> String {
    let bars = s.bars();
    let actions: Vec<&String> = s.by_action.keys().collect();
    let colour = |a: &str| {
        let i = actions.iter().position(|x| x.as_str() == a).unwrap_or(0);
        PALETTE[i % PALETTE.len()]
    };
    let (w, h, top, bottom, left) = (900.0_f64, 280.0_f64, 20.0, 40.0, 40.0);
    let max = bars.iter().map(|(_, c)| c.total).max().unwrap_or(0).max(1) as f64;
    let slot = (w - left - 10.0) / bars.len().max(1) as f64;
    let bw = (slot * 0.7).max(1.0);
    let scale = (h - top - bottom) / max;
    let every = (bars.len() / 20).max(1);
    let mut o = format!(
        "<svg width=\"{w}\" height=\"{h}\" viewBox=\"0 0 {w} {h}\" role=\"img\" aria-label=\"actions per day\">\
<line x1=\"{left}\" y1=\"{y0}\" x2=\"{x1}\" y2=\"{y0}\" stroke=\"#888\"/>\
<text x=\"4\" y=\"{ty}\" font-size=\"11\">{max}</text>",
        y0 = h - bottom,
        x1 = w - 10.0,
        ty = top + 4.0,
    );
    for (i, (label, c)) in bars.iter().enumerate() {
        let x = left + slot * i as f64 + (slot - bw) / 2.0;
        let mut y = h - bottom;
        for (a, n) in &c.actions {
            let bh = *n as f64 * scale;
            y -= bh;
            o.push_str(&format!(
                "<rect x=\"{x:.1}\" y=\"{y:.1}\" width=\"{bw:.1}\" height=\"{bh:.1}\" fill=\"{}\"><title>{} {}: {}</title></rect>",
                colour(a),
                esc(label),
                esc(a),
                n
            ));
        }
        if c.total > 0 {
            o.push_str(&format!(
                "<text x=\"{:.1}\" y=\"{:.1}\" font-size=\"11\" text-anchor=\"middle\">{}</text>",
                x + bw / 2.0,
                y - 3.0,
                c.total
            ));
        }
        if i % every == 0 {
            o.push_str(&format!(
                "<text x=\"{:.1}\" y=\"{:.1}\" font-size=\"11\" text-anchor=\"middle\">{}</text>",
                x + bw / 2.0,
                h - bottom + 16.0,
                esc(label)
            ));
        }
    }
    o.push_str("</svg>\n<div class=\"legend\">");
    for a in &actions {
        o.push_str(&format!(
            "<span><i style=\"background:{}\"></i>{}</span>",
            colour(a),
            esc(a)
        ));
    }
    o.push_str("</div>\n");
    o
}

const ROW_HEAD: &str = "<table><tr><th>claim</th><th>status</th><th>timer</th><th>started (UTC)</th><th>due (UTC)</th><th>deadline</th><th>business days left</th><th>action</th><th>emails</th></tr>\n";

fn section(out: &mut dyn Write, title: &str, spill: &mut Spill, head: &str) -> io::Result<()> {
    writeln!(out, "<h2>{} ({})</h2>", esc(title), spill.len())?;
    if spill.is_empty() {
        return writeln!(out, "<p>None.</p>");
    }
    out.write_all(head.as_bytes())?;
    spill.drain_into(out)?;
    writeln!(out, "</table>")
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
            esc(&p.claim_id),
            p.kind,
            esc(&p.problem)
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
            "<h2>Summary</h2>\n<table><tr><th>due now</th><th>within horizon</th><th>emails</th><th>SLA breaches now</th><th>SLA breaches in horizon</th><th>claims with problems</th><th>dead-lettered emails</th></tr>\n<tr><td class=n>{}</td><td class=n>{}</td><td class=n>{}</td><td class=n>{}</td><td class=n>{}</td><td class=n>{}</td><td class=n>{}</td></tr></table>",
            s.rows_now,
            s.rows_horizon,
            s.emails,
            s.sla_breaches_now,
            s.sla_breaches_horizon,
            s.problems,
            s.dead_emails
        )?;
        writeln!(
            out,
            "<table><tr><th>action</th><th>now</th><th>horizon</th></tr>"
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
        writeln!(out, "</table>\n<h2>Actions per day (UTC)</h2>")?;
        out.write_all(chart(s).as_bytes())?;
        let due_now = format!("Due now: what tick --at {} would do", s.at.to_rfc3339());
        section(out, &due_now, &mut self.now, ROW_HEAD)?;
        section(out, "Due within the horizon", &mut self.horizon, ROW_HEAD)?;
        section(
            out,
            "Claims that cannot be processed",
            &mut self.problems,
            "<table><tr><th>claim</th><th>problem</th><th>detail</th></tr>\n",
        )?;
        writeln!(out, "<h2>Dead-lettered emails ({})</h2>", dead.len())?;
        if dead.is_empty() {
            writeln!(out, "<p>None.</p>")?;
        } else {
            writeln!(
                out,
                "<table><tr><th>claim</th><th>email</th><th>to</th><th>attempts</th><th>last error</th></tr>"
            )?;
            for d in dead {
                let e = &d.email;
                writeln!(
                    out,
                    "<tr><td>{}</td><td>{} ({})</td><td>{}</td><td class=n>{}</td><td>{}</td></tr>",
                    esc(&e.claim_id),
                    e.email,
                    esc(&e.locale),
                    esc(&e.to_address),
                    d.attempts,
                    esc(d.last_error.as_deref().unwrap_or(""))
                )?;
            }
            writeln!(out, "</table>")?;
        }
        writeln!(out, "</body></html>")?;
        out.flush()
    }
}
