//! SMTP throughput, ours beside a Python peer on the same sink in the same run: N rendered emails
//! through the pooled `SmtpTransport` from C concurrent senders (the pool warmed with C
//! connections first), then the same message bytes through `benches/peer_smtp.py` (Python
//! `smtplib`, C threads each reusing one connection), alternating for R rounds, on two loopback
//! sinks: a minimal SMTP server inside this process (tokio, 250 to everything) and the aiosmtpd
//! sink of the tests (`tests/it/smtp/sink.py --discard`) when python3 has aiosmtpd. Prints
//! min / median / max messages/s of each and the ratio of the medians.
//!
//! `cargo bench --bench smtp`; `CPOR_BENCH_N` (default 5000), `CPOR_BENCH_ROUNDS` (3),
//! `CPOR_BENCH_CONCURRENCY`: one number or a list such as `1,2,4,8` (default: the daemon's
//! `DEFAULT_SMTP_POOL_SIZE`).

use std::net::TcpStream as StdTcpStream;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use cpor_worker::mail::delivery::DEFAULT_SMTP_POOL_SIZE;
use cpor_worker::mail::{OutgoingEmail, SmtpTransport, Templates, Transport, samples};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;

fn env_num(key: &str, default: usize) -> usize {
    std::env::var(key)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// A minimal SMTP server: greets, answers 250 to every command, 354 to DATA, 221 to QUIT.
async fn rust_sink() -> std::io::Result<u16> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let port = listener.local_addr()?.port();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let (r, mut w) = stream.into_split();
                let mut lines = BufReader::new(r).lines();
                w.write_all(b"220 bench-sink ESMTP\r\n").await.ok();
                let mut in_data = false;
                while let Ok(Some(line)) = lines.next_line().await {
                    let reply: &[u8] = if in_data {
                        if line != "." {
                            continue;
                        }
                        in_data = false;
                        b"250 2.0.0 queued\r\n"
                    } else {
                        let cmd = line.get(..4).unwrap_or("").to_ascii_uppercase();
                        match cmd.as_str() {
                            "EHLO" => b"250-bench-sink\r\n250 8BITMIME\r\n",
                            "DATA" => {
                                in_data = true;
                                b"354 go ahead\r\n"
                            }
                            "QUIT" => {
                                w.write_all(b"221 bye\r\n").await.ok();
                                break;
                            }
                            _ => b"250 OK\r\n",
                        }
                    };
                    if w.write_all(reply).await.is_err() {
                        break;
                    }
                }
            });
        }
    });
    Ok(port)
}

/// Ours: messages/s and failures.
async fn ours(port: u16, n: usize, concurrency: usize, email: &OutgoingEmail) -> (f64, usize) {
    let url = url::Url::parse(&format!("smtp://127.0.0.1:{port}")).expect("url");
    let transport = Arc::new(SmtpTransport::from_url(&url, concurrency as u32).expect("transport"));
    // Warm the pool with `concurrency` connections so connection set-up is not counted.
    let warm: Vec<_> = (0..concurrency)
        .map(|i| {
            let transport = Arc::clone(&transport);
            let mut email = email.clone();
            email.message_id = format!("warm-{i}@cpor.example");
            tokio::spawn(async move { transport.send(&email).await })
        })
        .collect();
    for w in warm {
        w.await.expect("task").expect("warm-up send");
    }
    let started = Instant::now();
    let mut tasks = Vec::new();
    for worker in 0..concurrency {
        let transport = Arc::clone(&transport);
        let mut email = email.clone();
        let count = n / concurrency + usize::from(worker < n % concurrency);
        tasks.push(tokio::spawn(async move {
            let mut failures = 0usize;
            for i in 0..count {
                email.message_id = format!("bench-{worker}-{i}@cpor.example");
                if transport.send(&email).await.is_err() {
                    failures += 1;
                }
            }
            failures
        }));
    }
    let mut failures = 0;
    for t in tasks {
        failures += t.await.expect("task");
    }
    (n as f64 / started.elapsed().as_secs_f64(), failures)
}

/// The Python `smtplib` peer: messages/s and failures, or why it could not run.
async fn peer(
    port: u16,
    n: usize,
    concurrency: usize,
    message: &Path,
) -> Result<(f64, usize), String> {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/benches/peer_smtp.py");
    let out = tokio::process::Command::new("python3")
        .arg(script)
        .args(["--port", &port.to_string(), "--count", &n.to_string()])
        .args(["--connections", &concurrency.to_string(), "--message"])
        .arg(message)
        .output()
        .await
        .map_err(|e| format!("python3: {e}"))?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    let field = |key: &str| {
        stdout
            .split_whitespace()
            .find_map(|kv| kv.strip_prefix(key))
            .and_then(|v| v.parse::<f64>().ok())
    };
    match (out.status.success(), field("secs="), field("failures=")) {
        (true, Some(secs), Some(failures)) => Ok((n as f64 / secs, failures as usize)),
        _ => Err(format!(
            "peer failed: {stdout}{}",
            String::from_utf8_lossy(&out.stderr)
        )),
    }
}

fn spread(mut v: Vec<f64>) -> (f64, f64, f64) {
    v.sort_by(f64::total_cmp);
    (v[0], v[v.len() / 2], v[v.len() - 1])
}

/// R rounds of ours then the peer on one sink; prints both and the ratio of medians.
async fn compare(sink: &str, port: u16, cfg: &Bench, concurrency: usize, email: &OutgoingEmail) {
    let (mut a, mut b, mut failures) = (Vec::new(), Vec::new(), 0);
    for _ in 0..cfg.rounds {
        let (rate, f) = ours(port, cfg.n, concurrency, email).await;
        a.push(rate);
        failures += f;
        match peer(port, cfg.n, concurrency, &cfg.message_file).await {
            Ok((rate, f)) => {
                b.push(rate);
                failures += f;
            }
            Err(why) => println!("  python peer: {why}"),
        }
    }
    let (lo, med, hi) = spread(a);
    println!(
        "{sink}, {concurrency} connection(s), {} messages x {} rounds, {failures} failures",
        cfg.n, cfg.rounds
    );
    println!(
        "  ours (lettre client, TCP_NODELAY, pool {concurrency}): {lo:.0} / {med:.0} / {hi:.0} messages/s (min / median / max)"
    );
    if !b.is_empty() {
        let (plo, pmed, phi) = spread(b);
        println!(
            "  python smtplib peer ({concurrency} threads):        {plo:.0} / {pmed:.0} / {phi:.0} messages/s"
        );
        println!("  ratio ours / peer (medians): {:.2}", med / pmed);
    }
}

struct Bench {
    n: usize,
    rounds: usize,
    message_file: std::path::PathBuf,
}

fn start_aiosmtpd(dir: &Path) -> Option<(std::process::Child, u16)> {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .ok()?
        .port();
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/it/smtp/sink.py");
    let mut child = Command::new("python3")
        .arg(script)
        .args(["--port", &port.to_string(), "--discard", "--dir"])
        .arg(dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .ok()?;
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(15) {
        if StdTcpStream::connect(("127.0.0.1", port)).is_ok() {
            return Some((child, port));
        }
        if let Ok(Some(_)) = child.try_wait() {
            return None;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    child.kill().ok();
    None
}

#[tokio::main]
async fn main() {
    let n = env_num("CPOR_BENCH_N", 5000).max(1);
    let rounds = env_num("CPOR_BENCH_ROUNDS", 3).max(1);
    let concurrencies: Vec<usize> = std::env::var("CPOR_BENCH_CONCURRENCY")
        .ok()
        .map(|v| v.split(',').filter_map(|c| c.trim().parse().ok()).collect())
        .filter(|v: &Vec<usize>| !v.is_empty())
        .unwrap_or_else(|| vec![DEFAULT_SMTP_POOL_SIZE as usize])
        .into_iter()
        .map(|c| c.max(1))
        .collect();
    let templates = Templates::load(Path::new("templates")).expect("templates");
    let rendered = templates
        .render(
            "sv",
            &samples::consent_request("https://partner.example.com/cpor/decline?token=T"),
        )
        .expect("render");
    let email = OutgoingEmail {
        message_id: "bench-0@cpor.example".into(),
        from: "CPOR Claims <noreply@cpor.example>".into(),
        to_name: "Björkö Fastigheter AB".into(),
        to_address: "kund@example.se".into(),
        subject: rendered.subject,
        text: rendered.text,
        html: rendered.html,
    };
    let bytes = cpor_worker::mail::delivery::build_message(&email)
        .expect("build")
        .formatted();
    println!("message size: {} bytes", bytes.len());
    let dir = tempfile::tempdir().expect("temp dir");
    let message_file = dir.path().join("message.eml");
    std::fs::write(&message_file, &bytes).expect("write message");
    let cfg = Bench {
        n,
        rounds,
        message_file,
    };

    let port = rust_sink().await.expect("rust sink");
    for &c in &concurrencies {
        compare("in-process Rust sink", port, &cfg, c, &email).await;
    }

    let mailbox = dir.path().join("mailbox");
    match start_aiosmtpd(&mailbox) {
        Some((mut child, port)) => {
            for &c in &concurrencies {
                compare("aiosmtpd sink (--discard)", port, &cfg, c, &email).await;
            }
            child.kill().ok();
            child.wait().ok();
        }
        None => println!("aiosmtpd sink: skipped (python3 -m pip install aiosmtpd)"),
    }
}
