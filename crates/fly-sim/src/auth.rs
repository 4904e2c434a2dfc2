//! Token check for the Fly routes: `Authorization: Bearer <t>` or `FlyV1 <t>`.

use super::errors::SimError;
use super::Simulator;
use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

/// Who is calling: the org their token belongs to. Inserted by [`require_token`].
#[derive(Debug, Clone)]
pub struct Caller {
    /// Org slug of the presented token.
    pub org: String,
    /// A fingerprint of the presented token (never the token), keying the per-token cap.
    pub token_key: String,
}

/// Rejects requests without a known token (401 JSON) and records the caller's org.
pub async fn require_token(State(sim): State<Simulator>, mut req: Request, next: Next) -> Response {
    let header = req
        .headers()
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let token = header
        .strip_prefix("Bearer ")
        .or_else(|| header.strip_prefix("FlyV1 "))
        .map(str::trim);
    let org = token.and_then(|t| sim.config().org_for_token(t));
    match org {
        Some(org) => {
            let caller = Caller {
                org: org.to_string(),
                token_key: token_key(token.unwrap_or_default()),
            };
            req.extensions_mut().insert(caller);
            next.run(req).await
        }
        None if header.is_empty() => {
            SimError::Unauthorized("You must be authenticated to view this.".into()).into_response()
        }
        None => SimError::Unauthorized("unauthorized".into()).into_response(),
    }
}

/// A stable, non-reversible-enough key for a token (the simulator's own bookkeeping only).
fn token_key(token: &str) -> String {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    token.hash(&mut h);
    format!("{:016x}", h.finish())
}
