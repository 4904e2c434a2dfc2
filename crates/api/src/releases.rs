//! Releases (`/v1/releases`, `docs/releases.md`): create one (it starts at once if no other
//! runs), read its progress per wave, list its members and its history, and pause, resume or
//! abort it. The API only writes rows; the release worker does the rollout.

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use super::auth::Role;
use super::error::{ApiError, ErrorBody, FieldError};
use super::instances::json_body;
use super::validate::valid_name;
use super::ApiState;
use openclaws_model::release::{
    self, wave_name, MemberState, OnHalt, ReleasePhase, ReleaseSpec, ReleaseStatus, Strategy,
    WaveProgress,
};
use openclaws_model::selector::LabelSelector;
use openclaws_model::API_VERSION;
use openclaws_store::releases::{self as store, Created, MemberRow, ReleaseEvent, ReleaseRow};

/// `kind` of a release.
pub const KIND: &str = "OpenClawRelease";
/// Events shown with a release (the newest).
pub const EVENTS_SHOWN: i64 = 50;
/// Releases listed (the newest).
pub const RELEASES_LISTED: i64 = 100;

/// A release to create.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ReleaseWrite {
    pub metadata: ReleaseWriteMeta,
    pub spec: ReleaseSpec,
}

/// The name of a release to create.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReleaseWriteMeta {
    /// 3-63 characters `[a-z0-9.-]`, starting and ending with a letter or digit, e.g.
    /// `openclaw-2026.9.6`.
    #[schema(
        min_length = 3,
        max_length = 63,
        pattern = "^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$"
    )]
    pub name: String,
}

/// A release's identity.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ReleaseMeta {
    pub name: String,
    pub uid: Uuid,
    pub created_at: DateTime<Utc>,
    /// Who created it (`writer`, `console:<session>`).
    pub created_by: String,
}

/// A release: what it rolls out and how far it got.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Release {
    /// Always `openclaws.biz/v1alpha1`.
    pub api_version: String,
    /// Always `OpenClawRelease`.
    pub kind: String,
    pub metadata: ReleaseMeta,
    pub spec: ReleaseSpec,
    pub status: ReleaseStatusView,
}

/// A release's progress, with the operator's requests on it.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ReleaseStatusView {
    #[serde(flatten)]
    pub progress: ReleaseStatus,
    /// An operator asked to pause it (new starts wait; instances being updated are judged).
    pub pause_requested: bool,
    /// An operator asked to abort it: `Rollback` or `Stop`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub abort_requested: Option<OnHalt>,
    /// Its newest events, newest first (at most 50).
    pub events: Vec<ReleaseEventView>,
}

/// Something that happened to a release.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ReleaseEventView {
    /// `Normal` or `Warning`.
    #[serde(rename = "type")]
    pub type_: String,
    pub reason: String,
    pub message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub actor: Option<String>,
    pub created_at: DateTime<Utc>,
}

/// Releases, newest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct ReleaseList {
    /// At most 100, newest first (without events).
    pub items: Vec<Release>,
}

/// One instance of a release.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ReleaseMember {
    pub instance_name: String,
    pub instance_uid: Uuid,
    /// Its place in the release (by name); waves are runs of it.
    pub position: i32,
    /// 0 is the canary.
    pub wave: u32,
    #[schema(value_type = String)]
    pub state: MemberState,
    /// The image it ran before (what a rollback restores).
    pub previous_image: String,
    /// The instance generation the release's last image write made.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub generation: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub started_at: Option<DateTime<Utc>>,
    /// When an instance being updated or rolled back counts as failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deadline: Option<DateTime<Utc>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<DateTime<Utc>>,
    pub message: String,
}

/// A page of a release's members.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ReleaseMemberList {
    pub items: Vec<ReleaseMember>,
    /// Pass as `after` for the next page; absent on the last one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_after: Option<i32>,
}

/// Filter and page of the member list.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(rename_all = "camelCase")]
#[into_params(parameter_in = Query)]
pub struct MemberParams {
    /// Only members in this state (`Pending`, `Updating`, `Healthy`, `Failed`, `Skipped`,
    /// `RollingBack`, `RolledBack`, `RollbackFailed`, `Unfinished`).
    pub state: Option<String>,
    /// Members after this position (the previous page's `nextAfter`).
    #[param(minimum = -1)]
    pub after: Option<i32>,
    /// Page size, 1-1000 (default 100).
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<i64>,
}

/// What an abort does with the instances the release updated.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AbortRequest {
    /// `Rollback` or `Stop`; absent: the release's `strategy.onHalt`.
    #[serde(default)]
    pub on_abort: Option<OnHalt>,
}

/// Create a release (writer role). It starts within five seconds if no other release runs;
/// otherwise 409 (one release at a time, so no instance is claimed twice).
#[utoipa::path(post, path = "/v1/releases", tag = "releases",
    request_body(content = ReleaseWrite, content_type = "application/json"),
    responses(
        (status = 201, description = "Created; the worker chooses its members and starts it", body = Release),
        (status = 403, description = "Read-only token", body = ErrorBody),
        (status = 409, description = "A release of this name exists, or another release is running", body = ErrorBody),
        (status = 413, description = "Body larger than 64 KiB", body = ErrorBody),
        (status = 415, description = "Content-Type is not application/json", body = ErrorBody),
        (status = 422, description = "Invalid field (each named in `fields`)", body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn create_release(
    State(state): State<ApiState>,
    Extension(role): Extension<Role>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let value = json_body(&headers, body, &["application/json"])?;
    let write = parse(value)?;
    let mut conn = state.db().await?;
    check_named_instances(&mut conn, &write.spec.instances).await?;
    let mut spec = write.spec;
    if spec.openclaw_version.is_none() {
        spec.openclaw_version = release::version_of_image(&spec.image);
    }
    let stored = serde_json::to_value(&spec)
        .map_err(|e| ApiError::Internal(format!("serialising a release spec: {e}")))?;
    let actor = role.actor();
    let row = match store::create(&mut conn, &write.metadata.name, &stored, actor).await? {
        Created::Ok(row) => row,
        Created::NameTaken => {
            return Err(ApiError::Conflict(format!(
                "release {} exists already",
                write.metadata.name
            )))
        }
        Created::AnotherRunning(other) => {
            return Err(ApiError::Conflict(format!(
                "release {other} is running; one release runs at a time (abort it or wait)"
            )))
        }
    };
    let release = view(&mut conn, row, true).await?;
    let location = format!("/v1/releases/{}", release.metadata.name);
    let mut response = (StatusCode::CREATED, Json(release)).into_response();
    if let Ok(location) = HeaderValue::from_str(&location) {
        response.headers_mut().insert(header::LOCATION, location);
    }
    Ok(response)
}

/// List releases, newest first (at most 100).
#[utoipa::path(get, path = "/v1/releases", tag = "releases",
    responses((status = 200, description = "Newest first", body = ReleaseList)),
    security(("bearer" = [])))]
pub async fn list_releases(State(state): State<ApiState>) -> Result<Json<ReleaseList>, ApiError> {
    let mut conn = state.db().await?;
    let rows = store::list(&mut conn, RELEASES_LISTED).await?;
    let mut items = Vec::with_capacity(rows.len());
    for row in rows {
        items.push(view(&mut conn, row, false).await?);
    }
    Ok(Json(ReleaseList { items }))
}

/// Read a release: its spec, phase, progress per wave and newest events.
#[utoipa::path(get, path = "/v1/releases/{name}", tag = "releases",
    params(("name" = String, Path, description = "Release name")),
    responses(
        (status = 200, description = "The release", body = Release),
        (status = 404, description = "No such release", body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn get_release(
    State(state): State<ApiState>,
    Path(name): Path<String>,
) -> Result<Json<Release>, ApiError> {
    let mut conn = state.db().await?;
    let row = store::get(&mut conn, &name)
        .await?
        .ok_or_else(|| missing(&name))?;
    Ok(Json(view(&mut conn, row, true).await?))
}

/// A page of a release's members in order, optionally only those in one state.
#[utoipa::path(get, path = "/v1/releases/{name}/members", tag = "releases",
    params(("name" = String, Path, description = "Release name"), MemberParams),
    responses(
        (status = 200, description = "Members in release order", body = ReleaseMemberList),
        (status = 404, description = "No such release", body = ErrorBody),
        (status = 422, description = "Unknown state or bad page size", body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn list_members(
    State(state): State<ApiState>,
    Path(name): Path<String>,
    params: Result<Query<MemberParams>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<ReleaseMemberList>, ApiError> {
    let Query(params) = params.map_err(|_| {
        ApiError::invalid(vec![FieldError::new(
            "query",
            "state, after or limit is malformed",
        )])
    })?;
    if let Some(s) = &params.state {
        if MemberState::parse(s).is_none() {
            return Err(ApiError::invalid(vec![FieldError::new(
                "state",
                "is not a member state",
            )]));
        }
    }
    let limit = params.limit.unwrap_or(100);
    if !(1..=1000).contains(&limit) {
        return Err(ApiError::invalid(vec![FieldError::new(
            "limit",
            "must be 1-1000",
        )]));
    }
    let mut conn = state.db().await?;
    let row = store::get(&mut conn, &name)
        .await?
        .ok_or_else(|| missing(&name))?;
    let after = params.after.unwrap_or(-1);
    let rows = store::members_page(
        &mut conn,
        row.uid,
        params.state.as_deref(),
        after,
        limit + 1,
    )
    .await?;
    let more = rows.len() as i64 > limit;
    let items: Vec<ReleaseMember> = rows.into_iter().take(limit as usize).map(member).collect();
    let next_after = more.then(|| items.last().map(|m| m.position)).flatten();
    Ok(Json(ReleaseMemberList { items, next_after }))
}

/// Pause a running release (writer role): nothing new starts; instances being updated are
/// still judged.
#[utoipa::path(post, path = "/v1/releases/{name}/pause", tag = "releases",
    params(("name" = String, Path, description = "Release name")),
    responses(
        (status = 202, description = "Recorded; the next step applies it", body = Release),
        (status = 403, description = "Read-only token", body = ErrorBody),
        (status = 404, description = "No such release", body = ErrorBody),
        (status = 409, description = "The release has finished", body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn pause_release(
    State(state): State<ApiState>,
    Extension(role): Extension<Role>,
    Path(name): Path<String>,
) -> Result<Response, ApiError> {
    request(&state, &name, store::Request::Pause, role.actor()).await
}

/// Resume a paused release (writer role).
#[utoipa::path(post, path = "/v1/releases/{name}/resume", tag = "releases",
    params(("name" = String, Path, description = "Release name")),
    responses(
        (status = 202, description = "Recorded; the next step applies it", body = Release),
        (status = 403, description = "Read-only token", body = ErrorBody),
        (status = 404, description = "No such release", body = ErrorBody),
        (status = 409, description = "The release has finished", body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn resume_release(
    State(state): State<ApiState>,
    Extension(role): Extension<Role>,
    Path(name): Path<String>,
) -> Result<Response, ApiError> {
    request(&state, &name, store::Request::Resume, role.actor()).await
}

/// Abort a running release (writer role): nothing new starts, and the updated instances are
/// rolled back (`onAbort: Rollback`) or left (`Stop`); default: the release's `onHalt`.
#[utoipa::path(post, path = "/v1/releases/{name}/abort", tag = "releases",
    params(("name" = String, Path, description = "Release name")),
    request_body(content = Option<AbortRequest>, content_type = "application/json"),
    responses(
        (status = 202, description = "Recorded; the next step applies it", body = Release),
        (status = 403, description = "Read-only token", body = ErrorBody),
        (status = 404, description = "No such release", body = ErrorBody),
        (status = 409, description = "The release has finished", body = ErrorBody),
        (status = 413, description = "Body larger than 64 KiB", body = ErrorBody),
        (status = 415, description = "A body whose Content-Type is not application/json", body = ErrorBody),
        (status = 422, description = "Invalid body", body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn abort_release(
    State(state): State<ApiState>,
    Extension(role): Extension<Role>,
    Path(name): Path<String>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let empty = body.as_ref().is_ok_and(|b| b.is_empty());
    let abort: AbortRequest = if empty {
        AbortRequest::default()
    } else {
        let value = json_body(&headers, body, &["application/json"])?;
        serde_json::from_value(value).map_err(|_| {
            ApiError::invalid(vec![FieldError::new("onAbort", "must be Rollback or Stop")])
        })?
    };
    let mut conn = state.db().await?;
    let row = store::get(&mut conn, &name)
        .await?
        .ok_or_else(|| missing(&name))?;
    let on_abort = match abort.on_abort {
        Some(choice) => choice,
        None => stored_spec(&row)?.strategy.on_halt,
    };
    drop(conn);
    let action = match on_abort {
        OnHalt::Rollback => "Rollback",
        OnHalt::Stop => "Stop",
    };
    request(&state, &name, store::Request::Abort(action), role.actor()).await
}

async fn request(
    state: &ApiState,
    name: &str,
    request: store::Request,
    actor: &str,
) -> Result<Response, ApiError> {
    let mut conn = state.db().await?;
    match store::request(&mut conn, name, request, actor).await? {
        Some(row) => {
            let release = view(&mut conn, row, true).await?;
            Ok((StatusCode::ACCEPTED, Json(release)).into_response())
        }
        None => match store::get(&mut conn, name).await? {
            Some(_) => Err(ApiError::Conflict(format!("release {name} has finished"))),
            None => Err(missing(name)),
        },
    }
}

fn missing(name: &str) -> ApiError {
    ApiError::NotFound(format!("no release named {name}"))
}

fn stored_spec(row: &ReleaseRow) -> Result<ReleaseSpec, ApiError> {
    serde_json::from_value(row.spec.0.clone())
        .map_err(|e| ApiError::Internal(format!("release {} has a malformed spec: {e}", row.name)))
}

/// The release as shown: its stored spec, its progress counted per wave, its events.
async fn view(
    conn: &mut openclaws_store::Conn<'_>,
    row: ReleaseRow,
    with_events: bool,
) -> Result<Release, ApiError> {
    let spec = stored_spec(&row)?;
    let counts = store::counts(&mut *conn, row.uid).await?;
    let events = if with_events {
        store::events(&mut *conn, row.uid, EVENTS_SHOWN).await?
    } else {
        Vec::new()
    };
    let progress = ReleaseStatus {
        phase: ReleasePhase::parse(&row.phase).unwrap_or(ReleasePhase::Pending),
        message: row.message.clone(),
        wave: row.wave as u32,
        members: counts.iter().map(|c| c.2 as u32).sum(),
        waves: waves(&counts),
        started_at: row.started_at,
        finished_at: row.finished_at,
    };
    Ok(Release {
        api_version: API_VERSION.to_owned(),
        kind: KIND.to_owned(),
        metadata: ReleaseMeta {
            name: row.name,
            uid: row.uid,
            created_at: row.created_at,
            created_by: row.created_by,
        },
        spec,
        status: ReleaseStatusView {
            progress,
            pause_requested: row.paused,
            abort_requested: row.abort.as_deref().and_then(OnHalt::parse),
            events: events.into_iter().map(event).collect(),
        },
    })
}

/// Progress per wave from `(wave, state, count)` rows.
pub fn waves(counts: &[(i32, String, i64)]) -> Vec<WaveProgress> {
    let mut out: Vec<WaveProgress> = Vec::new();
    for (wave, state, n) in counts {
        let wave = *wave as u32;
        if out.last().is_none_or(|w| w.wave != wave) {
            out.push(WaveProgress {
                wave,
                name: wave_name(wave),
                ..WaveProgress::default()
            });
        }
        let state = MemberState::parse(state).unwrap_or(MemberState::Pending);
        let entry = out.last_mut().expect("pushed above");
        for _ in 0..*n {
            entry.count(state);
        }
    }
    out
}

fn event(e: ReleaseEvent) -> ReleaseEventView {
    ReleaseEventView {
        type_: e.type_,
        reason: e.reason,
        message: e.message,
        actor: e.actor,
        created_at: e.created_at,
    }
}

fn member(m: MemberRow) -> ReleaseMember {
    ReleaseMember {
        instance_name: m.instance_name,
        instance_uid: m.instance_uid,
        position: m.position,
        wave: m.wave as u32,
        state: MemberState::parse(&m.state).unwrap_or(MemberState::Pending),
        previous_image: m.previous_image,
        generation: m.generation,
        started_at: m.started_at,
        deadline: m.deadline,
        finished_at: m.finished_at,
        message: m.message,
    }
}

/// Named instances must exist (a typo would otherwise silently cover nothing).
async fn check_named_instances(
    conn: &mut openclaws_store::Conn<'_>,
    names: &[String],
) -> Result<(), ApiError> {
    if names.is_empty() {
        return Ok(());
    }
    let found = store::existing_names(&mut *conn, names).await?;
    let errors: Vec<FieldError> = names
        .iter()
        .enumerate()
        .filter(|(_, n)| !found.contains(n))
        .map(|(i, _)| FieldError::new(format!("spec.instances[{i}]"), "no such instance"))
        .collect();
    if errors.is_empty() {
        Ok(())
    } else {
        Err(ApiError::invalid(errors))
    }
}

/// Parses and validates a release to create, naming each bad field without its value.
fn parse(body: Value) -> Result<ReleaseWrite, ApiError> {
    let Value::Object(fields) = &body else {
        return Err(ApiError::invalid(vec![FieldError::new(
            "",
            "the body must be a JSON object",
        )]));
    };
    let write: ReleaseWrite = match serde_json::from_value(body.clone()) {
        Ok(write) => write,
        Err(_) => return Err(ApiError::invalid(vec![locate(fields)])),
    };
    let mut errors = Vec::new();
    if !valid_release_name(&write.metadata.name) {
        errors.push(FieldError::new(
            "metadata.name",
            "must be 3-63 characters [a-z0-9.-], starting and ending with a letter or digit",
        ));
    }
    for (path, message) in release::validate(&write.spec) {
        errors.push(FieldError::new(format!("spec.{path}"), &message));
    }
    if !errors.iter().any(|e| e.path == "spec.image") {
        if let Err(why) = super::validate::check_image(&write.spec.image) {
            errors.push(FieldError::new("spec.image", why));
        }
    }
    if let Some(selector) = &write.spec.selector {
        if let Err(e) = LabelSelector::parse(selector) {
            errors.push(FieldError::new("spec.selector", e.to_string()));
        }
    }
    for (i, name) in write.spec.instances.iter().enumerate() {
        if !valid_name(name) {
            errors.push(FieldError::new(
                format!("spec.instances[{i}]"),
                "is not an instance name",
            ));
        }
    }
    if errors.is_empty() {
        Ok(write)
    } else {
        Err(ApiError::invalid(errors))
    }
}

/// The first field of a body serde refused, found by reading each part on its own.
fn locate(fields: &serde_json::Map<String, Value>) -> FieldError {
    let schema = "does not match the schema (see /openapi.json)";
    for (key, value) in fields {
        let fits = match key.as_str() {
            "metadata" => serde_json::from_value::<ReleaseWriteMeta>(value.clone()).is_ok(),
            "spec" => {
                if let Some(strategy) = value.get("strategy") {
                    if serde_json::from_value::<Strategy>(strategy.clone()).is_err() {
                        return FieldError::new("spec.strategy", schema);
                    }
                }
                serde_json::from_value::<ReleaseSpec>(value.clone()).is_ok()
            }
            other => return FieldError::new(other, "unknown field"),
        };
        if !fits {
            return FieldError::new(key, schema);
        }
    }
    for required in ["metadata", "spec"] {
        if !fields.contains_key(required) {
            return FieldError::new(required, "is required");
        }
    }
    FieldError::new("", schema)
}

/// A release name: 3-63 characters `[a-z0-9.-]`, alphanumeric at both ends.
pub fn valid_release_name(name: &str) -> bool {
    let ends_ok = |b: Option<&u8>| b.is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit());
    (3..=63).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.')
        && ends_ok(name.as_bytes().first())
        && ends_ok(name.as_bytes().last())
}
