//! One assigned IP address's record.

use crate::clock::rfc3339;
use crate::wire::{IPAssignment, IPAssignmentNetwork};
use chrono::{DateTime, Utc};
use serde::Serialize;

/// One assigned address.
#[derive(Debug, Clone, Serialize)]
pub struct IpRec {
    /// The address.
    pub ip: String,
    /// The kind it was allocated as (`v6`, `shared_v4`, `v4`, `private_v6`, `egress_v4`,
    /// `egress_v6`); simulator state, never sent.
    #[serde(rename = "type")]
    pub type_: String,
    /// Region (`global` for anycast addresses).
    pub region: String,
    /// Service it is bound to (empty: the whole app).
    pub service_name: String,
    /// Allocation time.
    pub created_at: DateTime<Utc>,
    /// For a Flycast (`private_v6`) address: the network its requests come from, as asked at
    /// allocation (empty: the organization's default network).
    pub network: String,
}

impl IpRec {
    /// Whether this is a public address (`<app>.fly.dev` resolves only with one).
    pub fn is_public(&self) -> bool {
        matches!(self.type_.as_str(), "v6" | "v4" | "shared_v4")
    }

    /// Whether this is a Flycast address reachable from the organization's default network
    /// (`{app}.flycast` there).
    pub fn is_default_flycast(&self) -> bool {
        self.type_ == "private_v6" && self.network.is_empty()
    }

    /// The address as Fly lists it.
    pub fn to_wire(&self, org: &str) -> IPAssignment {
        IPAssignment {
            ip: Some(self.ip.clone()),
            region: Some(self.region.clone()),
            service_name: Some(self.service_name.clone()),
            shared: Some(self.type_ == "shared_v4"),
            egress: Some(self.type_.starts_with("egress_")),
            created_at: Some(rfc3339(self.created_at)),
            network: (self.type_ == "private_v6").then(|| IPAssignmentNetwork {
                name: Some(self.network.clone()),
                org_slug: Some(org.to_owned()),
            }),
        }
    }
}
