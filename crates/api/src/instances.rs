//! Handlers of `/v1/instances`: request parsing (content type, size, JSON, query parameters) and
//! responses. The writes themselves live in [`super::write`].

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use base64::Engine;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};

use super::adopt::AdoptionWrite;
use super::auth::Role;
use super::error::{ApiError, ErrorBody, FieldError};
use super::rendered::{self, Rendered};
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
use openclaws_model::managed::MAX_MANAGER_LEN;
use openclaws_model::selector::{FieldSelector, LabelSelector, SelectorError};
use openclaws_model::{
    InstancePatch, InstanceWrite, ListMeta, OpenClawInstance, OpenClawInstanceList, Phase,
    API_VERSION, LIST_KIND,
};
use openclaws_store::changes;
use openclaws_store::events::{self, Event, EventFilter};
use openclaws_store::instances::{self, Fetched};
use openclaws_store::records::ResourceRecord;
use openclaws_store::ReadConn;

/// Default and maximum page size of the instance list.
pub const DEFAULT_LIMIT: i64 = 100;
/// See [`DEFAULT_LIMIT`].
pub const MAX_LIMIT: i64 = 1000;
/// Media type of RFC 7386 merge patches.
pub const MERGE_PATCH: &str = "application/merge-patch+json";
/// Media type of a server-side apply (as in Kubernetes).
pub const APPLY_PATCH: &str = "application/apply-patch+json";
/// The field manager of writes that name none.
pub const DEFAULT_MANAGER: &str = "api";

/// Query parameters of writes: who is writing (field ownership) and whether an apply takes
/// fields over from other managers.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(rename_all = "camelCase")]
#[into_params(parameter_in = Query)]
pub struct WriteParams {
    /// The field manager: the client or role writing (1-128 printable ASCII characters without
    /// spaces, e.g. `dashboard`, `support`). Required for apply; `api` when a `PUT` or merge
    /// patch names none.
    #[param(max_length = 128, min_length = 1, pattern = "^[!-~]+$")]
    pub field_manager: Option<String>,
    /// Apply only: take over fields other managers own instead of answering 409.
    pub force: Option<bool>,
    /// `All`: validate and carry out the write without storing anything; the answer is the
    /// object as it would be, with `plan`, the plan preview for it.
    #[param(value_type = Option<String>, pattern = "^All$")]
    pub dry_run: Option<String>,
}

/// Query parameters of `DELETE`.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(rename_all = "camelCase")]
#[into_params(parameter_in = Query)]
pub struct DeleteParams {
    /// `All`: check the deletion without requesting it; the answer is the object as it would
    /// be, with `plan`, the plan preview for it (the teardown).
    #[param(value_type = Option<String>, pattern = "^All$")]
    pub dry_run: Option<String>,
}

/// `dryRun`: only `All` (as in Kubernetes) is meaningful.
fn dry_run(value: Option<&str>) -> Result<bool, ApiError> {
    match value {
        None => Ok(false),
        Some("All") => Ok(true),
        Some(_) => Err(ApiError::invalid(vec![FieldError::new(
            "dryRun",
            "must be All",
        )])),
    }
}

/// A dry run's answer: the object as the write would leave it, and what the next reconcile
/// would then do.
#[derive(Debug, Serialize, ToSchema)]
pub struct DryRunResult {
    #[serde(flatten)]
    pub object: OpenClawInstance,
    /// The plan preview of the object (as `GET …/plan` would show it after the write).
    pub plan: super::plan::PlanPreview,
}

impl WriteParams {
    /// The options of a write by `role`, checked.
    fn options(&self, apply: bool, role: Role) -> Result<write::WriteOptions<'_>, ApiError> {
        Ok(write::WriteOptions {
            actor: role.actor(),
            manager: self.manager(apply)?,
            force: self.force.unwrap_or(false),
            dry_run: dry_run(self.dry_run.as_deref())?,
        })
    }

    /// The manager of this write, checked; `apply` requires one to be named.
    fn manager(&self, apply: bool) -> Result<&str, ApiError> {
        let manager = match self.field_manager.as_deref() {
            Some(m) => m,
            None if apply => {
                return Err(ApiError::invalid(vec![FieldError::new(
                    "fieldManager",
                    "is required for apply (application/apply-patch+json)",
                )]))
            }
            None => DEFAULT_MANAGER,
        };
        let printable = manager.bytes().all(|b| b.is_ascii_graphic());
        if manager.is_empty() || manager.len() > MAX_MANAGER_LEN || !printable {
            return Err(ApiError::invalid(vec![FieldError::new(
                "fieldManager",
                "must be 1-128 printable ASCII characters without spaces",
            )]));
        }
        if self.force.is_some() && !apply {
            return Err(ApiError::invalid(vec![FieldError::new(
                "force",
                "is only meaningful for apply (application/apply-patch+json)",
            )]));
        }
        Ok(manager)
    }
}

fn write_params(
    params: Result<Query<WriteParams>, axum::extract::rejection::QueryRejection>,
) -> Result<WriteParams, ApiError> {
    params.map(|Query(p)| p).map_err(|_| {
        ApiError::invalid(vec![FieldError::new(
            "fieldManager",
            "the query string must be fieldManager=<name> and, for apply, force=true|false",
        )])
    })
}

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

/// The answer to a write: the object, or for a dry run the object with its plan preview.
fn written_response(written: write::Written) -> Response {
    let status = match written.outcome {
        Outcome::Created => StatusCode::CREATED,
        Outcome::Updated => StatusCode::OK,
    };
    written_with(status, written)
}

fn written_with(status: StatusCode, written: write::Written) -> Response {
    let Some(plan) = written.plan else {
        return object_response(status, written.object);
    };
    let result = DryRunResult {
        object: written.object,
        plan,
    };
    (status, Json(result)).into_response()
}

/// The resource with its resource version as `ETag`.
pub(super) fn object_response(status: StatusCode, object: OpenClawInstance) -> Response {
    let etag = etag(&object.metadata.resource_version);
    let mut response = (status, Json(object)).into_response();
    response.headers_mut().extend(etag);
    response
}

/// The `ETag` header of a resource at `version` (a strong tag: `If-Match` takes it back).
fn etag(version: &dyn std::fmt::Display) -> Option<(header::HeaderName, HeaderValue)> {
    let value = HeaderValue::from_str(&format!("\"{version}\"")).ok()?;
    Some((header::ETAG, value))
}

/// Create or replace an instance's desired state.
///
/// Creates (201) or replaces the spec (200). `generation` is bumped only when the stored spec
/// changes, `resourceVersion` when anything stored changes; a write identical to what is stored
/// changes nothing (no new `resourceVersion`, no event, no reconcile). Omitted fields take their
/// defaults; omitted labels keep the stored labels; an omitted provider key is removed, except
/// that fields another field manager owns (see `metadata.managedFields`) are kept when the body
/// leaves them out: a `PUT` never removes another manager's fields. The writer (`fieldManager`,
/// default `api`) owns the fields it sent.
/// `If-None-Match: *` creates only. Concurrent creates of one name give one 201, and the others
/// apply to the instance it made (200), never 409.
#[utoipa::path(put, path = "/v1/instances/{name}", tag = "instances",
    params(WriteParams,
        ("name" = String, Path, description = "Instance name: a DNS label of 3-40 characters"),
        ("If-Match" = Option<String>, Header, description = "Precondition: the current resourceVersion"),
        ("If-None-Match" = Option<String>, Header, description = "`*`: create only (412 when the instance exists)")),
    request_body(content = InstanceWrite, content_type = "application/json"),
    responses(
        (status = 200, description = "Replaced (or unchanged: an identical write changes nothing); with dryRun=All nothing is stored and the answer adds `plan` (DryRunResult)", body = OpenClawInstance),
        (status = 201, description = "Created (with dryRun=All: would be, and the answer adds `plan`)", body = OpenClawInstance),
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
    Extension(role): Extension<Role>,
    Path(name): Path<String>,
    params: Result<Query<WriteParams>, axum::extract::rejection::QueryRejection>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let params = write_params(params)?;
    let options = params.options(false, role)?;
    let precondition = if_match(&headers)?;
    let create_only = if_none_match(&headers)?;
    let body = json_body(&headers, body, &["application/json"])?;
    let written = write::put(&state, &name, body, precondition, create_only, options).await?;
    Ok(written_response(written))
}

/// Create an instance that adopts an app the old web app built.
///
/// Takes over `app` (`{FLY_APP_PREFIX}{name}`) with its volume, DNS record, certificate and
/// gateway token (`docs/adoption.md`). The API does not call Fly: the reconcile checks the app's
/// layout before changing anything, and a mismatch shows as `Ready=False` with reason
/// `AdoptionRefused`; an adopted app is then converged with one machine update. The gateway
/// token is write-only. The writer (`fieldManager`, default `api`) owns the fields it sent.
#[utoipa::path(post, path = "/v1/instances/{name}/adopt", tag = "instances",
    params(WriteParams,
        ("name" = String, Path, description = "Instance name: the app's name without the prefix")),
    request_body(content = AdoptionWrite, content_type = "application/json"),
    responses(
        (status = 201, description = "Created, with the app claimed (with dryRun=All: would be, and the answer adds `plan`)", body = OpenClawInstance),
        (status = 400, description = "Malformed JSON", body = ErrorBody),
        (status = 401, description = "Missing or unknown token", body = ErrorBody),
        (status = 403, description = "Read-only token", body = ErrorBody),
        (status = 409, description = "The instance exists, or another instance holds the app", body = ErrorBody),
        (status = 413, description = "Body larger than 64 KiB", body = ErrorBody),
        (status = 415, description = "Content-Type is not application/json", body = ErrorBody),
        (status = 422, description = "Invalid fields, each named by path (an app outside the prefix or not named for the instance, a malformed token)", body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn adopt_instance(
    State(state): State<ApiState>,
    Extension(role): Extension<Role>,
    Path(name): Path<String>,
    params: Result<Query<WriteParams>, axum::extract::rejection::QueryRejection>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let params = write_params(params)?;
    let options = params.options(false, role)?;
    let body = json_body(&headers, body, &["application/json"])?;
    let written = super::adopt::adopt(&state, &name, body, options).await?;
    Ok(written_response(written))
}

/// Merge-patch or apply an instance.
///
/// `application/merge-patch+json` (or `application/json`): applies an RFC 7386 merge patch to
/// `{"metadata": {"labels"}, "spec"}` and validates the result; the writer (`fieldManager`,
/// default `api`) owns the fields it set.
///
/// `application/apply-patch+json`: server-side apply, as in Kubernetes. The body is the
/// manager's whole intent (`fieldManager` required): the fields it sets are set and owned by the
/// manager; fields it owned before and leaves out now are removed (reset to their defaults)
/// unless another manager owns them too; a field another manager owns with a different value is
/// a 409 naming each field and its owner in `error.fields`, unless `force=true` takes it over.
/// Creates the instance (201) when there is none.
#[utoipa::path(patch, path = "/v1/instances/{name}", tag = "instances",
    params(WriteParams,
        ("name" = String, Path, description = "Instance name"),
        ("If-Match" = Option<String>, Header, description = "Precondition: the current resourceVersion")),
    request_body(content(
        (InstancePatch = "application/merge-patch+json"),
        (InstancePatch = "application/json"),
        (InstancePatch = "application/apply-patch+json"))),
    responses(
        (status = 200, description = "Patched or applied (with dryRun=All: would be, and the answer adds `plan`)", body = OpenClawInstance),
        (status = 201, description = "Created by an apply (with dryRun=All: would be, and the answer adds `plan`)", body = OpenClawInstance),
        (status = 400, description = "Malformed JSON", body = ErrorBody),
        (status = 401, description = "Missing or unknown token", body = ErrorBody),
        (status = 403, description = "Read-only token", body = ErrorBody),
        (status = 404, description = "No such instance (merge patch)", body = ErrorBody),
        (status = 409, description = "Stale resourceVersion, instance being deleted, or an apply conflicting with fields other managers own", body = ErrorBody),
        (status = 413, description = "Body larger than 64 KiB", body = ErrorBody),
        (status = 415, description = "Unsupported Content-Type", body = ErrorBody),
        (status = 422, description = "Invalid fields, each named by path", body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn patch_instance(
    State(state): State<ApiState>,
    Extension(role): Extension<Role>,
    Path(name): Path<String>,
    params: Result<Query<WriteParams>, axum::extract::rejection::QueryRejection>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let params = write_params(params)?;
    let precondition = if_match(&headers)?;
    let body = json_body(
        &headers,
        body,
        &[MERGE_PATCH, "application/json", APPLY_PATCH],
    )?;
    if media_type(&headers).as_deref() == Some(APPLY_PATCH) {
        let options = params.options(true, role)?;
        let written = write::apply(&state, &name, body, precondition, options).await?;
        return Ok(written_response(written));
    }
    let options = params.options(false, role)?;
    let written = write::patch(&state, &name, body, precondition, options).await?;
    Ok(written_response(written))
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
    let known = state.rendered.get(&name);
    let mut conn = state.read().await?;
    let fetched =
        instances::get_resource_unless(&mut conn, &name, known.as_ref().map(|r| r.version)).await?;
    conn.done();
    let fetched = fetched.ok_or_else(|| write::not_found(&name))?;
    let rendered = match (fetched, known) {
        (Fetched::Unchanged, Some(known)) => known,
        (Fetched::Changed(record), _) => render(&state, *record)?,
        (Fetched::Unchanged, None) => {
            return Err(ApiError::Internal("unchanged from no version".to_owned()))
        }
    };
    Ok(rendered_response(&rendered))
}

/// `record` rendered (and kept for the next read).
fn render(state: &ApiState, record: ResourceRecord) -> Result<Rendered, ApiError> {
    state
        .rendered
        .render(record, &state.cipher)
        .map_err(|e| ApiError::Internal(format!("rendering an instance: {e}")))
}

/// A rendered instance as a 200 with its `ETag`, like [`object_response`].
fn rendered_response(rendered: &Rendered) -> Response {
    let mut response = (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        rendered.body.clone(),
    )
        .into_response();
    response.headers_mut().extend(etag(&rendered.version));
    response
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
    /// Kubernetes label selector over `metadata.labels`: requirements joined by `,` (all must
    /// hold): `key=value` (or `==`), `key!=value`, `key in (v1,v2)`, `key notin (v1,v2)`, `key`
    /// (has the label), `!key` (lacks it). `!=` and `notin` also select instances without the
    /// label. Keys and values follow Kubernetes' rules. A selector that cannot be parsed is a 400
    /// naming the offset and what was expected there.
    #[serde(rename = "labelSelector")]
    #[param(rename = "labelSelector")]
    pub label_selector: Option<String>,
    /// Field selector: `status.phase` and `spec.customerId` with `=`, `==` or `!=`, joined by `,`
    /// (all must hold); `\` escapes `\`, `,` and `=` in a value. Other fields are a 400.
    #[serde(rename = "fieldSelector")]
    #[param(rename = "fieldSelector")]
    pub field_selector: Option<String>,
}

/// Parses the selector parameters; an unparseable one is a 400 naming the parameter and where.
fn selectors(params: &ListParams) -> Result<(LabelSelector, FieldSelector), ApiError> {
    let bad = |parameter: &str, e: SelectorError| {
        ApiError::BadRequest(format!("invalid {parameter}: {e}"))
    };
    let labels = match params.label_selector.as_deref() {
        None => LabelSelector::default(),
        Some(raw) => LabelSelector::parse(raw).map_err(|e| bad("labelSelector", e))?,
    };
    let fields = match params.field_selector.as_deref() {
        None => FieldSelector::default(),
        Some(raw) => FieldSelector::parse(raw).map_err(|e| bad("fieldSelector", e))?,
    };
    Ok((labels, fields))
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
/// Every filter (`customerId`, `phase`, `labelSelector`, `fieldSelector`) applies before
/// paging: a page holds up to `limit` matching instances, and following `continue` with the
/// same filters returns every match exactly once.
///
/// With `watch=true` the answer is a stream of `{"type", "object"}` events (`ADDED`, `MODIFIED`,
/// `DELETED`, `BOOKMARK`, and a final `ERROR`) as newline-delimited JSON, or as Server-Sent
/// Events with `Accept: text/event-stream`; objects are rendered as GET renders them, and the
/// same filters apply (an instance entering or leaving them is `ADDED` or `DELETED`).
#[utoipa::path(get, path = "/v1/instances", tag = "instances",
    params(ListParams),
    responses(
        (status = 200, description = "A page of instances; with watch=true, a stream of watch events that ends after timeoutSeconds",
            content(
                (OpenClawInstanceList = "application/json"),
                (WatchEvent = "application/x-ndjson"),
                (String = "text/event-stream"))),
        (status = 400, description = "Unparseable labelSelector or fieldSelector (the message names the parameter, the offset and what was expected), or an unreadable query string", body = ErrorBody),
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
    let (labels, fields) = selectors(&params)?;
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
        let selector = filter::selectors(labels, fields);
        return watch_instances(&state, &headers, params, selector, errors).await;
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
    let mut conn = state.read().await?;
    let version = changes::list_version(&mut conn).await?;
    let filter = instances::ListFilter {
        customer_id: params.customer_id,
        phase: params.phase,
        search: None,
        labels,
        fields,
        after_name,
        limit: limit + 1,
    };
    let mut page = instances::list_versions(&mut conn, &filter).await?;
    let more = page.len() as i64 > limit;
    page.truncate(limit as usize);
    let continue_ = if more {
        page.last().map(|(name, _)| encode_cursor(name))
    } else {
        None
    };
    let items = rendered_page(&state, &mut conn, page).await?;
    conn.done();
    let envelope = OpenClawInstanceList {
        api_version: API_VERSION.to_owned(),
        kind: LIST_KIND.to_owned(),
        items: Vec::new(),
        metadata: ListMeta {
            continue_,
            resource_version: Some(version.to_string()),
        },
    };
    let envelope = serde_json::to_vec(&envelope).map_err(|e| ApiError::Internal(e.to_string()))?;
    let body = rendered::list_body(&envelope, &items)
        .ok_or_else(|| ApiError::Internal("a list without items".to_owned()))?;
    Ok((
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        body,
    )
        .into_response())
}

/// The instances of a page (names and versions, in order) as rendered bodies: those the cache
/// holds at their current version as they are, the rest read in one statement and rendered. An
/// instance deleted since the page was read is left out.
async fn rendered_page(
    state: &ApiState,
    conn: &mut ReadConn,
    page: Vec<(String, i64)>,
) -> Result<Vec<Rendered>, ApiError> {
    let mut items: Vec<Option<Rendered>> = page
        .iter()
        .map(|(name, version)| state.rendered.get(name).filter(|r| r.version == *version))
        .collect();
    let missing: Vec<String> = page
        .iter()
        .zip(&items)
        .filter(|(_, item)| item.is_none())
        .map(|((name, _), _)| name.clone())
        .collect();
    if !missing.is_empty() {
        let mut fresh = std::collections::HashMap::new();
        for record in instances::get_resources(&mut *conn, &missing).await? {
            let name = record.name.clone();
            fresh.insert(name, render(state, record)?);
        }
        for ((name, _), item) in page.iter().zip(items.iter_mut()) {
            if item.is_none() {
                *item = fresh.remove(name);
            }
        }
    }
    Ok(items.into_iter().flatten().collect())
}

/// `?watch=true` on the list: the list's filters and the selectors become the watch's filter.
async fn watch_instances(
    state: &ApiState,
    headers: &HeaderMap,
    params: ListParams,
    selector: Option<filter::Predicate>,
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
    params(DeleteParams,
        ("name" = String, Path, description = "Instance name"),
        ("If-Match" = Option<String>, Header, description = "Precondition: the current resourceVersion")),
    responses(
        (status = 202, description = "Deletion requested (with dryRun=All: checked only, the answer adds `plan`)", body = OpenClawInstance),
        (status = 401, description = "Missing or unknown token", body = ErrorBody),
        (status = 403, description = "Read-only token", body = ErrorBody),
        (status = 404, description = "No such instance", body = ErrorBody),
        (status = 409, description = "Stale resourceVersion", body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn delete_instance(
    State(state): State<ApiState>,
    Extension(role): Extension<Role>,
    Path(name): Path<String>,
    params: Result<Query<DeleteParams>, axum::extract::rejection::QueryRejection>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let Query(params) =
        params.map_err(|_| ApiError::invalid(vec![FieldError::new("dryRun", "must be All")]))?;
    let dry_run = dry_run(params.dry_run.as_deref())?;
    let precondition = if_match(&headers)?;
    let written = write::delete(&state, &name, precondition, dry_run, role.actor()).await?;
    Ok(written_with(StatusCode::ACCEPTED, written))
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
    Extension(role): Extension<Role>,
    Path(name): Path<String>,
) -> Result<Response, ApiError> {
    let object = write::request_reconcile(&state, &name, role.actor()).await?;
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
    let exists = instances::get(&mut conn, &name).await?.is_some()
        || instances::has_history(&mut conn, &name).await?;
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
    let items = events::list_by_name(&mut conn, &name, &filter).await?;
    Ok(Json(EventList { items }).into_response())
}
