//! PostgreSQL for tests: `CPOR_TEST_DATABASE_URL` if set, else one throwaway cluster per test
//! binary (initdb + pg_ctl, through `runuser -u postgres` when root), one fresh database per test.

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
        _ => super::pgcluster::Cluster::start(false)
            .map(|c| c.admin_url())
            .map_err(|e| format!("{e}\n{HOW_TO}")),
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
