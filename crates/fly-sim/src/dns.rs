//! The simulated DNS (spec §5): one table of A/AAAA/CNAME/TXT records that certificate
//! validation reads, served through a Cloudflare-compatible API (`/client/v4/zones…`, the
//! `{"success","errors","messages","result"}` envelope, `Bearer` token; shapes from Cloudflare's
//! document, [`super::wire::cloudflare`]) and through `/_sim/dns` for records outside any zone
//! we host (a customer's own DNS).

use super::clock::rfc3339;
use super::records::dns::{normalize, DnsRecord, Zone};
use super::state::World;
use super::wire::cloudflare as cf;
use super::Simulator;
use axum::extract::{Path, Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use serde_json::{json, Value};

fn hex_id() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

impl World {
    /// Adds the zone `name` (at start-up).
    pub fn seed_zone(&mut self, name: &str, now: DateTime<Utc>) {
        let name = normalize(name);
        if !name.is_empty() && !self.zones.iter().any(|z| z.name == name) {
            self.zones.push(Zone {
                id: hex_id(),
                name,
                created_on: now,
            });
        }
    }

    /// The zone hosting `name`, if any.
    pub fn zone_for(&self, name: &str) -> Option<&Zone> {
        let name = normalize(name);
        self.zones
            .iter()
            .filter(|z| name == z.name || name.ends_with(&format!(".{}", z.name)))
            .max_by_key(|z| z.name.len())
    }

    /// Record contents of `type_` at `name`.
    pub fn resolve(&self, name: &str, type_: &str) -> Vec<String> {
        let name = normalize(name);
        self.dns
            .iter()
            .filter(|r| r.name == name && r.type_.eq_ignore_ascii_case(type_))
            .map(|r| {
                if r.type_.eq_ignore_ascii_case("CNAME") {
                    normalize(&r.content)
                } else {
                    r.content.clone()
                }
            })
            .collect()
    }
}

/// A Cloudflare API error: HTTP status plus Cloudflare's numeric code.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct CfError {
    status: StatusCode,
    code: u32,
    message: String,
}

impl CfError {
    fn new(status: StatusCode, code: u32, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
        }
    }

    fn bad(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, 9000, message)
    }
}

impl IntoResponse for CfError {
    fn into_response(self) -> Response {
        let body = cf::Envelope::<Value> {
            success: false,
            errors: vec![cf::Message {
                code: self.code,
                message: self.message,
            }],
            ..cf::Envelope::default()
        };
        (self.status, Json(body)).into_response()
    }
}

fn ok<T>(result: T) -> Json<cf::Envelope<T>> {
    Json(cf::Envelope {
        success: true,
        errors: Vec::new(),
        messages: Vec::new(),
        result: Some(result),
        result_info: None,
    })
}

fn ok_list<T>(
    items: Vec<T>,
    page: usize,
    per_page: usize,
    total: usize,
) -> Json<cf::Envelope<Vec<T>>> {
    let info = cf::ResultInfo {
        page: page as u64,
        per_page: per_page as u64,
        count: items.len() as u64,
        total_count: total as u64,
    };
    Json(cf::Envelope {
        result_info: Some(info),
        ..ok(items).0
    })
}

fn page_of(q: &super::extract::QueryPairs) -> (usize, usize) {
    let page = q
        .get("page")
        .and_then(|p| p.parse().ok())
        .filter(|p| *p >= 1)
        .unwrap_or(1);
    let per_page = q
        .get("per_page")
        .and_then(|p| p.parse().ok())
        .unwrap_or(100usize)
        .clamp(5, 5000);
    (page, per_page)
}

fn paged<T>(items: Vec<T>, q: &super::extract::QueryPairs) -> Json<cf::Envelope<Vec<T>>> {
    let (page, per_page) = page_of(q);
    let total = items.len();
    let slice = items
        .into_iter()
        .skip((page - 1).saturating_mul(per_page))
        .take(per_page)
        .collect();
    ok_list(slice, page, per_page, total)
}

/// Middleware: `Authorization: Bearer <dns token>` (default: the Fly token).
pub async fn require_dns_token(State(sim): State<Simulator>, req: Request, next: Next) -> Response {
    let header = req
        .headers()
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let Some(token) = header.strip_prefix("Bearer ").map(str::trim) else {
        return CfError::new(StatusCode::BAD_REQUEST, 6003, "Invalid request headers")
            .into_response();
    };
    let config = sim.config();
    let expected = config.dns_token.as_deref().unwrap_or(&config.token);
    use subtle::ConstantTimeEq;
    if !bool::from(token.as_bytes().ct_eq(expected.as_bytes())) {
        return CfError::new(StatusCode::FORBIDDEN, 10000, "Authentication error").into_response();
    }
    next.run(req).await
}

/// The Cloudflare-compatible routes (authenticated with the DNS token).
pub fn cloudflare_router(sim: Simulator) -> Router {
    Router::new()
        .route("/client/v4/zones", get(list_zones))
        .route("/client/v4/zones/{zone}", get(get_zone))
        .route(
            "/client/v4/zones/{zone}/dns_records",
            get(list_records).post(create_record),
        )
        .route(
            "/client/v4/zones/{zone}/dns_records/{id}",
            get(get_record)
                .put(put_record)
                .patch(patch_record)
                .delete(delete_record),
        )
        .route_layer(axum::middleware::from_fn_with_state(
            sim.clone(),
            super::faults::inject,
        ))
        .route_layer(axum::middleware::from_fn_with_state(
            sim.clone(),
            require_dns_token,
        ))
        .route_layer(axum::middleware::from_fn_with_state(
            sim.clone(),
            super::stats::count_calls,
        ))
        .with_state(sim)
}

fn zone_json(z: &Zone) -> cf::Zone {
    let created = rfc3339(z.created_on);
    let party = |kind: Option<&str>| cf::Party {
        id: "0".repeat(32),
        name: "openclaws".into(),
        kind: kind.map(str::to_owned),
    };
    cf::Zone {
        id: z.id.clone(),
        name: z.name.clone(),
        account: party(None),
        owner: party(Some("organization")),
        meta: cf::ZoneMeta {
            dns_only: true,
            custom_certificate_quota: 0,
        },
        development_mode: 0.0,
        name_servers: vec![
            "ada.ns.cloudflare.com".into(),
            "bob.ns.cloudflare.com".into(),
        ],
        original_name_servers: None,
        original_registrar: None,
        original_dnshost: None,
        created_on: created.clone(),
        modified_on: created.clone(),
        activated_on: Some(created),
    }
}

/// `GET /client/v4/zones?name=`.
async fn list_zones(
    State(sim): State<Simulator>,
    q: super::extract::QueryPairs,
) -> Json<cf::Envelope<Vec<cf::Zone>>> {
    let name = q.get("name").map(normalize);
    let zones: Vec<cf::Zone> = sim
        .read(|w, _| {
            Ok(w.zones
                .iter()
                .filter(|z| name.as_ref().is_none_or(|n| *n == z.name))
                .map(zone_json)
                .collect())
        })
        .unwrap_or_default();
    paged(zones, &q)
}

fn zone_or_404(w: &World, zone: &str) -> Result<Zone, CfError> {
    w.zones
        .iter()
        .find(|z| z.id == zone)
        .cloned()
        .ok_or_else(|| {
            CfError::new(
                StatusCode::NOT_FOUND,
                7003,
                "Could not route to /zones, perhaps your object identifier is invalid?",
            )
        })
}

/// `GET /client/v4/zones/{zone}`.
async fn get_zone(
    State(sim): State<Simulator>,
    Path(zone): Path<String>,
) -> Result<Json<cf::Envelope<cf::Zone>>, CfError> {
    let z = sim
        .read(|w, _| Ok(zone_or_404(w, &zone)))
        .map_err(|e| CfError::bad(e.to_string()))??;
    Ok(ok(zone_json(&z)))
}

/// `GET …/dns_records?name=&type=&page=&per_page=`.
async fn list_records(
    State(sim): State<Simulator>,
    Path(zone): Path<String>,
    q: super::extract::QueryPairs,
) -> Result<Json<cf::Envelope<Vec<cf::DnsRecord>>>, CfError> {
    let name = q.get("name").map(normalize);
    let type_ = q.get("type").map(str::to_ascii_uppercase);
    let items = sim
        .read(|w, _| {
            Ok(zone_or_404(w, &zone).map(|z| {
                w.dns
                    .iter()
                    .filter(|r| r.zone_id.as_deref() == Some(z.id.as_str()))
                    .filter(|r| name.as_ref().is_none_or(|n| *n == r.name))
                    .filter(|r| type_.as_ref().is_none_or(|t| *t == r.type_))
                    .map(DnsRecord::to_cloudflare)
                    .collect::<Vec<_>>()
            }))
        })
        .map_err(|e| CfError::bad(e.to_string()))??;
    Ok(paged(items, &q))
}

/// A record body (POST/PUT need type, name, content; PATCH any subset).
type RecordBody = cf::DnsRecordRequest;

/// Expands `@` and relative names under the zone.
fn full_name(name: &str, zone: &str) -> String {
    let n = normalize(name);
    if n == "@" || n.is_empty() {
        zone.to_string()
    } else if n == zone || n.ends_with(&format!(".{zone}")) {
        n
    } else {
        format!("{n}.{zone}")
    }
}

/// Cloudflare's conflicts: a CNAME cannot share its name with A/AAAA/CNAME; no exact duplicates.
fn check_conflicts(w: &World, rec: &DnsRecord) -> Result<(), CfError> {
    let others = w
        .dns
        .iter()
        .filter(|r| r.id != rec.id && r.name == rec.name);
    for other in others {
        if other.type_ == rec.type_ && other.content == rec.content {
            return Err(CfError::bad("An identical record already exists.").with_code(81058));
        }
        let addressy = |t: &str| matches!(t, "A" | "AAAA" | "CNAME");
        if (rec.type_ == "CNAME" && addressy(&other.type_))
            || (other.type_ == "CNAME" && addressy(&rec.type_))
        {
            return Err(
                CfError::bad("An A, AAAA, or CNAME record with that host already exists.")
                    .with_code(81053),
            );
        }
    }
    Ok(())
}

impl CfError {
    fn with_code(mut self, code: u32) -> Self {
        self.code = code;
        self
    }
}

fn validate(rec: &DnsRecord) -> Result<(), CfError> {
    match rec.type_.as_str() {
        "A" if rec.content.parse::<std::net::Ipv4Addr>().is_err() => {
            Err(CfError::bad("Content for A record must be a valid IPv4 address.").with_code(9005))
        }
        "AAAA" if rec.content.parse::<std::net::Ipv6Addr>().is_err() => Err(CfError::bad(
            "Content for AAAA record must be a valid IPv6 address.",
        )
        .with_code(9005)),
        "A" | "AAAA" | "CNAME" | "TXT" | "MX" | "NS" | "CAA" | "SRV" => {
            if rec.content.is_empty() {
                Err(CfError::bad("DNS record content is required.").with_code(9005))
            } else {
                Ok(())
            }
        }
        _ => Err(CfError::bad("Invalid DNS record type").with_code(1004)),
    }
}

/// `POST …/dns_records`.
async fn create_record(
    State(sim): State<Simulator>,
    Path(zone): Path<String>,
    body: super::extract::JsonBody<RecordBody>,
) -> Result<Json<cf::Envelope<cf::DnsRecord>>, CfError> {
    let body = body.0;
    sim.write(|w, ctx| {
        Ok((|| {
            let z = zone_or_404(w, &zone)?;
            let (Some(type_), Some(name), Some(content)) = (body.kind, body.name, body.content)
            else {
                return Err(CfError::bad("type, name and content are required").with_code(9000));
            };
            let rec = DnsRecord {
                id: hex_id(),
                zone_id: Some(z.id.clone()),
                type_: type_.to_ascii_uppercase(),
                name: full_name(&name, &z.name),
                content,
                ttl: body.ttl.unwrap_or(1),
                proxied: body.proxied.unwrap_or(false),
                comment: body.comment,
                created_on: ctx.now,
                modified_on: ctx.now,
            };
            validate(&rec)?;
            check_conflicts(w, &rec)?;
            let out = rec.to_cloudflare();
            w.dns.push(rec);
            Ok(ok(out))
        })())
    })
    .map_err(|e| CfError::bad(e.to_string()))?
}

/// `GET …/dns_records/{id}`.
async fn get_record(
    State(sim): State<Simulator>,
    Path((zone, id)): Path<(String, String)>,
) -> Result<Json<cf::Envelope<cf::DnsRecord>>, CfError> {
    sim.read(|w, _| {
        Ok((|| {
            let z = zone_or_404(w, &zone)?;
            w.dns
                .iter()
                .find(|r| r.id == id && r.zone_id.as_deref() == Some(z.id.as_str()))
                .map(|r| ok(r.to_cloudflare()))
                .ok_or_else(record_not_found)
        })())
    })
    .map_err(|e| CfError::bad(e.to_string()))?
}

fn record_not_found() -> CfError {
    CfError::new(StatusCode::NOT_FOUND, 81044, "Record does not exist.")
}

/// Shared body of PUT (full) and PATCH (partial) updates.
fn update_record(
    sim: &Simulator,
    zone: &str,
    id: &str,
    body: RecordBody,
    full: bool,
) -> Result<Json<cf::Envelope<cf::DnsRecord>>, CfError> {
    sim.write(|w, ctx| {
        Ok((|| {
            let z = zone_or_404(w, zone)?;
            let idx = w
                .dns
                .iter()
                .position(|r| r.id == id && r.zone_id.as_deref() == Some(z.id.as_str()))
                .ok_or_else(record_not_found)?;
            if full && (body.kind.is_none() || body.name.is_none() || body.content.is_none()) {
                return Err(CfError::bad("type, name and content are required").with_code(9000));
            }
            let mut rec = w.dns[idx].clone();
            if let Some(t) = body.kind {
                rec.type_ = t.to_ascii_uppercase();
            }
            if let Some(n) = body.name {
                rec.name = full_name(&n, &z.name);
            }
            if let Some(c) = body.content {
                rec.content = c;
            }
            rec.ttl = body.ttl.unwrap_or(if full { 1 } else { rec.ttl });
            rec.proxied = body
                .proxied
                .unwrap_or(if full { false } else { rec.proxied });
            if body.comment.is_some() || full {
                rec.comment = body.comment;
            }
            rec.modified_on = ctx.now;
            validate(&rec)?;
            check_conflicts(w, &rec)?;
            let out = rec.to_cloudflare();
            w.dns[idx] = rec;
            Ok(ok(out))
        })())
    })
    .map_err(|e| CfError::bad(e.to_string()))?
}

/// `PUT …/dns_records/{id}`.
async fn put_record(
    State(sim): State<Simulator>,
    Path((zone, id)): Path<(String, String)>,
    body: super::extract::JsonBody<RecordBody>,
) -> Result<Json<cf::Envelope<cf::DnsRecord>>, CfError> {
    update_record(&sim, &zone, &id, body.0, true)
}

/// `PATCH …/dns_records/{id}`.
async fn patch_record(
    State(sim): State<Simulator>,
    Path((zone, id)): Path<(String, String)>,
    body: super::extract::JsonBody<RecordBody>,
) -> Result<Json<cf::Envelope<cf::DnsRecord>>, CfError> {
    update_record(&sim, &zone, &id, body.0, false)
}

/// `DELETE …/dns_records/{id}` → `{"result":{"id"}}`.
async fn delete_record(
    State(sim): State<Simulator>,
    Path((zone, id)): Path<(String, String)>,
) -> Result<Json<cf::Envelope<cf::DeletedRecord>>, CfError> {
    sim.write(|w, _| {
        Ok((|| {
            let z = zone_or_404(w, &zone)?;
            let before = w.dns.len();
            w.dns
                .retain(|r| !(r.id == id && r.zone_id.as_deref() == Some(z.id.as_str())));
            if w.dns.len() == before {
                return Err(record_not_found());
            }
            Ok(ok(cf::DeletedRecord { id: id.clone() }))
        })())
    })
    .map_err(|e| CfError::bad(e.to_string()))?
}

/// `/_sim/dns`: the raw table, any name (hosted zone or not).
pub fn control_router(sim: Simulator) -> Router {
    Router::new()
        .route("/_sim/dns", get(raw_list).post(raw_add).delete(raw_clear))
        .route("/_sim/dns/{id}", axum::routing::delete(raw_delete))
        .with_state(sim)
}

/// `GET /_sim/dns`: every record and zone.
async fn raw_list(State(sim): State<Simulator>) -> Json<Value> {
    let v = sim
        .read(|w, _| Ok(json!({"zones": w.zones, "records": w.dns})))
        .unwrap_or(Value::Null);
    Json(v)
}

/// `POST /_sim/dns {"type","name","content"}`: adds a record (no conflict rules; the zone is
/// inferred from the name).
async fn raw_add(
    State(sim): State<Simulator>,
    body: super::extract::JsonBody<RecordBody>,
) -> Result<(StatusCode, Json<Value>), CfError> {
    let body = body.0;
    sim.write(|w, ctx| {
        Ok((|| {
            let (Some(type_), Some(name), Some(content)) = (body.kind, body.name, body.content)
            else {
                return Err(CfError::bad("type, name and content are required"));
            };
            let name = normalize(&name);
            let rec = DnsRecord {
                id: hex_id(),
                zone_id: w.zone_for(&name).map(|z| z.id.clone()),
                type_: type_.to_ascii_uppercase(),
                name,
                content,
                ttl: body.ttl.unwrap_or(1),
                proxied: body.proxied.unwrap_or(false),
                comment: body.comment,
                created_on: ctx.now,
                modified_on: ctx.now,
            };
            validate(&rec)?;
            let out = json!(rec);
            w.dns.push(rec);
            Ok((StatusCode::CREATED, Json(out)))
        })())
    })
    .map_err(|e| CfError::bad(e.to_string()))?
}

/// `DELETE /_sim/dns`: removes every record (zones stay).
async fn raw_clear(State(sim): State<Simulator>) -> Json<Value> {
    let n = sim
        .write(|w, _| {
            let n = w.dns.len();
            w.dns.clear();
            Ok(n)
        })
        .unwrap_or(0);
    Json(json!({"removed": n}))
}

/// `DELETE /_sim/dns/{id}`: removes one record.
async fn raw_delete(
    State(sim): State<Simulator>,
    Path(id): Path<String>,
) -> Result<Json<Value>, CfError> {
    sim.write(|w, _| {
        let before = w.dns.len();
        w.dns.retain(|r| r.id != id);
        Ok(w.dns.len() < before)
    })
    .map_err(|e| CfError::bad(e.to_string()))?
    .then(|| Json(json!({"removed": 1})))
    .ok_or_else(record_not_found)
}
