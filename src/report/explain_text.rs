//! `explain` as text: the claim, each timer with its days, then history and emails.

use std::io::{self, Write};

use chrono::{DateTime, Utc};
use chrono_tz::Tz;

use super::explain::Explanation;

fn both(t: DateTime<Utc>, tz: Tz) -> String {
    format!(
        "{} UTC ({} {})",
        t.format("%Y-%m-%d %H:%M"),
        t.with_timezone(&tz).format("%Y-%m-%d %H:%M %Z"),
        tz.name()
    )
}

/// Writes `x` as text for people.
pub fn write_text(out: &mut dyn Write, x: &Explanation) -> io::Result<()> {
    let c = &x.claim;
    let tz: Tz = c.time_zone.parse().unwrap_or(chrono_tz::UTC);
    writeln!(out, "claim {} at {}", c.id, both(x.at, tz))?;
    writeln!(
        out,
        "  status {}, country {} (calendar {} version {}), time zone {} ({}), locale {}, version {}",
        c.status,
        c.country,
        c.calendar,
        c.calendar_version,
        c.time_zone,
        if c.own_time_zone {
            "the claim's own"
        } else {
            "the calendar's"
        },
        c.locale,
        c.version
    )?;
    for t in &x.timers {
        writeln!(out)?;
        match t.state {
            "not_applicable" => {
                writeln!(
                    out,
                    "{}: not applicable: {}",
                    t.timer,
                    t.note.as_deref().unwrap_or("")
                )?;
                continue;
            }
            "fired" => writeln!(
                out,
                "{}: fired{}: {}",
                t.timer,
                t.fired_at
                    .map(|a| format!(" at {}", both(a, tz)))
                    .unwrap_or_default(),
                t.note.as_deref().unwrap_or("")
            )?,
            state => writeln!(out, "{}: {state}", t.timer)?,
        }
        if let Some(s) = t.start {
            writeln!(out, "  started {}", both(s, tz))?;
        }
        if let Some(d) = t.due {
            writeln!(out, "  due     {}", both(d, tz))?;
        }
        if let Some(d) = &t.deadline {
            let dtz: Tz = d.time_zone;
            writeln!(
                out,
                "  deadline: last day {} (inclusive, {}), passes {}",
                super::explain::long_day(d.last_day),
                dtz.name(),
                both(d.passes_at, dtz)
            )?;
        }
        if let Some(d) = t.deadline.as_ref().filter(|d| d.rule != "calendar") {
            let counted = d
                .counted_last_day
                .map(|c| c.to_string())
                .unwrap_or_default();
            writeln!(
                out,
                "  rule {}: the calendar in force gives {counted}, a sent email named the later day",
                d.rule
            )?;
        }
        if let Some(how) = &t.counting {
            writeln!(out, "  {how}")?;
        }
        for p in &t.paused {
            let to = p.to.map_or("now".to_owned(), |to| both(to, tz));
            writeln!(
                out,
                "  paused (partner action required) {} to {to}: +{} business day(s)",
                both(p.from, tz),
                p.business_days
            )?;
        }
        for day in &t.days {
            writeln!(out, "    {}", day.text)?;
        }
        if let Some(a) = &t.due_action {
            writeln!(out, "  on a pass now: {} ({})", a.action, a.outcome)?;
            for e in &a.emails {
                writeln!(out, "    email {e}")?;
            }
        }
    }
    writeln!(out, "\nhistory ({})", x.history.len())?;
    for h in &x.history {
        writeln!(
            out,
            "  {} {:<8} {} {}",
            h.occurred_at.format("%Y-%m-%d %H:%M UTC"),
            h.actor,
            h.action,
            h.details
                .get("outcome")
                .and_then(|v| v.as_str())
                .map(|o| format!("({o})"))
                .unwrap_or_default()
        )?;
    }
    writeln!(out, "\nemails ({})", x.emails.len())?;
    for e in &x.emails {
        writeln!(
            out,
            "  {} ({}) -> {} [{}] from {}",
            e.email, e.locale, e.to, e.state, e.timer
        )?;
    }
    out.flush()
}
