//! The one error shape of the API, `{"error": {"code", "message", "fields"}}`, and the mapping of
//! every failure (ours, axum's rejections, unknown routes) onto it. Messages never echo request
//! values, so a rejected secret cannot leak through an error.

use axum::body::Body;
use axum::extract::Request;
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use openclaws_model::secrets::SecretError;
use openclaws_store::secrets::SecretStoreError;
use openclaws_store::StoreError;

/// One invalid field: its path in the object (`spec.guest.memoryMb`) and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct FieldError {
    /// Dotted path with `[i]` for array items, e.g. `spec.pairing.approvals[0].requestId`.
    pub path: String,
    /// What is wrong; never contains the rejected value.
    pub message: String,
}

/// Longest path shown in a field error; a longer one (an absurd field name) is cut.
const MAX_PATH_CHARS: usize = 200;

impl FieldError {
    /// A field error at `path`. A path holds the field names the client sent (an unknown field,
    /// a label key): control and invisible characters in it are spelled out (`⟨U+202E⟩`) and it
    /// is cut at 200 characters, so no error can carry hidden text back.
    pub fn new(path: impl Into<String>, message: impl Into<String>) -> Self {
        let path = path.into();
        let mut shown = openclaws_model::text::visible(&path).into_owned();
        if shown.chars().count() > MAX_PATH_CHARS {
            shown = shown.chars().take(MAX_PATH_CHARS).collect::<String>() + "…";
        }
        Self {
            path: shown,
            message: message.into(),
        }
    }
}

/// Body of every error response.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

/// The error itself.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ErrorDetail {
    /// Stable machine-readable code: `bad_request`, `unauthorized`, `forbidden`, `not_found`,
    /// `method_not_allowed`, `conflict`, `precondition_failed`, `payload_too_large`,
    /// `uri_too_long`, `unsupported_media_type`, `invalid`, `too_many_requests`,
    /// `headers_too_large`, `gone`, `too_slow`, `unavailable`, `internal`.
    pub code: String,
    /// Human-readable explanation.
    pub message: String,
    /// Each invalid field (422), or each field an apply conflicts on with its owner (409).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub fields: Vec<FieldError>,
    /// The current resource version, to list again from (`gone` only: a watch asked to resume
    /// from a version no longer retained).
    #[serde(
        default,
        rename = "resourceVersion",
        skip_serializing_if = "Option::is_none"
    )]
    pub resource_version: Option<String>,
    /// Why a request was refused, when the client can act on it: `NothingPending`,
    /// `MachineStopped`, `RequestNotFound`, `PolicyAuto`, `ApprovalFailed` (pairing approvals,
    /// `docs/pairing.md`). Stable, CamelCase; absent for other errors.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// Everything a request can fail with, mapped to a status and a code.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{0}")]
    BadRequest(String),
    #[error("a valid bearer token is required")]
    Unauthorized,
    #[error("this token may only read")]
    Forbidden,
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    /// A conflict because the caller's `resourceVersion` is stale (409, like [`ApiError::Conflict`]);
    /// its own variant so a caller that read the object itself can read again and retry.
    #[error("{0}")]
    StaleVersion(String),
    /// A server-side apply would change fields other managers own (409, each field named with
    /// its owner in `fields`).
    #[error("{message}")]
    ApplyConflict {
        message: String,
        fields: Vec<FieldError>,
    },
    /// A precondition header did not hold (`If-None-Match: *` on an existing instance): 412.
    #[error("{0}")]
    PreconditionFailed(String),
    #[error("request body is larger than {0} bytes")]
    PayloadTooLarge(usize),
    /// The request target is longer than the server accepts: 414.
    #[error("the request URL is longer than {0} bytes")]
    UriTooLong(usize),
    /// Too many failed credentials from this client address: 429 with `Retry-After` (seconds).
    #[error("too many failed sign-ins or tokens from this address; retry in {0} s")]
    TooManyRequests(u64),
    /// The header section is larger (or has more fields) than the server accepts: 431.
    #[error("{0}")]
    HeadersTooLarge(String),
    #[error("{0}")]
    UnsupportedMediaType(String),
    #[error("{message}")]
    Invalid {
        message: String,
        fields: Vec<FieldError>,
    },
    /// A watch asked to resume from a version that is no longer retained (or was never issued):
    /// 410 with the current version, from which the client lists again.
    #[error("{message}")]
    Gone { message: String, current: i64 },
    /// A request refused for a reason the client can act on: its status (404 or 409) and a
    /// machine-readable `reason` in the body.
    #[error("{message}")]
    Refused {
        status: StatusCode,
        reason: &'static str,
        message: String,
    },
    #[error("{0}")]
    Unavailable(String),
    /// The database cannot be reached or used now (503 with `Retry-After`); the detail names the
    /// driver's error for the log and is never sent.
    #[error("the database is unavailable; retry shortly")]
    DatabaseUnavailable(String),
    #[error("internal error")]
    Internal(String),
}

impl ApiError {
    /// 404 for an unknown instance.
    pub fn no_instance(name: &str) -> Self {
        ApiError::NotFound(format!("instance {name} not found"))
    }

    /// 422 with the given field errors.
    pub fn invalid(fields: Vec<FieldError>) -> Self {
        let message = match fields.len() {
            1 => format!("invalid field {}: {}", fields[0].path, fields[0].message),
            n => format!("{n} fields are invalid"),
        };
        ApiError::Invalid { message, fields }
    }

    /// The HTTP status.
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::Unauthorized => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden => StatusCode::FORBIDDEN,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::Conflict(_) | ApiError::StaleVersion(_) | ApiError::ApplyConflict { .. } => {
                StatusCode::CONFLICT
            }
            ApiError::PreconditionFailed(_) => StatusCode::PRECONDITION_FAILED,
            ApiError::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::UriTooLong(_) => StatusCode::URI_TOO_LONG,
            ApiError::TooManyRequests(_) => StatusCode::TOO_MANY_REQUESTS,
            ApiError::HeadersTooLarge(_) => StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            ApiError::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::Invalid { .. } => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::Gone { .. } => StatusCode::GONE,
            ApiError::Refused { status, .. } => *status,
            ApiError::Unavailable(_) | ApiError::DatabaseUnavailable(_) => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The body.
    pub fn body(&self) -> ErrorBody {
        let message = match self {
            ApiError::Internal(_) => "internal error; see the server log".to_owned(),
            other => other.to_string(),
        };
        let fields = match self {
            ApiError::Invalid { fields, .. } | ApiError::ApplyConflict { fields, .. } => {
                fields.clone()
            }
            _ => Vec::new(),
        };
        let resource_version = match self {
            ApiError::Gone { current, .. } => Some(current.to_string()),
            _ => None,
        };
        let reason = match self {
            ApiError::Refused { reason, .. } => Some((*reason).to_owned()),
            _ => None,
        };
        ErrorBody {
            error: ErrorDetail {
                code: code_for(self.status()).to_owned(),
                message,
                fields,
                resource_version,
                reason,
            },
        }
    }
}

/// The code of a status, for our errors and for rewritten framework responses alike.
fn code_for(status: StatusCode) -> &'static str {
    match status.as_u16() {
        400 => "bad_request",
        401 => "unauthorized",
        403 => "forbidden",
        404 => "not_found",
        405 => "method_not_allowed",
        409 => "conflict",
        410 => "gone",
        412 => "precondition_failed",
        413 => "payload_too_large",
        414 => "uri_too_long",
        415 => "unsupported_media_type",
        422 => "invalid",
        429 => "too_many_requests",
        431 => "headers_too_large",
        503 => "unavailable",
        s if s >= 500 => "internal",
        _ => "bad_request",
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if let ApiError::Internal(detail) = &self {
            tracing::error!(error = %detail, "request failed");
        }
        if let ApiError::DatabaseUnavailable(detail) = &self {
            tracing::warn!(error = %detail, "request refused: the database is unavailable");
        }
        let status = self.status();
        let mut response = (status, Json(self.body())).into_response();
        let headers = response.headers_mut();
        match &self {
            ApiError::Unauthorized => {
                headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            }
            ApiError::TooManyRequests(seconds) => {
                headers.insert(header::RETRY_AFTER, HeaderValue::from(*seconds));
            }
            ApiError::Unavailable(_) | ApiError::DatabaseUnavailable(_) => {
                headers.insert(
                    header::RETRY_AFTER,
                    HeaderValue::from(UNAVAILABLE_RETRY_AFTER_SECONDS),
                );
            }
            _ => {}
        }
        response
    }
}

/// `Retry-After` of a 503: the database is usually back (or failed over) within seconds.
pub const UNAVAILABLE_RETRY_AFTER_SECONDS: u64 = 2;

/// Whether a database error means the database cannot be reached or used right now (no
/// connection within the wait, a dropped or refused connection, a server shutting down or out
/// of connections) rather than a fault of this request or of the code: those are 503.
pub fn database_unavailable(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::WorkerCrashed => true,
        sqlx::Error::Database(db) => db.code().is_some_and(|code| {
            // 08: connection exception; 57P01-57P03: shutdown, crash, cannot connect now;
            // 53300: too many connections.
            code.starts_with("08") || code.starts_with("57P") || code == "53300"
        }),
        _ => false,
    }
}

fn from_sqlx(e: &sqlx::Error) -> ApiError {
    if database_unavailable(e) {
        ApiError::DatabaseUnavailable(e.to_string())
    } else {
        ApiError::Internal(e.to_string())
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match &e {
            StoreError::Database(db) => from_sqlx(db),
            _ => ApiError::Internal(e.to_string()),
        }
    }
}

impl From<sqlx::Error> for ApiError {
    fn from(e: sqlx::Error) -> Self {
        from_sqlx(&e)
    }
}

impl From<SecretStoreError> for ApiError {
    fn from(e: SecretStoreError) -> Self {
        match e {
            SecretStoreError::Store(store) => store.into(),
            other => ApiError::Internal(other.to_string()),
        }
    }
}

impl From<openclaws_store::webhooks::WebhookStoreError> for ApiError {
    fn from(e: openclaws_store::webhooks::WebhookStoreError) -> Self {
        match e {
            openclaws_store::webhooks::WebhookStoreError::Store(store) => store.into(),
            other => ApiError::Internal(other.to_string()),
        }
    }
}

impl From<SecretError> for ApiError {
    fn from(e: SecretError) -> Self {
        ApiError::Internal(e.to_string())
    }
}

/// Middleware: rewrites any error response that is not already JSON (axum's rejections, 404 for
/// unknown routes, 405, 413 from limits) into the one error shape; the support console's error
/// pages (`text/html`, rendered on purpose) pass through. The original text is not
/// copied, since some rejections quote the request.
pub async fn json_errors(request: Request, next: Next) -> Response {
    let response = next.run(request).await;
    let status = response.status();
    if !(status.is_client_error() || status.is_server_error()) {
        return response;
    }
    let rendered = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json") || v.starts_with("text/html"));
    if rendered {
        return response;
    }
    let (mut parts, _) = response.into_parts();
    let message = match status.as_u16() {
        404 => "no such route".to_owned(),
        405 => "method not allowed on this route".to_owned(),
        413 => "request body is too large".to_owned(),
        _ => status
            .canonical_reason()
            .unwrap_or("request failed")
            .to_owned(),
    };
    let body = ErrorBody {
        error: ErrorDetail {
            code: code_for(status).to_owned(),
            message,
            fields: Vec::new(),
            resource_version: None,
            reason: None,
        },
    };
    let bytes = serde_json::to_vec(&body).unwrap_or_default();
    parts.headers.remove(header::CONTENT_LENGTH);
    parts.headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    Response::from_parts(parts, Body::from(bytes))
}
