//! A transaction cut off while its `BEGIN` is in flight must not leave its connection inside a
//! transaction for the next borrower (sqlx 0.8's `begin` is not cancel-safe on PostgreSQL:
//! launchbadge/sqlx#4393). The chaos run found it: a reconcile abandoned when its lease was
//! lost left such a connection, the replica's next lease update ran inside that transaction and
//! never committed, and its lock kept every replica away from the instance until shutdown.
//!
//! A proxy holds the server's answers back, so the server has run `BEGIN` while the client,
//! waiting for the answer, is dropped; then a statement through the same one-connection pool
//! must commit (seen from another connection) and no session stays idle in a transaction.

use openclaws_store::{Db, PoolMode};
use openclaws_testkit::db::{eventually, fresh_database, TestDb};
use openclaws_testkit::proxy::PausableProxy;
use sqlx::postgres::PgConnectOptions;
use std::str::FromStr;
use std::time::Duration;

/// How long a cut-off request waits for its held answer before it is dropped.
const CUT_OFF: Duration = Duration::from_millis(300);

struct Probe {
    test: TestDb,
    proxy: PausableProxy,
    db: Db,
}

/// A fresh database with a probe table, and a one-connection [`Db`] through a proxy.
async fn probe(mode: PoolMode) -> Probe {
    let test = fresh_database().await;
    sqlx::query("CREATE TABLE cancel_probe (n int NOT NULL)")
        .execute(&test.pool)
        .await
        .unwrap();
    let options = PgConnectOptions::from_str(&test.url).unwrap();
    let server = format!("{}:{}", options.get_host(), options.get_port());
    let proxy = PausableProxy::start(server.clone()).await;
    let url = test.url.replacen(&server, &proxy.addr.to_string(), 1);
    assert_ne!(url, test.url, "the URL names the server as host:port");
    let db = Db::connect(&url, 1, mode).await.unwrap();
    sqlx::query("SELECT 1").execute(&db).await.unwrap();
    Probe { test, proxy, db }
}

impl Probe {
    /// Checks, from another connection, that no session of the database is left inside a
    /// transaction, then that a statement through the pool (`INSERT n`) commits.
    async fn a_later_statement_commits(&self, n: i32) {
        eventually(
            Duration::from_secs(5),
            "no session left in a transaction",
            || async {
                let open: i64 = sqlx::query_scalar(
                    "SELECT count(*) FROM pg_stat_activity \
                 WHERE datname = $1 AND state LIKE 'idle in transaction%'",
                )
                .bind(&self.test.name)
                .fetch_one(&self.test.pool)
                .await
                .unwrap();
                (open == 0).then_some(())
            },
        )
        .await;
        sqlx::query("INSERT INTO cancel_probe VALUES ($1)")
            .bind(n)
            .execute(&self.db)
            .await
            .unwrap();
        let seen: i64 = sqlx::query_scalar("SELECT count(*) FROM cancel_probe WHERE n = $1")
            .bind(n)
            .fetch_one(&self.test.pool)
            .await
            .unwrap();
        assert_eq!(seen, 1, "the statement after a cut-off BEGIN committed");
    }
}

#[tokio::test]
async fn a_begin_cut_off_in_flight_leaves_no_open_transaction() {
    let probe = probe(PoolMode::Session).await;
    probe.proxy.hold_answers_from(b"BEGIN");
    let cut = tokio::time::timeout(CUT_OFF, probe.db.begin()).await;
    assert!(cut.is_err(), "BEGIN's answer was held back");
    probe.proxy.release_answers();
    probe.a_later_statement_commits(1).await;
}

#[tokio::test]
async fn a_begin_cut_off_on_a_held_connection_leaves_no_open_transaction() {
    let probe = probe(PoolMode::Session).await;
    let mut conn = probe.db.acquire().await.unwrap();
    probe.proxy.hold_answers_from(b"BEGIN");
    let cut = tokio::time::timeout(CUT_OFF, conn.begin()).await;
    assert!(cut.is_err(), "BEGIN's answer was held back");
    drop(cut);
    drop(conn);
    probe.proxy.release_answers();
    probe.a_later_statement_commits(2).await;
}

#[tokio::test]
async fn a_wrapped_statement_cut_off_behind_a_transaction_pooler_leaves_no_open_transaction() {
    let probe = probe(PoolMode::Transaction).await;
    probe.proxy.hold_answers_from(b"BEGIN");
    let insert = sqlx::query("INSERT INTO cancel_probe VALUES (3)").execute(&probe.db);
    assert!(tokio::time::timeout(CUT_OFF, insert).await.is_err());
    probe.proxy.release_answers();
    probe.a_later_statement_commits(4).await;
}
