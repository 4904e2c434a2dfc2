//! The public face of a write-only secret (provider keys, channel credentials), in a module of
//! its own so every part of the spec can use it without importing another.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// What is shown of a stored secret: that it is set, a keyed fingerprint, and when it last changed.
/// Sending this object back on a write keeps the stored value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SecretRef {
    /// Always `true` when shown.
    pub set: bool,
    /// Keyed HMAC-SHA256 fingerprint: shows that a value changed without revealing it.
    pub fingerprint: String,
    /// When the value was last written.
    pub updated_at: DateTime<Utc>,
}
