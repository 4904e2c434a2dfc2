//! A customer's devices in gateway tests: a browser (Control UI) reaching a gateway through the
//! simulator's Fly-like proxy with the token the dashboard reads.

use openclaws_gateway::client::{ClientError, ConnectOptions, GatewayClient};
use openclaws_gateway::identity::DeviceIdentity;
use openclaws_gateway::protocol::{ClientInfo, PairingRequired, SCOPE_READ, SCOPE_WRITE};
use reqwest::StatusCode;
use serde_json::Value;
use std::time::Duration;

use crate::db::eventually;
use crate::stack::{Stack, WRITER};

/// `GET /v1/instances/{name}/gateway-token` as the dashboard does (writer).
pub async fn gateway_token(stack: &Stack, name: &str) -> String {
    let resp = stack
        .http
        .get(format!(
            "{}/v1/instances/{name}/gateway-token",
            stack.api_url
        ))
        .bearer_auth(WRITER)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let body: Value = resp.json().await.unwrap();
    body["token"].as_str().unwrap().to_owned()
}

/// A customer's browser (Control UI) on `https://{host}`, through the stack's proxy.
pub fn browser(stack: &Stack, host: &str, token: &str) -> ConnectOptions {
    ConnectOptions {
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
        headers: vec![
            ("Host".to_owned(), host.to_owned()),
            ("Origin".to_owned(), format!("https://{host}")),
        ],
        ..ConnectOptions::controller(
            stack
                .proxy_url
                .as_ref()
                .expect("a gateway stack")
                .replace("http://", "ws://"),
            token,
        )
    }
}

/// Connects like a browser page: a page from the gateway's own origin that is told the gateway
/// was updated reloads, and comes back carrying the gateway's build id.
pub async fn connect_browser(
    options: &ConnectOptions,
    device: &DeviceIdentity,
) -> Result<GatewayClient, ClientError> {
    match GatewayClient::connect(options, Some(device)).await {
        Err(ClientError::Rejected {
            details: Some(details),
            ..
        }) if details["code"] == "PROTOCOL_MISMATCH" => {
            let mut reloaded = options.clone();
            reloaded.client.build_id = details["gatewayBuildId"].as_str().map(str::to_owned);
            GatewayClient::connect(&reloaded, Some(device)).await
        }
        other => other,
    }
}

/// A connect that must leave the device pending (not approved): retried while the gateway is
/// briefly unreachable (a restart), a failure if the device gets in.
pub async fn pending_request(
    options: &ConnectOptions,
    device: &DeviceIdentity,
    deadline: Duration,
) -> PairingRequired {
    eventually(deadline, "a pending pairing request", || async {
        match connect_browser(options, device).await {
            Err(ClientError::PairingRequired(p)) => Some(p),
            Ok(_) => panic!("the device connected without being approved"),
            Err(_) => None,
        }
    })
    .await
}
