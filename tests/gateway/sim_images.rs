//! What a machine's image runs in the simulator's process mode (`fly_sim::images`): a version
//! tag runs that version's install (2026.9.5 and 2026.9.6, both from `make openclaw`), an
//! update to another tag runs the other version on the same volume, a broken image crash-loops,
//! an unknown version fails the machine, and the OpenClaw image's own CMD and the legacy web
//! app's command serve through the simulator's proxy.

use fly_sim::proxy::{serve_proxy, ProxySettings};
use fly_sim::{MachineMode, ProcessSettings};
use openclaws_gateway::config::to_file_text;
use openclaws_testkit::openclaw::{
    gateway_slot, install_openclaw, install_openclaw_version, PREVIOUS_OPENCLAW_VERSION,
};
use openclaws_testkit::process::alive;
use openclaws_testkit::sim::TestSim;
use reqwest::Method;
use serde_json::{json, Value};
use std::path::PathBuf;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

const BOOT_DEADLINE: Duration = Duration::from_secs(150);
const CURRENT: &str = "2026.9.6";
/// What the legacy web app ran, as OpenClaw's Fly guide does.
const LEGACY_COMMAND: [&str; 8] = [
    "node",
    "dist/index.js",
    "gateway",
    "--allow-unconfigured",
    "--port",
    "3000",
    "--bind",
    "lan",
];

/// A simulator in process mode with its proxy.
struct ProcessSim {
    sim: TestSim,
    root: PathBuf,
    proxy_port: u16,
    stop: CancellationToken,
}

impl ProcessSim {
    async fn start(name: &str) -> Self {
        let root = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
            .join(format!("sim_images-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        let mut config = TestSim::config(0.1);
        config.rate_limits.enabled = false;
        config.machines = MachineMode::Process(ProcessSettings {
            root: root.clone(),
            openclaw_bin: install_openclaw(),
        });
        let sim = TestSim::start_with(config).await;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let proxy_port = listener.local_addr().unwrap().port();
        let stop = CancellationToken::new();
        tokio::spawn(serve_proxy(
            listener,
            sim.sim.clone(),
            ProxySettings::default(),
            stop.clone(),
        ));
        Self {
            sim,
            root,
            proxy_port,
            stop,
        }
    }

    /// An app with a volume whose `openclaw.json` keeps the gateway off the network (plus
    /// `extra` keys); answers the volume id.
    async fn app_with_volume(&self, app: &str, extra: Value) -> String {
        self.sim.app(app).await;
        self.sim.public_address(app).await;
        let volume = self.sim.volume(app).await;
        let dir = self.volume_dir(&volume);
        std::fs::create_dir_all(&dir).unwrap();
        let mut config = json!({
            "update": {"checkOnStart": false},
            "discovery": {"mdns": {"mode": "off"}},
            "models": {"catalogRefresh": {"enabled": false}},
        });
        config
            .as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        std::fs::write(dir.join("openclaw.json"), to_file_text(&config)).unwrap();
        volume
    }

    fn volume_dir(&self, volume: &str) -> PathBuf {
        self.root.join("volumes").join(volume)
    }

    /// Creates a machine and answers its id.
    async fn create(&self, app: &str, config: Value) -> String {
        let created = self
            .sim
            .post(
                &format!("/v1/apps/{app}/machines"),
                json!({"region": "iad", "config": config}),
            )
            .await;
        assert!(created.status.is_success(), "{:?}", created.body);
        created.body["id"].as_str().unwrap().to_owned()
    }

    async fn process(&self, id: &str) -> Option<Value> {
        let path = format!("/_sim/machines/{id}/process");
        let resp = self.sim.control(Method::GET, &path, None).await;
        resp.status.is_success().then_some(resp.body)
    }

    /// `GET /healthz` through the proxy, as `{app}.fly.dev`, until it answers 200.
    async fn healthy_through_proxy(&self, app: &str) -> Value {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(5))
            .build()
            .unwrap();
        let url = format!("http://127.0.0.1:{}/healthz", self.proxy_port);
        eventually("/healthz through the proxy", BOOT_DEADLINE, || async {
            let resp = http
                .get(&url)
                .header("host", format!("{app}.fly.dev"))
                .send()
                .await
                .ok()?;
            if !resp.status().is_success() {
                return None;
            }
            resp.json::<Value>().await.ok()
        })
        .await
    }

    /// The version the machine's running gateway reports on `/startupz` to a local caller
    /// (straight to its port), once it reports `want`.
    async fn reports_version(&self, id: &str, want: &str) -> Value {
        eventually(
            &format!("the gateway reports {want}"),
            BOOT_DEADLINE,
            || async {
                let port = self.process(id).await?["port"].as_u64()?;
                let url = format!("http://127.0.0.1:{port}/startupz");
                let body: Value = reqwest::get(&url).await.ok()?.json().await.ok()?;
                (body["version"] == want).then_some(body)
            },
        )
        .await
    }
}

impl ProcessSim {
    /// Destroys the machine and waits until its process group is gone, so its gateway does not
    /// outlive the test (the other tests of this binary count on the memory).
    async fn destroy(&self, app: &str, id: &str) {
        let pid = self.process(id).await.and_then(|p| p["pid"].as_u64());
        let path = format!("/v1/apps/{app}/machines/{id}?force=true");
        let destroyed = self.sim.delete(&path).await;
        assert!(destroyed.status.is_success(), "{:?}", destroyed.body);
        eventually(
            "the machine's process ends",
            Duration::from_secs(30),
            || async {
                let gone = pid.is_none_or(|p| !alive(p as u32));
                (gone && self.process(id).await.is_none()).then_some(())
            },
        )
        .await;
    }
}

impl Drop for ProcessSim {
    fn drop(&mut self) {
        self.stop.cancel();
    }
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

fn legacy_config(image: &str, volume: &str) -> Value {
    json!({
        "image": image,
        "init": {"cmd": LEGACY_COMMAND},
        "env": {"OPENCLAW_STATE_DIR": "/data"},
        "mounts": [{"volume": volume, "path": "/data"}],
        "restart": {"policy": "no"},
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_version_tag_runs_that_version_and_an_update_keeps_the_volume() {
    let _slot = gateway_slot();
    let previous = install_openclaw_version(PREVIOUS_OPENCLAW_VERSION);
    let host = ProcessSim::start("versions").await;
    let app = "oc-legacy";
    let volume = host.app_with_volume(app, json!({})).await;
    let image = |v: &str| format!("ghcr.io/openclaw/openclaw:{v}");
    let id = host
        .create(
            app,
            legacy_config(&image(PREVIOUS_OPENCLAW_VERSION), &volume),
        )
        .await;

    // The legacy command runs on 2026.9.5's install, in its package directory (`/app`), and
    // serves through the proxy on the machine's port although it asked for 3000 on lan.
    let health = host.healthy_through_proxy(app).await;
    assert_eq!(health["ok"], true, "{health}");
    host.reports_version(&id, PREVIOUS_OPENCLAW_VERSION).await;
    let process = host.process(&id).await.expect("a running process");
    let install_root = previous.parent().unwrap().parent().unwrap();
    let package_dir = install_root
        .canonicalize()
        .unwrap()
        .join("lib/node_modules/openclaw");
    assert_eq!(process["openclaw_dir"], json!(package_dir), "{process}");
    assert_eq!(process["workdir"], json!(package_dir), "{process}");
    assert_ne!(process["port"], 3000, "{process}");

    // A file the machine writes under its state directory (/data, mapped to the volume).
    let exec = host
        .sim
        .post(
            &format!("/v1/apps/{app}/machines/{id}/exec"),
            json!({
                "command": ["sh", "-c", "echo kept > \"$OPENCLAW_STATE_DIR/marker.txt\" && pwd"],
                "timeout": 30,
            }),
        )
        .await;
    assert_eq!(exec.body["exit_code"], 0, "{:?}", exec.body);
    assert_eq!(
        exec.body["stdout"].as_str().unwrap().trim(),
        package_dir.display().to_string()
    );
    let marker = host.volume_dir(&volume).join("marker.txt");
    assert_eq!(std::fs::read_to_string(&marker).unwrap(), "kept\n");
    let config_before =
        std::fs::read_to_string(host.volume_dir(&volume).join("openclaw.json")).unwrap();

    // An update to the next tag runs 2026.9.6 on the same volume.
    let updated = host
        .sim
        .post(
            &format!("/v1/apps/{app}/machines/{id}"),
            json!({"config": legacy_config(&image(CURRENT), &volume)}),
        )
        .await;
    assert!(updated.status.is_success(), "{:?}", updated.body);
    host.reports_version(&id, CURRENT).await;
    host.healthy_through_proxy(app).await;
    let process = host.process(&id).await.expect("a running process");
    assert!(
        process["openclaw_dir"]
            .as_str()
            .unwrap()
            .contains(&format!("openclaw-{CURRENT}/")),
        "{process}"
    );
    assert_eq!(std::fs::read_to_string(&marker).unwrap(), "kept\n");
    let config_after =
        std::fs::read_to_string(host.volume_dir(&volume).join("openclaw.json")).unwrap();
    let (before, after): (Value, Value) = (
        openclaws_gateway::config::parse(&config_before).unwrap(),
        openclaws_gateway::config::parse(&config_after).unwrap(),
    );
    assert_eq!(after["discovery"], before["discovery"]);
    assert_eq!(after["update"], json!({"checkOnStart": false}));
    host.destroy(app, &id).await;
    let _ = std::fs::remove_dir_all(&host.root);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_openclaw_images_cmd_runs_when_the_config_has_no_command() {
    let _slot = gateway_slot();
    let host = ProcessSim::start("cmd").await;
    let app = "oc-cmd";
    let volume = host
        .app_with_volume(app, json!({"gateway": {"mode": "local"}}))
        .await;
    let id = host
        .create(
            app,
            json!({
                "image": "ghcr.io/openclaw/openclaw:main",
                "env": {"OPENCLAW_STATE_DIR": "/data"},
                "mounts": [{"volume": volume, "path": "/data"}],
                "restart": {"policy": "no"},
            }),
        )
        .await;
    let health = host.healthy_through_proxy(app).await;
    assert_eq!(health["ok"], true, "{health}");
    host.reports_version(&id, CURRENT).await;
    let process = host.process(&id).await.expect("a running process");
    assert_eq!(process["workdir"], process["openclaw_dir"], "{process}");
    host.destroy(app, &id).await;
    let _ = std::fs::remove_dir_all(&host.root);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broken_image_crash_loops_under_the_restart_policy() {
    let host = ProcessSim::start("broken").await;
    let image = "ghcr.io/openclaw/openclaw:2026.9.6-broken";
    let registered = host
        .sim
        .control(
            Method::PUT,
            "/_sim/images",
            Some(json!({"image": image, "boot_exit_code": 3})),
        )
        .await;
    assert!(registered.status.is_success(), "{:?}", registered.body);
    let listed = host.sim.control(Method::GET, "/_sim/images", None).await;
    assert_eq!(listed.body["broken"][image], 3, "{:?}", listed.body);
    let app = "oc-broken";
    host.sim.app(app).await;
    let id = host
        .create(
            app,
            json!({
                "image": image,
                "init": {"cmd": LEGACY_COMMAND},
                "restart": {"policy": "on-failure", "max_retries": 2},
            }),
        )
        .await;
    let machine = format!("/v1/apps/{app}/machines/{id}");
    // Three boots (the first and two restarts), each an exit with the image's code; then the
    // policy gives up and the machine stays stopped.
    let exits = eventually("three exits", Duration::from_secs(60), || async {
        let events = host.sim.get(&format!("{machine}/events")).await.body;
        let exits: Vec<Value> = events
            .as_array()?
            .iter()
            .filter(|e| e["type"] == "exit")
            .cloned()
            .collect();
        (exits.len() == 3).then_some(exits)
    })
    .await;
    for exit in &exits {
        assert_eq!(exit["request"]["exit_event"]["exit_code"], 3, "{exit}");
    }
    let newest = &exits[0]["request"];
    assert_eq!(newest["restart_count"], 2, "{newest}");
    assert_eq!(newest["exit_event"]["restarting"], false, "{newest}");
    eventually("the machine stopped", Duration::from_secs(30), || async {
        (host.sim.state_of(app, &id).await == "stopped").then_some(())
    })
    .await;

    // `null` makes the image good again.
    let cleared = host
        .sim
        .control(
            Method::PUT,
            "/_sim/images",
            Some(json!({"image": image, "boot_exit_code": null})),
        )
        .await;
    assert!(cleared.status.is_success(), "{:?}", cleared.body);
    let listed = host.sim.control(Method::GET, "/_sim/images", None).await;
    assert_eq!(listed.body["broken"], json!({}), "{:?}", listed.body);
    let _ = std::fs::remove_dir_all(&host.root);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_version_that_is_not_installed_fails_the_machine() {
    let host = ProcessSim::start("missing").await;
    let app = "oc-missing";
    host.sim.app(app).await;
    let id = host
        .create(
            app,
            json!({
                "image": "ghcr.io/openclaw/openclaw:1999.1.1",
                "init": {"cmd": LEGACY_COMMAND},
            }),
        )
        .await;
    eventually("the machine failed", Duration::from_secs(30), || async {
        (host.sim.state_of(app, &id).await == "failed").then_some(())
    })
    .await;
    assert!(host.process(&id).await.is_none());
    let _ = std::fs::remove_dir_all(&host.root);
}
