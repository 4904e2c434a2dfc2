//! Release metrics: the running release's phase, wave and members by state, and member
//! transitions. No release name or instance in any label (a release is one at a time; its
//! name is in the API and the console).

use openclaws_model::release::{MemberState, ReleasePhase};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use crate::{register, Metrics};
use openclaws_engine::release::{ReleaseProgress, ReleaseTelemetry};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StateLabels {
    state: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReleasePhaseLabels {
    phase: &'static str,
}

/// The running release as the last step left it.
#[derive(Debug)]
pub(crate) struct ReleaseMetrics {
    phase: Family<ReleasePhaseLabels, Gauge>,
    wave: Gauge,
    members: Family<StateLabels, Gauge>,
    transitions: Family<StateLabels, Counter>,
}

impl ReleaseMetrics {
    pub(crate) fn new(r: &mut Registry) -> Self {
        let phase: Family<ReleasePhaseLabels, Gauge> = register(
            r,
            "release_phase",
            "1 for the phase of the running release (or of the one that just finished), 0 otherwise",
            Family::default(),
        );
        for p in ReleasePhase::ALL {
            drop(phase.get_or_create(&ReleasePhaseLabels { phase: p.as_str() }));
        }
        let members: Family<StateLabels, Gauge> = register(
            r,
            "release_members",
            "Members of the running release by state (Pending, Updating, Healthy, Failed, ...)",
            Family::default(),
        );
        let transitions: Family<StateLabels, Counter> = register(
            r,
            "release_member_transitions",
            "Release members moved to a state, by that state",
            Family::default(),
        );
        for s in MemberState::ALL {
            drop(members.get_or_create(&StateLabels { state: s.as_str() }));
            drop(transitions.get_or_create(&StateLabels { state: s.as_str() }));
        }
        Self {
            phase,
            wave: register(
                r,
                "release_wave",
                "The wave the running release is rolling (0: the canary)",
                Gauge::default(),
            ),
            members,
            transitions,
        }
    }
}

impl ReleaseTelemetry for Metrics {
    fn release_progress(&self, progress: Option<ReleaseProgress<'_>>) {
        let m = &self.release;
        for p in ReleasePhase::ALL {
            let on = progress.is_some_and(|r| r.phase == p);
            m.phase
                .get_or_create(&ReleasePhaseLabels { phase: p.as_str() })
                .set(i64::from(on));
        }
        m.wave.set(progress.map_or(0, |r| i64::from(r.wave)));
        for s in MemberState::ALL {
            let n = progress
                .and_then(|r| r.members.iter().find(|(state, _)| *state == s))
                .map_or(0, |(_, n)| *n);
            m.members
                .get_or_create(&StateLabels { state: s.as_str() })
                .set(n);
        }
    }

    fn release_member_changed(&self, to: MemberState) {
        self.release
            .transitions
            .get_or_create(&StateLabels { state: to.as_str() })
            .inc();
    }
}
