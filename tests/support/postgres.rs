//! Postgres for the process-level tests: the database from `CINEFLOW_TEST_POSTGRES_URL` (the
//! test skips with the reason without it, and fails instead under `CI=true`), and a schema of
//! the test's own, dropped when the test ends.

use std::io::Write;

/// The variable naming the test database.
pub(crate) const URL_VAR: &str = "CINEFLOW_TEST_POSTGRES_URL";

/// Whether `CI` says this is CI (where skipping is a failure).
fn in_ci() -> bool {
    let ci = std::env::var("CI").unwrap_or_default();
    ci.eq_ignore_ascii_case("true") || ci == "1"
}

/// The database URL; without one, `None` after printing why `test` (the `what` test) is
/// skipped — or a failure under CI.
pub(crate) fn url_or_skip(test: &str, what: &str) -> Option<String> {
    match std::env::var(URL_VAR) {
        Ok(u) if !u.trim().is_empty() => Some(u.trim().to_owned()),
        _ => {
            let reason = format!("{URL_VAR} is not set");
            assert!(
                !in_ci(),
                "{reason}, but CI is set: the {what} test must run in CI (set {URL_VAR}, e.g. \
                 {URL_VAR}=postgres://postgres@127.0.0.1:5432/test, and build with --all-features)"
            );
            // Past the harness's output capture, so the skip is visible in a passing run.
            let _ = std::io::stderr().write_all(format!("skipping {test}: {reason}\n").as_bytes());
            None
        }
    }
}

/// Runs one SQL statement on its own connection.
async fn sql(url: &str, statement: &str) -> Result<(), String> {
    use sqlx::Connection;
    let mut conn = sqlx::PgConnection::connect(url)
        .await
        .map_err(|e| format!("cannot connect: {e}"))?;
    sqlx::raw_sql(sqlx::AssertSqlSafe(statement.to_owned()))
        .execute(&mut conn)
        .await
        .map_err(|e| format!("{statement:?} failed: {e}"))?;
    conn.close().await.map_err(|e| e.to_string())
}

/// A schema of the test's own in the test database, dropped when the test ends, passed or not.
pub(crate) struct Schema {
    base: String,
    name: String,
}

impl Schema {
    /// Creates schema `name` in the database at `base`.
    pub(crate) async fn create(base: &str, name: String) -> Self {
        if let Err(e) = sql(base, &format!("CREATE SCHEMA {name}")).await {
            panic!("cannot create the test schema in {URL_VAR}'s database: {e}");
        }
        Self {
            base: base.to_owned(),
            name,
        }
    }

    /// The database URL with the connection's `search_path` set to this schema (sqlx URL
    /// syntax).
    pub(crate) fn url(&self) -> String {
        let sep = if self.base.contains('?') { '&' } else { '?' };
        format!("{}{sep}options%5Bsearch_path%5D={}", self.base, self.name)
    }
}

impl Drop for Schema {
    fn drop(&mut self) {
        // Drop cannot await: a thread with its own runtime does the work.
        let url = self.base.clone();
        let statement = format!("DROP SCHEMA IF EXISTS {} CASCADE", self.name);
        let dropped = std::thread::spawn(move || {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| e.to_string())?
                .block_on(sql(&url, &statement))
        })
        .join();
        if !matches!(dropped, Ok(Ok(()))) {
            eprintln!("could not drop schema {}: {dropped:?}", self.name);
        }
    }
}
