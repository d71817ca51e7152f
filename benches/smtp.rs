//! SMTP throughput: sends N rendered emails through the pooled `SmtpTransport` with C concurrent
//! senders, first to a minimal SMTP sink inside this process (tokio, 250 to everything), then to
//! the aiosmtpd sink of the tests (`tests/it/smtp/sink.py --discard`) when python3 has aiosmtpd.
//! `cargo bench --bench smtp`; `CPOR_BENCH_N` (default 5000) and `CPOR_BENCH_CONCURRENCY` (8).

use std::net::TcpStream as StdTcpStream;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

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

async fn run(label: &str, port: u16, n: usize, concurrency: usize, email: &OutgoingEmail) {
    let url = url::Url::parse(&format!("smtp://127.0.0.1:{port}")).expect("url");
    let transport = Arc::new(SmtpTransport::from_url(&url, concurrency as u32).expect("transport"));
    // Warm the pool so connection set-up is not counted.
    transport.send(email).await.expect("warm-up send");
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
    let secs = started.elapsed().as_secs_f64();
    println!(
        "{label}: {n} messages, concurrency {concurrency}, {secs:.2} s, {:.0} messages/s, {failures} failures",
        n as f64 / secs
    );
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
    let n = env_num("CPOR_BENCH_N", 5000);
    let concurrency = env_num("CPOR_BENCH_CONCURRENCY", 8).max(1);
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
    println!(
        "message size: {} bytes",
        cpor_worker::mail::delivery::build_message(&email)
            .expect("build")
            .formatted()
            .len()
    );

    let port = rust_sink().await.expect("rust sink");
    run("in-process Rust sink", port, n, concurrency, &email).await;

    let dir = tempfile::tempdir().expect("temp dir");
    match start_aiosmtpd(dir.path()) {
        Some((mut child, port)) => {
            run("aiosmtpd sink (--discard)", port, n, concurrency, &email).await;
            child.kill().ok();
            child.wait().ok();
        }
        None => println!("aiosmtpd sink: skipped (python3 -m pip install aiosmtpd)"),
    }
}
