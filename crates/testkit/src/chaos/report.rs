//! How a chaos run reads: per seed, the faults as applied, every invariant with its figures,
//! each violation and the command that replays the seed; for several seeds, one table.

use std::fmt::Write as _;
use std::time::Duration;

use super::SeedReport;

fn secs(d: Duration) -> String {
    format!("{:.1}s", d.as_secs_f64())
}

/// One seed in detail.
pub fn seed(report: &SeedReport) -> String {
    let f = &report.figures;
    let o = &report.options;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "seed {}: {} replicas, {} instances, {}s of faults, lease {}s: {} in {}",
        o.seed,
        o.replicas,
        o.instances,
        o.duration.as_secs(),
        o.lease_seconds,
        if report.passed() { "PASSED" } else { "FAILED" },
        secs(report.elapsed)
    );
    let _ = writeln!(out, "  faults:");
    for fault in &report.faults {
        let _ = writeln!(out, "    {fault}");
    }
    let mark = |ok: bool| if ok { "ok  " } else { "FAIL" };
    let inv = |name: &str| report.violations.iter().all(|v| v.invariant != name);
    let _ = writeln!(out, "  invariants:");
    let _ = writeln!(
        out,
        "    {} converged: {}/{} as asked ({} gone, {} paused){}",
        mark(inv("converged")),
        f.converged,
        f.instances,
        f.gone,
        f.paused,
        match report.converged_after {
            Some(d) => format!(", {} after the faults ended", secs(d)),
            None => format!(", not within {}", secs(o.deadline)),
        }
    );
    let _ = writeln!(
        out,
        "    {} duplicates: {} (machines or volumes beyond one per app, apps beyond one per instance)",
        mark(inv("duplicates")),
        f.duplicates
    );
    let _ = writeln!(out, "    {} orphans: {}", mark(inv("orphans")), f.orphans);
    let _ = writeln!(
        out,
        "    {} foreign resources touched: {}",
        mark(inv("foreign")),
        f.foreign_touched
    );
    let _ = writeln!(
        out,
        "    {} mutations without the lease: {} (of {} checked against the lease log; {} not traceable to an instance)",
        mark(inv("fencing")),
        f.unfenced,
        f.mutations_checked,
        f.mutations_unattributed
    );
    let _ = writeln!(
        out,
        "    {} acknowledged writes lost: {} (writes: {} acknowledged, {} in doubt, {} refused as stale, {} skipped)",
        mark(inv("acknowledged writes")),
        f.lost_acks,
        f.writes.0,
        f.writes.1,
        f.writes.2,
        f.writes.3
    );
    let _ = writeln!(
        out,
        "    {} Fly 429s: {} from the rate limits, {} unexplained ({} injected by fault rules)",
        mark(inv("429s")),
        f.limiter_429,
        f.unexplained_429,
        f.injected_429
    );
    let _ = writeln!(
        out,
        "    {} events: {} abandoned reconciles missing calls ({} listed, {} could not be recorded: killed or database down), {} successful steps missing",
        mark(inv("events")),
        f.events_missing,
        f.abandoned_listed,
        f.unrecordable.len(),
        f.steps_missing
    );
    for note in &f.unrecordable {
        let _ = writeln!(out, "           not in events: {note}");
    }
    let _ = writeln!(
        out,
        "    {} wait outside faults: max {}, median {} over {} writes (bound {}); max with faults {}",
        mark(inv("wait")),
        f.max_clean_wait
            .as_ref()
            .map_or("-".to_owned(), |(d, what)| format!("{} ({what})", secs(*d))),
        f.clean_waits.1.map_or("-".to_owned(), secs),
        f.clean_waits.0,
        secs(o.max_wait),
        f.max_any_wait
            .as_ref()
            .map_or("-".to_owned(), |(d, what)| format!("{} ({what})", secs(*d))),
    );
    let _ = writeln!(out, "  requests to the simulator: {}", f.requests);
    if !report.passed() {
        let _ = writeln!(out, "  violations:");
        for v in &report.violations {
            let _ = writeln!(out, "    [{}] {}", v.invariant, v.detail);
        }
        let _ = writeln!(out, "  logs: {}", report.log_dir.display());
        let _ = writeln!(out, "  replay: {}", o.replay_command());
    }
    out
}

/// One line per seed, with the figure of every invariant.
pub fn table(reports: &[SeedReport]) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:>5} {:>7} {:>9} {:>4} {:>7} {:>7} {:>8} {:>5} {:>6} {:>6} {:>9} {:>9}  result",
        "seed",
        "time",
        "converged",
        "dups",
        "orphans",
        "foreign",
        "unfenced",
        "lost",
        "429s",
        "events",
        "max wait",
        "converge"
    );
    for r in reports {
        let f = &r.figures;
        let _ = writeln!(
            out,
            "{:>5} {:>7} {:>9} {:>4} {:>7} {:>7} {:>8} {:>5} {:>6} {:>6} {:>9} {:>9}  {}",
            r.options.seed,
            secs(r.elapsed),
            format!("{}/{}", f.converged, f.instances),
            f.duplicates,
            f.orphans,
            f.foreign_touched,
            f.unfenced,
            f.lost_acks,
            f.limiter_429 + f.unexplained_429.unsigned_abs(),
            f.events_missing + f.steps_missing,
            f.max_clean_wait
                .as_ref()
                .map_or("-".to_owned(), |(d, _)| secs(*d)),
            r.converged_after.map_or("-".to_owned(), secs),
            if r.passed() { "ok" } else { "FAILED" }
        );
    }
    out
}
