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
pub mod machine;
pub mod observe;
pub mod plan;
pub mod secrets;
pub mod status;
pub mod volume;

use chrono::Utc;
use sqlx::PgPool;
use std::sync::Arc;
use std::time::Duration;
use uuid::Uuid;

use crate::fly::{FlyClient, FlyError};
use crate::resource::{LastError, Phase};
use crate::store::events::EventType;
use crate::store::status::{self as status_store, ControllerEvent};
use crate::store::StoreError;
use crate::telemetry::Metrics;

use crate::secrets::SecretCipher;
use act::StepFailure;
use desired::{Desired, FleetSettings};
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
    Secrets(#[from] crate::store::secrets::SecretStoreError),
}

/// What the queue should do with the key next.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// Visit again after this delay; `failed` counts toward backoff.
    Requeue { after: Duration, failed: bool },
    /// The instance row is gone (deleted); drop the key.
    Gone,
}

/// Shared dependencies of every reconcile.
#[derive(Clone, Debug)]
pub struct Reconciler {
    pub pool: PgPool,
    pub fly: FlyClient,
    pub settings: FleetSettings,
    pub metrics: Arc<Metrics>,
    /// Interval between visits of a converged instance.
    pub resync: Duration,
    /// Decrypts the instance's stored secrets (and encrypts a newly generated gateway token).
    pub cipher: Arc<SecretCipher>,
    /// Hostname records; `None` when no DNS provider is configured.
    pub dns: Option<crate::dns::CloudflareDns>,
    /// Composio's platform key for instances with Composio enabled; `None` when not configured.
    pub composio_api_key: Option<crate::secrets::Sensitive>,
}

impl Reconciler {
    /// Reconciles one instance. `attempts` is the number of consecutive failures so far.
    pub async fn reconcile(&self, uid: Uuid, attempts: i32) -> Result<Outcome, ReconcileError> {
        let Some(record) = status_store::load(&self.pool, uid).await? else {
            return Ok(Outcome::Gone);
        };
        let spec = record.spec()?;
        let previous = record.status()?;
        let deleting = record.deletion_timestamp.is_some();
        let desired = Desired::from_spec(
            uid,
            &record.name,
            record.generation,
            &spec,
            deleting,
            &self.settings,
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
            status_store::record(&self.pool, &record, &status, &events).await?;
            return Ok(Outcome::Requeue {
                after: jitter(self.resync, 0.1),
                failed: false,
            });
        }

        let desired = if deleting {
            desired
        } else {
            desired.with_secrets(self.desired_secrets(&record, &spec).await?)
        };
        let mut events = Vec::new();
        let mut failure: Option<(&'static str, FlyError)> = None;
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
                failure = Some(("Observe", e));
                None
            }
        };

        let mut final_plan = Plan::default();
        if let Some(observed) = observed.as_mut() {
            let mut settled = None;
            for _ in 0..MAX_ROUNDS {
                let p = plan(&desired, observed);
                if p.finalize {
                    status_store::finalize_deletion(&self.pool, &record, &events).await?;
                    return Ok(Outcome::Gone);
                }
                if p.actions.is_empty() {
                    settled = Some(p);
                    break;
                }
                let mut interrupted = false;
                for action in &p.actions {
                    match act::execute(&self.fly, self.dns.as_ref(), &desired, observed, action)
                        .await
                    {
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
                        Err(StepFailure::Wait(w)) => {
                            wait = Some(w);
                            interrupted = true;
                            break;
                        }
                        Err(StepFailure::Failed { step, error }) => {
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
        let acted = events.iter().any(|e| e.type_ == EventType::Normal);
        if was_converged && !deleting && (acted || status.phase != previous.phase) {
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
        status.next_reconcile_at = Some(now + chrono_duration(after));
        status_store::record(&self.pool, &record, &status, &events).await?;
        Ok(Outcome::Requeue { after, failed })
    }
}

impl Reconciler {
    /// The secrets the app should hold: the gateway token (generated and stored encrypted on
    /// first use), the customer's model keys, and Composio's per-customer entity id.
    async fn desired_secrets(
        &self,
        record: &crate::store::InstanceRecord,
        spec: &crate::resource::InstanceSpec,
    ) -> Result<secrets::DesiredSecrets, ReconcileError> {
        use crate::store::secrets as stored;
        let mut values = std::collections::BTreeMap::new();
        let stored_token =
            stored::get_plaintext(&self.pool, &self.cipher, record.uid, secrets::GATEWAY_TOKEN)
                .await?;
        let rotation = i64::from(spec.gateway_token_rotation);
        let token = match stored_token {
            Some(token) if record.gateway_token_rotation == rotation => token,
            _ => {
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
                    Utc::now(),
                )
                .await?;
                sqlx::query("UPDATE instances SET gateway_token_rotation = $2 WHERE uid = $1")
                    .bind(record.uid)
                    .bind(rotation)
                    .execute(&mut *tx)
                    .await
                    .map_err(StoreError::from)?;
                tx.commit().await.map_err(StoreError::from)?;
                token
            }
        };
        values.insert(secrets::GATEWAY_TOKEN.to_owned(), token);
        for name in [
            "ANTHROPIC_API_KEY",
            "ANTHROPIC_OAUTH_TOKEN",
            "OPENAI_API_KEY",
        ] {
            if let Some(v) =
                stored::get_plaintext(&self.pool, &self.cipher, record.uid, name).await?
            {
                values.insert(name.to_owned(), v);
            }
        }
        if let (true, Some(key)) = (spec.composio.enabled, &self.composio_api_key) {
            values.insert(
                secrets::COMPOSIO_API_KEY.to_owned(),
                key.expose().to_owned(),
            );
        }
        if spec.composio.enabled {
            let entity = spec
                .composio
                .entity_id
                .clone()
                .unwrap_or_else(|| spec.customer_id.clone());
            values.insert("COMPOSIO_ENTITY_ID".to_owned(), entity);
        }
        let desired = secrets::DesiredSecrets::new(values, &self.cipher);
        Ok(if self.composio_api_key.is_some() {
            desired.managing(secrets::COMPOSIO_API_KEY)
        } else {
            desired
        })
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
