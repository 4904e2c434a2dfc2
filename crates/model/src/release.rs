//! Releases: one image rolled out across the fleet in waves, each gated on the health of the
//! instances it updated (`docs/releases.md`). The types here are the wire format of
//! `/v1/releases`; the rollout planner lives in the engine.
//!
//! A release's members are frozen when it starts: ordered by name, the first `canary` form wave
//! 0, then each wave takes members up to its cumulative percentage of the whole. A wave starts
//! only when every member of the one before it is finished.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// The field manager a release writes `spec.image` as; an instance whose `spec.image` another
/// manager owns is pinned and left alone unless the release names it.
pub const RELEASE_MANAGER: &str = "release-controller";

/// Most instances a release may name explicitly.
pub const MAX_EXPLICIT_INSTANCES: usize = 1000;
/// Most waves after the canary.
pub const MAX_WAVES: usize = 10;

/// What a release rolls out, to whom, and how carefully.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ReleaseSpec {
    /// The gateway image to run (`registry/repo:tag` or `...@sha256:<digest>`).
    #[schema(
        min_length = 1,
        max_length = 255,
        pattern = "^[^\\s]+$",
        example = "ghcr.io/openclaw/openclaw:2026.9.6"
    )]
    pub image: String,
    /// The OpenClaw version the image carries, for people and the fleet's version table
    /// (defaults to the image's tag when that is a version).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(max_length = 64)]
    pub openclaw_version: Option<String>,
    /// Instances whose labels match (Kubernetes syntax). Absent: every instance, unless
    /// `instances` is given, in which case only those. Instances that pin their own
    /// `spec.image` are left out unless named in `instances`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(max_length = 4096)]
    pub selector: Option<String>,
    /// Instances selected by name; they are updated even when they pin their own image.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schema(max_items = 1000)]
    pub instances: Vec<String>,
    #[serde(default)]
    pub strategy: Strategy,
}

/// How fast a release goes and when it stops.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Strategy {
    /// Instances updated first, on their own, before any wave (0: none).
    #[serde(default = "default_canary")]
    #[schema(default = 1, minimum = 0, maximum = 100)]
    pub canary: u32,
    /// Cumulative percentages of the members each wave brings to the new image, strictly
    /// increasing, ending at 100.
    #[serde(default = "default_waves")]
    #[schema(default = json!([25, 50, 100]), min_items = 1, max_items = 10)]
    pub waves: Vec<u32>,
    /// Most instances down at once because of this release (being updated or rolled back, or
    /// failed).
    #[serde(default = "default_max_unavailable")]
    #[schema(default = 1, minimum = 1, maximum = 1000)]
    pub max_unavailable: u32,
    /// Seconds an updated instance has to become Ready on the new image with a healthy gateway
    /// before it counts as failed.
    #[serde(default = "default_health_deadline")]
    #[schema(default = 600, minimum = 10, maximum = 86400)]
    pub health_deadline_seconds: u32,
    /// Failed instances that halt the release.
    #[serde(default = "default_failure_threshold")]
    #[schema(default = 1, minimum = 1, maximum = 1000)]
    pub failure_threshold: u32,
    /// What a halt does with the instances already updated.
    #[serde(default)]
    pub on_halt: OnHalt,
}

fn default_canary() -> u32 {
    1
}
fn default_waves() -> Vec<u32> {
    vec![25, 50, 100]
}
fn default_max_unavailable() -> u32 {
    1
}
fn default_health_deadline() -> u32 {
    600
}
fn default_failure_threshold() -> u32 {
    1
}

impl Default for Strategy {
    fn default() -> Self {
        Self {
            canary: default_canary(),
            waves: default_waves(),
            max_unavailable: default_max_unavailable(),
            health_deadline_seconds: default_health_deadline(),
            failure_threshold: default_failure_threshold(),
            on_halt: OnHalt::default(),
        }
    }
}

/// What a halted release does with the instances it updated.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub enum OnHalt {
    /// Put every updated instance back on the image it ran before.
    #[default]
    Rollback,
    /// Leave them as they are.
    Stop,
}

impl OnHalt {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            OnHalt::Rollback => "Rollback",
            OnHalt::Stop => "Stop",
        }
    }

    /// Parses the wire name.
    pub fn parse(s: &str) -> Option<OnHalt> {
        [OnHalt::Rollback, OnHalt::Stop]
            .into_iter()
            .find(|o| o.as_str() == s)
    }
}

/// Where a release is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
pub enum ReleasePhase {
    /// Created; members not chosen yet.
    Pending,
    /// Updating waves.
    Progressing,
    /// An operator paused it: nothing new starts; instances being updated are still judged.
    Paused,
    /// Halted or aborted: updated instances go back to their previous image.
    RollingBack,
    /// Every member is on the new image (or was skipped).
    Completed,
    /// Halted on failures and left as it was (`onHalt: Stop`).
    Halted,
    /// Halted or aborted, and the updated instances are back on their previous image.
    RolledBack,
    /// Aborted by an operator and left as it was.
    Aborted,
}

impl ReleasePhase {
    /// Every phase (for metrics).
    pub const ALL: [ReleasePhase; 8] = [
        ReleasePhase::Pending,
        ReleasePhase::Progressing,
        ReleasePhase::Paused,
        ReleasePhase::RollingBack,
        ReleasePhase::Completed,
        ReleasePhase::Halted,
        ReleasePhase::RolledBack,
        ReleasePhase::Aborted,
    ];

    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            ReleasePhase::Pending => "Pending",
            ReleasePhase::Progressing => "Progressing",
            ReleasePhase::Paused => "Paused",
            ReleasePhase::RollingBack => "RollingBack",
            ReleasePhase::Completed => "Completed",
            ReleasePhase::Halted => "Halted",
            ReleasePhase::RolledBack => "RolledBack",
            ReleasePhase::Aborted => "Aborted",
        }
    }

    /// Parses the wire name.
    pub fn parse(s: &str) -> Option<ReleasePhase> {
        ReleasePhase::ALL.into_iter().find(|p| p.as_str() == s)
    }

    /// Whether the release is over (nothing more will change).
    pub fn is_finished(self) -> bool {
        matches!(
            self,
            ReleasePhase::Completed
                | ReleasePhase::Halted
                | ReleasePhase::RolledBack
                | ReleasePhase::Aborted
        )
    }
}

/// Where one member instance is in its release.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, ToSchema,
)]
pub enum MemberState {
    /// Not started.
    Pending,
    /// Its `spec.image` was set to the release's image; waiting for it to be healthy.
    Updating,
    /// Ready on the new image with a healthy gateway.
    Healthy,
    /// Not healthy on the new image within the deadline, crash looping, or failed.
    Failed,
    /// Left alone: deleted, or its image changed by someone else, or already on the image.
    Skipped,
    /// Its `spec.image` was set back to the previous image; waiting for it to be healthy.
    RollingBack,
    /// Back on its previous image and healthy.
    RolledBack,
    /// Not healthy on its previous image within the deadline either.
    RollbackFailed,
    /// Being updated when the release was halted or aborted without rollback.
    Unfinished,
}

impl MemberState {
    /// Every state (for counts and metrics).
    pub const ALL: [MemberState; 9] = [
        MemberState::Pending,
        MemberState::Updating,
        MemberState::Healthy,
        MemberState::Failed,
        MemberState::Skipped,
        MemberState::RollingBack,
        MemberState::RolledBack,
        MemberState::RollbackFailed,
        MemberState::Unfinished,
    ];

    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            MemberState::Pending => "Pending",
            MemberState::Updating => "Updating",
            MemberState::Healthy => "Healthy",
            MemberState::Failed => "Failed",
            MemberState::Skipped => "Skipped",
            MemberState::RollingBack => "RollingBack",
            MemberState::RolledBack => "RolledBack",
            MemberState::RollbackFailed => "RollbackFailed",
            MemberState::Unfinished => "Unfinished",
        }
    }

    /// Parses the wire name.
    pub fn parse(s: &str) -> Option<MemberState> {
        MemberState::ALL.into_iter().find(|p| p.as_str() == s)
    }

    /// Down because of the release: counted against `maxUnavailable`.
    pub fn is_unavailable(self) -> bool {
        matches!(
            self,
            MemberState::Updating
                | MemberState::Failed
                | MemberState::RollingBack
                | MemberState::RollbackFailed
        )
    }

    /// Done with its wave (the wave can end once every member is).
    pub fn is_settled(self) -> bool {
        matches!(
            self,
            MemberState::Healthy | MemberState::Failed | MemberState::Skipped
        )
    }
}

/// Counts of one wave's members by state.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct WaveProgress {
    /// 0 is the canary.
    pub wave: u32,
    /// `canary`, `wave 1`, …
    pub name: String,
    /// Members in this wave.
    pub size: u32,
    pub pending: u32,
    /// Being updated now.
    pub updating: u32,
    pub healthy: u32,
    pub failed: u32,
    pub skipped: u32,
    /// Being rolled back, rolled back, or failed to roll back.
    pub rolled_back: u32,
}

impl WaveProgress {
    /// Adds one member in `state`.
    pub fn count(&mut self, state: MemberState) {
        self.size += 1;
        match state {
            MemberState::Pending => self.pending += 1,
            MemberState::Updating | MemberState::Unfinished => self.updating += 1,
            MemberState::Healthy => self.healthy += 1,
            MemberState::Failed => self.failed += 1,
            MemberState::Skipped => self.skipped += 1,
            MemberState::RollingBack | MemberState::RolledBack | MemberState::RollbackFailed => {
                self.rolled_back += 1
            }
        }
    }
}

/// The display name of wave `wave`.
pub fn wave_name(wave: u32) -> String {
    if wave == 0 {
        "canary".to_owned()
    } else {
        format!("wave {wave}")
    }
}

/// The wave of each of `members` members in order (0 = canary), for `strategy`: the first
/// `canary` members, then each wave up to its cumulative percentage (rounded up) of all.
/// Waves that would be empty are dropped, so the numbers are consecutive.
pub fn assign_waves(members: usize, strategy: &Strategy) -> Vec<u32> {
    let canary = (strategy.canary as usize).min(members);
    let mut out = vec![0u32; canary];
    let mut next = u32::from(canary > 0);
    for percent in &strategy.waves {
        let upto = (members * (*percent as usize)).div_ceil(100).min(members);
        if upto > out.len() {
            out.resize(upto, next);
            next += 1;
        }
    }
    if out.len() < members {
        out.resize(members, next);
    }
    out
}

/// Problems with a release spec, each as (field path, message without the value).
pub fn validate(spec: &ReleaseSpec) -> Vec<(String, String)> {
    let mut errors = Vec::new();
    let mut bad = |path: &str, message: &str| errors.push((path.to_owned(), message.to_owned()));
    if spec.image.is_empty()
        || spec.image.len() > 255
        || spec.image.chars().any(char::is_whitespace)
    {
        bad("image", "must be 1-255 characters without whitespace");
    }
    if let Some(v) = &spec.openclaw_version {
        if v.is_empty() || v.len() > 64 || v.chars().any(|c| c.is_control() || c.is_whitespace()) {
            bad(
                "openclawVersion",
                "must be 1-64 characters without whitespace",
            );
        }
    }
    if spec.instances.len() > MAX_EXPLICIT_INSTANCES {
        bad("instances", "may name at most 1000 instances");
    }
    let s = &spec.strategy;
    if s.canary > 100 {
        bad("strategy.canary", "must be 0-100");
    }
    if s.waves.is_empty() || s.waves.len() > MAX_WAVES {
        bad("strategy.waves", "must hold 1-10 percentages");
    } else if s.waves.windows(2).any(|w| w[0] >= w[1])
        || s.waves.first().is_some_and(|p| *p == 0)
        || s.waves.last() != Some(&100)
    {
        bad(
            "strategy.waves",
            "must be strictly increasing percentages (1-100) ending at 100",
        );
    }
    if !(1..=1000).contains(&s.max_unavailable) {
        bad("strategy.maxUnavailable", "must be 1-1000");
    }
    if !(10..=86_400).contains(&s.health_deadline_seconds) {
        bad("strategy.healthDeadlineSeconds", "must be 10-86400");
    }
    if !(1..=1000).contains(&s.failure_threshold) {
        bad("strategy.failureThreshold", "must be 1-1000");
    }
    errors
}

/// The OpenClaw version an image's tag names (`…/openclaw:2026.9.6` → `2026.9.6`), when the tag
/// is a calendar version (optionally with a `-suffix`).
pub fn version_of_image(image: &str) -> Option<String> {
    let name = image.split('@').next()?;
    let (_, tag) = name.rsplit_once(':')?;
    if tag.contains('/') {
        return None;
    }
    let core = tag.split('-').next()?;
    let parts: Vec<&str> = core.split('.').collect();
    let numeric = parts.len() >= 2
        && parts
            .iter()
            .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()));
    numeric.then(|| tag.to_owned())
}

/// A release as stored and shown.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ReleaseStatus {
    pub phase: ReleasePhase,
    /// Why it is in this phase (a halt's cause, who paused it, …).
    pub message: String,
    /// The wave being rolled (0 is the canary).
    pub wave: u32,
    /// Progress per wave.
    pub waves: Vec<WaveProgress>,
    /// Members of every wave.
    pub members: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_at: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<DateTime<Utc>>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strategy(canary: u32, waves: &[u32]) -> Strategy {
        Strategy {
            canary,
            waves: waves.to_vec(),
            ..Strategy::default()
        }
    }

    #[test]
    fn canary_then_cumulative_waves() {
        let waves = assign_waves(10, &strategy(1, &[25, 50, 100]));
        assert_eq!(waves, vec![0, 1, 1, 2, 2, 3, 3, 3, 3, 3]);
    }

    #[test]
    fn empty_waves_are_dropped_and_numbers_stay_consecutive() {
        assert_eq!(assign_waves(3, &strategy(1, &[10, 20, 100])), vec![0, 1, 1]);
        assert_eq!(assign_waves(4, &strategy(1, &[50, 100])), vec![0, 1, 2, 2]);
        assert_eq!(assign_waves(3, &strategy(3, &[50, 100])), vec![0, 0, 0]);
        assert_eq!(assign_waves(4, &strategy(0, &[50, 100])), vec![0, 0, 1, 1]);
        assert!(assign_waves(0, &strategy(1, &[100])).is_empty());
    }

    #[test]
    fn every_member_gets_a_wave_and_waves_never_decrease() {
        for members in 0..60 {
            for canary in [0, 1, 2, 5] {
                for waves in [&[100][..], &[1, 100], &[10, 25, 50, 100], &[99, 100]] {
                    let got = assign_waves(members, &strategy(canary, waves));
                    assert_eq!(got.len(), members);
                    assert!(got.windows(2).all(|w| w[0] <= w[1] && w[1] - w[0] <= 1));
                    assert!(got.first().is_none_or(|w| *w == 0));
                }
            }
        }
    }

    #[test]
    fn validation_names_each_bad_field() {
        let mut spec = ReleaseSpec {
            image: "bad image".into(),
            openclaw_version: None,
            selector: None,
            instances: vec![],
            strategy: strategy(1, &[50, 40]),
        };
        spec.strategy.max_unavailable = 0;
        let fields: Vec<String> = validate(&spec).into_iter().map(|(f, _)| f).collect();
        assert_eq!(
            fields,
            ["image", "strategy.waves", "strategy.maxUnavailable"]
        );
        spec.image = "ghcr.io/openclaw/openclaw:2026.9.6".into();
        spec.strategy = Strategy::default();
        assert!(validate(&spec).is_empty());
    }

    #[test]
    fn versions_come_from_calendar_tags_only() {
        assert_eq!(
            version_of_image("ghcr.io/openclaw/openclaw:2026.9.6").as_deref(),
            Some("2026.9.6")
        );
        assert_eq!(
            version_of_image("localhost:5000/openclaw:2026.8.1-r20260820").as_deref(),
            Some("2026.8.1-r20260820")
        );
        assert_eq!(version_of_image("ghcr.io/openclaw/openclaw:main"), None);
        assert_eq!(version_of_image("localhost:5000/openclaw"), None);
        assert_eq!(version_of_image("openclaw@sha256:abc"), None);
    }
}
