//! The short chaos run of `make test`: three real controller replicas, fifteen instances and
//! one seed under every kind of fault of the harness (a replica killed and one frozen past its
//! lease, PostgreSQL stopped, a Fly outage, faults of the simulator's catalogue), then every
//! invariant checked. `make chaos` runs the long version over twenty seeds; `docs/chaos.md`
//! explains both. `CHAOS_SEED` picks another seed.

use openclaws_testkit::chaos::{self, report, ChaosOptions};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_short_seeded_chaos_run_keeps_every_invariant() {
    let seed = std::env::var("CHAOS_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1);
    let options = ChaosOptions::short(seed);
    let run = chaos::run(&options).await.expect("the chaos run");
    println!("{}", report::seed(&run));
    // Each major fault happened (a skipped one would make the run prove less than it says).
    for kind in ["kill -9", "SIGSTOP", "PostgreSQL down", "Fly outage"] {
        assert!(
            run.faults
                .iter()
                .any(|f| f.contains(kind) && !f.contains("skipped")),
            "no {kind} was applied: {:?}",
            run.faults
        );
    }
    assert!(
        run.figures.mutations_checked > 0,
        "no mutation was checked against the lease log"
    );
    assert!(
        run.passed(),
        "seed {seed} broke invariants:\n{}\nreplay: {}",
        run.violations
            .iter()
            .map(|v| format!("[{}] {}", v.invariant, v.detail))
            .collect::<Vec<_>>()
            .join("\n"),
        options.replay_command()
    );
}
