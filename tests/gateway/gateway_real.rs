//! The gateway module against a real OpenClaw gateway (the version `scripts/install-openclaw.sh`
//! pins), started once for all tests in this file in a throwaway state directory seeded with
//! the controller's rendered config and files.
//!
//! Remote clients are simulated the way fly-proxy makes them remote: the gateway trusts
//! `127.0.0.1/32` as a proxy, and clients send `X-Forwarded-For` with a public address.
//!
//! The gateway takes 10–16 s and about 1 GB to boot, hence one per test binary. A `static` is
//! never dropped, so the gateway is spawned from a thread that lives as long as the test process,
//! with the kernel's parent-death signal (SIGKILL) set: when the test binary exits, it dies, and
//! its helper processes follow it.

use openclaws_gateway::client::{ClientError, ConnectOptions, GatewayClient};
use openclaws_gateway::config::{
    merge_owned, owned_hash, parse, to_file_text, BindMode, OwnedConfig,
};
use openclaws_gateway::files::{
    composio_exec_script, composio_skill_md, identity_md, BRIDGE_PATH, IDENTITY_PATH, SKILL_PATH,
};
use openclaws_gateway::health::{HealthClient, HealthError};
use openclaws_gateway::identity::DeviceIdentity;
use openclaws_gateway::protocol::{ClientInfo, SCOPE_PAIRING, SCOPE_READ, SCOPE_WRITE};
use openclaws_gateway::GATEWAY_TOKEN_ENV;
use openclaws_testkit::composio::{FakeComposio, ToolAnswer};
use openclaws_testkit::openclaw::install_openclaw;
use openclaws_testkit::process::free_port;
use serde_json::{json, Value};
use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

const ORIGIN: &str = "https://acme.openclaws.test";
const BOOT_DEADLINE: Duration = Duration::from_secs(120);

struct Gateway {
    openclaw: PathBuf,
    state: PathBuf,
    port: u16,
    token: String,
    seeded: String,
    boot_time: Duration,
}

impl Gateway {
    fn ws_url(&self) -> String {
        format!("ws://127.0.0.1:{}", self.port)
    }

    fn http_base(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    fn config_path(&self) -> PathBuf {
        self.state.join("openclaw.json")
    }

    /// The environment the gateway runs with; CLI calls get the same (as a Fly exec would).
    fn env(&self, command: &mut Command) {
        for (key, _) in std::env::vars() {
            if key.starts_with("OPENCLAW_") {
                command.env_remove(key);
            }
        }
        let path = format!(
            "{}:{}",
            self.state.join("bin").display(),
            std::env::var("PATH").unwrap_or_default()
        );
        command
            .env("OPENCLAW_STATE_DIR", &self.state)
            .env(GATEWAY_TOKEN_ENV, &self.token)
            .env("HOME", self.state.join("home"))
            .env("DO_NOT_TRACK", "1")
            .env("PATH", path);
    }

    /// Runs the openclaw CLI in the gateway's environment and returns (success, stdout).
    fn cli(&self, args: &[&str]) -> (bool, String) {
        let mut command = Command::new(&self.openclaw);
        self.env(&mut command);
        let output = command
            .args(args)
            .stdin(Stdio::null())
            .output()
            .expect("run openclaw");
        let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
        if !output.status.success() {
            eprintln!(
                "openclaw {args:?} failed ({}): {stdout}\n{}",
                output.status,
                String::from_utf8_lossy(&output.stderr)
            );
        }
        (output.status.success(), stdout)
    }

    fn log_tail(&self) -> String {
        let log = std::fs::read_to_string(self.state.join("gateway.log")).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(30)..].join("\n")
    }
}

fn gateway() -> &'static Gateway {
    static GATEWAY: OnceLock<Gateway> = OnceLock::new();
    GATEWAY.get_or_init(|| {
        // Booting is what costs; once up, the shared gateway idles between requests.
        let _slot = openclaws_testkit::openclaw::gateway_slot();
        start_gateway()
    })
}

/// A fresh state directory under cargo's per-target temp dir; leftovers of earlier runs whose
/// process is gone are removed.
fn state_dir() -> PathBuf {
    let root = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
    if let Ok(entries) = std::fs::read_dir(&root) {
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if let Some(pid) = name.strip_prefix("gateway_real-") {
                if !Path::new("/proc").join(pid).exists() {
                    let _ = std::fs::remove_dir_all(entry.path());
                }
            }
        }
    }
    let dir = root.join(format!("gateway_real-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("home")).unwrap();
    dir
}

fn owned_config(state: &Path, port: u16) -> OwnedConfig {
    OwnedConfig {
        bind: BindMode::Loopback,
        port,
        allowed_origins: vec![ORIGIN.to_owned()],
        trusted_proxies: vec!["127.0.0.1/32".to_owned()],
        model_primary: "anthropic/claude-sonnet-4-6".to_owned(),
        model_fallbacks: vec![],
        workspace: state.join("workspace").display().to_string(),
        agent_name: "Ada".to_owned(),
        anthropic_base_url: Some("http://127.0.0.1:9/anthropic".to_owned()),
        composio_enabled: true,
    }
}

/// Seeds the state directory as the boot step on a machine would: the owned fields merged into
/// a customer's file (keys the gateway must keep off the network, owned by the customer), the
/// identity, the skill and the bridge.
fn seed(state: &Path, port: u16) -> String {
    let customer = json!({
        "update": {"checkOnStart": false},
        "discovery": {"mdns": {"mode": "off"}},
        "models": {"catalogRefresh": {"enabled": false}},
        "gateway": {"port": 1, "reload": {"mode": "hybrid"}}
    });
    let text = to_file_text(&merge_owned(&customer, &owned_config(state, port)).value);
    std::fs::write(state.join("openclaw.json"), &text).unwrap();
    let write = |relative: &str, content: &str| {
        let path = state.join(relative);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, content).unwrap();
        path
    };
    write(IDENTITY_PATH, &identity_md("Ada"));
    write(SKILL_PATH, composio_skill_md());
    let bridge = write(BRIDGE_PATH, composio_exec_script());
    std::fs::set_permissions(bridge, std::fs::Permissions::from_mode(0o755)).unwrap();
    text
}

fn start_gateway() -> Gateway {
    let openclaw = install_openclaw();
    let state = state_dir();
    let port = free_port();
    let token = format!("test-token-{}", DeviceIdentity::generate().device_id());
    let seeded = seed(&state, port);
    let mut gateway = Gateway {
        openclaw,
        state,
        port,
        token,
        seeded,
        boot_time: Duration::ZERO,
    };
    let log = std::fs::File::create(gateway.state.join("gateway.log")).unwrap();
    let mut command = Command::new(&gateway.openclaw);
    gateway.env(&mut command);
    command
        .arg("gateway")
        .stdin(Stdio::null())
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .process_group(0);
    // SAFETY: only the async-signal-safe prctl call runs between fork and exec.
    unsafe {
        command.pre_exec(|| {
            nix::sys::prctl::set_pdeathsig(nix::sys::signal::Signal::SIGKILL)
                .map_err(std::io::Error::from)
        });
    }
    let started = Instant::now();
    let mut child = spawn_from_lasting_thread(command);
    let deadline = started + BOOT_DEADLINE;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            panic!(
                "the gateway exited during boot ({status}):\n{}",
                gateway.log_tail()
            );
        }
        if http_status(port, "/readyz") == Some(200) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the gateway was not ready within {BOOT_DEADLINE:?}:\n{}",
            gateway.log_tail()
        );
        std::thread::sleep(Duration::from_millis(250));
    }
    gateway.boot_time = started.elapsed();
    eprintln!(
        "gateway ready on port {port} after {:.1} s (pid {})",
        gateway.boot_time.as_secs_f64(),
        child.id()
    );
    gateway
}

/// Spawns from a thread that never ends, because the parent-death signal follows the thread
/// that forked, not the process.
fn spawn_from_lasting_thread(mut command: Command) -> Child {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        tx.send(command.spawn().expect("spawn openclaw gateway"))
            .unwrap();
        loop {
            std::thread::park();
        }
    });
    rx.recv().unwrap()
}

/// Status code of a plain HTTP GET on loopback, or `None` if the gateway does not answer yet.
fn http_status(port: u16, path: &str) -> Option<u16> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut head = [0u8; 12];
    stream.read_exact(&mut head).ok()?;
    std::str::from_utf8(&head[9..12]).ok()?.parse().ok()
}

/// Headers a proxy like fly-proxy adds for a client at `client_ip`.
fn forwarded(client_ip: &str) -> Vec<(String, String)> {
    vec![
        ("X-Forwarded-For".to_owned(), client_ip.to_owned()),
        ("X-Forwarded-Proto".to_owned(), "https".to_owned()),
        (
            "X-Forwarded-Host".to_owned(),
            ORIGIN.trim_start_matches("https://").to_owned(),
        ),
    ]
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

#[test]
fn openclaw_accepts_the_seeded_config() {
    let gw = gateway();
    let (ok, stdout) = gw.cli(&["config", "validate", "--json"]);
    assert!(ok, "config validate failed: {stdout}");
    let report: Value = serde_json::from_str(stdout.trim()).expect("validate prints JSON");
    assert_eq!(report["valid"], true, "{report}");
    assert_eq!(report["warnings"], json!([]), "{report}");
}

#[test]
fn the_gateway_does_not_rewrite_the_seeded_config() {
    let gw = gateway();
    let now = std::fs::read_to_string(gw.config_path()).unwrap();
    assert_eq!(now, gw.seeded, "the gateway rewrote openclaw.json at boot");
    assert_eq!(
        owned_hash(&parse(&now).unwrap()),
        owned_config(&gw.state, gw.port).hash()
    );
    assert!(!gw.config_path().with_extension("json.bak").exists());
}

#[tokio::test]
async fn health_probes_report_ready_and_started() {
    let gw = gateway();
    let health = HealthClient::new(gw.http_base()).unwrap();
    let ready = health.readyz().await.unwrap();
    assert!(ready.ready, "{ready:?}");
    assert!(ready.failing.is_empty(), "{ready:?}");
    let startup = health.startupz().await.unwrap();
    assert!(startup.started(), "{startup:?}");
}

#[tokio::test]
async fn forwarded_headers_from_an_untrusted_proxy_are_refused_with_their_own_error() {
    let gw = gateway();
    let mut headers = reqwest::header::HeaderMap::new();
    headers.insert("x-forwarded-for", "203.0.113.50".parse().unwrap());
    let http = reqwest::Client::builder()
        .local_address(IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2)))
        .default_headers(headers)
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap();
    let untrusted = HealthClient::with_http(http, gw.http_base());
    let err = untrusted.readyz().await.unwrap_err();
    assert!(
        matches!(err, HealthError::ProxyAttributionRequired),
        "{err:?}"
    );
}

#[test]
fn the_composio_skill_is_eligible_with_the_bridge_on_the_gateways_path() {
    let gw = gateway();
    let (ok, stdout) = gw.cli(&["skills", "list", "--json"]);
    assert!(ok, "skills list failed: {stdout}");
    let listing: Value = serde_json::from_str(stdout.trim()).expect("skills list prints JSON");
    let skills = listing["skills"]
        .as_array()
        .or_else(|| listing.as_array())
        .unwrap_or_else(|| panic!("no skills array in {listing}"));
    let composio = skills
        .iter()
        .find(|s| s["name"] == "composio")
        .unwrap_or_else(|| panic!("composio not listed: {listing}"));
    assert_eq!(composio["eligible"], true, "{composio}");
    assert_eq!(composio["source"], "openclaw-managed", "{composio}");
}

#[tokio::test]
async fn the_controller_pairs_once_then_lists_and_approves_a_remote_device() {
    let gw = gateway();

    // 1. The controller's identity, remote like through fly-proxy, gets a pending request...
    let controller = DeviceIdentity::generate();
    let mut controller_options = ConnectOptions::controller(gw.ws_url(), gw.token.clone());
    controller_options.headers = forwarded("203.0.113.10");
    let err = GatewayClient::connect(&controller_options, Some(&controller))
        .await
        .unwrap_err();
    let ClientError::PairingRequired(request) = err else {
        panic!("expected a pending pairing request, got {err:?}")
    };
    assert_eq!(request.device_id, controller.device_id());

    // 2. ...approved once by the local CLI in the gateway's environment (the one-time Fly exec).
    let (ok, stdout) = gw.cli(&["devices", "approve", &request.request_id, "--json"]);
    assert!(ok, "devices approve failed: {stdout}");

    // 3. From then on the controller connects remotely with the scopes it asked for.
    let admin = GatewayClient::connect(&controller_options, Some(&controller))
        .await
        .expect("the paired controller connects");
    assert!(
        admin.granted_scopes().iter().any(|s| s == SCOPE_PAIRING),
        "{:?}",
        admin.granted_scopes()
    );

    // 4. A customer's browser (Control UI) arriving through the proxy gets a pending request.
    let device = DeviceIdentity::generate();
    let device_options = ConnectOptions {
        client: ClientInfo {
            id: "openclaw-control-ui".to_owned(),
            version: "0.0.0-test".to_owned(),
            platform: "web".to_owned(),
            mode: "webchat".to_owned(),
            display_name: Some("test browser".to_owned()),
            device_family: None,
            build_id: None,
        },
        scopes: vec![SCOPE_READ.to_owned(), SCOPE_WRITE.to_owned()],
        headers: [
            vec![("Origin".to_owned(), ORIGIN.to_owned())],
            forwarded("198.51.100.23"),
        ]
        .concat(),
        ..ConnectOptions::controller(gw.ws_url(), gw.token.clone())
    };
    let err = GatewayClient::connect(&device_options, Some(&device))
        .await
        .unwrap_err();
    let ClientError::PairingRequired(device_request) = err else {
        panic!("expected a pending pairing request, got {err:?}")
    };

    // 5. The controller sees it with device.pair.list...
    let listed = eventually("the request appears", Duration::from_secs(10), || async {
        let list = admin.pair_list().await.unwrap();
        list.pending
            .into_iter()
            .find(|p| p.request_id == device_request.request_id)
    })
    .await;
    assert_eq!(listed.device_id, device.device_id());
    assert_eq!(listed.client_id.as_deref(), Some("openclaw-control-ui"));
    assert_eq!(listed.remote_ip.as_deref(), Some("198.51.100.23"));

    // 6. ...and approves it with device.pair.approve.
    let approved = admin.pair_approve(&listed.request_id).await.unwrap();
    assert_eq!(approved.request_id, listed.request_id);
    assert_eq!(approved.device.device_id, device.device_id());
    let list = admin.pair_list().await.unwrap();
    assert!(list
        .pending
        .iter()
        .all(|p| p.request_id != listed.request_id));
    assert!(list
        .paired
        .iter()
        .any(|p| p.device_id == device.device_id()));

    // 7. The device now connects with the scopes it asked for.
    let browser = GatewayClient::connect(&device_options, Some(&device))
        .await
        .expect("the approved device connects");
    let mut scopes = browser.granted_scopes().to_vec();
    scopes.sort();
    assert_eq!(scopes, vec![SCOPE_READ, SCOPE_WRITE]);
    browser.close().await;
    admin.close().await;

    // Pairing activity does not touch the config file either.
    let now = std::fs::read_to_string(gw.config_path()).unwrap();
    assert_eq!(now, gw.seeded, "openclaw.json changed during pairing");
}

/// Runs the installed bridge against `composio` with `args`, pinning gmail's toolkit.
async fn run_bridge(gw: &Gateway, composio: &FakeComposio, args: &[&str]) -> (i32, Value) {
    let mut command = Command::new(gw.state.join(BRIDGE_PATH));
    gw.env(&mut command);
    let path = format!(
        "{}:{}",
        node_bin_dir(&gw.openclaw).display(),
        std::env::var("PATH").unwrap_or_default()
    );
    command
        .env("PATH", path)
        .env("COMPOSIO_API_KEY", "test-composio-key")
        .env("COMPOSIO_ENTITY_ID", "cust-42")
        .env("COMPOSIO_API_BASE", composio.api_base())
        .env("COMPOSIO_TOOLKIT_VERSIONS", "gmail=20250930_00")
        .args(args);
    let output = tokio::process::Command::from(command)
        .output()
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(!stdout.contains("test-composio-key"), "{stdout}");
    let answer = serde_json::from_str(&stdout).unwrap_or_else(|_| {
        panic!(
            "{}: {stdout} {}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        )
    });
    (output.status.code().unwrap_or(-1), answer)
}

/// The bridge calls Composio's published tool-execution API (`/api/v3`, `x-api-key`,
/// `user_id`, `arguments`) with the pinned toolkit version, or none (Composio's base version)
/// for a toolkit not pinned, never `latest`; a tool that fails exits 1; a listing asks for the
/// pinned version in Composio's bracket notation.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_bridge_calls_composios_tool_execution_api_for_the_customer() {
    let gw = tokio::task::spawn_blocking(gateway).await.unwrap();
    let composio = FakeComposio::start("test-composio-key").await;
    composio.tool("GMAIL_SEND_EMAIL", ToolAnswer::Data(json!({"id": "m-1"})));
    composio.tool(
        "GITHUB_GET_ME",
        ToolAnswer::Fails("No connected account".into()),
    );

    let (code, answer) = run_bridge(
        gw,
        &composio,
        &[
            "GMAIL_SEND_EMAIL",
            r#"{"recipient_email":"ada@example.com"}"#,
        ],
    )
    .await;
    assert_eq!(
        (code, &answer["data"]["id"]),
        (0, &json!("m-1")),
        "{answer}"
    );
    let sent = &composio.executions()[0];
    assert_eq!(sent.tool_slug, "GMAIL_SEND_EMAIL");
    assert_eq!(sent.api_key, "test-composio-key");
    assert_eq!(sent.user_id(), Some("cust-42"));
    assert_eq!(sent.version(), Some("20250930_00"));
    assert_eq!(
        sent.body["arguments"],
        json!({"recipient_email": "ada@example.com"})
    );

    let (code, answer) = run_bridge(gw, &composio, &["GITHUB_GET_ME"]).await;
    assert_eq!(
        (code, &answer["successful"]),
        (1, &json!(false)),
        "{answer}"
    );
    let unpinned = &composio.executions()[1];
    assert_eq!(unpinned.version(), None, "{}", unpinned.body);
    assert_eq!(unpinned.answered, 200);

    let (code, answer) = run_bridge(gw, &composio, &["--list", "gmail"]).await;
    assert_eq!(code, 0, "{answer}");
    assert_eq!(answer["items"][0]["slug"], "GMAIL_SEND_EMAIL");
    let query = &composio.listings()[0].query;
    assert!(
        query.contains(&("toolkit_slug".into(), "gmail".into())),
        "{query:?}"
    );
    assert!(
        query.contains(&("toolkit_versions[gmail]".into(), "20250930_00".into())),
        "{query:?}"
    );
}

/// The pinned Node next to the installed openclaw (`<root>/node/node_modules/node-*/bin`).
fn node_bin_dir(openclaw: &Path) -> PathBuf {
    let modules = openclaw.parent().unwrap().join("../node/node_modules");
    std::fs::read_dir(&modules)
        .unwrap()
        .flatten()
        .map(|entry| entry.path().join("bin"))
        .find(|bin| bin.join("node").exists())
        .unwrap_or_else(|| panic!("no node under {}", modules.display()))
}
