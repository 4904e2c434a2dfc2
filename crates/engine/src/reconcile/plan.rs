//! Planning: a pure function from desired and observed state to the next actions.
//!
//! `plan` returns only actions whose dependencies already hold in `observed` (a machine needs a
//! volume, a volume needs the app), so the engine can run them in order, fold their results back
//! into `observed` and plan again. An empty plan with no wait means converged.

use std::time::Duration;

use openclaws_fly::types::{
    CreateMachineRequest, CreateVolumeRequest, Machine, UpdateMachineRequest,
};
use openclaws_model::RunState;

use super::desired::{config_matches, Desired, MACHINE_NAME, VOLUME_NAME};
use super::observe::{AppObservation, Observed};
use super::{machine, volume};

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
        write: super::secrets::SecretWrite,
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
    /// Restarts the machine so its boot step puts owned config fields changed out of band back.
    RestartMachine {
        id: String,
        paths: Vec<String>,
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
            Action::PairController { .. } => "PairController",
            Action::ApprovePairing { .. } => "ApprovePairing",
            Action::ExpireApproval { .. } => "ExpireApproval",
        }
    }

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
            Action::PairController { request_id, .. } => format!(
                "pair the controller's device with the gateway (request {request_id}, one-time exec)"
            ),
            Action::ApprovePairing {
                request_id,
                device_name,
                approval_id,
            } => format!(
                "approve {} ({})",
                super::gateway::device_label(device_name, request_id),
                if approval_id.is_some() {
                    "recorded approval"
                } else {
                    "policy auto"
                }
            ),
            Action::ExpireApproval { message, .. } => message.clone(),
        }
    }

    /// Whether the action talks to the gateway (or only records) rather than to Fly.
    pub fn is_gateway_step(&self) -> bool {
        matches!(
            self,
            Action::PairController { .. }
                | Action::ApprovePairing { .. }
                | Action::ExpireApproval { .. }
        )
    }
}

/// Something in flight that the next visit should look at, and when.
#[derive(Debug, Clone, PartialEq)]
pub struct Wait {
    pub reason: &'static str,
    pub message: String,
    pub after: Duration,
}

/// A problem retrying will not fix for this generation.
#[derive(Debug, Clone, PartialEq)]
pub struct Blocked {
    pub reason: &'static str,
    pub message: String,
}

/// The outcome of planning.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Plan {
    pub actions: Vec<Action>,
    pub wait: Option<Wait>,
    pub blocked: Option<Blocked>,
    /// Teardown is complete: the row can go.
    pub finalize: bool,
    /// The Fly side is converged: look at the gateway itself, then plan again.
    pub look_at_gateway: bool,
}

impl Plan {
    /// Nothing to do and nothing to wait for.
    pub fn is_converged(&self) -> bool {
        self.actions.is_empty()
            && self.wait.is_none()
            && self.blocked.is_none()
            && !self.finalize
            && !self.look_at_gateway
    }

    fn act(actions: Vec<Action>) -> Self {
        Self {
            actions,
            ..Self::default()
        }
    }

    fn wait(reason: &'static str, message: String, after: Duration) -> Self {
        Self {
            wait: Some(Wait {
                reason,
                message,
                after,
            }),
            ..Self::default()
        }
    }
}

/// Plans the next steps for one instance.
pub fn plan(desired: &Desired, observed: &Observed) -> Plan {
    if desired.deleting {
        plan_teardown(desired, observed)
    } else {
        plan_converge(desired, observed)
    }
}

/// The machine side first, then the endpoint (certificate and DNS), so a DNS problem never holds
/// up the gateway itself.
fn plan_converge(desired: &Desired, observed: &Observed) -> Plan {
    let mut plan = plan_machine_side(desired, observed);
    if plan.blocked.is_some() || !matches!(observed.app, AppObservation::Ours(_)) {
        return plan;
    }
    let endpoint = plan_endpoint(desired, observed);
    if !endpoint.is_empty() {
        plan.actions.extend(endpoint);
        return plan;
    }
    if let Some(cert) = observed
        .certificate
        .as_ref()
        .filter(|c| plan.is_converged() && desired.endpoint_wanted && c.status != "active")
    {
        return Plan::wait(
            "CertificatePending",
            format!("certificate for {} is {}", desired.hostname, cert.status),
            certificate_poll(cert, observed.observed_at),
        );
    }
    if plan.is_converged() {
        if let Some(gateway) = plan_gateway(desired, observed) {
            return gateway;
        }
    }
    plan
}

/// How long a freshly started gateway may take to answer before it counts as unreachable
/// (it boots in 10–20 s; a cold image pull takes longer).
pub const GATEWAY_BOOT_GRACE: Duration = Duration::from_secs(180);

/// The gateway side, once the Fly side is converged and the machine runs: look at it, pair the
/// controller's device, put drifted owned config back, and approve pairing requests.
fn plan_gateway(desired: &Desired, observed: &Observed) -> Option<Plan> {
    desired.gateway.as_ref()?;
    if desired.run_state == RunState::Stopped {
        return None;
    }
    let m = observed.machines.iter().find(|m| m.state == "started")?;
    let Some(gw) = &observed.gateway else {
        return Some(Plan {
            look_at_gateway: true,
            ..Plan::default()
        });
    };
    use super::gateway::{ControllerAccess, GatewayHealth, LiveConfig};
    let booting = machine_age(m, observed.observed_at).is_none_or(|age| age < GATEWAY_BOOT_GRACE);
    match &gw.health {
        GatewayHealth::Healthy => {}
        GatewayHealth::Starting(message) => {
            return Some(Plan::wait(
                "GatewayStarting",
                format!("the gateway is starting: {message}"),
                GATEWAY_RECHECK_BOOTING,
            ))
        }
        GatewayHealth::NotReady(message) => {
            return Some(Plan::wait(
                "GatewayNotReady",
                message.clone(),
                GATEWAY_RECHECK_BOOTING,
            ))
        }
        GatewayHealth::ProxyAttributionRequired => {
            return Some(Plan::wait(
                "TrustedProxyMisconfigured",
                "the gateway refuses requests through the proxy (403 proxy_attribution_required): \
                 gateway.trustedProxies does not cover the proxy's source address; set \
                 OPENCLAWS_GATEWAY_TRUSTED_PROXIES"
                    .to_owned(),
                GATEWAY_RECHECK_SETTLED,
            ))
        }
        GatewayHealth::Unreachable(message) if booting => {
            return Some(Plan::wait(
                "GatewayStarting",
                format!("the gateway does not answer yet: {message}"),
                GATEWAY_RECHECK_BOOTING,
            ))
        }
        GatewayHealth::Unreachable(message) => {
            return Some(Plan::wait(
                "GatewayUnreachable",
                format!(
                    "the gateway does not answer through {}: {message}",
                    desired.endpoint
                ),
                GATEWAY_RECHECK_SETTLED,
            ))
        }
    }
    match &gw.access {
        ControllerAccess::Paired => {}
        ControllerAccess::NotPaired { request_id } => {
            return Some(Plan::act(vec![Action::PairController {
                machine_id: m.id.clone(),
                request_id: request_id.clone(),
            }]))
        }
        ControllerAccess::Failed(message) => {
            return Some(Plan::wait(
                "GatewayAccessFailed",
                format!("the controller cannot use the gateway's protocol: {message}"),
                GATEWAY_RECHECK_SETTLED,
            ))
        }
        ControllerAccess::NotTried => return None,
    }
    if let LiveConfig::Drifted(paths) = &gw.config {
        return Some(Plan::act(vec![Action::RestartMachine {
            id: m.id.clone(),
            paths: paths.clone(),
        }]));
    }
    let actions = plan_pairing(desired, observed, gw);
    (!actions.is_empty()).then(|| Plan::act(actions))
}

/// How soon a booting gateway is looked at again.
pub const GATEWAY_RECHECK_BOOTING: Duration = Duration::from_secs(2);
/// How soon a gateway that should be up but is not is looked at again.
pub const GATEWAY_RECHECK_SETTLED: Duration = Duration::from_secs(15);

fn machine_age(m: &Machine, now: Option<chrono::DateTime<chrono::Utc>>) -> Option<Duration> {
    let since = chrono::DateTime::parse_from_rfc3339(&m.updated_at).ok()?;
    (now? - since.with_timezone(&chrono::Utc)).to_std().ok()
}

/// Approvals: every pending request under `auto`; under `manual`, each recorded approval not
/// yet carried out (a named request, or the newest pending one).
fn plan_pairing(
    desired: &Desired,
    observed: &Observed,
    gw: &super::gateway::GatewayObservation,
) -> Vec<Action> {
    use openclaws_model::{PairingOutcome, PairingPolicy};
    match desired.pairing.policy {
        PairingPolicy::Auto => gw
            .pending
            .iter()
            .map(|p| Action::ApprovePairing {
                request_id: p.request_id.clone(),
                approval_id: None,
                device_name: p.display_name.clone(),
            })
            .collect(),
        PairingPolicy::Manual => {
            let done = |key: &str| {
                observed.pairing_history.iter().any(|r| {
                    r.approval_id.as_deref() == Some(key) && r.result != PairingOutcome::Failed
                })
            };
            let mut chosen: Vec<&str> = Vec::new();
            let mut actions = Vec::new();
            for approval in &desired.pairing.approvals {
                let key = approval.key();
                if done(&key) {
                    continue;
                }
                let target = match &approval.request_id {
                    Some(id) => gw.pending.iter().find(|p| &p.request_id == id),
                    None => gw
                        .pending
                        .iter()
                        .filter(|p| !chosen.contains(&p.request_id.as_str()))
                        .max_by_key(|p| p.ts),
                };
                match (target, &approval.request_id) {
                    (Some(p), _) => {
                        chosen.push(&p.request_id);
                        actions.push(Action::ApprovePairing {
                            request_id: p.request_id.clone(),
                            approval_id: Some(key),
                            device_name: p.display_name.clone(),
                        });
                    }
                    (None, Some(id)) => actions.push(Action::ExpireApproval {
                        approval_id: key,
                        request_id: Some(id.clone()),
                        message: format!(
                            "request {id} is not pending: it expired (requests last 5 minutes) or was already handled; ask the device to connect again"
                        ),
                    }),
                    (None, None) => {
                        let waited_out = approval
                            .requested_at
                            .zip(observed.observed_at)
                            .is_none_or(|(asked, now)| {
                                (now - asked).to_std().unwrap_or_default()
                                    >= super::gateway::REQUEST_TTL
                            });
                        if waited_out {
                            actions.push(Action::ExpireApproval {
                                approval_id: key,
                                request_id: None,
                                message: "no pairing request was pending within 5 minutes of the approval".to_owned(),
                            });
                        }
                    }
                }
            }
            actions
        }
    }
}

/// How soon to look at a pending certificate again: often while issuance is expected (seconds
/// after the request), then less often, so a slow validation does not cost a deep look every
/// few seconds.
fn certificate_poll(
    cert: &openclaws_fly::types::CertificateDetail,
    now: Option<chrono::DateTime<chrono::Utc>>,
) -> Duration {
    let age = cert
        .extra
        .get("created_at")
        .and_then(|v| v.as_str())
        .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
        .zip(now)
        .and_then(|(created, now)| (now - created.with_timezone(&chrono::Utc)).to_std().ok());
    match age {
        Some(age) if age < Duration::from_secs(60) => Duration::from_secs(2),
        Some(age) if age < Duration::from_secs(600) => Duration::from_secs(10),
        Some(_) => Duration::from_secs(60),
        None => Duration::from_secs(10),
    }
}

fn plan_machine_side(desired: &Desired, observed: &Observed) -> Plan {
    match &observed.app {
        AppObservation::Foreign { reason } => {
            return Plan {
                blocked: Some(Blocked {
                    reason: "AppNameTaken",
                    message: format!("app {} cannot be used: {reason}", desired.app_name),
                }),
                ..Plan::default()
            }
        }
        AppObservation::Absent => {
            return Plan::act(vec![Action::CreateApp {
                name: desired.app_name.clone(),
                network: desired.network.clone(),
            }])
        }
        AppObservation::Ours(_) => {}
    }

    // Secrets before the machine, so it boots with them (min_secrets_version).
    if !super::secrets::in_sync(&desired.secrets, &observed.secrets) {
        return Plan::act(vec![Action::SetSecrets {
            write: desired.secrets.write_for(&observed.secrets.names),
        }]);
    }
    let ip_actions = plan_ips(desired, observed);
    if !ip_actions.is_empty() {
        return Plan::act(ip_actions);
    }
    if let Some(wait) = host_unreachable(observed) {
        return wait;
    }
    let min_secrets_version = observed
        .secrets
        .applied
        .as_ref()
        .and_then(|(_, v)| u64::try_from(*v).ok());

    let Some(vol) = volume::keeper(&observed.volumes, &observed.machines, &desired.region) else {
        if let Some(other) = observed.volumes.first() {
            return Plan {
                blocked: Some(Blocked {
                    reason: "RegionChangeUnsupported",
                    message: format!(
                        "the data volume {} is in region {}, the spec asks for {}; moving a volume is not supported",
                        other.id, other.region, desired.region
                    ),
                }),
                ..Plan::default()
            };
        }
        return Plan::act(vec![Action::CreateVolume {
            request: CreateVolumeRequest {
                name: VOLUME_NAME.to_owned(),
                region: desired.region.clone(),
                size_gb: desired.volume_size_gb,
                encrypted: Some(true),
                require_unique_zone: Some(false),
                compute: desired.machine.guest.clone(),
                compute_image: Some(desired.machine.image.clone()),
                ..Default::default()
            },
        }]);
    };

    let mut actions = Vec::new();
    if vol.size_gb < desired.volume_size_gb {
        actions.push(Action::ExtendVolume {
            id: vol.id.clone(),
            size_gb: desired.volume_size_gb,
        });
    }

    let keeper = machine::keeper(&observed.machines, &vol.id);
    let mut others_destroying = false;
    for m in &observed.machines {
        if Some(m.id.as_str()) == keeper.map(|k| k.id.as_str()) {
            continue;
        }
        if m.state == "destroying" {
            others_destroying = true;
        } else {
            actions.push(Action::DestroyMachine {
                id: m.id.clone(),
                force: true,
            });
        }
    }

    let desired_config = desired.machine_config(&vol.id);
    let stopped = desired.run_state == RunState::Stopped;
    let Some(m) = keeper else {
        actions.push(Action::CreateMachine {
            request: CreateMachineRequest {
                name: Some(MACHINE_NAME.to_owned()),
                region: Some(desired.region.clone()),
                config: desired_config,
                skip_launch: stopped.then_some(true),
                min_secrets_version,
                ..Default::default()
            },
        });
        return Plan::act(actions);
    };

    let machine_action =
        match machine::stuck_for(m, observed.observed_at, desired.machine_stuck_after) {
            Some(age) => MachineStep::Act(Box::new(Action::RecoverStuckMachine {
                id: m.id.clone(),
                state: m.state.clone(),
                stuck_secs: age.as_secs(),
            })),
            None => machine_step(m, &desired_config, stopped, min_secrets_version),
        };
    match machine_action {
        MachineStep::CrashLooping(message) => {
            if actions.is_empty() {
                return Plan::wait("CrashLooping", message, CRASH_LOOP_RECHECK);
            }
        }
        MachineStep::Wait(state) => {
            if actions.is_empty() {
                return Plan::wait(
                    "MachineSettling",
                    format!("machine {} is {state}", m.id),
                    machine::settle_time(&state),
                );
            }
        }
        MachineStep::Act(a) => actions.push(*a),
        MachineStep::Converged => {
            for extra in volume::extras(&observed.volumes, vol) {
                actions.push(Action::DeleteVolume {
                    id: extra.id.clone(),
                });
            }
        }
    }
    if actions.is_empty() && others_destroying {
        return Plan::wait(
            "MachineDestroying",
            "waiting for a duplicate machine to be destroyed".to_owned(),
            machine::settle_time("destroying"),
        );
    }
    Plan::act(actions)
}

/// While the host of one of our machines is unreachable Fly answers from a cache without the
/// machine's config: nothing may be decided from that (it would look like a machine to replace),
/// and every change to it would fail, so wait for the host.
fn host_unreachable(observed: &Observed) -> Option<Plan> {
    let m = observed.machines.iter().find(|m| m.host_unreachable())?;
    Some(Plan::wait(
        "HostUnreachable",
        format!(
            "the host of machine {} is unreachable; nothing is changed until Fly reaches it again",
            m.id
        ),
        HOST_UNREACHABLE_RECHECK,
    ))
}

/// How often an unreachable host is looked at again.
pub const HOST_UNREACHABLE_RECHECK: Duration = Duration::from_secs(10);

/// How often a crash-looping machine is looked at again.
pub const CRASH_LOOP_RECHECK: Duration = Duration::from_secs(5);

/// The CNAME target the hostname should have: what Fly's certificate asks for, else the app.
pub fn dns_target(desired: &Desired, observed: &Observed) -> String {
    observed
        .certificate
        .as_ref()
        .and_then(|c| c.dns_requirements.as_ref())
        .and_then(|r| r.cname.clone())
        .unwrap_or_else(|| format!("{}.fly.dev", desired.app_name))
}

/// Our DNS record for the hostname (carrying our comment), if any.
pub fn our_record<'a>(
    desired: &Desired,
    observed: &'a Observed,
) -> Option<&'a openclaws_dns::DnsRecord> {
    let mark = openclaws_dns::ownership_comment(&desired.uid.to_string());
    observed
        .dns_records
        .iter()
        .find(|r| r.comment.as_deref() == Some(mark.as_str()))
}

/// A certificate and a CNAME for a public hostname; neither for a private one. Records for the
/// name without our mark are never changed (status reports them).
fn plan_endpoint(desired: &Desired, observed: &Observed) -> Vec<Action> {
    let mut actions = Vec::new();
    let ours = our_record(desired, observed);
    if desired.endpoint_wanted {
        if observed.certificate.is_none() {
            actions.push(Action::AddCertificate {
                hostname: desired.hostname.clone(),
            });
        }
        let record = openclaws_dns::DnsRecord {
            id: String::new(),
            type_: "CNAME".to_owned(),
            name: desired.hostname.clone(),
            content: dns_target(desired, observed),
            comment: Some(openclaws_dns::ownership_comment(&desired.uid.to_string())),
        };
        match ours {
            None if observed.dns_records.is_empty() => {
                actions.push(Action::CreateDnsRecord { record })
            }
            Some(r) if r.type_ != record.type_ || r.content != record.content => {
                actions.push(Action::UpdateDnsRecord {
                    id: r.id.clone(),
                    record,
                })
            }
            _ => {}
        }
    } else {
        if let Some(r) = ours {
            actions.push(Action::DeleteDnsRecord {
                id: r.id.clone(),
                name: r.name.clone(),
            });
        }
        if observed.certificate.is_some() {
            actions.push(Action::DeleteCertificate {
                hostname: desired.hostname.clone(),
            });
        }
    }
    actions
}

/// One address of each wanted public type; duplicates (a lost allocation answer) and unwanted
/// public types are released. Dedicated IPv4 and private addresses are left alone.
fn plan_ips(desired: &Desired, observed: &Observed) -> Vec<Action> {
    let mut actions = Vec::new();
    for kind in ["v6", "shared_v4"] {
        let held: Vec<&String> = observed
            .ips
            .iter()
            .filter(|(k, _)| k == kind)
            .map(|(_, ip)| ip)
            .collect();
        let wanted = desired.public_ips.contains(&kind);
        if wanted && held.is_empty() {
            actions.push(Action::AssignIp {
                kind: kind.to_owned(),
            });
        }
        let keep = usize::from(wanted);
        actions.extend(
            held.iter()
                .skip(keep)
                .map(|ip| Action::ReleaseIp { ip: (*ip).clone() }),
        );
    }
    actions
}

enum MachineStep {
    Wait(String),
    CrashLooping(String),
    Act(Box<Action>),
    Converged,
}

fn machine_step(
    m: &Machine,
    desired_config: &openclaws_fly::types::MachineConfig,
    stopped: bool,
    min_secrets_version: Option<u64>,
) -> MachineStep {
    // A crash-looping machine is always between restarts: it is still updated (a new image or
    // config is how it gets fixed), but otherwise only reported.
    let crash = machine::crash_loop(m);
    if m.is_transient() && crash.is_none() {
        return MachineStep::Wait(m.state.clone());
    }
    let Some(config) = &m.config else {
        // Host unreachable: Fly answers from cache without a config; never rebuild from that.
        return MachineStep::Wait("unreachable".to_owned());
    };
    if !config_matches(config, desired_config) {
        return MachineStep::Act(Box::new(Action::UpdateMachine {
            id: m.id.clone(),
            request: UpdateMachineRequest {
                config: desired_config.clone(),
                current_version: Some(m.instance_id.clone()).filter(|v| !v.is_empty()),
                skip_launch: stopped.then_some(true),
                min_secrets_version,
                ..Default::default()
            },
        }));
    }
    if let Some(crash) = crash {
        return MachineStep::CrashLooping(machine::describe_crash_loop(&m.id, &crash));
    }
    match (stopped, m.state.as_str()) {
        (false, "stopped" | "suspended" | "failed") => {
            MachineStep::Act(Box::new(Action::StartMachine { id: m.id.clone() }))
        }
        (true, "started") => MachineStep::Act(Box::new(Action::StopMachine { id: m.id.clone() })),
        _ => MachineStep::Converged,
    }
}

fn plan_teardown(desired: &Desired, observed: &Observed) -> Plan {
    if !matches!(observed.app, AppObservation::Ours(_)) {
        // The app is gone (or the name is someone else's, which we never touch); only our DNS
        // record may be left, e.g. when the app was deleted out of band.
        if let Some(r) = our_record(desired, observed) {
            return Plan::act(vec![Action::DeleteDnsRecord {
                id: r.id.clone(),
                name: r.name.clone(),
            }]);
        }
        return Plan {
            finalize: true,
            ..Plan::default()
        };
    }
    if !observed.machines.is_empty() {
        if let Some(wait) = host_unreachable(observed) {
            return wait;
        }
        let actions: Vec<Action> = observed
            .machines
            .iter()
            .filter_map(|m| {
                match machine::stuck_for(m, observed.observed_at, desired.machine_stuck_after) {
                    Some(age) => Some(Action::RecoverStuckMachine {
                        id: m.id.clone(),
                        state: m.state.clone(),
                        stuck_secs: age.as_secs(),
                    }),
                    None => (m.state != "destroying").then(|| Action::DestroyMachine {
                        id: m.id.clone(),
                        force: true,
                    }),
                }
            })
            .collect();
        if actions.is_empty() {
            return Plan::wait(
                "MachineDestroying",
                "waiting for the machine to be destroyed".to_owned(),
                machine::settle_time("destroying"),
            );
        }
        return Plan::act(actions);
    }
    let mut endpoint = Vec::new();
    if let Some(r) = our_record(desired, observed) {
        endpoint.push(Action::DeleteDnsRecord {
            id: r.id.clone(),
            name: r.name.clone(),
        });
    }
    if observed.certificate.is_some() {
        endpoint.push(Action::DeleteCertificate {
            hostname: desired.hostname.clone(),
        });
    }
    if !observed.volumes.is_empty() {
        return Plan::act(
            observed
                .volumes
                .iter()
                .map(|v| Action::DeleteVolume { id: v.id.clone() })
                .collect(),
        );
    }
    if !endpoint.is_empty() {
        return Plan::act(endpoint);
    }
    if observed.app_deletion_requested {
        return Plan::wait(
            "AppDeleting",
            format!("waiting for app {} to be deleted", desired.app_name),
            Duration::from_secs(2),
        );
    }
    Plan::act(vec![Action::DeleteApp {
        name: desired.app_name.clone(),
    }])
}

#[cfg(test)]
mod tests {
    //! The planner against a tiny in-memory model of Fly: from any starting world, repeatedly
    //! planning and applying must converge, and must never take a forbidden step.

    use super::*;
    use crate::reconcile::desired::{FleetSettings, META_INSTANCE_UID};
    use openclaws_fly::types::{App, Volume};
    use openclaws_model::InstanceSpec;
    use proptest::prelude::*;
    use uuid::Uuid;

    #[test]
    fn a_pending_certificate_is_polled_often_at_first_then_less() {
        let now: chrono::DateTime<chrono::Utc> = "2026-11-22T12:00:00Z".parse().unwrap();
        let cert = |created: &str| {
            let mut c = openclaws_fly::types::CertificateDetail::default();
            c.extra.insert("created_at".into(), created.into());
            c
        };
        let poll = |created: &str| certificate_poll(&cert(created), Some(now));
        assert_eq!(poll("2026-11-22T11:59:55Z"), Duration::from_secs(2));
        assert_eq!(poll("2026-11-22T11:55:00Z"), Duration::from_secs(10));
        assert_eq!(poll("2026-11-22T10:00:00Z"), Duration::from_secs(60));
        assert_eq!(poll("not a time"), Duration::from_secs(10));
    }

    fn desired(run_state: RunState, deleting: bool, memory_mb: u32) -> Desired {
        let mut spec: InstanceSpec =
            serde_json::from_value(serde_json::json!({"customerId": "c", "region": "iad"}))
                .unwrap();
        spec.run_state = run_state;
        spec.guest.memory_mb = memory_mb;
        Desired::from_spec(
            Uuid::from_u128(7),
            "acme",
            3,
            &spec,
            deleting,
            &FleetSettings {
                app_prefix: "oc-".into(),
                base_domain: "openclaws.biz".into(),
                machine_stuck_after: std::time::Duration::from_secs(300),
                manage_dns: false,
                gateway: crate::reconcile::desired::GatewayPlacement::without_checks(),
            },
        )
    }

    fn with_token(d: Desired) -> Desired {
        let secrets = crate::reconcile::secrets::DesiredSecrets::new(
            [("OPENCLAW_GATEWAY_TOKEN".to_owned(), "token".to_owned())].into(),
            &openclaws_model::secrets::SecretCipher::from_key([1; 32]),
        );
        d.with_secrets(secrets)
    }

    /// Our app with its public addresses.
    fn ours(d: &Desired) -> Observed {
        Observed {
            app: app(d),
            ips: vec![
                ("v6".into(), "2a09::1".into()),
                ("shared_v4".into(), "1.2.3.4".into()),
            ],
            ..Observed::empty()
        }
    }

    fn app(d: &Desired) -> AppObservation {
        AppObservation::Ours(App {
            name: d.app_name.clone(),
            network: Some(d.network.clone()),
            ..Default::default()
        })
    }

    fn volume(id: &str, region: &str, attached: Option<&str>, created: &str) -> Volume {
        Volume {
            id: id.into(),
            name: VOLUME_NAME.into(),
            state: "created".into(),
            size_gb: 1,
            region: region.into(),
            attached_machine_id: attached.map(String::from),
            created_at: created.into(),
            ..Default::default()
        }
    }

    fn machine(d: &Desired, id: &str, volume: &str, state: &str, drifted: bool) -> Machine {
        let mut config = d.machine_config(volume);
        if drifted {
            config.image = "someone/else:latest".into();
        }
        Machine {
            id: id.into(),
            name: MACHINE_NAME.into(),
            state: state.into(),
            region: "iad".into(),
            instance_id: format!("v-{id}"),
            created_at: format!("2026-01-01T00:00:0{}Z", id.len() % 10),
            config: Some(config),
            ..Default::default()
        }
    }

    /// Applies an action the way Fly would, with transient states settled at once.
    fn apply(world: &mut Observed, d: &Desired, action: &Action, next_id: &mut u32) {
        *next_id += 1;
        let id = format!("n{next_id}");
        match action {
            Action::RestartMachine { .. }
            | Action::PairController { .. }
            | Action::ApprovePairing { .. }
            | Action::ExpireApproval { .. } => {
                unreachable!("these worlds have no gateway checks: {action:?}")
            }
            Action::CreateApp { .. } => world.app = app(d),
            Action::AssignIp { kind } => world.ips.push((kind.clone(), id.clone())),
            Action::AddCertificate { hostname } => {
                world.certificate = Some(openclaws_fly::types::CertificateDetail {
                    hostname: hostname.clone(),
                    status: "active".into(),
                    ..Default::default()
                })
            }
            Action::DeleteCertificate { .. } => world.certificate = None,
            Action::CreateDnsRecord { record } => {
                world.dns_records.push(openclaws_dns::DnsRecord {
                    id: id.clone(),
                    ..record.clone()
                })
            }
            Action::UpdateDnsRecord { id, record } => world
                .dns_records
                .iter_mut()
                .filter(|r| &r.id == id)
                .for_each(|r| r.content = record.content.clone()),
            Action::DeleteDnsRecord { id, .. } => world.dns_records.retain(|r| &r.id != id),
            Action::ReleaseIp { ip } => world.ips.retain(|(_, i)| i != ip),
            Action::SetSecrets { write } => {
                for (k, v) in &write.values {
                    if v.is_some() {
                        world.secrets.names.insert(k.clone());
                    } else {
                        world.secrets.names.remove(k);
                    }
                }
                world.secrets.applied = Some((write.fingerprint.clone(), *next_id as i64));
            }
            Action::CreateVolume { request } => world.volumes.push(Volume {
                size_gb: request.size_gb,
                ..volume(&format!("vol_{id}"), &request.region, None, "2026-02-01")
            }),
            Action::ExtendVolume { id, size_gb } => world
                .volumes
                .iter_mut()
                .filter(|v| &v.id == id)
                .for_each(|v| v.size_gb = *size_gb),
            Action::CreateMachine { request } => {
                let vol = request.config.mounts[0].volume.clone();
                assert!(
                    world.volumes.iter().any(|v| v.id == vol),
                    "machine on a missing volume"
                );
                let state = if request.skip_launch == Some(true) {
                    "stopped"
                } else {
                    "started"
                };
                let mut m = machine(d, &id, &vol, state, false);
                m.config = Some(request.config.clone());
                world
                    .volumes
                    .iter_mut()
                    .filter(|v| v.id == vol)
                    .for_each(|v| v.attached_machine_id = Some(id.clone()));
                world.machines.push(m);
            }
            Action::UpdateMachine { id, request } => {
                for m in world.machines.iter_mut().filter(|m| &m.id == id) {
                    m.config = Some(request.config.clone());
                    m.state = if request.skip_launch == Some(true) {
                        "stopped"
                    } else {
                        "started"
                    }
                    .into();
                }
            }
            Action::StartMachine { id } => world
                .machines
                .iter_mut()
                .filter(|m| &m.id == id)
                .for_each(|m| m.state = "started".into()),
            Action::StopMachine { id } => world
                .machines
                .iter_mut()
                .filter(|m| &m.id == id)
                .for_each(|m| m.state = "stopped".into()),
            Action::DestroyMachine { id, .. } | Action::RecoverStuckMachine { id, .. } => {
                world.machines.retain(|m| &m.id != id);
                world
                    .volumes
                    .iter_mut()
                    .filter(|v| v.attached_machine_id.as_ref() == Some(id))
                    .for_each(|v| v.attached_machine_id = None);
            }
            Action::DeleteVolume { id } => {
                let v = world
                    .volumes
                    .iter()
                    .find(|v| &v.id == id)
                    .expect("deleting a volume that exists");
                assert!(
                    v.attached_machine_id.is_none() || d.deleting,
                    "deleted an attached volume outside teardown"
                );
                world.volumes.retain(|v| &v.id != id);
            }
            Action::DeleteApp { .. } => {
                assert!(
                    world.machines.is_empty() && world.volumes.is_empty(),
                    "app deleted before its contents"
                );
                *world = Observed::empty();
            }
        }
    }

    /// Settles transient machine states, as time passing would.
    fn settle(world: &mut Observed) {
        for m in &mut world.machines {
            m.state = match m.state.as_str() {
                "created" | "starting" | "replacing" => "started",
                "stopping" => "stopped",
                other => other,
            }
            .into();
        }
        let gone: Vec<String> = world
            .machines
            .iter()
            .filter(|m| m.state == "destroying")
            .map(|m| m.id.clone())
            .collect();
        world.machines.retain(|m| m.state != "destroying");
        for v in &mut world.volumes {
            if v.attached_machine_id
                .as_ref()
                .is_some_and(|id| gone.contains(id))
            {
                v.attached_machine_id = None;
            }
        }
    }

    fn arb_world() -> impl Strategy<Value = (RunState, bool, u32, Observed)> {
        let states = prop::sample::select(vec![
            "started",
            "stopped",
            "created",
            "starting",
            "stopping",
            "replacing",
            "failed",
            "suspended",
            "destroying",
        ]);
        (
            prop::bool::ANY,
            prop::bool::ANY,
            prop::sample::select(vec![1024u32, 2048, 4096]),
            0..3usize,
            0..3usize,
            prop::collection::vec((0..3usize, states, prop::bool::ANY), 0..3),
        )
            .prop_map(
                |(stopped, deleting, memory, app_kind, volume_count, machines)| {
                    let run_state = if stopped {
                        RunState::Stopped
                    } else {
                        RunState::Running
                    };
                    let d = desired(run_state, deleting, memory);
                    let mut world = Observed::empty();
                    if app_kind > 0 {
                        world.app = app(&d);
                        for i in 0..volume_count {
                            world.volumes.push(volume(
                                &format!("vol_{i}"),
                                "iad",
                                None,
                                &format!("2026-01-0{i}"),
                            ));
                        }
                        for (i, (vol, state, drifted)) in machines.iter().enumerate() {
                            let vol_id = if world.volumes.is_empty() {
                                "vol_gone".to_owned()
                            } else {
                                world.volumes[vol % world.volumes.len()].id.clone()
                            };
                            let id = format!("m{i}");
                            if let Some(v) = world
                                .volumes
                                .iter_mut()
                                .find(|v| v.id == vol_id && v.attached_machine_id.is_none())
                            {
                                v.attached_machine_id = Some(id.clone());
                            }
                            world
                                .machines
                                .push(machine(&d, &id, &vol_id, state, *drifted));
                        }
                    }
                    (run_state, deleting, memory, world)
                },
            )
    }

    proptest! {
        #[test]
        fn converges_from_any_world((run_state, deleting, memory, world) in arb_world(), secrets in prop::bool::ANY) {
            let d = desired(run_state, deleting, memory);
            let d = if secrets { with_token(d) } else { d };
            let mut world = world;
            let mut next_id = 0;
            let mut converged = false;
            for _ in 0..30 {
                let p = plan(&d, &world);
                if p.finalize {
                    prop_assert!(deleting);
                    prop_assert!(p.actions.is_empty());
                    converged = true;
                    break;
                }
                if p.is_converged() {
                    prop_assert!(!deleting);
                    converged = true;
                    break;
                }
                prop_assert!(p.blocked.is_none(), "blocked: {:?}", p.blocked);
                for a in &p.actions {
                    apply(&mut world, &d, a, &mut next_id);
                }
                settle(&mut world);
            }
            prop_assert!(converged, "did not converge: {world:?}");
            if !deleting {
                prop_assert_eq!(world.machines.len(), 1);
                let m = &world.machines[0];
                let vol = &m.config.as_ref().unwrap().mounts[0].volume;
                prop_assert!(world.volumes.iter().any(|v| &v.id == vol));
                prop_assert_eq!(world.volumes.len(), 1, "extra volumes left: {:?}", world.volumes);
                prop_assert!(config_matches(m.config.as_ref().unwrap(), &d.machine_config(vol)));
                if run_state == RunState::Stopped {
                    prop_assert!(["stopped", "suspended", "failed"].contains(&m.state.as_str()), "{}", m.state);
                } else {
                    prop_assert_eq!(m.state.as_str(), "started");
                }
                prop_assert_eq!(m.metadata().unwrap().get(META_INSTANCE_UID), Some(&d.uid.to_string()));
                prop_assert!(crate::reconcile::secrets::in_sync(&d.secrets, &world.secrets));
                let mut kinds: Vec<&str> = world.ips.iter().map(|(k, _)| k.as_str()).collect();
                kinds.sort();
                prop_assert_eq!(kinds, ["shared_v4", "v6"]);
            }
        }
    }

    #[test]
    fn fresh_instance_creates_app_then_volume_then_machine() {
        let d = desired(RunState::Running, false, 2048);
        let mut world = Observed::empty();
        let mut steps = Vec::new();
        let mut n = 0;
        for _ in 0..5 {
            let p = plan(&d, &world);
            if p.is_converged() {
                break;
            }
            for a in &p.actions {
                steps.push(a.step());
                apply(&mut world, &d, a, &mut n);
            }
        }
        assert_eq!(
            steps,
            [
                "CreateApp",
                "AssignIp",
                "AssignIp",
                "CreateVolume",
                "CreateMachine"
            ]
        );
    }

    #[test]
    fn secrets_are_set_before_the_machine_which_waits_for_their_version() {
        let d = with_token(desired(RunState::Running, false, 2048));
        let mut world = Observed::empty();
        let mut n = 0;
        let mut created = None;
        let mut steps = Vec::new();
        for _ in 0..6 {
            let p = plan(&d, &world);
            if p.is_converged() {
                break;
            }
            for a in &p.actions {
                steps.push(a.step());
                if let Action::CreateMachine { request } = a {
                    created = Some(request.clone());
                }
                apply(&mut world, &d, a, &mut n);
            }
        }
        assert_eq!(
            steps,
            [
                "CreateApp",
                "SetSecrets",
                "AssignIp",
                "AssignIp",
                "CreateVolume",
                "CreateMachine"
            ]
        );
        let applied = world.secrets.applied.clone().unwrap().1 as u64;
        assert_eq!(created.unwrap().min_secrets_version, Some(applied));
        // A new value rolls the machine onto it.
        let rotated = desired(RunState::Running, false, 2048).with_secrets(
            crate::reconcile::secrets::DesiredSecrets::new(
                [("OPENCLAW_GATEWAY_TOKEN".to_owned(), "rotated".to_owned())].into(),
                &openclaws_model::secrets::SecretCipher::from_key([1; 32]),
            ),
        );
        let p = plan(&rotated, &world);
        assert_eq!(
            p.actions.iter().map(Action::step).collect::<Vec<_>>(),
            ["SetSecrets"]
        );
        apply(&mut world, &rotated, &p.actions[0], &mut n);
        let p = plan(&rotated, &world);
        assert_eq!(
            p.actions.iter().map(Action::step).collect::<Vec<_>>(),
            ["UpdateMachine"]
        );
    }

    #[test]
    fn foreign_app_is_never_touched() {
        for deleting in [false, true] {
            let d = desired(RunState::Running, deleting, 2048);
            let world = Observed {
                app: AppObservation::Foreign {
                    reason: "other org".into(),
                },
                ..Observed::empty()
            };
            let p = plan(&d, &world);
            assert!(p.actions.is_empty());
            assert_eq!(p.blocked.is_some(), !deleting);
            assert_eq!(p.finalize, deleting);
        }
    }

    #[test]
    fn settling_machine_means_wait_not_action() {
        let d = desired(RunState::Running, false, 2048);
        let mut world = ours(&d);
        world
            .volumes
            .push(volume("vol_a", "iad", Some("m1"), "2026"));
        world
            .machines
            .push(machine(&d, "m1", "vol_a", "starting", false));
        let p = plan(&d, &world);
        assert!(p.actions.is_empty());
        assert_eq!(p.wait.as_ref().map(|w| w.reason), Some("MachineSettling"));
    }

    #[test]
    fn destroyed_machine_is_recreated_on_the_same_volume() {
        let d = desired(RunState::Running, false, 2048);
        let mut world = ours(&d);
        world.volumes.push(volume("vol_a", "iad", None, "2026"));
        let p = plan(&d, &world);
        match p.actions.as_slice() {
            [Action::CreateMachine { request }] => {
                assert_eq!(request.config.mounts[0].volume, "vol_a")
            }
            other => panic!("unexpected plan {other:?}"),
        }
    }

    #[test]
    fn volume_in_another_region_blocks_instead_of_moving_data() {
        let d = desired(RunState::Running, false, 2048);
        let mut world = ours(&d);
        world.volumes.push(volume("vol_a", "ams", None, "2026"));
        let p = plan(&d, &world);
        assert!(p.actions.is_empty());
        assert_eq!(p.blocked.map(|b| b.reason), Some("RegionChangeUnsupported"));
    }

    #[test]
    fn teardown_order_is_machine_volume_app() {
        let d = desired(RunState::Running, true, 2048);
        let mut world = ours(&d);
        world
            .volumes
            .push(volume("vol_a", "iad", Some("m1"), "2026"));
        world
            .machines
            .push(machine(&d, "m1", "vol_a", "started", false));
        let mut steps = Vec::new();
        let mut n = 0;
        for _ in 0..6 {
            let p = plan(&d, &world);
            if p.finalize {
                break;
            }
            for a in &p.actions {
                steps.push(a.step());
                apply(&mut world, &d, a, &mut n);
            }
        }
        assert_eq!(steps, ["DestroyMachine", "DeleteVolume", "DeleteApp"]);
    }

    /// A machine as Fly shows it while its host is unreachable: no config, metadata only in
    /// `incomplete_config`.
    fn unreachable(d: &Desired, id: &str) -> Machine {
        let mut m = machine(d, id, "vol_a", "started", false);
        let config = m.config.take().unwrap();
        m.incomplete_config = Some(serde_json::json!({"metadata": config.metadata}));
        m.host_status = Some("unreachable".into());
        m
    }

    #[test]
    fn an_unreachable_host_is_waited_for_never_replaced() {
        for deleting in [false, true] {
            let d = with_token(desired(RunState::Running, deleting, 4096));
            let mut world = ours(&d);
            world
                .volumes
                .push(volume("vol_a", "iad", Some("m1"), "2026"));
            world.machines.push(unreachable(&d, "m1"));
            world.secrets.names = d.secrets.names().into_iter().map(String::from).collect();
            world.secrets.applied = Some((d.secrets.fingerprint().to_owned(), 1));
            let p = plan(&d, &world);
            assert!(p.actions.is_empty(), "deleting={deleting}: {p:?}");
            assert_eq!(p.wait.map(|w| w.reason), Some("HostUnreachable"));
        }
    }

    #[test]
    fn a_crash_loop_is_reported_but_a_new_config_still_applied() {
        let exit = openclaws_fly::types::MachineEvent {
            id: None,
            type_: "exit".into(),
            status: "stopped".into(),
            source: "flyd".into(),
            timestamp: 0,
            request: Some(serde_json::json!({"exit_event": {"exit_code": 1}})),
        };
        let d = desired(RunState::Running, false, 2048);
        let mut world = ours(&d);
        world
            .volumes
            .push(volume("vol_a", "iad", Some("m1"), "2026"));
        let mut m = machine(&d, "m1", "vol_a", "starting", false);
        m.events = vec![exit.clone(), exit];
        world.machines.push(m);
        let p = plan(&d, &world);
        assert!(p.actions.is_empty());
        assert_eq!(p.wait.map(|w| w.reason), Some("CrashLooping"));
        let grown = desired(RunState::Running, false, 4096);
        let p = plan(&grown, &world);
        assert!(
            matches!(p.actions.as_slice(), [Action::UpdateMachine { .. }]),
            "{p:?}"
        );
    }

    #[test]
    fn teardown_without_the_app_still_removes_our_dns_record() {
        let d = desired(RunState::Running, true, 2048);
        let mark = openclaws_dns::ownership_comment(&d.uid.to_string());
        let mut world = Observed::empty();
        world.dns_records.push(openclaws_dns::DnsRecord {
            id: "r1".into(),
            type_: "CNAME".into(),
            name: d.hostname.clone(),
            content: format!("{}.fly.dev", d.app_name),
            comment: Some(mark),
        });
        let p = plan(&d, &world);
        assert!(
            matches!(p.actions.as_slice(), [Action::DeleteDnsRecord { id, .. }] if id == "r1"),
            "{p:?}"
        );
        world.dns_records[0].comment = None;
        assert!(plan(&d, &world).finalize, "someone else's record stays");
    }

    /// A converged instance whose gateway the controller looks at, with `look` as what it saw.
    fn gateway_world(
        policy: openclaws_model::PairingPolicy,
        look: Option<super::super::gateway::GatewayObservation>,
    ) -> (Desired, Observed) {
        let mut d = desired(RunState::Running, false, 2048);
        d.gateway = Some(super::super::desired::GatewayTarget {
            base: "https://acme.openclaws.biz".into(),
            host: None,
        });
        d.pairing.policy = policy;
        let mut world = ours(&d);
        world
            .volumes
            .push(volume("vol_a", "iad", Some("m1"), "2026"));
        world
            .machines
            .push(machine(&d, "m1", "vol_a", "started", false));
        world.observed_at = Some(chrono::Utc::now());
        world.gateway = look;
        (d, world)
    }

    fn look(
        health: super::super::gateway::GatewayHealth,
        access: super::super::gateway::ControllerAccess,
        pending: &[(&str, i64)],
    ) -> Option<super::super::gateway::GatewayObservation> {
        Some(super::super::gateway::GatewayObservation {
            health,
            access,
            pending: pending
                .iter()
                .map(|(id, ts)| openclaws_gateway::protocol::PendingRequest {
                    request_id: (*id).into(),
                    device_id: format!("dev-{id}"),
                    display_name: Some(format!("phone {id}")),
                    platform: None,
                    client_id: None,
                    client_mode: None,
                    role: Some("operator".into()),
                    roles: vec![],
                    scopes: vec![],
                    remote_ip: None,
                    is_repair: false,
                    ts: *ts,
                })
                .collect(),
            config: super::super::gateway::LiveConfig::Matches,
            at: chrono::Utc::now(),
        })
    }

    #[test]
    fn the_gateway_is_looked_at_once_the_fly_side_is_converged() {
        use super::super::gateway::{ControllerAccess as A, GatewayHealth as H};
        use openclaws_model::PairingPolicy::Auto;
        let (d, world) = gateway_world(Auto, None);
        let p = plan(&d, &world);
        assert!(p.look_at_gateway && p.actions.is_empty() && !p.is_converged());
        // Without gateway checks there is nothing to look at.
        let mut off = d.clone();
        off.gateway = None;
        assert!(plan(&off, &world).is_converged());
        // What the look found decides.
        let cases = [
            (
                H::Starting("starting".into()),
                A::NotTried,
                Some("GatewayStarting"),
            ),
            (
                H::NotReady("x".into()),
                A::NotTried,
                Some("GatewayNotReady"),
            ),
            (
                H::ProxyAttributionRequired,
                A::NotTried,
                Some("TrustedProxyMisconfigured"),
            ),
            (
                H::Unreachable("refused".into()),
                A::NotTried,
                Some("GatewayStarting"),
            ),
            (
                H::Healthy,
                A::Failed("401".into()),
                Some("GatewayAccessFailed"),
            ),
            (H::Healthy, A::Paired, None),
        ];
        for (health, access, wait) in cases {
            let (d, world) = gateway_world(Auto, look(health.clone(), access, &[]));
            let p = plan(&d, &world);
            assert_eq!(p.wait.as_ref().map(|w| w.reason), wait, "{health:?}");
            assert!(p.actions.is_empty());
            assert_eq!(p.is_converged(), wait.is_none());
        }
        // A gateway silent long after its machine started is unreachable, not starting.
        let (d, mut world) = gateway_world(
            Auto,
            look(H::Unreachable("refused".into()), A::NotTried, &[]),
        );
        world.machines[0].updated_at = "2020-01-01T00:00:00Z".into();
        assert_eq!(
            plan(&d, &world).wait.map(|w| w.reason),
            Some("GatewayUnreachable")
        );
    }

    #[test]
    fn the_controller_pairs_itself_then_repairs_owned_config_by_restart() {
        use super::super::gateway::{ControllerAccess as A, GatewayHealth as H, LiveConfig};
        use openclaws_model::PairingPolicy::Auto;
        let (d, world) = gateway_world(
            Auto,
            look(
                H::Healthy,
                A::NotPaired {
                    request_id: "r0".into(),
                },
                &[],
            ),
        );
        assert_eq!(
            plan(&d, &world).actions,
            vec![Action::PairController {
                machine_id: "m1".into(),
                request_id: "r0".into()
            }]
        );
        let (d, mut world) = gateway_world(Auto, look(H::Healthy, A::Paired, &[("r1", 1)]));
        world.gateway.as_mut().unwrap().config = LiveConfig::Drifted(vec!["gateway.bind".into()]);
        assert_eq!(
            plan(&d, &world).actions,
            vec![Action::RestartMachine {
                id: "m1".into(),
                paths: vec!["gateway.bind".into()]
            }]
        );
        // An invalid file is the customer's to fix: no restart loop.
        world.gateway.as_mut().unwrap().config = LiveConfig::Invalid("bad".into());
        assert!(!plan(&d, &world)
            .actions
            .iter()
            .any(|a| matches!(a, Action::RestartMachine { .. })));
    }

    #[test]
    fn auto_approves_every_pending_request() {
        use super::super::gateway::{ControllerAccess as A, GatewayHealth as H};
        let (d, world) = gateway_world(
            openclaws_model::PairingPolicy::Auto,
            look(H::Healthy, A::Paired, &[("r1", 1), ("r2", 2)]),
        );
        let approved: Vec<String> = plan(&d, &world)
            .actions
            .iter()
            .map(|a| match a {
                Action::ApprovePairing {
                    request_id,
                    approval_id: None,
                    ..
                } => request_id.clone(),
                other => panic!("unexpected {other:?}"),
            })
            .collect();
        assert_eq!(approved, ["r1", "r2"]);
    }

    #[test]
    fn manual_approves_only_what_was_recorded_and_each_once() {
        use super::super::gateway::{ControllerAccess as A, GatewayHealth as H};
        use openclaws_model::{PairingApproval, PairingOutcome, PairingResult};
        let now = chrono::Utc::now();
        let approval = |id: &str, request: Option<&str>, asked_secs_ago: i64| PairingApproval {
            id: Some(id.into()),
            requested_at: Some(now - chrono::Duration::seconds(asked_secs_ago)),
            request_id: request.map(String::from),
            latest: request.is_none().then_some(true),
        };
        let (mut d, mut world) = gateway_world(
            openclaws_model::PairingPolicy::Manual,
            look(H::Healthy, A::Paired, &[("r1", 1), ("r2", 2), ("r3", 3)]),
        );
        // Nothing recorded: nothing approved.
        assert!(plan(&d, &world).is_converged());
        d.pairing.approvals = vec![
            approval("a1", Some("r1"), 10),
            approval("a2", None, 10),
            approval("a3", Some("gone"), 10),
            approval("a4", None, 10),
            approval("done", Some("r2"), 10),
        ];
        world.pairing_history = vec![PairingResult {
            approval_id: Some("done".into()),
            request_id: Some("r2".into()),
            device_name: None,
            result: PairingOutcome::Approved,
            message: String::new(),
            at: now,
        }];
        let actions = plan(&d, &world).actions;
        let summary: Vec<(String, String)> = actions
            .iter()
            .map(|a| match a {
                Action::ApprovePairing {
                    request_id,
                    approval_id: Some(key),
                    ..
                } => (key.clone(), request_id.clone()),
                Action::ExpireApproval { approval_id, .. } => {
                    (approval_id.clone(), "expired".into())
                }
                other => panic!("unexpected {other:?}"),
            })
            .collect();
        // a1 names r1; a2 takes the newest (r3); a3's request is not pending; a4 takes the next
        // newest (r2, pending again); "done" was carried out before.
        assert_eq!(
            summary,
            [
                ("a1".to_string(), "r1".to_string()),
                ("a2".into(), "r3".into()),
                ("a3".into(), "expired".into()),
                ("a4".into(), "r2".into()),
            ]
        );
        // `latest` with nothing pending waits for a request up to 5 minutes, then gives up.
        let (mut d, world) = gateway_world(
            openclaws_model::PairingPolicy::Manual,
            look(H::Healthy, A::Paired, &[]),
        );
        d.pairing.approvals = vec![approval("fresh", None, 10)];
        assert!(plan(&d, &world).actions.is_empty());
        d.pairing.approvals = vec![approval("stale", None, 400)];
        assert!(matches!(
            plan(&d, &world).actions.as_slice(),
            [Action::ExpireApproval { approval_id, .. }] if approval_id == "stale"
        ));
    }
}
