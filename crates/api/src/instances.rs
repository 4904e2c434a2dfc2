//! Handlers of `/v1/instances`: request parsing (content type, size, JSON, query parameters) and
//! responses. The writes themselves live in [`super::write`].

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use base64::Engine;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};

use super::error::{ApiError, ErrorBody, FieldError};
use super::validate::{check_customer_filter, check_name, valid_name};
use super::watch::{
    self,
    events::EventWatch,
    filter::{self, Filter},
    options::{self, RawWatch},
    stream::WatchEvent,
};
use super::write::{self, Outcome};
use super::{ApiState, MAX_BODY_BYTES};
use openclaws_model::{
    InstancePatch, InstanceWrite, ListMeta, OpenClawInstance, OpenClawInstanceList, Phase,
    API_VERSION, LIST_KIND,
};
use openclaws_store::changes;
use openclaws_store::events::{self, Event, EventFilter};
use openclaws_store::instances;

/// Default and maximum page size of the instance list.
pub const DEFAULT_LIMIT: i64 = 100;
/// See [`DEFAULT_LIMIT`].
pub const MAX_LIMIT: i64 = 1000;
/// Media type of RFC 7386 merge patches.
pub const MERGE_PATCH: &str = "application/merge-patch+json";

fn media_type(headers: &HeaderMap) -> Option<String> {
    let value = headers.get(header::CONTENT_TYPE)?.to_str().ok()?;
    Some(
        value
            .split(';')
            .next()
            .unwrap_or_default()
            .trim()
            .to_ascii_lowercase(),
    )
}

/// Checks the content type, the size and the JSON syntax of a body.
pub(super) fn json_body(
    headers: &HeaderMap,
    body: Result<Bytes, BytesRejection>,
    accepted: &[&str],
) -> Result<Value, ApiError> {
    let media = media_type(headers);
    if !media.as_deref().is_some_and(|m| accepted.contains(&m)) {
        return Err(ApiError::UnsupportedMediaType(format!(
            "Content-Type must be {}",
            accepted.join(" or ")
        )));
    }
    let bytes = body.map_err(|rejection| {
        if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::PayloadTooLarge(MAX_BODY_BYTES)
        } else {
            ApiError::BadRequest("the request body could not be read".to_owned())
        }
    })?;
    if bytes.len() > MAX_BODY_BYTES {
        return Err(ApiError::PayloadTooLarge(MAX_BODY_BYTES));
    }
    serde_json::from_slice::<Value>(&bytes).map_err(|e| {
        ApiError::BadRequest(format!(
            "malformed JSON at line {}, column {}",
            e.line(),
            e.column()
        ))
    })
}

/// `If-None-Match` on a PUT: only `*` (create only) is meaningful for a write.
fn if_none_match(headers: &HeaderMap) -> Result<bool, ApiError> {
    match headers.get(header::IF_NONE_MATCH) {
        None => Ok(false),
        Some(v) if v.as_bytes().trim_ascii() == b"*" => Ok(true),
        Some(_) => Err(ApiError::BadRequest(
            "If-None-Match on a write must be * (create only)".to_owned(),
        )),
    }
}

fn if_match(headers: &HeaderMap) -> Result<Option<i64>, ApiError> {
    match headers.get(header::IF_MATCH) {
        None => Ok(None),
        Some(v) => write::parse_if_match(
            v.to_str()
                .map_err(|_| ApiError::BadRequest("If-Match must be ASCII".to_owned()))?,
        ),
    }
}

/// The resource with its resource version as `ETag`.
pub(super) fn object_response(status: StatusCode, object: OpenClawInstance) -> Response {
    let etag = HeaderValue::from_str(&format!("\"{}\"", object.metadata.resource_version)).ok();
    let mut response = (status, Json(object)).into_response();
    if let Some(etag) = etag {
        response.headers_mut().insert(header::ETAG, etag);
    }
    response
}

/// Create or replace an instance's desired state.
///
/// Creates (201) or replaces the spec (200). `generation` is bumped only when the stored spec
/// changes, `resourceVersion` when anything stored changes; a write identical to what is stored
/// changes nothing (no new `resourceVersion`, no event, no reconcile). Omitted fields take their
/// defaults; omitted labels keep the stored labels; an omitted provider key is removed.
/// `If-None-Match: *` creates only. Concurrent creates of one name give one 201, and the others
/// apply to the instance it made (200), never 409.
#[utoipa::path(put, path = "/v1/instances/{name}", tag = "instances",
    params(("name" = String, Path, description = "Instance name: a DNS label of 3-40 characters"),
        ("If-Match" = Option<String>, Header, description = "Precondition: the current resourceVersion"),
        ("If-None-Match" = Option<String>, Header, description = "`*`: create only (412 when the instance exists)")),
    request_body(content = InstanceWrite, content_type = "application/json"),
    responses(
        (status = 200, description = "Replaced (or unchanged: an identical write changes nothing)", body = OpenClawInstance),
        (status = 201, description = "Created", body = OpenClawInstance),
        (status = 400, description = "Malformed JSON or precondition header", body = ErrorBody),
        (status = 401, description = "Missing or unknown token", body = ErrorBody),
        (status = 403, description = "Read-only token", body = ErrorBody),
        (status = 409, description = "Stale resourceVersion or instance being deleted", body = ErrorBody),
        (status = 412, description = "If-None-Match: * and the instance exists", body = ErrorBody),
        (status = 413, description = "Body larger than 64 KiB", body = ErrorBody),
        (status = 415, description = "Content-Type is not application/json", body = ErrorBody),
        (status = 422, description = "Invalid fields, each named by path", body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn put_instance(
    State(state): State<ApiState>,
    Path(name): Path<String>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let precondition = if_match(&headers)?;
    let create_only = if_none_match(&headers)?;
    let body = json_body(&headers, body, &["application/json"])?;
    let (outcome, object) = write::put(&state, &name, body, precondition, create_only).await?;
    let status = match outcome {
        Outcome::Created => StatusCode::CREATED,
        Outcome::Updated => StatusCode::OK,
    };
    Ok(object_response(status, object))
}

/// Merge-patch an instance.
///
/// Applies an RFC 7386 merge patch to `{"metadata": {"labels"}, "spec"}` and validates the result.
#[utoipa::path(patch, path = "/v1/instances/{name}", tag = "instances",
    params(("name" = String, Path, description = "Instance name"),
        ("If-Match" = Option<String>, Header, description = "Precondition: the current resourceVersion")),
    request_body(content(
        (InstancePatch = "application/merge-patch+json"),
        (InstancePatch = "application/json"))),
    responses(
        (status = 200, description = "Patched", body = OpenClawInstance),
        (status = 400, description = "Malformed JSON", body = ErrorBody),
        (status = 401, description = "Missing or unknown token", body = ErrorBody),
        (status = 403, description = "Read-only token", body = ErrorBody),
        (status = 404, description = "No such instance", body = ErrorBody),
        (status = 409, description = "Stale resourceVersion or instance being deleted", body = ErrorBody),
        (status = 413, description = "Body larger than 64 KiB", body = ErrorBody),
        (status = 415, description = "Unsupported Content-Type", body = ErrorBody),
        (status = 422, description = "Invalid fields, each named by path", body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn patch_instance(
    State(state): State<ApiState>,
    Path(name): Path<String>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let precondition = if_match(&headers)?;
    let patch = json_body(&headers, body, &[MERGE_PATCH, "application/json"])?;
    let object = write::patch(&state, &name, patch, precondition).await?;
    Ok(object_response(StatusCode::OK, object))
}

/// Read one instance.
#[utoipa::path(get, path = "/v1/instances/{name}", tag = "instances",
    params(("name" = String, Path, description = "Instance name")),
    responses(
        (status = 200, description = "The instance", body = OpenClawInstance),
        (status = 401, description = "Missing or unknown token", body = ErrorBody),
        (status = 404, description = "No such instance", body = ErrorBody),
        (status = 422, description = "Invalid name", body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn get_instance(
    State(state): State<ApiState>,
    Path(name): Path<String>,
) -> Result<Response, ApiError> {
    check_name(&name).map_err(|e| ApiError::invalid(vec![e]))?;
    let record = instances::get(&mut *state.db().await?, &name)
        .await?
        .ok_or_else(|| write::not_found(&name))?;
    Ok(object_response(
        StatusCode::OK,
        write::to_resource(&state, &record)?,
    ))
}

/// Query parameters of the instance list.
#[derive(Debug, Default, Deserialize, Serialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListParams {
    /// Only instances of this customer.
    #[serde(rename = "customerId")]
    #[param(rename = "customerId")]
    pub customer_id: Option<String>,
    /// Only instances in this phase (`Pending`, `Ready`, ...).
    pub phase: Option<String>,
    /// Page size, 1-1000 (default 100).
    pub limit: Option<String>,
    /// Cursor from the previous page's `metadata.continue`.
    #[serde(rename = "continue")]
    #[param(rename = "continue")]
    pub continue_: Option<String>,
    /// `true`: stream changes instead of answering one page (see `docs/watch.md`); `limit` and
    /// `continue` do not apply.
    pub watch: Option<String>,
    /// With `watch`: send the changes after this version (a list's `metadata.resourceVersion`
    /// or the last event's); absent or `0`: every matching instance as `ADDED` first.
    #[serde(rename = "resourceVersion")]
    #[param(rename = "resourceVersion")]
    pub resource_version: Option<String>,
    /// With `watch`: end the stream after this many seconds, 1-3600 (default 1800).
    #[serde(rename = "timeoutSeconds")]
    #[param(rename = "timeoutSeconds")]
    pub timeout_seconds: Option<String>,
    /// With `watch`: send `BOOKMARK` events (default `true`).
    #[serde(rename = "allowWatchBookmarks")]
    #[param(rename = "allowWatchBookmarks")]
    pub allow_watch_bookmarks: Option<String>,
    /// With `watch`: a label selector (refused with 422 until this server parses selectors).
    #[serde(rename = "labelSelector")]
    #[param(rename = "labelSelector")]
    pub label_selector: Option<String>,
    /// With `watch`: a field selector (refused with 422 until this server parses selectors).
    #[serde(rename = "fieldSelector")]
    #[param(rename = "fieldSelector")]
    pub field_selector: Option<String>,
}

impl ListParams {
    fn raw_watch(&self) -> RawWatch<'_> {
        RawWatch {
            resource_version: self.resource_version.as_deref(),
            timeout_seconds: self.timeout_seconds.as_deref(),
            allow_watch_bookmarks: self.allow_watch_bookmarks.as_deref(),
        }
    }
}

const CURSOR_PREFIX: &str = "v1:";

fn encode_cursor(name: &str) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(format!("{CURSOR_PREFIX}{name}"))
}

fn decode_cursor(cursor: &str) -> Option<String> {
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(cursor)
        .ok()?;
    let text = String::from_utf8(bytes).ok()?;
    let name = text.strip_prefix(CURSOR_PREFIX)?;
    valid_name(name).then(|| name.to_owned())
}

fn parse_limit(raw: Option<&str>, max: i64, default: i64, errors: &mut Vec<FieldError>) -> i64 {
    match raw {
        None => default,
        Some(v) => match v.parse::<i64>() {
            Ok(n) if (1..=max).contains(&n) => n,
            _ => {
                errors.push(FieldError::new(
                    "limit",
                    format!("must be an integer from 1 to {max}"),
                ));
                default
            }
        },
    }
}

/// List instances, ordered by name, with filters and cursor pagination; or watch them.
///
/// With `watch=true` the answer is a stream of `{"type", "object"}` events (`ADDED`, `MODIFIED`,
/// `DELETED`, `BOOKMARK`, and a final `ERROR`) as newline-delimited JSON, or as Server-Sent
/// Events with `Accept: text/event-stream`; objects are rendered as GET renders them.
#[utoipa::path(get, path = "/v1/instances", tag = "instances",
    params(ListParams),
    responses(
        (status = 200, description = "A page of instances; with watch=true, a stream of watch events that ends after timeoutSeconds",
            content(
                (OpenClawInstanceList = "application/json"),
                (WatchEvent = "application/x-ndjson"),
                (String = "text/event-stream"))),
        (status = 401, description = "Missing or unknown token", body = ErrorBody),
        (status = 410, description = "watch=true from a resourceVersion no longer kept (or never issued); the body's resourceVersion is current", body = ErrorBody),
        (status = 422, description = "Invalid query parameter", body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn list_instances(
    State(state): State<ApiState>,
    headers: HeaderMap,
    params: Result<Query<ListParams>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, ApiError> {
    let Query(params) = params
        .map_err(|_| ApiError::BadRequest("the query string could not be parsed".to_owned()))?;
    let mut errors = Vec::new();
    let watching = options::wanted(params.watch.as_deref(), &mut errors);
    if let Some(c) = params.customer_id.as_deref() {
        errors.extend(check_customer_filter(c));
    }
    if let Some(p) = params.phase.as_deref() {
        if Phase::parse(p).is_none() {
            let all: Vec<_> = Phase::ALL.iter().map(|p| p.as_str()).collect();
            errors.push(FieldError::new(
                "phase",
                format!("must be one of {}", all.join(", ")),
            ));
        }
    }
    if watching {
        return watch_instances(&state, &headers, params, errors).await;
    }
    let limit = parse_limit(
        params.limit.as_deref(),
        MAX_LIMIT,
        DEFAULT_LIMIT,
        &mut errors,
    );
    let after_name = match params.continue_.as_deref() {
        None | Some("") => None,
        Some(c) => match decode_cursor(c) {
            Some(name) => Some(name),
            None => {
                errors.push(FieldError::new(
                    "continue",
                    "is not a cursor returned by this API",
                ));
                None
            }
        },
    };
    if !errors.is_empty() {
        return Err(ApiError::invalid(errors));
    }
    let mut conn = state.db().await?;
    let version = changes::list_version(&mut *conn).await?;
    let mut records = instances::list(
        &mut *conn,
        &instances::ListFilter {
            customer_id: params.customer_id,
            phase: params.phase,
            search: None,
            after_name,
            limit: limit + 1,
        },
    )
    .await?;
    let more = records.len() as i64 > limit;
    records.truncate(limit as usize);
    let continue_ = if more {
        records.last().map(|r| encode_cursor(&r.name))
    } else {
        None
    };
    let items = records
        .iter()
        .map(|r| write::to_resource(&state, r))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Json(OpenClawInstanceList {
        api_version: API_VERSION.to_owned(),
        kind: LIST_KIND.to_owned(),
        items,
        metadata: ListMeta {
            continue_,
            resource_version: Some(version.to_string()),
        },
    })
    .into_response())
}

/// `?watch=true` on the list: the list's filters and the selectors become the watch's filter.
async fn watch_instances(
    state: &ApiState,
    headers: &HeaderMap,
    params: ListParams,
    mut errors: Vec<FieldError>,
) -> Result<Response, ApiError> {
    let options = options::parse(
        params.raw_watch(),
        headers,
        state.watch.settings(),
        &mut errors,
    );
    for (name, given) in [("limit", &params.limit), ("continue", &params.continue_)] {
        if given.is_some() {
            errors.push(FieldError::new(name, "cannot be combined with watch"));
        }
    }
    let selector = filter::selectors(
        params.label_selector.as_deref(),
        params.field_selector.as_deref(),
    )
    .unwrap_or_else(|e| {
        errors.extend(e);
        None
    });
    if !errors.is_empty() {
        return Err(ApiError::invalid(errors));
    }
    let filter = Filter::new(params.customer_id, params.phase, selector);
    watch::instances::respond(state, filter, options).await
}

/// Request deletion.
///
/// Sets `metadata.deletionTimestamp` and enqueues teardown; idempotent (a repeat returns 202 with
/// the timestamp unchanged). The instance stays readable until teardown finishes.
#[utoipa::path(delete, path = "/v1/instances/{name}", tag = "instances",
    params(("name" = String, Path, description = "Instance name"),
        ("If-Match" = Option<String>, Header, description = "Precondition: the current resourceVersion")),
    responses(
        (status = 202, description = "Deletion requested", body = OpenClawInstance),
        (status = 401, description = "Missing or unknown token", body = ErrorBody),
        (status = 403, description = "Read-only token", body = ErrorBody),
        (status = 404, description = "No such instance", body = ErrorBody),
        (status = 409, description = "Stale resourceVersion", body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn delete_instance(
    State(state): State<ApiState>,
    Path(name): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let precondition = if_match(&headers)?;
    let object = write::delete(&state, &name, precondition).await?;
    Ok(object_response(StatusCode::ACCEPTED, object))
}

/// Ask for a reconcile now.
///
/// Makes the instance due immediately and wakes the workers; returns the current object.
#[utoipa::path(post, path = "/v1/instances/{name}/reconcile", tag = "instances",
    params(("name" = String, Path, description = "Instance name")),
    responses(
        (status = 202, description = "Reconcile requested", body = OpenClawInstance),
        (status = 401, description = "Missing or unknown token", body = ErrorBody),
        (status = 403, description = "Read-only token", body = ErrorBody),
        (status = 404, description = "No such instance", body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn reconcile_instance(
    State(state): State<ApiState>,
    Path(name): Path<String>,
) -> Result<Response, ApiError> {
    let object = write::request_reconcile(&state, &name).await?;
    Ok(object_response(StatusCode::ACCEPTED, object))
}

/// Query parameters of the event list.
#[derive(Debug, Default, Deserialize, Serialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct EventParams {
    /// `Normal` or `Warning`.
    #[serde(rename = "type")]
    #[param(rename = "type")]
    pub type_: Option<String>,
    /// Only events at or after this RFC 3339 time.
    pub since: Option<String>,
    /// The newest N events, 1-1000 (default 500).
    pub limit: Option<String>,
    /// `true`: stream the events (the list's first, unless `resourceVersion` is given), then
    /// each new one as it is recorded.
    pub watch: Option<String>,
    /// With `watch`: send the events with ids greater than this one.
    #[serde(rename = "resourceVersion")]
    #[param(rename = "resourceVersion")]
    pub resource_version: Option<String>,
    /// With `watch`: end the stream after this many seconds, 1-3600 (default 1800).
    #[serde(rename = "timeoutSeconds")]
    #[param(rename = "timeoutSeconds")]
    pub timeout_seconds: Option<String>,
    /// With `watch`: send `BOOKMARK` events (default `true`).
    #[serde(rename = "allowWatchBookmarks")]
    #[param(rename = "allowWatchBookmarks")]
    pub allow_watch_bookmarks: Option<String>,
}

/// Events of an instance, oldest first.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct EventList {
    pub items: Vec<Event>,
}

/// History of an instance, including after it was deleted (tombstones); or a watch of it.
///
/// With `watch=true` the answer is a stream of `ADDED` events (and `BOOKMARK`s, and a final
/// `ERROR`), each object an event, as newline-delimited JSON or Server-Sent Events.
#[utoipa::path(get, path = "/v1/instances/{name}/events", tag = "instances",
    params(("name" = String, Path, description = "Instance name"), EventParams),
    responses(
        (status = 200, description = "Events, oldest first; with watch=true, a stream of watch events that ends after timeoutSeconds",
            content(
                (EventList = "application/json"),
                (WatchEvent = "application/x-ndjson"),
                (String = "text/event-stream"))),
        (status = 401, description = "Missing or unknown token", body = ErrorBody),
        (status = 404, description = "No instance and no history under this name", body = ErrorBody),
        (status = 422, description = "Invalid query parameter", body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn list_events(
    State(state): State<ApiState>,
    Path(name): Path<String>,
    headers: HeaderMap,
    params: Result<Query<EventParams>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, ApiError> {
    let Query(params) = params
        .map_err(|_| ApiError::BadRequest("the query string could not be parsed".to_owned()))?;
    let mut errors = Vec::new();
    let watching = options::wanted(params.watch.as_deref(), &mut errors);
    let watch_options = watching.then(|| {
        let raw = RawWatch {
            resource_version: params.resource_version.as_deref(),
            timeout_seconds: params.timeout_seconds.as_deref(),
            allow_watch_bookmarks: params.allow_watch_bookmarks.as_deref(),
        };
        options::parse(raw, &headers, state.watch.settings(), &mut errors)
    });
    if let Err(e) = check_name(&name) {
        errors.push(e);
    }
    let limit = parse_limit(params.limit.as_deref(), 1000, 500, &mut errors);
    if let Some(t) = params.type_.as_deref() {
        if !["Normal", "Warning"].contains(&t) {
            errors.push(FieldError::new("type", "must be Normal or Warning"));
        }
    }
    let since = match params.since.as_deref() {
        None => None,
        Some(s) => match DateTime::parse_from_rfc3339(s) {
            Ok(t) => Some(t.with_timezone(&Utc)),
            Err(_) => {
                errors.push(FieldError::new("since", "must be an RFC 3339 timestamp"));
                None
            }
        },
    };
    if !errors.is_empty() {
        return Err(ApiError::invalid(errors));
    }
    let mut conn = state.db().await?;
    let exists = instances::get(&mut *conn, &name).await?.is_some()
        || instances::has_history(&mut *conn, &name).await?;
    if !exists {
        return Err(write::not_found(&name));
    }
    let filter = EventFilter {
        type_: params.type_,
        since,
        limit,
        through_id: None,
    };
    if let Some(options) = watch_options {
        drop(conn);
        let watch = EventWatch {
            name,
            type_: filter.type_.clone(),
            list: filter,
        };
        return watch::events::respond(&state, watch, options).await;
    }
    let items = events::list_by_name(&mut *conn, &name, &filter).await?;
    Ok(Json(EventList { items }).into_response())
}
