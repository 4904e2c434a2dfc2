//! The HTTP API: writes desired state, reads observed status. It never calls Fly.
//!
//! Routes under `/v1` need a bearer token (writer: all, reader: GET only); `/healthz`, `/readyz`,
//! `/metrics` and `/openapi.json` are open. Every error, including the framework's own rejections,
//! has one JSON shape ([`error::ErrorBody`]). The support console's HTML pages under `/support`
//! ([`support`]) have their own sign-in and render their own errors as pages.
//!
//! [`listen::serve`] serves the router with the connection's address in each request and
//! hyper's limits above the API's own ([`edge`]); every database wait is bounded by
//! [`DB_WAIT`], so a database outage is a prompt 503 with `Retry-After`.

pub mod adopt;
pub mod auth;
pub mod channel_pairing;
mod decisions;
pub mod edge;
pub mod error;
pub mod gateway;
pub mod head_errors;
pub mod health;
pub mod instances;
pub mod listen;
pub mod openapi;
pub mod plan;
pub mod releases;
pub mod rendered;
pub mod support;
pub mod validate;
pub mod watch;
pub mod webhooks;
pub mod write;

use axum::extract::DefaultBodyLimit;
use axum::middleware::{from_fn, from_fn_with_state};
use axum::routing::{get, post};
use axum::Router;
use openclaws_store::{Conn, Db, ReadConn};
use std::sync::Arc;
use std::time::Duration;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::{DefaultOnResponse, TraceLayer};

use edge::{Edge, EdgeSettings};
use error::ApiError;
pub use listen::serve;
use openclaws_model::secrets::SecretCipher;
use openclaws_telemetry::Metrics;

/// Largest accepted request body (64 KiB); larger bodies get 413.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// Longest a request waits for a working database connection before it is answered 503 (with
/// `Retry-After`): an unreachable database is reported in about this long, not after the pool's
/// own acquire timeout (which the workers keep).
pub const DB_WAIT: Duration = Duration::from_secs(1);

/// Longest a plan preview (several reads and the planner) may take once the database answered.
pub const PREVIEW_DEADLINE: Duration = Duration::from_secs(5);

/// Bearer tokens of the two roles.
#[derive(Clone)]
pub struct ApiTokens {
    /// Dashboard: may write desired state.
    pub writer: String,
    /// Support: may only read.
    pub reader: String,
}

impl std::fmt::Debug for ApiTokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ApiTokens(..)")
    }
}

/// Everything a handler needs.
#[derive(Clone, Debug)]
pub struct ApiState {
    /// The database, as the controller reaches it (directly or through a pooler).
    pub pool: Db,
    pub cipher: Arc<SecretCipher>,
    pub tokens: Arc<ApiTokens>,
    /// Hostnames are `{name}.{base_domain}`.
    pub base_domain: Arc<str>,
    pub metrics: Arc<Metrics>,
    /// How long the controller watches a gateway for pairing devices after the dashboard reads
    /// its token (the moment a device is about to connect).
    pub pairing_window: std::time::Duration,
    /// What desired states are built from (the workers' own settings), for the plan preview.
    pub inputs: Arc<openclaws_engine::reconcile::DesiredInputs>,
    /// Follows the database's change horizons for every watch of this process.
    pub watch: watch::WatchHub,
    /// Instances as last rendered, reused while their version is current.
    pub rendered: rendered::RenderCache,
    /// Writes merge patches that store no secret in shared statements, and wakes the workers
    /// after them ([`openclaws_store::desired`]).
    pub desired: openclaws_store::desired::DesiredWriter,
}

impl ApiState {
    /// A pooled connection within [`DB_WAIT`], or 503: the pool retries refused connections
    /// until its own (longer) acquire timeout, which a request must not wait out.
    pub async fn db(&self) -> Result<Conn<'static>, ApiError> {
        within_db_wait(self.pool.acquire()).await
    }

    /// A connection for statements that need no transaction (reads), within [`DB_WAIT`]: a
    /// read lane when one is free ([`openclaws_store::lanes`]). Call `done()` on it once the
    /// read succeeded.
    pub async fn read(&self) -> Result<ReadConn, ApiError> {
        within_db_wait(self.pool.read()).await
    }
}

/// `connecting` within [`DB_WAIT`], or 503.
async fn within_db_wait<T>(
    connecting: impl std::future::Future<Output = Result<T, sqlx::Error>>,
) -> Result<T, ApiError> {
    match tokio::time::timeout(DB_WAIT, connecting).await {
        Ok(Ok(connection)) => Ok(connection),
        Ok(Err(e)) => Err(e.into()),
        Err(_) => Err(ApiError::DatabaseUnavailable(format!(
            "no database connection within {DB_WAIT:?}"
        ))),
    }
}

async fn no_route() -> ApiError {
    ApiError::NotFound("no such route".to_owned())
}

async fn method_not_allowed() -> (axum::http::StatusCode, axum::Json<error::ErrorBody>) {
    let status = axum::http::StatusCode::METHOD_NOT_ALLOWED;
    let body = error::ErrorBody {
        error: error::ErrorDetail {
            code: "method_not_allowed".to_owned(),
            message: "method not allowed on this route".to_owned(),
            fields: Vec::new(),
            resource_version: None,
            reason: None,
        },
    };
    (status, axum::Json(body))
}

/// The span of one request: every line logged while serving it carries its `x-request-id`
/// (the caller's, or the one [`SetRequestIdLayer`] made), the method and the path (never the
/// query or headers, which may carry credentials).
fn request_span(request: &axum::http::Request<axum::body::Body>) -> tracing::Span {
    let request_id = request
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    tracing::info_span!(
        "request",
        request_id,
        method = %request.method(),
        path = request.uri().path(),
    )
}

/// The API router with the default edge settings (no trusted proxy, the default limit on failed
/// credentials).
pub fn router(state: ApiState) -> Router {
    router_with(state, EdgeSettings::default())
}

/// The API router with `edge` settings: trusted proxies and the limit on failed credentials.
pub fn router_with(state: ApiState, edge: EdgeSettings) -> Router {
    let edge_state = Arc::new(Edge::new(edge));
    let v1 = Router::new()
        .route("/v1/instances", get(instances::list_instances))
        .route(
            "/v1/instances/{name}",
            get(instances::get_instance)
                .put(instances::put_instance)
                .patch(instances::patch_instance)
                .delete(instances::delete_instance),
        )
        .route(
            "/v1/instances/{name}/reconcile",
            post(instances::reconcile_instance),
        )
        .route(
            "/v1/instances/{name}/adopt",
            post(instances::adopt_instance),
        )
        .route("/v1/instances/{name}/events", get(instances::list_events))
        .route("/v1/instances/{name}/plan", get(plan::get_plan))
        .route(
            "/v1/instances/{name}/gateway-token",
            get(gateway::get_gateway_token),
        )
        .route(
            "/v1/instances/{name}/pairing/approvals",
            post(gateway::post_pairing_approval),
        )
        .route(
            "/v1/releases",
            get(releases::list_releases).post(releases::create_release),
        )
        .route(
            "/v1/instances/{name}/channels/{channel}/pairing/approvals",
            post(channel_pairing::post_channel_approval),
        )
        .route(
            "/v1/instances/{name}/channels/{channel}/pairing/dismissals",
            post(channel_pairing::post_channel_dismissal),
        )
        .route("/v1/releases/{name}", get(releases::get_release))
        .route("/v1/releases/{name}/members", get(releases::list_members))
        .route("/v1/releases/{name}/pause", post(releases::pause_release))
        .route("/v1/releases/{name}/resume", post(releases::resume_release))
        .route("/v1/releases/{name}/abort", post(releases::abort_release))
        .route(
            "/v1/webhooks",
            get(webhooks::list_webhooks).post(webhooks::create_webhook),
        )
        .route(
            "/v1/webhooks/{id}",
            get(webhooks::get_webhook).delete(webhooks::delete_webhook),
        )
        .route(
            "/v1/webhooks/{id}/deliveries",
            get(webhooks::list_deliveries),
        )
        .route(
            "/v1/webhooks/{id}/deliveries/{delivery}/retry",
            post(webhooks::retry_delivery),
        )
        .route_layer(from_fn_with_state(state.clone(), auth::require_token));
    Router::new()
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .route("/metrics", get(health::metrics))
        .route("/openapi.json", get(openapi::openapi_json))
        .merge(v1)
        .nest("/support", support::router())
        .route("/support/", get(support::trailing_slash))
        .fallback(no_route)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(from_fn(move |request, next| {
            edge::admit(edge_state.clone(), request, next)
        }))
        .layer(from_fn(error::json_errors))
        .layer(
            TraceLayer::new_for_http()
                .make_span_with(request_span)
                .on_response(DefaultOnResponse::new().level(tracing::Level::INFO)),
        )
        .layer(PropagateRequestIdLayer::x_request_id())
        .layer(SetRequestIdLayer::x_request_id(MakeRequestUuid))
        .with_state(state)
}
