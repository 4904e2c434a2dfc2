//! One hostname's certificate record (how it moves along lives in [`crate::certificates`]).

use crate::wire::CertificateValidationError;
use chrono::{DateTime, Utc};
use serde::Serialize;

type Time = DateTime<Utc>;

/// One hostname's certificate state.
#[derive(Debug, Clone, Serialize)]
pub struct CertRec {
    /// The hostname.
    pub hostname: String,
    /// When it was added.
    pub created_at: Time,
    /// A Fly-managed (ACME) certificate is wanted.
    pub acme_requested: bool,
    /// When a custom certificate was uploaded, if any.
    pub custom_at: Option<Time>,
    /// `pending_validation`, `issuing`, `active`, `pending_ownership`.
    pub status: String,
    /// When an issuance in progress completes.
    pub issuing_until: Option<Time>,
    /// When the ACME certificate was issued.
    pub issued_at: Option<Time>,
    /// The `_acme-challenge` CNAME target.
    pub acme_target: String,
    /// Recorded validation failures.
    pub validation_errors: Vec<CertificateValidationError>,
    /// Times of failed explicit checks (last hour).
    pub failed_checks: Vec<Time>,
    /// No issuance before this.
    pub rate_limited_until: Option<Time>,
}
