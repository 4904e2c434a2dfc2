//! Fly API errors, classified by what the caller should do about them.

use std::time::Duration;

use openclaws_model::conditions::Reason;

/// A failed Fly API call.
#[derive(Debug, Clone, thiserror::Error)]
pub enum FlyError {
    /// 404: the resource does not exist (or is already gone).
    #[error("not found: {message}")]
    NotFound { message: String },
    /// 401: the token is missing, invalid or revoked.
    #[error(
        "Fly refused the API token (revoked, expired or without rights to the org): {message}"
    )]
    Unauthorized { message: String },
    /// 403: the resource exists but belongs to someone else (e.g. an app name taken by another org).
    #[error("forbidden: {message}")]
    Forbidden { message: String },
    /// 409: lease held, version mismatch or host capacity.
    #[error("conflict: {message}")]
    Conflict { message: String },
    /// 409: someone else holds the machine's lease (a person running `fly deploy`, or an attempt
    /// of ours that died holding it) until `expires_at`; retry once it has expired.
    #[error("lease held: {message}")]
    LeaseHeld {
        message: String,
        expires_at: Option<chrono::DateTime<chrono::Utc>>,
    },
    /// 412: the resource is not in a state that allows the operation yet (settling, volume bound).
    #[error("precondition failed: {message}")]
    Precondition { message: String },
    /// No room in the region or on the host (`insufficient_capacity`,
    /// `volume_placement_capacity`), whatever the status code: back off, it may clear.
    #[error("no capacity: {message}")]
    Capacity { message: String },
    /// 429: slow down; retry after the given time when Fly says.
    #[error("rate limited: {message}")]
    RateLimited {
        message: String,
        retry_after: Option<Duration>,
    },
    /// 408, 5xx or a transport failure. For a non-idempotent request the outcome is unknown.
    #[error("transient failure{}: {message}", status.map(|s| format!(" ({s})")).unwrap_or_default())]
    Transient {
        status: Option<u16>,
        message: String,
    },
    /// 400/422 and other client errors that retrying will not fix (invalid image, name taken, quota).
    #[error("rejected ({status}): {message}")]
    Rejected {
        status: u16,
        message: String,
        /// Fly's `status` code, e.g. `name_taken`, `insufficient_capacity`.
        code: Option<String>,
    },
    /// The response could not be understood.
    #[error("unexpected response: {message}")]
    Decode { message: String },
    /// Not sent: our share of Fly's rate limits (or the organization's line for app creation
    /// and deletion) says come back after `retry_after`. Waiting is not a failure.
    #[error("{message}")]
    Throttled {
        message: String,
        retry_after: Duration,
    },
    /// Not sent: Fly kept failing and calls are held until a probe sees it answer again.
    #[error("Fly is unavailable; calls are held until it answers again")]
    Unavailable { retry_after: Duration },
    /// Not sent: the reconcile lost its work lease; another replica owns the instance now.
    #[error("not sent: {0}")]
    Fenced(#[from] openclaws_model::fence::Fenced),
}

impl FlyError {
    /// Whether a later retry may succeed without any change of input.
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            FlyError::Conflict { .. }
                | FlyError::LeaseHeld { .. }
                | FlyError::Capacity { .. }
                | FlyError::Precondition { .. }
                | FlyError::RateLimited { .. }
                | FlyError::Transient { .. }
                | FlyError::Decode { .. }
                | FlyError::Throttled { .. }
                | FlyError::Unavailable { .. }
        )
    }

    /// Whether retrying cannot help until the input changes (an invalid image, a name taken by
    /// another organization, a quota): the instance is `Failed` for this generation.
    pub fn is_terminal(&self) -> bool {
        matches!(self, FlyError::Rejected { .. } | FlyError::Forbidden { .. })
    }

    /// Whether nothing went wrong with the request itself: it was held back (throttled, the
    /// circuit open), so the instance's failure streak must not grow.
    pub fn is_wait(&self) -> bool {
        matches!(
            self,
            FlyError::Throttled { .. } | FlyError::Unavailable { .. }
        )
    }

    /// Whether this answer says Fly itself is down (no answer, 408, 5xx), for the circuit.
    pub fn is_outage(&self) -> bool {
        matches!(self, FlyError::Transient { .. })
    }

    /// The class's reason in conditions, `lastError` and events.
    pub fn reason(&self) -> Reason {
        match self {
            FlyError::NotFound { .. } => Reason::NotFound,
            FlyError::Unauthorized { .. } => Reason::FlyUnauthorized,
            FlyError::Forbidden { .. } => Reason::FlyForbidden,
            FlyError::Conflict { .. } => Reason::FlyConflict,
            FlyError::LeaseHeld { .. } => Reason::LeaseHeld,
            FlyError::Precondition { .. } => Reason::FlyPrecondition,
            FlyError::Capacity { .. } => Reason::RegionCapacity,
            FlyError::RateLimited { .. } => Reason::FlyRateLimited,
            FlyError::Transient { .. } => Reason::FlyTransient,
            FlyError::Rejected { .. } => Reason::FlyRejected,
            FlyError::Decode { .. } => Reason::FlyBadResponse,
            FlyError::Throttled { .. } => Reason::FlyThrottled,
            FlyError::Unavailable { .. } => Reason::FlyUnavailable,
            FlyError::Fenced(_) => Reason::LeaseLost,
        }
    }

    /// How long Fly asked us to wait, if it did; for a held lease, until it expires (plus a
    /// second for clock skew).
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            FlyError::RateLimited { retry_after, .. } => *retry_after,
            FlyError::Throttled { retry_after, .. } | FlyError::Unavailable { retry_after } => {
                Some(*retry_after)
            }
            FlyError::LeaseHeld {
                expires_at: Some(at),
                ..
            } => {
                let left = (*at - chrono::Utc::now()).to_std().unwrap_or_default();
                Some(left + Duration::from_secs(1))
            }
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_held_lease_is_retried_when_it_expires() {
        let e = FlyError::LeaseHeld {
            message: "held by alice".into(),
            expires_at: Some(chrono::Utc::now() + chrono::Duration::seconds(20)),
        };
        assert_eq!(e.reason(), "LeaseHeld");
        assert!(e.is_retryable() && !e.is_terminal());
        let after = e.retry_after().expect("a retry-after");
        assert!(after > Duration::from_secs(19) && after <= Duration::from_secs(21));
        let expired = FlyError::LeaseHeld {
            message: "held".into(),
            expires_at: Some(chrono::Utc::now() - chrono::Duration::seconds(5)),
        };
        assert_eq!(expired.retry_after(), Some(Duration::from_secs(1)));
    }
}
