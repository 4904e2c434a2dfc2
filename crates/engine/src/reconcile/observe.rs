//! Observing the world: the app, its volumes and our machines, found by deterministic names and
//! ownership marks rather than by stored ids, so a crash between a create and its record is
//! healed by adoption.

use openclaws_fly::types::App;
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
    dns: Option<&openclaws_dns::CloudflareDns>,
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
            return Ok(Observed {
                app: AppObservation::Foreign {
                    reason: format!("the name belongs to another organization ({message})"),
                },
                ..Observed::empty()
            })
        }
        Err(e) => return Err(e.into()),
    };
    if let Some(reason) = foreign_reason(&app, fly.org(), &desired.network) {
        return Ok(Observed {
            app: AppObservation::Foreign { reason },
            ..Observed::empty()
        });
    }
    let uid = desired.uid.to_string();
    let mark = [(META_INSTANCE_UID, uid.as_str())];
    let endpoint = async {
        match dns {
            Some(dns) => {
                let (certificate, records) = tokio::try_join!(
                    async {
                        fly.get_certificate(&desired.app_name, &desired.hostname)
                            .await
                            .map_err(StepError::from)
                    },
                    async { dns.list(&desired.hostname).await.map_err(StepError::from) },
                )?;
                Ok::<_, StepError>((certificate, records))
            }
            None => Ok((None, Vec::new())),
        }
    };
    let fly_side = async {
        tokio::try_join!(
            fly.list_volumes(&desired.app_name),
            fly.list_machines(&desired.app_name, &mark),
            fly.list_secrets(&desired.app_name),
            fly.list_ips(&desired.app_name),
        )
        .map_err(StepError::from)
    };
    let ((mut volumes, mut machines, secrets, ips), (certificate, dns_records)) =
        tokio::try_join!(fly_side, endpoint)?;
    if let Some(id) = known.and_then(|k| k.volume_id.as_deref()) {
        if !volumes.iter().any(|v| v.id == id) {
            if let Some(v) = fly.get_volume(&desired.app_name, id).await? {
                tracing::info!(volume = %id, "volume missing from the list, found by id");
                volumes.push(v);
            }
        }
    }
    if let Some(id) = known.and_then(|k| k.machine_id.as_deref()) {
        if !machines.iter().any(|m| m.id == id) {
            if let Some(m) = fly.get_machine(&desired.app_name, id).await? {
                tracing::info!(machine = %id, "machine missing from the list, found by id");
                machines.push(m);
            }
        }
    }
    Ok(Observed {
        app: AppObservation::Ours(app),
        volumes: volumes
            .into_iter()
            .filter(|v| v.name == VOLUME_NAME && !v.is_destroyed())
            .collect(),
        machines: machines
            .into_iter()
            .filter(|m| {
                !m.is_destroyed() && m.metadata_value(META_INSTANCE_UID) == Some(uid.as_str())
            })
            .collect(),
        app_deletion_requested: false,
        observed_at: Some(chrono::Utc::now()),
        secrets: ObservedSecrets {
            names: secrets.into_iter().map(|s| s.name).collect(),
            applied: None,
        },
        ips: ips.into_iter().map(|ip| (ip.kind(), ip.ip)).collect(),
        certificate,
        dns_records,
        gateway: None,
        pairing_history: Vec::new(),
    })
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
