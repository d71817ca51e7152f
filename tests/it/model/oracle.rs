//! The oracle: the timer runs SPEC §4 says a claim has, computed from the claim as the main
//! system wrote it and from what was observed (consent emails delivered, the worker's own
//! rejections, forwarding), with the calendar's `deadline` (trusted) and nothing of
//! `timers::evaluate`/`plan`.

use chrono::{DateTime, Duration, Utc};
use chrono_tz::Tz;
use cpor_worker::calendar::{Calendar, Calendars, DayCount, deadline, start_of_local_day};

use super::sim::SimClaim;

/// What acting on a run must record, as a function of the instant it is acted on.
#[derive(Clone, Copy, Debug)]
pub enum Expect {
    /// Always this history action.
    Action(&'static str),
    /// The reminder: sent before the response deadline passes, skipped at or after it.
    Reminder { deadline: DateTime<Utc> },
    /// The rejection notice: sent while the dispute window is open and no dispute of this
    /// rejection was opened; skipped otherwise.
    Notice {
        window_end: DateTime<Utc>,
        disputed: bool,
    },
}

/// One timer run SPEC §4 gives the claim: acted on once, by the first pass at or after `due`.
#[derive(Clone, Debug)]
pub struct Run {
    pub timer: &'static str,
    pub start: DateTime<Utc>,
    pub due: DateTime<Utc>,
    pub expect: Expect,
}

impl Run {
    /// The history action acting on this run at `at` must record.
    pub fn action_at(&self, at: DateTime<Utc>) -> &'static str {
        match self.expect {
            Expect::Action(a) => a,
            Expect::Reminder { deadline } if at >= deadline => "reminder_skipped",
            Expect::Reminder { .. } => "reminder_sent",
            Expect::Notice { disputed: true, .. } => "rejection_notice_skipped",
            Expect::Notice { window_end, .. } if at >= window_end => "rejection_notice_skipped",
            Expect::Notice { .. } => "rejection_notice_sent",
        }
    }
}

/// Two instants the same run start (the worker keeps microseconds; fractions may be rounded).
pub fn same_instant(a: DateTime<Utc>, b: DateTime<Utc>) -> bool {
    (a - b).abs() < Duration::milliseconds(1)
}

pub struct Oracle<'a> {
    pub cals: &'a Calendars,
}

impl Oracle<'_> {
    fn cal_tz(&self, c: &SimClaim) -> (&Calendar, Tz) {
        let cal = self
            .cals
            .for_country(c.country)
            .expect("calendar of the country");
        let tz =
            c.tz.map(|z| z.parse::<Tz>().expect("time zone"))
                .unwrap_or_else(|| cal.time_zone());
        (cal, tz)
    }

    /// The instant N business (or calendar) days after `from` pass, SPEC §3.
    pub fn after(&self, c: &SimClaim, from: DateTime<Utc>, count: DayCount) -> DateTime<Utc> {
        let (cal, tz) = self.cal_tz(c);
        deadline(cal, tz, from, count).expect("deadline").due
    }

    /// The reminder instant and the deadline of an information request at `asked`: the start of
    /// the deadline's last day (lead 0), and the end of it.
    pub fn response(&self, c: &SimClaim, asked: DateTime<Utc>) -> (DateTime<Utc>, DateTime<Utc>) {
        let (cal, tz) = self.cal_tz(c);
        let d = deadline(cal, tz, asked, DayCount::Business(5)).expect("deadline");
        let remind = start_of_local_day(d.last_day, tz).expect("local day");
        (remind, d.due)
    }

    /// The runs of `c` as it stands, `forwarded(sent)` telling whether the consent window
    /// opened at `sent` was already closed (forwarded) before the pass.
    pub fn runs(&self, c: &SimClaim, forwarded: &dyn Fn(DateTime<Utc>) -> bool) -> Vec<Run> {
        let r = &c.row;
        let mut runs = Vec::new();
        let now_run = |timer, start, action| Run {
            timer,
            start,
            due: start,
            expect: Expect::Action(action),
        };
        match r.status {
            "submitted" => {
                if let Some(s) = r.submitted_at {
                    runs.push(Run {
                        timer: "review_start_sla",
                        start: s,
                        due: self.after(c, s, DayCount::Business(5)),
                        expect: Expect::Action("sla_breached"),
                    });
                }
            }
            "under_review" => {
                if let Some(s) = r.review_started_at {
                    runs.push(Run {
                        timer: "review_decision_sla",
                        start: s,
                        due: self.after(c, s, DayCount::Business(5)),
                        expect: Expect::Action("sla_breached"),
                    });
                }
            }
            "partner_action_required" => {
                if let Some(s) = r.info_requested_at {
                    let (remind, end) = self.response(c, s);
                    runs.push(Run {
                        timer: "partner_response_reminder",
                        start: s,
                        due: remind,
                        expect: Expect::Reminder { deadline: end },
                    });
                    runs.push(Run {
                        timer: "partner_response_deadline",
                        start: s,
                        due: end,
                        expect: Expect::Action("auto_rejected"),
                    });
                }
            }
            "approved" => {
                let Some(a) = r.approved_at else { return runs };
                let sent = c
                    .consent_sent
                    .iter()
                    .find(|(k, _)| same_instant(**k, a))
                    .map(|(_, v)| *v);
                let window_end = sent.map(|s| self.after(c, s, DayCount::Calendar(7)));
                let decline = r.customer_declined_at.filter(|x| *x >= a);
                let in_window = decline.is_some_and(|x| {
                    !(window_end.is_some_and(|w| x >= w) || sent.is_some_and(forwarded))
                });
                if let Some(x) = decline {
                    let action = if in_window {
                        "customer_decline_applied"
                    } else {
                        "customer_decline_ignored"
                    };
                    runs.push(now_run("customer_decline", x, action));
                }
                if !in_window {
                    runs.push(now_run("consent_notification", a, "consent_requested"));
                    if let (Some(s), Some(w)) = (sent, window_end) {
                        runs.push(now_run(
                            "partner_approval_notice",
                            s,
                            "approval_notice_sent",
                        ));
                        runs.push(Run {
                            timer: "consent_window_close",
                            start: s,
                            due: w,
                            expect: Expect::Action("forwarded_to_incentive_evaluation"),
                        });
                    }
                }
            }
            "rejected" => {
                let Some(rj) = r.rejected_at else { return runs };
                let window_end = self.after(c, rj, DayCount::Calendar(30));
                let disputed = r.dispute_of_this_rejection();
                let by_worker = c.worker_rejected.is_some_and(|w| same_instant(w, rj));
                if !by_worker {
                    runs.push(Run {
                        timer: "rejection_notice",
                        start: rj,
                        due: rj,
                        expect: Expect::Notice {
                            window_end,
                            disputed: disputed.is_some(),
                        },
                    });
                }
                match disputed {
                    None => runs.push(Run {
                        timer: "dispute_window_close",
                        start: rj,
                        due: window_end,
                        expect: Expect::Action("dispute_window_closed"),
                    }),
                    Some(o) if r.dispute_resolved_at < Some(o) => runs.push(Run {
                        timer: "dispute_review_sla",
                        start: o,
                        due: self.after(c, o, DayCount::Business(5)),
                        expect: Expect::Action("sla_breached"),
                    }),
                    Some(_) => {}
                }
            }
            _ => {}
        }
        runs
    }
}
