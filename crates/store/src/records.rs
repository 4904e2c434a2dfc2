//! The `instances` row as Rust values, shared by the API (desired state) and the controller.

use chrono::{DateTime, Utc};
use openclaws_model::managed::{self, Managed};
use openclaws_model::secrets::SecretCipher;
use openclaws_model::{
    InstanceSpec, InstanceStatus, ObjectMeta, OpenClawInstance, API_VERSION, KIND,
};
use sqlx::FromRow;
use std::collections::BTreeMap;
use uuid::Uuid;

use super::StoreError;

/// One `instances` row.
#[derive(Debug, Clone, FromRow)]
pub struct InstanceRecord {
    pub uid: Uuid,
    pub name: String,
    pub customer_id: String,
    pub labels: sqlx::types::Json<BTreeMap<String, String>>,
    pub spec: sqlx::types::Json<serde_json::Value>,
    pub generation: i64,
    pub resource_version: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub deletion_timestamp: Option<DateTime<Utc>>,
    pub status: sqlx::types::Json<serde_json::Value>,
    pub phase: String,
    pub observed_generation: i64,
    pub fly_app: Option<String>,
    pub fly_volume_id: Option<String>,
    pub fly_machine_id: Option<String>,
    /// Keyed fingerprint of the app secrets the controller last set (never the values).
    pub fly_secrets_fingerprint: Option<String>,
    /// Fly's secrets version after that write.
    pub fly_secrets_version: Option<i64>,
    /// The `spec.gatewayTokenRotation` the stored gateway token was generated for.
    pub gateway_token_rotation: i64,
    /// Until when a device may be pairing, so the gateway is looked at every few seconds.
    pub pairing_window_until: Option<DateTime<Utc>>,
    /// When the instance was first `Ready`.
    pub first_ready_at: Option<DateTime<Utc>>,
    /// Kinds of the repair steps taken since drift was detected, while it is not repaired
    /// (`None`: no drift open).
    pub drift_repairs: Option<Vec<String>>,
    /// Field ownership (server-side apply): manager → JSON Pointers it owns.
    pub managed_fields: sqlx::types::Json<Managed>,
}

/// Replaces each stored secret fingerprint of `spec` with the one shown to readers.
fn show_fingerprints(spec: &mut InstanceSpec, uid: &Uuid, cipher: &SecretCipher) {
    for key in spec.secret_refs_mut() {
        key.fingerprint = cipher.shown_fingerprint(uid, &key.fingerprint);
    }
}

/// The columns of an `instances` row the API shows, decoded straight from the stored JSONB into
/// typed values: a read answers without going through `serde_json::Value` and its clones, which
/// cost more than the query on a GET and most of a list.
#[derive(Debug, FromRow)]
pub struct ResourceRecord {
    pub uid: Uuid,
    pub name: String,
    pub labels: sqlx::types::Json<BTreeMap<String, String>>,
    pub spec: sqlx::types::Json<InstanceSpec>,
    pub generation: i64,
    pub resource_version: i64,
    pub created_at: DateTime<Utc>,
    pub deletion_timestamp: Option<DateTime<Utc>>,
    /// `{}` (every field defaulted) or `null` until the controller first writes it.
    pub status: sqlx::types::Json<Option<InstanceStatus>>,
    pub managed_fields: sqlx::types::Json<Managed>,
}

/// Columns selected for a [`ResourceRecord`].
pub const RESOURCE_COLUMNS: &str = "uid, name, labels, spec, generation, resource_version, \
     created_at, deletion_timestamp, status, managed_fields";

impl ResourceRecord {
    /// The resource as the API shows it, like [`InstanceRecord::to_resource`], by moving the
    /// decoded values instead of copying them.
    pub fn into_resource(self, cipher: &SecretCipher) -> OpenClawInstance {
        let mut spec = self.spec.0;
        show_fingerprints(&mut spec, &self.uid, cipher);
        OpenClawInstance {
            api_version: API_VERSION.to_owned(),
            kind: KIND.to_owned(),
            metadata: ObjectMeta {
                name: self.name,
                uid: self.uid,
                generation: self.generation,
                resource_version: self.resource_version.to_string(),
                labels: self.labels.0,
                creation_timestamp: self.created_at,
                deletion_timestamp: self.deletion_timestamp,
                managed_fields: managed::entries(&self.managed_fields.0),
            },
            spec,
            status: self.status.0.unwrap_or_default(),
        }
    }
}

/// Columns selected for an [`InstanceRecord`], in a form usable in `SELECT {INSTANCE_COLUMNS} FROM instances`.
pub const INSTANCE_COLUMNS: &str =
    "uid, name, customer_id, labels, spec, generation, resource_version, \
     created_at, updated_at, deletion_timestamp, status, phase, observed_generation, fly_app, \
     fly_volume_id, fly_machine_id, fly_secrets_fingerprint, fly_secrets_version, \
     gateway_token_rotation, pairing_window_until, first_ready_at, drift_repairs, managed_fields";

impl InstanceRecord {
    /// The typed spec.
    pub fn spec(&self) -> Result<InstanceSpec, StoreError> {
        serde_json::from_value(self.spec.0.clone())
            .map_err(|e| StoreError::Corrupt(format!("spec of {}: {e}", self.name)))
    }

    /// The typed status (empty when never written).
    pub fn status(&self) -> Result<InstanceStatus, StoreError> {
        if self.status.0.as_object().is_none_or(|o| o.is_empty()) {
            return Ok(InstanceStatus::default());
        }
        serde_json::from_value(self.status.0.clone())
            .map_err(|e| StoreError::Corrupt(format!("status of {}: {e}", self.name)))
    }

    /// The resource as the API shows it: provider keys and channel credentials carry the fingerprint shown to readers
    /// ([`SecretCipher::shown_fingerprint`], keyed with this instance's uid), never the stored
    /// one, so equal keys on two instances cannot be recognised.
    pub fn to_resource(&self, cipher: &SecretCipher) -> Result<OpenClawInstance, StoreError> {
        let mut spec = self.spec()?;
        show_fingerprints(&mut spec, &self.uid, cipher);
        Ok(OpenClawInstance {
            api_version: API_VERSION.to_owned(),
            kind: KIND.to_owned(),
            metadata: ObjectMeta {
                name: self.name.clone(),
                uid: self.uid,
                generation: self.generation,
                resource_version: self.resource_version.to_string(),
                labels: self.labels.0.clone(),
                creation_timestamp: self.created_at,
                deletion_timestamp: self.deletion_timestamp,
                managed_fields: managed::entries(&self.managed_fields.0),
            },
            spec,
            status: self.status()?,
        })
    }
}
