//! One pass of the worker — recompute the timers of claims that changed, fire what is due, then
//! deliver the outbox — as a function of an instant, so `tick --at`, `run` and tests share it.

mod cores;
mod decide;
pub mod refused;
mod sync;

use cores::{Handoff, off_task_map};

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde::Serialize;
use tokio_util::sync::CancellationToken;

use crate::calendar::Calendars;
use crate::mail::{DeliverOutcome, Mailer};
use crate::store::{Repairs, StoreError, TimerIndex};
use crate::timers::{Outcome, TimerKind, TimerSettings};

pub use decide::{Decided, decide, sync_claim};

/// Worker state key of the calendars' fingerprint the pending timers were computed with.
const FINGERPRINT_KEY: &str = crate::store::CALENDAR_FINGERPRINT_KEY;
/// Claims read per sync page.
const SYNC_PAGE: i64 = 5000;

/// What the worker needs besides the store.
#[derive(Clone)]
pub struct Engine {
    /// Holiday calendars in force.
    pub calendars: Arc<Calendars>,
    /// Timer settings.
    pub settings: TimerSettings,
    /// Claims per fire transaction.
    pub batch_size: i64,
    /// The template set's version ([`crate::mail::template_set_version`]), recorded with each
    /// email queued; None where no templates are configured (tests).
    pub template_version: Option<String>,
    /// Cancelled to stop: a pass then ends after the batch in hand (each batch is atomic).
    pub stop: CancellationToken,
}

/// A claim that could not be handled, and why.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Problem {
    /// The claim.
    pub claim_id: String,
    /// What is wrong.
    pub problem: String,
}

/// One kind of timer run a pass acted on: the timer, and whether it fired or was skipped.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Acted {
    /// The timer.
    pub timer: TimerKind,
    /// Why it was skipped; `None` when it fired.
    pub skipped: Option<String>,
}

impl Acted {
    /// The timer fired.
    pub fn fired(timer: TimerKind) -> Self {
        Self {
            timer,
            skipped: None,
        }
    }

    /// What a planned effect did.
    pub fn of(timer: TimerKind, outcome: &Outcome) -> Self {
        Self {
            timer,
            skipped: match outcome {
                Outcome::Fired => None,
                Outcome::Skipped(why) => Some(why.clone()),
            },
        }
    }

    /// `fired` or `skipped`, the metric label.
    pub fn result(&self) -> &'static str {
        if self.skipped.is_some() {
            "skipped"
        } else {
            "fired"
        }
    }
}

impl std::fmt::Display for Acted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.skipped {
            None => write!(f, "{}: fired", self.timer),
            Some(why) => write!(f, "{}: skipped: {why}", self.timer),
        }
    }
}

impl Serialize for Acted {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// The first fire batch of a pass takes `batch_size / FIRST_BATCH_SHARE` claims (at least one).
const FIRST_BATCH_SHARE: i64 = 10;

/// Fire batches one loop runs at most in a pass: each batch settles every claim it takes, so
/// the bound is never reached unless a bug offers the same claims forever.
const MAX_BATCHES: usize = 100_000;

/// What one pass did.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct TickOutcome {
    /// The instant the pass acted as of.
    pub at: DateTime<Utc>,
    /// Claims whose timers were recomputed.
    pub synced: usize,
    /// Timer runs acted on, by timer and what it did (serialized as `timer: outcome`).
    pub fired: BTreeMap<Acted, usize>,
    /// Claims left alone because they changed after their timers were computed.
    pub changed_meanwhile: usize,
    /// Claims skipped, with the reason.
    pub problems: Vec<Problem>,
    /// Emails written to the outbox.
    pub emails_queued: usize,
    /// SLA breaches reported to operations in a digest email.
    pub sla_reported: usize,
    /// What delivering the outbox did (all zero with `--no-send`).
    pub delivery: DeliverOutcome,
}

impl Engine {
    /// The fingerprint of all calendars in force, as stored.
    pub fn fingerprint(&self) -> String {
        self.calendars.fingerprint()
    }

    /// What to write for each claim of a fire batch, decided off the task and on every core
    /// when the batch is large (pure, like [`Self::compute`]), with what each came to for the
    /// tally.
    async fn decide_all(
        self,
        inputs: Vec<crate::store::FireInput>,
        now: DateTime<Utc>,
    ) -> Vec<(String, crate::store::ClaimWrite, Decided)> {
        off_task_map(inputs, move |input: crate::store::FireInput| {
            let id = input.claim_id.clone();
            let _claim = tracing::info_span!("claim", claim_id = %id).entered();
            let (mut write, d) = decide(&self.calendars, self.settings, input, now);
            for e in &mut write.emails {
                e.template_version.clone_from(&self.template_version);
            }
            (id, write, d)
        })
        .await
    }

    /// Fires every timer due at `now`, batch by batch, until none is left; batches run side by
    /// side where the store allows (each takes due claims no other batch holds).
    pub async fn fire<S: TimerIndex + Repairs>(
        &self,
        store: &S,
        now: DateTime<Utc>,
        out: &mut TickOutcome,
    ) -> Result<(), StoreError> {
        let fingerprint = self.fingerprint();
        let out = std::sync::Mutex::new(out);
        // One small batch first: a pass with little or nothing due costs one batch's round
        // trips, and a pass with much due waits for a tenth of a batch before its batches run
        // side by side (a whole first batch alone left the other cores idle). A batch looks
        // past claims held elsewhere, so one that takes none means none is due that no one
        // else holds.
        let first = (self.batch_size / FIRST_BATCH_SHARE).max(1);
        if !self
            .fire_batches(store, now, &fingerprint, &out, 1, first)
            .await?
        {
            return Ok(());
        }
        let loops = (0..store.parallel_batches().max(1)).map(|_| {
            self.fire_batches(store, now, &fingerprint, &out, MAX_BATCHES, self.batch_size)
        });
        // Every loop runs to its end, also when another fails: a batch dropped halfway through
        // a `COPY` would leave its connection out of step with the server. The first error is
        // the pass's.
        futures_util::future::join_all(loops)
            .await
            .into_iter()
            .collect::<Result<Vec<_>, _>>()?;
        Ok(())
    }

    /// Up to `max` fire batches of up to `limit` claims one after another, until none is due
    /// that no one else holds; true when the last one handled claims (more may be due).
    async fn fire_batches<S: TimerIndex + Repairs>(
        &self,
        store: &S,
        now: DateTime<Utc>,
        fingerprint: &str,
        out: &std::sync::Mutex<&mut TickOutcome>,
        max: usize,
        limit: i64,
    ) -> Result<bool, StoreError> {
        let mut seen: std::collections::HashSet<String> = std::collections::HashSet::new();
        // Smaller than `limit` while a claim whose writes the database refuses is looked for.
        let mut size = limit;
        // Claims refused alone once: held when refused alone again.
        let mut refused_alone: std::collections::HashSet<String> = std::collections::HashSet::new();
        // Each batch settles every claim it takes (fired, recomputed or marked), so the number
        // of batches is bounded; the cap only guards against a bug looping forever.
        for _ in 0..max {
            if self.stop.is_cancelled() {
                tracing::info!("stopping: the pass ends after the batch in hand");
                return Ok(false);
            }
            let found: Handoff<Vec<(String, Decided, usize)>> = Handoff::default();
            let (engine, reported) = (self.clone(), found.clone());
            let handled = match store
                .fire_batch(now, size, fingerprint, move |inputs| async move {
                    // Off the task (batches beside this one go on meanwhile), owning what it uses.
                    let mut decided = Vec::with_capacity(inputs.len());
                    let writes = engine
                        .decide_all(inputs, now)
                        .await
                        .into_iter()
                        .map(|(id, write, d)| {
                            decided.push((id, d, write.emails.len()));
                            write
                        })
                        .collect();
                    reported.put(decided);
                    writes
                })
                .await
            {
                // A batch the database ended (a deadlock, which no two batches make: a batch
                // writes only when it holds every claim whose due rows it locked; but another
                // writer may lock in another order) wrote nothing, so it runs again.
                Err(e) if e.is_conflict() => {
                    tracing::warn!(error = %e, "fire batch rolled back by the database; running it again");
                    continue;
                }
                // One claim's writes, refused for what they hold, must not stop the claims
                // behind it: halve the batch until that claim is alone, then hold it.
                Err(StoreError::Refused { claims, source }) => {
                    match claims.as_slice() {
                        // Alone, once more in a transaction of its own before it is held (a
                        // refusal may pass: a trigger that looks at other rows).
                        [claim_id] if refused_alone.insert(claim_id.clone()) => {
                            tracing::warn!(claim_id = %claim_id, error = %source, "the database refused a claim's writes: trying it once more");
                        }
                        [claim_id] => {
                            let refusal = StoreError::Refused {
                                claims: vec![claim_id.clone()],
                                source,
                            };
                            if let Some(problem) =
                                refused::hold(store, claim_id, refusal, now).await?
                            {
                                out.lock()
                                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                                    .problems
                                    .push(problem);
                            }
                        }
                        _ => {
                            tracing::warn!(claims = claims.len(), error = %source, "the database refused a fire batch's writes: trying its claims in smaller batches");
                            size = refused::smaller(claims.len());
                        }
                    }
                    continue;
                }
                other => other?,
            };
            size = refused::larger(size, limit);
            let decided = found.take();
            if handled == 0 {
                return Ok(false);
            }
            // Every claim a batch takes is settled, so the index cannot offer the same claims
            // again with nothing to do; if it does (a due instant the evaluation disagrees
            // with), stop rather than spin.
            let idle_again = decided.iter().all(|(id, d, _)| {
                seen.contains(id)
                    && matches!(d, Decided::Acted(p) if p.effects.is_empty() && p.blocked.is_empty())
            });
            seen.extend(decided.iter().map(|(id, _, _)| id.clone()));
            if idle_again {
                tracing::warn!(
                    claims = handled,
                    "due timers that are not due when evaluated: recomputed, pass ends"
                );
                return Ok(false);
            }
            let mut out = out
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            for (claim_id, d, emails) in decided {
                out.emails_queued += emails;
                self.tally(&claim_id, d, &mut out);
            }
        }
        Ok(true)
    }

    fn tally(&self, claim_id: &str, d: Decided, out: &mut TickOutcome) {
        let _claim = tracing::info_span!("claim", claim_id = %claim_id).entered();
        match d {
            Decided::Acted(plan) => {
                for b in &plan.blocked {
                    let problem = b.error().to_string();
                    tracing::warn!(claim_id = %claim_id, timer = %b.timer, problem = %problem, "claim skipped: a due timer cannot act until its data is fixed");
                    out.problems.push(Problem {
                        claim_id: claim_id.to_owned(),
                        problem,
                    });
                }
                for e in &plan.effects {
                    let _timer = tracing::info_span!(
                        "timer",
                        timer = %e.timer,
                        deadline = %e.due.to_rfc3339()
                    )
                    .entered();
                    tracing::info!(
                        claim_id = %claim_id,
                        timer = %e.timer,
                        due = %e.due.to_rfc3339(),
                        action = %e.history.action,
                        outcome = %e.outcome.label(),
                        "timer fired"
                    );
                    *out.fired.entry(Acted::of(e.timer, &e.outcome)).or_default() += 1;
                }
            }
            Decided::Changed => {
                tracing::info!(claim_id = %claim_id, "claim changed since its timers were computed: left alone, recomputed");
                out.changed_meanwhile += 1;
            }
            Decided::Problem(problem) => {
                tracing::warn!(claim_id = %claim_id, problem = %problem, "claim skipped");
                out.problems.push(Problem {
                    claim_id: claim_id.to_owned(),
                    problem,
                });
            }
            Decided::Gone => {
                tracing::info!(claim_id = %claim_id, "claim deleted: its timers were dropped")
            }
        }
    }

    /// One pass at `now` without delivery: sync, then fire.
    pub async fn tick<S: TimerIndex + Repairs>(
        &self,
        store: &S,
        now: DateTime<Utc>,
    ) -> Result<TickOutcome, StoreError> {
        self.pass(store, None, now).await
    }

    /// One pass at `now`: sync, fire (both skipped when [`TimerIndex::has_work`] finds nothing),
    /// deliver the outbox with `mailer` (if any). A delivered consent email starts its claim's
    /// window, so the pass then runs again (at most twice more) to act on it.
    pub async fn pass<S: TimerIndex + Repairs>(
        &self,
        store: &S,
        mailer: Option<&Mailer>,
        now: DateTime<Utc>,
    ) -> Result<TickOutcome, StoreError> {
        let mut out = TickOutcome {
            at: now,
            ..TickOutcome::default()
        };
        for _round in 0..3 {
            if self.stop.is_cancelled() {
                break;
            }
            // Most passes of a running daemon find nothing: one probe instead of a sync page's
            // and a fire batch's transactions.
            if store.has_work(now, &self.fingerprint()).await? {
                self.sync(store, now, &mut out).await?;
                self.fire(store, now, &mut out).await?;
            }
            let Some(mailer) = mailer else { break };
            out.sla_reported += mailer.queue_sla_digest(store, now).await?;
            let d = mailer.deliver(store, now).await?;
            let consent_sent = d.consent_sent;
            out.delivery += d;
            if consent_sent == 0 {
                break;
            }
        }
        Ok(out)
    }
}
