//! `run` as an operator starts it: passes on a schedule, HTTP endpoints, a clean stop on SIGTERM.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::harness::{self, smtp::free_port};

/// `GET path` on 127.0.0.1:port: (status, body), or None if nothing answers.
pub fn http_get(port: u16, path: &str) -> Option<(u16, String)> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut buf = String::new();
    s.read_to_string(&mut buf).ok()?;
    let status = buf.split_whitespace().nth(1)?.parse().ok()?;
    let body = buf
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    Some((status, body))
}

/// Waits until `f` is true or `secs` pass.
pub fn wait_for(secs: u64, mut f: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(secs) {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    false
}

/// Starts `run` in `dir` with passes every second and HTTP on a free port.
pub fn start_daemon(dir: &std::path::Path, extra: &[&str], env: &[(&str, &str)]) -> (Child, u16) {
    let port = free_port();
    std::fs::write(
        dir.join("settings.toml"),
        format!("[schedule]\ncron = \"* * * * * *\"\n[http]\nlisten = \"127.0.0.1:{port}\"\n"),
    )
    .unwrap();
    let mut cmd = Command::new(harness::bin());
    cmd.current_dir(dir)
        .args(["run", "--config", "settings.toml"])
        .args(extra)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, _) in std::env::vars() {
        if k.starts_with("CPOR_") {
            cmd.env_remove(k);
        }
    }
    cmd.envs(env.iter().copied());
    let child = cmd.spawn().expect("start run");
    (child, port)
}

/// Sends SIGTERM and waits for the exit status.
pub fn stop(mut child: Child) -> (Option<i32>, String) {
    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    let start = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            let mut err = String::new();
            if let Some(mut e) = child.stderr.take() {
                e.read_to_string(&mut err).ok();
            }
            return (status.code(), err);
        }
        if start.elapsed() > Duration::from_secs(15) {
            child.kill().ok();
            panic!("run did not stop within 15 s of SIGTERM");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn run_serves_health_readiness_and_metrics_and_stops_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let (child, port) = start_daemon(dir.path(), &["--demo"], &[]);
    assert!(
        wait_for(20, || http_get(port, "/healthz")
            .is_some_and(|(s, _)| s == 200)),
        "no /healthz"
    );
    assert_eq!(http_get(port, "/readyz").map(|(s, _)| s), Some(200));
    // A scheduled pass (every second) follows the initial one.
    assert!(
        wait_for(10, || http_get(port, "/metrics").is_some_and(|(_, b)| b
            .contains("cpor_passes_total{result=\"ok\"} 2")
            || b.contains("cpor_passes_total{result=\"ok\"} 3"))),
        "no second pass: {:?}",
        http_get(port, "/metrics")
    );
    let (_, metrics) = http_get(port, "/metrics").unwrap();
    for name in [
        "cpor_timers_fired_total{",
        "cpor_emails_sent_total",
        "cpor_pass_duration_seconds_bucket",
        "cpor_last_successful_pass_timestamp_seconds",
        "cpor_overdue_timers 0",
    ] {
        assert!(metrics.contains(name), "{name} missing:\n{metrics}");
    }
    let emails = std::fs::read_dir(dir.path().join("outbox"))
        .unwrap()
        .count();
    assert!(emails >= 8, "{emails}");
    let (code, err) = stop(child);
    assert_eq!(code, Some(0), "{err}");
    assert!(err.contains("stopped"), "{err}");
    assert_eq!(
        std::fs::read_dir(dir.path().join("outbox"))
            .unwrap()
            .count(),
        emails,
        "nothing twice"
    );
}

#[test]
fn a_bad_cron_expression_stops_start_up_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("bad.toml"),
        "[schedule]\ncron = \"61 * * * * *\"\n",
    )
    .unwrap();
    let out = harness::run_in(dir.path(), &["run", "--config", "bad.toml"], &[]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("schedule.cron") && err.contains("61 * * * * *"),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readiness_follows_the_database_and_passes_resume_after_it_returns() {
    if harness::postgres::skipped("readiness_follows_the_database") {
        return;
    }
    let cluster = harness::pgcluster::Cluster::start(false).expect("own PostgreSQL cluster");
    let url = format!("postgres://postgres@127.0.0.1:{}/postgres", cluster.port);
    let dir = tempfile::tempdir().unwrap();
    let (child, port) = start_daemon(dir.path(), &["--demo"], &[("CPOR_DATABASE_URL", &url)]);
    assert!(
        wait_for(20, || http_get(port, "/readyz")
            .is_some_and(|(s, _)| s == 200)),
        "never ready"
    );

    cluster.stop().expect("stop PostgreSQL");
    assert!(
        wait_for(15, || http_get(port, "/readyz")
            .is_some_and(|(s, _)| s == 503)),
        "still ready with the database stopped"
    );
    assert_eq!(
        http_get(port, "/healthz").map(|(s, _)| s),
        Some(200),
        "alive all the same"
    );

    cluster.restart().expect("start PostgreSQL again");
    let back = Instant::now();
    assert!(
        wait_for(5, || http_get(port, "/readyz")
            .is_some_and(|(s, _)| s == 200)),
        "not ready within 5 s of the database returning"
    );
    eprintln!(
        "ready again {:?} after the database returned",
        back.elapsed()
    );
    let passes = |body: &str| {
        body.lines()
            .find(|l| l.starts_with("cpor_passes_total{result=\"ok\"}"))
            .and_then(|l| l.split_whitespace().last())
            .and_then(|n| n.parse::<u64>().ok())
            .unwrap_or(0)
    };
    let before = passes(&http_get(port, "/metrics").unwrap().1);
    assert!(
        wait_for(10, || http_get(port, "/metrics")
            .is_some_and(|(_, b)| passes(&b) > before)),
        "passes did not resume"
    );
    let (code, err) = stop(child);
    assert_eq!(code, Some(0), "{err}");
}
