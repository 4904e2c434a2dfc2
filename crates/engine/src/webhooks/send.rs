//! One delivery: the payload, its Standard Webhooks headers and the POST.

use serde_json::{json, Value};
use std::time::Duration;

use openclaws_model::secrets::SecretCipher;
use openclaws_model::selector::LabelSelector;
use openclaws_model::webhooks::sign;
use openclaws_store::webhooks::{Claimed, Endpoint};

/// How one POST ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The endpoint answered 2xx.
    Delivered(u16),
    /// The endpoint's label selector excludes the instance: nothing was sent.
    Excluded,
    /// No 2xx: the status when there was an answer, and what went wrong in our words (never
    /// the URL or the response body).
    Failed {
        /// The HTTP status, if the endpoint answered.
        status: Option<u16>,
        /// A short description.
        error: String,
    },
}

/// The HTTP client of the worker: no redirects (a 3xx is a failure), bounded time.
pub(super) fn client(timeout: Duration) -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(timeout)
        .connect_timeout(timeout)
        .user_agent(concat!("openclaws-controller/", env!("CARGO_PKG_VERSION")))
        .build()
        .expect("the webhook HTTP client builds")
}

/// The body of a delivery: `{id, type, types, createdAt, resourceVersion, data: {object}}`,
/// the object rendered as the API shows it at the change's version.
pub fn payload(row: &Claimed, object: Value) -> Value {
    json!({
        "id": row.id.to_string(),
        "type": row.event_types.first().cloned().unwrap_or_default(),
        "types": row.event_types,
        "createdAt": row.created_at.to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
        "resourceVersion": row.change.record.resource_version.to_string(),
        "data": { "object": object },
    })
}

/// Sends `row` to `endpoint` once, unless the endpoint's selector excludes the instance.
pub(super) async fn deliver(
    client: &reqwest::Client,
    cipher: &SecretCipher,
    endpoint: &Endpoint,
    row: &Claimed,
) -> Outcome {
    if !selected(endpoint, row) {
        return Outcome::Excluded;
    }
    let body = match render(cipher, row) {
        Ok(body) => body,
        Err(error) => return failed(None, error),
    };
    let id = row.id.to_string();
    let timestamp = chrono::Utc::now().timestamp();
    let signature = endpoint
        .secret
        .as_deref()
        .and_then(|secret| sign(secret, &id, timestamp, &body).ok());
    let Some(signature) = signature else {
        return failed(None, "the endpoint's signing secret is unusable".to_owned());
    };
    let sent = client
        .post(&endpoint.url)
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .header("webhook-id", &id)
        .header("webhook-timestamp", timestamp.to_string())
        .header("webhook-signature", signature)
        .body(body)
        .send()
        .await;
    match sent {
        Ok(response) if response.status().is_success() => {
            Outcome::Delivered(response.status().as_u16())
        }
        Ok(response) => {
            let status = response.status();
            failed(
                Some(status.as_u16()),
                format!("the endpoint answered {status}"),
            )
        }
        Err(e) => failed(None, describe(&e)),
    }
}

fn failed(status: Option<u16>, error: String) -> Outcome {
    Outcome::Failed { status, error }
}

/// Whether the endpoint's label selector matches the instance's labels at the change (an
/// unparseable stored selector, which the API never stores, matches nothing).
fn selected(endpoint: &Endpoint, row: &Claimed) -> bool {
    if endpoint.label_selector.is_empty() {
        return true;
    }
    LabelSelector::parse(&endpoint.label_selector)
        .is_ok_and(|selector| selector.matches(&row.change.record.labels))
}

/// The JSON body of `row`.
fn render(cipher: &SecretCipher, row: &Claimed) -> Result<Vec<u8>, String> {
    let object = row
        .change
        .record
        .to_resource(cipher)
        .map_err(|_| "the instance at this change does not render".to_owned())?;
    let object = serde_json::to_value(object).map_err(|e| e.to_string())?;
    serde_json::to_vec(&payload(row, object)).map_err(|e| e.to_string())
}

/// A transport error in a few words, without the URL (which may carry a token in its path).
fn describe(e: &reqwest::Error) -> String {
    if e.is_timeout() {
        "no answer within the timeout".to_owned()
    } else if e.is_connect() {
        "the connection failed".to_owned()
    } else if e.is_redirect() {
        "the endpoint redirected".to_owned()
    } else {
        "the request failed".to_owned()
    }
}
