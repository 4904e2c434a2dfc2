//! The whole system for black-box tests: a fresh database, the Fly simulator on a real port, and
//! the controller (API + workers) talking to it over real HTTP.

use fly_sim as sim;
use openclaws_model::secrets::SecretCipher;
use openclaws_server::config::{
    ApiSettings, DatabaseSettings, DnsSettings, FlySettings, GatewaySettings, SecretKey,
    ServeSettings, WebhookSettings,
};
use openclaws_server::serve::{self, Running};
use openclaws_store::PoolMode;
use reqwest::StatusCode;
use serde_json::Value;
use std::net::SocketAddr;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

use crate::db::{eventually, fresh_database_via, TestDb};

/// The controller's writer token in stacks (and the fleet bench).
pub const WRITER: &str = "test-writer-token-0123456789";
/// The controller's reader token in stacks.
pub const READER: &str = "test-reader-token-0123456789";
/// The Fly (and DNS) token the stack's simulator accepts.
pub const FLY_TOKEN: &str = "test-fly-token";
/// The Fly organization of [`FLY_TOKEN`].
pub const ORG: &str = "personal";

/// Knobs for a stack.
#[derive(Clone)]
pub struct StackOptions {
    /// Simulator latency multiplier (1.0 = Fly-like defaults).
    pub latency_scale: f64,
    /// Resync interval of converged instances.
    pub resync_seconds: u64,
    /// Interval of the fleet watch (0 = off).
    pub watch_seconds: f64,
    /// Lease length (short for crash tests).
    pub lease_seconds: u64,
    /// When a transient machine counts as stuck.
    pub machine_stuck_seconds: u64,
    /// Simulator request hooks (faults, delays).
    pub hooks: Vec<std::sync::Arc<dyn sim::hooks::RequestHook>>,
    /// How long a volume stays bound after its machine is destroyed (simulated seconds, not
    /// scaled); the simulator's default when `None`.
    pub volume_release_seconds: Option<f64>,
    /// Started machines run the real OpenClaw gateway (simulator process mode, behind the
    /// simulator's Fly-like proxy) and the controller looks at gateways.
    pub gateways: bool,
    /// The controller mints LLM proxy tokens with [`LLM_PROXY_KEY`] for [`LLM_PROXY_URL`].
    pub llm_proxy: bool,
    /// The controller reaches its database through a throwaway PgBouncer in transaction pool
    /// mode, as through Supabase's transaction pooler: `DATABASE_URL` names PgBouncer (with
    /// `OPENCLAWS_DB_POOL_MODE=transaction`), `DATABASE_LISTEN_URL` the database itself
    /// (`stack.db.pooler` has PgBouncer). Any stack test can run this way by setting it.
    pub pooler: bool,
}

/// The LLM proxy's base URL in gateway stacks (nothing listens there).
pub const LLM_PROXY_URL: &str = "http://127.0.0.1:9/anthropic";
/// The LLM proxy token key in gateway stacks.
pub const LLM_PROXY_KEY: &str = "test-llm-proxy-key-0123456789abcdef0123";

impl Default for StackOptions {
    fn default() -> Self {
        Self {
            latency_scale: 1.0,
            resync_seconds: 300,
            watch_seconds: 0.0,
            lease_seconds: 30,
            machine_stuck_seconds: 300,
            hooks: Vec::new(),
            volume_release_seconds: None,
            gateways: false,
            llm_proxy: false,
            pooler: false,
        }
    }
}

/// A running system under test.
pub struct Stack {
    /// The stack's own database.
    pub db: TestDb,
    /// Base URL of the simulator's Fly API (and its `/_sim` control plane).
    pub sim_url: String,
    /// Base URL of the controller's API (empty until the controller starts).
    pub api_url: String,
    /// A client for the stack's APIs.
    pub http: reqwest::Client,
    /// What the controller runs (or a controller process is given) with.
    pub settings: ServeSettings,
    /// The Fly-like proxy in front of gateways (gateway stacks only).
    pub proxy_url: Option<String>,
    /// The proxy of Fly's private network, serving `{app}.flycast` (gateway stacks only).
    pub private_proxy_url: Option<String>,
    sim_stop: CancellationToken,
    controller: Option<(CancellationToken, Running)>,
}

impl Stack {
    /// Starts database, simulator and controller.
    pub async fn start(options: StackOptions) -> Stack {
        let mut stack = Self::start_without_controller(options).await;
        stack.start_controller().await;
        stack
    }

    /// Starts database and simulator only (tests that run the controller as a process).
    pub async fn start_without_controller(options: StackOptions) -> Stack {
        let db = fresh_database_via(options.pooler).await;
        let sim_stop = CancellationToken::new();
        let config = sim_config(&options);
        let simulator = sim::Simulator::try_new(config).expect("a simulator");
        let sim_url = crate::sim::serve_on_loopback(&simulator, &sim_stop).await;
        let (proxy_url, private_proxy_url) = match options.gateways {
            true => (
                Some(
                    start_proxy(&simulator, &sim_stop, sim::proxy::ProxySettings::default()).await,
                ),
                Some(
                    start_proxy(&simulator, &sim_stop, sim::proxy::ProxySettings::private()).await,
                ),
            ),
            false => (None, None),
        };
        let mut settings = serve_settings(&db.url, &sim_url);
        if db.pooler.is_some() {
            settings.database.database_url = db.controller_url();
            settings.database.database_listen_url = Some(db.url.clone());
            settings.database.db_pool_mode = PoolMode::Transaction;
        }
        settings.gateway = gateway_settings(&options, proxy_url.as_deref());
        settings.gateway.gateway_private_url = private_proxy_url.clone();
        settings.resync_seconds = options.resync_seconds;
        settings.watch_seconds = options.watch_seconds;
        settings.lease_seconds = options.lease_seconds;
        settings.machine_stuck_seconds = options.machine_stuck_seconds;
        Stack {
            db,
            sim_url,
            api_url: String::new(),
            http: reqwest::Client::new(),
            settings,
            proxy_url,
            private_proxy_url,
            sim_stop,
            controller: None,
        }
    }

    /// Starts the in-process controller (API + workers).
    pub async fn start_controller(&mut self) {
        let stop = CancellationToken::new();
        let running = serve::start(&self.settings, stop.clone()).await.unwrap();
        self.api_url = format!("http://{}", running.addr);
        self.controller = Some((stop, running));
    }

    /// Stops the in-process controller gracefully.
    pub async fn stop_controller(&mut self) {
        if let Some((_, running)) = self.controller.take() {
            running.stop().await.unwrap();
        }
    }

    fn instance_url(&self, name: &str) -> String {
        format!("{}/v1/instances/{name}", self.api_url)
    }

    /// `PUT /v1/instances/{name}` with `{"spec": spec}`.
    pub async fn put(&self, name: &str, spec: Value) -> (StatusCode, Value) {
        let resp = self
            .http
            .put(self.instance_url(name))
            .bearer_auth(WRITER)
            .json(&serde_json::json!({ "spec": spec }))
            .send()
            .await
            .unwrap();
        (resp.status(), resp.json().await.unwrap_or(Value::Null))
    }

    /// `PATCH` with a JSON merge patch of the object.
    pub async fn patch(&self, name: &str, patch: Value) -> (StatusCode, Value) {
        let resp = self
            .http
            .patch(self.instance_url(name))
            .bearer_auth(WRITER)
            .header("content-type", "application/merge-patch+json")
            .body(patch.to_string())
            .send()
            .await
            .unwrap();
        (resp.status(), resp.json().await.unwrap_or(Value::Null))
    }

    /// `POST /v1/instances/{name}/{path}` with a JSON body and the writer token (status, body).
    pub async fn post(&self, name: &str, path: &str, body: &Value) -> (StatusCode, Value) {
        let resp = self
            .http
            .post(format!("{}/{path}", self.instance_url(name)))
            .bearer_auth(WRITER)
            .json(body)
            .send()
            .await
            .unwrap();
        (resp.status(), resp.json().await.unwrap_or(Value::Null))
    }

    /// Total calls per Fly endpoint so far (`METHOD /path` → count), from the simulator.
    pub async fn fly_calls(&self) -> std::collections::BTreeMap<String, u64> {
        let (_, stats) = self.fly(reqwest::Method::GET, "/_sim/stats", None).await;
        let calls = stats["calls"].as_object().cloned().unwrap_or_default();
        let total = |v: &Value| v["total"].as_u64().unwrap_or(0);
        calls.iter().map(|(k, v)| (k.clone(), total(v))).collect()
    }

    /// The controller's `/metrics` text.
    pub async fn metrics_text(&self) -> String {
        let url = format!("{}/metrics", self.api_url);
        let resp = self.http.get(url).send().await.unwrap();
        resp.text().await.unwrap()
    }

    /// A metric from the controller's `/metrics`: the sum over the series whose line starts with
    /// `name` and contains `labels` (0 when there is none).
    pub async fn metric(&self, name: &str, labels: &str) -> f64 {
        let text = self.metrics_text().await;
        text.lines()
            .filter(|l| l.starts_with(name) && l.contains(labels))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum()
    }

    /// `GET /v1/instances/{name}` (status, body).
    pub async fn get(&self, name: &str) -> (StatusCode, Value) {
        let resp = self
            .http
            .get(self.instance_url(name))
            .bearer_auth(READER)
            .send()
            .await
            .unwrap();
        (resp.status(), resp.json().await.unwrap_or(Value::Null))
    }

    /// `DELETE /v1/instances/{name}`.
    pub async fn delete(&self, name: &str) -> StatusCode {
        self.http
            .delete(self.instance_url(name))
            .bearer_auth(WRITER)
            .send()
            .await
            .unwrap()
            .status()
    }

    /// `POST /v1/instances/{name}/reconcile`.
    pub async fn reconcile_now(&self, name: &str) {
        let status = self
            .http
            .post(format!("{}/reconcile", self.instance_url(name)))
            .bearer_auth(WRITER)
            .send()
            .await
            .unwrap()
            .status();
        assert_eq!(status, StatusCode::ACCEPTED);
    }

    /// `GET /v1/instances/{name}/events` items.
    pub async fn events(&self, name: &str) -> Vec<Value> {
        let body: Value = self
            .http
            .get(format!("{}/events", self.instance_url(name)))
            .bearer_auth(READER)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        body["items"].as_array().cloned().unwrap_or_default()
    }

    /// Polls the instance until `pred` holds (or panics after `timeout`).
    pub async fn wait_for(
        &self,
        name: &str,
        what: &str,
        timeout: Duration,
        pred: impl Fn(&Value) -> bool,
    ) -> Value {
        let pred = &pred;
        eventually(timeout, what, || async move {
            let (code, body) = self.get(name).await;
            (code == StatusCode::OK && pred(&body)).then_some(body)
        })
        .await
    }

    /// Waits for phase `Ready` at the current generation.
    pub async fn wait_ready(&self, name: &str, timeout: Duration) -> Value {
        self.wait_for(name, &format!("{name} to be Ready"), timeout, |b| {
            b["status"]["phase"] == "Ready"
                && b["status"]["observedGeneration"] == b["metadata"]["generation"]
        })
        .await
    }

    /// A Fly API call to the simulator (as an out-of-band actor would make).
    pub async fn fly(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut req = self
            .http
            .request(method, format!("{}{path}", self.sim_url))
            .bearer_auth(FLY_TOKEN);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.unwrap();
        let code = resp.status();
        let text = resp.text().await.unwrap();
        (
            code,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    /// The simulator's whole state, read through its control plane (not rate limited, so
    /// watching never competes with the controller for Fly's request budget).
    pub async fn sim_state(&self) -> Value {
        let (code, body) = self.fly(reqwest::Method::GET, "/_sim/state", None).await;
        assert_eq!(code, StatusCode::OK, "{body}");
        body
    }

    /// Live (not destroyed) machines of an app.
    pub async fn fly_machines(&self, app: &str) -> Vec<Value> {
        let state = self.sim_state().await;
        state["machines"]
            .as_array()
            .cloned()
            .unwrap_or_default()
            .into_iter()
            .filter(|m| m["app_name"] == app && m["state"] != "destroyed")
            .collect()
    }

    /// Volumes of an app that are not being destroyed.
    pub async fn fly_volumes(&self, app: &str) -> Vec<Value> {
        let state = self.sim_state().await;
        let Some(app_id) = state["apps"]
            .as_array()
            .and_then(|apps| apps.iter().find(|a| a["name"] == app))
            .map(|a| a["id"].clone())
        else {
            return Vec::new();
        };
        state["volumes"]
            .as_array()
            .cloned()
            .unwrap_or_default()
            .into_iter()
            .filter(|v| {
                v["app_id"] == app_id
                    && !matches!(
                        v["state"].as_str(),
                        Some("destroyed" | "pending_destroy" | "scheduling_destroy" | "destroying")
                    )
            })
            .collect()
    }

    /// Apps in the org (including ones whose deletion is still in progress).
    pub async fn fly_apps(&self) -> Vec<Value> {
        let state = self.sim_state().await;
        state["apps"]
            .as_array()
            .cloned()
            .unwrap_or_default()
            .into_iter()
            .filter(|a| a["org"] == ORG)
            .collect()
    }
}

impl Drop for Stack {
    fn drop(&mut self) {
        self.sim_stop.cancel();
        if let Some((stop, _)) = &self.controller {
            stop.cancel();
        }
    }
}

/// The simulator's configuration for `options`; in gateway stacks its machines run processes
/// under a fresh directory of the target's tmp.
fn sim_config(options: &StackOptions) -> sim::SimConfig {
    let mut config = sim::SimConfig::new(FLY_TOKEN, ORG);
    config.dns_zone = "openclaws.test".to_owned();
    config.latency = sim::LatencyModel::spec_defaults().scaled(options.latency_scale);
    if let Some(secs) = options.volume_release_seconds {
        config.latency.volume_release = Duration::from_secs_f64(secs);
    }
    config.hooks = options.hooks.clone();
    if options.gateways {
        let root = crate::target_tmp_dir().join(format!(
            "stack-{}-{}",
            std::process::id(),
            uuid::Uuid::new_v4().simple()
        ));
        std::fs::create_dir_all(&root).unwrap();
        config.machines = sim::MachineMode::Process(sim::ProcessSettings {
            root,
            openclaw_bin: crate::openclaw::install_openclaw(),
        });
    }
    config
}

/// Serves one of the simulator's Fly-like proxies (public edge or private network) on
/// 127.0.0.1:0 and returns its base URL.
async fn start_proxy(
    simulator: &sim::Simulator,
    stop: &CancellationToken,
    settings: sim::proxy::ProxySettings,
) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(sim::proxy::serve_proxy(
        listener,
        simulator.clone(),
        settings,
        stop.clone(),
    ));
    format!("http://{addr}")
}

/// How the controller looks at gateways: through the proxy at `proxy_url` when there is one,
/// minting LLM proxy tokens when `options.llm_proxy` is set.
fn gateway_settings(options: &StackOptions, proxy_url: Option<&str>) -> GatewaySettings {
    let mut gateway = GatewaySettings::without_checks();
    if let Some(url) = proxy_url {
        gateway.gateway_checks = true;
        gateway.gateway_url = Some(url.to_owned());
        gateway.gateway_trusted_proxies = vec!["127.0.0.1/32".to_owned()];
    }
    if options.llm_proxy {
        gateway.llm_proxy_url = Some(LLM_PROXY_URL.to_owned());
        gateway.llm_proxy_key = Some(LLM_PROXY_KEY.parse().unwrap());
    }
    gateway
}

/// The controller's settings in tests and the fleet bench: the database at `database_url`; Fly
/// and DNS at the simulator at `sim_url` with [`FLY_TOKEN`] in [`ORG`]; the API on
/// 127.0.0.1:0 with [`WRITER`] and [`READER`]; no gateway checks; domain `openclaws.test`; the
/// controller's defaults otherwise. Callers change what they measure or need.
pub fn serve_settings(database_url: &str, sim_url: &str) -> ServeSettings {
    ServeSettings {
        database: DatabaseSettings {
            database_url: database_url.to_owned(),
            database_listen_url: None,
            db_max_connections: 10,
            db_pool_mode: PoolMode::Session,
        },
        listen: "127.0.0.1:0".parse::<SocketAddr>().unwrap(),
        api_write_token: WRITER.to_owned(),
        api_read_token: READER.to_owned(),
        secret_key: SecretKey(SecretCipher::from_key([7; 32])),
        fly: FlySettings {
            fly_api_base: sim_url.to_owned(),
            fly_api_token: FLY_TOKEN.to_owned(),
            fly_org: ORG.to_owned(),
            fly_app_prefix: "oc-".to_owned(),
            fly_rate_scale: 1.0,
        },
        dns: DnsSettings {
            dns_api_base: sim_url.to_owned(),
            dns_api_token: Some(FLY_TOKEN.to_owned()),
            dns_zone: None,
        },
        gateway: GatewaySettings::without_checks(),
        api: ApiSettings::default(),
        webhooks: WebhookSettings::default(),
        base_domain: "openclaws.test".to_owned(),
        public_url: Default::default(),
        workers: 8,
        resync_seconds: 300,
        watch_seconds: 0.0,
        composio_api_key: None,
        lease_seconds: 30,
        poll_seconds: 1.0,
        shutdown_grace_seconds: 5,
        machine_stuck_seconds: 300,
        event_retention: std::time::Duration::from_secs(30 * 86_400),
        stuck_after: std::time::Duration::from_secs(900),
        stuck_sweep_seconds: 30.0,
    }
}

/// The condition of type `type_` of an instance body (`null` when there is none).
pub fn condition<'a>(body: &'a Value, type_: &str) -> &'a Value {
    body["status"]["conditions"]
        .as_array()
        .and_then(|cs| cs.iter().find(|c| c["type"] == type_))
        .unwrap_or(&Value::Null)
}
