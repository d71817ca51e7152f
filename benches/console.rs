//! The console's overview on 1,000,000 claims, beside its floor in the same run: `GET /` (HTML)
//! and `GET /?format=json` timed in turns with `GET /healthz` (the same server, socket and
//! router, no database) over a real loopback socket, on PostgreSQL with its durable defaults.
//! The data set is `scripts/console-bench.sql`: every claim with a pending timer, 649,900 of them
//! overdue and 350,000 due within 7 days (a worst case: a running worker keeps "due now" near
//! zero), 1,000 problems, 20,000 SLA breaches, 100 held claims.
//! `cargo bench --bench console`; `CPOR_BENCH_REQUESTS` (default 15) requests of each.

#[path = "support/pg.rs"]
#[allow(dead_code)]
mod pg;
#[path = "../tests/it/harness/pgcluster.rs"]
#[allow(dead_code)]
mod pgcluster;
#[path = "support/engine.rs"]
mod support_engine;

use pg::print_settings;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::time::Instant;

use cpor_worker::console::{Console, PassLog};
use cpor_worker::store::{AnyStore, PgStore, Store};

/// One request over a new connection; the status line must say 200.
fn get(port: u16, path: &str) -> usize {
    let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    )
    .expect("send");
    let mut body = Vec::new();
    s.read_to_end(&mut body).expect("read");
    assert!(
        body.starts_with(b"HTTP/1.1 200"),
        "GET {path}: {}",
        String::from_utf8_lossy(&body[..body.len().min(300)])
    );
    body.len()
}

fn stats(mut v: Vec<f64>) -> (f64, f64, f64) {
    v.sort_by(f64::total_cmp);
    (v[0], v[v.len() / 2], v[v.len() - 1])
}

fn main() {
    let requests: usize = std::env::var("CPOR_BENCH_REQUESTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(15);
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let cluster = pgcluster::Cluster::start(true).expect("start PostgreSQL (durable defaults)");
    let port = rt.block_on(async {
        let mut url = url::Url::parse(&cluster.admin_url()).expect("url");
        url.set_path("postgres");
        let pg = PgStore::connect(url.as_str(), 8).await.expect("open");
        print_settings(pg.pool()).await;
        let store = AnyStore::Postgres(pg.clone());
        store.migrate().await.expect("migrate");
        let started = Instant::now();
        sqlx::raw_sql(sqlx::AssertSqlSafe(include_str!(
            "../scripts/console-bench.sql"
        )))
        .execute(pg.pool())
        .await
        .expect("load scripts/console-bench.sql");
        sqlx::raw_sql("VACUUM ANALYZE")
            .execute(pg.pool())
            .await
            .expect("vacuum");
        println!(
            "loaded scripts/console-bench.sql in {:.1} s",
            started.elapsed().as_secs_f64()
        );
        let engine = support_engine::engine(500);
        let console = Console::new(
            store,
            engine,
            None,
            None,
            PassLog::default(),
            None,
            cpor_worker::clock::system(),
        );
        let app = cpor_worker::console::router(Arc::new(console))
            .route("/healthz", axum::routing::get(|| async { "ok\n" }));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let port = listener.local_addr().expect("addr").port();
        tokio::spawn(async move { axum::serve(listener, app).await });
        port
    });
    let paths = ["/healthz", "/?format=json", "/"];
    let mut times: Vec<Vec<f64>> = vec![Vec::new(); paths.len()];
    for p in paths {
        get(port, p); // warm: connections opened, statements prepared
    }
    for _ in 0..requests {
        for (i, p) in paths.iter().enumerate() {
            let started = Instant::now();
            get(port, p);
            times[i].push(started.elapsed().as_secs_f64() * 1000.0);
        }
    }
    let (fmin, fmed, fmax) = stats(times[0].clone());
    println!(
        "floor GET /healthz: median {fmed:.2} ms (min {fmin:.2}, max {fmax:.2}) over {requests}"
    );
    for (i, p) in paths.iter().enumerate().skip(1) {
        let (min, med, max) = stats(times[i].clone());
        println!(
            "GET {p}: median {med:.1} ms (min {min:.1}, max {max:.1}) over {requests}; goal < 200 ms; {:.0}x the floor",
            med / fmed
        );
    }
    drop(rt);
}
