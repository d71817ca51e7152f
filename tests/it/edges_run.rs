//! `run` as a new user meets it (issue 17): one pass per cron instant and never early, no
//! scheduler chatter, a pass line that says why more claims were recomputed than exist, a
//! second `run --demo` that says it loaded nothing, and `/report` refusing a bad horizon.

use std::process::{Command, Stdio};
use std::time::Duration;

use chrono::{DateTime, Timelike, Utc};

use crate::cli_run::{http_get, start_daemon, stop, wait_for};
use crate::harness::{self, smtp::free_port};

/// The instant of every "pass done" line of a JSON log.
fn pass_instants(log: &str) -> Vec<DateTime<Utc>> {
    log.lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| {
            v["message"]
                .as_str()
                .is_some_and(|m| m.starts_with("pass done"))
        })
        .map(|v| {
            // The pass's instant; the line's own time for a build that does not log it.
            let at = v["at"].as_str().or(v["timestamp"].as_str());
            at.expect("at or timestamp field")
                .parse()
                .expect("RFC 3339")
        })
        .collect()
}

#[test]
fn one_pass_per_cron_instant_never_before_it() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    std::fs::write(
        dir.path().join("s.toml"),
        format!("[schedule]\ncron = \"*/2 * * * * *\"\n[http]\nlisten = \"127.0.0.1:{port}\"\n"),
    )
    .unwrap();
    let mut cmd = Command::new(harness::bin());
    cmd.current_dir(dir.path())
        .args(["run", "--config", "s.toml", "--no-initial-pass"])
        .env("CPOR_LOG_FORMAT", "json")
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let child = cmd.spawn().unwrap();
    assert!(
        wait_for(20, || http_get(port, "/healthz").is_some()),
        "no /healthz"
    );
    std::thread::sleep(Duration::from_millis(7_300));
    let (code, log) = stop(child);
    assert_eq!(code, Some(0), "{log}");
    let passes = pass_instants(&log);
    assert!((3..=5).contains(&passes.len()), "{passes:?}\n{log}");
    for (i, at) in passes.iter().enumerate() {
        // Each pass starts just after an even second: not half a second before it.
        assert!(
            at.second() % 2 == 0 && at.nanosecond() < 400_000_000,
            "pass {i} at {at}: not just after a */2 instant\n{passes:?}"
        );
        if i > 0 {
            let gap = *at - passes[i - 1];
            assert!(
                gap > chrono::Duration::milliseconds(1_500),
                "two passes for one instant: {passes:?}"
            );
        }
    }
}

#[test]
fn run_demo_is_quiet_explains_recomputed_and_a_second_run_says_it_loaded_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let (child, port) = start_daemon(dir.path(), &["--demo"], &[]);
    assert!(
        wait_for(20, || http_get(port, "/healthz").is_some()),
        "no /healthz"
    );
    assert!(
        wait_for(10, || http_get(port, "/metrics").is_some_and(
            |(_, b)| b.contains("cpor_passes_total{result=\"ok\"}")
        )),
        "no pass"
    );
    let (code, log) = stop(child);
    assert_eq!(code, Some(0), "{log}");
    assert!(log.contains("loaded 17 demo claims"), "{log}");
    assert!(!log.contains("tokio_cron_scheduler"), "{log}");
    assert!(!log.contains("Job creator"), "{log}");
    assert!(!log.contains('\u{1b}'), "no colour codes into a pipe");
    let first = log
        .lines()
        .find(|l| l.contains("pass done"))
        .expect("a pass line");
    assert!(
        first.contains("recomputed=") && first.contains("consent window starts at delivery"),
        "{first}"
    );

    let (child, port) = start_daemon(dir.path(), &["--demo"], &[]);
    assert!(
        wait_for(20, || http_get(port, "/healthz").is_some()),
        "no /healthz"
    );
    let (code, log) = stop(child);
    assert_eq!(code, Some(0), "{log}");
    assert!(
        log.contains("--demo: loaded nothing") && log.contains("already has 17 claim"),
        "{log}"
    );
}

#[test]
fn the_report_endpoint_refuses_a_multi_byte_horizon() {
    let dir = tempfile::tempdir().unwrap();
    let (child, port) = start_daemon(dir.path(), &["--demo"], &[]);
    assert!(
        wait_for(20, || http_get(port, "/healthz").is_some()),
        "no /healthz"
    );
    for bad in ["1%C3%A9", "%E2%82%AC", "7d%E2%82%AC"] {
        let (status, body) = http_get(port, &format!("/report?horizon={bad}")).expect("an answer");
        assert_eq!(status, 400, "{bad}: {body}");
        assert!(body.contains("horizon"), "{body}");
    }
    assert_eq!(
        http_get(port, "/report?horizon=36h").map(|(s, _)| s),
        Some(200)
    );
    let (code, log) = stop(child);
    assert_eq!(code, Some(0), "{log}");
    assert!(!log.contains("panicked"), "{log}");
}
