//! The support console in a real browser: headless Chromium driven over WebDriver (chromedriver,
//! started here on a free port) against the in-process stack.
//!
//! - sign-in with a wrong token, as the reader (looks, cannot act) and as the writer; the phase
//!   filter and the search; "Reconcile now" and its event; sign-out; the HTTP answers of client
//!   mistakes (401/403/404/409 pages, never a 500) and the cookie's attributes;
//! - the fleet and instance pages updating in place from the watch;
//! - the manual pairing flow on a REAL gateway: a device's pending request shows on the instance
//!   page, "Approve" approves it and the device connects. A full-page screenshot of that page is
//!   kept as `target/support-console.png`.
//!
//! Needs Debian's `chromium` and `chromium-driver` (`make test` installs them:
//! `scripts/ensure-chromium.sh`).

use fantoccini::wd::WebDriverCompatibleCommand;
use fantoccini::{Client, ClientBuilder, Locator};
use openclaws_gateway::identity::DeviceIdentity;
use openclaws_gateway::protocol::{SCOPE_READ, SCOPE_WRITE};
use openclaws_testkit::db::eventually;
use openclaws_testkit::devices::{self, connect_browser, gateway_token, pending_request};
use openclaws_testkit::stack::{Stack, StackOptions, READER, WRITER};
use reqwest::StatusCode;
use serde_json::{json, Value};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
const CHROMIUM: &str = "/usr/bin/chromium";
const PAGE_DEADLINE: Duration = Duration::from_secs(30);
/// A provider key that must never appear on a page.
const CANARY_KEY: &str = "sk-ant-canary-4f1d2c9e8b7a";

/// chromedriver on a free loopback port, in its own process group so the browsers it starts
/// go with it.
pub(crate) struct Driver {
    child: Child,
    url: String,
}

impl Driver {
    pub(crate) async fn start() -> Driver {
        assert!(
            Path::new(CHROMEDRIVER).exists() && Path::new(CHROMIUM).exists(),
            "{CHROMEDRIVER} and {CHROMIUM} are needed: run `make test` or \
             scripts/ensure-chromium.sh (Debian's chromium and chromium-driver)"
        );
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let log =
            PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("chromedriver-{port}.log"));
        let child = Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .arg(format!("--log-path={}", log.display()))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()
            .expect("start chromedriver");
        let url = format!("http://127.0.0.1:{port}/");
        let http = reqwest::Client::new();
        eventually(Duration::from_secs(20), "chromedriver ready", || {
            let http = &http;
            let url = &url;
            async move {
                let body: Value = http
                    .get(format!("{url}status"))
                    .send()
                    .await
                    .ok()?
                    .json()
                    .await
                    .ok()?;
                (body["value"]["ready"] == true).then_some(())
            }
        })
        .await;
        Driver { child, url }
    }

    /// A new headless Chromium session.
    pub(crate) async fn browser(&self) -> Client {
        self.browser_with(&[]).await
    }

    /// A new headless Chromium session with `extra` command-line switches (say, a host
    /// resolver rule that sends a test hostname to the simulator's proxy).
    pub(crate) async fn browser_with(&self, extra: &[String]) -> Client {
        let mut args: Vec<String> = [
            "--headless=new",
            "--no-sandbox",
            "--disable-dev-shm-usage",
            "--disable-gpu",
            "--no-first-run",
            "--disable-extensions",
            "--window-size=1280,1000",
        ]
        .iter()
        .map(|a| a.to_string())
        .collect();
        args.extend(extra.iter().cloned());
        let mut caps = serde_json::Map::new();
        caps.insert(
            "goog:chromeOptions".to_owned(),
            json!({"binary": CHROMIUM, "args": args}),
        );
        ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
            .capabilities(caps)
            .connect(&self.url)
            .await
            .expect("a chromium session")
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        let group = nix::unistd::Pid::from_raw(self.child.id() as i32);
        let _ = nix::sys::signal::killpg(group, nix::sys::signal::Signal::SIGKILL);
        let _ = self.child.wait();
    }
}

/// A Chrome DevTools command through chromedriver (for a full-page screenshot).
#[derive(Debug)]
struct Cdp {
    cmd: &'static str,
    params: Value,
}

impl WebDriverCompatibleCommand for Cdp {
    fn endpoint(
        &self,
        base_url: &url::Url,
        session_id: Option<&str>,
    ) -> Result<url::Url, url::ParseError> {
        base_url.join(&format!(
            "session/{}/goog/cdp/execute",
            session_id.unwrap_or_default()
        ))
    }

    fn method_and_body(&self, _: &url::Url) -> (axum::http::Method, Option<String>) {
        (
            axum::http::Method::POST,
            Some(json!({"cmd": self.cmd, "params": self.params}).to_string()),
        )
    }
}

async fn cdp(client: &Client, cmd: &'static str, params: Value) -> Value {
    let answer = client
        .issue_cmd(Cdp { cmd, params })
        .await
        .unwrap_or_else(|e| panic!("{cmd}: {e}"));
    match answer.get("value") {
        Some(v) if !v.is_null() => v.clone(),
        _ => answer,
    }
}

/// A PNG of the whole page (not just the viewport) written to `path`.
pub(crate) async fn full_page_screenshot(client: &Client, path: &Path) {
    let metrics = cdp(client, "Page.getLayoutMetrics", json!({})).await;
    let size = &metrics["cssContentSize"];
    let width = size["width"].as_f64().unwrap_or(1280.0).ceil();
    let height = size["height"].as_f64().unwrap_or(1000.0).ceil();
    let shot = cdp(
        client,
        "Page.captureScreenshot",
        json!({"format": "png", "captureBeyondViewport": true,
               "clip": {"x": 0, "y": 0, "width": width, "height": height, "scale": 1}}),
    )
    .await;
    let png = base64::Engine::decode(
        &base64::engine::general_purpose::STANDARD,
        shot["data"].as_str().expect("screenshot data"),
    )
    .unwrap();
    assert!(png.starts_with(b"\x89PNG"), "not a PNG");
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, png).unwrap();
}

/// The whole page's visible text.
async fn page_text(client: &Client) -> String {
    client
        .find(Locator::Css("body"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

pub(crate) async fn exists(client: &Client, css: &str) -> bool {
    !client.find_all(Locator::Css(css)).await.unwrap().is_empty()
}

/// The names in the fleet table, in order, read in one script run: the page re-renders the
/// table live, so rows found one request and read the next can already be gone (stale).
async fn listed(client: &Client) -> Vec<String> {
    let script = "return Array.from(document.querySelectorAll('#instances tbody tr'))\
                  .map(row => row.getAttribute('data-name') || '');";
    let names = client.execute(script, Vec::new()).await.unwrap();
    serde_json::from_value(names).unwrap()
}

pub(crate) async fn sign_in(client: &Client, token: &str) {
    let field = client.find(Locator::Id("token")).await.unwrap();
    field.clear().await.unwrap();
    field.send_keys(token).await.unwrap();
    click(client, "#sign-in").await;
}

/// Clicks a link or a submit button and waits for the page it leads to.
pub(crate) async fn click(client: &Client, css: &str) {
    let old = client.find(Locator::Css("html")).await.unwrap();
    client
        .find(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("{css}: {e}"))
        .click()
        .await
        .unwrap();
    eventually(PAGE_DEADLINE, &format!("the page after {css}"), || async {
        let replaced = matches!(
            old.tag_name().await,
            Err(fantoccini::error::CmdError::Standard(ref e))
                if e.error == fantoccini::error::ErrorStatus::StaleElementReference
        );
        let loaded = client
            .execute("return document.readyState", vec![])
            .await
            .is_ok_and(|s| s == "complete");
        (replaced && loaded).then_some(())
    })
    .await;
}

/// Reloads the page until `css` matches something.
pub(crate) async fn reload_until(client: &Client, css: &str, what: &str) {
    eventually(PAGE_DEADLINE, what, || async {
        client.refresh().await.ok()?;
        exists(client, css).await.then_some(())
    })
    .await;
}

/// A client that does not follow redirects, for status codes and headers.
fn raw_http() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// Signs in over plain HTTP and returns the `Set-Cookie` value and the `name=value` pair.
async fn http_session(stack: &Stack, token: &str) -> (String, String) {
    let resp = raw_http()
        .post(format!("{}/support/login", stack.api_url))
        .form(&[("token", token)])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
    let set = resp.headers()["set-cookie"].to_str().unwrap().to_owned();
    let pair = set.split(';').next().unwrap().to_owned();
    (set, pair)
}

/// The CSRF token in the first form of a page.
fn csrf_of(html: &str) -> String {
    let at = html
        .find("name=\"csrf\" value=\"")
        .expect("a form with a CSRF token");
    let rest = &html[at + "name=\"csrf\" value=\"".len()..];
    rest[..rest.find('"').unwrap()].to_owned()
}

async fn get_page(stack: &Stack, path: &str, cookie: Option<&str>) -> (StatusCode, String) {
    let mut req = raw_http().get(format!("{}{path}", stack.api_url));
    if let Some(c) = cookie {
        req = req.header("cookie", c);
    }
    let resp = req.send().await.unwrap();
    (resp.status(), resp.text().await.unwrap())
}

async fn post_form(
    stack: &Stack,
    path: &str,
    cookie: Option<&str>,
    form: &[(&str, &str)],
) -> (StatusCode, String, Option<String>) {
    let mut req = raw_http()
        .post(format!("{}{path}", stack.api_url))
        .form(form);
    if let Some(c) = cookie {
        req = req.header("cookie", c);
    }
    let resp = req.send().await.unwrap();
    let status = resp.status();
    let content_type = resp
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_owned());
    let location = resp
        .headers()
        .get("location")
        .map(|v| v.to_str().unwrap().to_owned());
    let body = resp.text().await.unwrap();
    if !status.is_redirection() {
        assert!(
            content_type.is_some_and(|c| c.starts_with("text/html")),
            "{path}: {status} {body}"
        );
    }
    (status, body, location)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sign_in_fleet_filters_reconcile_and_client_mistakes() {
    let started = Instant::now();
    let stack = Stack::start(StackOptions {
        latency_scale: 0.05,
        ..StackOptions::default()
    })
    .await;
    let driver = Driver::start().await;
    let browser = driver.browser().await;
    let tricky = "c-<b>3</b>&\"x\"";
    for (name, spec) in [
        (
            "alpha",
            json!({"customerId": "c-1", "region": "iad",
                   "providerKeys": {"anthropicApiKey": CANARY_KEY}}),
        ),
        ("bravo", json!({"customerId": tricky, "region": "iad"})),
        (
            "charlie",
            json!({"customerId": "c-1", "region": "iad", "runState": "stopped",
                   "pairing": {"policy": "manual"}}),
        ),
    ] {
        let (code, body) = stack.put(name, spec).await;
        assert_eq!(code, StatusCode::CREATED, "{body}");
    }
    stack.wait_ready("alpha", Duration::from_secs(60)).await;
    stack.wait_ready("bravo", Duration::from_secs(60)).await;
    stack
        .wait_for("charlie", "charlie Stopped", Duration::from_secs(60), |b| {
            b["status"]["phase"] == "Stopped"
        })
        .await;
    let base = format!("{}/support", stack.api_url);

    // 1. Not signed in: the console sends the browser to the sign-in page, which comes back.
    browser.goto(&format!("{base}/instances")).await.unwrap();
    assert!(browser
        .current_url()
        .await
        .unwrap()
        .as_str()
        .contains("/support/login?next=/support/instances"));

    // 2. A wrong token: the sign-in page again, with an error saying what to use.
    sign_in(&browser, "not-the-token").await;
    let error = browser
        .find(Locator::Id("login-error"))
        .await
        .expect("an error on the sign-in page")
        .text()
        .await
        .unwrap();
    assert!(error.contains("not valid"), "{error}");
    assert!(browser.get_all_cookies().await.unwrap().is_empty());

    // 3. The reader: the fleet with name, customer, phase, Ready reason, machine state and age;
    // the cookie is HttpOnly, SameSite=Strict, scoped to /support and holds no token.
    sign_in(&browser, READER).await;
    assert!(browser
        .current_url()
        .await
        .unwrap()
        .path()
        .ends_with("/support/instances"));
    assert_eq!(listed(&browser).await, ["alpha", "bravo", "charlie"]);
    let text = page_text(&browser).await;
    for expected in [
        "reader (read-only)",
        "Ready",
        "Stopped",
        "c-1",
        tricky,
        "started",
    ] {
        assert!(text.contains(expected), "{expected} missing from: {text}");
    }
    assert!(
        !exists(&browser, "#instances b").await,
        "a customer id became markup"
    );
    let cookie = browser.get_named_cookie("oc_support").await.unwrap();
    assert_eq!(cookie.http_only(), Some(true));
    assert_eq!(format!("{:?}", cookie.same_site()), "Some(Strict)");
    assert_eq!(cookie.path(), Some("/support"));
    assert!(!cookie.value().contains(READER) && !cookie.value().contains(WRITER));

    // 4. Filter by phase, search by customer id (exact) and by the start of a name.
    browser
        .find(Locator::Id("phase"))
        .await
        .unwrap()
        .select_by_value("Stopped")
        .await
        .unwrap();
    click(&browser, "#filter").await;
    assert_eq!(listed(&browser).await, ["charlie"]);
    browser
        .find(Locator::Id("phase"))
        .await
        .unwrap()
        .select_by_value("")
        .await
        .unwrap();
    browser
        .find(Locator::Id("q"))
        .await
        .unwrap()
        .send_keys("c-1")
        .await
        .unwrap();
    click(&browser, "#filter").await;
    assert_eq!(listed(&browser).await, ["alpha", "charlie"]);
    let q = browser.find(Locator::Id("q")).await.unwrap();
    q.clear().await.unwrap();
    q.send_keys(tricky).await.unwrap();
    click(&browser, "#filter").await;
    assert_eq!(listed(&browser).await, ["bravo"]);
    let q = browser.find(Locator::Id("q")).await.unwrap();
    q.clear().await.unwrap();
    q.send_keys("br").await.unwrap();
    click(&browser, "#filter").await;
    assert_eq!(listed(&browser).await, ["bravo"]);
    browser
        .find(Locator::Id("phase"))
        .await
        .unwrap()
        .select_by_value("Failed")
        .await
        .unwrap();
    click(&browser, "#filter").await;
    assert!(exists(&browser, "#no-instances").await);

    // 5. The reader sees an instance page but no action: no "Reconcile now", no "Approve".
    browser
        .goto(&format!("{base}/instances/charlie"))
        .await
        .unwrap();
    let text = page_text(&browser).await;
    for expected in [
        "Conditions",
        "Pairing",
        "manual",
        "Events (newest first)",
        "Next reconcile",
    ] {
        assert!(text.contains(expected), "{expected} missing from: {text}");
    }
    assert!(!exists(&browser, "#reconcile").await);
    assert!(!exists(&browser, "button.approve").await);

    // 6. Sign out: the cookie is gone and pages ask for a sign-in again.
    click(&browser, "#sign-out").await;
    assert!(browser.find(Locator::Id("token")).await.is_ok());
    assert!(browser.get_named_cookie("oc_support").await.is_err());
    browser.goto(&format!("{base}/instances")).await.unwrap();
    assert!(browser.find(Locator::Id("token")).await.is_ok());

    // 7. The writer opens alpha from the list and asks for a reconcile; the page comes back
    // saying so, with the event on top of the timeline.
    sign_in(&browser, WRITER).await;
    assert!(page_text(&browser).await.contains("Signed in: writer"));
    click(&browser, "a[href='/support/instances/alpha']").await;
    let text = page_text(&browser).await;
    for expected in [
        "Ready",
        "oc-alpha",
        "https://alpha.openclaws.test",
        "Created",
        "Plan: what the next reconcile would do",
        "Planned from the world as last observed",
    ] {
        assert!(text.contains(expected), "{expected} missing from: {text}");
    }
    assert!(
        !exists(&browser, "#why").await,
        "a Ready instance has no why box"
    );
    click(&browser, "#reconcile").await;
    assert!(exists(&browser, "#flash").await);
    // The page refreshes its event list on its own, which can replace the row between finding it
    // and reading it (a stale element under load): read the newest row until it holds still.
    eventually(
        PAGE_DEADLINE,
        "ReconcileRequested as the newest event",
        || async {
            let row = browser
                .find(Locator::Css("#event-list tbody tr"))
                .await
                .ok()?;
            let reason = row.attr("data-reason").await.ok()??;
            (reason == "ReconcileRequested").then_some(())
        },
    )
    .await;
    assert!(stack
        .events("alpha")
        .await
        .iter()
        .any(|e| e["reason"] == "ReconcileRequested"));
    browser.close().await.unwrap();

    // 8. Over plain HTTP: the cookie's attributes (Secure behind TLS), and every client mistake
    // answered with a page and a 4xx.
    let (set, writer) = http_session(&stack, WRITER).await;
    for attr in ["HttpOnly", "SameSite=Strict", "Path=/support"] {
        assert!(set.contains(attr), "{set}");
    }
    assert!(!set.contains("Secure"), "plain http on loopback: {set}");
    assert!(!set.contains(WRITER));
    let resp = raw_http()
        .post(format!("{base}/login"))
        .header("x-forwarded-proto", "https")
        .form(&[("token", WRITER)])
        .send()
        .await
        .unwrap();
    assert!(resp.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .contains("Secure"));
    let (_, reader) = http_session(&stack, READER).await;

    let (code, body, _) = post_form(&stack, "/support/login", None, &[("token", "nope")]).await;
    assert_eq!(code, StatusCode::UNAUTHORIZED);
    assert!(body.contains("not valid"), "{body}");
    let (code, _, _) = post_form(&stack, "/support/login", None, &[("token", "")]).await;
    assert_eq!(code, StatusCode::UNAUTHORIZED);
    let resp = raw_http()
        .post(format!("{base}/login"))
        .header("content-type", "application/json")
        .body("{\"token\": 1}")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);

    let (code, page) = get_page(&stack, "/support/instances/alpha", Some(&writer)).await;
    assert_eq!(code, StatusCode::OK);
    let csrf = csrf_of(&page);
    let (code, _, location) = post_form(
        &stack,
        "/support/instances/alpha/reconcile",
        Some(&writer),
        &[("csrf", &csrf)],
    )
    .await;
    assert_eq!(code, StatusCode::SEE_OTHER);
    assert_eq!(
        location.as_deref(),
        Some("/support/instances/alpha?done=reconcile")
    );
    for (cookie, form_csrf, expected) in [
        (None, csrf.as_str(), StatusCode::UNAUTHORIZED),
        (Some(reader.as_str()), csrf.as_str(), StatusCode::FORBIDDEN),
        (Some(writer.as_str()), "forged", StatusCode::FORBIDDEN),
        (Some(writer.as_str()), "", StatusCode::FORBIDDEN),
    ] {
        let (code, body, _) = post_form(
            &stack,
            "/support/instances/alpha/reconcile",
            cookie,
            &[("csrf", form_csrf)],
        )
        .await;
        assert_eq!(code, expected, "{body}");
    }
    let tampered = writer.replacen("oc_support=v1.w", "oc_support=v1.r", 1);
    let (code, _) = get_page(&stack, "/support/instances", Some(&tampered)).await;
    assert_eq!(
        code,
        StatusCode::SEE_OTHER,
        "a tampered cookie is no session"
    );
    for (path, expected) in [
        ("/support/instances/NOT_A_NAME", StatusCode::NOT_FOUND),
        ("/support/instances/zulu", StatusCode::NOT_FOUND),
        ("/support/no-such-page", StatusCode::NOT_FOUND),
        ("/support/instances?phase=Sleeping", StatusCode::BAD_REQUEST),
    ] {
        let (code, body) = get_page(&stack, path, Some(&writer)).await;
        assert_eq!(code, expected, "{path}: {body}");
        assert!(body.contains("<!DOCTYPE html>"), "{path}: {body}");
    }
    for (path, form, expected) in [
        (
            "/support/instances/zulu/reconcile",
            vec![("csrf", csrf.as_str())],
            StatusCode::NOT_FOUND,
        ),
        (
            "/support/instances/alpha/pairing/approvals",
            vec![("csrf", csrf.as_str()), ("request_id", "r-1")],
            StatusCode::CONFLICT,
        ),
        (
            "/support/instances/charlie/pairing/approvals",
            vec![("csrf", csrf.as_str()), ("request_id", "")],
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
    ] {
        let (code, body, _) = post_form(&stack, path, Some(&writer), &form).await;
        assert_eq!(code, expected, "{path}: {body}");
    }
    for (path, cookie, expected) in [
        ("/support", None, "/support/login"),
        ("/support/", None, "/support"),
        ("/support", Some(writer.as_str()), "/support/instances"),
        (
            "/support/instances/alpha",
            None,
            "/support/login?next=/support/instances/alpha",
        ),
    ] {
        let mut req = raw_http().get(format!("{}{path}", stack.api_url));
        if let Some(c) = cookie {
            req = req.header("cookie", c);
        }
        let resp = req.send().await.unwrap();
        assert_eq!(resp.status(), StatusCode::SEE_OTHER, "{path}");
        assert_eq!(resp.headers()["location"], expected, "{path}");
    }
    let (code, _) = get_page(&stack, "/support/instances/alpha/reconcile", Some(&writer)).await;
    assert_eq!(code, StatusCode::METHOD_NOT_ALLOWED);
    eprintln!(
        "support_console: sign-in, fleet and reconcile in {:.1} s",
        started.elapsed().as_secs_f64()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn manual_pairing_approved_from_the_instance_page_on_a_real_gateway() {
    let _slot = openclaws_testkit::openclaw::gateway_slot();
    let started = Instant::now();
    let stack = Stack::start(StackOptions {
        gateways: true,
        latency_scale: 0.2,
        resync_seconds: 3600,
        ..StackOptions::default()
    })
    .await;
    let driver = Driver::start().await;
    let (code, body) = stack
        .put(
            "bea",
            json!({"customerId": "c-bea", "region": "iad", "pairing": {"policy": "manual"}}),
        )
        .await;
    assert_eq!(code, StatusCode::CREATED, "{body}");
    stack.wait_ready("bea", Duration::from_secs(90)).await;
    let ready_after = started.elapsed();

    // A device asks to pair through the proxy, with the gateway token the dashboard reads.
    let token = gateway_token(&stack, "bea").await;
    let host = "bea.openclaws.test";
    let device = DeviceIdentity::generate();
    let request = pending_request(
        &devices::browser(&stack, host, &token),
        &device,
        Duration::from_secs(60),
    )
    .await;
    let rid = request.request_id.clone();

    // Support opens the instance page from a link: sign-in, then straight back to it.
    let browser = driver.browser().await;
    browser
        .goto(&format!("{}/support/instances/bea", stack.api_url))
        .await
        .unwrap();
    sign_in(&browser, WRITER).await;
    assert!(browser
        .current_url()
        .await
        .unwrap()
        .path()
        .ends_with("/support/instances/bea"));
    let row = format!("#pending tr[data-request='{rid}']");
    reload_until(&browser, &row, "the pending request on the page").await;
    let text = browser
        .find(Locator::Css(&row))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for expected in ["test browser", "web", "openclaw-control-ui", "Approve"] {
        assert!(text.contains(expected), "{expected} missing from: {text}");
    }
    assert!(page_text(&browser).await.contains("AwaitingApproval"));
    assert!(
        !browser.source().await.unwrap().contains(&token),
        "the gateway token is on the page"
    );
    let shot = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/support-console.png");
    full_page_screenshot(&browser, &shot).await;

    // "Approve": recorded like POST .../pairing/approvals; the controller approves it on the
    // gateway and the device connects.
    click(&browser, &format!("{row} button.approve")).await;
    assert!(exists(&browser, "#flash").await);
    let body = stack.get("bea").await.1;
    assert!(
        body["spec"]["pairing"]["approvals"]
            .as_array()
            .is_some_and(|a| a.iter().any(|x| x["requestId"] == rid.as_str())),
        "{body}"
    );
    let client = eventually(
        Duration::from_secs(30),
        "the approved device connects",
        || async {
            connect_browser(&devices::browser(&stack, host, &token), &device)
                .await
                .ok()
        },
    )
    .await;
    let mut scopes = client.granted_scopes().to_vec();
    scopes.sort();
    assert_eq!(scopes, vec![SCOPE_READ, SCOPE_WRITE]);
    client.close().await;
    reload_until(
        &browser,
        "#recent tbody tr .badge.ok",
        "the approval among the recent results",
    )
    .await;
    let recent = browser
        .find(Locator::Id("recent"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        recent.contains("Approved") && recent.contains(&rid),
        "{recent}"
    );
    browser.close().await.unwrap();
    eprintln!(
        "support_console: Ready in {:.1} s, approved from the page in {:.1} s total; screenshot {}",
        ready_after.as_secs_f64(),
        started.elapsed().as_secs_f64(),
        shot.display()
    );
}

/// The fleet and instance pages follow a watch: an instance created after the fleet page was
/// rendered appears in it, and its instance page, opened while it provisions, shows `Ready`
/// when the controller gets there, neither page reloaded.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pages_update_live_from_the_watch() {
    let stack = Stack::start(StackOptions {
        latency_scale: 0.5,
        ..StackOptions::default()
    })
    .await;
    let (code, body) = stack
        .put("first", json!({"customerId": "c-1", "region": "iad"}))
        .await;
    assert_eq!(code, StatusCode::CREATED, "{body}");
    let driver = Driver::start().await;
    let browser = driver.browser().await;
    let base = format!("{}/support", stack.api_url);
    browser.goto(&format!("{base}/login")).await.unwrap();
    sign_in(&browser, READER).await;
    assert_eq!(listed(&browser).await, ["first"]);
    // A marker on the page: a reload would lose it.
    browser
        .execute("window.notReloaded = true", vec![])
        .await
        .unwrap();
    stack
        .put("second", json!({"customerId": "c-1", "region": "iad"}))
        .await;
    eventually(
        PAGE_DEADLINE,
        "the new instance in the fleet list",
        || async { (listed(&browser).await == ["first", "second"]).then_some(()) },
    )
    .await;
    let kept = browser
        .execute("return window.notReloaded === true", vec![])
        .await
        .unwrap();
    assert_eq!(kept, json!(true), "the fleet page was updated in place");

    browser
        .goto(&format!("{base}/instances/second"))
        .await
        .unwrap();
    browser
        .execute("window.notReloaded = true", vec![])
        .await
        .unwrap();
    eventually(PAGE_DEADLINE, "Ready on the instance page", || async {
        let phase = browser.find(Locator::Id("phase")).await.ok()?;
        (phase.text().await.ok()? == "Ready").then_some(())
    })
    .await;
    let kept = browser
        .execute("return window.notReloaded === true", vec![])
        .await
        .unwrap();
    assert_eq!(
        kept,
        json!(true),
        "the page was updated in place, not reloaded"
    );
}
