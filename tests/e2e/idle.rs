//! What an idle controller costs the database: every loop of `serve` (dispatcher, webhook
//! worker, release worker, circuit watch, pairing pool, stuck sweep, fleet watch, gauges) with
//! nothing to do, at the production intervals. The goal is under one transaction a second
//! (measured alone: 0.5-0.8/s, `docs/idle.md`); this guard fails at 3/s, which any loop
//! polling its table again (the old 250 ms webhook poll alone was 4/s) exceeds, while the
//! database statistics' extra counts on a machine busy with other suites (unexplained, up
//! to ~1/s) do not.

use std::time::{Duration, Instant};

use openclaws_testkit::process::{free_port, spawn_controller_logging_with, wait_api};
use openclaws_testkit::stack::{Stack, StackOptions};

/// Commits and rollbacks of the test's database so far (as the statistics have them).
async fn transactions(pool: &sqlx::PgPool) -> i64 {
    let (n,): (i64,) = sqlx::query_as(
        "SELECT xact_commit + xact_rollback FROM pg_stat_database \
         WHERE datname = current_database()",
    )
    .fetch_one(pool)
    .await
    .expect("read the database's statistics");
    n
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_controller_costs_under_one_transaction_a_second() {
    let stack = Stack::start_without_controller(StackOptions::default()).await;
    let port = free_port();
    let log = std::env::temp_dir().join(format!("openclaws-idle-{port}.log"));
    let _controller = spawn_controller_logging_with(
        &stack,
        port,
        &log,
        &[
            // Production intervals: the fleet watch and the pairing pool on, their defaults.
            ("OPENCLAWS_WATCH_SECONDS", "15"),
            ("OPENCLAWS_GATEWAY_CHECKS", "true"),
            ("OPENCLAWS_POLL_SECONDS", "2"),
        ],
    );
    let http = reqwest::Client::new();
    wait_api(&http, &format!("http://127.0.0.1:{port}")).await;

    // Autovacuum visits a database whose catalogs the migrations just filled, one transaction
    // per table, and the statistics count those with the controller's: do its work now.
    sqlx::query("VACUUM (ANALYZE)")
        .execute(&stack.db.pool)
        .await
        .expect("vacuum the fresh database");
    // Start-up (migrations, first looks) is not idle: wait until ten seconds pass with at most
    // a few transactions (the statistics arrive up to a second late).
    let settle_by = Instant::now() + Duration::from_secs(120);
    let mut last = transactions(&stack.db.pool).await;
    loop {
        tokio::time::sleep(Duration::from_secs(10)).await;
        let now = transactions(&stack.db.pool).await;
        if now - last <= 12 {
            break;
        }
        assert!(Instant::now() < settle_by, "the controller never went idle");
        last = now;
    }

    // A minute: every loop's timer fires at least once (the slowest, the webhook prune, is
    // counted at start-up), and the statistics' late arrival evens out.
    let window = Duration::from_secs(60);
    let before = transactions(&stack.db.pool).await;
    tokio::time::sleep(window).await;
    // This test's own two reads of the statistics count too.
    let spent = transactions(&stack.db.pool).await - before - 2;
    let rate = spent as f64 / window.as_secs_f64();
    let (vacuumed,): (i64,) = sqlx::query_as(
        "SELECT count(*) FROM pg_stat_user_tables \
         WHERE greatest(last_autovacuum, last_autoanalyze) > now() - interval '70 seconds'",
    )
    .fetch_one(&stack.db.pool)
    .await
    .unwrap();
    println!(
        "idle controller, no instances: {spent} transactions in {} s ({rate:.2}/s); \
         tables autovacuumed meanwhile: {vacuumed}",
        window.as_secs()
    );
    assert!(
        rate < 3.0,
        "an idle controller spent {spent} transactions in {} s ({rate:.2}/s); log: {}",
        window.as_secs(),
        log.display()
    );
}
