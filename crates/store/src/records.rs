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
        for key in spec.secret_refs_mut() {
            key.fingerprint = cipher.shown_fingerprint(&self.uid, &key.fingerprint);
        }
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
