//! The `OpenClawInstance` resource: the Kubernetes-shaped object the API stores and the controller
//! converges. The types here are the single source for the JSON wire format, the OpenAPI document
//! and the CRD under `crds/`. Beside it, the vocabulary every layer shares: condition types,
//! drift kinds and pairing outcomes, secrets at rest and the redaction of credential-shaped text.
//!
//! This crate is the bottom of the workspace: it depends on no other crate of it.

mod channels;
pub mod conditions;
pub mod crd;
pub mod fence;
pub mod managed;
pub mod outcomes;
pub mod redact;
pub mod release;
pub mod schema;
pub mod secret_names;
mod secret_ref;
pub mod secrets;
pub mod selector;
mod spec;
mod status;
pub mod text;
pub mod webhooks;
mod write;

pub use channels::*;
pub use secret_ref::SecretRef;
pub use spec::*;
pub use status::*;
pub use write::*;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use utoipa::ToSchema;
use uuid::Uuid;

/// API group of the resource, as in a Kubernetes CRD.
pub const GROUP: &str = "openclaws.biz";
/// API version of the resource.
pub const VERSION: &str = "v1alpha1";
/// `apiVersion` field value.
pub const API_VERSION: &str = "openclaws.biz/v1alpha1";
/// `kind` field value.
pub const KIND: &str = "OpenClawInstance";
/// `kind` of a list of instances.
pub const LIST_KIND: &str = "OpenClawInstanceList";
/// Plural resource name, as in the CRD.
pub const PLURAL: &str = "openclawinstances";

/// One customer's OpenClaw gateway: desired state (`spec`) and what the controller observed (`status`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct OpenClawInstance {
    /// Always `openclaws.biz/v1alpha1`.
    pub api_version: String,
    /// Always `OpenClawInstance`.
    pub kind: String,
    /// Identity and bookkeeping.
    pub metadata: ObjectMeta,
    /// Desired state, defaults applied, provider keys shown as references only.
    pub spec: InstanceSpec,
    /// Observed state; written only by the controller.
    pub status: InstanceStatus,
}

/// Identity and bookkeeping of a resource, as in Kubernetes `metav1.ObjectMeta`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ObjectMeta {
    /// The slug: a DNS label of 3–40 characters `[a-z0-9-]`, unique; also the hostname prefix.
    pub name: String,
    /// Assigned by the server on create; stable for the life of the resource.
    pub uid: Uuid,
    /// Bumped on every spec change.
    pub generation: i64,
    /// Opaque token that changes on every write; send it back to get optimistic concurrency.
    pub resource_version: String,
    /// Free-form labels (keys and values up to 63 characters).
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    pub creation_timestamp: DateTime<Utc>,
    /// Set by DELETE; the resource stays until teardown has finished.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deletion_timestamp: Option<DateTime<Utc>>,
    /// Which field manager owns which fields (server-side apply); absent while nobody does.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub managed_fields: Vec<managed::ManagedFieldsEntry>,
}
