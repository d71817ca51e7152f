//! `SqliteStore`: the embedded default. One writer at a time (`BEGIN IMMEDIATE`), WAL for
//! readers; instants are stored as RFC 3339 text in UTC with six fractional digits, so text
//! order is time order. The statements are the shared ones with this dialect's fragments; the
//! writes that go a row at a time are in `sqlite_writes.rs`.

use std::str::FromStr;
use std::time::Duration;

use sqlx::Transaction;
use sqlx::sqlite::{
    Sqlite, SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions,
};

use super::claims::{impl_store, insert_claim};
use super::console::impl_console;
use super::facts::impl_read_facts;
use super::optional_columns::impl_optional_columns;
use super::outbox::impl_outbox;
use super::repair::impl_repairs;
use super::timer_index::impl_timer_index;
use super::{Backend, StoreError};

/// The connection the shared statements run on, and a write transaction on it.
pub(super) type Conn = sqlx::SqliteConnection;
pub(super) type Tx = Transaction<'static, Sqlite>;

/// The migrations for SQLite, compiled in.
static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");

/// The SQLite backend.
#[derive(Clone, Debug)]
pub struct SqliteStore {
    pool: SqlitePool,
    /// The `claims` table has the optional `customer_locale` column (found at start-up).
    customer_locale: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl SqliteStore {
    /// Opens (creating if missing) the database at `url` (`sqlite://PATH`).
    pub async fn connect(url: &str, max_connections: u32) -> Result<Self, StoreError> {
        let options = SqliteConnectOptions::from_str(url)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .busy_timeout(Duration::from_secs(30))
            .foreign_keys(true);
        let pool = SqlitePoolOptions::new()
            .max_connections(max_connections)
            // A transaction SQLite ended itself (a trigger's `RAISE(ROLLBACK, …)`) fails its
            // rollback, and sqlx then counts the connection as still in it: every later
            // `BEGIN` on it would fail, so it is closed rather than used again.
            .after_release(|conn, _| {
                Box::pin(async move {
                    // A dropped transaction's rollback is queued: the ping runs after it.
                    sqlx::Connection::ping(&mut *conn).await?;
                    Ok(!sqlx::Connection::is_in_transaction(conn))
                })
            })
            .connect_with(options)
            .await?;
        Ok(Self {
            pool,
            customer_locale: Default::default(),
        })
    }

    /// The underlying pool (tests insert rows through it).
    pub fn pool(&self) -> &SqlitePool {
        &self.pool
    }

    /// One sync page or fire batch at a time: SQLite has one writer.
    fn one_writer(&self) -> usize {
        1
    }

    /// A transaction holding SQLite's write lock from its start.
    pub(super) async fn begin_write(&self) -> Result<Tx, StoreError> {
        Ok(self.pool.begin_with("BEGIN IMMEDIATE").await?)
    }
}

impl_store!(
    SqliteStore,
    version = "claims.version AS version",
    migrations_table =
        "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = '_sqlx_migrations'",
    // A claims table without a key has no conflict to resolve: REPLACE works on either.
    put_claim = insert_claim!("INSERT OR REPLACE"),
    {
        fn backend(&self) -> Backend {
            Backend::Sqlite
        }

        async fn migrate(&self) -> Result<(), StoreError> {
            let had_claims: i64 = sqlx::query_scalar(
                "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'claims'",
            )
            .fetch_one(&self.pool)
            .await?;
            MIGRATOR.run(&self.pool).await?;
            self.detect_optional_columns().await?;
            if had_claims == 0 {
                // SQLite lets a TEXT PRIMARY KEY be NULL; a claims table the worker creates
                // refuses it (one the main system made keeps its own rules: NULL ids are
                // reported instead).
                for (name, when) in [("inserted", "INSERT"), ("updated", "UPDATE OF id")] {
                    let sql = format!(
                        "CREATE TRIGGER IF NOT EXISTS cpor_claims_id_required_{name} BEFORE {when} \
                         ON claims WHEN NEW.id IS NULL \
                         BEGIN SELECT RAISE(ABORT, 'claims.id must not be NULL'); END"
                    );
                    sqlx::query(sqlx::AssertSqlSafe(sql))
                        .execute(&self.pool)
                        .await?;
                }
            }
            Ok(())
        }
    }
);

impl_read_facts!(SqliteStore, in_ids = "IN (SELECT value FROM json_each($1))");

impl_timer_index!(
    SqliteStore,
    version = "claims.version AS version",
    version_int = "COALESCE(CAST(version AS INTEGER), -1)",
    in_ids = "IN (SELECT value FROM json_each($1))",
    skip_locked = "",
    lock_claims = "",
    parallel = SqliteStore::one_writer
);

impl_outbox!(SqliteStore, skip_locked = "");

impl_repairs!(
    SqliteStore,
    lock = "",
    in_ids = "IN (SELECT value FROM json_each($1))"
);

impl_console!(SqliteStore, ilike = "LIKE");

impl_optional_columns!(
    SqliteStore,
    has_customer_locale =
        "SELECT count(*) FROM pragma_table_info('claims') WHERE lower(name) = 'customer_locale'",
    in_ids = "IN (SELECT value FROM json_each($1))"
);
