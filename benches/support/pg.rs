//! What the PostgreSQL benches share: database URLs, admin statements, the settings they print
//! and the generated claims.

/// `admin` with its database replaced by `db`.
pub fn db_url(admin: &str, db: &str) -> String {
    let mut url = url::Url::parse(admin).expect("url");
    url.set_path(db);
    url.to_string()
}

/// Runs one statement (CREATE/DROP DATABASE …) on a connection of its own.
pub async fn admin_exec(admin: &str, sql: String) {
    let mut conn = <sqlx::PgConnection as sqlx::Connection>::connect(admin)
        .await
        .expect("connect");
    sqlx::query(sqlx::AssertSqlSafe(sql))
        .execute(&mut conn)
        .await
        .expect("admin statement");
}

/// Prints the server settings a figure depends on (durability first) on one line.
pub async fn print_settings(pool: &sqlx::PgPool) {
    for setting in [
        "fsync",
        "synchronous_commit",
        "shared_buffers",
        "server_version",
    ] {
        let v: String = sqlx::query_scalar(sqlx::AssertSqlSafe(format!("SHOW {setting}")))
            .fetch_one(pool)
            .await
            .expect("show");
        print!("{setting}={v} ");
    }
    println!();
}

/// Inserts `claims` claims (SE/US/GB/DE; submitted / under review / draft) of which those
/// matching the SQL predicate `rejected` on `g` (1..=claims) were rejected at the instant the
/// SQL expression `rejected_at` gives (their rejection notice is due then).
pub fn claims_sql(claims: i64, rejected: &str, rejected_at: &str) -> String {
    format!(
        "INSERT INTO claims (id, status, partner_name, partner_email, customer_name, customer_email, \
         products, country, locale, submitted_at, review_started_at, rejected_at, rejection_reason, \
         updated_at, version) \
         SELECT 'c' || lpad(g::text, 8, '0'), \
           CASE WHEN {rejected} THEN 'rejected' WHEN g % 3 = 0 THEN 'submitted' WHEN g % 3 = 1 THEN 'under_review' ELSE 'draft' END, \
           'Partner ' || g, 'p' || g || '@partner.example', 'Customer ' || g, 'c' || g || '@customer.example', \
           'Dynamics 365 Sales', (ARRAY['SE','US','GB','DE'])[1 + g % 4], 'en', \
           TIMESTAMPTZ '2026-11-23T09:00:00Z', TIMESTAMPTZ '2026-11-24T09:00:00Z', \
           CASE WHEN {rejected} THEN {rejected_at} END, \
           CASE WHEN {rejected} THEN 'insufficient_poe' END, \
           TIMESTAMPTZ '2026-06-01T00:00:00Z' + (g % 100000) * INTERVAL '1 minute', 1 \
         FROM generate_series(1, {claims}) g"
    )
}

/// CPU seconds (user and system) the PostgreSQL server behind `pool` has used so far: its
/// postmaster (with the children it has reaped, such as closed connections) and every process
/// it runs. None when the server is not on this machine (its processes cannot be read).
/// Counting CPU rather than wall time keeps a figure from measuring the load of a shared
/// machine.
#[allow(dead_code)]
pub async fn server_cpu_s(pool: &sqlx::PgPool) -> Option<f64> {
    let backend: i32 = sqlx::query_scalar("SELECT pg_backend_pid()")
        .fetch_one(pool)
        .await
        .ok()?;
    // The fields after the command name (which may hold spaces), numbered as in proc(5).
    let stat = |pid: &str| -> Option<Vec<u64>> {
        let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        let rest = &text[text.rfind(')')? + 2..];
        // Field 3 (state) is a letter; the rest are numbers.
        Some(
            rest.split_whitespace()
                .skip(1)
                .map(|f| f.parse::<i64>().map_or(0, |n| n.max(0) as u64))
                .collect(),
        )
    };
    // After the state: ppid is field 4 (index 0 here), utime..cstime fields 14..17 (10..13).
    let postmaster = stat(&backend.to_string())?.first().copied()?;
    let own = stat(&postmaster.to_string())?;
    let mut ticks: u64 = own.get(10..14)?.iter().sum();
    for entry in std::fs::read_dir("/proc").ok()?.flatten() {
        let name = entry.file_name();
        let Some(pid) = name
            .to_str()
            .filter(|n| n.bytes().all(|b| b.is_ascii_digit()))
        else {
            continue;
        };
        if let Some(f) = stat(pid).filter(|f| f.first() == Some(&postmaster)) {
            ticks += f.get(10..12).map_or(0, |t| t.iter().sum());
        }
    }
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    Some(ticks as f64 / hz.max(1) as f64)
}
