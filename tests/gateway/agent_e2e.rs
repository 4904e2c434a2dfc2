//! The agent really answers as an OpenClaws agent, on one REAL gateway (simulator process mode)
//! whose model is the test kit's fake Anthropic Messages API (reached as the LLM proxy, with the
//! proxy token the controller minted) and whose Composio is the test kit's fake Composio API:
//!
//! 1. the OpenClaw Control UI in headless Chromium connects with the gateway token, its pairing
//!    request is approved through the API, and a chat message typed into it reaches the model,
//!    whose answer shows on the page: "Ready" means a customer can talk to their agent;
//! 2. the model request carries the identity from `IDENTITY.md` (the display name the customer
//!    chose, and "OpenClaws") and the Composio skill, and the proxy token as `x-api-key`;
//! 3. a scripted `tool_use` makes the agent run `composio-exec` through the `exec` tool, as the
//!    skill tells it to; the call reaches the fake Composio with the customer's user id and the
//!    toolkit version the controller pins, and the tool's result goes back to the model, whose
//!    final answer shows on the page.

use fantoccini::key::Key;
use fantoccini::{Client, Locator};
use openclaws_engine::reconcile::desired::PublicUrl;
use openclaws_gateway::proxy_token::ProxyTokenKey;
use openclaws_testkit::anthropic::{tool_call, Auth, Credential, FakeAnthropic, Reply};
use openclaws_testkit::composio::{FakeComposio, ToolAnswer};
use openclaws_testkit::db::eventually;
use openclaws_testkit::devices::gateway_token;
use openclaws_testkit::stack::{Stack, LLM_PROXY_KEY, WRITER};
use reqwest::StatusCode;
use serde_json::json;
use std::time::{Duration, Instant};

use super::support_console::{full_page_screenshot, Driver};

const NAME: &str = "ada";
const HOST: &str = "ada.openclaws.test";
const DISPLAY_NAME: &str = "Ada Lovelace";
const ENTITY: &str = "cust-ada";
const COMPOSIO_KEY: &str = "ak_test_composio_platform";
const GITHUB_PIN: &str = "20250909_00";
const TOOL: &str = "GITHUB_GET_THE_AUTHENTICATED_USER";
const TOOL_CALL_ID: &str = "toolu_composio_1";
const FINAL_ANSWER: &str = "Your GitHub login is octocat.";
const READY_DEADLINE: Duration = Duration::from_secs(240);
/// An agent turn on a loaded machine: OpenClaw prepares a first turn for up to a minute.
const TURN_DEADLINE: Duration = Duration::from_secs(300);
/// The chat's message box: shown only to a connected, paired browser.
const COMPOSER: &str = "//*[starts-with(@placeholder, 'Message')]";

/// The stack: controller minting proxy tokens for the fake model, the fake Composio as the
/// bridge's API with GitHub pinned, gateways' public origin on the proxy's port over http (the
/// browser reaches `http://ada.openclaws.test:PORT/`).
async fn stack(model: &FakeAnthropic, composio: &FakeComposio) -> (Stack, u16) {
    let mut stack = super::model_stack().await;
    let proxy = url::Url::parse(stack.proxy_url.as_ref().unwrap()).unwrap();
    let port = proxy.port().unwrap();
    stack.settings.gateway.llm_proxy_url = Some(model.url.clone());
    stack.settings.gateway.composio_api_base = Some(composio.api_base());
    stack.settings.gateway.composio_toolkit_versions =
        format!("github={GITHUB_PIN}").parse().unwrap();
    stack.settings.composio_api_key = Some(COMPOSIO_KEY.parse().unwrap());
    stack.settings.public_url = PublicUrl {
        tls: false,
        port: Some(port),
    };
    stack.start_controller().await;
    (stack, port)
}

/// A browser that resolves the instance's hostname to the proxy and treats its plain-http
/// origin as secure (the Control UI's device identity needs WebCrypto).
async fn browser(driver: &Driver, port: u16) -> Client {
    driver
        .browser_with(&[
            format!("--host-resolver-rules=MAP {HOST} 127.0.0.1"),
            format!("--unsafely-treat-insecure-origin-as-secure=http://{HOST}:{port}"),
        ])
        .await
}

/// Opens the Control UI, connects with the token, approves the pairing request it leaves
/// through the API and waits for the chat's message box.
async fn pair_control_ui(
    browser: &Client,
    stack: &Stack,
    port: u16,
    token: &str,
) -> Result<(), String> {
    let url = format!("http://{HOST}:{port}/");
    browser
        .goto(&url)
        .await
        .map_err(|e| format!("open {url}: {e}"))?;
    let secret = browser
        .wait()
        .at_most(Duration::from_secs(60))
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
    let request_id = eventually(TURN_DEADLINE, "the browser's pairing request", || async {
        let body = stack.get(NAME).await.1;
        let pending = body["status"]["pairing"]["pending"]
            .as_array()?
            .first()?
            .clone();
        pending["requestId"].as_str().map(str::to_owned)
    })
    .await;
    let approved = stack
        .http
        .post(format!(
            "{}/v1/instances/{NAME}/pairing/approvals",
            stack.api_url
        ))
        .bearer_auth(WRITER)
        .json(&json!({ "requestId": request_id }))
        .send()
        .await
        .map_err(|e| e.to_string())?;
    if !approved.status().is_success() {
        return Err(format!("the approval was refused: {}", approved.status()));
    }
    browser
        .wait()
        .at_most(TURN_DEADLINE)
        .for_element(Locator::XPath(COMPOSER))
        .await
        .map_err(|e| format!("the Control UI lets the browser in once approved: {e}"))?;
    Ok(())
}

/// Reloads the Control UI and waits for the chat's message box (giving the token again if the
/// page asks for it; the device stays paired).
async fn reopen(browser: &Client, token: &str) -> Result<(), String> {
    browser.refresh().await.map_err(|e| e.to_string())?;
    let either = format!("{COMPOSER} | //input[@type='password']");
    let found = browser
        .wait()
        .at_most(TURN_DEADLINE)
        .for_element(Locator::XPath(&either))
        .await
        .map_err(|e| format!("the Control UI after a reload: {e}"))?;
    if found
        .attr("type")
        .await
        .map_err(|e| e.to_string())?
        .as_deref()
        == Some("password")
    {
        found.send_keys(token).await.map_err(|e| e.to_string())?;
        browser
            .find(Locator::XPath("//button[normalize-space()='Connect']"))
            .await
            .map_err(|e| format!("the Connect button: {e}"))?
            .click()
            .await
            .map_err(|e| e.to_string())?;
        browser
            .wait()
            .at_most(TURN_DEADLINE)
            .for_element(Locator::XPath(COMPOSER))
            .await
            .map_err(|e| format!("the message box after reconnecting: {e}"))?;
    }
    Ok(())
}

/// Types `text` into the chat and sends it, then waits for `answer` on the page.
async fn chat(browser: &Client, text: &str, answer: &str) -> Result<(), String> {
    let composer = browser
        .find(Locator::XPath(COMPOSER))
        .await
        .map_err(|e| format!("the message box: {e}"))?;
    let enter: char = Key::Enter.into();
    composer
        .send_keys(&format!("{text}{enter}"))
        .await
        .map_err(|e| e.to_string())?;
    let shown = format!("//*[not(self::textarea) and contains(text(), {answer:?})]");
    browser
        .wait()
        .at_most(TURN_DEADLINE)
        .for_element(Locator::XPath(&shown))
        .await
        .map_err(|e| format!("the answer `{answer}` on the page: {e}"))?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_agent_answers_as_openclaws_in_the_control_ui_and_runs_composio_tools() {
    let _slot = tokio::task::spawn_blocking(openclaws_testkit::openclaw::gateway_slot)
        .await
        .unwrap();
    let started = Instant::now();
    let key = ProxyTokenKey::new(
        LLM_PROXY_KEY.as_bytes(),
        "openclaws-llm-proxy",
        chrono::Duration::seconds(86_400),
    )
    .unwrap();
    let model = FakeAnthropic::start(Auth::ProxyToken(key.clone())).await;
    let composio = FakeComposio::start(COMPOSIO_KEY).await;
    composio.tool(TOOL, ToolAnswer::Data(json!({"login": "octocat"})));
    let (stack, port) = stack(&model, &composio).await;
    let (code, body) = stack
        .put(
            NAME,
            json!({"customerId": "c-ada", "region": "iad",
                   "identity": {"displayName": DISPLAY_NAME},
                   "composio": {"enabled": true, "entityId": ENTITY},
                   "pairing": {"policy": "manual"}}),
        )
        .await;
    assert_eq!(code, StatusCode::CREATED, "{body}");
    let ready = stack.wait_ready(NAME, READY_DEADLINE).await;
    let uid = ready["metadata"]["uid"].as_str().unwrap().to_owned();
    let ready_after = started.elapsed();

    let token = gateway_token(&stack, NAME).await;
    let driver = Driver::start().await;
    let browser = browser(&driver, port).await;
    let outcome = async {
        pair_control_ui(&browser, &stack, port, &token).await?;
        let asked = Instant::now();
        chat(
            &browser,
            "Hello, who are you?",
            openclaws_testkit::anthropic::DEFAULT_COMPLETION,
        )
        .await?;
        let first_answer = asked.elapsed();
        model.push_when(
            |r| r.tools.iter().any(|t| t == "exec") && r.user_text().contains("GitHub login"),
            tool_call(
                "Let me look that up.",
                TOOL_CALL_ID,
                "exec",
                json!({"command": format!("composio-exec {TOOL}")}),
            ),
        );
        model.push_when(
            |r| r.has_tool_result(TOOL_CALL_ID),
            Reply::text(FINAL_ANSWER),
        );
        // The page keeps a message sent right after a turn in its local queue (it still counts
        // the turn's side work as running): once the turn shows as done, a reload starts it
        // afresh, already paired.
        browser
            .wait()
            .at_most(TURN_DEADLINE)
            .for_element(Locator::XPath(
                "//*[starts-with(normalize-space(text()), 'Done in')]",
            ))
            .await
            .map_err(|e| format!("the first turn shown as done: {e}"))?;
        reopen(&browser, &token).await?;
        let asked = Instant::now();
        chat(&browser, "What is my GitHub login?", FINAL_ANSWER).await?;
        Ok::<_, String>((first_answer, asked.elapsed()))
    }
    .await;
    let shot = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("agent-e2e.png");
    full_page_screenshot(&browser, &shot).await;
    let bodies: Vec<serde_json::Value> = model.requests().iter().map(|r| r.body.clone()).collect();
    let dump = shot.with_file_name("agent-e2e-model-requests.json");
    std::fs::write(&dump, serde_json::to_string_pretty(&bodies).unwrap()).unwrap();
    let _ = browser.close().await;
    let (first_answer, tool_turn) = outcome.unwrap_or_else(|e| {
        panic!(
            "{e} (screenshot: {}; model requests in {}; calls {:?}; composio: {:?})",
            shot.display(),
            dump.display(),
            model.calls(),
            composio.executions()
        )
    });

    // The model request of the first turn: the identity the customer chose, as OpenClaws, the
    // Composio skill listed, and the proxy token the controller minted for this instance.
    let turn = model
        .wait_for_request(|r| r.user_text().contains("who are you"), TURN_DEADLINE)
        .await
        .unwrap();
    assert!(turn.system.contains(DISPLAY_NAME), "{}", turn.system);
    assert!(turn.system.contains("OpenClaws"), "{}", turn.system);
    assert!(turn.system.contains("composio"), "{}", turn.system);
    assert!(turn.stream, "the gateway streams");
    assert_eq!(turn.model, "claude-sonnet-4-6");
    let Credential::ApiKey(sent) = &turn.credential else {
        panic!("the proxy token goes as x-api-key: {:?}", turn.credential);
    };
    assert_eq!(key.verify(sent, chrono::Utc::now()).unwrap().sub, uid);

    // The tool call reached Composio for this customer at the pinned version, and its result
    // went back to the model.
    let executed = composio
        .wait_for_execution(|e| e.tool_slug == TOOL, TURN_DEADLINE)
        .await
        .unwrap();
    assert_eq!(executed.answered, 200);
    assert_eq!(executed.api_key, COMPOSIO_KEY);
    assert_eq!(executed.user_id(), Some(ENTITY));
    assert_eq!(executed.version(), Some(GITHUB_PIN));
    let after_tool = model
        .wait_for_request(|r| r.has_tool_result(TOOL_CALL_ID), TURN_DEADLINE)
        .await
        .unwrap();
    let result = after_tool
        .tool_results()
        .into_iter()
        .find(|b| b["tool_use_id"] == TOOL_CALL_ID)
        .unwrap();
    assert!(result.to_string().contains("octocat"), "{result}");
    let calls: Vec<String> = model
        .calls()
        .iter()
        .map(|c| format!("{} {}", c.method, c.path))
        .collect();
    eprintln!(
        "agent_e2e: Ready in {:.1} s; first answer in the Control UI {:.1} s after sending; \
         Composio tool turn {:.1} s; model endpoints called: {calls:?}; screenshot {}; \
         model requests {}",
        ready_after.as_secs_f64(),
        first_answer.as_secs_f64(),
        tool_turn.as_secs_f64(),
        shot.display(),
        dump.display()
    );
}
