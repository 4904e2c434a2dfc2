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

impl FieldError {
    /// A field error at `path`.
    pub fn new(path: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            path: path.into(),
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
    /// `method_not_allowed`, `conflict`, `payload_too_large`, `unsupported_media_type`, `invalid`,
    /// `unavailable`, `internal`.
    pub code: String,
    /// Human-readable explanation.
    pub message: String,
    /// Each invalid field (422 only).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub fields: Vec<FieldError>,
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
    #[error("request body is larger than {0} bytes")]
    PayloadTooLarge(usize),
    #[error("{0}")]
    UnsupportedMediaType(String),
    #[error("{message}")]
    Invalid {
        message: String,
        fields: Vec<FieldError>,
    },
    #[error("{0}")]
    Unavailable(String),
    #[error("internal error")]
    Internal(String),
}

impl ApiError {
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
            ApiError::Conflict(_) | ApiError::StaleVersion(_) => StatusCode::CONFLICT,
            ApiError::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::Invalid { .. } => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
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
            ApiError::Invalid { fields, .. } => fields.clone(),
            _ => Vec::new(),
        };
        ErrorBody {
            error: ErrorDetail {
                code: code_for(self.status()).to_owned(),
                message,
                fields,
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
        413 => "payload_too_large",
        415 => "unsupported_media_type",
        422 => "invalid",
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
        let status = self.status();
        let mut response = (status, Json(self.body())).into_response();
        if status == StatusCode::UNAUTHORIZED {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        response
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        ApiError::Internal(e.to_string())
    }
}

impl From<sqlx::Error> for ApiError {
    fn from(e: sqlx::Error) -> Self {
        ApiError::Internal(e.to_string())
    }
}

impl From<SecretStoreError> for ApiError {
    fn from(e: SecretStoreError) -> Self {
        ApiError::Internal(e.to_string())
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
