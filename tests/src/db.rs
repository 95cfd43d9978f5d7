//! A fresh Postgres database per test.

use sqlx::postgres::{PgConnection, PgPool, PgPoolOptions};
use sqlx::{AssertSqlSafe, Connection};

/// Used when `DATABASE_URL` is not set (`.cargo/config.toml` normally sets it).
const DEFAULT_DATABASE_URL: &str = "postgres://postgres@127.0.0.1:5432/mooring";

/// A database of its own (`mooring_e2e_<uuid>`), dropped (`WITH (FORCE)`) on drop.
pub struct TestDb {
    /// The database's name.
    pub name: String,
    /// Its URL, for `DATABASE_URL`.
    pub url: String,
    admin_url: String,
}

impl TestDb {
    /// Creates an empty database on the server `DATABASE_URL` points at.
    pub async fn create() -> TestDb {
        let base = std::env::var("DATABASE_URL").unwrap_or_else(|_| DEFAULT_DATABASE_URL.to_string());
        let admin_url = std::env::var("E2E_ADMIN_DATABASE_URL").unwrap_or_else(|_| with_database(&base, "postgres"));
        TestDb::create_on(&base, &admin_url).await
    }

    /// Creates an empty database on the server `base` points at (its database
    /// name is replaced), connecting to `admin_url` to create and drop it: a
    /// test's private Postgres.
    pub async fn create_on(base: &str, admin_url: &str) -> TestDb {
        let admin_url = admin_url.to_string();
        let name = format!("mooring_e2e_{}", uuid::Uuid::new_v4().simple());
        let mut conn = PgConnection::connect(&admin_url)
            .await
            .unwrap_or_else(|e| panic!("cannot connect to Postgres at {admin_url} to create a test database: {e}"));
        sqlx::query(AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .execute(&mut conn)
            .await
            .unwrap_or_else(|e| panic!("CREATE DATABASE {name}: {e}"));
        let _ = conn.close().await;
        TestDb { url: with_database(base, &name), name, admin_url }
    }

    /// A small pool on the test database (for looking at or tampering with rows).
    pub async fn pool(&self) -> PgPool {
        PgPoolOptions::new()
            .max_connections(2)
            .connect(&self.url)
            .await
            .unwrap_or_else(|e| panic!("cannot connect to {}: {e}", self.url))
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let admin_url = self.admin_url.clone();
        let name = self.name.clone();
        let result = crate::stack::block_on_thread(async move {
            let mut conn = PgConnection::connect(&admin_url).await.map_err(|e| e.to_string())?;
            sqlx::query(AssertSqlSafe(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")))
                .execute(&mut conn)
                .await
                .map_err(|e| e.to_string())?;
            let _ = conn.close().await;
            Ok::<(), String>(())
        });
        if let Err(e) = result {
            eprintln!("warning: cannot drop test database {}: {e}", self.name);
        }
    }
}

/// `url` with its database name replaced by `db` (query parameters kept).
pub(crate) fn with_database(url: &str, db: &str) -> String {
    let (head, query) = match url.split_once('?') {
        Some((h, q)) => (h, Some(q)),
        None => (url, None),
    };
    let authority_start = head.find("://").map(|i| i + 3).unwrap_or(0);
    let authority_end = head[authority_start..].find('/').map(|i| authority_start + i).unwrap_or(head.len());
    let mut out = format!("{}/{db}", &head[..authority_end]);
    if let Some(q) = query {
        out.push('?');
        out.push_str(q);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::with_database;

    #[test]
    fn replaces_the_database_name() {
        assert_eq!(
            with_database("postgres://postgres@127.0.0.1:5432/mooring", "x"),
            "postgres://postgres@127.0.0.1:5432/x"
        );
        assert_eq!(with_database("postgres://u:p@h/db?sslmode=disable", "x"), "postgres://u:p@h/x?sslmode=disable");
        assert_eq!(with_database("postgres://h:5432", "x"), "postgres://h:5432/x");
    }
}
