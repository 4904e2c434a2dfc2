//! What the world should look like for one instance, derived from its spec and the settings.
//! Pure: no I/O, so the planner and its tests can build it freely.

use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use uuid::Uuid;

use openclaws_fly::types::{
    Guest, MachineConfig, MachineFile, MachineService, Mount, RestartPolicy, ServicePort,
};
use openclaws_gateway::bundle::{
    boot_bundle, BootBundle, BundleInput, BUNDLE_DIR, BUNDLE_HASH_METADATA_KEY,
};
use openclaws_gateway::channels::ChannelsConfig;
use openclaws_gateway::config::{OwnedConfig, Placement};
use openclaws_model::{InstanceSpec, RunState};

use super::secrets::{DesiredSecrets, META_SECRETS};

/// Name of the gateway machine in every app.
pub const MACHINE_NAME: &str = "gateway";
/// Name of the data volume in every app.
pub const VOLUME_NAME: &str = "data";
/// Where the volume is mounted (the gateway's state dir).
pub const DATA_PATH: &str = "/data";
/// Port the gateway listens on inside the machine.
pub const GATEWAY_PORT: u16 = 3000;
/// The machine environment variable carrying Node's options (the heap cap, [`heap_cap`]).
pub const NODE_OPTIONS_ENV: &str = "NODE_OPTIONS";

/// Machine metadata key holding the owning instance's uid: our ownership mark.
pub const META_INSTANCE_UID: &str = "openclaws_instance_uid";
/// Machine metadata key holding the instance name (for humans reading `fly machines list`).
pub const META_INSTANCE_NAME: &str = "openclaws_instance";
/// Machine metadata key naming the machine's role.
pub const META_ROLE: &str = "openclaws_role";
/// Machine metadata key holding the hash of the desired config the machine was built from.
pub const META_CONFIG_HASH: &str = "openclaws_config_hash";

/// Settings that shape every instance.
#[derive(Debug, Clone)]
pub struct FleetSettings {
    pub app_prefix: String,
    pub base_domain: String,
    /// How long a machine may sit in a transient state before it counts as stuck
    /// (Fly's guidance: 5 minutes; updates get twice as long).
    pub machine_stuck_after: std::time::Duration,
    /// Whether hostnames get a DNS record and a certificate (a DNS provider is configured).
    pub manage_dns: bool,
    /// How gateways are reached and configured.
    pub gateway: GatewayPlacement,
    /// The origin a hostname is served at: `https://{hostname}` behind Fly's edge; the local dev
    /// stack serves plain `http://{hostname}:{port}` from the simulator's proxy.
    pub public_url: PublicUrl,
}

/// The scheme and port of every instance's public origin (its hostname comes from the name and
/// the base domain). Written as a template, `https://{hostname}` or `http://{hostname}:8081`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PublicUrl {
    /// `https` (production) or `http` (a local proxy a browser reaches on `*.localhost`).
    pub tls: bool,
    /// A port other than the scheme's default.
    pub port: Option<u16>,
}

impl Default for PublicUrl {
    fn default() -> Self {
        Self {
            tls: true,
            port: None,
        }
    }
}

impl PublicUrl {
    /// The origin of `hostname`, e.g. `https://acme.openclaws.biz`.
    pub fn origin(&self, hostname: &str) -> String {
        let scheme = if self.tls { "https" } else { "http" };
        match self.port {
            Some(port) => format!("{scheme}://{hostname}:{port}"),
            None => format!("{scheme}://{hostname}"),
        }
    }
}

impl std::str::FromStr for PublicUrl {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let invalid = || {
            format!(
                "{s:?} is not a public URL template: expected `https://{{hostname}}` or \
                 `http://{{hostname}}:PORT` (a port is optional)"
            )
        };
        let (tls, rest) = match s.split_once("://{hostname}") {
            Some(("https", rest)) => (true, rest),
            Some(("http", rest)) => (false, rest),
            _ => return Err(invalid()),
        };
        let port = match rest {
            "" => None,
            _ => Some(
                rest.strip_prefix(':')
                    .and_then(|p| p.parse::<u16>().ok())
                    .filter(|p| *p != 0)
                    .ok_or_else(invalid)?,
            ),
        };
        Ok(Self { tls, port })
    }
}

/// Fleet-wide facts about gateways, from the controller's settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GatewayPlacement {
    /// Whether the controller looks at gateways (health, pairing, owned config).
    pub checks: bool,
    /// Base URL every gateway is reached through with its hostname as `Host`; `None`: the
    /// hostname itself over https.
    pub url: Option<String>,
    /// Base URL every private gateway is reached through with `{app}.flycast` as `Host`;
    /// `None`: `http://{app}.flycast` itself, on Fly's private network.
    pub private_url: Option<String>,
    /// `gateway.trustedProxies` of every gateway.
    pub trusted_proxies: Vec<String>,
    /// The LLM proxy's Anthropic base URL, when the platform runs one.
    pub llm_proxy_url: Option<String>,
    /// `channels.telegram.apiRoot` of every managed Telegram channel (dev and test only).
    pub telegram_api_root: Option<String>,
}

impl GatewayPlacement {
    /// No gateway checks, no LLM proxy (for simulated machines that run nothing).
    pub fn without_checks() -> Self {
        Self {
            checks: false,
            url: None,
            private_url: None,
            trusted_proxies: vec!["127.0.0.1/32".to_owned()],
            llm_proxy_url: None,
            telegram_api_root: None,
        }
    }
}

/// Where the controller reaches one gateway: `base` (http(s)) with `host` as the `Host` header
/// when it goes through a shared proxy address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GatewayTarget {
    pub base: String,
    pub host: Option<String>,
}

impl GatewayTarget {
    /// The WebSocket URL of the same place.
    pub fn ws_url(&self) -> String {
        if let Some(rest) = self.base.strip_prefix("https://") {
            format!("wss://{rest}")
        } else if let Some(rest) = self.base.strip_prefix("http://") {
            format!("ws://{rest}")
        } else {
            self.base.clone()
        }
    }
}

/// How far an instance's adoption of an app the web app built has come, as the database
/// records it (`docs/adoption.md`; checking and listing: [`super::adopt`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AdoptionState {
    /// Claimed: the next reconcile checks the layout before anything is changed.
    Claimed,
    /// Taken over: the volume and machine found when the layout was verified.
    Adopted {
        volume_id: String,
        machine_id: String,
    },
}

/// The desired world for one instance.
#[derive(Debug, Clone, PartialEq)]
pub struct Desired {
    pub uid: Uuid,
    pub name: String,
    pub generation: i64,
    pub app_name: String,
    /// The app's 6PN network name; set at creation, it is the app's ownership mark.
    pub network: String,
    pub region: String,
    pub volume_size_gb: u32,
    pub run_state: RunState,
    pub deleting: bool,
    pub endpoint: String,
    /// See [`FleetSettings::machine_stuck_after`].
    pub machine_stuck_after: std::time::Duration,
    /// App secrets (values redacted from Debug).
    pub secrets: DesiredSecrets,
    /// `{slug}.{base domain}`.
    pub hostname: String,
    /// Whether the hostname should have a DNS record and a certificate (public and DNS managed).
    pub endpoint_wanted: bool,
    /// Address types the app should have: a public IPv6 and a shared IPv4 when public, a
    /// private Flycast IPv6 (`private_v6`) when private (`docs/private-instances.md`).
    pub ips: Vec<&'static str>,
    /// Machine config without the mount (added once the volume is known).
    pub machine: MachineConfig,
    /// The `openclaw.json` fields the controller owns (delivered by the boot bundle).
    pub owned: OwnedConfig,
    /// Hash of the owned fields, compared with the live gateway's config.
    pub owned_hash: String,
    /// Where to reach the gateway; `None` when gateway checks are off.
    pub gateway: Option<GatewayTarget>,
    /// How pairing requests are approved.
    pub pairing: openclaws_model::PairingSpec,
    /// The messaging channels the controller manages (written over the protocol, never in the
    /// boot bundle: a channel change rolls no machine).
    pub channels: ChannelsConfig,
    /// Whether model calls go through the LLM proxy with a minted token (no Anthropic credential
    /// of the customer's, and a proxy configured).
    pub proxy_token: bool,
    /// The instance adopted an app the web app built (`docs/adoption.md`): its ownership mark
    /// is this record, not the app's network.
    pub adoption: Option<AdoptionState>,
    /// A pairing subscription follows the gateway now (`crate::pairing`): it approves, so a
    /// reconcile only looks (two approvers would race for the same request).
    pub pairing_followed: bool,
}

/// The app's network name for an instance uid (our mark on the app).
pub fn network_name(uid: Uuid) -> String {
    format!("openclaws-{}", uid.simple())
}

impl Desired {
    /// Builds the desired world from a spec.
    pub fn from_spec(
        uid: Uuid,
        name: &str,
        generation: i64,
        spec: &InstanceSpec,
        deleting: bool,
        settings: &FleetSettings,
    ) -> Self {
        let public = spec.exposure == openclaws_model::Exposure::Public;
        let hostname = format!("{}.{}", name, settings.base_domain);
        let app_name = format!("{}{}", settings.app_prefix, name);
        let proxy_token = settings.gateway.llm_proxy_url.is_some()
            && spec.provider_keys.anthropic_api_key.is_none()
            && spec.provider_keys.anthropic_oauth_token.is_none();
        let owned = OwnedConfig::for_instance(
            spec,
            &Placement {
                public_origin: public.then(|| settings.public_url.origin(&hostname)),
                trusted_proxies: settings.gateway.trusted_proxies.clone(),
                llm_proxy_base_url: settings
                    .gateway
                    .llm_proxy_url
                    .clone()
                    .filter(|_| proxy_token),
            },
        );
        let mut machine = gateway_machine(uid, name, spec, public);
        let bundle = boot_bundle(&BundleInput {
            owned: &owned,
            identity_name: &owned.agent_name,
        });
        apply_bundle(&bundle, &mut machine);
        let hash = config_hash(&machine);
        machine.metadata.insert(META_CONFIG_HASH.to_owned(), hash);
        let gateway = settings
            .gateway
            .checks
            .then(|| gateway_target(&settings.gateway, public, &hostname, &app_name));
        Self {
            uid,
            name: name.to_owned(),
            generation,
            app_name,
            network: network_name(uid),
            region: spec.region.clone(),
            volume_size_gb: spec.volume_size_gb,
            run_state: spec.run_state,
            deleting,
            endpoint: settings.public_url.origin(&hostname),
            machine_stuck_after: settings.machine_stuck_after,
            secrets: Default::default(),
            hostname,
            endpoint_wanted: settings.manage_dns && public,
            ips: if public {
                vec!["v6", "shared_v4"]
            } else {
                vec!["private_v6"]
            },
            machine,
            owned_hash: owned.hash(),
            owned,
            gateway,
            pairing: spec.pairing.clone(),
            channels: ChannelsConfig::for_spec(
                &spec.channels,
                settings.gateway.telegram_api_root.clone(),
            ),
            proxy_token,
            adoption: None,
            pairing_followed: false,
        }
    }

    /// Sets the app secrets; the machine's metadata carries their fingerprint so a change rolls
    /// the machine onto the new values.
    pub fn with_secrets(mut self, secrets: DesiredSecrets) -> Self {
        self.set_secrets(secrets);
        self
    }

    /// [`Desired::with_secrets`] in place.
    pub fn set_secrets(&mut self, secrets: DesiredSecrets) {
        self.machine.metadata.remove(META_CONFIG_HASH);
        self.machine
            .metadata
            .insert(META_SECRETS.to_owned(), secrets.fingerprint().to_owned());
        let hash = config_hash(&self.machine);
        self.machine
            .metadata
            .insert(META_CONFIG_HASH.to_owned(), hash);
        self.secrets = secrets;
    }

    /// The full machine config for a given volume.
    pub fn machine_config(&self, volume_id: &str) -> MachineConfig {
        let mut config = self.machine.clone();
        config.mounts = vec![Mount {
            volume: volume_id.to_owned(),
            path: DATA_PATH.to_owned(),
            extra: Default::default(),
        }];
        config
    }
}

/// Puts a gateway's boot bundle into its machine config: replaces the files under the bundle's
/// directory (others stay), sets the command, the environment entries and the bundle's hash in
/// metadata. Applying it twice changes nothing.
pub fn apply_bundle(bundle: &BootBundle, config: &mut MachineConfig) {
    config
        .files
        .retain(|f| !f.guest_path.starts_with(&format!("{BUNDLE_DIR}/")));
    config
        .files
        .extend(bundle.files.iter().map(|f| MachineFile {
            guest_path: f.guest_path.clone(),
            raw_value: Some(f.raw_value.clone()),
            secret_name: None,
            mode: Some(f.mode),
        }));
    let mut init = config.init.take().unwrap_or_default();
    init.exec = None;
    init.entrypoint = None;
    init.cmd = Some(bundle.command.clone());
    config.init = Some(init);
    config.env.extend(bundle.env.clone());
    config.metadata.insert(
        BUNDLE_HASH_METADATA_KEY.to_owned(),
        bundle.bundle_hash.clone(),
    );
}

/// The gateway's service ports: HTTP on 80 (redirecting to HTTPS) and TLS on 443 when public;
/// plain HTTP on 80 only when private, because Fly's proxy serves a Flycast address over HTTP
/// only (Fly's Flycast docs: "Don't use force_https; Flycast is HTTP-only"). Fly's proxy needs
/// the service either way: without one it cannot route a Flycast address to the machine.
fn service_ports(public: bool) -> Vec<ServicePort> {
    let port = |port: u16, handlers: &[&str], force_https: Option<bool>| ServicePort {
        port: Some(port),
        handlers: handlers.iter().map(|h| (*h).to_owned()).collect(),
        force_https,
        extra: Default::default(),
    };
    if public {
        vec![
            port(80, &["http"], Some(true)),
            port(443, &["tls", "http"], None),
        ]
    } else {
        vec![port(80, &["http"], None)]
    }
}

/// The gateway machine's config before its boot bundle and volume: image, size, the HTTP
/// service ([`service_ports`]), restart policy and our ownership metadata.
fn gateway_machine(uid: Uuid, name: &str, spec: &InstanceSpec, public: bool) -> MachineConfig {
    MachineConfig {
        image: spec.image.clone(),
        env: BTreeMap::from([
            ("NODE_ENV".to_owned(), "production".to_owned()),
            (NODE_OPTIONS_ENV.to_owned(), heap_cap(spec.guest.memory_mb)),
        ]),
        guest: Some(Guest {
            cpu_kind: spec.guest.cpu_kind.as_fly().to_owned(),
            cpus: spec.guest.cpus,
            memory_mb: spec.guest.memory_mb,
            extra: Default::default(),
        }),
        services: vec![MachineService {
            protocol: "tcp".into(),
            internal_port: GATEWAY_PORT,
            ports: service_ports(public),
            autostop: Some(serde_json::Value::String("off".into())),
            autostart: Some(true),
            min_machines_running: Some(0),
            extra: Default::default(),
        }],
        restart: Some(RestartPolicy {
            policy: "always".into(),
            max_retries: None,
        }),
        metadata: BTreeMap::from([
            (META_INSTANCE_UID.to_owned(), uid.to_string()),
            (META_INSTANCE_NAME.to_owned(), name.to_owned()),
            (META_ROLE.to_owned(), "gateway".to_owned()),
        ]),
        ..Default::default()
    }
}

/// Node's options on the machine: the V8 heap capped at three quarters of the machine's memory
/// (OpenClaw's Fly guide sets 1536 MB on a 2 GB machine), so V8 collects garbage harder before
/// the kernel's out-of-memory killer ends the whole process, and the rest stays for Node's
/// off-heap memory and the boot step.
pub fn heap_cap(memory_mb: u32) -> String {
    format!("--max-old-space-size={}", u64::from(memory_mb) * 3 / 4)
}

/// Where the controller reaches the gateway. Public: through the configured base URL with the
/// hostname as `Host`, else the hostname itself over https. Private: the app's Flycast name,
/// `{app}.flycast`, over HTTP on port 80 (through the configured private base URL with that
/// name as `Host`, else directly on Fly's private network). Not `{app}.internal`: that reaches
/// the machine's 6PN IPv6 address directly, and OpenClaw's gateway listens on IPv4 only (`lan`
/// is `0.0.0.0`; `custom` takes one IPv4 address), so nothing would answer there.
fn gateway_target(
    placement: &GatewayPlacement,
    public: bool,
    hostname: &str,
    app_name: &str,
) -> GatewayTarget {
    if !public {
        let flycast = format!("{app_name}.flycast");
        return match &placement.private_url {
            Some(url) => GatewayTarget {
                base: url.clone(),
                host: Some(flycast),
            },
            None => GatewayTarget {
                base: format!("http://{flycast}"),
                host: None,
            },
        };
    }
    match &placement.url {
        Some(url) => GatewayTarget {
            base: url.clone(),
            host: Some(hostname.to_owned()),
        },
        None => GatewayTarget {
            base: format!("https://{hostname}"),
            host: None,
        },
    }
}

/// A short, stable hash of a machine config (recorded in metadata for humans and audits).
pub fn config_hash(config: &MachineConfig) -> String {
    let bytes = serde_json::to_vec(config).expect("machine config serializes");
    let digest = Sha256::digest(bytes);
    digest[..8].iter().map(|b| format!("{b:02x}")).collect()
}

/// Whether an observed machine config matches the desired one on every field we own.
/// Fly normalises some values on read (autostop `"off"` reads back as `false`), and other
/// actors may add fields we do not own; both are ignored.
pub fn config_matches(observed: &MachineConfig, desired: &MachineConfig) -> bool {
    observed.image == desired.image
        && observed.init.as_ref().and_then(|i| i.cmd.as_ref())
            == desired.init.as_ref().and_then(|i| i.cmd.as_ref())
        && desired
            .env
            .iter()
            .all(|(k, v)| observed.env.get(k) == Some(v))
        && guest_matches(observed.guest.as_ref(), desired.guest.as_ref())
        && mounts_key(&observed.mounts) == mounts_key(&desired.mounts)
        && services_key(&observed.services) == services_key(&desired.services)
        && observed.restart.as_ref().map(|r| r.policy.as_str())
            == desired.restart.as_ref().map(|r| r.policy.as_str())
        && desired
            .metadata
            .iter()
            .all(|(k, v)| observed.metadata.get(k) == Some(v))
}

fn guest_matches(observed: Option<&Guest>, desired: Option<&Guest>) -> bool {
    match (observed, desired) {
        (Some(o), Some(d)) => {
            o.cpu_kind == d.cpu_kind && o.cpus == d.cpus && o.memory_mb == d.memory_mb
        }
        (None, None) => true,
        _ => false,
    }
}

fn mounts_key(mounts: &[Mount]) -> Vec<(&str, &str)> {
    mounts
        .iter()
        .map(|m| (m.volume.as_str(), m.path.as_str()))
        .collect()
}

type ServiceKey<'a> = (&'a str, u16, Vec<(Option<u16>, &'a [String], bool)>, bool);

fn services_key(services: &[MachineService]) -> Vec<ServiceKey<'_>> {
    services
        .iter()
        .map(|s| {
            (
                s.protocol.as_str(),
                s.internal_port,
                s.ports
                    .iter()
                    .map(|p| {
                        (
                            p.port,
                            p.handlers.as_slice(),
                            p.force_https.unwrap_or(false),
                        )
                    })
                    .collect(),
                autostop_enabled(s.autostop.as_ref()),
            )
        })
        .collect()
}

/// Fly accepts `"off"|"stop"|"suspend"` and reads back booleans.
fn autostop_enabled(value: Option<&serde_json::Value>) -> bool {
    match value {
        None => false,
        Some(serde_json::Value::Bool(b)) => *b,
        Some(serde_json::Value::String(s)) => s != "off",
        Some(_) => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> InstanceSpec {
        serde_json::from_value(serde_json::json!({"customerId": "c1", "region": "iad"})).unwrap()
    }

    fn settings() -> FleetSettings {
        FleetSettings {
            app_prefix: "oc-".into(),
            base_domain: "openclaws.biz".into(),
            machine_stuck_after: std::time::Duration::from_secs(300),
            manage_dns: true,
            gateway: GatewayPlacement::without_checks(),
            public_url: PublicUrl::default(),
        }
    }

    #[test]
    fn public_url_templates() {
        let dev: PublicUrl = "http://{hostname}:4281".parse().unwrap();
        assert_eq!(dev.origin("demo.localhost"), "http://demo.localhost:4281");
        let prod: PublicUrl = "https://{hostname}".parse().unwrap();
        assert_eq!(prod, PublicUrl::default());
        assert_eq!(
            prod.origin("acme.openclaws.biz"),
            "https://acme.openclaws.biz"
        );
        for bad in [
            "",
            "ftp://{hostname}",
            "https://acme.openclaws.biz",
            "https://{hostname}/path",
            "http://{hostname}:0",
            "http://{hostname}:99999",
            "http://{hostname}:",
        ] {
            assert!(bad.parse::<PublicUrl>().is_err(), "{bad} was accepted");
        }
    }

    #[test]
    fn names_and_defaults() {
        let d = Desired::from_spec(Uuid::nil(), "acme", 1, &spec(), false, &settings());
        assert_eq!(d.app_name, "oc-acme");
        assert_eq!(d.endpoint, "https://acme.openclaws.biz");
        let g = d.machine.guest.as_ref().unwrap();
        assert_eq!(
            (g.cpu_kind.as_str(), g.cpus, g.memory_mb),
            ("shared", 2, 2048)
        );
        assert_eq!(d.machine.env["OPENCLAW_STATE_DIR"], "/data");
        assert_eq!(d.machine.restart.as_ref().unwrap().policy, "always");
        assert_eq!(d.machine.env[NODE_OPTIONS_ENV], "--max-old-space-size=1536");
    }

    #[test]
    fn a_private_instance_is_reached_over_flycast_with_an_http_only_service() {
        let mut spec = spec();
        spec.exposure = openclaws_model::Exposure::Private;
        let mut settings = settings();
        settings.gateway.checks = true;
        let d = Desired::from_spec(Uuid::nil(), "acme", 1, &spec, false, &settings);
        assert_eq!(d.ips, vec!["private_v6"]);
        assert!(!d.endpoint_wanted);
        let ports: Vec<(Option<u16>, Option<bool>)> = d.machine.services[0]
            .ports
            .iter()
            .map(|p| (p.port, p.force_https))
            .collect();
        assert_eq!(ports, vec![(Some(80), None)], "HTTP only, no redirect");
        let target = d.gateway.expect("checks on");
        assert_eq!(target.base, "http://oc-acme.flycast");
        assert_eq!(target.host, None);
        settings.gateway.private_url = Some("http://127.0.0.1:9".into());
        settings.gateway.url = Some("http://127.0.0.1:8".into());
        let d = Desired::from_spec(Uuid::nil(), "acme", 1, &spec, false, &settings);
        let target = d.gateway.expect("checks on");
        assert_eq!(target.base, "http://127.0.0.1:9");
        assert_eq!(target.host.as_deref(), Some("oc-acme.flycast"));
        let public = Desired::from_spec(Uuid::nil(), "acme", 1, &self::spec(), false, &settings);
        assert_eq!(public.ips, vec!["v6", "shared_v4"]);
        assert_eq!(public.machine.services[0].ports.len(), 2);
        assert_eq!(
            public.gateway.unwrap().host.as_deref(),
            Some("acme.openclaws.biz")
        );
    }

    #[test]
    fn fly_normalisation_is_not_drift() {
        let d = Desired::from_spec(Uuid::nil(), "acme", 1, &spec(), false, &settings());
        let desired = d.machine_config("vol_1");
        let mut observed = desired.clone();
        observed.services[0].autostop = Some(serde_json::Value::Bool(false));
        observed.env.insert("FLY_EXTRA".into(), "1".into());
        observed
            .metadata
            .insert("fly_platform_version".into(), "v2".into());
        assert!(config_matches(&observed, &desired));
    }

    #[test]
    fn owned_field_changes_are_drift() {
        let d = Desired::from_spec(Uuid::nil(), "acme", 1, &spec(), false, &settings());
        let desired = d.machine_config("vol_1");
        let mut cases: Vec<MachineConfig> = Vec::new();
        let mut c = desired.clone();
        c.image = "other:latest".into();
        cases.push(c);
        let mut c = desired.clone();
        c.guest.as_mut().unwrap().memory_mb = 1024;
        cases.push(c);
        let mut c = desired.clone();
        c.services.clear();
        cases.push(c);
        let mut c = desired.clone();
        c.services[0].autostop = Some(serde_json::Value::Bool(true));
        cases.push(c);
        let mut c = desired.clone();
        c.mounts[0].volume = "vol_2".into();
        cases.push(c);
        let mut c = desired.clone();
        c.env.remove("OPENCLAW_STATE_DIR");
        cases.push(c);
        let mut c = desired.clone();
        c.restart = None;
        cases.push(c);
        for c in cases {
            assert!(!config_matches(&c, &desired), "{c:?}");
        }
    }

    #[test]
    fn applying_keeps_foreign_files_and_env_and_records_the_hash() {
        use openclaws_fly::types::MachineInit;
        use openclaws_gateway::bundle::{BOOT_SCRIPT_PATH, BUNDLE_JSON_PATH, STATE_DIR_ENV};
        let d = Desired::from_spec(Uuid::nil(), "acme", 1, &spec(), false, &settings());
        let bundle = boot_bundle(&BundleInput {
            owned: &d.owned,
            identity_name: "Ada",
        });
        let mut machine = MachineConfig {
            image: "ghcr.io/openclaw/openclaw:2026.9.6".to_owned(),
            env: BTreeMap::from([("NODE_ENV".to_owned(), "production".to_owned())]),
            files: vec![
                MachineFile {
                    guest_path: "/etc/other".to_owned(),
                    raw_value: Some("eA==".to_owned()),
                    ..MachineFile::default()
                },
                MachineFile {
                    guest_path: "/etc/openclaws/stale.json".to_owned(),
                    raw_value: Some("eA==".to_owned()),
                    ..MachineFile::default()
                },
            ],
            init: Some(MachineInit {
                exec: Some(vec!["/bin/sh".to_owned()]),
                ..MachineInit::default()
            }),
            ..MachineConfig::default()
        };
        apply_bundle(&bundle, &mut machine);
        apply_bundle(&bundle, &mut machine);
        let paths: Vec<&str> = machine
            .files
            .iter()
            .map(|f| f.guest_path.as_str())
            .collect();
        assert_eq!(
            paths,
            vec!["/etc/other", BOOT_SCRIPT_PATH, BUNDLE_JSON_PATH]
        );
        let init = machine.init.unwrap();
        assert_eq!(init.exec, None);
        assert_eq!(init.cmd.as_ref(), Some(&bundle.command));
        assert_eq!(machine.env["NODE_ENV"], "production");
        assert_eq!(machine.env[STATE_DIR_ENV], "/data");
        assert_eq!(
            machine.metadata[BUNDLE_HASH_METADATA_KEY],
            bundle.bundle_hash
        );
    }

    /// The config and bundle hashes of a fixed spec. A change here makes every running machine
    /// differ from its desired config, so an upgrade would update (restart) the whole fleet:
    /// change these values only on purpose. Last changed on purpose: the heap cap in
    /// `NODE_OPTIONS` and the boot step's stale-lock removal (`docs/failure-modes.md`), one
    /// restart per machine on upgrade.
    #[test]
    fn the_machine_config_hash_is_stable_across_releases() {
        let spec: InstanceSpec = serde_json::from_value(serde_json::json!({
            "customerId": "c1", "region": "iad", "identity": {"displayName": "Ada"}
        }))
        .unwrap();
        let d = Desired::from_spec(Uuid::from_u128(7), "acme", 1, &spec, false, &settings());
        assert_eq!(d.machine.metadata[META_CONFIG_HASH], "6ca3677000e84286");
        assert_eq!(
            d.machine.metadata[BUNDLE_HASH_METADATA_KEY],
            "sha256:1f83b53a1cf7b1c62d8d389e35f3d726dbaae7734322caa59425b42d629de396"
        );
    }
}
