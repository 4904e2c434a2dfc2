//! The "old fleet": an app built in the simulator the way the old web app's `src/lib/fly.ts`
//! built one (`docs/adoption.md`), through the Fly Machines API and the DNS API, as an
//! out-of-band actor: the app without a network of ours, the `openclaw_data` volume, one machine
//! running the gateway image with the web app's command, environment and services and no
//! metadata of ours, the `OPENCLAW_GATEWAY_TOKEN` secret, public addresses, a certificate and a
//! CNAME `{slug}.{domain}` → `{app}.fly.dev` without a comment.

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::stack::{Stack, ORG};

/// The image the web app ran.
pub const LEGACY_IMAGE: &str = "ghcr.io/openclaw/openclaw:main";
/// The web app's machine command.
pub const LEGACY_CMD: [&str; 8] = [
    "node",
    "dist/index.js",
    "gateway",
    "--allow-unconfigured",
    "--port",
    "3000",
    "--bind",
    "lan",
];

/// What [`build`] made, by id, for tests to check that adoption kept it.
#[derive(Debug, Clone)]
pub struct LegacyApp {
    /// `{prefix}{slug}`.
    pub app: String,
    /// The slug (the instance name that adopts it).
    pub slug: String,
    /// The `openclaw_data` volume.
    pub volume_id: String,
    /// The one machine.
    pub machine_id: String,
    /// The CNAME's record id.
    pub dns_record_id: String,
    /// `{slug}.{domain}`.
    pub hostname: String,
}

/// Knobs for an old-fleet app; `Default` is the web app's layout exactly.
#[derive(Debug, Clone)]
pub struct LegacyOptions {
    /// The machine's image (the real gateway tests may use a local build of it).
    pub image: String,
    /// How many machines (the web app made one; more is a layout adoption refuses). Those
    /// after the first mount nothing (Fly attaches a volume to one machine).
    pub machines: usize,
    /// Volume size in GB.
    pub volume_size_gb: u32,
    /// The region of the volume and machine.
    pub region: String,
}

impl Default for LegacyOptions {
    fn default() -> Self {
        Self {
            image: LEGACY_IMAGE.to_owned(),
            machines: 1,
            volume_size_gb: 1,
            region: "iad".to_owned(),
        }
    }
}

/// The machine config the web app gave its machine, mounting `volume_id`.
pub fn legacy_config(image: &str, volume_id: &str) -> Value {
    json!({
        "image": image,
        "init": {"cmd": LEGACY_CMD},
        "env": {"OPENCLAW_STATE_DIR": "/data", "NODE_OPTIONS": "--max-old-space-size=1536"},
        "mounts": [{"volume": volume_id, "path": "/data"}],
        "services": [{
            "protocol": "tcp",
            "internal_port": 3000,
            "ports": [
                {"port": 80, "handlers": ["http"]},
                {"port": 443, "handlers": ["tls", "http"]}
            ]
        }],
        "guest": {"cpu_kind": "shared", "cpus": 2, "memory_mb": 2048}
    })
}

/// Builds app `{prefix}{slug}` in `stack`'s simulator as the web app did, with `token` as its
/// gateway token, and waits for its machine(s) to start.
pub async fn build(stack: &Stack, slug: &str, token: &str, options: &LegacyOptions) -> LegacyApp {
    let app = format!("{}{slug}", stack.settings.fly.fly_app_prefix);
    let hostname = format!("{slug}.{}", stack.settings.base_domain);
    ok(
        stack,
        Method::POST,
        "/v1/apps",
        json!({"app_name": app, "org_slug": ORG}),
    )
    .await;
    let volume = ok(
        stack,
        Method::POST,
        &format!("/v1/apps/{app}/volumes"),
        json!({"name": "openclaw_data", "region": options.region, "size_gb": options.volume_size_gb}),
    )
    .await;
    let volume_id = volume["id"].as_str().expect("a volume id").to_owned();
    secrets_and_addresses(stack, &app, token).await;
    let mut machine_ids = Vec::new();
    for n in 0..options.machines {
        let mut config = legacy_config(&options.image, &volume_id);
        if n > 0 {
            config["mounts"] = json!([]);
        }
        let body = json!({"region": options.region, "config": config});
        let machine = ok(
            stack,
            Method::POST,
            &format!("/v1/apps/{app}/machines"),
            body,
        )
        .await;
        machine_ids.push(machine["id"].as_str().expect("a machine id").to_owned());
    }
    for id in &machine_ids {
        started(stack, &app, id).await;
    }
    let dns_record_id = endpoint(stack, &app, &hostname).await;
    LegacyApp {
        app,
        slug: slug.to_owned(),
        volume_id,
        machine_id: machine_ids[0].clone(),
        dns_record_id,
        hostname,
    }
}

/// The gateway token secret and the public addresses the `fly.dev` name needs.
async fn secrets_and_addresses(stack: &Stack, app: &str, token: &str) {
    ok(
        stack,
        Method::POST,
        &format!("/v1/apps/{app}/secrets"),
        json!({"values": {"OPENCLAW_GATEWAY_TOKEN": token}}),
    )
    .await;
    for kind in ["v6", "shared_v4"] {
        ok(
            stack,
            Method::POST,
            &format!("/v1/apps/{app}/ip_assignments"),
            json!({"type": kind}),
        )
        .await;
    }
}

/// The certificate and the CNAME without a comment; the record's id.
async fn endpoint(stack: &Stack, app: &str, hostname: &str) -> String {
    ok(
        stack,
        Method::POST,
        &format!("/v1/apps/{app}/certificates/acme"),
        json!({"hostname": hostname}),
    )
    .await;
    let zone = zone_id(stack).await;
    let record = ok(
        stack,
        Method::POST,
        &format!("/client/v4/zones/{zone}/dns_records"),
        json!({"type": "CNAME", "name": hostname, "content": format!("{app}.fly.dev"), "ttl": 1, "proxied": false}),
    )
    .await;
    record["result"]["id"]
        .as_str()
        .expect("a record id")
        .to_owned()
}

/// The simulator's DNS zone (the stack's base domain).
pub async fn zone_id(stack: &Stack) -> String {
    let path = format!("/client/v4/zones?name={}", stack.settings.base_domain);
    let (code, zones) = stack.fly(Method::GET, &path, None).await;
    assert_eq!(code, StatusCode::OK, "{zones}");
    zones["result"][0]["id"]
        .as_str()
        .expect("the zone")
        .to_owned()
}

/// The hostname's DNS records as the DNS API lists them.
pub async fn dns_records(stack: &Stack, hostname: &str) -> Vec<Value> {
    let zone = zone_id(stack).await;
    let path = format!("/client/v4/zones/{zone}/dns_records?name={hostname}");
    let (code, body) = stack.fly(Method::GET, &path, None).await;
    assert_eq!(code, StatusCode::OK, "{body}");
    body["result"].as_array().cloned().unwrap_or_default()
}

/// The value of an app secret, read back through the simulator (`show_secrets=true`).
pub async fn secret_value(stack: &Stack, app: &str, name: &str) -> Option<String> {
    let path = format!("/v1/apps/{app}/secrets/{name}?show_secrets=true");
    let (code, body) = stack.fly(Method::GET, &path, None).await;
    (code == StatusCode::OK).then(|| body["value"].as_str().map(str::to_owned))?
}

async fn started(stack: &Stack, app: &str, id: &str) {
    let path = format!("/v1/apps/{app}/machines/{id}/wait?state=started&timeout=60");
    let (code, body) = stack.fly(Method::GET, &path, None).await;
    assert!(
        code.is_success(),
        "machine {id} did not start: {code} {body}"
    );
}

async fn ok(stack: &Stack, method: Method, path: &str, body: Value) -> Value {
    let (code, answer) = stack.fly(method, path, Some(body)).await;
    assert!(code.is_success(), "{path}: {code} {answer}");
    answer
}
