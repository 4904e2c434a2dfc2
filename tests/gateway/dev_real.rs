//! `make run` as a new user meets it: `openclaws-dev run` (the simulator's own binary in process
//! mode, the production controller binary) brings the demo instance to Ready on a REAL gateway
//! with gateway checks on, prints where a browser reaches it, and the OpenClaw Control UI,
//! opened in headless Chromium at `http://demo.localhost:PORT/` and given the gateway token,
//! leaves a pending pairing request that an approval through the API lets in.

use fantoccini::{Client, Locator};
use openclaws_testkit::db::{eventually, fresh_database};
use openclaws_testkit::openclaw::{gateway_slot, install_openclaw};
use openclaws_testkit::process::free_port;
use serde_json::{json, Value};
use std::process::Stdio;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

use super::support_console::{full_page_screenshot, Driver};

const WRITER: &str = "dev-writer-token";
const READY_DEADLINE: Duration = Duration::from_secs(300);
/// The chat's message box: shown only to a connected, paired browser.
const COMPOSER: &str = "//*[starts-with(@placeholder, 'Message')]";

/// The dev stack's process group, killed as a whole when the test ends.
struct DevStack {
    child: Child,
    api: String,
    gateway: String,
    printed: String,
}

impl Drop for DevStack {
    fn drop(&mut self) {
        if let Some(pid) = self.child.id() {
            let _ = nix::sys::signal::killpg(
                nix::unistd::Pid::from_raw(pid as i32),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
    }
}

/// Starts `openclaws-dev run` on free ports and reads what it prints until the demo is Ready.
async fn start_dev_stack() -> DevStack {
    let db = fresh_database().await;
    let (api, sim, proxy) = (free_port(), free_port(), free_port());
    let logs = std::env::temp_dir().join(format!("oc-dev-real-{}", uuid::Uuid::new_v4().simple()));
    let mut child = Command::new(openclaws_testkit::workspace_binary("openclaws-dev").unwrap())
        .arg("run")
        .args(["--listen", &format!("127.0.0.1:{api}")])
        .args(["--sim-listen", &format!("127.0.0.1:{sim}")])
        .args(["--proxy-listen", &format!("127.0.0.1:{proxy}")])
        .arg("--log-dir")
        .arg(&logs)
        .env("DATABASE_URL", &db.url)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .process_group(0)
        .kill_on_drop(true)
        .spawn()
        .expect("start openclaws-dev run");
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut printed = String::new();
    let read = async {
        while let Some(line) = lines.next_line().await.unwrap() {
            printed.push_str(&line);
            printed.push('\n');
            if line.contains("serving until Ctrl-C") {
                return true;
            }
        }
        false
    };
    let served = tokio::time::timeout(READY_DEADLINE, read).await;
    assert!(
        matches!(served, Ok(true)),
        "the dev stack did not bring the demo to Ready (logs in {}):\n{printed}",
        logs.display()
    );
    // Keep draining stdout so the stack never blocks on a full pipe.
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    DevStack {
        child,
        api: format!("http://127.0.0.1:{api}"),
        gateway: format!("http://demo.localhost:{proxy}/"),
        printed,
    }
}

async fn instance(http: &reqwest::Client, stack: &DevStack) -> Value {
    http.get(format!("{}/v1/instances/demo", stack.api))
        .bearer_auth(WRITER)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

fn condition<'a>(body: &'a Value, type_: &str) -> &'a Value {
    body["status"]["conditions"]
        .as_array()
        .and_then(|cs| cs.iter().find(|c| c["type"] == type_))
        .unwrap_or(&Value::Null)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn make_run_serves_a_real_gateway_a_browser_can_pair_with() {
    install_openclaw();
    let _slot = tokio::task::spawn_blocking(gateway_slot).await.unwrap();
    let stack = start_dev_stack().await;
    let printed = &stack.printed;
    for wanted in [
        stack.gateway.as_str(),
        "/v1/instances/demo/gateway-token",
        "/support",
        "Approve",
    ] {
        assert!(
            printed.contains(wanted),
            "`{wanted}` is printed:\n{printed}"
        );
    }
    let http = reqwest::Client::new();
    let demo = instance(&http, &stack).await;
    assert_eq!(demo["status"]["phase"], "Ready", "{demo}");
    assert_eq!(
        condition(&demo, "GatewayHealthy")["status"],
        "True",
        "the controller checked the gateway itself: {demo}"
    );
    assert_eq!(
        demo["status"]["endpoint"],
        stack.gateway.trim_end_matches('/')
    );
    let token: Value = http
        .get(format!("{}/v1/instances/demo/gateway-token", stack.api))
        .bearer_auth(WRITER)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let token = token["token"].as_str().unwrap().to_owned();

    let driver = Driver::start().await;
    let browser = driver.browser().await;
    let outcome = pair_the_control_ui(&browser, &http, &stack, &token).await;
    let shot = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("dev-control-ui.png");
    full_page_screenshot(&browser, &shot).await;
    let _ = browser.close().await;
    outcome.unwrap_or_else(|e| panic!("{e} (screenshot: {})", shot.display()));
}

/// Opens the Control UI, connects with the token, approves the request it leaves through the
/// API and waits for the browser to be let in.
async fn pair_the_control_ui(
    browser: &Client,
    http: &reqwest::Client,
    stack: &DevStack,
    token: &str,
) -> Result<(), String> {
    browser
        .goto(&stack.gateway)
        .await
        .map_err(|e| format!("open {}: {e}", stack.gateway))?;
    let secret = browser
        .wait()
        .at_most(Duration::from_secs(30))
        .for_element(Locator::Css("input[type=password]"))
        .await
        .map_err(|e| format!("the Control UI asks for the token: {e}"))?;
    secret.send_keys(token).await.map_err(|e| e.to_string())?;
    browser
        .find(Locator::XPath("//button[normalize-space()='Connect']"))
        .await
        .map_err(|e| format!("the Connect button: {e}"))?
        .click()
        .await
        .map_err(|e| e.to_string())?;
    let request_id = eventually(
        Duration::from_secs(30),
        "the browser's pairing request",
        || async {
            let demo = instance(http, stack).await;
            let pending = demo["status"]["pairing"]["pending"]
                .as_array()?
                .first()?
                .clone();
            pending["requestId"].as_str().map(str::to_owned)
        },
    )
    .await;
    if browser.find(Locator::XPath(COMPOSER)).await.is_ok() {
        return Err("the browser was let in before its request was approved".to_owned());
    }
    let approved = http
        .post(format!("{}/v1/instances/demo/pairing/approvals", stack.api))
        .bearer_auth(WRITER)
        .json(&json!({ "requestId": request_id }))
        .send()
        .await
        .map_err(|e| e.to_string())?;
    if !approved.status().is_success() {
        return Err(format!("the approval was refused: {}", approved.status()));
    }
    eventually(
        Duration::from_secs(60),
        "the approval carried out",
        || async {
            let demo = instance(http, stack).await;
            let recent = demo["status"]["pairing"]["recent"].as_array()?.clone();
            recent
                .iter()
                .any(|r| r["requestId"] == request_id.as_str() && r["result"] == "Approved")
                .then_some(())
        },
    )
    .await;
    browser
        .wait()
        .at_most(Duration::from_secs(60))
        .for_element(Locator::XPath(COMPOSER))
        .await
        .map_err(|e| format!("the Control UI lets the browser in once approved: {e}"))?;
    Ok(())
}
