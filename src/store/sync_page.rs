//! A sync page ([`super::TimerIndex::sync_changes`]) written once for both backends:
//! change records taken, claims read (under their locks, or seen first under the leases of
//! `claim_first_sight`), their timers computed and saved, the records deleted.

/// The fewest claims new to the worker a sync page reads by an id range (fewer are read by
/// id: a range around a few claims inserted among many seen holds mostly others).
#[doc(hidden)]
pub const RANGE_READ_MIN: usize = 64;

/// Of the rows a range read returned (it stops at `limit`), keeps those of the `wanted` claims
/// never seen (the others of the range are not the page's; the page's seen before are read
/// under their locks), and returns every wanted id it met. The claim of the last row is not
/// met when the scan stopped at `limit`: its other rows (a claims table without a key may have
/// two with one id) may lie past it.
pub(crate) fn keep_new_in_range<R: super::read::ReadRow>(
    rows: &mut Vec<R>,
    wanted: &std::collections::HashSet<&str>,
    limit: usize,
) -> std::collections::HashSet<String> {
    let id = |r: &R| r.text("id").ok().flatten();
    let cut = rows.last().filter(|_| rows.len() >= limit).and_then(id);
    let mut met = std::collections::HashSet::new();
    rows.retain(|r| {
        let Some(id) = id(r).filter(|id| wanted.contains(id.as_str()) && cut.as_ref() != Some(id))
        else {
            return false;
        };
        let new = r.int("cpor_seen").is_ok_and(|n| n == 0);
        met.insert(id);
        new
    });
    met
}

/// `async fn sync_changes` for [`super::timer_index::impl_timer_index!`], with its fragments.
macro_rules! sync_changes_method {
    (version = $v:literal, in_ids = $in:literal, skip_locked = $skip:literal,
     lock_claims = $lock:literal) => {
        async fn sync_changes<F, C>(
            &self,
            limit: i64,
            after_seq: i64,
            fingerprint: &str,
            at: chrono::DateTime<chrono::Utc>,
            compute: F,
        ) -> Result<$crate::store::ChangePage, $crate::store::StoreError>
        where
            F: FnOnce(
                    Vec<$crate::store::ChangedClaim>,
                    std::collections::HashMap<String, $crate::timers::ClaimFacts>,
                ) -> C
                + Send,
            C: std::future::Future<Output = Vec<$crate::store::SyncedClaim>> + Send,
        {
            use sqlx::Row;
            use $crate::store::bind::Ids;
            let mut tx = self.begin_write().await?;
            let taken = async {
                // The records are the page's lease: locked until this transaction ends, so a
                // concurrent page (this process's or another replica's) takes the next ones.
                // After `after_seq`: the index entries of the records earlier pages deleted
                // stay until a vacuum, and a page that walked them all from the start spent
                // a tenth of a first pass's PostgreSQL time on it.
                let records = sqlx::query(concat!(
                    "SELECT seq, claim_id, old_status, new_status, event_at, recorded_at ",
                    "FROM cpor_claim_changes WHERE seq > $2 ORDER BY seq LIMIT $1",
                    $skip
                ))
                .bind(limit)
                .bind(after_seq)
                .fetch_all(&mut *tx)
                .await?;
                let mut page = $crate::store::ChangePage {
                    records: records.len(),
                    last_seq: after_seq,
                    ..Default::default()
                };
                if records.is_empty() {
                    return Ok(page);
                }
                let mut seqs: Vec<(i64, Option<String>)> = Vec::with_capacity(records.len());
                let mut inserts: Vec<bool> = Vec::with_capacity(records.len());
                let mut ids: Vec<String> = Vec::with_capacity(records.len());
                for r in &records {
                    let claim: Option<String> = r.try_get("claim_id")?;
                    inserts.push(r.try_get::<Option<String>, _>("old_status")?.is_none());
                    match &claim {
                        Some(id) => ids.push(id.clone()),
                        None => page.null_ids += 1,
                    }
                    seqs.push((r.try_get("seq")?, claim));
                }
                if let Some((seq, _)) = seqs.last() {
                    page.last_seq = *seq;
                }
                let mut statuses = $crate::store::work::status_records(&records);
                ids.sort();
                ids.dedup();
                // A claim the page has an insert's record of (no old status: the trigger's
                // INSERT, or the records the migration wrote for every claim) is most likely
                // new to the worker; the others most likely seen before. Each group is read
                // the way that finds it at the least cost, and what it does not find is read
                // the other way.
                let (likely_new, in_id_order): (Vec<&String>, bool) = {
                    let mut v: Vec<&String> = seqs
                        .iter()
                        .zip(&inserts)
                        .filter(|(_, insert)| **insert)
                        .filter_map(|((_, c), _)| c.as_ref())
                        .collect();
                    let ordered = $crate::store::work::mostly_ascending(&v);
                    v.sort();
                    v.dedup();
                    (v, ordered)
                };
                // Claims never seen (no sync row) are read without a lock (it would write to
                // every claim page: a first pass over a million claims wrote each page whole
                // to the WAL); the sync row `claim_first_sight` inserts before their timers
                // is their lease instead.
                const READ_NEW: &str = concat!(
                    $crate::store::claims::changed_select!($v),
                    "WHERE id ",
                    $in,
                    " AND s.claim_id IS NULL ORDER BY id"
                );
                // Many of them whose records came in id order (a first pass's page over ids
                // that grow as claims are inserted: the records the migration or the trigger
                // wrote) most often are every claim of their id range: one range scan, merged
                // with the sync rows' range, reads them where reading by id descends both
                // primary keys once per id (7 s of a first pass's statement time over a
                // million claims). Ids in no such order (random ones: a page's range would
                // hold mostly other claims) are read by id. The scan stops after twice as many
                // claims as it looks for; those it did not meet (past that point, gone, or
                // ordered elsewhere by the database's collation) are read by id, and so is
                // the claim of its last row, whose other rows (a claims table without a key
                // may have two with one id) may lie past it.
                const READ_RANGE: &str = concat!(
                    $crate::store::claims::changed_select!($v),
                    "AND s.claim_id >= $1 AND s.claim_id <= $2 ",
                    "WHERE id >= $1 AND id <= $2 ORDER BY id LIMIT $3"
                );
                let mut claims = Vec::new();
                let by_id: Vec<&String> = match (likely_new.first(), likely_new.last()) {
                    (Some(low), Some(high))
                        if in_id_order
                            && likely_new.len() >= $crate::store::sync_page::RANGE_READ_MIN =>
                    {
                        let wanted: std::collections::HashSet<&str> =
                            likely_new.iter().map(|id| id.as_str()).collect();
                        let limit = 2 * likely_new.len();
                        let mut rows = sqlx::query(READ_RANGE)
                            .bind(low.as_str())
                            .bind(high.as_str())
                            .bind(limit as i64)
                            .fetch_all(&mut *tx)
                            .await?;
                        let met =
                            $crate::store::sync_page::keep_new_in_range(&mut rows, &wanted, limit);
                        claims = $crate::store::row::changed_claims(&rows)?;
                        likely_new
                            .iter()
                            .filter(|id| !met.contains(id.as_str()))
                            .copied()
                            .collect()
                    }
                    _ => likely_new.clone(),
                };
                if !by_id.is_empty() {
                    let rows = sqlx::query(READ_NEW)
                        .bind(Ids(&by_id))
                        .fetch_all(&mut *tx)
                        .await?;
                    claims.extend($crate::store::row::changed_claims(&rows)?);
                }
                // Claims seen before are locked for the page: the timers saved below are
                // those of the version read. Found through their sync rows (a probe of that
                // index each: a first pass, every claim new, makes none).
                let first: std::collections::HashSet<&str> =
                    claims.iter().map(|c| c.id.as_str()).collect();
                let rest: Vec<&String> = ids
                    .iter()
                    .filter(|id| !first.contains(id.as_str()))
                    .collect();
                if !rest.is_empty() {
                    let rows = sqlx::query(concat!(
                        $crate::store::claims::changed_select!($v),
                        "WHERE s.claim_id ",
                        $in,
                        " AND NOT ",
                        $crate::store::claims::synced_current!(),
                        " ORDER BY id",
                        $lock
                    ))
                    .bind(Ids(&rest))
                    .fetch_all(&mut *tx)
                    .await?;
                    claims.extend($crate::store::row::changed_claims(&rows)?);
                }
                // Claims of update records the worker has never seen (updated before its first
                // pass, or before it saw their insert): read as new.
                let found: std::collections::HashSet<&str> =
                    claims.iter().map(|c| c.id.as_str()).collect();
                let likely_new: std::collections::HashSet<&String> =
                    likely_new.into_iter().collect();
                let unseen: Vec<&String> = ids
                    .iter()
                    .filter(|id| !found.contains(id.as_str()) && !likely_new.contains(id))
                    .collect();
                if !unseen.is_empty() {
                    let rows = sqlx::query(READ_NEW)
                        .bind(Ids(&unseen))
                        .fetch_all(&mut *tx)
                        .await?;
                    claims.extend($crate::store::row::changed_claims(&rows)?);
                }
                // Changed claims not read are up to date, gone, or held by another
                // transaction: the records of the last stay (below).
                let read: std::collections::HashSet<&str> =
                    claims.iter().map(|c| c.id.as_str()).collect();
                let unread: Vec<&String> = ids
                    .iter()
                    .filter(|id| !read.contains(id.as_str()))
                    .collect();
                // Each unread claim that exists is held elsewhere or current.
                let mut held_elsewhere = std::collections::HashSet::new();
                let mut current = std::collections::HashSet::new();
                if !unread.is_empty() {
                    let rows = sqlx::query(concat!(
                        "SELECT id, CAST(CASE WHEN EXISTS (SELECT 1 FROM cpor_claim_sync s ",
                        "WHERE s.claim_id = claims.id AND s.version = claims.version ",
                        "AND NOT s.dirty) THEN 1 ELSE 0 END AS BIGINT) AS cpor_current ",
                        "FROM claims WHERE id ",
                        $in
                    ))
                    .bind(Ids(&unread))
                    .fetch_all(&mut *tx)
                    .await?;
                    for r in &rows {
                        let id: String = r.try_get("id")?;
                        if r.try_get::<i64, _>("cpor_current")? == 1 {
                            current.insert(id);
                        } else {
                            held_elsewhere.insert(id);
                        }
                    }
                }
                let claim_ids: Vec<String> = claims.iter().map(|c| c.id.clone()).collect();
                let unsynced: $crate::store::Set<String> = claims
                    .iter()
                    .filter(|c| c.first_sight)
                    .map(|c| c.id.clone())
                    .collect();
                // The timeline as it was before this page, and the page's status changes
                // added in memory: reading them back after writing them cost a heap fetch
                // each (a probe that finds nothing is cheaper).
                // A claim seen first has no timers and no emails (they are written only after
                // its sync row, which stays when the claim is deleted): for those seen first
                // only the timeline is read.
                let seen: Vec<String> = claims
                    .iter()
                    .filter(|c| !c.first_sight)
                    .map(|c| c.id.clone())
                    .collect();
                let (mut facts, mut stored) = Self::read_facts(
                    &mut tx,
                    &seen,
                    &$crate::store::work::timeline_ids(claims.iter()),
                )
                .await?;
                stored.unsynced = unsynced;
                let computed: std::collections::HashSet<&str> =
                    claim_ids.iter().map(String::as_str).collect();
                $crate::store::row::add_status_records(&mut facts, &computed, &statuses);
                let asked = claims.len();
                let mut synced = compute(claims, facts).await;
                if synced.len() != asked {
                    return Err($crate::store::StoreError::Corrupt(format!(
                        "a sync page of {} claims was given {} results",
                        asked,
                        synced.len()
                    )));
                }
                synced.sort_by(|a, b| a.claim_id.cmp(&b.claim_id));
                // A claim seen first by another page meanwhile is that page's: this one
                // leaves it as if held elsewhere.
                let lost =
                    Self::claim_first_sight(&mut tx, &synced, &mut stored, fingerprint, at).await?;
                synced.retain(|s| !lost.contains(&s.claim_id));
                page.lost = lost.iter().cloned().collect();
                page.lost.sort();
                held_elsewhere.extend(lost);
                // The records of claims held elsewhere stay for a later page (their status
                // changes are kept then): a holder that rolls back leaves nothing else
                // saying the claim changed.
                statuses.retain(|st| !held_elsewhere.contains(&st.claim_id));
                if !statuses.is_empty() {
                    Self::write_timeline(&mut tx, &statuses).await?;
                }
                // A claim whose timers are those of its current version, with a status
                // change in this page: they were computed without that step (its record
                // fell in a later page than another of the claim's, or another transaction
                // computed the claim meanwhile), so the claim is marked for recomputation.
                // (A fire batch's own status changes never come here: it writes them.)
                let mut unseen: Vec<&str> = statuses
                    .iter()
                    .map(|st| st.claim_id.as_str())
                    .filter(|id| current.contains(*id))
                    .collect();
                unseen.sort_unstable();
                unseen.dedup();
                // A row at a time, in id order: a fire batch writes its claims' rows in that
                // order too (one statement's plan could take them in heap order and deadlock).
                // Rare: only claims whose records fell in different pages come here.
                for id in unseen {
                    sqlx::query(
                        "UPDATE cpor_claim_sync SET dirty = TRUE, dirty_gen = dirty_gen + 1 \
                         WHERE claim_id = $1",
                    )
                    .bind(id)
                    .execute(&mut *tx)
                    .await?;
                }
                Self::write_sync(&mut tx, &synced, fingerprint, at, Some(stored)).await?;
                let done: Vec<i64> = seqs
                    .iter()
                    .filter(|(_, c)| c.as_ref().is_none_or(|c| !held_elsewhere.contains(c)))
                    .map(|(seq, _)| *seq)
                    .collect();
                sqlx::query(concat!("DELETE FROM cpor_claim_changes WHERE seq ", $in))
                    .bind(Ids(&done))
                    .execute(&mut *tx)
                    .await?;
                page.synced = synced.len();
                page.left = seqs.len() - done.len();
                Ok::<_, $crate::store::StoreError>(page)
            }
            .await;
            $crate::store::timer_index::finish(tx, taken).await
        }
    };
}
pub(crate) use sync_changes_method;
