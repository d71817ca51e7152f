//! Test harness: real databases (a throwaway PostgreSQL cluster, SQLite temp files) and the binary.

pub mod cmd;
pub mod pgcluster;
pub mod postgres;
pub mod smtp;
pub mod store;

/// Generates (used by the suites written once for both backends) one `#[tokio::test]` per backend for each listed test function.
macro_rules! backend_tests {
    ($($name:ident),+ $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let db = crate::harness::sqlite_unmigrated().await;
                    super::$name(db.store.clone()).await;
                }
            )+
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let Some(db) = crate::harness::postgres_unmigrated(stringify!($name)).await else {
                        return;
                    };
                    super::$name(db.store.clone()).await;
                }
            )+
        }
    };
}

/// Like `backend_tests!`, but each test function gets the whole [`TestStore`] (its URL too, for
/// tests that run the binary against the same database).
macro_rules! backend_tests_db {
    ($($name:ident),+ $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let db = crate::harness::sqlite_unmigrated().await;
                    super::$name(&db).await;
                }
            )+
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let Some(db) = crate::harness::postgres_unmigrated(stringify!($name)).await else {
                        return;
                    };
                    super::$name(&db).await;
                }
            )+
        }
    };
}

use cpor_worker::store::{AnyStore, PgStore, SqliteStore};

pub use cmd::{Cmd, bin, ok, run_in, text};
pub use store::{ApplyOutcome, ClaimChange, apply, claims, incentive_request};

/// A claim row with the parties every scenario uses (a Swedish partner and customer, English
/// emails, version 1); the scenario sets its status's event columns.
pub fn claim_row(id: &str, status: &str) -> cpor_worker::claim::ClaimRow {
    cpor_worker::claim::ClaimRow {
        id: id.into(),
        status: status.into(),
        partner_name: Some("Nordljus Konsult AB".into()),
        partner_email: Some("claims@nordljus.example".into()),
        customer_name: Some("Åkerlund & Söner AB".into()),
        customer_email: Some("it@akerlund.example".into()),
        country: Some("SE".into()),
        locale: Some("en".into()),
        version: 1,
        ..cpor_worker::claim::ClaimRow::default()
    }
}

/// A migrated store on a fresh database, and what keeps that database alive.
pub struct TestStore {
    /// The store under test.
    pub store: AnyStore,
    /// The URL it was opened with.
    pub url: String,
    _dir: Option<tempfile::TempDir>,
}

/// A fresh SQLite file in a temp folder, not yet migrated.
pub async fn sqlite_unmigrated() -> TestStore {
    let dir = tempfile::tempdir().expect("temp dir");
    let url = format!("sqlite://{}", dir.path().join("test.db").display());
    let store = AnyStore::Sqlite(SqliteStore::connect(&url, 4).await.expect("open sqlite"));
    TestStore {
        store,
        url,
        _dir: Some(dir),
    }
}

/// A fresh PostgreSQL database, not yet migrated; `None` when skipped (CPOR_TEST_SKIP_POSTGRES=1).
pub async fn postgres_unmigrated(test: &str) -> Option<TestStore> {
    if postgres::skipped(test) {
        return None;
    }
    let url = postgres::fresh_database().await;
    let store = AnyStore::Postgres(PgStore::connect(&url, 8).await.expect("open postgres"));
    Some(TestStore {
        store,
        url,
        _dir: None,
    })
}

/// The integer a literal SQL query (no binds) returns, on either backend.
pub async fn scalar(store: &AnyStore, sql: &str) -> i64 {
    let sql = sqlx::AssertSqlSafe(sql.to_owned());
    match store {
        AnyStore::Postgres(s) => sqlx::query_scalar(sql).fetch_one(s.pool()).await,
        AnyStore::Sqlite(s) => sqlx::query_scalar(sql).fetch_one(s.pool()).await,
    }
    .unwrap_or_else(|e| panic!("SQL failed: {e}"))
}

/// Runs a literal SQL statement (no binds) on either backend, as the main system would.
pub async fn exec(store: &AnyStore, sql: &str) {
    let sql = sqlx::AssertSqlSafe(sql.to_owned());
    match store {
        AnyStore::Postgres(s) => sqlx::query(sql).execute(s.pool()).await.map(|_| ()),
        AnyStore::Sqlite(s) => sqlx::query(sql).execute(s.pool()).await.map(|_| ()),
    }
    .unwrap_or_else(|e| panic!("SQL failed: {e}"));
}
