//! A volume's record.

use crate::clock::rfc3339;
use crate::wire::Volume;
use chrono::{DateTime, Utc};
use serde::Serialize;

/// Volume states Fly (and fly-go) treat as gone or going.
pub const DESTROYED_STATES: [&str; 7] = [
    "scheduling_destroy",
    "fork_cleanup",
    "waiting_for_detach",
    "pending_destroy",
    "destroying",
    "destroyed",
    "deleted",
];

/// A simulated volume.
#[derive(Debug, Clone, Serialize)]
pub struct VolRec {
    /// `vol_…` id.
    pub id: String,
    /// Owning app id.
    pub app_id: String,
    /// Name (not unique).
    pub name: String,
    /// `created`, `pending_destroy`, ….
    pub state: String,
    /// Size.
    pub size_gb: u32,
    /// Region.
    pub region: String,
    /// Host id.
    pub zone: String,
    /// Encrypted at rest.
    pub encrypted: bool,
    /// Machine holding it (including a destroyed one within the release lag).
    pub attached_machine_id: Option<String>,
    /// Filesystem.
    pub fstype: String,
    /// Snapshot retention days.
    pub snapshot_retention: u32,
    /// Daily snapshots on.
    pub auto_backup_enabled: bool,
    /// Creation time.
    pub created_at: DateTime<Utc>,
    /// When it was deleted.
    pub destroyed_at: Option<DateTime<Utc>>,
    /// Its host is unreachable (`host_status`), set through `/_sim`.
    pub host_unreachable: bool,
}

impl VolRec {
    /// Whether the volume is deleted or being deleted.
    pub fn is_destroyed(&self) -> bool {
        DESTROYED_STATES.contains(&self.state.as_str())
    }

    /// The volume as Fly returns it (`attached_machine_id`/`attached_alloc_id` are `null` when
    /// unset: Fly's Go declares them as pointers without `omitempty`).
    pub fn to_json(&self) -> Volume {
        let bytes_total = i64::from(self.size_gb) * 1024 * 1024 * 1024;
        Volume {
            id: Some(self.id.clone()),
            name: Some(self.name.clone()),
            state: Some(self.state.clone()),
            size_gb: Some(i64::from(self.size_gb)),
            region: Some(self.region.clone()),
            zone: Some(self.zone.clone()),
            encrypted: Some(self.encrypted),
            attached_machine_id: self.attached_machine_id.clone(),
            attached_alloc_id: None,
            created_at: Some(rfc3339(self.created_at)),
            blocks: Some(bytes_total / 4096),
            block_size: Some(4096),
            blocks_free: Some(bytes_total / 4096),
            blocks_avail: Some(bytes_total / 4096),
            bytes_total: Some(bytes_total),
            bytes_used: Some(0),
            fstype: Some(self.fstype.clone()),
            snapshot_retention: Some(i64::from(self.snapshot_retention)),
            auto_backup_enabled: Some(self.auto_backup_enabled),
            host_status: Some(
                if self.host_unreachable {
                    "unreachable"
                } else {
                    "ok"
                }
                .into(),
            ),
            r#type: Some("local".into()),
            host_features: Vec::new(),
            required_host_features: Vec::new(),
        }
    }
}
