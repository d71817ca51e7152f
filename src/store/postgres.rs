//! `PgStore`: the production backend. Every batch takes its rows `FOR UPDATE SKIP LOCKED`, so
//! several replicas can run at once without acting twice or waiting on each other. The
//! statements are the shared ones with this dialect's fragments; the batch writes (`COPY`,
//! `UNNEST` arrays) are in `postgres_writes.rs` and `postgres_fired.rs`.

use sqlx::Transaction;
use sqlx::postgres::{PgPool, PgPoolOptions, Postgres};

use super::claims::{impl_store, insert_claim};
use super::console::impl_console;
use super::facts::impl_read_facts;
use super::optional_columns::impl_optional_columns;
use super::outbox::impl_outbox;
use super::repair::impl_repairs;
use super::timer_index::impl_timer_index;
use super::{Backend, StoreError};

/// The connection the shared statements run on, and a write transaction on it.
pub(super) type Conn = sqlx::PgConnection;
pub(super) type Tx = Transaction<'static, Postgres>;

/// The migrations for PostgreSQL, compiled in.
static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

/// The PostgreSQL backend.
#[derive(Clone, Debug)]
pub struct PgStore {
    pool: PgPool,
    /// The `claims` table has the optional `customer_locale` column (found at start-up).
    customer_locale: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl PgStore {
    /// Connects to `url` with at most `max_connections` connections.
    pub async fn connect(url: &str, max_connections: u32) -> Result<Self, StoreError> {
        let pool = PgPoolOptions::new()
            .max_connections(max_connections)
            .acquire_timeout(std::time::Duration::from_secs(10))
            .connect(url)
            .await?;
        Ok(Self::from_pool(pool))
    }

    /// Wraps an existing pool.
    pub fn from_pool(pool: PgPool) -> Self {
        Self {
            pool,
            customer_locale: Default::default(),
        }
    }

    /// The underlying pool (tests and benchmarks insert rows through it).
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// Sync pages or fire batches at once: one more than the cores (so one page's computation
    /// overlaps the others' statements: on 2 cores 3 beat 2 by about 10 % and 4 lost), each
    /// with a connection of its own, leaving half the pool to the rest of the pass.
    fn batches_at_once(&self) -> usize {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        let connections =
            usize::try_from(self.pool.options().get_max_connections() / 2).unwrap_or(1);
        (cores + 1).min(connections).max(1)
    }

    /// A transaction for a write; rows are locked as the statements take them.
    async fn begin_write(&self) -> Result<Tx, StoreError> {
        // Every statement of a write transaction reads by key (ids bound as an array): with
        // its default costs PostgreSQL prices 5,000 index probes above a parallel sequential
        // scan of a 1,000,000-row table, which took 72-83 ms against 8-14 ms by the index
        // (docs/benchmarks.md). Off for the transaction, a sequential scan is left only where
        // no index applies; one round trip with the BEGIN.
        Ok(self
            .pool
            .begin_with("BEGIN; SET LOCAL enable_seqscan = off")
            .await?)
    }
}

impl_store!(
    PgStore,
    version = "claims.version::bigint AS version",
    migrations_table = "SELECT count(*) FROM information_schema.tables WHERE table_schema = current_schema() AND table_name = '_sqlx_migrations'",
    put_claim = concat!(
        insert_claim!("INSERT"),
        " ON CONFLICT (id) DO UPDATE SET status = EXCLUDED.status, ",
        "partner_id = EXCLUDED.partner_id, partner_name = EXCLUDED.partner_name, ",
        "partner_email = EXCLUDED.partner_email, customer_tenant_id = EXCLUDED.customer_tenant_id, ",
        "customer_name = EXCLUDED.customer_name, customer_email = EXCLUDED.customer_email, ",
        "products = EXCLUDED.products, country = EXCLUDED.country, time_zone = EXCLUDED.time_zone, ",
        "locale = EXCLUDED.locale, submitted_at = EXCLUDED.submitted_at, ",
        "review_started_at = EXCLUDED.review_started_at, ",
        "info_requested_at = EXCLUDED.info_requested_at, ",
        "info_request_reason = EXCLUDED.info_request_reason, approved_at = EXCLUDED.approved_at, ",
        "rejected_at = EXCLUDED.rejected_at, rejection_reason = EXCLUDED.rejection_reason, ",
        "customer_declined_at = EXCLUDED.customer_declined_at, ",
        "dispute_opened_at = EXCLUDED.dispute_opened_at, ",
        "dispute_resolved_at = EXCLUDED.dispute_resolved_at, updated_at = EXCLUDED.updated_at, ",
        "version = EXCLUDED.version"
    ),
    {
        fn backend(&self) -> Backend {
            Backend::Postgres
        }

        async fn migrate(&self) -> Result<(), StoreError> {
            MIGRATOR.run(&self.pool).await?;
            self.detect_optional_columns().await?;
            Ok(())
        }
    }
);

impl_read_facts!(PgStore, in_ids = "= ANY($1)");

impl_timer_index!(
    PgStore,
    version = "claims.version::bigint AS version",
    version_int = "version::bigint",
    in_ids = "= ANY($1)",
    skip_locked = " FOR UPDATE SKIP LOCKED",
    lock_claims = " FOR UPDATE OF claims SKIP LOCKED",
    parallel = PgStore::batches_at_once
);

impl_outbox!(PgStore, skip_locked = " FOR UPDATE SKIP LOCKED");

impl_repairs!(PgStore, lock = " FOR UPDATE", in_ids = "= ANY($1)");

impl_console!(PgStore, ilike = "ILIKE");

impl_optional_columns!(
    PgStore,
    has_customer_locale = "SELECT count(*) FROM information_schema.columns WHERE table_schema = current_schema() AND table_name = 'claims' AND column_name = 'customer_locale'",
    in_ids = "= ANY($1)"
);
