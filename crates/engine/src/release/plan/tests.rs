//! The planner driven through whole releases against a simulated fleet: random sizes,
//! strategies, outcomes on the new image, deletions and operator actions.

use super::*;
use openclaws_model::release::Strategy as ReleaseStrategy;
use proptest::prelude::*;
use proptest::strategy::Strategy;

const NEW: &str = "openclaw:new";
const OLD: &str = "openclaw:old";

/// How an instance fares on the new image.
#[derive(Debug, Clone, Copy)]
enum Outcome {
    /// Ready this many steps after its write is reconciled.
    Healthy(u8),
    /// Crash loops once reconciled.
    Crashes,
    /// Never becomes Ready (the deadline fails it).
    Hangs,
}

/// One simulated instance: its spec and what the controller last recorded.
#[derive(Debug, Clone)]
struct Instance {
    spec_image: String,
    generation: i64,
    observed_generation: i64,
    running_image: String,
    ready_at_step: Option<u32>,
    crashing: bool,
    deleted: bool,
}

impl Instance {
    fn view(&self, step: u32) -> Seen {
        if self.deleted {
            return Seen::Gone;
        }
        Seen::Found(InstanceView {
            spec_image: self.spec_image.clone(),
            generation: self.generation,
            observed_generation: self.observed_generation,
            ready: self.ready_at_step.is_some_and(|s| step >= s) && !self.crashing,
            running_image: Some(self.running_image.clone()),
            failing: self
                .crashing
                .then(|| "the machine is crash looping".to_owned()),
        })
    }

    /// The controller reconciles the latest generation: it runs the spec's image now.
    fn reconcile(&mut self, step: u32, outcome: Outcome) {
        if self.observed_generation == self.generation {
            return;
        }
        self.observed_generation = self.generation;
        self.running_image = self.spec_image.clone();
        let on_new = self.spec_image == NEW;
        let (ready, crashing) = match (on_new, outcome) {
            (false, _) => (Some(step + 1), false),
            (true, Outcome::Healthy(delay)) => (Some(step + u32::from(delay)), false),
            (true, Outcome::Crashes) => (None, true),
            (true, Outcome::Hangs) => (None, false),
        };
        self.ready_at_step = ready;
        self.crashing = crashing;
    }
}

/// A release and its fleet, stepped once per simulated second.
struct Sim {
    strategy: ReleaseStrategy,
    phase: ReleasePhase,
    wave: u32,
    paused: bool,
    abort: Option<OnHalt>,
    members: Vec<Member>,
    fleet: Vec<Instance>,
    outcomes: Vec<Outcome>,
    step: u32,
    started_after_halt: bool,
}

fn t0() -> DateTime<Utc> {
    DateTime::from_timestamp(1_800_000_000, 0).unwrap()
}

impl Sim {
    fn new(strategy: ReleaseStrategy, outcomes: Vec<Outcome>) -> Self {
        let waves = openclaws_model::release::assign_waves(outcomes.len(), &strategy);
        let members = waves
            .iter()
            .enumerate()
            .map(|(i, wave)| Member {
                name: format!("i{i:03}"),
                wave: *wave,
                state: MemberState::Pending,
                previous_image: OLD.to_owned(),
                generation: None,
                deadline: None,
            })
            .collect();
        let fleet = outcomes
            .iter()
            .map(|_| Instance {
                spec_image: OLD.to_owned(),
                generation: 1,
                observed_generation: 1,
                running_image: OLD.to_owned(),
                ready_at_step: Some(0),
                crashing: false,
                deleted: false,
            })
            .collect();
        Sim {
            strategy,
            phase: ReleasePhase::Progressing,
            wave: 0,
            paused: false,
            abort: None,
            members,
            fleet,
            outcomes,
            step: 0,
            started_after_halt: false,
        }
    }

    fn rollout(&self) -> Rollout<'_> {
        Rollout {
            phase: self.phase,
            wave: self.wave,
            paused: self.paused,
            abort: self.abort,
            strategy: &self.strategy,
            image: NEW,
            now: t0() + Duration::seconds(self.step.into()),
        }
    }

    fn seen(&self) -> Vec<Seen> {
        let mut seen = vec![Seen::NotLoaded; self.members.len()];
        for i in wanted(&self.rollout(), &self.members) {
            seen[i] = self.fleet[i].view(self.step);
        }
        seen
    }

    /// One step: plan, check the invariants on it, store it, let the fleet move.
    fn tick(&mut self) -> Step {
        let seen = self.seen();
        let step = plan(&self.rollout(), &self.members, &seen);
        assert_eq!(
            step,
            plan(&self.rollout(), &self.members, &seen),
            "deterministic"
        );
        self.check(&step);
        self.apply(&step);
        for (i, instance) in self.fleet.iter_mut().enumerate() {
            if !instance.deleted {
                instance.reconcile(self.step, self.outcomes[i]);
            }
        }
        self.step += 1;
        step
    }

    fn check(&mut self, step: &Step) {
        let halted_before = !matches!(self.phase, ReleasePhase::Progressing | ReleasePhase::Paused);
        let mut after: Vec<MemberState> = self.members.iter().map(|m| m.state).collect();
        for change in &step.changes {
            after[change.index] = change.to;
        }
        for change in &step.changes {
            let before = self.members[change.index].state;
            if change.to == MemberState::Updating {
                assert_eq!(before, MemberState::Pending, "only a pending member starts");
                assert!(!self.paused, "nothing starts while paused");
                let wave = self.members[change.index].wave;
                let earlier_open = self
                    .members
                    .iter()
                    .zip(&after)
                    .any(|(m, s)| m.wave < wave && !s.is_settled());
                assert!(
                    !earlier_open,
                    "a wave starts only after the one before settled"
                );
                self.started_after_halt |= halted_before;
            }
            if change.write_image.is_some() {
                let allowed = match change.to {
                    MemberState::Updating => before == MemberState::Pending,
                    MemberState::RollingBack => matches!(
                        before,
                        MemberState::Failed | MemberState::Updating | MemberState::Healthy
                    ),
                    _ => false,
                };
                assert!(
                    allowed,
                    "an image is written once per start or rollback ({before:?} to {:?})",
                    change.to
                );
            }
        }
    }

    fn apply(&mut self, step: &Step) {
        for change in &step.changes {
            let member = &mut self.members[change.index];
            member.state = change.to;
            if let Some(image) = &change.write_image {
                let instance = &mut self.fleet[change.index];
                instance.spec_image = image.clone();
                instance.generation += 1;
                member.generation = Some(instance.generation);
                member.deadline = change.deadline;
            }
            if let Some(previous) = &change.previous_image {
                member.previous_image = previous.clone();
            }
        }
        self.phase = step.phase;
        self.wave = step.wave;
        let down = self
            .members
            .iter()
            .filter(|m| m.state.is_unavailable())
            .count();
        assert!(
            down <= self.strategy.max_unavailable as usize,
            "{down} down with maxUnavailable {}",
            self.strategy.max_unavailable
        );
    }

    fn run(&mut self, limit: u32) {
        while !self.phase.is_finished() {
            assert!(
                self.step < limit,
                "the release never finished: {:?}",
                self.phase
            );
            self.tick();
        }
    }

    fn count(&self, state: MemberState) -> usize {
        self.members.iter().filter(|m| m.state == state).count()
    }
}

fn outcome() -> impl Strategy<Value = Outcome> {
    prop_oneof![
        8 => (0u8..4).prop_map(Outcome::Healthy),
        1 => Just(Outcome::Crashes),
        1 => Just(Outcome::Hangs),
    ]
}

fn strategy() -> impl Strategy<Value = ReleaseStrategy> {
    (
        0u32..4,
        prop::sample::select(vec![
            vec![100],
            vec![50, 100],
            vec![10, 25, 50, 100],
            vec![1, 100],
        ]),
        1u32..6,
        10u32..40,
        1u32..5,
        prop_oneof![Just(OnHalt::Rollback), Just(OnHalt::Stop)],
    )
        .prop_map(
            |(canary, waves, max_unavailable, deadline, threshold, on_halt)| ReleaseStrategy {
                canary,
                waves,
                max_unavailable,
                health_deadline_seconds: deadline,
                failure_threshold: threshold,
                on_halt,
            },
        )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]

    /// Whatever happens, never more than `maxUnavailable` down, waves in order, an image
    /// written once per start, and every release ends.
    #[test]
    fn a_release_always_ends_within_its_limits(
        strategy in strategy(),
        outcomes in prop::collection::vec(outcome(), 0..40),
    ) {
        let mut sim = Sim::new(strategy, outcomes);
        sim.run(20_000);
        prop_assert!(!sim.started_after_halt, "nothing starts after a halt");
    }

    /// With every instance healthy on the new image, the release completes and every member
    /// runs it.
    #[test]
    fn a_healthy_fleet_completes(
        strategy in strategy(),
        delays in prop::collection::vec(0u8..4, 0..40),
    ) {
        let outcomes: Vec<Outcome> = delays.into_iter().map(Outcome::Healthy).collect();
        let mut sim = Sim::new(strategy, outcomes);
        sim.run(20_000);
        prop_assert_eq!(sim.phase, ReleasePhase::Completed);
        prop_assert_eq!(sim.count(MemberState::Healthy), sim.members.len());
        prop_assert!(sim.fleet.iter().all(|i| i.running_image == NEW));
    }

    /// Failures at the threshold halt the release; with rollback, every member that was
    /// updated is back on its previous image.
    #[test]
    fn failures_halt_and_roll_back(
        strategy in strategy(),
        outcomes in prop::collection::vec(outcome(), 1..40),
    ) {
        let mut strategy: ReleaseStrategy = strategy;
        strategy.on_halt = OnHalt::Rollback;
        let mut sim = Sim::new(strategy, outcomes);
        sim.run(20_000);
        let failed_ever = sim.members.iter().any(|m| matches!(
            m.state,
            MemberState::RolledBack | MemberState::RollbackFailed
        ));
        if sim.phase == ReleasePhase::RolledBack {
            prop_assert!(failed_ever || sim.members.iter().all(|m| m.state != MemberState::Healthy));
            for (m, i) in sim.members.iter().zip(&sim.fleet) {
                if m.state == MemberState::RolledBack {
                    prop_assert_eq!(&i.spec_image, OLD);
                    prop_assert_eq!(&i.running_image, OLD);
                }
                prop_assert!(m.state != MemberState::Healthy && m.state != MemberState::Failed);
            }
        } else {
            prop_assert_eq!(sim.phase, ReleasePhase::Completed);
            let limit = sim.strategy.failure_threshold.min(sim.strategy.max_unavailable);
            prop_assert!((sim.count(MemberState::Failed) as u32) < limit);
        }
    }

    /// Planning again from the stored rows (a restart between two steps) changes nothing
    /// that was already done: the same step comes out, and no member is written twice.
    #[test]
    fn a_restart_resumes_where_it_was(
        strategy in strategy(),
        outcomes in prop::collection::vec(outcome(), 1..30),
        restart_every in 1u32..7,
    ) {
        let mut sim = Sim::new(strategy, outcomes);
        while !sim.phase.is_finished() && sim.step < 20_000 {
            if sim.step % restart_every == 0 {
                let members = sim.members.clone();
                let seen = sim.seen();
                let first = plan(&sim.rollout(), &members, &seen);
                let again = plan(&sim.rollout(), &members, &seen);
                prop_assert_eq!(first, again);
            }
            sim.tick();
        }
        prop_assert!(sim.phase.is_finished());
    }
}

#[test]
fn a_crashing_canary_halts_before_any_wave_and_is_rolled_back() {
    let strategy = ReleaseStrategy {
        canary: 1,
        waves: vec![50, 100],
        max_unavailable: 1,
        health_deadline_seconds: 30,
        failure_threshold: 1,
        on_halt: OnHalt::Rollback,
    };
    let outcomes = vec![Outcome::Crashes, Outcome::Healthy(0), Outcome::Healthy(0)];
    let mut sim = Sim::new(strategy, outcomes);
    sim.run(1000);
    assert_eq!(sim.phase, ReleasePhase::RolledBack);
    assert_eq!(sim.members[0].state, MemberState::RolledBack);
    assert_eq!(sim.members[1].state, MemberState::Pending);
    assert_eq!(sim.members[2].state, MemberState::Pending);
    assert!(sim
        .fleet
        .iter()
        .all(|i| i.spec_image == OLD && i.running_image == OLD));
    assert_eq!(
        sim.fleet[1].generation, 1,
        "the rest of the fleet was never touched"
    );
}

#[test]
fn a_hanging_instance_fails_at_its_deadline() {
    let strategy = ReleaseStrategy {
        canary: 1,
        waves: vec![100],
        max_unavailable: 1,
        health_deadline_seconds: 20,
        failure_threshold: 1,
        on_halt: OnHalt::Stop,
    };
    let mut sim = Sim::new(strategy, vec![Outcome::Hangs, Outcome::Healthy(0)]);
    sim.run(1000);
    assert_eq!(sim.phase, ReleasePhase::Halted);
    assert_eq!(sim.members[0].state, MemberState::Failed);
    assert!(
        sim.step >= 20,
        "failed only at the deadline (step {})",
        sim.step
    );
    assert_eq!(
        sim.fleet[0].spec_image, NEW,
        "Stop leaves the updated instance as it is"
    );
}

#[test]
fn pause_holds_new_starts_and_resume_goes_on() {
    let strategy = ReleaseStrategy {
        canary: 1,
        waves: vec![100],
        max_unavailable: 2,
        ..ReleaseStrategy::default()
    };
    let mut sim = Sim::new(strategy, vec![Outcome::Healthy(0); 5]);
    sim.tick();
    assert_eq!(sim.count(MemberState::Updating), 1);
    sim.paused = true;
    for _ in 0..10 {
        let step = sim.tick();
        assert_eq!(step.phase, ReleasePhase::Paused);
    }
    assert_eq!(
        sim.count(MemberState::Healthy),
        1,
        "the canary in flight was still judged"
    );
    assert_eq!(sim.count(MemberState::Pending), 4);
    sim.paused = false;
    sim.run(1000);
    assert_eq!(sim.phase, ReleasePhase::Completed);
}

#[test]
fn an_abort_with_rollback_restores_every_updated_member() {
    let strategy = ReleaseStrategy {
        canary: 0,
        waves: vec![100],
        max_unavailable: 3,
        ..ReleaseStrategy::default()
    };
    let mut sim = Sim::new(strategy, vec![Outcome::Healthy(0); 6]);
    while sim.count(MemberState::Healthy) < 3 {
        sim.tick();
    }
    sim.abort = Some(OnHalt::Rollback);
    sim.run(1000);
    assert_eq!(sim.phase, ReleasePhase::RolledBack);
    assert!(sim.fleet.iter().all(|i| i.spec_image == OLD));
}

#[test]
fn deleted_and_already_updated_instances_are_skipped() {
    let strategy = ReleaseStrategy {
        canary: 0,
        waves: vec![100],
        max_unavailable: 3,
        ..ReleaseStrategy::default()
    };
    let mut sim = Sim::new(strategy, vec![Outcome::Healthy(0); 3]);
    sim.fleet[0].deleted = true;
    sim.fleet[1].spec_image = NEW.to_owned();
    sim.run(1000);
    assert_eq!(sim.phase, ReleasePhase::Completed);
    assert_eq!(sim.members[0].state, MemberState::Skipped);
    assert_eq!(sim.members[1].state, MemberState::Skipped);
    assert_eq!(sim.members[2].state, MemberState::Healthy);
}

#[test]
fn the_health_gate_waits_for_the_written_generation() {
    let view = InstanceView {
        spec_image: NEW.into(),
        generation: 5,
        observed_generation: 4,
        ready: true,
        running_image: Some(NEW.into()),
        failing: None,
    };
    assert_eq!(judge(&view, NEW, 5), Health::Waiting);
    let reconciled = InstanceView {
        observed_generation: 5,
        ..view.clone()
    };
    assert_eq!(judge(&reconciled, NEW, 5), Health::Healthy);
    let old_machine = InstanceView {
        running_image: Some(OLD.into()),
        ..reconciled.clone()
    };
    assert_eq!(judge(&old_machine, NEW, 5), Health::Waiting);
    let crashing = InstanceView {
        failing: Some("crash".into()),
        ..reconciled
    };
    assert_eq!(judge(&crashing, NEW, 5), Health::Failing("crash".into()));
}
