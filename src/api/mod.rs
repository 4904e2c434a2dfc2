//! The HTTP API: writes desired state, reads observed status. It never calls Fly.

use axum::Router;
use sqlx::PgPool;
use std::sync::Arc;

use crate::secrets::SecretCipher;
use crate::telemetry::Metrics;

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
    pub pool: PgPool,
    pub cipher: Arc<SecretCipher>,
    pub tokens: ApiTokens,
    /// Hostnames are `{name}.{base_domain}`.
    pub base_domain: String,
    pub metrics: Arc<Metrics>,
}

/// The API router.
pub fn router(state: ApiState) -> Router {
    let _ = state;
    Router::new()
}
