//! The simulator's wire: what it reads from requests and writes in answers, written from the
//! published documents vendored in `crates/fly-sim/openapi/` ([`fly`] from Fly's Machines API
//! document, [`cloudflare`] from Cloudflare's DNS records document), never from our client's
//! types. A client field Fly does not have is therefore ignored here, as Fly ignores it, and a
//! contract test checks both sides against the documents.
//!
//! Shapes the documents do not have but Fly answers with are kept apart and say where they come
//! from ([`LeaseEnvelope`]).

pub mod cloudflare;
pub mod fly;

pub use fly::*;

use serde::{Deserialize, Serialize};

/// The envelope lease answers come in on Fly (`{"status":"success","data":{…}}`, as Fly's docs
/// show and fly-go's `MachineLease` decodes), where the document declares a bare `Lease`. Which
/// of the two the simulator answers is [`crate::SimConfig::lease_envelope`].
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct LeaseEnvelope {
    /// `success`.
    pub status: String,
    /// The lease.
    pub data: Lease,
}
