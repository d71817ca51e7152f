//! Crash test: the real `tick` binary, delivering over SMTP to a real sink, is killed with SIGKILL
//! at seeded random moments while it works through thousands of due timers on PostgreSQL, and is
//! restarted each time; after a final clean pass every due timer has fired exactly once, every
//! action is in the history once, every email reached the server (at least once, always under
//! its one Message-ID), no claim was forwarded to incentive evaluation or rejected twice.
//!
//! The seed is fixed and printed; `CPOR_CRASH_SEED=N` replays another sequence and
//! `CPOR_CRASH_KILLS_PER_WAVE=N` changes the number of kills per wave (6 waves).

use std::collections::BTreeMap;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use cpor_worker::store::{AnyStore, Store};

use crate::harness::{self, smtp::SmtpSink};

/// The first wave's instant (a Monday 12:00 UTC); wave k acts k days later, and each restart
/// within a wave acts 20 s after the one before (so leases of killed runs expire by the next wave).
const AT: &str = "2026-02-02T12:00:00Z";
/// Waves of fresh due work; each wave gets its share of the kills.
const WAVES: usize = 6;
/// Per wave: partner silent for 14 days, so the response deadline and its reminder have passed.
const AUTO_REJECT: usize = 170;
/// Per wave: rejected by a reviewer an hour before: one rejection notice each.
const REVIEWER_REJECTED: usize = 115;
/// Per wave: approved an hour before: consent email, then the partner approval notice.
const APPROVED: usize = 115;
/// Per wave: consent email sent 8 days before (in the setup): the window closed, forward.
const WINDOW: usize = 100;
const DEFAULT_SEED: u64 = 0x5eed_c0de_2026_0202;
/// SIGKILLs per wave: 6 waves x 6 = 36 kills (runs that finish first do not count).
const DEFAULT_KILLS_PER_WAVE: usize = 6;
/// How long one uninterrupted pass over a wave takes in a debug build (measured: about 1 s for
/// a wave's 500 claims, 955 timer runs and 615 emails). A kill delay is drawn uniformly from 0
/// to the start-up time plus this times the share of the wave's work still left, so kills land
/// over the whole pass the restarted process has in front of it: sync, fire batches, delivery.
const WAVE_PASS_MS: f64 = 1200.0;
/// Process start, settings, connection and the migration check.
const STARTUP_MS: f64 = 150.0;

/// xorshift64*: a few lines, no dependency, the same sequence for the same seed everywhere.
struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
}

async fn scalar(store: &AnyStore, sql: &str) -> i64 {
    let AnyStore::Postgres(pg) = store else {
        unreachable!("PostgreSQL only")
    };
    sqlx::query_scalar(sqlx::AssertSqlSafe(sql.to_owned()))
        .fetch_one(pg.pool())
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
}

async fn pairs(store: &AnyStore, sql: &str) -> BTreeMap<String, i64> {
    let AnyStore::Postgres(pg) = store else {
        unreachable!("PostgreSQL only")
    };
    sqlx::query_as::<_, (String, i64)>(sqlx::AssertSqlSafe(sql.to_owned()))
        .fetch_all(pg.pool())
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
        .into_iter()
        .collect()
}

async fn strings(store: &AnyStore, sql: &str) -> Vec<String> {
    let AnyStore::Postgres(pg) = store else {
        unreachable!("PostgreSQL only")
    };
    sqlx::query_scalar(sqlx::AssertSqlSafe(sql.to_owned()))
        .fetch_all(pg.pool())
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
}

/// `tick --at at` as a child process with only the given settings.
fn tick_command(dir: &std::path::Path, db: &str, smtp: &str, at: &str) -> Command {
    let mut cmd = Command::new(harness::bin());
    cmd.current_dir(dir).args(["tick", "--at", at, "--json"]);
    for (k, _) in std::env::vars() {
        if k.starts_with("CPOR_") || k == "RUST_LOG" {
            cmd.env_remove(k);
        }
    }
    cmd.env("CPOR_DATABASE_URL", db)
        .env("CPOR_SMTP_URL", smtp)
        .env(
            "CPOR_CONSENT_SECRET",
            "crash-test-consent-secret-0123456789",
        );
    cmd
}

fn clean_tick(dir: &std::path::Path, db: &str, smtp: &str, at: &str) -> serde_json::Value {
    let out = tick_command(dir, db, smtp, at)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "tick at {at}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

fn message_id(raw: &[u8]) -> String {
    let text = String::from_utf8_lossy(raw);
    text.lines()
        .take_while(|l| !l.is_empty())
        .filter(|l| l.to_ascii_lowercase().starts_with("message-id:"))
        .map(|l| l["message-id:".len()..].trim().to_owned())
        .last()
        .expect("every message has a Message-ID")
}

fn insert(prefix: &str, n: usize, status: &str, cols: &str, vals: &str, updated: &str) -> String {
    format!(
        "INSERT INTO claims (id, status, partner_name, partner_email, customer_name, customer_email, \
         products, country, locale, updated_at, version, {cols}) \
         SELECT '{prefix}-' || lpad(g::text, 5, '0'), '{status}', 'Partner ' || g, \
         'p' || g || '@{prefix}.partner.example', 'Customer ' || g, 'c' || g || '@{prefix}.customer.example', \
         'Power BI Pro', 'SE', CASE WHEN g % 2 = 0 THEN 'sv-SE' ELSE 'en' END, \
         '{updated}', 1, {vals} FROM generate_series(1, {n}) g"
    )
}

fn iso(t: DateTime<Utc>) -> String {
    t.to_rfc3339()
}

/// Timer runs fired and emails queued by one wave.
const WAVE_FIRED: usize = 3 * AUTO_REJECT + REVIEWER_REJECTED + 2 * APPROVED + WINDOW;
const WAVE_EMAILS: usize = AUTO_REJECT + REVIEWER_REJECTED + 2 * APPROVED + WINDOW;
/// Timer runs fired and emails queued by the setup (consent and approval notice per window claim).
const SETUP_FIRED: usize = 2 * WINDOW * WAVES;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_at_random_moments_never_fires_twice_or_loses_a_timer() {
    let Some(db) = harness::postgres_unmigrated("crash_sigkill").await else {
        return;
    };
    let Some(sink) = SmtpSink::start("crash_sigkill", &[]) else {
        return;
    };
    let seed = std::env::var("CPOR_CRASH_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(DEFAULT_SEED);
    let kills_per_wave = std::env::var("CPOR_CRASH_KILLS_PER_WAVE")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(DEFAULT_KILLS_PER_WAVE);
    eprintln!(
        "crash test: seed {seed} (CPOR_CRASH_SEED={seed} replays it), {WAVES} waves x {kills_per_wave} kill attempts"
    );
    let store = &db.store;
    store.migrate().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let smtp = sink.url().to_string();
    let started = Instant::now();
    let at0: DateTime<Utc> = AT.parse().unwrap();
    let day = chrono::Duration::days(1);
    let hour = chrono::Duration::hours(1);

    // Setup, cleanly: per wave, claims whose consent email went out 8 days before the wave, so
    // that their 7-day window closes between the previous wave and this one.
    for k in 0..WAVES {
        let approved = at0 + day * k as i32 - day * 8;
        harness::exec(
            store,
            &insert(
                &format!("w{k}"),
                WINDOW,
                "approved",
                "approved_at",
                &format!("'{}'", iso(approved)),
                &iso(approved),
            ),
        )
        .await;
        let setup = clean_tick(dir.path(), &db.url, &smtp, &iso(approved + hour));
        assert_eq!(
            setup["delivery"]["sent"].as_u64(),
            Some(2 * WINDOW as u64),
            "{setup}"
        );
    }
    let setup_secs = started.elapsed().as_secs_f64();

    let mut rng = XorShift(seed.max(1));
    let (mut killed, mut exited) = (0, 0);
    let mut kill_log: Vec<(u128, f64)> = Vec::new();
    let crash_started = Instant::now();
    for k in 0..WAVES {
        let at = at0 + day * k as i32;
        let before = iso(at - hour);
        let statements = [
            insert(
                &format!("a{k}"),
                AUTO_REJECT,
                "partner_action_required",
                "info_requested_at, info_request_reason",
                &format!("'{}', 'missing_products'", iso(at - day * 14)),
                &before,
            ),
            insert(
                &format!("r{k}"),
                REVIEWER_REJECTED,
                "rejected",
                "rejected_at, rejection_reason",
                &format!("'{before}', 'insufficient_poe'"),
                &before,
            ),
            insert(
                &format!("p{k}"),
                APPROVED,
                "approved",
                "approved_at",
                &format!("'{before}'"),
                &before,
            ),
        ];
        for sql in &statements {
            harness::exec(store, sql).await;
        }
        let fired_target = (SETUP_FIRED + (k + 1) * WAVE_FIRED) as i64;
        let emails_target = (2 * WINDOW * WAVES + (k + 1) * WAVE_EMAILS) as i64;
        let (mut wave_kills, mut run) = (0, 0);
        while wave_kills < kills_per_wave && run < 3 * kills_per_wave {
            // Work this run can still do: timers to fire, emails to queue, emails to send (those
            // leased by a killed run wait for their lease to expire, in the next wave).
            let fired = scalar(
                store,
                "SELECT count(*) FROM cpor_timers WHERE state = 'fired'",
            )
            .await;
            let queued = scalar(store, "SELECT count(*) FROM cpor_outbox").await;
            let pending = scalar(
                store,
                "SELECT count(*) FROM cpor_outbox WHERE state = 'pending'",
            )
            .await;
            let left = ((fired_target - fired) + (emails_target - queued) + pending).max(0) as f64
                / (WAVE_FIRED + 2 * WAVE_EMAILS) as f64;
            let span = STARTUP_MS + WAVE_PASS_MS * left.min(1.0);
            let delay = Duration::from_millis(rng.next() % (span as u64).max(1));
            let when = iso(at + chrono::Duration::seconds(20 * run as i64));
            run += 1;
            let mut child = tick_command(dir.path(), &db.url, &smtp, &when)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap();
            let t0 = Instant::now();
            while t0.elapsed() < delay {
                if child.try_wait().unwrap().is_some() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(2));
            }
            let finished = child.try_wait().unwrap();
            if finished.is_some() {
                exited += 1;
            } else {
                child.kill().unwrap(); // SIGKILL
                child.wait().unwrap();
                killed += 1;
                wave_kills += 1;
                kill_log.push((delay.as_millis(), left));
            }
            let sent = scalar(
                store,
                "SELECT count(*) FROM cpor_outbox WHERE state = 'sent'",
            )
            .await;
            eprintln!(
                "wave {k} run {run:>2}: {} after {:>4} ms (work left before: {:>5.1}%); fired {fired:>5}/{fired_target}, queued {queued:>5}/{emails_target}, sent after {sent:>5}, at sink {:>5}",
                if finished.is_some() {
                    "exited "
                } else {
                    "SIGKILL"
                },
                delay.as_millis(),
                left * 100.0,
                sink.messages().len()
            );
        }
    }
    let crash_secs = crash_started.elapsed().as_secs_f64();

    // A clean pass after the leases (5 minutes) of emails taken by killed runs have expired.
    let end = iso(at0 + day * (WAVES as i32 - 1) + hour);
    let t_last = Instant::now();
    let last = clean_tick(dir.path(), &db.url, &smtp, &end);
    eprintln!(
        "final clean pass ({:.2} s): {last}",
        t_last.elapsed().as_secs_f64()
    );
    let again = clean_tick(dir.path(), &db.url, &smtp, &end);
    assert!(
        again["fired"].as_object().unwrap().is_empty(),
        "nothing left: {again}"
    );
    assert_eq!(again["delivery"]["sent"], 0, "{again}");

    // Every due timer fired exactly once, and nothing due is left pending.
    assert_eq!(
        scalar(
            store,
            &format!(
                "SELECT count(*) FROM cpor_timers WHERE state = 'pending' AND due_at <= '{end}'"
            )
        )
        .await,
        0,
        "a due timer never fired"
    );
    let fired = pairs(
        store,
        "SELECT timer || ': ' || outcome, count(*) FROM cpor_timers WHERE state = 'fired' GROUP BY 1",
    )
    .await;
    let expected_fired: BTreeMap<String, i64> = [
        ("consent_notification: fired", WINDOW + APPROVED),
        ("partner_approval_notice: fired", WINDOW + APPROVED),
        ("consent_window_close: fired", WINDOW),
        ("partner_response_deadline: fired", AUTO_REJECT),
        (
            "partner_response_reminder: skipped: the response deadline passed before the reminder could be sent",
            AUTO_REJECT,
        ),
        (
            "rejection_notice: fired: sent with partner_response_deadline",
            AUTO_REJECT,
        ),
        ("rejection_notice: fired", REVIEWER_REJECTED),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), (v * WAVES) as i64))
    .collect();
    assert_eq!(fired, expected_fired);

    // One history row per action; the expected actions, each as often as there are claims for it.
    assert_eq!(
        scalar(
            store,
            "SELECT count(*) FROM (SELECT claim_id, action FROM claim_history GROUP BY 1, 2 HAVING count(*) > 1) d"
        )
        .await,
        0,
        "an action was written twice for one claim"
    );
    let actions = pairs(
        store,
        "SELECT action, count(*) FROM claim_history GROUP BY 1",
    )
    .await;
    let expected_actions: BTreeMap<String, i64> = [
        ("consent_requested", WINDOW + APPROVED),
        ("approval_notice_sent", WINDOW + APPROVED),
        ("forwarded_to_incentive_evaluation", WINDOW),
        ("auto_rejected", AUTO_REJECT),
        ("reminder_skipped", AUTO_REJECT),
        ("rejection_notice_sent", REVIEWER_REJECTED),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), (v * WAVES) as i64))
    .collect();
    assert_eq!(actions, expected_actions);

    // No claim rejected twice: each auto-rejected claim was written once (version 1 -> 2), and
    // no other claim was changed.
    assert_eq!(
        scalar(
            store,
            "SELECT count(*) FROM claims WHERE id LIKE 'a%' AND status = 'rejected' \
             AND rejection_reason = 'no_partner_response' AND version = 2"
        )
        .await,
        (AUTO_REJECT * WAVES) as i64
    );
    assert_eq!(
        scalar(
            store,
            "SELECT count(*) FROM claims WHERE id NOT LIKE 'a%' AND version <> 1"
        )
        .await,
        0,
        "only the auto-rejections change claims"
    );

    // Incentive evaluation: exactly the consent-window claims, each once.
    assert_eq!(
        scalar(store, "SELECT count(*) FROM incentive_evaluation_requests").await,
        (WINDOW * WAVES) as i64
    );
    assert_eq!(
        scalar(
            store,
            "SELECT count(DISTINCT claim_id) FROM incentive_evaluation_requests WHERE claim_id LIKE 'w%'"
        )
        .await,
        (WINDOW * WAVES) as i64
    );

    // Emails: one outbox row per (claim, timer run, email), all sent; never two Message-IDs for one.
    let expected_emails = (3 * WINDOW + AUTO_REJECT + REVIEWER_REJECTED + 2 * APPROVED) * WAVES;
    assert_eq!(
        scalar(store, "SELECT count(*) FROM cpor_outbox").await,
        expected_emails as i64
    );
    assert_eq!(
        scalar(
            store,
            "SELECT count(*) FROM (SELECT claim_id, timer, started_at, email FROM cpor_outbox \
             GROUP BY 1, 2, 3, 4 HAVING count(DISTINCT message_id) > 1) d"
        )
        .await,
        0,
        "two Message-IDs for one email"
    );
    assert_eq!(
        pairs(store, "SELECT state, count(*) FROM cpor_outbox GROUP BY 1").await,
        BTreeMap::from([("sent".to_owned(), expected_emails as i64)])
    );
    let outbox: std::collections::BTreeSet<String> =
        strings(store, "SELECT message_id FROM cpor_outbox")
            .await
            .into_iter()
            .collect();
    let mut at_sink: BTreeMap<String, usize> = BTreeMap::new();
    for (raw, _) in sink.messages() {
        *at_sink.entry(message_id(&raw)).or_default() += 1;
    }
    let unknown: Vec<&String> = at_sink.keys().filter(|id| !outbox.contains(*id)).collect();
    assert!(
        unknown.is_empty(),
        "emails the outbox does not have: {unknown:?}"
    );
    let missing: Vec<&String> = outbox
        .iter()
        .filter(|id| !at_sink.contains_key(*id))
        .collect();
    assert!(missing.is_empty(), "never arrived: {missing:?}");
    let duplicates: usize = at_sink.values().map(|n| n - 1).sum();
    let duplicated_ids = at_sink.values().filter(|n| **n > 1).count();
    let mid_work = kill_log.iter().filter(|(_, left)| *left > 0.0).count();
    let median_delay = {
        let mut d: Vec<u128> = kill_log.iter().map(|(ms, _)| *ms).collect();
        d.sort();
        d.get(d.len() / 2).copied().unwrap_or(0)
    };
    eprintln!(
        "crash test summary: seed {seed}; {} runs: {killed} SIGKILLed ({mid_work} with work left, median delay {median_delay} ms), \
         {exited} finished before their kill; {} claims, {} timer runs fired, {expected_emails} emails, \
         {} messages received, {duplicates} duplicate deliveries of {duplicated_ids} Message-IDs \
         (same id, at-least-once); setup {setup_secs:.1} s, crash runs {crash_secs:.1} s, total {:.1} s",
        killed + exited,
        (AUTO_REJECT + REVIEWER_REJECTED + APPROVED + WINDOW) * WAVES,
        fired.values().sum::<i64>(),
        at_sink.values().sum::<usize>(),
        started.elapsed().as_secs_f64()
    );
    assert!(
        killed >= 30 || kills_per_wave < DEFAULT_KILLS_PER_WAVE,
        "only {killed} runs were killed; at least 30 must be"
    );
    assert!(
        mid_work >= killed / 2,
        "most kills must land while there is work left ({mid_work} of {killed})"
    );
}
