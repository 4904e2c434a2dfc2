//! The actions a plan is made of: small, idempotent steps against Fly, the DNS provider or the
//! gateway, each with the name events and errors know it by.

use openclaws_fly::types::{CreateMachineRequest, CreateVolumeRequest, UpdateMachineRequest};

use openclaws_model::{ChannelKind, ChannelSecret};

use crate::reconcile::secrets::SecretWrite;

/// One small, idempotent step against Fly.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    CreateApp {
        name: String,
        network: String,
    },
    /// Requests a Let's Encrypt certificate for the hostname.
    AddCertificate {
        hostname: String,
    },
    /// Removes the hostname's certificate.
    DeleteCertificate {
        hostname: String,
    },
    /// Creates the hostname's record (marked as ours).
    CreateDnsRecord {
        record: openclaws_dns::DnsRecord,
    },
    /// Points our record at the right target.
    UpdateDnsRecord {
        id: String,
        record: openclaws_dns::DnsRecord,
    },
    /// Removes our record.
    DeleteDnsRecord {
        id: String,
        name: String,
    },
    /// Allocates a public address of a type (`v6`, `shared_v4`).
    AssignIp {
        kind: String,
    },
    /// Releases an address the spec no longer wants (or a duplicate).
    ReleaseIp {
        ip: String,
    },
    /// Sets and unsets app secrets in one write (values redacted from Debug).
    SetSecrets {
        write: SecretWrite,
    },
    CreateVolume {
        request: CreateVolumeRequest,
    },
    ExtendVolume {
        id: String,
        size_gb: u32,
    },
    CreateMachine {
        request: CreateMachineRequest,
    },
    UpdateMachine {
        id: String,
        request: UpdateMachineRequest,
        /// Why the machine's gateway state was off the data volume, when that is part of what
        /// this update puts right (reported as its own warning event).
        state_dir_drift: Option<String>,
    },
    StartMachine {
        id: String,
    },
    StopMachine {
        id: String,
    },
    DestroyMachine {
        id: String,
        force: bool,
    },
    /// Force-destroys a machine wedged in a transient state; the next plan recreates it on the
    /// same volume.
    RecoverStuckMachine {
        id: String,
        state: String,
        stuck_secs: u64,
    },
    DeleteVolume {
        id: String,
    },
    DeleteApp {
        name: String,
    },
    /// Restarts the machine so its boot step puts owned config fields changed out of band back;
    /// only when one of them needs a gateway restart anyway.
    RestartMachine {
        id: String,
        paths: Vec<String>,
    },
    /// Puts owned config fields changed out of band back over the gateway protocol
    /// (`config.patch`), which the running gateway hot-applies: no restart, no disconnect.
    PatchGatewayConfig {
        paths: Vec<String>,
    },
    /// Puts the current LLM proxy token into the gateway's secret store over the protocol
    /// (`secrets.store.set`), which re-resolves the config's reference to it: no restart.
    DeliverProxyToken {
        /// Keyed fingerprint of the token (never the token).
        fingerprint: String,
    },
    /// Puts a channel credential into the gateway's secret store over the protocol
    /// (`secrets.store.set`), then its marker; the gateway re-resolves the channel's reference
    /// and restarts the channel in its running process: no machine restart.
    DeliverChannelSecret {
        secret: ChannelSecret,
        /// Keyed fingerprint of the value (never the value).
        fingerprint: String,
    },
    /// Writes the managed channels' owned fields over the gateway protocol (`config.patch`,
    /// hot-applied per channel): no restart.
    ConfigureChannels {
        paths: Vec<String>,
    },
    /// Removes a channel the spec no longer names but the controller managed (its marker is in
    /// the store): its whole config (`config.patch`), then its store entries.
    RemoveChannel {
        channel: ChannelKind,
    },
    /// Approves the controller's own device once, by a Fly exec of the gateway's CLI inside the
    /// machine (a loopback caller there is trusted).
    PairController {
        machine_id: String,
        request_id: String,
    },
    /// Approves a device's pending request over the gateway protocol.
    ApprovePairing {
        request_id: String,
        /// The recorded approval this carries out (`manual`); `None` under `auto`.
        approval_id: Option<String>,
        device_name: Option<String>,
    },
    /// Records that a recorded approval can no longer be carried out (nothing to approve).
    ExpireApproval {
        approval_id: String,
        request_id: Option<String>,
        message: String,
    },
    /// Approves (`channels.pairing.approve`) or dismisses (`channels.pairing.dismiss`) a
    /// stranger's pending DM pairing request over the gateway protocol.
    DecideChannelPairing(ChannelPairingStep),
}

/// One DM pairing decision to carry out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChannelPairingStep {
    pub channel: String,
    pub account_id: String,
    pub request_id: String,
    pub sender_id: String,
    pub sender_name: Option<String>,
    /// The recorded decision this carries out; `None` under the `auto` DM policy.
    pub decision_id: Option<String>,
    /// Approve (else dismiss).
    pub approve: bool,
    /// Ask the channel to tell the sender they were approved.
    pub notify: bool,
}

impl ChannelPairingStep {
    /// `{sender name} ({channel} {sender id})`, for events and outcomes.
    pub fn sender_label(&self) -> String {
        match &self.sender_name {
            Some(name) => format!("{name} ({} {})", self.channel, self.sender_id),
            None => format!("{} sender {}", self.channel, self.sender_id),
        }
    }
}

impl Action {
    /// The step name used in events, `lastError.step` and logs.
    pub fn step(&self) -> &'static str {
        match self {
            Action::CreateApp { .. } => "CreateApp",
            Action::SetSecrets { .. } => "SetSecrets",
            Action::AssignIp { .. } => "AssignIp",
            Action::AddCertificate { .. } => "AddCertificate",
            Action::DeleteCertificate { .. } => "DeleteCertificate",
            Action::CreateDnsRecord { .. } => "CreateDnsRecord",
            Action::UpdateDnsRecord { .. } => "UpdateDnsRecord",
            Action::DeleteDnsRecord { .. } => "DeleteDnsRecord",
            Action::ReleaseIp { .. } => "ReleaseIp",
            Action::CreateVolume { .. } => "CreateVolume",
            Action::ExtendVolume { .. } => "ExtendVolume",
            Action::CreateMachine { .. } => "CreateMachine",
            Action::UpdateMachine { .. } => "UpdateMachine",
            Action::StartMachine { .. } => "StartMachine",
            Action::StopMachine { .. } => "StopMachine",
            Action::DestroyMachine { .. } => "DestroyMachine",
            Action::RecoverStuckMachine { .. } => "RecoverStuckMachine",
            Action::DeleteVolume { .. } => "DeleteVolume",
            Action::DeleteApp { .. } => "DeleteApp",
            Action::RestartMachine { .. } => "RestartMachine",
            Action::PatchGatewayConfig { .. } => "PatchGatewayConfig",
            Action::DeliverProxyToken { .. } => "DeliverProxyToken",
            Action::DeliverChannelSecret { .. } => "DeliverChannelSecret",
            Action::ConfigureChannels { .. } => "ConfigureChannels",
            Action::RemoveChannel { .. } => "RemoveChannel",
            Action::PairController { .. } => "PairController",
            Action::ApprovePairing { .. } => "ApprovePairing",
            Action::ExpireApproval { .. } => "ExpireApproval",
            Action::DecideChannelPairing(step) if step.approve => "ApproveChannelPairing",
            Action::DecideChannelPairing(_) => "DismissChannelPairing",
        }
    }

    /// Whether the action talks to the gateway (or only records) rather than to Fly.
    pub fn is_gateway_step(&self) -> bool {
        matches!(
            self,
            Action::PairController { .. }
                | Action::PatchGatewayConfig { .. }
                | Action::DeliverProxyToken { .. }
                | Action::DeliverChannelSecret { .. }
                | Action::ConfigureChannels { .. }
                | Action::RemoveChannel { .. }
                | Action::ApprovePairing { .. }
                | Action::ExpireApproval { .. }
                | Action::DecideChannelPairing(_)
        )
    }
}
