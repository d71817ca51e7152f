//! `--format table`: text for a 100-column terminal — the summary, then the rows due now and
//! within the horizon (one line each, plus indented lines for the deadline and the emails), then
//! problems and dead-lettered emails. Rows are rendered as they come into spill files.

use std::io::{self, Write};

use chrono::NaiveDate;

use super::rows::{ProblemRow, Row, When};
use super::scan::Sink;
use super::spill::Spill;
use super::summary::Summary;
use super::{short_local, short_utc};
use crate::lifecycle::ClaimStatus;
use crate::store::DeadEmail;
use crate::timers::TimerKind;

/// The terminal width the table fits.
pub const WIDTH: usize = 100;

/// Writes the table at the end, rows kept on disk meanwhile.
pub struct TableSink<W: Write> {
    out: W,
    now: Spill,
    horizon: Spill,
    problems: Spill,
}

impl<W: Write> TableSink<W> {
    /// A sink writing to `out`.
    pub fn new(out: W) -> io::Result<Self> {
        Ok(TableSink {
            out,
            now: Spill::new()?,
            horizon: Spill::new()?,
            problems: Spill::new()?,
        })
    }
}

/// `s` cut to `w` characters, the last one `…` when cut.
pub(super) fn fit(s: &str, w: usize) -> String {
    if s.chars().count() <= w {
        return s.to_owned();
    }
    let mut t: String = s.chars().take(w.saturating_sub(1)).collect();
    t.push('…');
    t
}

/// A status in at most 9 characters.
pub fn short_status(s: ClaimStatus) -> &'static str {
    match s {
        ClaimStatus::UnderReview => "in_review",
        ClaimStatus::PartnerActionRequired => "info_req",
        other => other.as_str(),
    }
}

/// A timer in at most 17 characters.
pub fn short_timer(k: TimerKind) -> &'static str {
    use TimerKind as K;
    match k {
        K::ReviewDecisionSla => "review_decis_sla",
        K::PartnerResponseReminder => "response_reminder",
        K::PartnerResponseDeadline => "response_deadline",
        K::ConsentNotification => "consent_notice",
        K::PartnerApprovalNotice => "approval_notice",
        K::ConsentWindowClose => "consent_close",
        K::DisputeWindowClose => "dispute_close",
        K::DisputeReviewSla => "dispute_sla",
        other => other.as_str(),
    }
}

fn day(d: NaiveDate) -> String {
    d.format("%a %Y-%m-%d").to_string()
}

fn row_lines(r: &Row, w: &mut impl Write) -> io::Result<()> {
    let left = r
        .business_days_left
        .map(|n| n.to_string())
        .unwrap_or_default();
    let sla = if r.sla_breach { "SLA! " } else { "" };
    let line = format!(
        "{:<14} {:<9} {:<17} {:<10} {:<16} {:>4} {}",
        fit(&r.claim_id, 14),
        short_status(r.status),
        short_timer(r.timer),
        r.started_at.format("%Y-%m-%d"),
        short_utc(r.due_at),
        left,
        fit(&format!("{sla}{}", r.action), 24),
    );
    writeln!(w, "{}", fit(line.trim_end(), WIDTH))?;
    let pad = "      ";
    if let (Some(last), Some(local), Some(utc)) = (r.last_day, &r.deadline_local, r.deadline_utc) {
        // The UTC instant leads its own line, whole: a long zone name cannot push it off.
        let s = format!(
            "{pad}deadline {} UTC = {} {}",
            short_utc(utc),
            short_local(local),
            r.time_zone
        );
        writeln!(w, "{}", fit(&s, WIDTH))?;
        let s = format!(
            "{pad}last day {}, {} {} days",
            day(last),
            r.days.unwrap_or(0),
            r.counting.unwrap_or(""),
        );
        writeln!(w, "{}", fit(&s, WIDTH))?;
    }
    if r.computed_with_older_calendars {
        let s =
            format!("{pad}computed with older calendars: the next pass recomputes this deadline");
        writeln!(w, "{}", fit(&s, WIDTH))?;
    }
    if r.outcome != "fired" {
        writeln!(w, "{}", fit(&format!("{pad}{}", r.outcome_text()), WIDTH))?;
    }
    for e in &r.emails {
        let s = format!("{pad}email {} ({}) -> {}", e.kind, e.locale, e.to);
        writeln!(w, "{}", fit(&s, WIDTH))?;
    }
    Ok(())
}

const HEAD: &str =
    "CLAIM          STATUS    TIMER             STARTED    DUE (UTC)        LEFT ACTION";

/// The summary block shared by the table and (as text) nowhere else.
fn write_summary(out: &mut dyn Write, s: &Summary) -> io::Result<()> {
    writeln!(
        out,
        "cpor-worker dry-run at {} UTC, horizon {} (until {} UTC)",
        short_utc(s.at),
        s.horizon,
        short_utc(s.until)
    )?;
    writeln!(
        out,
        "claims read {}, shown {}; due now {}, within horizon {}; emails {}",
        s.claims_read, s.claims_matched, s.rows_now, s.rows_horizon, s.emails
    )?;
    writeln!(
        out,
        "SLA breaches now {}, within horizon {}; claims with problems {}; dead-lettered emails {}",
        s.sla_breaches_now, s.sla_breaches_horizon, s.problems, s.dead_emails
    )?;
    if s.claims_computed_with_older_calendars > 0 {
        writeln!(
            out,
            "claims whose pending timers were computed with older calendars {} (the next pass moves their deadlines to those shown)",
            s.claims_computed_with_older_calendars
        )?;
    }
    writeln!(out, "\nSUMMARY BY ACTION                      NOW  HORIZON")?;
    if s.by_action.is_empty() {
        writeln!(out, "  (nothing due)")?;
    }
    for (action, c) in &s.by_action {
        writeln!(
            out,
            "  {:<34} {:>6} {:>8}",
            fit(action, 34),
            c.now,
            c.horizon
        )?;
    }
    writeln!(out, "\nSUMMARY BY DAY (UTC)  COUNT")?;
    let bars = s.bars();
    let max = bars.iter().map(|(_, c)| c.total).max().unwrap_or(0).max(1);
    for (label, c) in bars {
        let n = ((c.total * 60).div_ceil(max)) as usize;
        writeln!(out, "  {:<18} {:>6}  {}", label, c.total, "#".repeat(n))?;
    }
    Ok(())
}

fn section(out: &mut dyn Write, title: &str, spill: &mut Spill, head: &str) -> io::Result<()> {
    writeln!(out, "\n{title} ({})", spill.len())?;
    if spill.is_empty() {
        return writeln!(out, "  (none)");
    }
    writeln!(out, "{head}")?;
    spill.drain_into(out)
}

impl<W: Write> Sink for TableSink<W> {
    fn row(&mut self, r: &Row) -> io::Result<()> {
        match r.when {
            When::Now => row_lines(r, self.now.entry()),
            When::Horizon => row_lines(r, self.horizon.entry()),
        }
    }

    fn problem(&mut self, p: &ProblemRow) -> io::Result<()> {
        let s = format!("{:<14} {:<15} {}", fit(&p.claim_id, 14), p.kind, p.problem);
        writeln!(self.problems.entry(), "{}", fit(&s, WIDTH))
    }

    fn finish(&mut self, s: &Summary, dead: &[DeadEmail]) -> io::Result<()> {
        let out: &mut dyn Write = &mut self.out;
        write_summary(out, s)?;
        writeln!(
            out,
            "\nAbbreviated: in_review = under_review, info_req = partner_action_required; \
             LEFT = business\ndays from today (local) to the last day. Full names: --format json or csv."
        )?;
        let title = format!("DUE NOW: what `tick --at {}` would do", s.at.to_rfc3339());
        section(out, &title, &mut self.now, HEAD)?;
        section(out, "DUE WITHIN THE HORIZON", &mut self.horizon, HEAD)?;
        section(
            out,
            "CLAIMS THAT CANNOT BE PROCESSED",
            &mut self.problems,
            "CLAIM          PROBLEM         DETAIL",
        )?;
        writeln!(out, "\nDEAD-LETTERED EMAILS ({})", dead.len())?;
        if dead.is_empty() {
            writeln!(out, "  (none)")?;
        }
        for d in dead {
            let e = &d.email;
            let s = format!(
                "{:<14} {} ({}) -> {}: {} attempts, {}",
                fit(&e.claim_id, 14),
                e.email,
                e.locale,
                e.to_address,
                d.attempts,
                d.last_error.as_deref().unwrap_or("no error recorded")
            );
            writeln!(out, "{}", fit(&s, WIDTH))?;
        }
        out.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::rows::sample_row;

    #[test]
    fn the_utc_deadline_is_never_cut_off() {
        // The deadline line used to end with the UTC instant and was cut at 100 columns.
        let mut r = sample_row(When::Horizon, "fired");
        r.time_zone = "America/Argentina/ComodRivadavia".into();
        r.days = Some(100);
        let mut out = Vec::new();
        row_lines(&r, &mut out).expect("rows");
        let text = String::from_utf8(out).expect("UTF-8");
        assert!(
            text.contains("deadline 2027-01-04 23:00 UTC = 2027-01-05 00:00 +01:00"),
            "{text}"
        );
        assert!(!text.contains('…'), "{text}");
        assert!(text.lines().all(|l| l.chars().count() <= WIDTH), "{text}");
    }

    #[test]
    fn a_skipped_future_row_says_it_will_skip() {
        let r = sample_row(When::Horizon, "skipped: the claim was approved");
        let mut out = Vec::new();
        row_lines(&r, &mut out).expect("rows");
        let text = String::from_utf8(out).expect("UTF-8");
        assert!(text.contains("will skip: the claim was approved"), "{text}");
        assert!(!text.contains("fired"), "{text}");
    }
}
