//! The operators' view, end to end: a real Prometheus server scrapes the controller's `/metrics`
//! while a scenario runs on the Fly simulator (instances created, a 429, a machine stopped out of
//! band, an instance deleted); then every panel query of every dashboard under `dashboards/`
//! is evaluated through Prometheus's HTTP API and must return data, and `promtool check metrics`
//! must find nothing to say about `/metrics`.
//!
//! Needs `prometheus` and `promtool` (Debian's `prometheus` package; `scripts/ensure-prometheus.sh`
//! installs it when missing).

use openclaws_testkit::db::eventually;
use openclaws_testkit::stack::{Stack, StackOptions};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const CONVERGE: Duration = Duration::from_secs(60);
/// The scrape job; the dashboards' `$job` variable resolves to it.
const JOB: &str = "openclaws-controller";

/// Grafana's built-in variables as the test substitutes them (longest names first, so
/// `$__range_s` is not read as `$__range` followed by `_s`).
const GRAFANA_VARIABLES: [(&str, &str); 6] = [
    ("$__rate_interval", "1m"),
    ("$__interval_ms", "15000"),
    ("$__interval", "15s"),
    ("$__range_ms", "900000"),
    ("$__range_s", "900"),
    ("$__range", "15m"),
];

/// Installs Prometheus when missing (idempotent).
fn ensure_prometheus() {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/ensure-prometheus.sh");
    let status = Command::new(&script)
        .status()
        .expect("run scripts/ensure-prometheus.sh");
    assert!(status.success(), "ensure-prometheus.sh failed");
}

/// A Prometheus server of our own: its config, a free port, a data directory under the target
/// directory; killed and removed on drop.
struct Prometheus {
    url: String,
    dir: PathBuf,
    child: Child,
}

impl Prometheus {
    /// Starts one that scrapes `target` (`host:port`) every second, and waits until it is ready.
    async fn start(target: &str) -> Prometheus {
        let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!(
            "prometheus-{}-{}",
            std::process::id(),
            uuid::Uuid::new_v4().simple()
        ));
        std::fs::create_dir_all(dir.join("data")).unwrap();
        let config = dir.join("prometheus.yml");
        std::fs::write(
            &config,
            format!(
                "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n  evaluation_interval: 1s\n\
                 scrape_configs:\n  - job_name: {JOB}\n    metrics_path: /metrics\n    \
                 static_configs:\n      - targets: ['{target}']\n"
            ),
        )
        .unwrap();
        let check = Command::new("promtool")
            .arg("check")
            .arg("config")
            .arg(&config)
            .output()
            .expect("run promtool");
        assert!(check.status.success(), "{check:?}");
        let port = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().port()
        };
        let log = std::fs::File::create(dir.join("prometheus.log")).unwrap();
        let child = Command::new("prometheus")
            .arg(format!("--config.file={}", config.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.join("data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .arg("--log.level=warn")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start prometheus");
        let mut prometheus = Prometheus {
            url: format!("http://127.0.0.1:{port}"),
            dir,
            child,
        };
        let http = reqwest::Client::new();
        let ready = format!("{}/-/ready", prometheus.url);
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(Some(status)) = prometheus.child.try_wait() {
                panic!("prometheus exited with {status}: {}", prometheus.log_tail());
            }
            if let Ok(r) = http.get(&ready).send().await {
                if r.status() == StatusCode::OK {
                    break;
                }
            }
            assert!(
                Instant::now() < deadline,
                "prometheus not ready within 30 s: {}",
                prometheus.log_tail()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        prometheus
    }

    fn log_tail(&self) -> String {
        let log = std::fs::read_to_string(self.dir.join("prometheus.log")).unwrap_or_default();
        log.lines()
            .rev()
            .take(20)
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// An instant query: the `data` of the answer.
    async fn query(&self, http: &reqwest::Client, expr: &str) -> Value {
        let resp = http
            .get(format!("{}/api/v1/query", self.url))
            .query(&[("query", expr)])
            .send()
            .await
            .unwrap();
        let code = resp.status();
        let body: Value = resp.json().await.unwrap();
        assert!(
            code == StatusCode::OK && body["status"] == "success",
            "query {expr} failed: {code} {body}"
        );
        body["data"].clone()
    }

    /// The sum of an instant vector's values (0 when empty).
    async fn value(&self, http: &reqwest::Client, expr: &str) -> f64 {
        let data = self.query(http, expr).await;
        data["result"]
            .as_array()
            .map(|r| {
                r.iter()
                    .filter_map(|s| s["value"][1].as_str()?.parse::<f64>().ok())
                    .sum()
            })
            .unwrap_or(0.0)
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Whether an answer holds data: a non-empty vector or matrix, or a scalar.
fn has_data(data: &Value) -> bool {
    match data["resultType"].as_str() {
        Some("vector" | "matrix") => data["result"].as_array().is_some_and(|r| !r.is_empty()),
        Some("scalar" | "string") => data["result"].is_array(),
        _ => false,
    }
}

/// A panel query with Grafana's variables and the dashboard's `$job` filled in.
fn substitute(expr: &str) -> String {
    let mut out = expr.to_owned();
    for (name, value) in GRAFANA_VARIABLES {
        out = out.replace(name, value);
    }
    out = out.replace("${job}", JOB).replace("$job", JOB);
    assert!(
        !out.contains('$'),
        "a variable the test does not know in {expr}"
    );
    out
}

/// One panel query: where it is, and the expression as written.
struct PanelQuery {
    dashboard: String,
    panel: String,
    expr: String,
}

/// Every dashboard under `dashboards/`, checked for the templated data source, and their queries.
fn dashboard_queries() -> Vec<PanelQuery> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("dashboards");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("dashboards/")
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    files.sort();
    assert_eq!(files.len(), 4, "four dashboards: {files:?}");
    let files_count = files.len();
    let mut uids = Vec::new();
    let mut queries = Vec::new();
    for file in files {
        let board: Value = serde_json::from_str(&std::fs::read_to_string(&file).unwrap())
            .unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        let title = board["title"].as_str().unwrap().to_owned();
        uids.push(board["uid"].as_str().unwrap().to_owned());
        let variables = board["templating"]["list"].as_array().unwrap();
        assert!(
            variables.iter().any(|v| v["type"] == "datasource"
                && v["name"] == "datasource"
                && v["query"] == "prometheus"),
            "{title}: no Prometheus data source variable"
        );
        let mut panels: Vec<&Value> = Vec::new();
        for p in board["panels"].as_array().unwrap() {
            panels.push(p);
            if let Some(nested) = p["panels"].as_array() {
                panels.extend(nested);
            }
        }
        for panel in panels.into_iter().filter(|p| p["type"] != "row") {
            let name = panel["title"].as_str().unwrap().to_owned();
            assert_eq!(
                panel["datasource"]["uid"], "${datasource}",
                "{title} / {name}: the data source must be the template variable"
            );
            let targets = panel["targets"].as_array().unwrap();
            assert!(!targets.is_empty(), "{title} / {name}: no query");
            for target in targets {
                queries.push(PanelQuery {
                    dashboard: title.clone(),
                    panel: name.clone(),
                    expr: target["expr"].as_str().unwrap().to_owned(),
                });
            }
        }
    }
    uids.sort();
    uids.dedup();
    assert_eq!(uids.len(), files_count, "dashboard uids must differ");
    queries
}

/// `promtool check metrics` on an exposition: its exit status and everything it said.
fn promtool_check_metrics(text: &str) -> (bool, String) {
    let mut child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run promtool");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), said)
}

async fn has_event(stack: &Stack, name: &str, reason: &str) -> bool {
    stack
        .events(name)
        .await
        .iter()
        .any(|e| e["reason"] == reason)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_dashboard_query_returns_data_from_a_real_prometheus() {
    let started = Instant::now();
    ensure_prometheus();
    let queries = dashboard_queries();
    let stack = Stack::start(StackOptions {
        latency_scale: 0.3,
        watch_seconds: 1.0,
        ..StackOptions::default()
    })
    .await;
    let target = stack.api_url.trim_start_matches("http://").to_owned();
    let prometheus = Prometheus::start(&target).await;
    let http = reqwest::Client::new();
    eventually(
        Duration::from_secs(20),
        "the controller to be scraped",
        || async {
            (prometheus
                .value(&http, &format!("up{{job=\"{JOB}\"}}"))
                .await
                == 1.0)
                .then_some(())
        },
    )
    .await;

    // Provisioning, with one 429 from Fly on the way (a volume create).
    let (code, body) = stack
        .fly(
            Method::POST,
            "/_sim/faults",
            Some(
                json!({"method": "POST", "path": "/volumes$", "kind": "rate_limit",
                        "retry_after": 1, "count": 1}),
            ),
        )
        .await;
    assert!(code.is_success(), "{code} {body}");
    // A webhook receiver, so the webhook panels have deliveries to show.
    let receiver = openclaws_testkit::webhooks::Receiver::start().await;
    let resp = stack
        .http
        .post(format!("{}/v1/webhooks", stack.api_url))
        .bearer_auth(openclaws_testkit::stack::WRITER)
        .json(&json!({"url": receiver.url, "eventTypes": ["instance.phase_changed"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::CREATED);
    let names = ["obs-a", "obs-b", "obs-c"];
    for name in names {
        let (code, body) = stack
            .put(name, json!({"customerId": "cust-obs", "region": "iad"}))
            .await;
        assert_eq!(code, StatusCode::CREATED, "{body}");
    }
    let mut uids = Vec::new();
    for name in names {
        let ready = stack.wait_ready(name, CONVERGE).await;
        uids.push(ready["metadata"]["uid"].as_str().unwrap().to_owned());
    }

    // Drift: a machine stopped behind the controller's back, found by the fleet watch.
    let (_, body) = stack.get("obs-a").await;
    let app = body["status"]["fly"]["appName"]
        .as_str()
        .unwrap()
        .to_owned();
    let machine = body["status"]["fly"]["machineId"]
        .as_str()
        .unwrap()
        .to_owned();
    let (code, body) = stack
        .fly(
            Method::POST,
            &format!("/v1/apps/{app}/machines/{machine}/stop"),
            Some(json!({})),
        )
        .await;
    assert!(code.is_success(), "{code} {body}");
    eventually(CONVERGE, "the drift to be repaired", || async {
        has_event(&stack, "obs-a", "DriftRepaired")
            .await
            .then_some(())
    })
    .await;

    // Teardown of one instance.
    assert_eq!(stack.delete("obs-b").await, StatusCode::ACCEPTED);
    eventually(CONVERGE, "obs-b to be gone", || async {
        (stack.get("obs-b").await.0 == StatusCode::NOT_FOUND).then_some(())
    })
    .await;
    let scenario_done = started.elapsed();

    // The exposition itself: clean for promtool, and no instance name or uid in it.
    let text = stack
        .http
        .get(format!("{}/metrics", stack.api_url))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let (clean, said) = promtool_check_metrics(&text);
    assert!(
        clean && said.trim().is_empty(),
        "promtool check metrics: {said}"
    );
    for leak in names
        .iter()
        .map(|n| n.to_string())
        .chain(uids.iter().cloned())
    {
        assert!(!text.contains(&leak), "/metrics mentions {leak}");
    }

    // What the scenario did, as Prometheus saw it.
    let expectations = [
        (
            "sum(openclaws_instance_time_to_first_ready_seconds_count)",
            3.0,
        ),
        (
            "sum(openclaws_instance_deletion_duration_seconds_count)",
            1.0,
        ),
        (
            "sum(openclaws_drift_detected_total{kind=\"machine_state\"})",
            1.0,
        ),
        (
            "sum(openclaws_drift_repaired_total{kind=\"machine_state\"})",
            1.0,
        ),
        ("sum(openclaws_fly_rate_limited_total)", 1.0),
        (
            "sum(openclaws_reconciles_total{result=\"error\",reason=\"FlyRateLimited\"})",
            1.0,
        ),
        ("sum(openclaws_fleet_watch_wakeups_total)", 1.0),
        (
            "sum(openclaws_webhook_deliveries_total{result=\"delivered\"})",
            3.0,
        ),
        ("max(openclaws_instances{phase=\"Ready\"})", 2.0),
        (
            "max(openclaws_instance_conditions{type=\"Ready\",status=\"True\"})",
            2.0,
        ),
    ];
    eventually(
        Duration::from_secs(30),
        "Prometheus to see what the scenario did",
        || async {
            for (expr, at_least) in expectations {
                if prometheus.value(&http, expr).await < at_least {
                    return None;
                }
            }
            Some(())
        },
    )
    .await;
    assert_eq!(
        prometheus
            .value(&http, "max(openclaws_instances{phase=\"Ready\"})")
            .await,
        2.0
    );

    // Every lease taken in the scenario was released (or went with its destroyed machine).
    eventually(Duration::from_secs(10), "no Fly lease held", || async {
        (prometheus
            .value(&http, "max(openclaws_fly_leases_held)")
            .await
            == 0.0)
            .then_some(())
    })
    .await;

    // The dashboards' job variable finds the controller.
    let resp: Value = http
        .get(format!("{}/api/v1/label/job/values", prometheus.url))
        .query(&[("match[]", "openclaws_build_info")])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(resp["data"], json!([JOB]), "{resp}");

    // Every panel query returns data. Rates need two samples of a series inside their window,
    // so a query may be retried until the deadline.
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut empty: Vec<&PanelQuery> = queries.iter().collect();
    loop {
        let mut still = Vec::new();
        for q in empty {
            let data = prometheus.query(&http, &substitute(&q.expr)).await;
            if !has_data(&data) {
                still.push(q);
            }
        }
        empty = still;
        if empty.is_empty() || Instant::now() >= deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    assert!(
        empty.is_empty(),
        "panel queries without data:\n{}",
        empty
            .iter()
            .map(|q| format!("{} / {}: {}", q.dashboard, q.panel, substitute(&q.expr)))
            .collect::<Vec<_>>()
            .join("\n")
    );
    println!(
        "{} panel queries of 3 dashboards returned data; scenario {:.1?}, whole test {:.1?}",
        queries.len(),
        scenario_done,
        started.elapsed()
    );
}
