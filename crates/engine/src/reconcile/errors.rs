//! What can go wrong in a reconcile: errors that stop it before it can record anything
//! ([`ReconcileError`]), and failed steps against Fly, the DNS provider or the gateway
//! ([`StepError`]), which are recorded (`lastError`, an event) and retried with backoff, or
//! block the instance for this generation when retrying cannot help.

use std::time::Duration;

use openclaws_dns::DnsError;
use openclaws_fly::FlyError;
use openclaws_model::conditions::Reason;
use openclaws_store::secrets::SecretStoreError;
use openclaws_store::StoreError;

use super::gateway::GatewayStepError;

/// Errors that stop a reconcile before it can record anything.
#[derive(Debug, thiserror::Error)]
pub enum ReconcileError {
    #[error(transparent)]
    Store(StoreError),
    #[error(transparent)]
    Secrets(SecretStoreError),
    #[error("minting an LLM proxy token failed: {0}")]
    ProxyToken(String),
    /// The work lease was lost mid-reconcile: it stopped before its next mutation and recorded
    /// nothing; the new holder reconciles the instance.
    #[error("the work lease was lost: {0}")]
    LeaseLost(String),
}

impl From<SecretStoreError> for ReconcileError {
    fn from(e: SecretStoreError) -> Self {
        match e {
            SecretStoreError::Store(StoreError::LeaseLost) => {
                ReconcileError::LeaseLost("the status was not recorded".to_owned())
            }
            other => ReconcileError::Secrets(other),
        }
    }
}

impl From<StoreError> for ReconcileError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::LeaseLost => {
                ReconcileError::LeaseLost("the status was not recorded".to_owned())
            }
            other => ReconcileError::Store(other),
        }
    }
}

impl ReconcileError {
    /// The class of the error, for grouping reports.
    pub fn kind(&self) -> &'static str {
        match self {
            ReconcileError::Store(_) => "Store",
            ReconcileError::Secrets(_) => "StoredSecrets",
            ReconcileError::ProxyToken(_) => "ProxyToken",
            ReconcileError::LeaseLost(_) => "LeaseLost",
        }
    }
}

/// A failed step: against Fly, the DNS provider, or the gateway itself.
#[derive(Debug, thiserror::Error)]
pub enum StepError {
    #[error(transparent)]
    Fly(#[from] FlyError),
    #[error(transparent)]
    Dns(#[from] DnsError),
    #[error(transparent)]
    Gateway(#[from] GatewayStepError),
}

impl StepError {
    /// The Fly error underneath, when Fly answered (also for a gateway step that went
    /// through Fly, the one-time pairing exec).
    fn fly(&self) -> Option<&FlyError> {
        match self {
            StepError::Fly(e) | StepError::Gateway(GatewayStepError::Fly(e)) => Some(e),
            _ => None,
        }
    }

    /// The step was not sent because the work lease was lost: the reconcile must stop.
    pub fn is_fenced(&self) -> bool {
        matches!(
            self,
            StepError::Fly(FlyError::Fenced(_))
                | StepError::Gateway(GatewayStepError::Fly(FlyError::Fenced(_)))
                | StepError::Dns(DnsError::Fenced(_))
        )
    }

    /// Nothing went wrong: the step was held back (our share of Fly's limits, the
    /// organization's line, Fly's circuit), so the failure streak must not grow.
    pub fn is_wait(&self) -> bool {
        self.fly().is_some_and(FlyError::is_wait)
    }

    /// Retrying cannot help until the spec changes.
    pub fn is_terminal(&self) -> bool {
        match self {
            StepError::Dns(e) => e.is_terminal(),
            other => other.fly().is_some_and(FlyError::is_terminal),
        }
    }

    /// Machine-readable class for `lastError.reason` and conditions.
    pub fn reason(&self) -> Reason {
        if let Some(e) = self.fly() {
            return e.reason();
        }
        match self {
            StepError::Dns(e) => e.reason(),
            StepError::Gateway(GatewayStepError::Bootstrap(_)) => Reason::ControllerPairingFailed,
            _ => Reason::GatewayError,
        }
    }

    /// Who refused, for messages ("… was rejected by Fly").
    pub fn refused_by(&self) -> &'static str {
        match self {
            StepError::Dns(_) => "the DNS provider",
            StepError::Gateway(GatewayStepError::Fly(_)) | StepError::Fly(_) => "Fly",
            StepError::Gateway(_) => "the gateway",
        }
    }

    /// When the other side said to come back.
    pub fn retry_after(&self) -> Option<Duration> {
        self.fly().and_then(FlyError::retry_after)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dns_failures_are_their_own() {
        let rejected = StepError::from(DnsError::Rejected {
            status: 403,
            message: "bad token".into(),
        });
        assert!(rejected.is_terminal());
        assert_eq!(rejected.reason(), Reason::DnsRejected);
        assert_eq!(rejected.refused_by(), "the DNS provider");
        let down = StepError::from(DnsError::Transient("503".into()));
        assert!(!down.is_terminal());
        assert_eq!(down.reason(), Reason::DnsUnavailable);
    }
}
