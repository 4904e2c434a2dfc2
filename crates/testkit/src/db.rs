//! A database of its own for each test (and for the fleet bench) on the server named by
//! `DATABASE_URL` (`make test` starts a throwaway one when it is not set), reached directly or
//! through a throwaway transaction pooler, and polling with a deadline, the tests' way to wait
//! for what happens elsewhere.

use anyhow::Context;
use openclaws_store::{Db, PoolMode};
use sqlx::postgres::PgPool;
use sqlx::Executor;
use std::time::Duration;

use crate::pgbouncer::{PoolerSettings, ThrowawayPgBouncer};

/// A fresh, migrated database: its pool and its URL (for child processes), and the handle the
/// code under test is given, straight to it or through a transaction pooler.
pub struct TestDb {
    /// A pool straight on the database, for the test's own queries.
    pub pool: PgPool,
    /// Its direct `postgres://` URL, for a controller process (`DATABASE_LISTEN_URL` behind a
    /// pooler).
    pub url: String,
    /// Its name on the server (a pooler in front of the server forwards it by this name).
    pub name: String,
    /// What the controller and the store calls under test use: [`TestDb::pool`] itself, or
    /// a pool through [`TestDb::pooler`] in [`PoolMode::Transaction`].
    pub controller: Db,
    /// The transaction pooler in front of the database, when the test asked for one.
    pub pooler: Option<ThrowawayPgBouncer>,
}

impl TestDb {
    /// The controller's `DATABASE_URL`: the database's, or the pooler's for it.
    pub fn controller_url(&self) -> String {
        match &self.pooler {
            Some(pooler) => pooler.url(&self.name),
            None => self.url.clone(),
        }
    }
}

/// A fresh database reached directly ([`fresh_database`]) or through a throwaway PgBouncer in
/// transaction pool mode ([`fresh_database_behind_pooler`]): how tests run one scenario both
/// ways.
pub async fn fresh_database_via(pooler: bool) -> TestDb {
    match pooler {
        true => fresh_database_behind_pooler().await,
        false => fresh_database().await,
    }
}

/// [`fresh_database`] with a throwaway PgBouncer in transaction pool mode in front of it, as
/// Supabase's transaction pooler is in front of its database: [`TestDb::controller`] goes
/// through it, [`TestDb::pool`] and [`TestDb::url`] do not.
pub async fn fresh_database_behind_pooler() -> TestDb {
    let mut db = fresh_database().await;
    let pooler = ThrowawayPgBouncer::start(&db.url, PoolerSettings::default())
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    db.controller = Db::connect(&pooler.url(&db.name), 10, PoolMode::Transaction)
        .await
        .expect("connect to the test database through the pooler");
    db.pooler = Some(pooler);
    db
}

/// Creates a database with a unique name on the `DATABASE_URL` server and applies migrations;
/// panics when it cannot, as a test cannot go on without one.
pub async fn fresh_database() -> TestDb {
    let base = std::env::var("DATABASE_URL").expect(
        "DATABASE_URL must name a PostgreSQL server for the tests (`make test` starts a throwaway one)",
    );
    let (url, name) = create_database(&base, "oc_test")
        .await
        .unwrap_or_else(|e| panic!("{e:#}"));
    let pool = openclaws_store::connect(&url, 10)
        .await
        .expect("connect to test database");
    openclaws_store::migrate(&pool)
        .await
        .expect("migrate test database");
    TestDb {
        controller: Db::from(pool.clone()),
        pool,
        url,
        name,
        pooler: None,
    }
}

/// Creates an empty database named `{prefix}_{random}` on the server at `base` and returns its
/// URL and name, so that runs sharing one server never see each other's rows.
pub async fn create_database(base: &str, prefix: &str) -> anyhow::Result<(String, String)> {
    let admin = PgPool::connect(base)
        .await
        .context("cannot connect to DATABASE_URL")?;
    let name = format!("{prefix}_{}", uuid::Uuid::new_v4().simple());
    admin
        .execute(format!("CREATE DATABASE {name}").as_str())
        .await
        .with_context(|| format!("create database {name}"))?;
    admin.close().await;
    let mut url = reqwest::Url::parse(base).context("DATABASE_URL is a URL")?;
    url.set_path(&format!("/{name}"));
    Ok((url.to_string(), name))
}

/// Drops a database made by [`create_database`] (closing its connections), for runs that clean
/// up after themselves; a failure is ignored, as the database is throwaway either way.
pub async fn drop_database(base: &str, name: &str) {
    if let Ok(admin) = PgPool::connect(base).await {
        let _ = admin
            .execute(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)").as_str())
            .await;
        admin.close().await;
    }
}

/// Inserts an instance row with a visit queued (as a create through the API leaves it), through
/// `db`, for tests of the work queue that run no API; returns its uid.
pub async fn insert_queued_instance(db: &Db, name: &str) -> uuid::Uuid {
    let uid = uuid::Uuid::new_v4();
    let mut tx = db.begin().await.expect("begin");
    sqlx::query("INSERT INTO instances (uid, name, customer_id, spec) VALUES ($1, $2, 'c', $3)")
        .bind(uid)
        .bind(name)
        .bind(serde_json::json!({"customerId": "c", "region": "iad"}))
        .execute(&mut tx)
        .await
        .expect("insert the instance");
    openclaws_store::work::enqueue_now(&mut tx, uid, "test")
        .await
        .expect("queue its visit");
    tx.commit().await.expect("commit");
    uid
}

/// Inserts `count` instances named `{prefix}-{i}` straight into the store (no work queued):
/// rows for benches that measure the store's own writes.
pub async fn seed_instances(
    pool: &PgPool,
    prefix: &str,
    count: usize,
) -> anyhow::Result<Vec<openclaws_store::InstanceRecord>> {
    let labels = std::collections::BTreeMap::new();
    let spec = serde_json::json!({"customerId": "c", "region": "iad"});
    let mut records = Vec::new();
    for i in 0..count {
        let name = format!("{prefix}-{i}");
        let new = openclaws_store::instances::NewInstance {
            uid: uuid::Uuid::now_v7(),
            name: &name,
            customer_id: "c",
            labels: &labels,
            spec: &spec,
            managed: &Default::default(),
        };
        let record = openclaws_store::instances::insert(pool, &new).await?;
        records.push(record.context("a new name")?);
    }
    Ok(records)
}

/// Polls `check` until it returns `Some`, or panics with `what` after `timeout`.
pub async fn eventually<T, F, Fut>(timeout: Duration, what: &str, mut check: F) -> T
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
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
