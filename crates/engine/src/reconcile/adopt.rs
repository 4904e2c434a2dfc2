//! Adoption of an app the old web app built (`docs/adoption.md`): the layout it must have to be
//! taken over, and what taking it over changes. Pure: the reconcile checks an observed app with
//! it, and `openclaws-controller import --dry-run` lists the fleet with it.

use std::collections::BTreeSet;

use openclaws_fly::types::{Machine, Volume};
use openclaws_model::secret_names::GATEWAY_TOKEN;

use super::desired::{AdoptionState, DATA_PATH, META_INSTANCE_UID};
use super::secrets::MANAGED;

/// Name of the data volume in apps the web app built (ours are named `data`).
pub const LEGACY_VOLUME_NAME: &str = "openclaw_data";

/// The state of a recorded adoption for an instance whose app is `app_name`; `None` when the row
/// names another app (the prefix setting changed since: it then marks nothing this instance uses).
pub fn state_of(
    row: &openclaws_store::adoptions::Adoption,
    app_name: &str,
) -> Option<AdoptionState> {
    if row.app_name != app_name {
        return None;
    }
    match (&row.volume_id, &row.machine_id) {
        (Some(volume_id), Some(machine_id)) => Some(AdoptionState::Adopted {
            volume_id: volume_id.clone(),
            machine_id: machine_id.clone(),
        }),
        _ => Some(AdoptionState::Claimed),
    }
}

/// What an app the web app built holds that adoption keeps.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LegacyLayout<'a> {
    /// The volume mounted at `/data`.
    pub volume: &'a Volume,
    /// The one machine.
    pub machine: &'a Machine,
}

/// Checks that an app holds the web app's layout: exactly one machine, mounting at `/data` the
/// app's one volume, named `openclaw_data`; the machine carries no instance mark other than
/// `uid`'s (`None`: no mark at all). Destroyed volumes and machines do not count. The error says
/// why the app cannot be adopted.
pub fn legacy_layout<'a>(
    volumes: &'a [Volume],
    machines: &'a [Machine],
    uid: Option<&str>,
) -> Result<LegacyLayout<'a>, String> {
    let machine = one_machine(machines)?;
    if let Some(mark) = machine.metadata_value(META_INSTANCE_UID) {
        if Some(mark) != uid {
            return Err(format!(
                "machine {} already belongs to instance {mark}",
                machine.id
            ));
        }
    }
    let config = machine.config.as_ref().ok_or_else(|| {
        format!(
            "the config of machine {} is unknown (its host is unreachable)",
            machine.id
        )
    })?;
    let mount = config
        .mounts
        .iter()
        .find(|m| m.path == DATA_PATH)
        .ok_or_else(|| format!("machine {} mounts no volume at {DATA_PATH}", machine.id))?;
    let live: Vec<&Volume> = volumes.iter().filter(|v| !v.is_destroyed()).collect();
    let volume = live.iter().find(|v| v.id == mount.volume).ok_or_else(|| {
        format!(
            "volume {} mounted at {DATA_PATH} is not in the app",
            mount.volume
        )
    })?;
    if volume.name != LEGACY_VOLUME_NAME {
        return Err(format!(
            "the volume at {DATA_PATH} is named {:?}, not {LEGACY_VOLUME_NAME:?}",
            volume.name
        ));
    }
    if live.len() > 1 {
        return Err(format!(
            "the app has {} volumes; the web app's layout has one",
            live.len()
        ));
    }
    Ok(LegacyLayout { volume, machine })
}

fn one_machine(machines: &[Machine]) -> Result<&Machine, String> {
    let live: Vec<&Machine> = machines.iter().filter(|m| !m.is_destroyed()).collect();
    match live.as_slice() {
        [one] => Ok(one),
        [] => Err("the app has no machine".to_owned()),
        many => Err(format!(
            "the app has {} machines; the web app's layout has one",
            many.len()
        )),
    }
}

/// What adopting an app with `layout` changes and keeps, one line each, for the import listing.
/// `secrets`: the names of the app's secrets (Fly never shows their values).
pub fn adoption_changes(
    layout: &LegacyLayout<'_>,
    secrets: &BTreeSet<String>,
    hostname: &str,
) -> Vec<String> {
    let m = layout.machine;
    let v = layout.volume;
    let image = m.config.as_ref().map_or("?", |c| c.image.as_str());
    let token = match secrets.contains(GATEWAY_TOKEN) {
        true => "secret OPENCLAW_GATEWAY_TOKEN kept (set again to the same value from --tokens)",
        false => "secret OPENCLAW_GATEWAY_TOKEN missing at Fly: set from --tokens",
    };
    let mut lines = vec![
        format!(
            "machine {} ({}, {image}): config replaced by the controller's (boot bundle, \
             ownership metadata) in one update: 1 restart",
            m.id, m.state
        ),
        format!("machine metadata {META_INSTANCE_UID} added"),
        token.to_owned(),
    ];
    lines.extend(
        MANAGED
            .iter()
            .filter(|name| **name != GATEWAY_TOKEN && secrets.contains(**name))
            .map(|name| {
                format!("secret {name} unset (the controller manages it; the import sets no provider keys)")
            }),
    );
    lines.push(format!(
        "volume {} ({LEGACY_VOLUME_NAME}, {} GB, {}) kept with every file",
        v.id, v.size_gb, v.region
    ));
    lines.push(format!("DNS record and certificate of {hostname} kept"));
    lines
}

#[cfg(test)]
mod tests {
    use super::*;
    use openclaws_fly::types::{MachineConfig, Mount};

    fn volume(id: &str, name: &str) -> Volume {
        Volume {
            id: id.to_owned(),
            name: name.to_owned(),
            state: "created".to_owned(),
            region: "iad".to_owned(),
            size_gb: 1,
            ..Default::default()
        }
    }

    fn machine(id: &str, mount: Option<(&str, &str)>) -> Machine {
        Machine {
            id: id.to_owned(),
            state: "started".to_owned(),
            config: Some(MachineConfig {
                image: "ghcr.io/openclaw/openclaw:main".to_owned(),
                mounts: mount
                    .map(|(volume, path)| Mount {
                        volume: volume.to_owned(),
                        path: path.to_owned(),
                        extra: Default::default(),
                    })
                    .into_iter()
                    .collect(),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn the_web_apps_layout_is_accepted() {
        let volumes = [volume("vol_1", LEGACY_VOLUME_NAME)];
        let machines = [machine("m1", Some(("vol_1", "/data")))];
        let layout = legacy_layout(&volumes, &machines, None).unwrap();
        assert_eq!(layout.volume.id, "vol_1");
        assert_eq!(layout.machine.id, "m1");
    }

    #[test]
    fn anything_else_is_refused_with_the_reason() {
        let data = [volume("vol_1", LEGACY_VOLUME_NAME)];
        let at_data = || machine("m1", Some(("vol_1", "/data")));
        let refused = |volumes: &[Volume], machines: &[Machine]| {
            legacy_layout(volumes, machines, None).unwrap_err()
        };
        assert_eq!(refused(&data, &[]), "the app has no machine");
        assert!(refused(&data, &[at_data(), machine("m2", None)]).contains("2 machines"));
        assert!(refused(&data, &[machine("m1", None)]).contains("mounts no volume at /data"));
        assert!(refused(&data, &[machine("m1", Some(("vol_1", "/state")))])
            .contains("mounts no volume at /data"));
        assert!(refused(&[], &[at_data()]).contains("is not in the app"));
        assert!(refused(&[volume("vol_1", "data")], &[at_data()]).contains("named \"data\""));
        let two = [data[0].clone(), volume("vol_2", LEGACY_VOLUME_NAME)];
        assert!(refused(&two, &[at_data()]).contains("2 volumes"));
    }

    #[test]
    fn a_machine_marked_by_another_instance_is_refused_ours_is_accepted() {
        let volumes = [volume("vol_1", LEGACY_VOLUME_NAME)];
        let mut m = machine("m1", Some(("vol_1", "/data")));
        if let Some(c) = m.config.as_mut() {
            c.metadata
                .insert(META_INSTANCE_UID.to_owned(), "uid-a".to_owned());
        }
        let machines = [m];
        assert!(legacy_layout(&volumes, &machines, Some("uid-a")).is_ok());
        let other = legacy_layout(&volumes, &machines, Some("uid-b")).unwrap_err();
        assert!(
            other.contains("already belongs to instance uid-a"),
            "{other}"
        );
        assert!(legacy_layout(&volumes, &machines, None).is_err());
    }

    #[test]
    fn destroyed_machines_and_volumes_do_not_count() {
        let mut gone = volume("vol_0", LEGACY_VOLUME_NAME);
        gone.state = "destroyed".to_owned();
        let volumes = [gone, volume("vol_1", LEGACY_VOLUME_NAME)];
        let mut old = machine("m0", Some(("vol_0", "/data")));
        old.state = "destroyed".to_owned();
        let machines = [old, machine("m1", Some(("vol_1", "/data")))];
        assert_eq!(
            legacy_layout(&volumes, &machines, None).unwrap().machine.id,
            "m1"
        );
    }

    #[test]
    fn the_changes_name_the_one_restart_and_what_is_kept() {
        let volumes = [volume("vol_1", LEGACY_VOLUME_NAME)];
        let machines = [machine("m1", Some(("vol_1", "/data")))];
        let layout = legacy_layout(&volumes, &machines, None).unwrap();
        let names = |list: &[&str]| list.iter().map(|n| (*n).to_owned()).collect();
        let with_token = names(&["OPENCLAW_GATEWAY_TOKEN", "SOMETHING_ELSE"]);
        let lines = adoption_changes(&layout, &with_token, "acme.openclaws.biz").join("\n");
        assert!(lines.contains("1 restart"), "{lines}");
        assert!(lines.contains("volume vol_1"), "{lines}");
        assert!(lines.contains("OPENCLAW_GATEWAY_TOKEN kept"), "{lines}");
        assert!(lines.contains("acme.openclaws.biz kept"), "{lines}");
        assert!(!lines.contains("unset"), "{lines}");
        let missing = adoption_changes(&layout, &names(&["ANTHROPIC_API_KEY"]), "a.b").join("\n");
        assert!(missing.contains("missing at Fly"), "{missing}");
        assert!(
            missing.contains("secret ANTHROPIC_API_KEY unset"),
            "{missing}"
        );
    }
}
