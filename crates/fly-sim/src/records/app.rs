//! An app's record: its identity and everything stored per app (secrets, addresses,
//! certificates), plus the ids of its machines and volumes.

use super::certificate::CertRec;
use super::ip::IpRec;
use super::secret::SecretRec;
use chrono::{DateTime, Utc};
use serde::Serialize;
use std::collections::BTreeMap;

/// A simulated app.
#[derive(Debug, Clone, Serialize)]
pub struct AppRec {
    /// 16-char id.
    pub id: String,
    /// Globally unique name.
    pub name: String,
    /// Owning org slug.
    pub org: String,
    /// 6PN network name, if isolated.
    pub network: Option<String>,
    /// Numeric id Fly also reports.
    pub internal_numeric_id: u64,
    /// Key of the create that made it (a retry with the same key returns this app).
    pub idempotency_key: Option<String>,
    /// Creation time.
    pub created_at: DateTime<Utc>,
    /// When an accepted delete completes.
    pub deleting_at: Option<DateTime<Utc>>,
    /// Machine ids, in creation order.
    pub machines: Vec<String>,
    /// Volume ids, in creation order.
    pub volumes: Vec<String>,
    /// App secrets by name.
    pub secrets: BTreeMap<String, SecretRec>,
    /// Secrets version: bumped by every write.
    pub secrets_version: u64,
    /// Assigned IPs, in allocation order.
    pub ips: Vec<IpRec>,
    /// Certificates by hostname.
    pub certificates: BTreeMap<String, CertRec>,
}
