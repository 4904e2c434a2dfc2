//! The controller through a transaction-mode pooler (issue 12), as with Supabase's transaction
//! pooler (Supavisor on port 6543): a throwaway PgBouncer in `pool_mode = transaction` stands
//! between the controller and PostgreSQL, `DATABASE_URL` names PgBouncer with
//! `OPENCLAWS_DB_POOL_MODE=transaction`, and `DATABASE_LISTEN_URL` names PostgreSQL itself.
//!
//! The scenarios are the other modules' own (lifecycle, work queue, fleet watch), run on a
//! stack or database made with the pooler in front; PgBouncer's admin console shows the
//! controller's transactions went through it. A scenario of another module joins by taking a
//! `&Stack` (built with `StackOptions { pooler: true, .. }`) or a `&TestDb` (from
//! `fresh_database_behind_pooler`).

use openclaws_store::{Db, PoolMode};
use openclaws_testkit::db::{eventually, fresh_database, fresh_database_behind_pooler};
use openclaws_testkit::pgbouncer::{DatabaseStats, PoolerSettings, ThrowawayPgBouncer};
use openclaws_testkit::process::{free_port, spawn_controller, wait_api};
use openclaws_testkit::stack::{Stack, StackOptions};
use reqwest::StatusCode;
use serde_json::json;
use std::time::Duration;

use crate::{e2e_lifecycle, e2e_watch, queue};

/// A stack whose controller reaches its database through a transaction pooler.
async fn pooled_stack() -> Stack {
    Stack::start(StackOptions {
        pooler: true,
        ..StackOptions::default()
    })
    .await
}

/// PgBouncer's totals for the stack's database.
async fn pooler_stats(stack: &Stack) -> DatabaseStats {
    let pooler = stack.db.pooler.as_ref().expect("a stack behind a pooler");
    pooler.stats(&stack.db.name).await.expect("SHOW STATS")
}

/// Runs `scenario` on a pooled stack and checks the controller's statements went through the
/// pooler: PgBouncer counted its transactions (more than `at_least`, with statistics a second
/// late) and never held more server connections than its pool.
async fn through_the_pooler<F>(stack: &Stack, at_least: i64, scenario: F)
where
    F: std::future::Future<Output = ()>,
{
    let pooler = stack.db.pooler.as_ref().expect("a stack behind a pooler");
    let before = pooler_stats(stack).await;
    scenario.await;
    let counted = eventually(
        Duration::from_secs(10),
        "PgBouncer to count the controller's transactions",
        || async {
            let now = pooler_stats(stack).await;
            (now.transactions - before.transactions > at_least).then_some(now)
        },
    )
    .await;
    let pools = pooler.pools(&stack.db.name).await.expect("SHOW POOLS");
    assert!(
        pools.servers() <= i64::from(pooler.settings().pool_size),
        "PgBouncer held more server connections than its pool: {pools:?}"
    );
    println!(
        "through PgBouncer: {} transactions, {} statements; pool now {pools:?}",
        counted.transactions - before.transactions,
        counted.queries - before.queries
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lifecycle_through_a_transaction_pooler() {
    let stack = pooled_stack().await;
    through_the_pooler(
        &stack,
        100,
        e2e_lifecycle::create_update_stop_start_and_delete_on(&stack),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paused_instance_through_a_transaction_pooler() {
    let stack = pooled_stack().await;
    through_the_pooler(
        &stack,
        20,
        e2e_lifecycle::a_paused_instance_gets_no_fly_calls_until_resumed_on(&stack),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_a_paused_instance_through_a_transaction_pooler() {
    let stack = pooled_stack().await;
    through_the_pooler(
        &stack,
        20,
        e2e_lifecycle::deleting_a_paused_instance_tears_it_down_on(&stack),
    )
    .await;
}

/// The fleet watch's advisory lock key ("oc-watch"): other advisory locks (the stuck sweep's,
/// transaction-scoped) come and go beside it.
const WATCH_LOCK_KEY: i64 = 0x6f63_2d77_6174_6368;

/// The fleet watch's lock is a session advisory lock: it is taken on `DATABASE_LISTEN_URL`,
/// and the watch's reads and wake-ups go through the pooler.
#[tokio::test]
async fn the_fleet_watch_through_a_transaction_pooler() {
    let stack = e2e_watch::watch_stack_via(true).await;
    through_the_pooler(
        &stack,
        20,
        e2e_watch::a_machine_stopped_or_destroyed_out_of_band_is_repaired_by_the_watch_on(&stack),
    )
    .await;
    let holders: Vec<i32> = sqlx::query_scalar(
        "SELECT l.pid FROM pg_locks l JOIN pg_database d ON d.oid = l.database \
         WHERE l.locktype = 'advisory' AND l.granted AND d.datname = current_database() \
           AND l.classid::bigint = $1 AND l.objid::bigint = $2",
    )
    .bind(WATCH_LOCK_KEY >> 32)
    .bind(WATCH_LOCK_KEY & 0xffff_ffff)
    .fetch_all(&stack.db.pool)
    .await
    .unwrap();
    let pooler = stack.db.pooler.as_ref().unwrap();
    let through_pooler = pooler.server_pids(&stack.db.name).await.unwrap();
    assert_eq!(holders.len(), 1, "one session holds the watch lock");
    assert!(
        !through_pooler.contains(&holders[0]),
        "the watch lock is held on one of PgBouncer's server connections"
    );
}

/// The controller binary, configured by its environment as in production, serves and converges
/// through the pooler.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_controller_process_through_a_transaction_pooler() {
    let mut stack = Stack::start_without_controller(StackOptions {
        pooler: true,
        ..StackOptions::default()
    })
    .await;
    let port = free_port();
    let _controller = spawn_controller(&stack, port);
    stack.api_url = format!("http://127.0.0.1:{port}");
    wait_api(&stack.http, &stack.api_url).await;
    through_the_pooler(&stack, 20, async {
        let (code, body) = stack
            .put("proc", json!({"customerId": "c", "region": "iad"}))
            .await;
        assert_eq!(code, StatusCode::CREATED, "{body}");
        stack.wait_ready("proc", Duration::from_secs(60)).await;
    })
    .await;
}

// The work queue's scenarios, each on a database behind the pooler: the controller's
// dispatcher (claims, renewals, completions) and the store calls go through PgBouncer, LISTEN
// goes straight to PostgreSQL.

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn queue_two_pools_never_reconcile_one_key_at_once_through_a_pooler() {
    queue::two_pools_never_reconcile_one_key_at_once_on(&fresh_database_behind_pooler().await)
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queue_a_dead_workers_lease_is_taken_over_through_a_pooler() {
    queue::a_dead_workers_lease_is_taken_over_after_expiry_on(
        &fresh_database_behind_pooler().await,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queue_a_write_wakes_an_idle_worker_through_a_pooler() {
    queue::a_write_wakes_an_idle_worker_at_once_on(&fresh_database_behind_pooler().await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queue_polling_alone_finds_work_through_a_pooler() {
    queue::polling_alone_finds_work_without_listen_on(&fresh_database_behind_pooler().await).await;
}

#[tokio::test]
async fn queue_a_request_during_a_reconcile_is_not_lost_through_a_pooler() {
    queue::a_request_during_a_reconcile_is_not_lost_on(&fresh_database_behind_pooler().await).await;
}

#[tokio::test]
async fn queue_a_lapsed_lease_is_fenced_through_a_pooler() {
    queue::a_lapsed_lease_is_fenced_and_its_takeover_rechecked_on(
        &fresh_database_behind_pooler().await,
    )
    .await;
}

#[tokio::test]
async fn queue_held_instances_are_woken_through_a_pooler() {
    queue::held_instances_are_woken_oldest_first_with_a_fresh_streak_on(
        &fresh_database_behind_pooler().await,
    )
    .await;
}

#[tokio::test]
async fn queue_events_for_a_deleted_instance_through_a_pooler() {
    queue::events_for_a_deleted_instance_keep_its_name_on(&fresh_database_behind_pooler().await)
        .await;
}

/// Two statements that take one parameter each and answer differently, run at once from many
/// tasks through `db`: how many failed, and how many answered another statement's result.
async fn hammer(db: &Db, rounds: i64) -> (u64, u64, Vec<String>) {
    let mut tasks = Vec::new();
    for task in 0..8i64 {
        let db = db.clone();
        tasks.push(tokio::spawn(async move {
            let (mut failed, mut wrong, mut errors) = (0u64, 0u64, Vec::new());
            for i in 0..rounds {
                let (sql, want) = match (i + task) % 2 {
                    0 => ("SELECT $1::int8 + 1", i + 1),
                    _ => ("SELECT $1::int8 * 1000", i * 1000),
                };
                // Alternately on the pool and on a connection in a transaction of its own.
                let got = match i % 3 {
                    0 => {
                        sqlx::query_scalar::<_, i64>(sql)
                            .bind(i)
                            .fetch_one(&db)
                            .await
                    }
                    1 => match db.acquire().await {
                        Ok(mut conn) => {
                            sqlx::query_scalar::<_, i64>(sql)
                                .bind(i)
                                .fetch_one(&mut conn)
                                .await
                        }
                        Err(e) => Err(e),
                    },
                    _ => {
                        async {
                            let mut tx = db.begin().await?;
                            let got = sqlx::query_scalar::<_, i64>(sql)
                                .bind(i)
                                .fetch_one(&mut tx)
                                .await?;
                            tx.commit().await?;
                            Ok(got)
                        }
                        .await
                    }
                };
                match got {
                    Ok(got) if got != want => wrong += 1,
                    Ok(_) => {}
                    Err(e) => {
                        failed += 1;
                        if errors.len() < 3 {
                            errors.push(e.to_string());
                        }
                    }
                }
            }
            (failed, wrong, errors)
        }));
    }
    let (mut failed, mut wrong, mut errors) = (0, 0, Vec::new());
    for task in tasks {
        let (f, w, e) = task.await.unwrap();
        failed += f;
        wrong += w;
        errors.extend(e);
    }
    (failed, wrong, errors)
}

/// Without `OPENCLAWS_DB_POOL_MODE=transaction`, the controller cannot even connect to a
/// PgBouncer that does not ignore sqlx's `extra_float_digits`; and where the parameter is let
/// through, sqlx's prepared statements meet other clients' on PgBouncer's server connections:
/// statements fail ("prepared statement \"sqlx_s_1\" already exists", "… does not exist") or,
/// worse, run another client's statement with their parameters and answer its result. With it,
/// every answer is right.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn statements_through_a_transaction_pooler_need_its_pool_mode() {
    let db = fresh_database().await;
    let pooler = ThrowawayPgBouncer::start(&db.url, PoolerSettings { pool_size: 2 })
        .await
        .unwrap();
    let url = pooler.url(&db.name);

    let refused = Db::connect(&url, 10, PoolMode::Session).await.unwrap_err();
    assert!(
        refused.to_string().contains("extra_float_digits"),
        "{refused}"
    );
    // As sqlx connects by default, but without the start-up parameter.
    let options = url
        .parse::<sqlx::postgres::PgConnectOptions>()
        .unwrap()
        .extra_float_digits(None);
    let pool = sqlx::postgres::PgPoolOptions::new()
        .max_connections(10)
        .connect_with(options)
        .await
        .unwrap();
    let session = Db::new(pool, PoolMode::Session);
    let (failed, wrong, errors) = eventually(
        Duration::from_secs(60),
        "statements in session mode to go wrong through the pooler",
        || async {
            let (failed, wrong, errors) = hammer(&session, 50).await;
            (failed + wrong > 0).then_some((failed, wrong, errors))
        },
    )
    .await;
    println!("session mode through PgBouncer: {failed} failed, {wrong} wrong answers: {errors:?}");
    session.close().await;

    let transaction = Db::connect(&url, 10, PoolMode::Transaction).await.unwrap();
    let (failed, wrong, errors) = hammer(&transaction, 300).await;
    assert_eq!(
        (failed, wrong),
        (0, 0),
        "transaction mode through PgBouncer: {errors:?}"
    );
}

/// `migrate` takes a session advisory lock: it runs over `DATABASE_LISTEN_URL` when one is
/// given, and a transaction pooler without one is refused before anything is sent.
#[tokio::test]
async fn migrate_runs_over_the_session_url() {
    let base = std::env::var("DATABASE_URL").expect("DATABASE_URL");
    let (url, name) = openclaws_testkit::db::create_database(&base, "oc_migrate")
        .await
        .unwrap();
    let pooler = ThrowawayPgBouncer::start(&url, PoolerSettings::default())
        .await
        .unwrap();
    let binary = openclaws_testkit::workspace_binary("openclaws-controller").unwrap();
    let migrate = |listen: Option<&str>| {
        let mut command = std::process::Command::new(&binary);
        command
            .arg("migrate")
            .env_clear()
            .env("DATABASE_URL", pooler.url(&name))
            .env("OPENCLAWS_DB_POOL_MODE", "transaction");
        if let Some(listen) = listen {
            command.env("DATABASE_LISTEN_URL", listen);
        }
        command.output().expect("run migrate")
    };
    let refused = migrate(None);
    assert!(!refused.status.success());
    let said = String::from_utf8_lossy(&refused.stderr);
    assert!(said.contains("DATABASE_LISTEN_URL"), "{said}");

    let done = migrate(Some(&url));
    assert!(
        done.status.success(),
        "{}",
        String::from_utf8_lossy(&done.stderr)
    );
    let direct = openclaws_store::connect(&url, 1).await.unwrap();
    assert!(openclaws_store::migrations_applied(&direct).await.unwrap());
    direct.close().await;
    openclaws_testkit::db::drop_database(&base, &name).await;
}
