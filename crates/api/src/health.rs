//! Open operational endpoints: liveness, readiness, metrics and the OpenAPI document.

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Extension;
use std::sync::Arc;

use super::edge::Edge;
use super::error::ApiError;
use super::{validate, ApiState};
use openclaws_store::{self as store, stats};
use std::time::Duration;

/// Liveness: the process serves HTTP.
#[utoipa::path(get, path = "/healthz", tag = "operations",
    responses((status = 200, description = "The process is alive", body = String, content_type = "text/plain")))]
pub async fn healthz() -> &'static str {
    "ok"
}

/// Readiness: the database answers within [`crate::DB_WAIT`] and every migration is applied.
#[utoipa::path(get, path = "/readyz", tag = "operations",
    responses(
        (status = 200, description = "Ready to serve", body = String, content_type = "text/plain"),
        (status = 503, description = "Database unreachable or migrations pending; `Retry-After` says when to look again",
            body = super::error::ErrorBody, headers(("Retry-After" = u64, description = "Seconds to wait")))))]
pub async fn readyz(State(state): State<ApiState>) -> Result<&'static str, ApiError> {
    let applied = tokio::time::timeout(crate::DB_WAIT, store::migrations_applied(&state.pool));
    match applied.await {
        Ok(Ok(true)) if validate::schema_ready() => Ok("ready"),
        Ok(Ok(true)) => Err(ApiError::Unavailable(
            "the request schema did not compile".to_owned(),
        )),
        Ok(Ok(false)) => Err(ApiError::Unavailable(
            "database migrations are not applied".to_owned(),
        )),
        Ok(Err(e)) => Err(ApiError::DatabaseUnavailable(e.to_string())),
        Err(_) => Err(ApiError::DatabaseUnavailable(format!(
            "the readiness query did not answer within {:?}",
            crate::DB_WAIT
        ))),
    }
}

/// How long a scrape waits for the fleet counts before serving the previous ones.
const FLEET_COUNT_TIMEOUT: Duration = Duration::from_secs(2);

/// Prometheus metrics in the text exposition format. The instance counts by phase, condition
/// and OpenClaw version come from PostgreSQL (three `GROUP BY` queries, at most once per few
/// seconds however often this is scraped); when the database does not answer in time the
/// previous counts are served.
#[utoipa::path(get, path = "/metrics", tag = "operations",
    responses((status = 200, description = "Prometheus text format", body = String,
        content_type = "text/plain; version=0.0.4")))]
pub async fn metrics(
    State(state): State<ApiState>,
    Extension(edge): Extension<Arc<Edge>>,
) -> Response {
    if state.metrics.fleet_refresh_due() {
        match tokio::time::timeout(FLEET_COUNT_TIMEOUT, stats::fleet_counts(&state.pool)).await {
            Ok(Ok(counts)) => state.metrics.set_fleet(&counts),
            Ok(Err(e)) => tracing::warn!(error = %e, "counting instances for /metrics failed"),
            Err(_) => tracing::warn!("counting instances for /metrics timed out"),
        }
    }
    (
        StatusCode::OK,
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        state.metrics.encode() + &edge.encode_metrics(),
    )
        .into_response()
}
