//! Observing the world: the app, its volumes and our machines, found by deterministic names and
//! ownership marks rather than by stored ids, so a crash between a create and its record is
//! healed by adoption. An app taken over from the web app (`docs/adoption.md`) is ours by its
//! adoption record; its kept volume and machine by the ids recorded when its layout checked out.

use openclaws_dns::{CloudflareDns, DnsRecord};
use openclaws_fly::types::{App, AppSecret, CertificateDetail, IpAssignment, Machine, Volume};
use openclaws_fly::{FlyClient, FlyError};

use super::adopt::legacy_layout;
use super::desired::{AdoptionState, Desired, META_INSTANCE_UID, VOLUME_NAME};
use super::errors::StepError;
use super::world::{AppObservation, Observed, ObservedSecrets};

/// Reads the world: the app first (nothing more when it does not exist), then its volumes,
/// our machines, secrets, addresses and endpoint in parallel. `known` is what the previous
/// reconcile recorded: a volume or machine it saw that a list now omits is read by id, so a
/// lagging or empty list (Fly's April 2026 incident) never makes us create a duplicate.
pub async fn observe(
    fly: &FlyClient,
    dns: Option<&CloudflareDns>,
    desired: &Desired,
    known: Option<&openclaws_model::FlyStatus>,
) -> Result<Observed, StepError> {
    let app = match read_app(fly, dns, desired).await? {
        Ok(app) => app,
        Err(settled) => return Ok(settled),
    };
    let claimed = desired.adoption == Some(AdoptionState::Claimed);
    let (mut world, endpoint) = tokio::try_join!(
        fly_side(fly, desired, !claimed),
        endpoint(fly, dns, desired)
    )?;
    let kept = match claimed {
        true => match verify_layout(desired, &world) {
            Ok(kept) => Some(kept),
            Err(reason) => return Ok(refused(reason)),
        },
        false => {
            find_known_by_id(fly, desired, known, &mut world).await?;
            find_adopted_by_id(fly, desired, &mut world).await?;
            adopted_ids(desired)
        }
    };
    let mut observed = assemble(desired, app, world, endpoint, kept.as_ref());
    observed.adoption_verified = kept.filter(|_| claimed);
    Ok(observed)
}

/// The app, or (`Err`) the whole observation when nothing more is to be looked at: the name is
/// free (with the hostname's records), someone else's, or an adoption that cannot go ahead.
async fn read_app(
    fly: &FlyClient,
    dns: Option<&CloudflareDns>,
    desired: &Desired,
) -> Result<Result<App, Observed>, StepError> {
    let claimed = desired.adoption == Some(AdoptionState::Claimed);
    let app = match fly.get_app(&desired.app_name).await {
        Ok(None) if claimed => {
            return Ok(Err(refused(format!(
                "app {} does not exist",
                desired.app_name
            ))))
        }
        Ok(None) => {
            // The app may be created within this reconcile: know the hostname's records already,
            // so a record someone else made is never overwritten or duplicated.
            let dns_records = match dns {
                Some(dns) => dns.list(&desired.hostname).await?,
                None => Vec::new(),
            };
            return Ok(Err(Observed {
                dns_records,
                ..Observed::empty()
            }));
        }
        Ok(Some(app)) => app,
        Err(FlyError::Forbidden { message }) => {
            return Ok(Err(foreign(format!(
                "the name belongs to another organization ({message})"
            ))))
        }
        Err(e) => return Err(e.into()),
    };
    if let Some(reason) = foreign_reason(&app, fly.org(), desired) {
        return Ok(Err(foreign(reason)));
    }
    if claimed && desired.deleting {
        return Ok(Err(foreign(format!(
            "the adoption of app {} never completed; it is left as it was",
            desired.app_name
        ))));
    }
    Ok(Ok(app))
}

/// The observation of an app that is ours, from what was read.
fn assemble(
    desired: &Desired,
    app: App,
    world: AppContents,
    (certificate, dns_records): (Option<CertificateDetail>, Vec<DnsRecord>),
    kept: Option<&(String, String)>,
) -> Observed {
    let ours = Ours::new(desired, kept);
    Observed {
        app: AppObservation::Ours(app),
        volumes: world
            .volumes
            .into_iter()
            .filter(|v| ours.volume(v))
            .collect(),
        machines: world
            .machines
            .into_iter()
            .filter(|m| ours.machine(m))
            .collect(),
        app_deletion_requested: false,
        observed_at: Some(chrono::Utc::now()),
        secrets: ObservedSecrets {
            names: world.secrets.into_iter().map(|s| s.name).collect(),
            applied: None,
        },
        ips: world.ips.into_iter().map(address_kind).collect(),
        certificate,
        dns_records,
        gateway: None,
        pairing_history: Vec::new(),
        adoption_verified: None,
    }
}

/// Which volumes and machines of the app are the instance's: ours are named `data` and carry
/// our uid mark; an adopted app's kept volume and machine are ours by id.
struct Ours<'a> {
    uid: String,
    kept: Option<&'a (String, String)>,
}

impl<'a> Ours<'a> {
    fn new(desired: &Desired, kept: Option<&'a (String, String)>) -> Self {
        Self {
            uid: desired.uid.to_string(),
            kept,
        }
    }

    fn volume(&self, v: &Volume) -> bool {
        let kept = self.kept.is_some_and(|(id, _)| *id == v.id);
        !v.is_destroyed() && (v.name == VOLUME_NAME || kept)
    }

    fn machine(&self, m: &Machine) -> bool {
        let mark = m.metadata_value(META_INSTANCE_UID);
        let kept = self.kept.is_some_and(|(_, id)| *id == m.id) && mark.is_none();
        !m.is_destroyed() && (mark == Some(self.uid.as_str()) || kept)
    }
}

/// A claimed app's layout: the volume and machine adoption keeps, or why it cannot be adopted.
fn verify_layout(desired: &Desired, world: &AppContents) -> Result<(String, String), String> {
    let uid = desired.uid.to_string();
    let layout = legacy_layout(&world.volumes, &world.machines, Some(&uid))?;
    Ok((layout.volume.id.clone(), layout.machine.id.clone()))
}

/// The kept volume and machine of an adopted app.
fn adopted_ids(desired: &Desired) -> Option<(String, String)> {
    match &desired.adoption {
        Some(AdoptionState::Adopted {
            volume_id,
            machine_id,
        }) => Some((volume_id.clone(), machine_id.clone())),
        _ => None,
    }
}

/// An adopted app's kept volume and machine are read by id when the lists omit them: the
/// machine until its update gives it our mark (an update that failed leaves it without one),
/// the volume because it is not named `data`.
async fn find_adopted_by_id(
    fly: &FlyClient,
    desired: &Desired,
    world: &mut AppContents,
) -> Result<(), StepError> {
    let Some((volume_id, machine_id)) = adopted_ids(desired) else {
        return Ok(());
    };
    let app = &desired.app_name;
    if !world.volumes.iter().any(|v| v.id == volume_id) {
        world.volumes.extend(fly.get_volume(app, &volume_id).await?);
    }
    if !world.machines.iter().any(|m| m.id == machine_id) {
        world
            .machines
            .extend(fly.get_machine(app, &machine_id).await?);
    }
    Ok(())
}

/// An app claimed for adoption whose layout does not match: nothing else is looked at.
fn refused(reason: String) -> Observed {
    Observed {
        app: AppObservation::Refused { reason },
        ..Observed::empty()
    }
}

/// A name someone else holds: nothing else is looked at.
fn foreign(reason: String) -> Observed {
    Observed {
        app: AppObservation::Foreign { reason },
        ..Observed::empty()
    }
}

/// What the app holds at Fly, as its lists show it.
struct AppContents {
    volumes: Vec<Volume>,
    machines: Vec<Machine>,
    secrets: Vec<AppSecret>,
    ips: Vec<IpAssignment>,
}

/// The app's volumes, our machines (every machine when `marked_only` is false: an app claimed
/// for adoption is checked whole), its secrets and addresses, read in parallel.
async fn fly_side(
    fly: &FlyClient,
    desired: &Desired,
    marked_only: bool,
) -> Result<AppContents, StepError> {
    let uid = desired.uid.to_string();
    let mark = [(META_INSTANCE_UID, uid.as_str())];
    let filter = if marked_only { &mark[..] } else { &[] };
    let app = &desired.app_name;
    let (volumes, machines, secrets, ips) = tokio::try_join!(
        fly.list_volumes(app),
        fly.list_machines(app, filter),
        fly.list_secrets(app),
        fly.list_ips(app),
    )?;
    Ok(AppContents {
        volumes,
        machines,
        secrets,
        ips,
    })
}

/// The hostname's certificate and DNS records, when a DNS provider is configured.
async fn endpoint(
    fly: &FlyClient,
    dns: Option<&CloudflareDns>,
    desired: &Desired,
) -> Result<(Option<CertificateDetail>, Vec<DnsRecord>), StepError> {
    let Some(dns) = dns else {
        return Ok((None, Vec::new()));
    };
    tokio::try_join!(
        async {
            fly.get_certificate(&desired.app_name, &desired.hostname)
                .await
                .map_err(StepError::from)
        },
        async { dns.list(&desired.hostname).await.map_err(StepError::from) },
    )
}

/// A volume or machine the last reconcile saw but a list omits (lag, an empty list) is read by
/// id, so a lagging list never makes us create a duplicate.
async fn find_known_by_id(
    fly: &FlyClient,
    desired: &Desired,
    known: Option<&openclaws_model::FlyStatus>,
    world: &mut AppContents,
) -> Result<(), StepError> {
    let app = &desired.app_name;
    if let Some(id) = known.and_then(|k| k.volume_id.as_deref()) {
        if !world.volumes.iter().any(|v| v.id == id) {
            if let Some(v) = fly.get_volume(app, id).await? {
                tracing::info!(volume = %id, "volume missing from the list, found by id");
                world.volumes.push(v);
            }
        }
    }
    if let Some(id) = known.and_then(|k| k.machine_id.as_deref()) {
        if !world.machines.iter().any(|m| m.id == id) {
            if let Some(m) = fly.get_machine(app, id).await? {
                tracing::info!(machine = %id, "machine missing from the list, found by id");
                world.machines.push(m);
            }
        }
    }
    Ok(())
}

/// Why an existing app is not ours, or `None` when it is in our org and carries our mark: its
/// network, or for an adopted app the adoption record (which `desired` carries).
fn foreign_reason(app: &App, org: &str, desired: &Desired) -> Option<String> {
    if let Some(o) = &app.organization {
        if !o.slug.is_empty() && o.slug != org {
            return Some(format!("the app belongs to organization {}", o.slug));
        }
    }
    if desired.adoption.is_some() {
        return None;
    }
    if app.network.as_deref() != Some(desired.network.as_str()) {
        return Some(
            "an app with this name exists without this instance's ownership mark".to_owned(),
        );
    }
    None
}

/// Kind of a Flycast address for another network than the organization's own (someone exposed
/// the app to another network or organization): never planned, so never released.
pub const FOREIGN_FLYCAST: &str = "private_v6_foreign";

/// An address as `(kind, address)` for planning: Fly's kind, except that a Flycast address
/// allocated for another network or organization is [`FOREIGN_FLYCAST`].
fn address_kind(ip: openclaws_fly::types::IpAssignment) -> (String, String) {
    let kind = ip.kind();
    let network = ip.extra.get("network").and_then(|n| n.get("name"));
    let default_network = network
        .and_then(|n| n.as_str())
        .is_none_or(|name| name.is_empty() || name == "default");
    if kind == "private_v6" && !default_network {
        return (FOREIGN_FLYCAST.to_owned(), ip.ip);
    }
    (kind, ip.ip)
}
