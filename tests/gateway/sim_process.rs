//! The boot step and the simulator's process mode with the real OpenClaw gateway (the version
//! `scripts/install-openclaw.sh` pins).
//!
//! The first two tests run the shipped `boot.mjs` with the pinned Node (`--prepare-only`) and
//! compare what it does with the Rust rules it mirrors (`merge_owned`, `decide_identity`). The
//! last one drives one machine through its life over the simulator's Fly API and proxy; it boots
//! the gateway twice (10–16 s and about 1 GB each), so everything that needs a running gateway
//! is checked within it, in order.

use base64::Engine;
use fly_sim::process::OpenclawInstall;
use fly_sim::proxy::{serve_proxy, ProxySettings};
use fly_sim::{MachineMode, ProcessSettings};
use openclaws_fly::types::{MachineConfig, Mount, RestartPolicy};
use openclaws_gateway::bundle::{
    boot_bundle, boot_script, BundleInput, BOOT_SCRIPT_PATH, BUNDLE_JSON_PATH,
};
use openclaws_gateway::client::{ClientError, ConnectOptions, GatewayClient};
use openclaws_gateway::config::{
    merge_owned, parse, to_file_text, BindMode, OwnedConfig, DEFAULT_WORKSPACE, GATEWAY_PORT,
};
use openclaws_gateway::files::{
    composio_exec_script, composio_skill_md, content_hash, decide_identity, identity_md,
    FileAction, BRIDGE_PATH, SKILL_PATH,
};
use openclaws_gateway::health::HealthClient;
use openclaws_gateway::identity::DeviceIdentity;
use openclaws_testkit::openclaw::install_openclaw;
use openclaws_testkit::process::{alive, children};
use openclaws_testkit::sim::TestSim;
use reqwest::Method;
use serde_json::{json, Value};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

const HOST: &str = "acme.openclaws.biz";
const ORIGIN: &str = "https://acme.openclaws.biz";
const BOOT_DEADLINE: Duration = Duration::from_secs(150);

/// A fresh directory under cargo's per-target temp dir.
fn temp_dir(name: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("sim_process-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn owned(trusted_proxies: &[&str], composio: bool) -> OwnedConfig {
    OwnedConfig {
        bind: BindMode::Lan,
        port: GATEWAY_PORT,
        allowed_origins: vec![ORIGIN.to_owned()],
        trusted_proxies: trusted_proxies.iter().map(|s| s.to_string()).collect(),
        model_primary: "anthropic/claude-sonnet-4-6".to_owned(),
        model_fallbacks: vec![],
        workspace: DEFAULT_WORKSPACE.to_owned(),
        agent_name: "Ada".to_owned(),
        anthropic_base_url: Some("http://127.0.0.1:9/anthropic".to_owned()),
        composio_enabled: composio,
    }
}

fn decode(raw: &str) -> Vec<u8> {
    base64::engine::general_purpose::STANDARD
        .decode(raw)
        .unwrap()
}

/// Writes the bundle's files into `etc` (as Fly would into /etc/openclaws).
fn deliver(etc: &Path, config: &OwnedConfig, name: &str) {
    let bundle = boot_bundle(&BundleInput {
        owned: config,
        identity_name: name,
        composio: &Default::default(),
    });
    for file in &bundle.files {
        let target = etc.join(Path::new(&file.guest_path).file_name().unwrap());
        std::fs::write(&target, decode(&file.raw_value)).unwrap();
    }
}

/// Runs the boot step with `--prepare-only` on `state`.
fn prepare(node: &Path, etc: &Path, state: &Path) {
    let output = Command::new(node)
        .arg(etc.join("boot.mjs"))
        .arg("--prepare-only")
        .env("OPENCLAW_STATE_DIR", state)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "boot step failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

fn node_binary() -> PathBuf {
    OpenclawInstall::from_wrapper(&install_openclaw())
        .unwrap()
        .node_bin_dir
        .join("node")
}

#[test]
fn the_boot_step_merges_openclaw_json_exactly_like_merge_owned() {
    let node = node_binary();
    let root = temp_dir("merge");
    let etc = root.join("etc");
    std::fs::create_dir_all(&etc).unwrap();
    let config = owned(&["127.0.0.1/32"], true);
    deliver(&etc, &config, "Ada");
    assert_eq!(
        std::fs::read_to_string(etc.join("boot.mjs")).unwrap(),
        boot_script()
    );

    let samples = [
        json!({
            "gateway": {"port": 1, "bind": "loopback", "reload": {"mode": "off"},
                        "auth": {"mode": "password"}, "controlUi": {"basePath": "/ui"}},
            "agents": {"entries": {"main": {"name": "Old", "skills": ["x"]}, "b": {}},
                       "defaults": {"workspace": "/elsewhere", "timeoutSeconds": 60}},
            "channels": {"telegram": {"enabled": true}},
            "models": {"providers": {"anthropic": {"timeoutMs": 5}}},
            "bindings": [{"agentId": "main"}],
            "meta": {"lastTouchedVersion": "2026.9.6"},
            "10": 1, "2": 2, "Z": "upper", "é": "non-ascii"
        }),
        json!({"gateway": "not an object", "skills": {"entries": []}, "agents": 3}),
        json!([1, 2]),
        json!({}),
    ];
    for (i, sample) in samples.iter().enumerate() {
        let state = root.join(format!("state-{i}"));
        std::fs::create_dir_all(&state).unwrap();
        let original = serde_json::to_string(sample).unwrap();
        std::fs::write(state.join("openclaw.json"), &original).unwrap();
        prepare(&node, &etc, &state);
        let got = std::fs::read_to_string(state.join("openclaw.json")).unwrap();
        assert_eq!(
            got,
            to_file_text(&merge_owned(sample, &config).value),
            "sample {i}"
        );
        // Merged once, the file is left byte for byte on the next boot.
        let customer = format!(
            "{}\n",
            serde_json::to_string(&parse(&got).unwrap()).unwrap()
        );
        std::fs::write(state.join("openclaw.json"), &customer).unwrap();
        prepare(&node, &etc, &state);
        assert_eq!(
            std::fs::read_to_string(state.join("openclaw.json")).unwrap(),
            customer,
            "sample {i} was rewritten although no owned field differed"
        );
    }

    let missing = root.join("state-missing");
    prepare(&node, &etc, &missing);
    let created = missing.join("openclaw.json");
    assert_eq!(
        std::fs::read_to_string(&created).unwrap(),
        config.render_new()
    );
    assert_eq!(
        std::fs::metadata(&created).unwrap().permissions().mode() & 0o777,
        0o600
    );

    let json5 = root.join("state-json5");
    std::fs::create_dir_all(&json5).unwrap();
    let text = "{ // a customer's comment\n  gateway: {port: 1} }\n";
    std::fs::write(json5.join("openclaw.json"), text).unwrap();
    prepare(&node, &etc, &json5);
    assert_eq!(
        std::fs::read_to_string(json5.join("openclaw.json")).unwrap(),
        text
    );
    std::fs::remove_dir_all(&root).unwrap();
}

#[test]
fn the_boot_step_writes_identity_by_decide_identity_and_installs_the_skill() {
    let node = node_binary();
    let root = temp_dir("identity");
    let etc = root.join("etc");
    let state = root.join("state");
    std::fs::create_dir_all(&etc).unwrap();
    let config = owned(&["127.0.0.1/32"], true);
    let identity = state.join("workspace/IDENTITY.md");
    let record = state.join(".openclaws/identity.sha256");
    let hash_of = |path: &Path| std::fs::read(path).ok().map(|b| content_hash(&b));
    let recorded = || {
        std::fs::read_to_string(&record)
            .ok()
            .map(|s| s.trim().to_owned())
    };

    // Each step: (spec name, what the customer's file is before the boot).
    let customer_edit = "# IDENTITY.md\n- **Name:** Bob (my own)\n";
    let steps: [(&str, Option<Option<&str>>); 6] = [
        ("Ada", None),                      // missing: created
        ("Ada", Some(Some(customer_edit))), // customer edit, same spec: kept
        ("Ada", None),                      // same again: still kept
        ("Grace", None),                    // spec changed: written over the edit
        ("Grace", Some(None)),              // deleted by the customer: created again
        ("Hopper", None),                   // spec changed, file ours: written
    ];
    for (i, (name, edit)) in steps.iter().enumerate() {
        deliver(&etc, &config, name);
        match edit {
            Some(Some(text)) => std::fs::write(&identity, text).unwrap(),
            Some(None) => std::fs::remove_file(&identity).unwrap(),
            None => {}
        }
        let desired = content_hash(identity_md(name).as_bytes());
        let expected = decide_identity(
            recorded().as_deref(),
            hash_of(&identity).as_deref(),
            &desired,
        );
        let before = std::fs::read_to_string(&identity).ok();
        prepare(&node, &etc, &state);
        let after = std::fs::read_to_string(&identity).unwrap();
        match expected.action {
            FileAction::Write => assert_eq!(after, identity_md(name), "step {i}"),
            FileAction::Leave => assert_eq!(Some(after), before, "step {i}"),
        }
        assert_eq!(recorded(), expected.record, "step {i}");
    }
    assert_eq!(
        std::fs::read_to_string(&identity).unwrap(),
        identity_md("Hopper")
    );

    // Adopted: a file we never wrote stays, and the desired content becomes the baseline.
    std::fs::remove_file(&record).unwrap();
    std::fs::write(&identity, customer_edit).unwrap();
    prepare(&node, &etc, &state);
    assert_eq!(std::fs::read_to_string(&identity).unwrap(), customer_edit);
    assert_eq!(
        recorded(),
        Some(content_hash(identity_md("Hopper").as_bytes()))
    );

    assert_eq!(
        std::fs::read_to_string(state.join(SKILL_PATH)).unwrap(),
        composio_skill_md()
    );
    let bridge = state.join(BRIDGE_PATH);
    assert_eq!(
        std::fs::read_to_string(&bridge).unwrap(),
        composio_exec_script()
    );
    assert_eq!(
        std::fs::metadata(&bridge).unwrap().permissions().mode() & 0o777,
        0o755
    );
    std::fs::remove_dir_all(&root).unwrap();
}

/// Polls `check` until it returns `Some` or the deadline passes.
async fn eventually<T, F, Fut>(what: &str, deadline: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let end = tokio::time::Instant::now() + deadline;
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(
            tokio::time::Instant::now() < end,
            "{what} did not happen within {deadline:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

struct Machine<'a> {
    sim: &'a TestSim,
    app: String,
    id: String,
    proxy_port: u16,
}

impl Machine<'_> {
    fn path(&self, rest: &str) -> String {
        format!("/v1/apps/{}/machines/{}{rest}", self.app, self.id)
    }

    async fn state(&self) -> String {
        self.sim.get(&self.path("")).await.body["state"]
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }

    async fn process(&self) -> Option<Value> {
        let resp = self
            .sim
            .control(
                Method::GET,
                &format!("/_sim/machines/{}/process", self.id),
                None,
            )
            .await;
        resp.status.is_success().then_some(resp.body)
    }

    fn health(&self) -> HealthClient {
        let http = reqwest::Client::builder()
            .resolve(HOST, ([127, 0, 0, 1], self.proxy_port).into())
            .timeout(Duration::from_secs(5))
            .build()
            .unwrap();
        HealthClient::with_http(http, format!("http://{HOST}:{}", self.proxy_port))
    }

    /// Waits until the gateway answers ready through the proxy.
    async fn ready(&self) -> Duration {
        let started = Instant::now();
        let health = self.health();
        eventually(
            "the gateway ready through the proxy",
            BOOT_DEADLINE,
            || async {
                match health.readyz().await {
                    Ok(r) if r.ready => Some(()),
                    _ => None,
                }
            },
        )
        .await;
        started.elapsed()
    }

    /// Runs a command in the machine through the Fly exec API.
    async fn exec(&self, command: &[&str]) -> (i64, String) {
        let resp = self
            .sim
            .post(
                &self.path("/exec"),
                json!({"command": command, "timeout": 60}),
            )
            .await;
        assert!(
            resp.status.is_success(),
            "exec {command:?}: {:?}",
            resp.body
        );
        if resp.body["exit_code"] != 0 {
            eprintln!("exec {command:?}: {}", resp.body);
        }
        (
            resp.body["exit_code"].as_i64().unwrap_or(-1),
            resp.body["stdout"].as_str().unwrap_or_default().to_owned(),
        )
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_process_machine_runs_the_real_gateway_through_its_lifecycle() {
    let _slot = openclaws_testkit::openclaw::gateway_slot();
    let wrapper = install_openclaw();
    let root = temp_dir("machines");
    let mut config = TestSim::config(0.1);
    config.rate_limits.enabled = false;
    config.machines = MachineMode::Process(ProcessSettings {
        root: root.clone(),
        openclaw_bin: wrapper,
    });
    let sim = TestSim::start_with(config).await;
    let proxy_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let proxy_port = proxy_listener.local_addr().unwrap().port();
    let stop_proxy = CancellationToken::new();
    tokio::spawn(serve_proxy(
        proxy_listener,
        sim.sim.clone(),
        ProxySettings::default(),
        stop_proxy.clone(),
    ));

    // An app with a volume, secrets and a certificate for its public hostname.
    let app = "oc-acme".to_owned();
    sim.app(&app).await;
    sim.public_address(&app).await;
    let volume = sim.volume(&app).await;
    let token = format!("test-token-{}", DeviceIdentity::generate().device_id());
    let secrets = sim
        .post(
            &format!("/v1/apps/{app}/secrets"),
            json!({"values": {
                "OPENCLAW_GATEWAY_TOKEN": token,
                "COMPOSIO_API_KEY": "test-composio-key",
                "COMPOSIO_ENTITY_ID": "cust-42",
            }}),
        )
        .await;
    assert!(secrets.status.is_success(), "{:?}", secrets.body);
    let cert = sim
        .post(
            &format!("/v1/apps/{app}/certificates/acme"),
            json!({"hostname": HOST}),
        )
        .await;
    assert!(cert.status.is_success(), "{:?}", cert.body);

    // The customer's file already on the volume: keys that keep the gateway off the network.
    let volume_dir = root.join("volumes").join(&volume);
    std::fs::create_dir_all(&volume_dir).unwrap();
    let customer = json!({
        "update": {"checkOnStart": false},
        "discovery": {"mdns": {"mode": "off"}},
        "models": {"catalogRefresh": {"enabled": false}},
    });
    std::fs::write(volume_dir.join("openclaw.json"), to_file_text(&customer)).unwrap();

    // The machine: the controller's shape plus the boot bundle.
    let desired = owned(&["127.0.0.1/32"], true);
    let bundle = boot_bundle(&BundleInput {
        owned: &desired,
        identity_name: "Ada",
        composio: &Default::default(),
    });
    let mut machine_config = MachineConfig {
        image: "ghcr.io/openclaw/openclaw:2026.9.6".to_owned(),
        mounts: vec![Mount {
            volume: volume.clone(),
            path: "/data".to_owned(),
            ..Mount::default()
        }],
        restart: Some(RestartPolicy {
            policy: "no".to_owned(),
            max_retries: None,
        }),
        ..MachineConfig::default()
    };
    openclaws_engine::reconcile::desired::apply_bundle(&bundle, &mut machine_config);
    let created_at = Instant::now();
    let created = sim
        .post(
            &format!("/v1/apps/{app}/machines"),
            json!({"name": "gateway", "region": "iad", "config": machine_config}),
        )
        .await;
    assert!(created.status.is_success(), "{:?}", created.body);
    let machine = Machine {
        sim: &sim,
        app: app.clone(),
        id: created.body["id"].as_str().unwrap().to_owned(),
        proxy_port,
    };
    assert_eq!(
        created.body["config"]["metadata"]["openclaws_bundle_hash"],
        bundle.bundle_hash
    );

    // 1. It boots the real gateway, reachable through the proxy (trustedProxies covers it).
    machine.ready().await;
    let boot_time = created_at.elapsed();
    eprintln!(
        "process-mode gateway ready through the proxy {:.1} s after create",
        boot_time.as_secs_f64()
    );
    let process = machine.process().await.expect("a running process");
    let machine_dir = PathBuf::from(process["machine_dir"].as_str().unwrap());
    assert_eq!(
        PathBuf::from(process["volume_dir"].as_str().unwrap()),
        volume_dir
    );
    assert!(machine_dir
        .join("rootfs")
        .join(BOOT_SCRIPT_PATH.trim_start_matches('/'))
        .is_file());
    assert!(machine_dir
        .join("rootfs")
        .join(BUNDLE_JSON_PATH.trim_start_matches('/'))
        .is_file());

    // 2. The file: merged by the boot step, accepted by openclaw, not rewritten by the gateway.
    let expected = to_file_text(&merge_owned(&customer, &desired).value);
    let config_path = volume_dir.join("openclaw.json");
    assert_eq!(std::fs::read_to_string(&config_path).unwrap(), expected);
    let (code, stdout) = machine
        .exec(&[
            "sh",
            "-c",
            "node \"$OPENCLAWS_GATEWAY_ENTRY\" config validate --json",
        ])
        .await;
    assert_eq!(code, 0, "{stdout}");
    let report: Value = serde_json::from_str(stdout.trim()).unwrap();
    assert_eq!(report["valid"], true, "{report}");
    assert_eq!(report["warnings"], json!([]), "{report}");
    assert_eq!(
        report["path"].as_str().map(PathBuf::from),
        Some(config_path.clone())
    );

    // 3. IDENTITY.md in the workspace the gateway uses.
    assert_eq!(
        std::fs::read_to_string(volume_dir.join("workspace/IDENTITY.md")).unwrap(),
        identity_md("Ada")
    );

    // 4. The Composio skill is eligible: the bridge is on the gateway's PATH (the exec's PATH
    // does not have it; the CLI asks the running gateway).
    let (code, stdout) = machine
        .exec(&[
            "sh",
            "-c",
            "node \"$OPENCLAWS_GATEWAY_ENTRY\" skills list --json",
        ])
        .await;
    assert_eq!(code, 0, "{stdout}");
    let listing: Value = serde_json::from_str(stdout.trim()).unwrap();
    assert_eq!(
        listing["workspaceDir"].as_str().map(PathBuf::from),
        Some(volume_dir.join("workspace"))
    );
    let composio = listing["skills"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == "composio")
        .unwrap_or_else(|| panic!("composio not listed: {listing}"))
        .clone();
    assert_eq!(composio["eligible"], true, "{composio}");
    assert_eq!(composio["source"], "openclaw-managed", "{composio}");

    // 5. A device through the proxy is remote: it gets a pending pairing request (the
    // WebSocket upgrade passes the proxy, and the gateway believes its X-Forwarded-For).
    let mut options =
        ConnectOptions::controller(format!("ws://127.0.0.1:{proxy_port}"), token.clone());
    options.headers = vec![("Host".to_owned(), HOST.to_owned())];
    let err = GatewayClient::connect(&options, Some(&DeviceIdentity::generate()))
        .await
        .unwrap_err();
    assert!(matches!(err, ClientError::PairingRequired(_)), "{err:?}");
    assert_eq!(std::fs::read_to_string(&config_path).unwrap(), expected);

    // 6. Stop ends the process (and its gateway child).
    let boot_pid = process["pid"].as_u64().unwrap() as u32;
    let gateway_pids = children(boot_pid);
    assert!(
        !gateway_pids.is_empty(),
        "the boot step has no gateway child"
    );
    let stopped = sim.post(&machine.path("/stop"), json!({})).await;
    assert!(stopped.status.is_success(), "{:?}", stopped.body);
    eventually(
        "the processes end after stop",
        Duration::from_secs(30),
        || async { (!alive(boot_pid) && gateway_pids.iter().all(|p| !alive(*p))).then_some(()) },
    )
    .await;
    eventually("the machine stopped", Duration::from_secs(30), || async {
        (machine.state().await == "stopped").then_some(())
    })
    .await;
    // The supervisor forgets the process once it has reaped it, a moment after the pids are
    // gone (under load the machine can read `stopped` first).
    eventually("no process on record", Duration::from_secs(10), || async {
        machine.process().await.is_none().then_some(())
    })
    .await;

    // 7. While stopped: the customer adds a key and edits IDENTITY.md, someone changes an owned
    // field out of band. The next boot restores the owned field and keeps the rest.
    let mut edited = parse(&std::fs::read_to_string(&config_path).unwrap()).unwrap();
    edited["gateway"]["reload"] = json!({"mode": "hybrid"});
    edited["gateway"]["trustedProxies"] = json!(["10.0.0.0/8"]);
    std::fs::write(&config_path, to_file_text(&edited)).unwrap();
    let identity_edit = "# IDENTITY.md\n\n- **Name:** Ada (the customer's words)\n";
    std::fs::write(volume_dir.join("workspace/IDENTITY.md"), identity_edit).unwrap();
    let start_at = Instant::now();
    eventually(
        "the machine starts again",
        Duration::from_secs(30),
        || async {
            sim.post(&machine.path("/start"), json!({}))
                .await
                .status
                .is_success()
                .then_some(())
        },
    )
    .await;
    machine.ready().await;
    eprintln!(
        "process-mode gateway ready again {:.1} s after start",
        start_at.elapsed().as_secs_f64()
    );
    let after = parse(&std::fs::read_to_string(&config_path).unwrap()).unwrap();
    assert_eq!(after["gateway"]["reload"], json!({"mode": "hybrid"}));
    assert_eq!(after["gateway"]["trustedProxies"], json!(["127.0.0.1/32"]));
    assert_eq!(after, merge_owned(&edited, &desired).value);
    assert_eq!(
        std::fs::read_to_string(volume_dir.join("workspace/IDENTITY.md")).unwrap(),
        identity_edit
    );

    // 8. Killing the gateway ends the boot step with its status; the machine leaves `started`
    // (restart policy `no`: stopped) with an exit event.
    let process = machine.process().await.expect("a running process again");
    let boot_pid = process["pid"].as_u64().unwrap() as u32;
    let gateway_pid = *children(boot_pid).first().expect("a gateway child");
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(gateway_pid as i32),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    eventually(
        "the machine leaves started",
        Duration::from_secs(30),
        || async { (machine.state().await == "stopped").then_some(()) },
    )
    .await;
    let events = sim.get(&machine.path("/events")).await.body;
    let exit = events
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["type"] == "exit")
        .unwrap_or_else(|| panic!("no exit event: {events}"))
        .clone();
    assert_eq!(exit["request"]["exit_event"]["exit_code"], 137, "{exit}");
    assert!(!alive(boot_pid));

    // 9. Destroy removes the machine's directory; deleting the volume removes its directory.
    let destroyed = sim.delete(&machine.path("")).await;
    assert!(destroyed.status.is_success(), "{:?}", destroyed.body);
    eventually(
        "the machine directory is removed",
        Duration::from_secs(30),
        || async { (!machine_dir.exists()).then_some(()) },
    )
    .await;
    assert!(volume_dir.join("openclaw.json").exists());
    eventually("the volume is deleted", Duration::from_secs(30), || async {
        sim.delete(&format!("/v1/apps/{app}/volumes/{volume}"))
            .await
            .status
            .is_success()
            .then_some(())
    })
    .await;
    eventually(
        "the volume directory is removed",
        Duration::from_secs(30),
        || async { (!volume_dir.exists()).then_some(()) },
    )
    .await;
    stop_proxy.cancel();
    let _ = std::fs::remove_dir_all(&root);
}

/// The simulator keeps its own copy of the boot-bundle/image contract (it does not depend on the
/// gateway crate); the two must agree.
#[test]
fn the_simulators_boot_contract_matches_the_gateway_bundle() {
    assert_eq!(
        fly_sim::process::ENTRY_ENV,
        openclaws_gateway::bundle::ENTRY_ENV
    );
    assert_eq!(
        fly_sim::process::PORT_ENV,
        openclaws_gateway::bundle::PORT_ENV
    );
    assert_eq!(
        fly_sim::process::BIND_ENV,
        openclaws_gateway::bundle::BIND_ENV
    );
    assert_eq!(
        fly_sim::process::DEFAULT_OPENCLAW_VERSION,
        openclaws_gateway::VERIFIED_OPENCLAW_VERSION
    );
}
