//! Errors in the shapes Fly answers with: `{"error":"<code>: <msg>","status"?}` for most, the
//! `{"status":"error","message","code":"invalid"}` envelope for leases.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};

/// Every way a simulated request can fail; the text is the exact `error` string clients see.
#[derive(Debug, thiserror::Error)]
pub enum SimError {
    /// 400 bad request (unparseable body, bad arguments).
    #[error("{0}")]
    BadRequest(String),
    /// 401 missing or unknown token.
    #[error("{0}")]
    Unauthorized(String),
    /// 403 the resource exists in an org the caller cannot see.
    #[error("{0}")]
    Forbidden(String),
    /// 404 resource missing.
    #[error("{0}")]
    NotFound(String),
    /// 408 a wait or flyd deadline passed.
    #[error("{0}")]
    Timeout(String),
    /// 409 conflict (stale `current_version`, old-style destroy guard).
    #[error("{0}")]
    Conflict(String),
    /// 412 failed precondition (state guards, bound volumes).
    #[error("{0}")]
    Precondition(String),
    /// 422 validation failure, optionally with Fly's machine-readable `status`.
    #[error("{message}")]
    Unprocessable {
        /// The `error` text.
        message: String,
        /// The `status` code, e.g. `name_taken`.
        status: Option<&'static str>,
    },
    /// 409 lease held by someone else, in the lease envelope.
    #[error("{0}")]
    LeaseHeld(String),
    /// Any other status with a Fly-shaped body (configurable guard codes, capacity errors).
    #[error("{message}")]
    Other {
        /// HTTP status.
        code: StatusCode,
        /// The `error` text.
        message: String,
        /// Fly's machine-readable `status`, e.g. `volume_placement_capacity`.
        status: Option<&'static str>,
    },
}

impl SimError {
    /// `412 failed_precondition: <msg>`.
    pub fn precondition(msg: impl std::fmt::Display) -> Self {
        Self::Precondition(format!("failed_precondition: {msg}"))
    }

    /// `400 invalid_argument: <msg>`.
    pub fn invalid(msg: impl std::fmt::Display) -> Self {
        Self::BadRequest(format!("invalid_argument: {msg}"))
    }

    /// The machine-scoped 404 every operation on a missing or destroyed machine returns.
    pub fn machine_not_found() -> Self {
        Self::NotFound("not_found: machine not found".into())
    }

    /// The app-scoped 404.
    pub fn app_not_found() -> Self {
        Self::NotFound("app not found".into())
    }

    /// The volume-scoped 404.
    pub fn volume_not_found() -> Self {
        Self::NotFound("not_found: volume not found".into())
    }

    /// The HTTP status this error maps to.
    pub fn status_code(&self) -> StatusCode {
        match self {
            Self::BadRequest(_) => StatusCode::BAD_REQUEST,
            Self::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            Self::Forbidden(_) => StatusCode::FORBIDDEN,
            Self::NotFound(_) => StatusCode::NOT_FOUND,
            Self::Timeout(_) => StatusCode::REQUEST_TIMEOUT,
            Self::Conflict(_) | Self::LeaseHeld(_) => StatusCode::CONFLICT,
            Self::Precondition(_) => StatusCode::PRECONDITION_FAILED,
            Self::Unprocessable { .. } => StatusCode::UNPROCESSABLE_ENTITY,
            Self::Other { code, .. } => *code,
        }
    }

    fn body(&self) -> Value {
        match self {
            Self::LeaseHeld(message) => {
                json!({"status": "error", "message": message, "code": "invalid"})
            }
            Self::Unprocessable {
                message,
                status: Some(status),
            }
            | Self::Other {
                message,
                status: Some(status),
                ..
            } => json!({"error": message, "status": status}),
            other => json!({"error": other.to_string()}),
        }
    }
}

impl IntoResponse for SimError {
    fn into_response(self) -> Response {
        (self.status_code(), Json(self.body())).into_response()
    }
}

/// Result alias for handlers and state operations.
pub type SimResult<T> = Result<T, SimError>;
