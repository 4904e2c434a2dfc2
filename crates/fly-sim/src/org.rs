//! `GET /v1/orgs/{org}/machines`: the org-wide scan a controller uses to notice drift, ordered by
//! `(updated_at, id)` with an opaque cursor. This is the one route allowed to scan everything.

use super::auth::Caller;
use super::clock::rfc3339;
use super::errors::{SimError, SimResult};
use super::extract::QueryPairs;
use super::records::machine::MachRec;
use super::state::World;
use super::wire::{MachineOverviewConfig, OrgMachine, OrgMachinesResponse};
use super::Simulator;
use axum::extract::{Path, State};
use axum::{Extension, Json};
use base64::Engine;
use chrono::{DateTime, Utc};
use std::collections::HashMap;

type Key = (DateTime<Utc>, String);

fn encode_cursor(key: &Key) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(format!(
        "{}|{}",
        key.0.timestamp_micros(),
        key.1
    ))
}

/// A cursor before every machine: listing from it gives the first page.
pub(crate) fn start_cursor() -> String {
    encode_cursor(&(DateTime::<Utc>::UNIX_EPOCH, String::new()))
}

fn decode_cursor(cursor: &str) -> Option<Key> {
    let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(cursor)
        .ok()?;
    let text = String::from_utf8(raw).ok()?;
    let (micros, id) = text.split_once('|')?;
    let at = DateTime::from_timestamp_micros(micros.parse().ok()?)?;
    Some((at, id.to_string()))
}

/// `GET /v1/orgs/{org}/machines?updated_after=&cursor=&limit=&include_deleted=&state=&region=`.
/// A page without machines says `"machines": null`, as Fly's Go encodes an empty list. A
/// `partial_listing` fault leaves out some regions and names them in `error_regions`.
pub async fn machines(
    State(sim): State<Simulator>,
    Extension(caller): Extension<Caller>,
    Path(org): Path<String>,
    query: QueryPairs,
) -> SimResult<Json<OrgMachinesResponse>> {
    if org != caller.org {
        return Err(SimError::NotFound("organization not found".into()));
    }
    let filter = Filter::from_query(&query)?;
    sim.read(|w, ctx| {
        let app_names = app_names(w, &org, filter.include_deleted);
        let mut hits: Vec<Key> = Vec::new();
        for m in w.machines.values_mut() {
            if !app_names.contains_key(&m.app_id) {
                continue;
            }
            m.settle(ctx);
            if filter.keeps(m) {
                hits.push((m.updated_at, m.id.clone()));
            }
        }
        hits.sort_unstable();
        let more = hits.len() > filter.limit;
        hits.truncate(filter.limit);
        let machines = hits
            .iter()
            .filter_map(|(_, id)| w.machines.get(id))
            .map(|m| org_machine(m, &app_names))
            .collect::<Vec<_>>();
        let last = hits.last();
        Ok(Json(OrgMachinesResponse {
            next_cursor: if more { last.map(encode_cursor) } else { None },
            last_machine_id: last.map(|k| k.1.clone()),
            last_updated_at: last.map(|k| rfc3339(k.0)),
            machines: (!machines.is_empty()).then_some(machines),
            error_regions: Vec::new(),
        }))
    })
}

/// What a listing asks for, from its query.
struct Filter {
    updated_after: Option<DateTime<Utc>>,
    /// Only machines after this `(updated_at, id)`.
    cursor: Option<Key>,
    /// Page size (default 100, 1–1000).
    limit: usize,
    include_deleted: bool,
    region: Option<String>,
    /// Any of these states (any state when empty).
    states: Vec<String>,
}

impl Filter {
    fn from_query(query: &QueryPairs) -> SimResult<Self> {
        let updated_after = match query.get("updated_after").filter(|s| !s.is_empty()) {
            Some(s) => Some(
                DateTime::parse_from_rfc3339(s)
                    .map_err(|_| SimError::invalid("updated_after must be RFC 3339"))?
                    .with_timezone(&Utc),
            ),
            None => None,
        };
        let cursor = match query.get("cursor").filter(|s| !s.is_empty()) {
            Some(c) => Some(decode_cursor(c).ok_or_else(|| SimError::invalid("invalid cursor"))?),
            None => None,
        };
        Ok(Self {
            updated_after,
            cursor,
            limit: query.u64("limit")?.unwrap_or(100).clamp(1, 1000) as usize,
            include_deleted: query.flag("include_deleted"),
            region: query.get("region").map(str::to_string),
            states: query
                .all("state")
                .flat_map(|s| s.split(','))
                .filter(|s| !s.is_empty())
                .map(str::to_string)
                .collect(),
        })
    }

    /// Whether machine `m` (of one of the org's apps) is listed.
    fn keeps(&self, m: &MachRec) -> bool {
        (self.include_deleted || m.state != "destroyed")
            && self.region.as_ref().is_none_or(|r| *r == m.region)
            && (self.states.is_empty() || self.states.contains(&m.state))
            && self.updated_after.is_none_or(|t| m.updated_at > t)
            && self
                .cursor
                .as_ref()
                .is_none_or(|c| (m.updated_at, m.id.as_str()) > (c.0, c.1.as_str()))
    }
}

/// App names by app id for the org's apps (deleted ones too with `include_deleted`).
fn app_names(w: &World, org: &str, include_deleted: bool) -> HashMap<String, String> {
    let mut names: HashMap<String, String> = w
        .apps
        .values()
        .filter(|a| a.org == org)
        .map(|a| (a.id.clone(), a.name.clone()))
        .collect();
    if include_deleted {
        for a in w.deleted_apps.iter().filter(|a| a.org == org) {
            names.insert(a.id.clone(), a.name.clone());
        }
    }
    names
}

/// A machine as the org listing shows it.
fn org_machine(m: &MachRec, app_names: &HashMap<String, String>) -> OrgMachine {
    OrgMachine {
        id: Some(m.id.clone()),
        name: Some(m.name.clone()),
        app_name: app_names.get(&m.app_id).cloned(),
        state: Some(m.state.clone()),
        region: Some(m.region.clone()),
        private_ip: Some(m.private_ip.clone()),
        version: Some(m.instance_id.clone()),
        created_at: Some(rfc3339(m.created_at)),
        updated_at: Some(rfc3339(m.updated_at)),
        config: Some(MachineOverviewConfig {
            image: m.config.image.clone(),
            guest: m.config.guest.clone(),
            metadata: m.config.metadata.clone(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursor_round_trips() {
        let key = (Utc::now(), "abcdef01234567".to_string());
        assert_eq!(
            decode_cursor(&encode_cursor(&key)).map(|k| k.1),
            Some(key.1)
        );
        assert!(decode_cursor("!!!").is_none());
    }
}
