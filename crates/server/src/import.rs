//! The survey behind `openclaws-controller import` (`docs/adoption.md`): the organization's apps
//! named with the prefix, each judged against the old web app's layout with what adopting it
//! would change, or why it cannot be adopted. Reads Fly only, with the settings `serve` uses.

use std::collections::BTreeSet;
use std::sync::Arc;

use openclaws_engine::reconcile::adopt::{adoption_changes, legacy_layout};
use openclaws_fly::observer::NoObserver;
use openclaws_fly::types::{App, Machine, Volume};
use openclaws_fly::{FlyClient, FlyError};

use crate::config::FlySettings;

/// Prefix of the networks the controller creates its apps on (`openclaws-{uid}`).
const OUR_NETWORK_PREFIX: &str = "openclaws-";

/// One app of the organization named with the prefix.
#[derive(Debug, Clone, PartialEq)]
pub struct Candidate {
    /// The app's name.
    pub app: String,
    /// The app's name without the prefix: the instance that would adopt it.
    pub slug: String,
    /// Whether and how it can be adopted.
    pub verdict: Verdict,
}

/// Whether an app can be adopted.
#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    /// It holds the web app's layout.
    Adoptable {
        /// The volume's region (the instance's `spec.region`).
        region: String,
        /// The volume's size (the instance's `spec.volumeSizeGb`).
        volume_size_gb: u32,
        /// What adopting it changes and keeps, one line each.
        changes: Vec<String>,
    },
    /// It does not, and why.
    Refused(String),
}

/// A Fly client from the settings `serve` uses, reporting to no metrics.
pub fn fly_client(settings: &FlySettings) -> FlyClient {
    FlyClient::new(
        &settings.fly_api_base,
        &settings.fly_api_token,
        &settings.fly_org,
        Arc::new(NoObserver),
    )
}

/// Every app of the organization named `{prefix}…`, by name, judged.
pub async fn survey(
    fly: &FlyClient,
    prefix: &str,
    base_domain: &str,
) -> Result<Vec<Candidate>, FlyError> {
    let mut apps: Vec<App> = fly
        .list_apps()
        .await?
        .into_iter()
        .filter(|a| a.name.len() > prefix.len() && a.name.starts_with(prefix))
        .collect();
    apps.sort_by(|a, b| a.name.cmp(&b.name));
    let mut candidates = Vec::with_capacity(apps.len());
    for app in &apps {
        let slug = app.name[prefix.len()..].to_owned();
        let hostname = format!("{slug}.{base_domain}");
        let verdict = match app.network.as_deref() {
            Some(n) if n.starts_with(OUR_NETWORK_PREFIX) => Verdict::Refused(format!(
                "created by the controller (network {n}): already managed"
            )),
            _ => look(fly, &app.name, &slug, &hostname).await?,
        };
        candidates.push(Candidate {
            app: app.name.clone(),
            slug,
            verdict,
        });
    }
    Ok(candidates)
}

/// Reads one app's volumes, machines and secret names and judges them.
async fn look(fly: &FlyClient, app: &str, slug: &str, hostname: &str) -> Result<Verdict, FlyError> {
    let (volumes, machines, secrets) = tokio::try_join!(
        fly.list_volumes(app),
        fly.list_machines(app, &[]),
        fly.list_secrets(app),
    )?;
    let names = secrets.into_iter().map(|s| s.name).collect();
    Ok(judge(slug, &volumes, &machines, &names, hostname))
}

/// The verdict on an app from what Fly holds for it (pure).
pub fn judge(
    slug: &str,
    volumes: &[Volume],
    machines: &[Machine],
    secrets: &BTreeSet<String>,
    hostname: &str,
) -> Verdict {
    if !openclaws_api::validate::valid_name(slug) {
        return Verdict::Refused(format!(
            "{slug:?} is not an instance name (a DNS label of 3-40 characters)"
        ));
    }
    match legacy_layout(volumes, machines, None) {
        Ok(layout) => Verdict::Adoptable {
            region: layout.volume.region.clone(),
            volume_size_gb: layout.volume.size_gb,
            changes: adoption_changes(&layout, secrets, hostname),
        },
        Err(reason) => Verdict::Refused(reason),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use openclaws_fly::types::{MachineConfig, Mount};

    fn legacy() -> (Vec<Volume>, Vec<Machine>) {
        let volume = Volume {
            id: "vol_1".into(),
            name: "openclaw_data".into(),
            state: "created".into(),
            region: "ams".into(),
            size_gb: 3,
            ..Default::default()
        };
        let machine = Machine {
            id: "m1".into(),
            state: "started".into(),
            config: Some(MachineConfig {
                mounts: vec![Mount {
                    volume: "vol_1".into(),
                    path: "/data".into(),
                    extra: Default::default(),
                }],
                ..Default::default()
            }),
            ..Default::default()
        };
        (vec![volume], vec![machine])
    }

    #[test]
    fn the_web_apps_layout_is_adoptable_in_its_volumes_region_and_size() {
        let (volumes, machines) = legacy();
        let Verdict::Adoptable {
            region,
            volume_size_gb,
            changes,
        } = judge(
            "acme",
            &volumes,
            &machines,
            &BTreeSet::new(),
            "acme.openclaws.biz",
        )
        else {
            panic!("refused");
        };
        assert_eq!((region.as_str(), volume_size_gb), ("ams", 3));
        assert!(
            changes.iter().any(|c| c.contains("1 restart")),
            "{changes:?}"
        );
    }

    #[test]
    fn a_slug_that_is_no_instance_name_or_another_layout_is_refused() {
        let (volumes, machines) = legacy();
        let v = judge(
            "a",
            &volumes,
            &machines,
            &BTreeSet::new(),
            "a.openclaws.biz",
        );
        assert!(matches!(v, Verdict::Refused(r) if r.contains("not an instance name")));
        let v = judge(
            "acme",
            &[],
            &machines,
            &BTreeSet::new(),
            "acme.openclaws.biz",
        );
        assert!(matches!(v, Verdict::Refused(r) if r.contains("not in the app")));
    }
}
