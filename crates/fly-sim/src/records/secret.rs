//! One app secret's record.

use crate::clock::rfc3339;
use crate::wire::AppSecret;
use chrono::{DateTime, Utc};
use serde::Serialize;

/// One stored secret.
#[derive(Debug, Clone, Serialize)]
pub struct SecretRec {
    /// The value (never in `/_sim/state`).
    #[serde(skip)]
    pub value: String,
    /// Hash of the value, as Fly reports it.
    pub digest: String,
    /// First set.
    pub created_at: DateTime<Utc>,
    /// Last set.
    pub updated_at: DateTime<Utc>,
}

impl SecretRec {
    /// The secret named `name` as Fly answers it; the value only when `show` is asked for.
    pub fn to_wire(&self, name: &str, show: bool) -> AppSecret {
        AppSecret {
            name: Some(name.to_string()),
            digest: Some(self.digest.clone()),
            created_at: Some(rfc3339(self.created_at)),
            updated_at: Some(rfc3339(self.updated_at)),
            value: show.then(|| self.value.clone()),
        }
    }
}
