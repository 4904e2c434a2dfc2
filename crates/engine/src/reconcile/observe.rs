//! Observing the world: the app, its volumes and our machines, found by deterministic names and
//! ownership marks rather than by stored ids, so a crash between a create and its record is
//! healed by adoption.

use openclaws_dns::{CloudflareDns, DnsRecord};
use openclaws_fly::types::{App, AppSecret, CertificateDetail, IpAssignment, Machine, Volume};
use openclaws_fly::{FlyClient, FlyError};

use super::desired::{Desired, META_INSTANCE_UID, VOLUME_NAME};
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
    let app = match fly.get_app(&desired.app_name).await {
        Ok(None) => {
            // The app may be created within this reconcile: know the hostname's records already,
            // so a record someone else made is never overwritten or duplicated.
            let dns_records = match dns {
                Some(dns) => dns.list(&desired.hostname).await?,
                None => Vec::new(),
            };
            return Ok(Observed {
                dns_records,
                ..Observed::empty()
            });
        }
        Ok(Some(app)) => app,
        Err(FlyError::Forbidden { message }) => {
            return Ok(foreign(format!(
                "the name belongs to another organization ({message})"
            )))
        }
        Err(e) => return Err(e.into()),
    };
    if let Some(reason) = foreign_reason(&app, fly.org(), &desired.network) {
        return Ok(foreign(reason));
    }
    let (mut world, (certificate, dns_records)) =
        tokio::try_join!(fly_side(fly, desired), endpoint(fly, dns, desired))?;
    find_known_by_id(fly, desired, known, &mut world).await?;
    let uid = desired.uid.to_string();
    Ok(Observed {
        app: AppObservation::Ours(app),
        volumes: world
            .volumes
            .into_iter()
            .filter(|v| v.name == VOLUME_NAME && !v.is_destroyed())
            .collect(),
        machines: world
            .machines
            .into_iter()
            .filter(|m| {
                !m.is_destroyed() && m.metadata_value(META_INSTANCE_UID) == Some(uid.as_str())
            })
            .collect(),
        app_deletion_requested: false,
        observed_at: Some(chrono::Utc::now()),
        secrets: ObservedSecrets {
            names: world.secrets.into_iter().map(|s| s.name).collect(),
            applied: None,
        },
        ips: world.ips.into_iter().map(|ip| (ip.kind(), ip.ip)).collect(),
        certificate,
        dns_records,
        gateway: None,
        pairing_history: Vec::new(),
    })
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

/// The app's volumes, our machines, its secrets and addresses, read in parallel.
async fn fly_side(fly: &FlyClient, desired: &Desired) -> Result<AppContents, StepError> {
    let uid = desired.uid.to_string();
    let mark = [(META_INSTANCE_UID, uid.as_str())];
    let app = &desired.app_name;
    let (volumes, machines, secrets, ips) = tokio::try_join!(
        fly.list_volumes(app),
        fly.list_machines(app, &mark),
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

/// Why an existing app is not ours, or `None` when it carries our mark in our org.
fn foreign_reason(app: &App, org: &str, network: &str) -> Option<String> {
    if let Some(o) = &app.organization {
        if !o.slug.is_empty() && o.slug != org {
            return Some(format!("the app belongs to organization {}", o.slug));
        }
    }
    if app.network.as_deref() != Some(network) {
        return Some(
            "an app with this name exists without this instance's ownership mark".to_owned(),
        );
    }
    None
}
