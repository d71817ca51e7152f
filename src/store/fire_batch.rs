//! A fire batch ([`super::TimerIndex::fire_batch`]) written once for both backends: due
//! claims taken and locked, decided, and everything written in one transaction.

/// `async fn fire_batch` for [`super::timer_index::impl_timer_index!`], with its fragments.
macro_rules! fire_batch_method {
    (version = $v:literal, in_ids = $in:literal, skip_locked = $skip:literal,
     lock_claims = $lock:literal) => {
        async fn fire_batch<F, D>(
            &self,
            now: chrono::DateTime<chrono::Utc>,
            limit: i64,
            fingerprint: &str,
            decide: F,
        ) -> Result<usize, $crate::store::StoreError>
        where
            F: FnOnce(Vec<$crate::store::FireInput>) -> D + Send,
            D: std::future::Future<Output = Vec<$crate::store::ClaimWrite>> + Send,
        {
            use sqlx::Row;
            use $crate::store::bind::{At, Ids};
            use $crate::store::fire_batch::Taken;
            // Claims held elsewhere that this batch met in due order: looked past. A try that
            // met any commits at once, releasing every timer row it locked, and the next try
            // leaves them out; so a batch that writes holds each claim whose due rows it
            // locked, no two batches wait on each other, and claims the main system or a
            // replica keeps locked delay only themselves.
            let mut held: Vec<String> = Vec::new();
            let (mut tx, (ids, synced_version, mut claims, sync_rows)) = loop {
                let mut tx = self.begin_write().await?;
                let taken = async {
                    // Earliest first, in the due-timer index's order: the scan stops after
                    // `limit` rows (ordering ties by claim too made every batch read and sort
                    // all due timers: a backlog of n cost n²/limit rows).
                    let due = sqlx::query(concat!(
                        "SELECT claim_id, claim_version FROM cpor_timers WHERE state = ",
                        $crate::store::state::timer_state!(Pending),
                        " AND due_at <= $2 AND NOT EXISTS (SELECT 1 FROM cpor_claim_holds h ",
                        "WHERE h.claim_id = cpor_timers.claim_id) AND NOT (claim_id ",
                        $in,
                        ") ORDER BY due_at LIMIT $3",
                        $skip
                    ))
                    .bind(Ids(&held))
                    .bind(At(now))
                    .bind(limit)
                    .fetch_all(&mut *tx)
                    .await?;
                    if due.is_empty() {
                        return Ok(Taken::Nothing);
                    }
                    let mut synced_version: $crate::store::Map<String, i64> =
                        $crate::store::Map::default();
                    for r in &due {
                        let id: String = r.try_get("claim_id")?;
                        let v: i64 = r.try_get("claim_version")?;
                        synced_version
                            .entry(id)
                            .and_modify(|x| *x = (*x).min(v))
                            .or_insert(v);
                    }
                    let mut ids: Vec<String> = synced_version.keys().cloned().collect();
                    ids.sort();
                    // The claim row lock serialises everyone who writes a claim's timers (a
                    // claim seen first has none yet: its sync row is its lease); a claim
                    // another replica (or the main system) holds is left for a later batch.
                    let rows = sqlx::query(concat!(
                        $crate::store::claims::changed_select!($v),
                        "WHERE id ",
                        $in,
                        " ORDER BY id",
                        $lock
                    ))
                    .bind(Ids(&ids))
                    .fetch_all(&mut *tx)
                    .await?;
                    let sync_rows = $crate::store::row::sync_rows(&rows);
                    let mut claims: $crate::store::Map<String, $crate::store::ChangedClaim> =
                        $crate::store::row::changed_claims(&rows)?
                            .into_iter()
                            .map(|c| (c.id.clone(), c))
                            .collect();
                    let parsed = $crate::store::optional_columns::parsed(claims.values_mut());
                    self.customer_locales_on(&mut tx, parsed).await?;
                    // Of the claims not read, those that exist are held elsewhere (left for a
                    // later batch); the others are gone, and their timers are settled below.
                    let unread: Vec<&String> =
                        ids.iter().filter(|id| !claims.contains_key(*id)).collect();
                    if !unread.is_empty() {
                        let existing: $crate::store::Set<String> =
                            sqlx::query_scalar(concat!("SELECT id FROM claims WHERE id ", $in))
                                .bind(Ids(&unread))
                                .fetch_all(&mut *tx)
                                .await?
                                .into_iter()
                                .collect();
                        let held_here: Vec<String> = unread
                            .into_iter()
                            .filter(|id| existing.contains(*id))
                            .cloned()
                            .collect();
                        // The due rows locked above under a held claim would stay locked while
                        // this batch marks its own claims' rows: two batches doing that to
                        // each other wait in a circle (seen with three replicas in CI).
                        if !held_here.is_empty() {
                            return Ok(Taken::Held(held_here));
                        }
                    }
                    Ok(Taken::Claims((ids, synced_version, claims, sync_rows)))
                }
                .await;
                match taken {
                    Ok(Taken::Claims(taken)) => break (tx, taken),
                    Ok(Taken::Held(ids)) => {
                        tx.commit().await?;
                        held.extend(ids);
                    }
                    // None due (committed), or an error (rolled back).
                    other => return $crate::store::timer_index::finish(tx, other.map(|_| 0)).await,
                }
            };
            let handled = async {
                let (mut facts, mut stored) = Self::read_facts(
                    &mut tx,
                    &ids,
                    &$crate::store::work::timeline_ids(claims.values()),
                )
                .await?;
                stored.sync_rows = sync_rows;
                let inputs: Vec<$crate::store::FireInput> = ids
                    .iter()
                    .map(|id| {
                        let found = claims.remove(id);
                        $crate::store::FireInput {
                            claim_id: id.clone(),
                            dirty_gen: found.as_ref().map_or(0, |c| c.dirty_gen),
                            claim: found.map(|c| c.claim),
                            synced_version: synced_version[id],
                            facts: facts.remove(id).unwrap_or_default(),
                        }
                    })
                    .collect();
                let decided = decide(inputs).await;
                if decided.len() != ids.len() {
                    return Err($crate::store::StoreError::Corrupt(format!(
                        "a fire batch of {} claims was given {} writes",
                        ids.len(),
                        decided.len()
                    )));
                }
                let mut writes: Vec<(String, $crate::store::ClaimWrite)> =
                    ids.iter().cloned().zip(decided).collect();
                let changed: Vec<&str> = ids
                    .iter()
                    .zip(&writes)
                    .filter(|(_, (_, w))| w.status_change.is_some())
                    .map(|(id, _)| id.as_str())
                    .collect();
                // The change records the batch's own status changes leave (the claims
                // trigger, under the batch's locks: every later record of these claims).
                let before: i64 = if changed.is_empty() {
                    0
                } else {
                    sqlx::query_scalar("SELECT COALESCE(MAX(seq), 0) FROM cpor_claim_changes")
                        .fetch_one(&mut *tx)
                        .await?
                };
                Self::write_fired(&mut tx, &mut writes, fingerprint, now, stored).await?;
                if !changed.is_empty() {
                    // Their steps go to the timeline with the batch, which computed the
                    // claims' timers knowing them; a page would take such a step for one
                    // the timers missed.
                    let mut records = sqlx::query(concat!(
                        "DELETE FROM cpor_claim_changes WHERE claim_id ",
                        $in,
                        " AND seq > $2 ",
                        "RETURNING seq, claim_id, old_status, new_status, event_at, recorded_at"
                    ))
                    .bind(Ids(&changed))
                    .bind(before)
                    .fetch_all(&mut *tx)
                    .await?;
                    records.sort_by_key(|r| r.try_get::<i64, _>("seq").unwrap_or(i64::MAX));
                    let steps = $crate::store::work::status_records(&records);
                    if !steps.is_empty() {
                        Self::write_timeline(&mut tx, &steps).await?;
                    }
                }
                Ok::<_, $crate::store::StoreError>(ids.len())
            }
            .await;
            $crate::store::timer_index::finish(tx, handled)
                .await
                .map_err(|e| {
                    if e.is_refused() {
                        $crate::store::StoreError::Refused {
                            claims: ids,
                            source: Box::new(e),
                        }
                    } else {
                        e
                    }
                })
        }
    };
}
pub(crate) use fire_batch_method;

/// What one try of a fire batch took.
pub(crate) enum Taken<T> {
    /// No timer due that no one else holds.
    Nothing,
    /// Claims held elsewhere among those due: these, to be looked past by the next try.
    Held(Vec<String>),
    /// Claims to decide (in the try's transaction, which stays open).
    Claims(T),
}
