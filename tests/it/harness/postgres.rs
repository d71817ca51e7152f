//! PostgreSQL for tests: `CPOR_TEST_DATABASE_URL` if set, else one throwaway cluster per test
//! binary (initdb + pg_ctl, through `runuser -u postgres` when root), one fresh database per test.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, Ordering};

const HOW_TO: &str = "PostgreSQL is needed for the store tests. Either set \
CPOR_TEST_DATABASE_URL=postgres://USER[:PASSWORD]@HOST:PORT/DB (a role allowed to CREATE DATABASE), \
or install PostgreSQL's server binaries so that `initdb` and `pg_ctl` are on PATH or under \
/usr/lib/postgresql/*/bin (Debian: apt-get install postgresql), or skip these tests explicitly \
with CPOR_TEST_SKIP_POSTGRES=1.";

/// The admin URL of the server the tests use, or why there is none.
fn server() -> &'static Result<String, String> {
    static SERVER: OnceLock<Result<String, String>> = OnceLock::new();
    SERVER.get_or_init(|| match std::env::var("CPOR_TEST_DATABASE_URL") {
        Ok(url) if !url.is_empty() => Ok(url),
        _ => start_cluster().map_err(|e| format!("{e}\n{HOW_TO}")),
    })
}

/// True when the caller asked to skip PostgreSQL tests; says so loudly.
pub fn skipped(test: &str) -> bool {
    if std::env::var("CPOR_TEST_SKIP_POSTGRES").is_ok_and(|v| v == "1") {
        eprintln!("!!!!!! SKIPPED PostgreSQL test `{test}`: CPOR_TEST_SKIP_POSTGRES=1 !!!!!!");
        return true;
    }
    false
}

/// A URL of a new, empty database on the test server; panics with how to provide PostgreSQL.
pub async fn fresh_database() -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    let admin = match server() {
        Ok(url) => url.clone(),
        Err(e) => panic!("{e}"),
    };
    let name = format!(
        "cpor_test_{}_{}_{}",
        std::process::id(),
        N.fetch_add(1, Ordering::SeqCst),
        chrono::Utc::now().timestamp_micros() % 1_000_000
    );
    let mut conn = <sqlx::PgConnection as sqlx::Connection>::connect(&admin)
        .await
        .unwrap_or_else(|e| panic!("cannot connect to test PostgreSQL: {e}\n{HOW_TO}"));
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(&mut conn)
        .await
        .expect("CREATE DATABASE");
    let mut url = url::Url::parse(&admin).expect("admin URL");
    url.set_path(&name);
    url.to_string()
}

fn find_bin(name: &str) -> Option<PathBuf> {
    let on_path = std::env::var_os("PATH").into_iter().flat_map(|p| {
        std::env::split_paths(&p)
            .map(|d| d.join(name))
            .collect::<Vec<_>>()
    });
    let debian = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path().join("bin").join(name));
    on_path.chain(debian).find(|p| p.is_file())
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

/// Runs a PostgreSQL program, as user `postgres` when we are root (the server refuses root).
fn pg_command(bin: &Path, as_postgres: bool) -> Command {
    if as_postgres {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--"]).arg(bin);
        c
    } else {
        Command::new(bin)
    }
}

fn start_cluster() -> Result<String, String> {
    let initdb = find_bin("initdb").ok_or("`initdb` not found")?;
    let pg_ctl = find_bin("pg_ctl").ok_or("`pg_ctl` not found")?;
    let root = is_root();
    let dir = tempfile::Builder::new()
        .prefix("cpor-test-pg-")
        .tempdir()
        .map_err(|e| format!("temp dir: {e}"))?
        .keep();
    if root {
        let ok = Command::new("chown")
            .args(["-R", "postgres:postgres"])
            .arg(&dir)
            .status()
            .is_ok_and(|s| s.success());
        if !ok {
            return Err("cannot chown the cluster folder to user postgres".into());
        }
    }
    let data = dir.join("data");
    let out = pg_command(&initdb, root)
        .arg("-D")
        .arg(&data)
        .args(["-U", "postgres", "-A", "trust", "-E", "UTF8", "--no-sync"])
        .output()
        .map_err(|e| format!("running initdb: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "initdb failed: {}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    let port = TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map_err(|e| format!("free port: {e}"))?
        .port();
    let opts = format!(
        "-p {port} -k {} -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off \
         -c full_page_writes=off -c max_connections=300",
        dir.display()
    );
    let out = pg_command(&pg_ctl, root)
        .arg("-D")
        .arg(&data)
        .args(["-o", &opts, "-l"])
        .arg(dir.join("server.log"))
        .args(["-w", "-t", "60", "start"])
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("running pg_ctl: {e}"))?;
    if !out.status.success() {
        let log = std::fs::read_to_string(dir.join("server.log")).unwrap_or_default();
        return Err(format!(
            "pg_ctl start failed: {}\n{log}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    spawn_reaper(&pg_ctl, &data, &dir, root);
    Ok(format!("postgres://postgres@127.0.0.1:{port}/postgres"))
}

/// Stops the cluster and removes its folder once this test process has ended, however it ends.
fn spawn_reaper(pg_ctl: &Path, data: &Path, dir: &Path, root: bool) {
    let stop = if root {
        format!(
            "runuser -u postgres -- {} -D {} -m immediate stop",
            pg_ctl.display(),
            data.display()
        )
    } else {
        format!(
            "{} -D {} -m immediate stop",
            pg_ctl.display(),
            data.display()
        )
    };
    let script = format!(
        "while kill -0 {pid} 2>/dev/null; do sleep 0.5; done; {stop} >/dev/null 2>&1; rm -rf {dir}",
        pid = std::process::id(),
        dir = dir.display()
    );
    let _ = Command::new("setsid")
        .args(["sh", "-c", &script])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn();
}
