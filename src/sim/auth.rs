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
