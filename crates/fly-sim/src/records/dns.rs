//! The simulated DNS's records: hosted zones and the records of the DNS table, with names in
//! one normal form.

use crate::clock::rfc3339;
use crate::wire::cloudflare as cf;
use chrono::{DateTime, Utc};
use serde::Serialize;

/// A hosted zone.
#[derive(Debug, Clone, Serialize)]
pub struct Zone {
    /// 32-hex id.
    pub id: String,
    /// Apex name, e.g. `openclaws.biz`.
    pub name: String,
    /// Creation time.
    pub created_on: DateTime<Utc>,
}

/// One DNS record.
#[derive(Debug, Clone, Serialize)]
pub struct DnsRecord {
    /// 32-hex id.
    pub id: String,
    /// Hosting zone, if the name is under one of ours.
    pub zone_id: Option<String>,
    /// `A`, `AAAA`, `CNAME`, `TXT`, ….
    #[serde(rename = "type")]
    pub type_: String,
    /// Fully qualified name, lowercase, no trailing dot.
    pub name: String,
    /// Target / address / text.
    pub content: String,
    /// TTL (1 = automatic).
    pub ttl: u32,
    /// Cloudflare proxying flag.
    pub proxied: bool,
    /// Free text.
    pub comment: Option<String>,
    /// Creation time.
    pub created_on: DateTime<Utc>,
    /// Last change.
    pub modified_on: DateTime<Utc>,
}

/// Lowercases a DNS name and drops a trailing dot.
pub fn normalize(name: &str) -> String {
    name.trim().trim_end_matches('.').to_ascii_lowercase()
}

impl DnsRecord {
    /// The record as Cloudflare's API answers it.
    pub fn to_cloudflare(&self) -> cf::DnsRecord {
        cf::DnsRecord {
            id: self.id.clone(),
            kind: self.type_.clone(),
            name: self.name.clone(),
            content: self.content.clone(),
            proxiable: matches!(self.type_.as_str(), "A" | "AAAA" | "CNAME"),
            proxied: self.proxied,
            ttl: self.ttl,
            comment: self.comment.clone(),
            tags: Vec::new(),
            meta: cf::RecordMeta::default(),
            created_on: rfc3339(self.created_on),
            modified_on: rfc3339(self.modified_on),
        }
    }
}
