//! The reconcile engine: observe → plan → act → record, for one instance at a time.
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
pub mod desired;
pub mod gateway;
pub mod machine;
pub mod metrics;
pub mod observe;
pub mod plan;
pub mod preview;
pub mod secrets;
pub mod status;
pub mod volume;

use chrono::Utc;
use sqlx::PgPool;
use std::sync::Arc;
use std::time::Duration;
use uuid::Uuid;

use openclaws_fly::{FlyClient, FlyError};
use openclaws_model::{LastError, Phase};
use openclaws_store::events::EventType;
use openclaws_store::status::{self as status_store, ControllerEvent};
use openclaws_store::StoreError;

use act::StepFailure;
use desired::{Desired, FleetSettings};
use openclaws_model::secrets::SecretCipher;
use plan::Action;
use plan::{plan, Plan};

/// Upper bound of act-and-replan rounds in one reconcile (a fresh instance needs three).
const MAX_ROUNDS: usize = 8;

/// Errors that stop a reconcile before it can record anything.
#[derive(Debug, thiserror::Error)]
pub enum ReconcileError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Secrets(#[from] openclaws_store::secrets::SecretStoreError),
    #[error("minting an LLM proxy token failed: {0}")]
    ProxyToken(String),
}

/// A failed step: against Fly (or the DNS provider, which reports as Fly errors) or against the
/// gateway itself.
#[derive(Debug, thiserror::Error)]
pub enum StepError {
    #[error(transparent)]
    Fly(#[from] FlyError),
    #[error(transparent)]
    Gateway(#[from] gateway::GatewayStepError),
}

impl StepError {
    /// Retrying cannot help until the spec changes.
    pub fn is_terminal(&self) -> bool {
        match self {
            StepError::Fly(e) | StepError::Gateway(gateway::GatewayStepError::Fly(e)) => {
                e.is_terminal()
            }
            StepError::Gateway(_) => false,
        }
    }

    /// Machine-readable class for `lastError.reason` and conditions.
    pub fn reason(&self) -> &'static str {
        match self {
            StepError::Fly(e) | StepError::Gateway(gateway::GatewayStepError::Fly(e)) => e.reason(),
            StepError::Gateway(gateway::GatewayStepError::Bootstrap(_)) => {
                "ControllerPairingFailed"
            }
            StepError::Gateway(_) => "GatewayError",
        }
    }

    /// When the other side said to come back.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            StepError::Fly(e) | StepError::Gateway(gateway::GatewayStepError::Fly(e)) => {
                e.retry_after()
            }
            StepError::Gateway(_) => None,
        }
    }
}

/// What one reconcile found and did, for telemetry: built from values the reconcile already
/// holds, never from extra queries.
#[derive(Debug, Clone)]
pub struct ReconcileReport {
    /// The instance.
    pub uid: Uuid,
    /// Its name.
    pub name: String,
    /// Its status before this reconcile.
    pub previous: openclaws_model::InstanceStatus,
    /// The status this reconcile recorded; `None` when it finished a deletion.
    pub status: Option<openclaws_model::InstanceStatus>,
    /// Drift found and repaired, and a first `Ready`.
    pub signals: metrics::Signals,
    /// `(policy, result)` of each pairing approval made or given up on.
    pub pairing_outcomes: Vec<(&'static str, &'static str)>,
    /// Seconds from `DELETE` to the row's removal, when this reconcile removed it.
    pub deletion_seconds: Option<f64>,
}

/// What the queue should do with the key next.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// Visit again after this delay; `failed` counts toward backoff. `reason` says why, for
    /// metrics: the error's class when `failed`, else `Converged`, `Waiting`, `Blocked`,
    /// `Progressing` or `Paused` (a fixed set).
    Requeue {
        after: Duration,
        failed: bool,
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
    pub composio_api_key: Option<openclaws_model::secrets::Sensitive>,
    /// Mints and checks LLM proxy tokens; `None` when no LLM proxy is configured.
    pub llm_proxy_key: Option<openclaws_gateway::proxy_token::ProxyTokenKey>,
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
    pub pool: PgPool,
    pub fly: FlyClient,
    /// Fleet settings and platform keys the desired state is built from (shared with the API's
    /// plan preview).
    pub inputs: DesiredInputs,
    /// Where reports of each reconcile go (metrics, error reports).
    pub telemetry: Arc<dyn crate::Telemetry>,
    /// Interval between visits of a converged instance.
    pub resync: Duration,
    /// Decrypts the instance's stored secrets (and encrypts a newly generated gateway token).
    pub cipher: Arc<SecretCipher>,
    /// Hostname records; `None` when no DNS provider is configured.
    pub dns: Option<openclaws_dns::CloudflareDns>,
    /// How often a gateway is looked at while a device may be pairing.
    pub pairing_poll: Duration,
    /// How long a pairing window stays open after the gateway first becomes ready.
    pub pairing_window: Duration,
}

impl Reconciler {
    /// Reconciles one instance. `attempts` is the number of consecutive failures so far.
    pub async fn reconcile(&self, uid: Uuid, attempts: i32) -> Result<Outcome, ReconcileError> {
        let Some(record) = status_store::load(&self.pool, uid).await? else {
            return Ok(Outcome::Gone);
        };
        tracing::Span::current()
            .record("instance", record.name.as_str())
            .record("generation", record.generation);
        let spec = record.spec()?;
        let previous = record.status()?;
        let deleting = record.deletion_timestamp.is_some();
        let desired = Desired::from_spec(
            uid,
            &record.name,
            record.generation,
            &spec,
            deleting,
            &self.inputs.settings,
        );
        let now = Utc::now();

        if spec.paused {
            let mut status = status::paused(&previous, record.generation, now);
            status.next_reconcile_at = Some(now + chrono_duration(self.resync));
            let events = (!previous
                .conditions
                .iter()
                .any(|c| c.type_ == status::PAUSED))
            .then(|| ControllerEvent {
                type_: EventType::Normal,
                reason: "Paused".into(),
                message: "spec.paused is true: reconciling is suspended".into(),
            })
            .into_iter()
            .collect::<Vec<_>>();
            status_store::record(&self.pool, &record, &status, None, &events).await?;
            return Ok(Outcome::Requeue {
                after: jitter(self.resync, 0.1),
                failed: false,
                reason: "Paused",
            });
        }

        let mut proxy_token_rotate_at = None;
        let desired = if deleting {
            desired
        } else {
            let (secrets, rotate_at) = self.desired_secrets(&record, &spec, &desired).await?;
            proxy_token_rotate_at = rotate_at;
            desired.with_secrets(secrets)
        };
        let mut events = Vec::new();
        let mut failure: Option<(&'static str, StepError)> = None;
        let mut gateway_client: Option<openclaws_gateway::client::GatewayClient> = None;
        let mut wait = None;
        let was_converged = previous.observed_generation == record.generation
            && matches!(previous.phase, Phase::Ready | Phase::Stopped);

        let mut observed = match observe::observe(
            &self.fly,
            self.dns.as_ref(),
            &desired,
            previous.fly.as_ref(),
        )
        .await
        {
            Ok(mut o) => {
                o.secrets.applied = record
                    .fly_secrets_fingerprint
                    .clone()
                    .zip(record.fly_secrets_version);
                Some(o)
            }
            Err(e) => {
                failure = Some(("Observe", e.into()));
                None
            }
        };
        if let Some(o) = observed.as_mut() {
            o.pairing_history = previous
                .pairing
                .as_ref()
                .map(|p| p.recent.clone())
                .unwrap_or_default();
        }

        let mut pairing_outcomes = Vec::new();
        let mut final_plan = Plan::default();
        if let Some(observed) = observed.as_mut() {
            let mut settled = None;
            for _ in 0..MAX_ROUNDS {
                let p = plan(&desired, observed);
                if p.finalize {
                    status_store::finalize_deletion(&self.pool, &record, &events).await?;
                    self.telemetry.reconciled(&ReconcileReport {
                        uid,
                        name: record.name.clone(),
                        previous: previous.clone(),
                        status: None,
                        signals: metrics::Signals::default(),
                        pairing_outcomes,
                        deletion_seconds: record
                            .deletion_timestamp
                            .map(|requested| metrics::seconds_between(requested, Utc::now())),
                    });
                    return Ok(Outcome::Gone);
                }
                if p.look_at_gateway {
                    let (look, client) = self.look_at_gateway(record.uid, &desired).await?;
                    observed.gateway = Some(look);
                    gateway_client = client;
                    continue;
                }
                if p.actions.is_empty() {
                    settled = Some(p);
                    break;
                }
                let mut interrupted = false;
                for action in &p.actions {
                    let result = if action.is_gateway_step() {
                        gateway::execute(
                            &self.fly,
                            gateway_client.as_ref(),
                            &desired,
                            observed,
                            action,
                        )
                        .await
                        .map_err(|e| (action.step(), StepError::from(e)))
                    } else {
                        match act::execute(&self.fly, self.dns.as_ref(), &desired, observed, action)
                            .await
                        {
                            Ok(()) => Ok(()),
                            Err(StepFailure::Wait(w)) => {
                                wait = Some(w);
                                interrupted = true;
                                break;
                            }
                            Err(StepFailure::Failed { step, error }) => {
                                Err((step, StepError::from(error)))
                            }
                        }
                    };
                    if let Some((policy, outcome)) =
                        metrics::pairing_outcome(action, result.is_ok())
                    {
                        pairing_outcomes.push((policy, outcome));
                    }
                    if observed.gateway.is_none() {
                        // A restart or a fresh pairing: the connection no longer speaks for
                        // what the gateway is.
                        gateway_client = None;
                    }
                    match result {
                        Ok(()) => {
                            if let (Action::SetSecrets { .. }, Some((fp, version))) =
                                (action, &observed.secrets.applied)
                            {
                                status_store::record_secrets_applied(&self.pool, uid, fp, *version)
                                    .await?;
                            }
                            events.push(ControllerEvent {
                                type_: EventType::Normal,
                                reason: action.step().into(),
                                message: action.describe(),
                            })
                        }
                        Err((step, error)) => {
                            failure = Some((step, error));
                            interrupted = true;
                            break;
                        }
                    }
                }
                if interrupted {
                    break;
                }
            }
            // Either converged/waiting (`settled`), interrupted, or out of rounds: in the last two
            // cases the plan for what is left decides the status.
            final_plan = settled.unwrap_or_else(|| plan(&desired, observed));
            if wait.is_some() && final_plan.wait.is_none() {
                final_plan.wait = wait.clone();
            }
        }

        if let Some((step, e)) = failure.as_ref().filter(|(_, e)| e.is_terminal()) {
            final_plan.blocked = Some(plan::Blocked {
                reason: e.reason(),
                message: format!(
                    "{step} was rejected by {}; retrying cannot help until the spec changes: {e}",
                    if step.contains("Dns") {
                        "the DNS provider"
                    } else {
                        "Fly"
                    }
                ),
            });
        }
        let last_error = failure.as_ref().map(|(step, e)| LastError {
            step: (*step).to_owned(),
            reason: e.reason().to_owned(),
            message: e.to_string(),
            time: now,
            attempt: attempts + 1,
        });
        if let Some(err) = &last_error {
            let repeated = previous
                .last_error
                .as_ref()
                .is_some_and(|p| p.step == err.step && p.message == err.message);
            if !repeated {
                events.push(ControllerEvent {
                    type_: EventType::Warning,
                    reason: format!("{}Failed", err.step),
                    message: err.message.clone(),
                });
            }
        }

        let observe_failed = observed.is_none();
        let observed = observed.unwrap_or_else(observe::Observed::empty);
        let mut status = status::compute(status::StatusInput {
            desired: &desired,
            observed: &observed,
            plan: &final_plan,
            last_error,
            previous: &previous,
            now,
        });
        if observe_failed {
            // Observation failed: keep what we knew rather than claiming resources vanished, and
            // do not claim to have seen this generation; Ready says why.
            status.conditions = status::keep_with_ready(&previous.conditions, &status.conditions);
            status.fly = previous.fly.clone();
            status.observed_generation = previous.observed_generation;
            status.phase = match previous.phase {
                Phase::Pending => Phase::Provisioning,
                _ if deleting => Phase::Deleting,
                Phase::Ready | Phase::Stopped
                    if previous.observed_generation != record.generation =>
                {
                    Phase::Provisioning
                }
                phase => phase,
            };
        }
        // Approving a device's pairing request is not a repair.
        let acted = events
            .iter()
            .any(|e| e.type_ == EventType::Normal && metrics::is_repair_step(&e.reason));
        let drifted = was_converged && !deleting && (acted || status.phase != previous.phase);
        if drifted {
            let seen = status
                .conditions
                .iter()
                .find(|c| c.type_ == status::READY)
                .map(|c| c.message.clone())
                .unwrap_or_default();
            events.insert(
                0,
                ControllerEvent {
                    type_: EventType::Warning,
                    reason: "DriftDetected".into(),
                    message: format!("the world no longer matches the spec ({seen}); repairing"),
                },
            );
        }
        if previous.phase == Phase::Degraded && status.phase == Phase::Ready {
            events.push(ControllerEvent {
                type_: EventType::Normal,
                reason: "DriftRepaired".into(),
                message: "the world matches the spec again".into(),
            });
        }
        if status.phase != previous.phase {
            events.push(ControllerEvent {
                type_: if matches!(status.phase, Phase::Degraded | Phase::Failed) {
                    EventType::Warning
                } else {
                    EventType::Normal
                },
                reason: format!("Phase{}", status.phase.as_str()),
                message: format!(
                    "phase {} → {}",
                    previous.phase.as_str(),
                    status.phase.as_str()
                ),
            });
        }

        let (after, failed) = match (&failure, &final_plan) {
            (Some((_, e)), _) if e.is_terminal() => (jitter(self.resync, 0.1), true),
            (Some((_, e)), _) => {
                // Fly (or our own limiter) said when to come back: trust it over our backoff,
                // and be back on time (a slot reserved by our limiter is kept only briefly).
                let after = e.retry_after().map_or_else(
                    || backoff(attempts),
                    |r| r + jitter(r.min(Duration::from_millis(2500)) / 10, 1.0),
                );
                (after, true)
            }
            (None, p) if p.wait.is_some() => {
                (p.wait.as_ref().map(|w| w.after).unwrap_or_default(), false)
            }
            (None, p) if p.blocked.is_some() => (jitter(self.resync, 0.1), false),
            (None, p) if p.is_converged() => (jitter(self.resync, 0.1), false),
            (None, _) => (Duration::from_millis(100), false),
        };
        // Things expected at a known time: a proxy token due for rotation, and devices that may
        // be pairing right now.
        let mut after = after;
        if let Some(at) = proxy_token_rotate_at.filter(|_| failure.is_none()) {
            after = after.min((at - now).to_std().unwrap_or_default() + Duration::from_secs(1));
        }
        let became_ready = status.phase == Phase::Ready && previous.phase != Phase::Ready;
        let window_open = record.pairing_window_until.is_some_and(|until| until > now);
        if became_ready && !self.pairing_window.is_zero() {
            status_store::open_pairing_window(
                &self.pool,
                uid,
                now + chrono_duration(self.pairing_window),
            )
            .await?;
        }
        if failure.is_none()
            && final_plan.wait.is_none()
            && status::pairing_active(&desired, &observed, window_open || became_ready)
        {
            after = after.min(jitter(self.pairing_poll, 0.1));
        }
        status.next_reconcile_at = Some(now + chrono_duration(after));
        let signals = metrics::Signals::gather(
            &self.pool,
            metrics::SignalInput {
                record: &record,
                previous: &previous,
                status: &status,
                events: &events,
                drifted,
                converged: final_plan.is_converged(),
                now,
            },
        )
        .await;
        let snapshot = (!observe_failed)
            .then(|| snapshot(&observed, now))
            .flatten();
        status_store::record(&self.pool, &record, &status, snapshot.as_ref(), &events).await?;
        self.telemetry.reconciled(&ReconcileReport {
            uid,
            name: record.name.clone(),
            previous,
            status: Some(status),
            signals,
            pairing_outcomes,
            deletion_seconds: None,
        });
        let reason = match (&failure, &final_plan) {
            (Some((_, e)), _) => e.reason(),
            (None, p) if p.wait.is_some() => "Waiting",
            (None, p) if p.blocked.is_some() => "Blocked",
            (None, p) if p.is_converged() => "Converged",
            (None, _) => "Progressing",
        };
        Ok(Outcome::Requeue {
            after,
            failed,
            reason,
        })
    }
}

impl Reconciler {
    /// Looks at the gateway with the controller's device identity and the gateway token.
    async fn look_at_gateway(
        &self,
        uid: Uuid,
        desired: &Desired,
    ) -> Result<
        (
            gateway::GatewayObservation,
            Option<openclaws_gateway::client::GatewayClient>,
        ),
        ReconcileError,
    > {
        let now = Utc::now();
        let (Some(target), Some(token)) = (
            desired.gateway.as_ref(),
            desired.secrets.value(secrets::GATEWAY_TOKEN),
        ) else {
            return Ok((
                gateway::GatewayObservation::unreachable("no gateway address or token".into(), now),
                None,
            ));
        };
        let identity = gateway::controller_identity(&self.pool, &self.cipher, uid).await?;
        Ok(gateway::look(target, desired, &identity, token).await)
    }

    /// The secrets the app should hold ([`secrets::SecretsDraft`]), completing what is missing:
    /// the gateway token is generated and stored encrypted on first use (and on rotation), the
    /// LLM proxy token minted and stored when none is current. The second value is when the
    /// proxy token is due for replacement.
    async fn desired_secrets(
        &self,
        record: &openclaws_store::InstanceRecord,
        spec: &openclaws_model::InstanceSpec,
        desired: &Desired,
    ) -> Result<(secrets::DesiredSecrets, Option<chrono::DateTime<Utc>>), ReconcileError> {
        use openclaws_store::secrets as stored;
        let now = Utc::now();
        let mut draft = secrets::SecretsDraft::load(
            &self.pool,
            &self.cipher,
            &self.inputs,
            record,
            spec,
            desired,
            now,
        )
        .await?;
        if draft.gateway_token_missing {
            // First use, or the spec asks for a rotation: a new token, recorded together with
            // the rotation it answers so it is generated once.
            let token = generate_token();
            let mut tx = self.pool.begin().await.map_err(StoreError::from)?;
            stored::put(
                &mut *tx,
                &self.cipher,
                record.uid,
                secrets::GATEWAY_TOKEN,
                &token,
                now,
            )
            .await?;
            sqlx::query("UPDATE instances SET gateway_token_rotation = $2 WHERE uid = $1")
                .bind(record.uid)
                .bind(i64::from(spec.gateway_token_rotation))
                .execute(&mut *tx)
                .await
                .map_err(StoreError::from)?;
            tx.commit().await.map_err(StoreError::from)?;
            draft.set_gateway_token(token);
        }
        if let (true, Some(key)) = (draft.proxy_token_missing, &self.inputs.llm_proxy_key) {
            let minted = key
                .mint(record.uid, now)
                .map_err(|e| ReconcileError::ProxyToken(e.to_string()))?;
            stored::put(
                &self.pool,
                &self.cipher,
                record.uid,
                secrets::LLM_PROXY_TOKEN,
                minted.expose(),
                now,
            )
            .await?;
            draft.set_proxy_token(minted.expose().to_owned(), minted.claims.rotate_at());
        }
        let rotate_at = draft.proxy_token_rotate_at;
        Ok((draft.finish(&self.cipher), rotate_at))
    }
}

/// The world the final plan was made from, for the API's plan preview; `None` (the previous
/// snapshot stays) in the unexpected case that it does not serialize.
fn snapshot(
    observed: &observe::Observed,
    now: chrono::DateTime<Utc>,
) -> Option<status_store::Snapshot> {
    match serde_json::to_value(observed) {
        Ok(world) => Some(status_store::Snapshot {
            world,
            at: observed.observed_at.unwrap_or(now),
        }),
        Err(e) => {
            tracing::warn!(error = %e, "the observed world does not serialize; snapshot not recorded");
            None
        }
    }
}

/// A fresh gateway token: 32 random bytes, base64url.
fn generate_token() -> String {
    use base64::Engine;
    let bytes: [u8; 32] = rand::random();
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
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

fn chrono_duration(d: Duration) -> chrono::Duration {
    chrono::Duration::from_std(d).unwrap_or(chrono::Duration::MAX)
}
