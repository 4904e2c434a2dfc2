//! How an action reads in events and in the plan preview: one line, ids and names only, never
//! a secret value.

use super::Action;
use crate::reconcile::desired::MACHINE_NAME;
use crate::reconcile::world::device_label;

impl Action {
    /// A one-line description for events (no secrets: ids and names only).
    pub fn describe(&self) -> String {
        match self {
            Action::CreateApp { name, .. } => format!("create app {name}"),
            Action::AssignIp { kind } => format!("allocate a {kind} address"),
            Action::AddCertificate { hostname } => format!("request a certificate for {hostname}"),
            Action::DeleteCertificate { hostname } => {
                format!("remove the certificate for {hostname}")
            }
            Action::CreateDnsRecord { record } => format!(
                "create DNS record {} {} → {}",
                record.type_, record.name, record.content
            ),
            Action::UpdateDnsRecord { record, .. } => format!(
                "point DNS record {} {} at {}",
                record.type_, record.name, record.content
            ),
            Action::DeleteDnsRecord { name, .. } => format!("delete DNS record {name}"),
            Action::ReleaseIp { ip } => format!("release address {ip}"),
            Action::SetSecrets { write } => {
                let set: Vec<&str> = write
                    .values
                    .iter()
                    .filter(|(_, v)| v.is_some())
                    .map(|(k, _)| k.as_str())
                    .collect();
                let unset: Vec<&str> = write
                    .values
                    .iter()
                    .filter(|(_, v)| v.is_none())
                    .map(|(k, _)| k.as_str())
                    .collect();
                format!(
                    "set app secrets [{}] unset [{}] ({})",
                    set.join(", "),
                    unset.join(", "),
                    write.fingerprint
                )
            }
            Action::CreateVolume { request } => format!(
                "create volume {} ({} GB) in {}",
                request.name, request.size_gb, request.region
            ),
            Action::ExtendVolume { id, size_gb } => format!("extend volume {id} to {size_gb} GB"),
            Action::CreateMachine { request } => format!(
                "create machine {} on volume {}",
                request.name.as_deref().unwrap_or(MACHINE_NAME),
                request
                    .config
                    .mounts
                    .first()
                    .map(|m| m.volume.as_str())
                    .unwrap_or("-")
            ),
            Action::UpdateMachine { id, .. } => {
                format!("update machine {id} to the desired config")
            }
            Action::StartMachine { id } => format!("start machine {id}"),
            Action::StopMachine { id } => format!("stop machine {id}"),
            Action::DestroyMachine { id, .. } => format!("destroy machine {id}"),
            Action::RecoverStuckMachine {
                id,
                state,
                stuck_secs,
            } => format!(
                "machine {id} is stuck in {state} for {stuck_secs}s: destroying it to recreate it on the same volume"
            ),
            Action::DeleteVolume { id } => format!("delete volume {id}"),
            Action::DeleteApp { name } => format!("delete app {name}"),
            Action::RestartMachine { id, paths } => format!(
                "restart machine {id}: owned config fields changed out of band ({})",
                paths.join(", ")
            ),
            Action::PatchGatewayConfig { paths } => format!(
                "put owned config fields changed out of band back over the gateway protocol \
                 (config.patch, hot-applied, no restart): {}",
                paths.join(", ")
            ),
            Action::DeliverProxyToken { fingerprint } => format!(
                "put the LLM proxy token {fingerprint} into the gateway's secret store over the \
                 gateway protocol (secrets.store.set, no restart)"
            ),
            Action::DeliverChannelSecret {
                secret,
                fingerprint,
            } => format!(
                "put the {} {} {fingerprint} into the gateway's secret store over the gateway \
                 protocol (secrets.store.set, the channel restarts in-process, no machine restart)",
                secret.channel().as_str(),
                secret.field()
            ),
            Action::ConfigureChannels { paths } => format!(
                "write the managed channels' config over the gateway protocol (config.patch, \
                 hot-applied, no restart): {}",
                paths.join(", ")
            ),
            Action::RemoveChannel { channel } => format!(
                "remove channel {} (no longer in the spec): its config and its credentials in the \
                 gateway's secret store",
                channel.as_str()
            ),
            Action::PairController { request_id, .. } => format!(
                "pair the controller's device with the gateway (request {request_id}, one-time exec)"
            ),
            Action::ApprovePairing {
                request_id,
                device_name,
                approval_id,
            } => format!(
                "approve {} ({})",
                device_label(device_name, request_id),
                if approval_id.is_some() {
                    "recorded approval"
                } else {
                    "policy auto"
                }
            ),
            Action::ExpireApproval { message, .. } => message.clone(),
            Action::DecideChannelPairing(step) => format!(
                "{} the DM pairing request of {} ({})",
                if step.approve { "approve" } else { "dismiss" },
                step.sender_label(),
                if step.decision_id.is_some() {
                    "recorded decision"
                } else {
                    "DM policy auto"
                }
            ),
        }
    }
}
