//! Shared helpers for the black-box tests. Each test gets its own fresh database on the server
//! named by `DATABASE_URL` (`make test` starts a throwaway server when it is not set).
#![allow(dead_code)]

use sqlx::postgres::PgPool;
use sqlx::Executor;

/// A fresh, migrated database: its pool and its URL (for child processes).
pub struct TestDb {
    pub pool: PgPool,
    pub url: String,
}

/// Creates a database with a unique name on the `DATABASE_URL` server and applies migrations.
pub async fn fresh_database() -> TestDb {
    let base = std::env::var("DATABASE_URL").expect(
        "DATABASE_URL must name a PostgreSQL server for the tests (`make test` starts a throwaway one)",
    );
    let admin = PgPool::connect(&base)
        .await
        .unwrap_or_else(|e| panic!("cannot connect to DATABASE_URL: {e}"));
    let name = format!("oc_test_{}", uuid::Uuid::new_v4().simple());
    admin
        .execute(format!("CREATE DATABASE {name}").as_str())
        .await
        .expect("create test database");
    admin.close().await;
    let mut url = reqwest::Url::parse(&base).expect("DATABASE_URL is a URL");
    url.set_path(&format!("/{name}"));
    let url = url.to_string();
    let pool = openclaws_store::connect(&url, 10)
        .await
        .expect("connect to test database");
    openclaws_store::migrate(&pool)
        .await
        .expect("migrate test database");
    TestDb { pool, url }
}

/// Polls `check` until it returns `Some`, or panics with `what` after `timeout`.
pub async fn eventually<T, F, Fut>(timeout: std::time::Duration, what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if let Some(v) = check().await {
            return v;
        }
        if tokio::time::Instant::now() >= deadline {
            panic!("timed out after {timeout:?} waiting for {what}");
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}
pub mod api;
pub mod devices;
pub mod ingest;
pub mod process;
pub mod stack;

/// Installs the pinned OpenClaw (idempotent; `scripts/install-openclaw.sh`) and returns its
/// `bin/openclaw` wrapper.
pub fn install_openclaw() -> std::path::PathBuf {
    let script =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/install-openclaw.sh");
    let output = std::process::Command::new(&script)
        .stderr(std::process::Stdio::inherit())
        .output()
        .expect("run scripts/install-openclaw.sh");
    assert!(output.status.success(), "install-openclaw.sh failed");
    std::path::PathBuf::from(String::from_utf8(output.stdout).unwrap().trim())
}
