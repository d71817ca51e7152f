//! The sync half of a pass: change records taken page by page (pages side by side where the
//! store allows), each page's claims' timers computed on every core and saved with it; then
//! the claims marked for recomputation.

use std::sync::atomic::{AtomicI64, Ordering};

use chrono::{DateTime, Utc};

use super::cores::{Handoff, off_task_map};
use super::{Engine, FINGERPRINT_KEY, Problem, SYNC_PAGE, TickOutcome, sync_claim};
use crate::store::{ChangedClaim, NULL_ID, StoreError, TimerIndex};

/// What a run of sync pages did.
#[derive(Default)]
struct SyncTally {
    synced: usize,
    problems: Vec<Problem>,
    /// The last page was full: more records may wait.
    more: bool,
    /// Records the pages left in place (their claims held elsewhere).
    left: usize,
}

/// The problems among computed claims, each with whether its runs are held.
fn claim_problems(synced: &[crate::store::SyncedClaim]) -> Vec<(Problem, bool)> {
    synced
        .iter()
        .filter_map(|s| {
            let problem = s.problem.as_ref()?;
            let found = Problem {
                claim_id: s.claim_id.clone(),
                problem: problem.clone(),
            };
            Some((found, !s.held.is_empty()))
        })
        .collect()
}

/// Logs each claim's problem (`held`: its runs wait for an operator) and returns them.
fn report(problems: Vec<(Problem, bool)>) -> Vec<Problem> {
    problems
        .into_iter()
        .map(|(p, held)| {
            if held {
                tracing::warn!(claim_id = %p.claim_id, problem = %p.problem, "claim held: an obligation first seen too late to act on waits for an operator (`claim release`)");
            } else {
                tracing::warn!(claim_id = %p.claim_id, problem = %p.problem, "claim skipped: its timers cannot be computed");
            }
            p
        })
        .collect()
}

impl Engine {
    /// Recomputes the timers of every claim that changed (or must be recomputed) since the last pass.
    pub async fn sync<S: TimerIndex>(
        &self,
        store: &S,
        now: DateTime<Utc>,
        out: &mut TickOutcome,
    ) -> Result<(), StoreError> {
        let fingerprint = self.fingerprint();
        let calendars_changed =
            store.state_get(FINGERPRINT_KEY).await?.as_deref() != Some(&fingerprint);
        // Every insert or update of a claim left a change record (a trigger, in the writer's
        // own transaction); a page deletes its records when it saves its claims. Pages run
        // side by side where the store allows (each takes records no other page holds).
        // One page first: a pass with few changes costs one page's round trips. Each page takes
        // records after the last one any page of this pass took (the index entries of deleted
        // records stay until a vacuum: walking them from the start cost each page more).
        let taken = AtomicI64::new(i64::MIN);
        let first = self.sync_pages(store, &fingerprint, now, 1, &taken).await?;
        let more = first.more;
        let mut tallies = vec![first];
        if more {
            let loops = (0..store.parallel_batches().max(1))
                .map(|_| self.sync_pages(store, &fingerprint, now, usize::MAX, &taken));
            // Every loop runs to its end, also when another fails (see `fire`).
            let done = futures_util::future::join_all(loops).await;
            tallies.extend(done.into_iter().collect::<Result<Vec<_>, _>>()?);
            // Records left behind (a claim another page or transaction held) are taken once
            // more from the start, now that the pages beside them have committed.
            if tallies.iter().any(|t| t.left > 0) {
                let again = AtomicI64::new(i64::MIN);
                tallies.push(
                    self.sync_pages(store, &fingerprint, now, usize::MAX, &again)
                        .await?,
                );
            }
        }
        for tally in tallies {
            out.synced += tally.synced;
            out.problems.extend(tally.problems);
        }
        // A claim deleted after it was marked cannot be recomputed: its mark would only keep
        // every later pass busy.
        let forgotten = store.forget_gone_marks().await?;
        if forgotten > 0 {
            tracing::info!(
                claims = forgotten,
                "cleared the recomputation marks of deleted claims"
            );
        }
        let mut after_id = String::new();
        loop {
            let page = store
                .stale_claims(&fingerprint, calendars_changed, &after_id, SYNC_PAGE)
                .await?;
            let Some(last) = page.last() else { break };
            after_id = last.id.clone();
            self.save(store, page, &fingerprint, now, out).await?;
        }
        if calendars_changed {
            store.state_set(FINGERPRINT_KEY, &fingerprint, now).await?;
        }
        Ok(())
    }

    /// Up to `max` sync pages one after another, until no change record is left that no one
    /// else holds after the last one taken (`taken`, shared by the pass's pages).
    async fn sync_pages<S: TimerIndex>(
        &self,
        store: &S,
        fingerprint: &str,
        now: DateTime<Utc>,
        max: usize,
        taken: &AtomicI64,
    ) -> Result<SyncTally, StoreError> {
        let mut tally = SyncTally::default();
        for _ in 0..max {
            let found: Handoff<Vec<(Problem, bool)>> = Handoff::default();
            let (engine, reported) = (self.clone(), found.clone());
            let page = store
                .sync_changes(
                    SYNC_PAGE,
                    taken.load(Ordering::Relaxed),
                    fingerprint,
                    now,
                    move |claims, facts| async move {
                        // Off the task (pages beside this one go on meanwhile), owning what it uses.
                        let synced = engine.compute(claims, facts, now).await;
                        reported.put(claim_problems(&synced));
                        synced
                    },
                )
                .await?;
            taken.fetch_max(page.last_seq, Ordering::Relaxed);
            // A claim another page computed first is that page's to report.
            let mut problems = found.take();
            problems.retain(|(p, _)| !page.lost.contains(&p.claim_id));
            let mut problems = report(problems);
            if page.null_ids > 0 {
                let problem = format!(
                    "{} change(s) to a claims row whose id is NULL: such a row cannot be tracked; give it an id",
                    page.null_ids
                );
                tracing::warn!(claim_id = NULL_ID, problem = %problem, "claim skipped");
                problems.push(Problem {
                    claim_id: NULL_ID.to_owned(),
                    problem,
                });
            }
            tally.synced += page.synced;
            tally.left += page.left;
            tally.problems.extend(problems);
            if (page.records as i64) < SYNC_PAGE {
                return Ok(tally);
            }
        }
        tally.more = true;
        Ok(tally)
    }

    async fn save<S: TimerIndex>(
        &self,
        store: &S,
        page: Vec<ChangedClaim>,
        fingerprint: &str,
        now: DateTime<Utc>,
        out: &mut TickOutcome,
    ) -> Result<(), StoreError> {
        let ids: Vec<String> = page.iter().map(|c| c.id.clone()).collect();
        let facts = store.facts(&ids).await?;
        let synced = self.compute(page, facts, now).await;
        out.problems.extend(report(claim_problems(&synced)));
        out.synced += synced.len();
        store.save_sync(&synced, fingerprint, now).await
    }

    /// The timers of a page of claims, computed off the task and on every core when the page
    /// is large (the computation is pure; the order of the result is the page's).
    async fn compute(
        &self,
        page: Vec<ChangedClaim>,
        facts: std::collections::HashMap<String, crate::timers::ClaimFacts>,
        now: DateTime<Utc>,
    ) -> Vec<crate::store::SyncedClaim> {
        let (engine, none) = (self.clone(), crate::timers::ClaimFacts::default());
        off_task_map(page, move |c: ChangedClaim| {
            let f = facts.get(&c.id).unwrap_or(&none);
            sync_claim(&engine.calendars, engine.settings, &c, f, now)
        })
        .await
    }
}
