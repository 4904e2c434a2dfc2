//! Wire types of the gateway's WebSocket protocol (v4), with no I/O.
//!
//! Frames are JSON text messages of three types (`docs/reference/openclaw-gateway.md` §4):
//! - the server opens with `{"type":"event","event":"connect.challenge","payload":{"nonce","ts"}}`;
//! - every call is `{"type":"req","id","method","params"}`, the first one being `connect`;
//! - every answer is `{"type":"res","id","ok",payload|error}`; `connect` answers `hello-ok`.
//!
//! Types keep only the fields the controller reads; unknown fields are ignored so newer gateways
//! still parse. Fields that carry credentials (device tokens) have redacting `Debug`.

use super::identity::{ConnectSignature, DeviceIdentity};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::fmt;

/// The only protocol version this client speaks.
pub const PROTOCOL_VERSION: u32 = 4;
/// Event that opens every connection.
pub const CHALLENGE_EVENT: &str = "connect.challenge";
/// Error code of a connect from a device that is not paired yet.
pub const NOT_PAIRED: &str = "NOT_PAIRED";
/// Scope needed for `device.pair.list` and `device.pair.approve`.
pub const SCOPE_PAIRING: &str = "operator.pairing";
/// Scope that implies every operator scope.
pub const SCOPE_ADMIN: &str = "operator.admin";
/// Scope to read gateway state.
pub const SCOPE_READ: &str = "operator.read";
/// Scope to act (chat, send).
pub const SCOPE_WRITE: &str = "operator.write";
/// Scopes the controller asks for: approving requires covering the requested scopes, which
/// `operator.admin` does.
pub const CONTROLLER_SCOPES: [&str; 3] = [SCOPE_ADMIN, SCOPE_PAIRING, SCOPE_READ];

/// Errors from decoding frames.
#[derive(Debug, thiserror::Error)]
pub enum ProtocolError {
    #[error("the gateway sent a frame that is not valid JSON of a known type: {0}")]
    BadFrame(#[source] serde_json::Error),
    #[error("the result of {method} has an unexpected shape: {source}")]
    BadPayload {
        method: String,
        #[source]
        source: serde_json::Error,
    },
}

/// Who is connecting: the gateway uses `id` and `mode` to pick its rules (e.g. the Control UI is
/// `openclaw-control-ui`/`webchat`, the CLI `cli`/`cli`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ClientInfo {
    pub id: String,
    pub version: String,
    pub platform: String,
    pub mode: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device_family: Option<String>,
    /// The gateway build a Control UI page was served by; a page from the gateway's own origin
    /// must carry it, or the gateway asks it to reload (`PROTOCOL_MISMATCH`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub build_id: Option<String>,
}

impl ClientInfo {
    /// How the controller presents itself: a CLI-style operator client named after the product.
    pub fn controller() -> Self {
        Self {
            id: "cli".to_owned(),
            version: env!("CARGO_PKG_VERSION").to_owned(),
            platform: "linux".to_owned(),
            mode: "cli".to_owned(),
            display_name: Some("OpenClaws controller".to_owned()),
            device_family: None,
            build_id: None,
        }
    }
}

/// The challenge the server sends first; the connect signature must cover both fields.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Challenge {
    pub nonce: String,
    pub ts: i64,
}

/// The `device` block of `connect`: proof that the caller holds the identity's private key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DeviceProof {
    pub id: String,
    pub public_key: String,
    pub signature: String,
    pub signed_at: i64,
    pub nonce: String,
}

/// `auth` of `connect`. `Debug` hides the token.
#[derive(Clone, Default, PartialEq, Eq, Serialize)]
pub struct ConnectAuth {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
}

impl fmt::Debug for ConnectAuth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConnectAuth")
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

/// Parameters of the `connect` request.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ConnectParams {
    pub min_protocol: u32,
    pub max_protocol: u32,
    pub client: ClientInfo,
    pub role: String,
    pub scopes: Vec<String>,
    pub caps: Vec<String>,
    pub commands: Vec<String>,
    pub permissions: serde_json::Map<String, Value>,
    pub auth: ConnectAuth,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub device: Option<DeviceProof>,
    pub user_agent: String,
}

impl ConnectParams {
    /// Builds `connect` for a challenge, signing it when an identity is given (a device-less
    /// connect keeps its scopes only on direct loopback).
    pub fn new(
        client: ClientInfo,
        role: &str,
        scopes: Vec<String>,
        token: Option<&str>,
        identity: Option<&DeviceIdentity>,
        challenge: &Challenge,
    ) -> Self {
        let device = identity.map(|identity| DeviceProof {
            id: identity.device_id(),
            public_key: identity.public_key_base64url(),
            signature: identity.sign_connect(&ConnectSignature {
                client_id: &client.id,
                client_mode: &client.mode,
                role,
                scopes: &scopes,
                signed_at_ms: challenge.ts,
                token,
                nonce: &challenge.nonce,
                platform: &client.platform,
                device_family: client.device_family.as_deref(),
            }),
            signed_at: challenge.ts,
            nonce: challenge.nonce.clone(),
        });
        let user_agent = format!("openclaws-controller/{}", env!("CARGO_PKG_VERSION"));
        Self {
            min_protocol: PROTOCOL_VERSION,
            max_protocol: PROTOCOL_VERSION,
            client,
            role: role.to_owned(),
            scopes,
            caps: Vec::new(),
            commands: Vec::new(),
            permissions: serde_json::Map::new(),
            auth: ConnectAuth {
                token: token.map(str::to_owned),
            },
            device,
            user_agent,
        }
    }
}

/// A request frame as sent.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RequestFrame<'a, P: Serialize> {
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub id: &'a str,
    pub method: &'a str,
    pub params: P,
}

impl<'a, P: Serialize> RequestFrame<'a, P> {
    /// A `req` frame with the given id.
    pub fn new(id: &'a str, method: &'a str, params: P) -> Self {
        Self {
            kind: "req",
            id,
            method,
            params,
        }
    }
}

/// An error as the gateway reports it in a `res` frame.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct GatewayError {
    #[serde(default)]
    pub code: String,
    #[serde(default)]
    pub message: String,
    #[serde(default)]
    pub details: Option<Value>,
}

impl GatewayError {
    /// The pending pairing request this error announces, if it is a `NOT_PAIRED` with details.
    pub fn pairing_required(&self) -> Option<PairingRequired> {
        if self.code != NOT_PAIRED {
            return None;
        }
        serde_json::from_value(self.details.clone()?).ok()
    }
}

/// Details of a `NOT_PAIRED` connect answer: the request an operator must approve.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PairingRequired {
    pub request_id: String,
    pub device_id: String,
    #[serde(default)]
    pub requested_role: Option<String>,
    #[serde(default)]
    pub requested_scopes: Vec<String>,
}

/// A `res` frame.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct ResponseFrame {
    pub id: String,
    pub ok: bool,
    #[serde(default)]
    pub payload: Option<Value>,
    #[serde(default)]
    pub error: Option<GatewayError>,
}

/// An `event` frame.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct EventFrame {
    pub event: String,
    #[serde(default)]
    pub payload: Value,
}

/// Any frame the server may send.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(tag = "type")]
pub enum InboundFrame {
    #[serde(rename = "res")]
    Response(ResponseFrame),
    #[serde(rename = "event")]
    Event(EventFrame),
    #[serde(other)]
    Other,
}

impl InboundFrame {
    /// Parses one text message.
    pub fn parse(text: &str) -> Result<Self, ProtocolError> {
        serde_json::from_str(text).map_err(ProtocolError::BadFrame)
    }
}

/// The successful answer to `connect`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct HelloOk {
    pub protocol: u32,
    pub auth: HelloAuth,
}

/// What the gateway granted. `Debug` hides the device token.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HelloAuth {
    #[serde(default)]
    pub role: Option<String>,
    #[serde(default)]
    pub scopes: Vec<String>,
    /// A per-device credential; a secret.
    #[serde(default)]
    pub device_token: Option<String>,
}

impl fmt::Debug for HelloAuth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HelloAuth")
            .field("role", &self.role)
            .field("scopes", &self.scopes)
            .field(
                "device_token",
                &self.device_token.as_ref().map(|_| "<redacted>"),
            )
            .finish()
    }
}

/// Result of `device.pair.list`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct PairingList {
    #[serde(default)]
    pub pending: Vec<PendingRequest>,
    #[serde(default)]
    pub paired: Vec<PairedDevice>,
}

/// A pending device pairing request (expires after 5 minutes; a reconnect with unchanged
/// parameters keeps its id).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PendingRequest {
    pub request_id: String,
    pub device_id: String,
    #[serde(default)]
    pub display_name: Option<String>,
    #[serde(default)]
    pub platform: Option<String>,
    #[serde(default)]
    pub client_id: Option<String>,
    #[serde(default)]
    pub client_mode: Option<String>,
    #[serde(default)]
    pub role: Option<String>,
    #[serde(default)]
    pub roles: Vec<String>,
    #[serde(default)]
    pub scopes: Vec<String>,
    #[serde(default)]
    pub remote_ip: Option<String>,
    #[serde(default)]
    pub is_repair: bool,
    /// When the request was made, in milliseconds since the epoch.
    #[serde(default)]
    pub ts: i64,
}

/// A paired device. Its issued tokens are deliberately not parsed.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PairedDevice {
    pub device_id: String,
    #[serde(default)]
    pub display_name: Option<String>,
    #[serde(default)]
    pub client_id: Option<String>,
    #[serde(default)]
    pub roles: Vec<String>,
    #[serde(default)]
    pub scopes: Vec<String>,
    #[serde(default)]
    pub approved_via: Option<String>,
}

/// Result of `device.pair.approve`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ApproveResult {
    pub request_id: String,
    pub device: PairedDevice,
}

/// Result of `channels.pairing.list`: the channel accounts whose DM policy is `pairing` and
/// their pending DM access requests (OpenClaw's `ChannelsPairingListResultSchema`). The
/// human pairing code a stranger receives is deliberately not part of it: requests are named
/// by an opaque `requestId`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ChannelPairingList {
    #[serde(default)]
    pub accounts: Vec<ChannelPairingAccount>,
    #[serde(default)]
    pub requests: Vec<ChannelPairingRequest>,
}

/// A channel account that uses DM pairing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ChannelPairingAccount {
    pub channel: String,
    pub account_id: String,
    /// Whether the channel can tell the sender that they were approved.
    #[serde(default)]
    pub notify_supported: bool,
}

/// A pending DM access request: an unknown sender who wrote to the bot and got a pairing code
/// (expires one hour after `createdAt`; at most 3 pending per channel account).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ChannelPairingRequest {
    /// Opaque id (a hash of channel, account, sender and creation time) to approve or dismiss by.
    pub request_id: String,
    pub channel: String,
    pub account_id: String,
    /// The sender's id on the channel (a Telegram user id, a Discord user id, ...).
    pub sender_id: String,
    /// What the sender id is called on the channel (`Telegram user id`, ...).
    #[serde(default)]
    pub sender_label: Option<String>,
    /// What the channel knows of the sender (Telegram: `username`, `firstName`, `lastName`).
    #[serde(default)]
    pub metadata: std::collections::BTreeMap<String, String>,
    /// ISO-8601 times, as the gateway writes them.
    pub created_at: String,
    #[serde(default)]
    pub last_seen_at: Option<String>,
    pub expires_at: String,
    #[serde(default)]
    pub notify_supported: bool,
}

impl ChannelPairingRequest {
    /// A display name for the sender from the channel's metadata: first and last name, else
    /// `@username`.
    pub fn sender_name(&self) -> Option<String> {
        let field = |k: &str| {
            self.metadata
                .get(k)
                .map(|v| v.trim())
                .filter(|v| !v.is_empty())
        };
        let full: Vec<&str> = [field("firstName"), field("lastName")]
            .into_iter()
            .flatten()
            .collect();
        if !full.is_empty() {
            return Some(full.join(" "));
        }
        field("username").map(|u| format!("@{u}"))
    }
}

/// Result of `channels.pairing.approve`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ChannelPairingApproved {
    pub request_id: String,
    pub sender_id: String,
    /// `not-requested`, `sent`, `unsupported` or `failed`.
    pub notification: String,
}

/// Result of `channels.pairing.dismiss`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ChannelPairingDismissed {
    pub request_id: String,
    pub sender_id: String,
}

/// Decodes the payload of a successful call into its typed result.
pub fn decode_payload<T: serde::de::DeserializeOwned>(
    method: &str,
    payload: Value,
) -> Result<T, ProtocolError> {
    serde_json::from_value(payload).map_err(|source| ProtocolError::BadPayload {
        method: method.to_owned(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn connect_params_have_the_wire_shape_and_a_valid_signature() {
        let identity = DeviceIdentity::generate();
        let challenge = Challenge {
            nonce: "n-1".to_owned(),
            ts: 42,
        };
        let scopes: Vec<String> = CONTROLLER_SCOPES.iter().map(|s| s.to_string()).collect();
        let params = ConnectParams::new(
            ClientInfo::controller(),
            "operator",
            scopes.clone(),
            Some("tok"),
            Some(&identity),
            &challenge,
        );
        let wire = serde_json::to_value(&params).unwrap();
        assert_eq!(wire["minProtocol"], 4);
        assert_eq!(wire["maxProtocol"], 4);
        assert_eq!(wire["client"]["id"], "cli");
        assert_eq!(wire["client"]["displayName"], "OpenClaws controller");
        assert!(wire["client"].get("deviceFamily").is_none());
        assert_eq!(wire["auth"]["token"], "tok");
        assert_eq!(wire["device"]["id"], identity.device_id());
        assert_eq!(wire["device"]["publicKey"], identity.public_key_base64url());
        assert_eq!(wire["device"]["signedAt"], 42);
        assert_eq!(wire["device"]["nonce"], "n-1");
        let expected = identity.sign_connect(&ConnectSignature {
            client_id: "cli",
            client_mode: "cli",
            role: "operator",
            scopes: &scopes,
            signed_at_ms: 42,
            token: Some("tok"),
            nonce: "n-1",
            platform: "linux",
            device_family: None,
        });
        assert_eq!(wire["device"]["signature"], expected);
        let text = format!("{params:?}");
        assert!(!text.contains("tok\""), "token leaked into Debug: {text}");
    }

    #[test]
    fn device_less_connect_has_no_device_block() {
        let params = ConnectParams::new(
            ClientInfo::controller(),
            "operator",
            vec![],
            None,
            None,
            &Challenge {
                nonce: "n".to_owned(),
                ts: 1,
            },
        );
        let wire = serde_json::to_value(&params).unwrap();
        assert!(wire.get("device").is_none());
        assert_eq!(wire["auth"], json!({}));
    }

    #[test]
    fn inbound_frames_parse_by_type() {
        let challenge = InboundFrame::parse(
            r#"{"type":"event","event":"connect.challenge","payload":{"nonce":"x","ts":5}}"#,
        )
        .unwrap();
        let InboundFrame::Event(event) = challenge else {
            panic!("not an event: {challenge:?}")
        };
        let c: Challenge = serde_json::from_value(event.payload).unwrap();
        assert_eq!(c.ts, 5);
        assert_eq!(
            InboundFrame::parse(r#"{"type":"tick"}"#).unwrap(),
            InboundFrame::Other
        );
        assert!(InboundFrame::parse("not json").is_err());
    }

    #[test]
    fn not_paired_error_yields_the_request() {
        let frame = InboundFrame::parse(
            &json!({"type":"res","id":"connect","ok":false,"error":{
                "code":"NOT_PAIRED","message":"pairing required: device is not approved yet",
                "details":{"code":"PAIRING_REQUIRED","reason":"not-paired","requestId":"r-1",
                    "deviceId":"d-1","requestedRole":"operator","requestedScopes":["operator.read"]}}})
            .to_string(),
        )
        .unwrap();
        let InboundFrame::Response(res) = frame else {
            panic!("not a response")
        };
        let pairing = res.error.unwrap().pairing_required().unwrap();
        assert_eq!(pairing.request_id, "r-1");
        assert_eq!(pairing.requested_scopes, vec!["operator.read"]);
        let other = GatewayError {
            code: "INVALID_REQUEST".to_owned(),
            message: String::new(),
            details: Some(json!({"requestId":"r"})),
        };
        assert!(other.pairing_required().is_none());
    }

    #[test]
    fn pairing_list_parses_the_reference_shape_and_hides_tokens() {
        let list: PairingList = decode_payload(
            "device.pair.list",
            json!({"pending":[{"requestId":"r","deviceId":"d","publicKey":"k","displayName":"test control ui",
                "platform":"web","clientId":"openclaw-control-ui","clientMode":"webchat","role":"operator",
                "roles":["operator"],"scopes":["operator.read","operator.write"],"remoteIp":"203.0.113.7",
                "silent":false,"isRepair":false,"ts":1795311754000_i64}],
              "paired":[{"deviceId":"p","roles":["operator"],"scopes":[],"approvedVia":"owner",
                "tokens":[{"token":"secret-device-token"}]}]}),
        )
        .unwrap();
        assert_eq!(list.pending[0].remote_ip.as_deref(), Some("203.0.113.7"));
        assert_eq!(list.pending[0].ts, 1_795_311_754_000);
        assert_eq!(list.paired[0].approved_via.as_deref(), Some("owner"));
        assert!(!format!("{list:?}").contains("secret-device-token"));
        assert!(decode_payload::<PairingList>("device.pair.list", json!({"pending": 3})).is_err());
    }

    #[test]
    fn hello_auth_debug_hides_the_device_token() {
        let hello: HelloOk = serde_json::from_value(json!({"type":"hello-ok","protocol":4,
            "auth":{"role":"operator","scopes":["operator.read"],"deviceToken":"dt-secret"}}))
        .unwrap();
        assert_eq!(hello.auth.device_token.as_deref(), Some("dt-secret"));
        assert!(!format!("{hello:?}").contains("dt-secret"));
    }
}
