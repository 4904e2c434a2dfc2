//! DNS records for instance hostnames (`{slug}.{base domain}`), through Cloudflare's API.
//!
//! Records we create carry a comment naming the instance uid (our ownership mark); a record for
//! the hostname without it is reported, never changed or deleted.

use openclaws_model::conditions::Reason;
use openclaws_model::fence::{within, Fence, Fenced};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::OnceCell;

/// Per-request timeout.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(20);

/// Errors from the DNS provider.
#[derive(Debug, Clone, thiserror::Error)]
pub enum DnsError {
    /// Network failure or a 5xx/429: try again later.
    #[error("DNS provider unavailable: {0}")]
    Transient(String),
    /// The provider refused the request (bad token, bad record, unknown zone).
    #[error("DNS provider refused the request ({status}): {message}")]
    Rejected { status: u16, message: String },
    /// Not sent: the reconcile lost its work lease.
    #[error("not sent: {0}")]
    Fenced(#[from] Fenced),
}

impl DnsError {
    /// The class's reason in conditions, `lastError` and events.
    pub fn reason(&self) -> Reason {
        match self {
            DnsError::Transient(_) => Reason::DnsUnavailable,
            DnsError::Rejected { .. } => Reason::DnsRejected,
            DnsError::Fenced(_) => Reason::LeaseLost,
        }
    }

    /// Whether retrying cannot help until the input changes (a bad token, record or zone).
    pub fn is_terminal(&self) -> bool {
        matches!(self, DnsError::Rejected { .. })
    }
}

/// One DNS record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DnsRecord {
    #[serde(default)]
    pub id: String,
    #[serde(rename = "type")]
    pub type_: String,
    pub name: String,
    pub content: String,
    #[serde(default)]
    pub comment: Option<String>,
}

/// A record as a create or update body: the writable fields only, and none that is empty, as
/// cloudflare-go sends them (the id travels in the URL; an absent comment is left out, not
/// `null`).
#[derive(Serialize)]
struct RecordBody<'a> {
    #[serde(rename = "type")]
    type_: &'a str,
    name: &'a str,
    content: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    comment: Option<&'a str>,
}

impl<'a> From<&'a DnsRecord> for RecordBody<'a> {
    fn from(r: &'a DnsRecord) -> Self {
        Self {
            type_: &r.type_,
            name: &r.name,
            content: &r.content,
            comment: r.comment.as_deref().filter(|c| !c.is_empty()),
        }
    }
}

/// The ownership comment of records this controller creates.
pub fn ownership_comment(instance_uid: &str) -> String {
    format!("openclaws instance {instance_uid}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn write_bodies_carry_no_empty_id_and_no_null_comment() {
        let record = DnsRecord {
            id: String::new(),
            type_: "CNAME".into(),
            name: "gw.example.com".into(),
            content: "oc-gw.fly.dev".into(),
            comment: None,
        };
        let body = serde_json::to_value(RecordBody::from(&record)).unwrap();
        assert_eq!(
            body,
            serde_json::json!({"type": "CNAME", "name": "gw.example.com", "content": "oc-gw.fly.dev"})
        );
        let owned = DnsRecord {
            id: "abc".into(),
            comment: Some(ownership_comment("u1")),
            ..record
        };
        let body = serde_json::to_value(RecordBody::from(&owned)).unwrap();
        assert!(body.get("id").is_none(), "{body}");
        assert_eq!(body["comment"], "openclaws instance u1");
    }
}

#[derive(Deserialize)]
struct Envelope<T> {
    #[serde(default)]
    success: bool,
    #[serde(default)]
    errors: Vec<Value>,
    result: Option<T>,
}

#[derive(Deserialize)]
struct ZoneRef {
    id: String,
}

/// A Cloudflare client bound to one zone.
#[derive(Debug, Clone)]
pub struct CloudflareDns {
    http: reqwest::Client,
    base: String,
    token: String,
    zone: String,
    zone_id: Arc<OnceCell<String>>,
    /// Sent as `User-Agent`; names the replica ([`CloudflareDns::identified_as`]).
    user_agent: String,
    /// The lease a reconcile's changes must still hold ([`CloudflareDns::fenced`]).
    fence: Option<Arc<dyn Fence>>,
}

impl CloudflareDns {
    /// `base` is e.g. `https://api.cloudflare.com` (the client adds `/client/v4`).
    pub fn new(base: &str, token: &str, zone: &str) -> Self {
        Self {
            http: reqwest::Client::builder()
                .timeout(REQUEST_TIMEOUT)
                .build()
                .expect("a TLS backend is compiled in"),
            base: base.trim_end_matches('/').to_owned(),
            token: token.to_owned(),
            zone: zone.to_owned(),
            zone_id: Arc::new(OnceCell::new()),
            user_agent: concat!("openclaws-controller/", env!("CARGO_PKG_VERSION")).to_owned(),
            fence: None,
        }
    }

    /// The same client naming its replica in its `User-Agent`, as the Fly client does, so the
    /// provider's logs (and the chaos harness) tell replicas apart.
    pub fn identified_as(mut self, replica: &str) -> Self {
        self.user_agent = format!(
            "openclaws-controller/{} (replica {replica})",
            env!("CARGO_PKG_VERSION")
        );
        self
    }

    /// A clone whose every change first passes `fence` (a reconcile's work lease).
    pub fn fenced(&self, fence: Arc<dyn Fence>) -> Self {
        Self {
            fence: Some(fence),
            ..self.clone()
        }
    }

    /// Passes the fence before a change and bounds the request to go out and end while the
    /// lease holds: the request and the deadline it must be sent by (none without a fence).
    async fn admit(
        &self,
        action: &'static str,
        target: &str,
        req: reqwest::RequestBuilder,
    ) -> Result<(reqwest::RequestBuilder, Option<Instant>), DnsError> {
        let Some(fence) = &self.fence else {
            return Ok((req, None));
        };
        let until = fence.admit(action, target).await?;
        let deadline = until.checked_sub(Duration::from_secs(1)).unwrap_or(until);
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(Fenced(format!("too little of the lease is left to send {action}")).into());
        }
        Ok((req.timeout(left.min(REQUEST_TIMEOUT)), Some(deadline)))
    }

    /// Sends a request; a fenced one only before its deadline ([`within`]).
    async fn call<T: serde::de::DeserializeOwned>(
        &self,
        (req, deadline): (reqwest::RequestBuilder, Option<Instant>),
    ) -> Result<Option<T>, DnsError> {
        let Some(deadline) = deadline else {
            return self.exchange(req).await;
        };
        within(deadline, self.exchange(req))
            .await
            .unwrap_or_else(|| {
                Err(Fenced(
                "a DNS change was cut off: this replica was held up until its lease could have \
                 passed on"
                    .to_owned(),
            )
            .into())
            })
    }

    async fn exchange<T: serde::de::DeserializeOwned>(
        &self,
        req: reqwest::RequestBuilder,
    ) -> Result<Option<T>, DnsError> {
        let resp = req
            .bearer_auth(&self.token)
            .header(reqwest::header::USER_AGENT, &self.user_agent)
            .send()
            .await
            .map_err(|e| DnsError::Transient(e.to_string()))?;
        let status = resp.status();
        let text = resp
            .text()
            .await
            .map_err(|e| DnsError::Transient(e.to_string()))?;
        if status.is_server_error() || status.as_u16() == 429 {
            return Err(DnsError::Transient(format!("{status}")));
        }
        let envelope: Envelope<T> =
            serde_json::from_str(&text).map_err(|e| DnsError::Rejected {
                status: status.as_u16(),
                message: format!("unexpected answer: {e}"),
            })?;
        if !status.is_success() || !envelope.success {
            return Err(DnsError::Rejected {
                status: status.as_u16(),
                message: Value::Array(envelope.errors).to_string(),
            });
        }
        Ok(envelope.result)
    }

    async fn zone_id(&self) -> Result<&str, DnsError> {
        self.zone_id
            .get_or_try_init(|| async {
                let zones: Vec<ZoneRef> = self
                    .exchange(
                        self.http
                            .get(format!("{}/client/v4/zones", self.base))
                            .query(&[("name", self.zone.as_str())]),
                    )
                    .await?
                    .unwrap_or_default();
                zones
                    .into_iter()
                    .next()
                    .map(|z| z.id)
                    .ok_or_else(|| DnsError::Rejected {
                        status: 404,
                        message: format!("zone {} not found", self.zone),
                    })
            })
            .await
            .map(String::as_str)
    }

    /// Records with this exact name.
    pub async fn list(&self, name: &str) -> Result<Vec<DnsRecord>, DnsError> {
        let zone = self.zone_id().await?;
        Ok(self
            .exchange(
                self.http
                    .get(format!("{}/client/v4/zones/{zone}/dns_records", self.base))
                    .query(&[("name", name)]),
            )
            .await?
            .unwrap_or_default())
    }

    /// Creates a record.
    pub async fn create(&self, record: &DnsRecord) -> Result<DnsRecord, DnsError> {
        let zone = self.zone_id().await?;
        let req = self
            .http
            .post(format!("{}/client/v4/zones/{zone}/dns_records", self.base))
            .json(&RecordBody::from(record));
        self.call(self.admit("dns.create", &record.name, req).await?)
            .await?
            .ok_or_else(|| DnsError::Transient("create answered no record".into()))
    }

    /// Replaces a record's type and content.
    pub async fn update(&self, id: &str, record: &DnsRecord) -> Result<(), DnsError> {
        let zone = self.zone_id().await?;
        let req = self
            .http
            .put(format!(
                "{}/client/v4/zones/{zone}/dns_records/{id}",
                self.base
            ))
            .json(&RecordBody::from(record));
        self.call::<Value>(self.admit("dns.update", &record.name, req).await?)
            .await
            .map(drop)
    }

    /// Deletes a record (absent counts as deleted).
    pub async fn delete(&self, id: &str) -> Result<(), DnsError> {
        let zone = self.zone_id().await?;
        let req = self.http.delete(format!(
            "{}/client/v4/zones/{zone}/dns_records/{id}",
            self.base
        ));
        match self
            .call::<Value>(self.admit("dns.delete", id, req).await?)
            .await
        {
            Err(DnsError::Rejected { status: 404, .. }) => Ok(()),
            other => other.map(drop),
        }
    }
}
