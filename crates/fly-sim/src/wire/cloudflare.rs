//! Cloudflare API schemas the simulated DNS serves, transcribed from
//! `openapi/cloudflare-dns-records.openapi.json` (named after the schema without its
//! `zones_`/`dns-records_` prefix). Unlike Fly's, this document marks properties required and
//! nullable; the types follow it.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// One item of `zones_messages` / `dns-records_messages`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Message {
    /// At least 1000.
    pub code: u32,
    pub message: String,
}

/// The `{"success","errors","messages","result"}` envelope every answer comes in
/// (`dns-records_api-response-single`, `…-collection`, `…-common-failure`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Envelope<T> {
    pub success: bool,
    pub errors: Vec<Message>,
    pub messages: Vec<Message>,
    /// `null` in a failure.
    pub result: Option<T>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result_info: Option<ResultInfo>,
}

/// `dns-records_result_info` / `zones_result_info`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ResultInfo {
    pub page: u64,
    pub per_page: u64,
    pub count: u64,
    pub total_count: u64,
}

/// `zones_zone.account` and `zones_zone.owner`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Party {
    pub id: String,
    pub name: String,
    #[serde(default, rename = "type", skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
}

/// `zones_zone.meta` (the properties the simulator reports).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ZoneMeta {
    pub dns_only: bool,
    pub custom_certificate_quota: i64,
}

/// `zones_zone`; every property the document lists as required.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Zone {
    pub id: String,
    pub name: String,
    pub account: Party,
    pub owner: Party,
    pub meta: ZoneMeta,
    pub development_mode: f64,
    pub name_servers: Vec<String>,
    pub original_name_servers: Option<Vec<String>>,
    pub original_registrar: Option<String>,
    pub original_dnshost: Option<String>,
    pub created_on: String,
    pub modified_on: String,
    pub activated_on: Option<String>,
}

/// `dns-records_base.meta`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RecordMeta {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auto_added: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
}

/// `dns-records_dns-record` as answered: the per-type schema (`dns-records_ARecord`, …) joined
/// with `dns-records_base`. `comment` is a plain string in this schema version: omitted when
/// there is none.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DnsRecord {
    pub id: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub name: String,
    pub content: String,
    pub proxiable: bool,
    pub proxied: bool,
    pub ttl: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
    pub tags: Vec<String>,
    pub meta: RecordMeta,
    pub created_on: String,
    pub modified_on: String,
}

/// `dns-records_dns-record` as a request body (POST, PUT, PATCH): the writable properties.
/// `priority` and `data` exist for types the simulator does not serve (MX, SRV, CAA, …) and are
/// accepted and ignored.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DnsRecordRequest {
    #[serde(default, rename = "type")]
    pub kind: Option<String>,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub content: Option<String>,
    #[serde(default)]
    pub ttl: Option<u32>,
    #[serde(default)]
    pub proxied: Option<bool>,
    #[serde(default)]
    pub comment: Option<String>,
    #[serde(default)]
    pub tags: Option<Vec<String>>,
    #[serde(default)]
    pub priority: Option<u16>,
    #[serde(default)]
    pub data: Option<Value>,
}

/// The `result` of `DELETE …/dns_records/{id}`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DeletedRecord {
    pub id: String,
}
