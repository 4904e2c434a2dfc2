//! The reconcile engine for one instance at a time, as a short sequence of named stages that
//! share one [`Report`]:
//!
//! 1. **load** ([`load`]): the instance's row and its stored secrets;
//! 2. **resolve secrets** ([`resolve`]): the app secrets it should hold, creating what is
//!    missing (a gateway token, an LLM proxy token, the controller's device identity);
//! 3. **converge** ([`converge`]): observe Fly, the DNS provider and the gateway, then plan
//!    ([`plan`], pure) and act ([`act`], [`gateway`]) round by round;
//! 4. **judge** ([`judge`]): status, events, drift and first `Ready`;
//! 5. **schedule** ([`schedule`]): when to come back;
//! 6. **record** ([`record`]): all of it in one transaction.
//!
//! The database is touched only at load and record; Fly, DNS and the gateway only in converge;
//! everything else is pure. Telemetry reads the finished report.
//!
//! Principles (after omicron's background tasks and Kubernetes controllers):
//! - **Level-triggered.** A reconcile takes only an instance uid and re-reads everything: the
//!   desired state from PostgreSQL and the world from Fly. The happy path and crash recovery are
//!   the same code path; a second replica or a restarted process is the normal case.
//! - **Idempotent steps.** Every action is safe to repeat. Resources are found by deterministic
//!   names and ownership marks (app network, machine metadata), not only by stored ids, so a
//!   create whose response was lost is adopted on the next visit instead of duplicated.
//! - **Never wait on Fly while holding a worker.** When a machine is settling the engine records
//!   what it saw and asks to be visited again when the result is expected.
//! - **No retry loops inside.** A failure is recorded (`lastError`, an event) and the queue brings
//!   the instance back after a persisted, jittered backoff.
//! - **Ownership.** Nothing without our mark is updated or deleted.

pub mod act;
pub mod adopt;
mod converge;
pub mod desired;
mod errors;
pub mod gateway;
mod judge;
mod load;
pub mod machine;
pub mod observe;
pub mod plan;
pub mod preview;
mod record;
mod report;
mod resolve;
mod schedule;
pub mod secrets;
pub mod signals;
pub mod status;
pub mod volume;
pub mod world;

pub use errors::{ReconcileError, StepError};
pub use report::{Converged, Failure, Judged, Loaded, Next, Report, Resolved, Streak};
pub use schedule::Timing;

use openclaws_store::Db;
use std::sync::Arc;
use std::time::Duration;
use uuid::Uuid;

use openclaws_dns::CloudflareDns;
use openclaws_fly::FlyClient;
use openclaws_gateway::proxy_token::ProxyTokenKey;
use openclaws_model::secrets::{SecretCipher, Sensitive};
use openclaws_model::suspended;

use crate::lease::WorkLease;
use converge::Clients;
use desired::FleetSettings;

/// What the queue should do with the key next.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// Visit again after this delay; `streak` says what it does to the failure streak.
    /// `reason` says why, for metrics: the error's class when it failed or was held back, else
    /// `Converged`, `Waiting`, `Blocked`, `Progressing` or `Paused` (a fixed set).
    Requeue {
        after: Duration,
        streak: Streak,
        reason: &'static str,
    },
    /// The instance row is gone (deleted); drop the key.
    Gone,
}

/// Everything besides an instance's row that decides its desired state: the fleet settings and
/// the platform's keys. The engine and the API's plan preview build the desired state from the
/// same value, so the preview shows what the reconcile will do.
#[derive(Clone, Debug)]
pub struct DesiredInputs {
    /// Names, domain, DNS and gateway placement of every instance.
    pub settings: FleetSettings,
    /// Composio's platform key for instances with Composio enabled; `None` when not configured.
    pub composio_api_key: Option<Sensitive>,
    /// Mints and checks LLM proxy tokens; `None` when no LLM proxy is configured.
    pub llm_proxy_key: Option<ProxyTokenKey>,
}

impl DesiredInputs {
    /// Fleet settings without platform keys (no Composio key, no LLM proxy).
    pub fn new(settings: FleetSettings) -> Self {
        Self {
            settings,
            composio_api_key: None,
            llm_proxy_key: None,
        }
    }
}

/// Shared dependencies of every reconcile.
#[derive(Clone, Debug)]
pub struct Reconciler {
    pub pool: Db,
    pub fly: FlyClient,
    /// Hostname records; `None` when no DNS provider is configured.
    pub dns: Option<CloudflareDns>,
    /// Fleet settings and platform keys the desired state is built from (shared with the API's
    /// plan preview).
    pub inputs: DesiredInputs,
    /// Decrypts the instance's stored secrets (and encrypts those a reconcile creates).
    pub cipher: Arc<SecretCipher>,
    /// How often instances are visited when nothing is expected of them.
    pub timing: Timing,
    /// Where reports of each reconcile go (metrics, error reports).
    pub telemetry: Arc<dyn crate::Telemetry>,
}

impl Reconciler {
    /// Reconciles one instance. `attempts` is the number of consecutive failures so far. With
    /// a `lease`, every Fly and DNS mutation and the final recording pass it as a fence: once
    /// it is lost the reconcile stops with [`ReconcileError::LeaseLost`] and records nothing.
    pub async fn reconcile(
        &self,
        uid: Uuid,
        attempts: i32,
        lease: Option<Arc<WorkLease>>,
    ) -> Result<Outcome, ReconcileError> {
        let Some(loaded) = load::load(&self.pool, &self.cipher, uid, attempts).await? else {
            return Ok(Outcome::Gone);
        };
        let desired = loaded.desired(&self.inputs.settings);
        let mut report = Report::new(loaded, desired);
        let deleting = report.desired.deleting;
        if suspended(report.loaded.spec.paused, deleting) {
            judge::paused(&mut report);
        } else {
            if !deleting {
                resolve::resolve_secrets(&mut report, &self.inputs, &self.cipher)?;
            }
            let clients = Clients::fenced(&self.fly, self.dns.as_ref(), lease.clone());
            converge::converge(clients.borrowed(), &mut report).await;
            if let Some(f) = report
                .converged
                .failure
                .as_ref()
                .filter(|f| f.error.is_fenced())
            {
                return Err(ReconcileError::LeaseLost(f.error.to_string()));
            }
            if !report.converged.finalized {
                judge::judge(&mut report);
            }
        }
        schedule::schedule(&mut report, &self.timing);
        let owner = lease.as_deref().map(WorkLease::owner);
        record::record(&self.pool, &self.cipher, &report, owner).await?;
        self.telemetry.reconciled(&report);
        Ok(report.outcome())
    }
}

/// What a pairing subscription needs to reach one gateway as the controller, loaded and
/// decrypted the way a reconcile loads them: the desired state (where the gateway is, the
/// pairing policy), the gateway token and the controller's paired device identity. `Debug`
/// hides the token.
#[derive(Clone)]
pub struct GatewayAccess {
    pub desired: desired::Desired,
    pub token: String,
    pub identity: openclaws_gateway::identity::DeviceIdentity,
    /// The recorded pairing outcomes, newest first.
    pub recent: Vec<openclaws_model::PairingResult>,
}

impl std::fmt::Debug for GatewayAccess {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GatewayAccess")
            .field("instance", &self.desired.name)
            .field("identity", &self.identity)
            .finish_non_exhaustive()
    }
}

impl Reconciler {
    /// The access a pairing subscription of `uid` uses; `None` when the row is gone or the
    /// gateway has no address, token or controller identity yet (a reconcile creates them).
    pub async fn gateway_access(&self, uid: Uuid) -> Result<Option<GatewayAccess>, ReconcileError> {
        let Some(loaded) = load::load(&self.pool, &self.cipher, uid, 0).await? else {
            return Ok(None);
        };
        let desired = loaded.desired(&self.inputs.settings);
        let token = loaded
            .stored
            .get(openclaws_model::secret_names::GATEWAY_TOKEN)
            .map(str::to_owned);
        let identity = resolve::stored_identity(&loaded);
        let recent = Report::new(loaded, desired.clone()).pairing_history();
        Ok(match (desired.gateway.is_some(), token, identity) {
            (true, Some(token), Some(identity)) => Some(GatewayAccess {
                desired,
                token,
                identity,
                recent,
            }),
            _ => None,
        })
    }
}

/// Exponential backoff after `attempts` consecutive failures: 1 s doubling to 5 min, ±20%.
pub fn backoff(attempts: i32) -> Duration {
    let base = 1u64 << attempts.clamp(0, 9);
    jitter(Duration::from_secs(base.min(300)), 0.2)
}

/// `d` scaled by a random factor in `[1 - spread, 1 + spread]`, so keys spread out over time.
pub fn jitter(d: Duration, spread: f64) -> Duration {
    let factor = 1.0 + rand::Rng::gen_range(&mut rand::thread_rng(), -spread..=spread);
    d.mul_f64(factor.max(0.0))
}
