//! The Fly-side conditions: `AppReady`, `SecretsReady`, `DnsReady` and `CertificateReady` (when
//! the hostname is managed), `VolumeReady` and `MachineReady`.

use openclaws_fly::types::{Machine, Volume};
use openclaws_model::conditions::{ConditionType, Reason};
use openclaws_model::{openclaw_version_of_tag, FlyStatus, ImageRef, RunState};

use super::{Conditions, FlySide};
use crate::reconcile::desired::{config_matches, Desired};
use crate::reconcile::plan::{content_ok, dns_target, our_record};
use crate::reconcile::world::{AppObservation, Observed};
use crate::reconcile::{machine, secrets, volume};

/// Sets the Fly-side conditions and says what holds.
pub(super) fn judge<'a>(
    desired: &Desired,
    observed: &'a Observed,
    conditions: &mut Conditions<'_>,
) -> FlySide<'a> {
    let app_ok = app(desired, observed, conditions);
    let secrets_ok = secrets(desired, observed, app_ok, conditions);
    let endpoint_ok =
        !(desired.endpoint_wanted && app_ok) || endpoint(desired, observed, conditions);
    let vol = volume::keeper(&observed.volumes, &observed.machines, &desired.region);
    let vol_ok = volume_condition(desired, vol, conditions);
    let keeper = vol.and_then(|v| machine::keeper(&observed.machines, &v.id));
    let unreachable = observed.machines.iter().find(|m| m.host_unreachable());
    let (machine_ok, reason, message) = machine_condition(desired, keeper, vol, unreachable);
    conditions.set(ConditionType::MachineReady, machine_ok, reason, message);
    let shown = keeper.or(unreachable);
    FlySide {
        all_ok: app_ok && secrets_ok && endpoint_ok && vol_ok && machine_ok,
        keeper,
        fly: FlyStatus {
            app_name: app_ok.then(|| desired.app_name.clone()),
            volume_id: vol.map(|v| v.id.clone()),
            machine_id: shown.map(|m| m.id.clone()),
            machine_state: shown.map(|m| m.state.clone()),
            image: keeper
                .and_then(|m| m.config.as_ref())
                .map(|c| c.image.clone()),
            region: vol.map(|v| v.region.clone()),
            image_ref: keeper.and_then(|m| m.image_ref.as_ref()).map(image_ref),
            openclaw_version: keeper
                .and_then(|m| m.image_ref.as_ref())
                .and_then(|r| openclaw_version_of_tag(&r.tag))
                .map(str::to_owned),
        },
    }
}

/// The status's copy of the `image_ref` Fly reported.
fn image_ref(r: &openclaws_fly::types::ImageRef) -> ImageRef {
    ImageRef {
        registry: r.registry.clone(),
        repository: r.repository.clone(),
        tag: r.tag.clone(),
        digest: r.digest.clone(),
    }
}

fn app(desired: &Desired, observed: &Observed, conditions: &mut Conditions<'_>) -> bool {
    let (ok, reason, message) = match &observed.app {
        AppObservation::Ours(app) => (true, Reason::Created, format!("app {} exists", app.name)),
        AppObservation::Absent => (
            false,
            Reason::NotCreated,
            format!("app {} does not exist yet", desired.app_name),
        ),
        AppObservation::Foreign { reason } => (false, Reason::AppNameTaken, reason.clone()),
        AppObservation::Refused { reason } => (false, Reason::AdoptionRefused, reason.clone()),
    };
    conditions.set(ConditionType::AppReady, ok, reason, message);
    ok
}

fn secrets(
    desired: &Desired,
    observed: &Observed,
    app_ok: bool,
    conditions: &mut Conditions<'_>,
) -> bool {
    let ok = app_ok && secrets::in_sync(&desired.secrets, &observed.secrets);
    let (reason, message) = match (&observed.secrets.applied, ok) {
        (Some((fp, version)), true) => {
            (Reason::Applied, format!("secrets version {version} ({fp})"))
        }
        (None, true) => (Reason::NoneWanted, "no app secrets are wanted".to_owned()),
        (_, false) => (
            Reason::NotApplied,
            format!(
                "the app does not hold the desired secrets {:?} yet",
                desired.secrets.names()
            ),
        ),
    };
    conditions.set(ConditionType::SecretsReady, ok, reason, message);
    ok
}

/// `DnsReady` and `CertificateReady`; whether both hold.
fn endpoint(desired: &Desired, observed: &Observed, conditions: &mut Conditions<'_>) -> bool {
    let (dns_ok, reason, message) = dns(desired, observed);
    conditions.set(ConditionType::DnsReady, dns_ok, reason, message);
    let host = &desired.hostname;
    let (cert_ok, reason, message) = match &observed.certificate {
        Some(c) if c.status == "active" || c.status == "Ready" => (
            true,
            Reason::Issued,
            format!("certificate for {host} is active"),
        ),
        Some(c) if c.rate_limited_until.is_some() => (
            false,
            Reason::RateLimited,
            format!(
                "issuance for {host} is rate limited until {}",
                c.rate_limited_until.clone().unwrap_or_default()
            ),
        ),
        Some(c) => (
            false,
            Reason::AwaitingValidation,
            format!("certificate for {host} is {}", c.status),
        ),
        None => (
            false,
            Reason::NotRequested,
            format!("no certificate for {host} yet"),
        ),
    };
    conditions.set(ConditionType::CertificateReady, cert_ok, reason, message);
    dns_ok && cert_ok
}

fn dns(desired: &Desired, observed: &Observed) -> (bool, Reason, String) {
    let target = dns_target(desired, observed);
    let host = &desired.hostname;
    match our_record(desired, observed) {
        Some(r) if content_ok(desired, observed, r) => (
            true,
            Reason::Configured,
            format!("{host} CNAME {}", r.content),
        ),
        Some(r) => (
            false,
            Reason::Updating,
            format!("{host} is {} {}, want CNAME {target}", r.type_, r.content),
        ),
        None if !observed.dns_records.is_empty() => (
            false,
            Reason::RecordNotOurs,
            format!(
                "{host} already has records this controller did not create; they are left alone"
            ),
        ),
        None => (
            false,
            Reason::NotCreated,
            format!("no record for {host} yet"),
        ),
    }
}

fn volume_condition(
    desired: &Desired,
    vol: Option<&Volume>,
    conditions: &mut Conditions<'_>,
) -> bool {
    let ok = vol.is_some_and(|v| v.size_gb >= desired.volume_size_gb);
    let (reason, message) = match vol {
        Some(v) if ok => (
            Reason::Created,
            format!("volume {} ({} GB) in {}", v.id, v.size_gb, v.region),
        ),
        Some(v) => (
            Reason::Extending,
            format!(
                "volume {} is {} GB, want {}",
                v.id, v.size_gb, desired.volume_size_gb
            ),
        ),
        None => (Reason::NotCreated, "no data volume yet".to_owned()),
    };
    conditions.set(ConditionType::VolumeReady, ok, reason, message);
    ok
}

fn machine_condition(
    desired: &Desired,
    keeper: Option<&Machine>,
    vol: Option<&Volume>,
    unreachable: Option<&Machine>,
) -> (bool, Reason, String) {
    if let Some(m) = unreachable {
        return (
            false,
            Reason::HostUnreachable,
            format!(
                "the host of machine {} is unreachable; Fly answers from its cache",
                m.id
            ),
        );
    }
    let (Some(m), Some(v)) = (keeper, vol) else {
        return (
            false,
            Reason::NotCreated,
            "no gateway machine yet".to_owned(),
        );
    };
    let matches = m
        .config
        .as_ref()
        .is_some_and(|c| config_matches(c, &desired.machine_config(&v.id)));
    let stopped_wanted = desired.run_state == RunState::Stopped;
    match (matches, m.state.as_str(), stopped_wanted) {
        (false, state, _) if !m.is_transient() => {
            match m.config.as_ref().and_then(machine::state_dir_problem) {
                Some(why) => (
                    false,
                    Reason::StateDirOutsideVolume,
                    format!("machine {} ({state}): {why}", m.id),
                ),
                None => (
                    false,
                    Reason::ConfigDrift,
                    format!("machine {} ({state}) differs from the desired config", m.id),
                ),
            }
        }
        (true, "started", false) => (
            true,
            Reason::Started,
            format!("machine {} is started", m.id),
        ),
        (true, "stopped" | "suspended" | "failed", true) => (
            true,
            Reason::Stopped,
            format!("machine {} is not running, as desired", m.id),
        ),
        (_, state, _) => match machine::failing(m) {
            Some((reason, message)) => (false, reason, message),
            None => (
                false,
                state_reason(state),
                format!("machine {} is {state}", m.id),
            ),
        },
    }
}

fn state_reason(state: &str) -> Reason {
    match state {
        "created" | "creating" => Reason::Creating,
        "starting" | "restarting" => Reason::Starting,
        "stopping" | "suspending" => Reason::Stopping,
        "stopped" | "suspended" => Reason::Stopped,
        "replacing" | "updating" => Reason::Updating,
        "failed" | "launch_failed" => Reason::Failed,
        "destroying" => Reason::Destroying,
        "unreachable" => Reason::HostUnreachable,
        _ => Reason::Unknown,
    }
}
