//! The one value a reconcile's stages share: each stage reads what the earlier ones put in and
//! fills in its own part. Recorded at the end, then handed to telemetry, which reads it instead
//! of querying anything.

use chrono::{DateTime, Utc};
use std::collections::BTreeSet;
use std::time::Duration;
use uuid::Uuid;

use openclaws_gateway::identity::DeviceIdentity;
use openclaws_model::outcomes::DriftKind;
use openclaws_model::{InstanceSpec, InstanceStatus, PairingResult};
use openclaws_store::secrets::Plaintexts;
use openclaws_store::status::ControllerEvent;
use openclaws_store::InstanceRecord;

use super::desired::Desired;
use super::errors::StepError;
use super::plan::Plan;
use super::signals::{seconds_between, Signals};
use super::world::Observed;
use super::Outcome;

/// Everything one reconcile learns and decides.
#[derive(Debug)]
pub struct Report {
    /// What the load stage read.
    pub loaded: Loaded,
    /// The desired world; its secrets are filled in by the resolve stage.
    pub desired: Desired,
    /// What the resolve stage created or found of the instance's own secrets.
    pub resolved: Resolved,
    /// What the converge stage saw and did.
    pub converged: Converged,
    /// What the judge stage made of it.
    pub judged: Judged,
    /// When the instance is visited next (the schedule stage).
    pub next: Next,
}

/// The instance as read at the start of the reconcile.
#[derive(Debug)]
pub struct Loaded {
    /// Its row.
    pub record: InstanceRecord,
    /// Its desired state.
    pub spec: InstanceSpec,
    /// Its status before this reconcile.
    pub previous: InstanceStatus,
    /// Its stored secrets, decrypted (Debug shows names only).
    pub stored: Plaintexts,
    /// Its adoption of an app the web app built, if it adopted one.
    pub adoption: Option<openclaws_store::adoptions::Adoption>,
    /// A replica's pairing subscription holds the instance now.
    pub pairing_followed: bool,
    /// Consecutive failed attempts before this one.
    pub attempts: i32,
    /// This reconcile's clock.
    pub now: DateTime<Utc>,
}

impl Loaded {
    /// The desired world of the loaded instance (without its secrets, which the resolve stage
    /// adds).
    pub fn desired(&self, settings: &super::desired::FleetSettings) -> Desired {
        let mut desired = Desired::from_spec(
            self.record.uid,
            &self.record.name,
            self.record.generation,
            &self.spec,
            self.record.deletion_timestamp.is_some(),
            settings,
        );
        desired.adoption = self
            .adoption
            .as_ref()
            .and_then(|row| super::adopt::state_of(row, &desired.app_name));
        desired.pairing_followed = self.pairing_followed;
        desired
    }
}

/// Secrets the resolve stage created (stored by the record stage) and what it found.
#[derive(Default)]
pub struct Resolved {
    /// New values to store, by name.
    pub new_secrets: Vec<(&'static str, String)>,
    /// The rotation a newly generated gateway token answers.
    pub gateway_token_rotation: Option<i64>,
    /// When the LLM proxy token in use is due for replacement.
    pub proxy_token_rotate_at: Option<DateTime<Utc>>,
    /// The controller's device identity for this gateway (when gateways are looked at).
    pub identity: Option<DeviceIdentity>,
}

impl std::fmt::Debug for Resolved {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<&str> = self.new_secrets.iter().map(|(n, _)| *n).collect();
        f.debug_struct("Resolved")
            .field("new_secrets", &names)
            .field("gateway_token_rotation", &self.gateway_token_rotation)
            .field("proxy_token_rotate_at", &self.proxy_token_rotate_at)
            .field("identity", &self.identity.is_some())
            .finish()
    }
}

/// A step that failed, and where.
#[derive(Debug)]
pub struct Failure {
    /// The step's name (`Observe` when observing failed).
    pub step: &'static str,
    /// What went wrong.
    pub error: StepError,
}

/// What the converge stage saw and did.
#[derive(Debug, Default)]
pub struct Converged {
    /// The world after the last step; `None` when observing it failed.
    pub observed: Option<Observed>,
    /// The plan for what is left (empty when converged).
    pub plan: Plan,
    /// The step that failed, if one did.
    pub failure: Option<Failure>,
    /// An event per step taken.
    pub steps: Vec<ControllerEvent>,
    /// The kinds of drift the steps taken put right.
    pub repairs: BTreeSet<DriftKind>,
    /// `(policy, result)` of each pairing approval made or given up on.
    pub pairing_outcomes: Vec<(&'static str, &'static str)>,
    /// Fingerprint and Fly version of the app secrets a step set.
    pub secrets_applied: Option<(String, i64)>,
    /// Teardown is complete: the row goes.
    pub finalized: bool,
}

/// What the judge stage decided.
#[derive(Debug, Default)]
pub struct Judged {
    /// The status to record.
    pub status: InstanceStatus,
    /// The events to record (the steps', then what the reconcile concluded).
    pub events: Vec<ControllerEvent>,
    /// Drift and first `Ready`, for metrics.
    pub signals: Signals,
    /// The open drift's repair kinds to record (see the store's `Recording::drift_repairs`).
    pub drift_repairs: Option<Option<Vec<String>>>,
    /// Set when the instance is `Ready` for the first time.
    pub first_ready_at: Option<DateTime<Utc>>,
}

/// What a visit does to an instance's run of consecutive failures, which sets its backoff.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Streak {
    /// Nothing failed: the streak ends.
    #[default]
    Reset,
    /// A step failed: one more failure.
    Extend,
    /// The visit was held back (waiting for our share of Fly's limits, in the organization's
    /// line, or for Fly to answer again): neither a success nor a failure.
    Keep,
}

impl Streak {
    /// Whether the visit counts as a failure (for metrics).
    pub fn failed(self) -> bool {
        self == Streak::Extend
    }

    /// The streak after the visit, from the one before.
    pub fn apply(self, attempts: i32) -> i32 {
        match self {
            Streak::Reset => 0,
            Streak::Extend => attempts.saturating_add(1),
            Streak::Keep => attempts,
        }
    }
}

/// When to visit the instance next, and why.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Next {
    /// After this long.
    pub after: Duration,
    /// What this visit does to the failure streak (which sets the backoff).
    pub streak: Streak,
    /// A fixed class name for metrics: the error's reason when failed, else `Converged`,
    /// `Waiting`, `Blocked`, `Progressing` or `Paused`.
    pub reason: &'static str,
    /// Open the pairing window until then (the instance just became `Ready`).
    pub pairing_window_until: Option<DateTime<Utc>>,
}

impl Report {
    /// A report for a freshly loaded instance and its desired world.
    pub fn new(loaded: Loaded, desired: Desired) -> Self {
        Self {
            loaded,
            desired,
            resolved: Resolved::default(),
            converged: Converged::default(),
            judged: Judged::default(),
            next: Next::default(),
        }
    }

    /// The instance's uid.
    pub fn uid(&self) -> Uuid {
        self.loaded.record.uid
    }

    /// The instance's name.
    pub fn name(&self) -> &str {
        &self.loaded.record.name
    }

    /// Its status before this reconcile.
    pub fn previous(&self) -> &InstanceStatus {
        &self.loaded.previous
    }

    /// The status recorded; `None` when the reconcile finished a deletion (the row is gone).
    pub fn status(&self) -> Option<&InstanceStatus> {
        (!self.converged.finalized).then_some(&self.judged.status)
    }

    /// Drift and first `Ready`.
    pub fn signals(&self) -> &Signals {
        &self.judged.signals
    }

    /// `(policy, result)` of each pairing approval made or given up on.
    pub fn pairing_outcomes(&self) -> &[(&'static str, &'static str)] {
        &self.converged.pairing_outcomes
    }

    /// Seconds from `DELETE` to the row's removal, when this reconcile removed it.
    pub fn deletion_seconds(&self) -> Option<f64> {
        let requested = self.loaded.record.deletion_timestamp?;
        self.converged
            .finalized
            .then(|| seconds_between(requested, self.loaded.now))
    }

    /// The pairing outcomes the previous status knew, newest first (where this reconcile's
    /// are added).
    pub fn pairing_history(&self) -> Vec<PairingResult> {
        self.loaded
            .previous
            .pairing
            .as_ref()
            .map(|p| p.recent.clone())
            .unwrap_or_default()
    }

    /// What the queue does with the key next.
    pub fn outcome(&self) -> Outcome {
        if self.converged.finalized {
            return Outcome::Gone;
        }
        Outcome::Requeue {
            after: self.next.after,
            streak: self.next.streak,
            reason: self.next.reason,
        }
    }
}
