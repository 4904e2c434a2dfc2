//! A WebSocket client for the gateway's protocol v4: the challenge, a signed `connect`, then
//! request/response calls matched by id, each with a deadline.
//!
//! The controller uses it to list and approve device pairing requests (`device.pair.list`,
//! `device.pair.approve`) with its own paired device identity, because through Fly's proxy it is a
//! remote client and a device-less remote connect is granted no scopes.
//!
//! Guarantees: every call ends within its timeout; a call whose answer never comes is removed
//! from the pending table; when the socket closes, every waiting call fails with
//! [`ClientError::Closed`]. The gateway token and device tokens never appear in `Debug` output or
//! errors.

use super::health::is_proxy_attribution_body;
use super::identity::DeviceIdentity;
use super::protocol::{
    decode_payload, ApproveResult, Challenge, ChannelPairingApproved, ChannelPairingDismissed,
    ChannelPairingList, ClientInfo, ConnectParams, EventFrame, GatewayError, HelloOk, InboundFrame,
    PairingList, PairingRequired, ProtocolError, RequestFrame, ResponseFrame, CHALLENGE_EVENT,
    CONTROLLER_SCOPES, PROTOCOL_VERSION,
};
use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex as SyncMutex};
use std::time::Duration;
use tokio::net::TcpStream;
use tokio::sync::{broadcast, oneshot, Mutex};
use tokio::task::JoinHandle;
use tokio::time::{timeout, timeout_at, Instant};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::{HeaderName, HeaderValue};
use tokio_tungstenite::tungstenite::{self, Message};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;
type Pending = Arc<SyncMutex<HashMap<String, oneshot::Sender<ResponseFrame>>>>;

/// Id of the `connect` request (the first request on every connection).
const CONNECT_ID: &str = "connect";
/// Events kept for subscribers that fall behind.
const EVENT_BUFFER: usize = 64;

/// Errors from talking to a gateway over WebSocket.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("invalid gateway URL or header: {0}")]
    BadRequest(String),
    #[error(
        "the gateway refused the connection: proxy attribution required \
         (gateway.trustedProxies does not cover the proxy's address)"
    )]
    ProxyAttributionRequired,
    #[error("the gateway refused the WebSocket upgrade with HTTP {status}: {body}")]
    UpgradeRejected { status: u16, body: String },
    #[error("WebSocket transport error: {0}")]
    Transport(#[source] tungstenite::Error),
    #[error("no answer to {what} within {after:?}")]
    Timeout { what: String, after: Duration },
    #[error("the device is not paired yet; pending request {}", .0.request_id)]
    PairingRequired(PairingRequired),
    #[error("the gateway rejected {method}: {code}: {message}")]
    Rejected {
        method: String,
        code: String,
        message: String,
        details: Option<Value>,
    },
    #[error("the gateway speaks protocol {0}, this client only {PROTOCOL_VERSION}")]
    UnsupportedProtocol(u32),
    #[error("the connection closed")]
    Closed,
    #[error(transparent)]
    Protocol(#[from] ProtocolError),
}

impl ClientError {
    fn rejected(method: &str, error: Option<GatewayError>) -> Self {
        let error = error.unwrap_or(GatewayError {
            code: String::new(),
            message: "no error given".to_owned(),
            details: None,
        });
        ClientError::Rejected {
            method: method.to_owned(),
            code: error.code,
            message: error.message,
            details: error.details,
        }
    }
}

/// How to connect: where, as whom, with which credentials. `Debug` hides the token.
#[derive(Clone)]
pub struct ConnectOptions {
    /// `ws://` or `wss://` URL of the gateway.
    pub url: String,
    /// The gateway's shared token (`OPENCLAW_GATEWAY_TOKEN`).
    pub token: Option<String>,
    pub client: ClientInfo,
    pub role: String,
    pub scopes: Vec<String>,
    /// Extra HTTP headers on the upgrade request (e.g. `Origin`).
    pub headers: Vec<(String, String)>,
    /// Deadline for the upgrade, the challenge and the `connect` answer together.
    pub connect_timeout: Duration,
    /// Deadline for each call after `connect`.
    pub request_timeout: Duration,
}

impl fmt::Debug for ConnectOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConnectOptions")
            .field("url", &self.url)
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .field("client", &self.client)
            .field("role", &self.role)
            .field("scopes", &self.scopes)
            .field("connect_timeout", &self.connect_timeout)
            .field("request_timeout", &self.request_timeout)
            .finish_non_exhaustive()
    }
}

impl ConnectOptions {
    /// Options for the controller: operator role with the scopes needed to approve pairing.
    pub fn controller(url: impl Into<String>, token: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            token: Some(token.into()),
            client: ClientInfo::controller(),
            role: "operator".to_owned(),
            scopes: CONTROLLER_SCOPES.iter().map(|s| s.to_string()).collect(),
            headers: Vec::new(),
            connect_timeout: Duration::from_secs(15),
            request_timeout: Duration::from_secs(15),
        }
    }
}

/// Which pending DM request a `channels.pairing.approve` or `.dismiss` names.
#[derive(Debug, Clone, Copy)]
pub struct ChannelPairingTarget<'a> {
    pub channel: &'a str,
    pub account_id: &'a str,
    pub request_id: &'a str,
}

/// One open, authenticated connection to a gateway.
pub struct GatewayClient {
    writer: Mutex<SplitSink<Socket, Message>>,
    pending: Pending,
    events: broadcast::Sender<EventFrame>,
    reader: JoinHandle<()>,
    next_id: AtomicU64,
    hello: HelloOk,
    request_timeout: Duration,
}

impl fmt::Debug for GatewayClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GatewayClient")
            .field("hello", &self.hello)
            .finish_non_exhaustive()
    }
}

impl Drop for GatewayClient {
    fn drop(&mut self) {
        self.reader.abort();
    }
}

impl GatewayClient {
    /// Opens a connection and performs the handshake. An unpaired device gets
    /// [`ClientError::PairingRequired`] with the request an operator must approve.
    pub async fn connect(
        options: &ConnectOptions,
        identity: Option<&DeviceIdentity>,
    ) -> Result<Self, ClientError> {
        let deadline = Instant::now() + options.connect_timeout;
        let timed_out = |what: &str| ClientError::Timeout {
            what: what.to_owned(),
            after: options.connect_timeout,
        };
        let request = upgrade_request(options)?;
        let (socket, _) = timeout_at(deadline, tokio_tungstenite::connect_async(request))
            .await
            .map_err(|_| timed_out("the WebSocket upgrade"))?
            .map_err(classify_upgrade_error)?;
        let (mut sink, mut stream) = socket.split();

        let challenge = timeout_at(deadline, read_challenge(&mut stream))
            .await
            .map_err(|_| timed_out("the connect challenge"))??;
        let params = ConnectParams::new(
            options.client.clone(),
            &options.role,
            options.scopes.clone(),
            options.token.as_deref(),
            identity,
            &challenge,
        );
        let frame = serde_json::to_string(&RequestFrame::new(CONNECT_ID, "connect", &params))
            .map_err(ProtocolError::BadFrame)?;
        sink.send(Message::text(frame))
            .await
            .map_err(ClientError::Transport)?;

        let answer = timeout_at(deadline, read_response(&mut stream, CONNECT_ID))
            .await
            .map_err(|_| timed_out("connect"))??;
        if !answer.ok {
            let _ = sink.close().await;
            if let Some(pairing) = answer.error.as_ref().and_then(|e| e.pairing_required()) {
                return Err(ClientError::PairingRequired(pairing));
            }
            return Err(ClientError::rejected("connect", answer.error));
        }
        let hello: HelloOk = decode_payload("connect", answer.payload.unwrap_or(Value::Null))?;
        if hello.protocol != PROTOCOL_VERSION {
            return Err(ClientError::UnsupportedProtocol(hello.protocol));
        }

        let pending: Pending = Arc::default();
        let (events, _) = broadcast::channel(EVENT_BUFFER);
        let reader = tokio::spawn(dispatch(stream, pending.clone(), events.clone()));
        Ok(Self {
            writer: Mutex::new(sink),
            pending,
            events,
            reader,
            next_id: AtomicU64::new(1),
            hello,
            request_timeout: options.request_timeout,
        })
    }

    /// What the gateway granted on connect (role, scopes).
    pub fn hello(&self) -> &HelloOk {
        &self.hello
    }

    /// The scopes this connection holds.
    pub fn granted_scopes(&self) -> &[String] {
        &self.hello.auth.scopes
    }

    /// Events the gateway broadcasts from now on (e.g. `device.pair.requested`).
    pub fn subscribe(&self) -> broadcast::Receiver<EventFrame> {
        self.events.subscribe()
    }

    /// Calls `method` and returns its payload, or the gateway's error as
    /// [`ClientError::Rejected`].
    pub async fn call(&self, method: &str, params: Value) -> Result<Value, ClientError> {
        self.call_within(method, params, self.request_timeout).await
    }

    /// [`GatewayClient::call`] with its own deadline, for a call that waits on the gateway (a
    /// `config.patch` answers once the running gateway has applied the write).
    pub async fn call_within(
        &self,
        method: &str,
        params: Value,
        deadline: Duration,
    ) -> Result<Value, ClientError> {
        let id = format!("r{}", self.next_id.fetch_add(1, Ordering::Relaxed));
        let (tx, rx) = oneshot::channel();
        lock(&self.pending).insert(id.clone(), tx);
        let frame = json!({"type": "req", "id": id, "method": method, "params": params});
        let sent = self
            .writer
            .lock()
            .await
            .send(Message::text(frame.to_string()))
            .await;
        if let Err(e) = sent {
            lock(&self.pending).remove(&id);
            return Err(ClientError::Transport(e));
        }
        match timeout(deadline, rx).await {
            Err(_) => {
                lock(&self.pending).remove(&id);
                Err(ClientError::Timeout {
                    what: method.to_owned(),
                    after: deadline,
                })
            }
            Ok(Err(_)) => Err(ClientError::Closed),
            Ok(Ok(res)) if res.ok => Ok(res.payload.unwrap_or(Value::Null)),
            Ok(Ok(res)) => Err(ClientError::rejected(method, res.error)),
        }
    }

    /// `device.pair.list`: pending requests and paired devices (needs `operator.pairing`).
    pub async fn pair_list(&self) -> Result<PairingList, ClientError> {
        let payload = self.call("device.pair.list", json!({})).await?;
        Ok(decode_payload("device.pair.list", payload)?)
    }

    /// `device.pair.approve` for one request id (needs `operator.pairing` and scopes covering the
    /// requested ones).
    pub async fn pair_approve(&self, request_id: &str) -> Result<ApproveResult, ClientError> {
        let payload = self
            .call("device.pair.approve", json!({ "requestId": request_id }))
            .await?;
        Ok(decode_payload("device.pair.approve", payload)?)
    }

    /// `channels.pairing.list`: the channel accounts using DM pairing and their pending DM
    /// access requests (needs `operator.pairing`).
    pub async fn channel_pairing_list(&self) -> Result<ChannelPairingList, ClientError> {
        let payload = self.call("channels.pairing.list", json!({})).await?;
        Ok(decode_payload("channels.pairing.list", payload)?)
    }

    /// `channels.pairing.approve` for one pending DM request; with `notify` the channel tells
    /// the sender (needs `operator.pairing`). A request that is gone is refused with
    /// `INVALID_REQUEST` "pending DM access request no longer exists".
    pub async fn channel_pairing_approve(
        &self,
        target: &ChannelPairingTarget<'_>,
        notify: bool,
    ) -> Result<ChannelPairingApproved, ClientError> {
        let params = json!({
            "channel": target.channel,
            "accountId": target.account_id,
            "requestId": target.request_id,
            "notify": notify,
        });
        let payload = self.call("channels.pairing.approve", params).await?;
        Ok(decode_payload("channels.pairing.approve", payload)?)
    }

    /// `channels.pairing.dismiss`: drops one pending DM request without approving it (the
    /// sender may ask again later).
    pub async fn channel_pairing_dismiss(
        &self,
        target: &ChannelPairingTarget<'_>,
    ) -> Result<ChannelPairingDismissed, ClientError> {
        let params = json!({
            "channel": target.channel,
            "accountId": target.account_id,
            "requestId": target.request_id,
        });
        let payload = self.call("channels.pairing.dismiss", params).await?;
        Ok(decode_payload("channels.pairing.dismiss", payload)?)
    }

    /// Closes the connection politely.
    pub async fn close(self) {
        let _ = self.writer.lock().await.close().await;
    }
}

fn lock(
    pending: &Pending,
) -> std::sync::MutexGuard<'_, HashMap<String, oneshot::Sender<ResponseFrame>>> {
    pending
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn upgrade_request(
    options: &ConnectOptions,
) -> Result<tungstenite::handshake::client::Request, ClientError> {
    let mut request = options
        .url
        .as_str()
        .into_client_request()
        .map_err(|e| ClientError::BadRequest(e.to_string()))?;
    for (name, value) in &options.headers {
        let name = HeaderName::from_bytes(name.as_bytes())
            .map_err(|e| ClientError::BadRequest(format!("header {name}: {e}")))?;
        let value = HeaderValue::from_str(value)
            .map_err(|e| ClientError::BadRequest(format!("header {name}: {e}")))?;
        request.headers_mut().insert(name, value);
    }
    Ok(request)
}

fn classify_upgrade_error(error: tungstenite::Error) -> ClientError {
    match error {
        tungstenite::Error::Http(response) => {
            let status = response.status().as_u16();
            let body = response
                .body()
                .as_deref()
                .map(|b| String::from_utf8_lossy(b).into_owned())
                .unwrap_or_default();
            if status == 403 && is_proxy_attribution_body(&body) {
                ClientError::ProxyAttributionRequired
            } else {
                ClientError::UpgradeRejected { status, body }
            }
        }
        other => ClientError::Transport(other),
    }
}

async fn next_frame(stream: &mut SplitStream<Socket>) -> Result<InboundFrame, ClientError> {
    loop {
        match stream.next().await {
            Some(Ok(Message::Text(text))) => return Ok(InboundFrame::parse(&text)?),
            Some(Ok(Message::Close(_))) | None => return Err(ClientError::Closed),
            Some(Ok(_)) => continue,
            Some(Err(e)) => return Err(ClientError::Transport(e)),
        }
    }
}

async fn read_challenge(stream: &mut SplitStream<Socket>) -> Result<Challenge, ClientError> {
    loop {
        if let InboundFrame::Event(event) = next_frame(stream).await? {
            if event.event == CHALLENGE_EVENT {
                return Ok(decode_payload(CHALLENGE_EVENT, event.payload)?);
            }
        }
    }
}

async fn read_response(
    stream: &mut SplitStream<Socket>,
    id: &str,
) -> Result<ResponseFrame, ClientError> {
    loop {
        if let InboundFrame::Response(res) = next_frame(stream).await? {
            if res.id == id {
                return Ok(res);
            }
        }
    }
}

/// Routes answers to their callers and events to subscribers until the socket ends; then the
/// pending table is cleared so every waiting call sees the closed connection.
async fn dispatch(
    mut stream: SplitStream<Socket>,
    pending: Pending,
    events: broadcast::Sender<EventFrame>,
) {
    loop {
        match next_frame(&mut stream).await {
            Ok(InboundFrame::Response(res)) => {
                if let Some(waiter) = lock(&pending).remove(&res.id) {
                    let _ = waiter.send(res);
                }
            }
            Ok(InboundFrame::Event(event)) => {
                let _ = events.send(event);
            }
            Ok(InboundFrame::Other) | Err(ClientError::Protocol(_)) => continue,
            Err(_) => break,
        }
    }
    lock(&pending).clear();
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::net::TcpListener;
    use tokio_tungstenite::accept_async;

    /// A scripted server: sends a challenge, answers `connect` with hello-ok, then runs `script`
    /// on each later request frame.
    async fn fake_gateway<F>(script: F) -> String
    where
        F: Fn(Value) -> Option<Value> + Send + 'static,
    {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("ws://{}", listener.local_addr().unwrap());
        tokio::spawn(async move {
            let (tcp, _) = listener.accept().await.unwrap();
            let mut ws = accept_async(tcp).await.unwrap();
            let challenge =
                json!({"type":"event","event":"connect.challenge","payload":{"nonce":"n","ts":7}});
            ws.send(Message::text(challenge.to_string())).await.unwrap();
            while let Some(Ok(Message::Text(text))) = ws.next().await {
                let req: Value = serde_json::from_str(&text).unwrap();
                let answer = if req["method"] == "connect" {
                    Some(
                        json!({"type":"res","id":req["id"],"ok":true,"payload":{"type":"hello-ok","protocol":4,
                        "auth":{"role":"operator","scopes":req["params"]["scopes"]}}}),
                    )
                } else {
                    script(req)
                };
                if let Some(answer) = answer {
                    ws.send(Message::text(answer.to_string())).await.unwrap();
                }
            }
        });
        url
    }

    fn options(url: String) -> ConnectOptions {
        let mut options = ConnectOptions::controller(url, "secret-gateway-token");
        options.request_timeout = Duration::from_millis(300);
        options
    }

    #[tokio::test]
    async fn calls_are_matched_by_id_and_errors_are_typed() {
        let url = fake_gateway(|req| {
            let id = req["id"].clone();
            Some(match req["method"].as_str() {
                Some("device.pair.list") => {
                    json!({"type":"res","id":id,"ok":true,"payload":{"pending":[],"paired":[]}})
                }
                _ => {
                    json!({"type":"res","id":id,"ok":false,"error":{"code":"FORBIDDEN","message":"missing scope: operator.pairing"}})
                }
            })
        })
        .await;
        let identity = DeviceIdentity::generate();
        let client = GatewayClient::connect(&options(url), Some(&identity))
            .await
            .unwrap();
        assert!(client
            .granted_scopes()
            .contains(&"operator.pairing".to_owned()));
        assert!(client.pair_list().await.unwrap().pending.is_empty());
        let err = client.pair_approve("r-1").await.unwrap_err();
        assert!(
            matches!(&err, ClientError::Rejected { code, .. } if code == "FORBIDDEN"),
            "{err:?}"
        );
    }

    #[tokio::test]
    async fn channel_pairing_calls_send_openclaws_params_and_read_its_answers() {
        let url = fake_gateway(|req| {
            let id = req["id"].clone();
            let params = req["params"].clone();
            let payload = match req["method"].as_str() {
                Some("channels.pairing.list") if params == json!({}) => json!({
                    "accounts": [{"channel": "telegram", "channelLabel": "Telegram", "accountId": "default", "notifySupported": true}],
                    "requests": [{"requestId": "q1", "channel": "telegram", "channelLabel": "Telegram",
                        "accountId": "default", "senderId": "42", "senderLabel": "Telegram user id",
                        "metadata": {"firstName": "Ada", "lastName": "L", "username": "ada"},
                        "createdAt": "2026-12-01T07:00:00.000Z", "lastSeenAt": "2026-12-01T07:00:00.000Z",
                        "expiresAt": "2026-12-01T08:00:00.000Z", "notifySupported": true}],
                    "commandOwnerConfigured": false,
                    "limits": {"pendingPerAccount": 3, "ttlMs": 3600000}
                }),
                Some("channels.pairing.approve")
                    if params == json!({"channel": "telegram", "accountId": "default", "requestId": "q1", "notify": true}) =>
                {
                    json!({"requestId": "q1", "senderId": "42", "notification": "sent", "commandOwnerBootstrap": "not-requested"})
                }
                Some("channels.pairing.dismiss")
                    if params == json!({"channel": "telegram", "accountId": "default", "requestId": "q1"}) =>
                {
                    json!({"requestId": "q1", "senderId": "42"})
                }
                _ => {
                    return Some(json!({"type":"res","id":id,"ok":false,"error":{"code":"INVALID_REQUEST","message":"pending DM access request no longer exists"}}))
                }
            };
            Some(json!({"type":"res","id":id,"ok":true,"payload":payload}))
        })
        .await;
        let client = GatewayClient::connect(&options(url), None).await.unwrap();
        let list = client.channel_pairing_list().await.unwrap();
        assert_eq!(list.accounts[0].account_id, "default");
        let request = &list.requests[0];
        assert_eq!(
            (request.request_id.as_str(), request.sender_id.as_str()),
            ("q1", "42")
        );
        assert_eq!(request.sender_name().as_deref(), Some("Ada L"));
        let target = ChannelPairingTarget {
            channel: "telegram",
            account_id: "default",
            request_id: "q1",
        };
        let approved = client.channel_pairing_approve(&target, true).await.unwrap();
        assert_eq!(approved.notification, "sent");
        let dismissed = client.channel_pairing_dismiss(&target).await.unwrap();
        assert_eq!(dismissed.sender_id, "42");
        let gone = ChannelPairingTarget {
            request_id: "gone",
            ..target
        };
        let err = client.channel_pairing_dismiss(&gone).await.unwrap_err();
        assert!(
            matches!(&err, ClientError::Rejected { code, .. } if code == "INVALID_REQUEST"),
            "{err:?}"
        );
    }

    #[tokio::test]
    async fn an_unanswered_call_times_out_and_is_forgotten() {
        let url = fake_gateway(|_| None).await;
        let client = GatewayClient::connect(&options(url), None).await.unwrap();
        let err = client.call("health", json!({})).await.unwrap_err();
        assert!(matches!(err, ClientError::Timeout { .. }), "{err:?}");
        assert!(lock(&client.pending).is_empty());
    }

    #[test]
    fn options_debug_hides_the_token() {
        let text = format!("{:?}", options("ws://x".to_owned()));
        assert!(!text.contains("secret-gateway-token"), "{text}");
    }

    #[test]
    fn a_403_proxy_attribution_body_gets_its_own_variant() {
        let body = br#"{"error":{"message":"Proxy client attribution is required.","type":"proxy_attribution_required"}}"#;
        let response = tungstenite::http::Response::builder()
            .status(403)
            .body(Some(body.to_vec()))
            .unwrap();
        let err = classify_upgrade_error(tungstenite::Error::Http(Box::new(response)));
        assert!(
            matches!(err, ClientError::ProxyAttributionRequired),
            "{err:?}"
        );
        let other = tungstenite::http::Response::builder()
            .status(403)
            .body(Some(b"forbidden".to_vec()))
            .unwrap();
        let err = classify_upgrade_error(tungstenite::Error::Http(Box::new(other)));
        assert!(
            matches!(err, ClientError::UpgradeRejected { status: 403, .. }),
            "{err:?}"
        );
    }
}
