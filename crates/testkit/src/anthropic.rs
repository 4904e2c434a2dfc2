//! A fake Anthropic Messages API for tests: a real gateway pointed at it
//! (`models.providers.anthropic.baseUrl`, which the controller sets from
//! `OPENCLAWS_LLM_PROXY_URL`) gets answers the way api.anthropic.com gives them, and the test
//! reads what the agent asked (system prompt, messages, tools, credential).
//!
//! It speaks the Messages API as Anthropic publishes it
//! (<https://docs.anthropic.com/en/api/messages>, `/en/api/messages-streaming`, `/en/api/errors`):
//! `POST /v1/messages` with `x-api-key` (or `authorization: Bearer` for OAuth tokens) and
//! `anthropic-version`; a JSON `Message` when `stream` is false, and when it is true a
//! server-sent event stream `message_start`, then per content block `content_block_start`,
//! `content_block_delta`s and `content_block_stop`, then `message_delta` and `message_stop`;
//! errors as `{"type":"error","error":{"type","message"},"request_id"}` with Anthropic's status
//! codes. It also serves `GET /v1/models` (OpenClaw's Anthropic plugin lists models from it) and
//! `POST /v1/messages/count_tokens`.

mod wire;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use openclaws_gateway::proxy_token::ProxyTokenKey;
use serde_json::Value;
use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
pub use wire::{Block, Reply};

/// Which credentials the fake accepts.
#[derive(Clone)]
pub enum Auth {
    /// Any non-empty `x-api-key` or bearer token.
    AnyKey,
    /// Exactly this key.
    Key(String),
    /// An OpenClaws LLM proxy token (HS256) that this key verifies, as our LLM proxy does.
    ProxyToken(ProxyTokenKey),
}

/// The credential a request carried.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Credential {
    /// `x-api-key: …`
    ApiKey(String),
    /// `authorization: Bearer …`
    Bearer(String),
    /// Neither header.
    Missing,
}

impl Credential {
    /// The key or token, whichever header carried it.
    pub fn secret(&self) -> Option<&str> {
        match self {
            Credential::ApiKey(key) | Credential::Bearer(key) => Some(key),
            Credential::Missing => None,
        }
    }
}

/// One `POST /v1/messages` the fake received.
#[derive(Debug, Clone)]
pub struct MessagesRequest {
    /// Header names (lowercase) and values.
    pub headers: BTreeMap<String, String>,
    /// The credential used.
    pub credential: Credential,
    /// The whole JSON body.
    pub body: Value,
    /// `body.model`.
    pub model: String,
    /// `body.stream` (false when absent).
    pub stream: bool,
    /// The system prompt's text: the string, or the `text` of each block joined by newlines.
    pub system: String,
    /// `body.messages`.
    pub messages: Vec<Value>,
    /// The names of `body.tools`.
    pub tools: Vec<String>,
    /// The HTTP status the fake answered.
    pub answered: u16,
}

impl MessagesRequest {
    /// The text of the last `user` message (its string, or its `text` blocks joined).
    pub fn last_user_text(&self) -> String {
        self.messages
            .iter()
            .rev()
            .find(|m| m["role"] == "user")
            .map(|m| wire::content_text(&m["content"]))
            .unwrap_or_default()
    }

    /// Every `tool_result` block in the conversation, in order.
    pub fn tool_results(&self) -> Vec<Value> {
        self.messages
            .iter()
            .filter_map(|m| m["content"].as_array())
            .flatten()
            .filter(|block| block["type"] == "tool_result")
            .cloned()
            .collect()
    }

    /// Whether the conversation already holds the result of tool call `tool_use_id`.
    pub fn has_tool_result(&self, tool_use_id: &str) -> bool {
        self.tool_results()
            .iter()
            .any(|block| block["tool_use_id"] == tool_use_id)
    }
}

/// Any request the fake received (every path), for what a client calls besides messages.
#[derive(Debug, Clone)]
pub struct Call {
    /// `GET` or `POST`.
    pub method: String,
    /// The path, as sent.
    pub path: String,
}

/// A scripted answer: taken by the first request it matches (every request when `when` is
/// `None`), once.
struct Scripted {
    when: Option<Matcher>,
    reply: Reply,
}

type Matcher = Box<dyn Fn(&MessagesRequest) -> bool + Send + Sync>;

struct Inner {
    auth: Auth,
    fixed: Reply,
    script: VecDeque<Scripted>,
    requests: Vec<MessagesRequest>,
    calls: Vec<Call>,
}

/// A running fake Messages API on 127.0.0.1; stops when dropped.
pub struct FakeAnthropic {
    /// Its base URL (`http://127.0.0.1:{port}`), what `models.providers.anthropic.baseUrl`
    /// (and so `OPENCLAWS_LLM_PROXY_URL`) names: clients add `/v1/messages`.
    pub url: String,
    shared: Shared,
    stop: CancellationToken,
}

#[derive(Clone)]
struct Shared {
    inner: Arc<Mutex<Inner>>,
    seen: Arc<watch::Sender<usize>>,
}

impl Shared {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The model's answer when nothing is scripted.
pub const DEFAULT_COMPLETION: &str = "Hello from the fake model.";

impl FakeAnthropic {
    /// Starts a fake that accepts credentials by `auth` and answers [`DEFAULT_COMPLETION`].
    pub async fn start(auth: Auth) -> FakeAnthropic {
        let shared = Shared {
            inner: Arc::new(Mutex::new(Inner {
                auth,
                fixed: Reply::text(DEFAULT_COMPLETION),
                script: VecDeque::new(),
                requests: Vec::new(),
                calls: Vec::new(),
            })),
            seen: Arc::new(watch::channel(0).0),
        };
        let app = Router::new()
            .route("/v1/messages", post(messages))
            .route("/v1/messages/count_tokens", post(count_tokens))
            .route("/v1/models", get(models))
            .fallback(not_found)
            .with_state(shared.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the fake Anthropic API");
        let addr = listener.local_addr().expect("its address");
        let stop = CancellationToken::new();
        let until = stop.clone();
        tokio::spawn(async move {
            axum::serve(listener, app)
                .with_graceful_shutdown(async move { until.cancelled().await })
                .await
                .ok();
        });
        FakeAnthropic {
            url: format!("http://{addr}"),
            shared,
            stop,
        }
    }

    /// Answers `reply` whenever nothing scripted matches.
    pub fn set_fixed(&self, reply: Reply) {
        self.shared.lock().fixed = reply;
    }

    /// Queues `reply` for the next request.
    pub fn push(&self, reply: Reply) {
        self.shared
            .lock()
            .script
            .push_back(Scripted { when: None, reply });
    }

    /// Queues `reply` for the next request that `when` matches (requests it does not match get
    /// later scripted answers or the fixed one).
    pub fn push_when(
        &self,
        when: impl Fn(&MessagesRequest) -> bool + Send + Sync + 'static,
        reply: Reply,
    ) {
        self.shared.lock().script.push_back(Scripted {
            when: Some(Box::new(when)),
            reply,
        });
    }

    /// Every `POST /v1/messages` so far, in arrival order.
    pub fn requests(&self) -> Vec<MessagesRequest> {
        self.shared.lock().requests.clone()
    }

    /// Every request on any path so far (method and path), in arrival order.
    pub fn calls(&self) -> Vec<Call> {
        self.shared.lock().calls.clone()
    }

    /// Waits until a received `POST /v1/messages` matches `predicate` and returns the first
    /// that does; an error naming what arrived when `deadline` passes first.
    pub async fn wait_for_request(
        &self,
        predicate: impl Fn(&MessagesRequest) -> bool,
        deadline: Duration,
    ) -> anyhow::Result<MessagesRequest> {
        let mut seen = self.shared.seen.subscribe();
        let until = tokio::time::Instant::now() + deadline;
        loop {
            seen.borrow_and_update();
            if let Some(found) = self.requests().into_iter().find(|r| predicate(r)) {
                return Ok(found);
            }
            if tokio::time::timeout_at(until, seen.changed())
                .await
                .is_err()
            {
                let got: Vec<String> = self.requests().iter().map(summary).collect();
                anyhow::bail!("no matching model request within {deadline:?}; got {got:?}");
            }
        }
    }
}

impl Drop for FakeAnthropic {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

/// One line about a request, for a failed wait's message.
fn summary(request: &MessagesRequest) -> String {
    format!(
        "{} stream={} last user message {:?} ({} tool results) -> {}",
        request.model,
        request.stream,
        request.last_user_text(),
        request.tool_results().len(),
        request.answered
    )
}

fn header_map(headers: &HeaderMap) -> BTreeMap<String, String> {
    headers
        .iter()
        .map(|(k, v)| {
            let value = String::from_utf8_lossy(v.as_bytes()).into_owned();
            (k.as_str().to_owned(), value)
        })
        .collect()
}

fn credential(headers: &BTreeMap<String, String>) -> Credential {
    if let Some(key) = headers.get("x-api-key") {
        return Credential::ApiKey(key.clone());
    }
    match headers
        .get("authorization")
        .and_then(|v| v.strip_prefix("Bearer "))
    {
        Some(token) => Credential::Bearer(token.to_owned()),
        None => Credential::Missing,
    }
}

/// Anthropic's answer to a request without an acceptable credential or version, if any.
fn refuse(auth: &Auth, headers: &BTreeMap<String, String>) -> Option<Response> {
    let Some(secret) = credential(headers).secret().map(str::to_owned) else {
        return Some(wire::error(
            StatusCode::UNAUTHORIZED,
            "authentication_error",
            "x-api-key header is required",
        ));
    };
    let valid = match auth {
        Auth::AnyKey => !secret.is_empty(),
        Auth::Key(key) => &secret == key,
        Auth::ProxyToken(key) => key.verify(&secret, chrono::Utc::now()).is_ok(),
    };
    if !valid {
        return Some(wire::error(
            StatusCode::UNAUTHORIZED,
            "authentication_error",
            "invalid x-api-key",
        ));
    }
    headers.get("anthropic-version").is_none().then(|| {
        wire::error(
            StatusCode::BAD_REQUEST,
            "invalid_request_error",
            "anthropic-version: header is required",
        )
    })
}

fn record_call(shared: &Shared, method: &str, uri: &Uri) {
    shared.lock().calls.push(Call {
        method: method.to_owned(),
        path: uri.path().to_owned(),
    });
}

async fn messages(
    State(shared): State<Shared>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    record_call(&shared, "POST", &uri);
    let headers = header_map(&headers);
    let parsed = serde_json::from_slice::<Value>(&body);
    let auth = shared.lock().auth.clone();
    let invalid = parsed
        .as_ref()
        .map_err(|e| e.to_string())
        .and_then(wire::validate_messages_body)
        .err();
    let body = parsed.unwrap_or(Value::Null);
    let mut request = MessagesRequest {
        credential: credential(&headers),
        model: body["model"].as_str().unwrap_or_default().to_owned(),
        stream: body["stream"].as_bool().unwrap_or(false),
        system: wire::content_text(&body["system"]),
        messages: body["messages"].as_array().cloned().unwrap_or_default(),
        tools: tool_names(&body),
        headers,
        body,
        answered: 200,
    };
    let response = match (refuse(&auth, &request.headers), invalid) {
        (Some(refusal), _) => refusal,
        (None, Some(message)) => {
            wire::error(StatusCode::BAD_REQUEST, "invalid_request_error", &message)
        }
        (None, None) => answer(&shared, &request),
    };
    request.answered = response.status().as_u16();
    shared.lock().requests.push(request);
    shared.seen.send_modify(|n| *n += 1);
    response
}

fn tool_names(body: &Value) -> Vec<String> {
    body["tools"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|tool| tool["name"].as_str().map(str::to_owned))
        .collect()
}

/// The scripted answer `request` takes (or the fixed one), as JSON or as an event stream.
fn answer(shared: &Shared, request: &MessagesRequest) -> Response {
    let reply = {
        let mut inner = shared.lock();
        let at = inner
            .script
            .iter()
            .position(|s| s.when.as_ref().is_none_or(|when| when(request)));
        match at.and_then(|at| inner.script.remove(at)) {
            Some(scripted) => scripted.reply,
            None => inner.fixed.clone(),
        }
    };
    match request.stream {
        true => wire::event_stream(&reply, &request.model),
        false => wire::message_json(&reply, &request.model),
    }
}

async fn count_tokens(
    State(shared): State<Shared>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    record_call(&shared, "POST", &uri);
    let auth = shared.lock().auth.clone();
    if let Some(refusal) = refuse(&auth, &header_map(&headers)) {
        return refusal;
    }
    let tokens = body.len().div_ceil(4);
    axum::Json(serde_json::json!({"input_tokens": tokens})).into_response()
}

async fn models(State(shared): State<Shared>, uri: Uri, headers: HeaderMap) -> Response {
    record_call(&shared, "GET", &uri);
    let auth = shared.lock().auth.clone();
    if let Some(refusal) = refuse(&auth, &header_map(&headers)) {
        return refusal;
    }
    axum::Json(wire::model_list()).into_response()
}

async fn not_found(State(shared): State<Shared>, uri: Uri) -> Response {
    record_call(&shared, "?", &uri);
    wire::error(
        StatusCode::NOT_FOUND,
        "not_found_error",
        &format!("Not found: {}", uri.path()),
    )
}

/// A reply of one text block followed by one tool call (`tool_use` stop reason).
pub fn tool_call(text: &str, id: &str, name: &str, input: Value) -> Reply {
    Reply::Blocks(vec![
        Block::Text(text.to_owned()),
        Block::ToolUse {
            id: id.to_owned(),
            name: name.to_owned(),
            input,
        },
    ])
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    async fn post(fake: &FakeAnthropic, key: Option<&str>, body: Value) -> reqwest::Response {
        let mut request = reqwest::Client::new()
            .post(format!("{}/v1/messages", fake.url))
            .header("anthropic-version", "2023-06-01")
            .json(&body);
        if let Some(key) = key {
            request = request.header("x-api-key", key);
        }
        request.send().await.unwrap()
    }

    fn body(stream: bool, text: &str) -> Value {
        json!({"model": "claude-sonnet-4-6", "max_tokens": 64, "stream": stream,
               "system": [{"type": "text", "text": "You are Ada, an OpenClaws agent."}],
               "messages": [{"role": "user", "content": text}]})
    }

    #[tokio::test]
    async fn answers_json_and_streams_and_records_the_request() {
        let fake = FakeAnthropic::start(Auth::Key("k".into())).await;
        let answer: Value = post(&fake, Some("k"), body(false, "hi"))
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(answer["content"][0]["text"], DEFAULT_COMPLETION);
        assert_eq!(answer["stop_reason"], "end_turn");

        fake.push_when(
            |r| r.last_user_text().contains("tool"),
            tool_call("On it.", "toolu_1", "exec", json!({"command": "ls"})),
        );
        let streamed = post(&fake, Some("k"), body(true, "use a tool")).await;
        assert_eq!(
            streamed.headers()["content-type"],
            "text/event-stream; charset=utf-8"
        );
        let text = streamed.text().await.unwrap();
        assert!(text.starts_with("event: message_start\n"), "{text}");
        assert!(text.contains("\"partial_json\""), "{text}");
        assert!(text.ends_with("event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n"));

        let seen = fake
            .wait_for_request(|r| r.stream, Duration::from_secs(5))
            .await
            .unwrap();
        assert_eq!(seen.system, "You are Ada, an OpenClaws agent.");
        assert_eq!(seen.credential, Credential::ApiKey("k".into()));
        assert_eq!(fake.requests().len(), 2);
    }

    #[tokio::test]
    async fn refuses_as_the_api_does() {
        let fake = FakeAnthropic::start(Auth::Key("k".into())).await;
        let missing = post(&fake, None, body(false, "hi")).await;
        assert_eq!(missing.status(), 401);
        let error: Value = missing.json().await.unwrap();
        assert_eq!(error["type"], "error");
        assert_eq!(error["error"]["type"], "authentication_error");
        assert!(error["request_id"].as_str().unwrap().starts_with("req_"));
        assert_eq!(
            post(&fake, Some("wrong"), body(false, "hi")).await.status(),
            401
        );
        let mut no_max = body(false, "hi");
        no_max.as_object_mut().unwrap().remove("max_tokens");
        let invalid = post(&fake, Some("k"), no_max).await;
        assert_eq!(invalid.status(), 400);
        let error: Value = invalid.json().await.unwrap();
        assert_eq!(error["error"]["type"], "invalid_request_error");
        fake.push(Reply::Error {
            status: 529,
            kind: "overloaded_error".into(),
            message: "Overloaded".into(),
        });
        assert_eq!(post(&fake, Some("k"), body(true, "hi")).await.status(), 529);
        let late = fake
            .wait_for_request(|r| r.last_user_text() == "never", Duration::from_millis(50))
            .await;
        assert!(late.is_err());
    }

    #[tokio::test]
    async fn a_proxy_token_is_verified_with_the_key() {
        let key = ProxyTokenKey::new(
            b"test-llm-proxy-key-0123456789abcdef0123",
            "openclaws-llm-proxy",
            chrono::Duration::seconds(90),
        )
        .unwrap();
        let token = key.mint(uuid::Uuid::new_v4(), chrono::Utc::now()).unwrap();
        let fake = FakeAnthropic::start(Auth::ProxyToken(key)).await;
        let ok = post(&fake, Some(token.expose()), body(false, "hi")).await;
        assert_eq!(ok.status(), 200);
        let forged = post(&fake, Some("eyJhbGciOiJIUzI1NiJ9.e30.x"), body(false, "hi")).await;
        assert_eq!(forged.status(), 401);
    }
}
