//! Webhook endpoints (`/v1/webhooks`, `docs/webhooks.md`): register (the signing secret is in
//! the answer, once), list, read, delete, an endpoint's recent deliveries, and a retry of a
//! failed one. Writes need the
//! writer token; the reader may list. No answer but the creation's carries a secret.

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use utoipa::ToSchema;
use uuid::Uuid;

use super::error::{ApiError, ErrorBody, FieldError};
use super::instances::json_body;
use super::ApiState;
use openclaws_model::selector::LabelSelector;
use openclaws_model::text::has_control;
use openclaws_model::webhooks::{generate_secret, EventType};
use openclaws_store::webhooks::{self as store, DeliveryRow, NewWebhook, WebhookRow};

/// Longest accepted endpoint URL.
pub const MAX_URL_CHARS: usize = 2048;
/// Longest accepted description.
pub const MAX_DESCRIPTION_CHARS: usize = 256;
/// Most webhooks registered at once (each change is written once per subscribed endpoint).
pub const MAX_WEBHOOKS: i64 = 100;
/// Deliveries listed per endpoint (the newest).
pub const DELIVERIES_LISTED: i64 = 100;

/// What a webhook can subscribe to.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, ToSchema)]
pub enum WebhookEventType {
    /// The instance was created.
    #[serde(rename = "instance.created")]
    Created,
    /// `status.phase` changed.
    #[serde(rename = "instance.phase_changed")]
    PhaseChanged,
    /// A condition's type, status or reason changed.
    #[serde(rename = "instance.conditions_changed")]
    ConditionsChanged,
    /// A new device pairing request is waiting for approval.
    #[serde(rename = "instance.pairing_requested")]
    PairingRequested,
    /// The instance was deleted (teardown finished).
    #[serde(rename = "instance.deleted")]
    Deleted,
}

/// A webhook to register.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct WebhookWrite {
    /// Where deliveries are POSTed: `http` or `https`, no credentials, at most 2048 characters.
    #[schema(min_length = 1, max_length = 2048)]
    pub url: String,
    /// The event types to receive (at least one).
    #[schema(min_items = 1)]
    pub event_types: Vec<WebhookEventType>,
    /// Only instances whose labels match (Kubernetes syntax); empty or absent: every instance.
    #[serde(default)]
    #[schema(max_length = 4096)]
    pub label_selector: Option<String>,
    /// Free text for people (at most 256 characters, no control characters).
    #[serde(default)]
    #[schema(max_length = 256)]
    pub description: Option<String>,
}

/// A registered webhook (never its secret), with its outbox counts.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Webhook {
    /// Its id, in its URL.
    pub id: Uuid,
    /// Where deliveries are POSTed.
    pub url: String,
    /// Free text from the registration.
    pub description: String,
    /// The event types it receives.
    #[schema(value_type = Vec<WebhookEventType>)]
    pub event_types: Vec<String>,
    /// Empty: every instance.
    pub label_selector: String,
    /// When it was registered.
    pub created_at: DateTime<Utc>,
    /// Deliveries not yet sent.
    pub pending: i64,
    /// Deliveries given up on after the retry window.
    pub failed: i64,
}

/// The answer to a registration: the webhook and its signing secret, shown this once.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct WebhookCreated {
    /// The webhook as listed.
    #[serde(flatten)]
    pub webhook: Webhook,
    /// `whsec_` and base64: the HMAC key is the base64-decoded part. Shown only here.
    pub secret: String,
}

impl std::fmt::Debug for WebhookCreated {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebhookCreated")
            .field("webhook", &self.webhook)
            .field("secret", &"..")
            .finish()
    }
}

/// Every registered webhook.
#[derive(Debug, Serialize, ToSchema)]
pub struct WebhookList {
    /// Oldest first.
    pub items: Vec<Webhook>,
}

/// One outbox row: a change on its way to an endpoint.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Delivery {
    /// Also the `webhook-id` header of every attempt (dedupe on it).
    pub id: Uuid,
    /// The webhook it goes to.
    pub webhook_id: Uuid,
    /// The instance's name.
    pub instance_name: String,
    /// The instance's uid.
    pub instance_uid: Uuid,
    /// The change's `metadata.resourceVersion`.
    pub resource_version: String,
    /// The event types the change carries (of those the webhook receives).
    #[schema(value_type = Vec<WebhookEventType>)]
    pub event_types: Vec<String>,
    /// `pending`, `delivered`, `failed` (given up on) or `skipped` (the selector excludes the
    /// instance).
    pub state: String,
    /// Attempts made so far.
    pub attempts: i32,
    /// The HTTP status of the last attempt, when the endpoint answered.
    pub last_status: Option<i32>,
    /// What went wrong last, in the controller's words.
    pub last_error: Option<String>,
    /// When the next attempt is due (pending deliveries).
    pub next_attempt_at: Option<DateTime<Utc>>,
    /// When the change was committed.
    pub created_at: DateTime<Utc>,
    /// When it was delivered (or skipped).
    pub delivered_at: Option<DateTime<Utc>>,
}

/// An endpoint's newest deliveries, newest first (at most 100).
#[derive(Debug, Serialize, ToSchema)]
pub struct DeliveryList {
    /// Newest first.
    pub items: Vec<Delivery>,
}

impl From<WebhookRow> for Webhook {
    fn from(row: WebhookRow) -> Self {
        Self {
            id: row.id,
            url: row.url,
            description: row.description,
            event_types: row.event_types,
            label_selector: row.label_selector,
            created_at: row.created_at,
            pending: row.pending,
            failed: row.failed,
        }
    }
}

impl From<DeliveryRow> for Delivery {
    fn from(row: DeliveryRow) -> Self {
        let pending = row.state == "pending";
        Self {
            id: row.id,
            webhook_id: row.webhook_id,
            instance_name: row.instance_name,
            instance_uid: row.instance_uid,
            resource_version: row.resource_version.to_string(),
            event_types: row.event_types,
            state: row.state,
            attempts: row.attempts,
            last_status: row.last_status,
            last_error: row.last_error,
            next_attempt_at: pending.then_some(row.next_attempt_at),
            created_at: row.created_at,
            delivered_at: row.delivered_at,
        }
    }
}

/// Register a webhook (writer role). The answer carries its signing secret, once.
#[utoipa::path(post, path = "/v1/webhooks", tag = "webhooks",
    request_body(content = WebhookWrite, content_type = "application/json"),
    responses(
        (status = 201, description = "Registered; `secret` is shown only in this answer", body = WebhookCreated),
        (status = 403, description = "Read-only token", body = ErrorBody),
        (status = 409, description = "100 webhooks are registered already", body = ErrorBody),
        (status = 413, description = "Body larger than 64 KiB", body = ErrorBody),
        (status = 415, description = "Content-Type is not application/json", body = ErrorBody),
        (status = 422, description = "Invalid field (each named in `fields`): URL, event types, label selector (with the offset) or description", body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn create_webhook(
    State(state): State<ApiState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let value = json_body(&headers, body, &["application/json"])?;
    let write = parse_write(value)?;
    let secret = generate_secret();
    let new = NewWebhook {
        url: &write.url,
        description: &write.description,
        event_types: &write.event_types,
        label_selector: &write.label_selector,
    };
    let mut conn = state.db().await?;
    if store::count(&mut conn).await? >= MAX_WEBHOOKS {
        return Err(ApiError::Conflict(format!(
            "{MAX_WEBHOOKS} webhooks are registered already; delete one first"
        )));
    }
    let row = store::create(&mut conn, &state.cipher, &new, &secret).await?;
    let location = format!("/v1/webhooks/{}", row.id);
    let created = WebhookCreated {
        webhook: row.into(),
        secret,
    };
    let mut response = (StatusCode::CREATED, Json(created)).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    if let Ok(location) = HeaderValue::from_str(&location) {
        headers.insert(header::LOCATION, location);
    }
    Ok(response)
}

/// List the registered webhooks with their pending and failed counts (never a secret).
#[utoipa::path(get, path = "/v1/webhooks", tag = "webhooks",
    responses((status = 200, description = "Every webhook, oldest first", body = WebhookList)),
    security(("bearer" = [])))]
pub async fn list_webhooks(State(state): State<ApiState>) -> Result<Json<WebhookList>, ApiError> {
    let mut conn = state.db().await?;
    let rows = store::list(&mut conn).await?;
    Ok(Json(WebhookList {
        items: rows.into_iter().map(Webhook::from).collect(),
    }))
}

/// Read one webhook (never its secret).
#[utoipa::path(get, path = "/v1/webhooks/{id}", tag = "webhooks",
    params(("id" = Uuid, Path, description = "Webhook id")),
    responses(
        (status = 200, description = "The webhook", body = Webhook),
        (status = 404, description = "No such webhook", body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn get_webhook(
    State(state): State<ApiState>,
    Path(id): Path<Uuid>,
) -> Result<Json<Webhook>, ApiError> {
    let mut conn = state.db().await?;
    let row = store::get(&mut conn, id).await?.ok_or_else(no_webhook)?;
    Ok(Json(row.into()))
}

/// Delete a webhook and its outbox (writer role): nothing more is sent to it.
#[utoipa::path(delete, path = "/v1/webhooks/{id}", tag = "webhooks",
    params(("id" = Uuid, Path, description = "Webhook id")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 403, description = "Read-only token", body = ErrorBody),
        (status = 404, description = "No such webhook", body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn delete_webhook(
    State(state): State<ApiState>,
    Path(id): Path<Uuid>,
) -> Result<StatusCode, ApiError> {
    let mut conn = state.db().await?;
    if store::delete(&mut conn, id).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(no_webhook())
    }
}

/// A webhook's newest deliveries (at most 100), with state, attempts, last status and the next
/// attempt's time.
#[utoipa::path(get, path = "/v1/webhooks/{id}/deliveries", tag = "webhooks",
    params(("id" = Uuid, Path, description = "Webhook id")),
    responses(
        (status = 200, description = "Newest first", body = DeliveryList),
        (status = 404, description = "No such webhook", body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn list_deliveries(
    State(state): State<ApiState>,
    Path(id): Path<Uuid>,
) -> Result<Json<DeliveryList>, ApiError> {
    let mut conn = state.db().await?;
    store::get(&mut conn, id).await?.ok_or_else(no_webhook)?;
    let rows = store::deliveries(&mut conn, id, DELIVERIES_LISTED).await?;
    Ok(Json(DeliveryList {
        items: rows.into_iter().map(Delivery::from).collect(),
    }))
}

/// Send a failed delivery again (writer role): it is pending at once, with a new retry window.
/// The receiver then gets an older state than ones it may have had since (its
/// `resourceVersion` says so).
#[utoipa::path(post, path = "/v1/webhooks/{id}/deliveries/{delivery}/retry", tag = "webhooks",
    params(
        ("id" = Uuid, Path, description = "Webhook id"),
        ("delivery" = Uuid, Path, description = "Delivery id (its `webhook-id` header)")),
    responses(
        (status = 202, description = "Pending again, due now", body = Delivery),
        (status = 403, description = "Read-only token", body = ErrorBody),
        (status = 404, description = "No such delivery of this webhook", body = ErrorBody),
        (status = 409, description = "The delivery has not failed (it is pending, delivered or skipped)", body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn retry_delivery(
    State(state): State<ApiState>,
    Path((id, delivery)): Path<(Uuid, Uuid)>,
) -> Result<Response, ApiError> {
    let mut conn = state.db().await?;
    match store::retry(&mut conn, id, delivery).await? {
        store::Retry::Scheduled(row) => {
            Ok((StatusCode::ACCEPTED, Json(Delivery::from(row))).into_response())
        }
        store::Retry::NotFailed => Err(ApiError::Conflict(
            "only a failed delivery can be retried; this one has not failed".to_owned(),
        )),
        store::Retry::Missing => Err(ApiError::NotFound(
            "no such delivery of this webhook".to_owned(),
        )),
    }
}

fn no_webhook() -> ApiError {
    ApiError::NotFound("no such webhook".to_owned())
}

/// A registration as validated: every field checked, event types deduplicated in the
/// documented order.
#[derive(Debug, Default)]
struct Parsed {
    url: String,
    event_types: Vec<String>,
    label_selector: String,
    description: String,
}

/// Reads a registration field by field, so an error names the field and the kind of problem
/// (serde's messages quote the offending value, which must not come back).
fn parse_write(body: Value) -> Result<Parsed, ApiError> {
    let Value::Object(fields) = body else {
        let problem = FieldError::new("", "the body must be a JSON object");
        return Err(ApiError::invalid(vec![problem]));
    };
    let mut errors = Vec::new();
    let parsed = parse_fields(fields, &mut errors);
    if errors.is_empty() {
        Ok(parsed)
    } else {
        Err(ApiError::invalid(errors))
    }
}

fn parse_fields(fields: Map<String, Value>, errors: &mut Vec<FieldError>) -> Parsed {
    let mut parsed = Parsed::default();
    let (mut url, mut types) = (false, false);
    for (key, value) in fields {
        match key.as_str() {
            "url" => {
                url = true;
                parsed.url = string_field("url", value, errors, check_url);
            }
            "eventTypes" => {
                types = true;
                parsed.event_types = event_types(value, errors);
            }
            "labelSelector" => {
                parsed.label_selector = optional("labelSelector", value, errors, check_selector)
            }
            "description" => {
                parsed.description = optional("description", value, errors, check_description)
            }
            other => errors.push(FieldError::new(other, "unknown field")),
        }
    }
    for (present, name) in [(url, "url"), (types, "eventTypes")] {
        if !present {
            errors.push(FieldError::new(name, "is required"));
        }
    }
    parsed
}

/// A string field checked by `check` (which returns the problem); empty on error.
fn string_field(
    path: &str,
    value: Value,
    errors: &mut Vec<FieldError>,
    check: fn(&str) -> Option<String>,
) -> String {
    let Value::String(text) = value else {
        errors.push(FieldError::new(path, "must be a string"));
        return String::new();
    };
    match check(&text) {
        Some(problem) => {
            errors.push(FieldError::new(path, problem));
            String::new()
        }
        None => text,
    }
}

/// Like [`string_field`], with `null` meaning empty.
fn optional(
    path: &str,
    value: Value,
    errors: &mut Vec<FieldError>,
    check: fn(&str) -> Option<String>,
) -> String {
    match value {
        Value::Null => String::new(),
        other => string_field(path, other, errors, check),
    }
}

/// What is wrong with an endpoint URL, if anything.
fn check_url(text: &str) -> Option<String> {
    if text.chars().count() > MAX_URL_CHARS {
        return Some(format!("must be at most {MAX_URL_CHARS} characters"));
    }
    if has_control(text) || text.chars().any(char::is_whitespace) {
        return Some("must not contain spaces or control characters".to_owned());
    }
    let Ok(url) = url::Url::parse(text) else {
        return Some("must be an absolute http or https URL".to_owned());
    };
    if !matches!(url.scheme(), "http" | "https") {
        return Some("must use http or https".to_owned());
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Some("must not contain credentials (user or password)".to_owned());
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Some("must name a host".to_owned());
    }
    if url.fragment().is_some() {
        return Some("must not have a fragment".to_owned());
    }
    None
}

/// What is wrong with a label selector: where, and what was expected (never its text).
fn check_selector(text: &str) -> Option<String> {
    LabelSelector::parse(text)
        .err()
        .map(|e| format!("is not a valid label selector: {e}"))
}

fn check_description(text: &str) -> Option<String> {
    if text.chars().count() > MAX_DESCRIPTION_CHARS {
        return Some(format!(
            "must be at most {MAX_DESCRIPTION_CHARS} characters"
        ));
    }
    has_control(text).then(|| "must not contain control characters".to_owned())
}

/// The event types, each known, at least one; deduplicated, in the documented order.
fn event_types(value: Value, errors: &mut Vec<FieldError>) -> Vec<String> {
    let Value::Array(items) = value else {
        errors.push(FieldError::new("eventTypes", "must be an array of strings"));
        return Vec::new();
    };
    if items.is_empty() {
        errors.push(FieldError::new(
            "eventTypes",
            "must name at least one event type",
        ));
    }
    let known: Vec<&str> = EventType::ALL.iter().map(|t| t.as_str()).collect();
    let mut chosen = Vec::new();
    for (i, item) in items.iter().enumerate() {
        match item.as_str().and_then(EventType::parse) {
            Some(t) => chosen.push(t),
            None => errors.push(FieldError::new(
                format!("eventTypes[{i}]"),
                format!("unknown event type; one of {}", known.join(", ")),
            )),
        }
    }
    chosen.sort_unstable();
    chosen.dedup();
    chosen.into_iter().map(|t| t.as_str().to_owned()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn problems(body: Value) -> Vec<String> {
        match parse_write(body) {
            Ok(_) => Vec::new(),
            Err(ApiError::Invalid { fields, .. }) => {
                let mut paths: Vec<String> = fields.into_iter().map(|f| f.path).collect();
                paths.sort();
                paths
            }
            Err(other) => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn urls() {
        assert_eq!(check_url("https://example.com/hook?a=1"), None);
        assert_eq!(check_url("http://127.0.0.1:9/x"), None);
        for bad in [
            "ftp://example.com",
            "https://user:pw@example.com",
            "https://example.com/#frag",
            "/relative",
            "https://exa mple.com",
            "javascript:alert(1)",
        ] {
            assert!(check_url(bad).is_some(), "{bad}");
        }
        assert!(check_url(&format!("https://e.com/{}", "a".repeat(2048))).is_some());
    }

    #[test]
    fn bodies() {
        let good = json!({"url": "https://e.com", "eventTypes": ["instance.deleted", "instance.created", "instance.deleted"]});
        let parsed = parse_write(good).unwrap();
        assert_eq!(parsed.event_types, ["instance.created", "instance.deleted"]);
        assert_eq!(problems(json!({"url": "https://e.com"})), ["eventTypes"]);
        assert_eq!(
            problems(json!({"url": 1, "eventTypes": ["x"], "labelSelector": "a in (", "extra": 1})),
            ["eventTypes[0]", "extra", "labelSelector", "url"]
        );
        assert_eq!(problems(json!([])), [""]);
    }
}
