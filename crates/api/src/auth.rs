//! Bearer-token authentication with two roles. Tokens are compared in constant time (over their
//! SHA-256 digests, so length does not leak either); readers may only use safe methods. Failed
//! tokens are limited per client address ([`crate::edge`]).

use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, Method};
use axum::middleware::Next;
use axum::response::Response;
use sha2::{Digest, Sha256};
use std::sync::Arc;
use subtle::ConstantTimeEq;

use super::edge::{ClientAddr, Credential, Edge};
use super::error::ApiError;
use super::ApiState;

/// What a token may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Every route.
    Writer,
    /// `GET` and `HEAD` only.
    Reader,
}

impl Role {
    /// How the audit trail names a caller with this role (never the token).
    pub fn actor(self) -> &'static str {
        match self {
            Role::Writer => "writer",
            Role::Reader => "reader",
        }
    }
}

fn digest(text: &str) -> [u8; 32] {
    Sha256::digest(text.as_bytes()).into()
}

/// The role of a presented token, if any; every comparison runs whatever matches.
pub fn role_of(tokens: &super::ApiTokens, presented: &str) -> Option<Role> {
    let presented = digest(presented);
    let writer = !tokens.writer.is_empty() & bool::from(presented.ct_eq(&digest(&tokens.writer)));
    let reader = !tokens.reader.is_empty() & bool::from(presented.ct_eq(&digest(&tokens.reader)));
    if writer {
        Some(Role::Writer)
    } else if reader {
        Some(Role::Reader)
    } else {
        None
    }
}

fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

/// Middleware on the `/v1` routes: 429 without looking at the token while the client's address
/// is over the limit of failed credentials ([`Edge`]), 401 without a known token (a presented
/// one counts as a failure), 403 for a reader writing.
pub async fn require_token(
    State(state): State<ApiState>,
    mut request: Request,
    next: Next,
) -> Result<Response, ApiError> {
    let edge = request.extensions().get::<Arc<Edge>>().cloned();
    let client = request
        .extensions()
        .get::<ClientAddr>()
        .copied()
        .unwrap_or(ClientAddr(std::net::Ipv4Addr::UNSPECIFIED.into()));
    if let Some(edge) = &edge {
        edge.admit_credential(client, Credential::Bearer)
            .map_err(ApiError::TooManyRequests)?;
    }
    let presented = request.headers().contains_key(header::AUTHORIZATION);
    let Some(role) = bearer(request.headers()).and_then(|t| role_of(&state.tokens, t)) else {
        if let (Some(edge), true) = (&edge, presented) {
            edge.credential_failed(client, Credential::Bearer)
                .map_err(ApiError::TooManyRequests)?;
        }
        return Err(ApiError::Unauthorized);
    };
    let safe = matches!(*request.method(), Method::GET | Method::HEAD);
    if role == Role::Reader && !safe {
        return Err(ApiError::Forbidden);
    }
    request.extensions_mut().insert(role);
    Ok(next.run(request).await)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ApiTokens;

    #[test]
    fn roles() {
        let tokens = ApiTokens {
            writer: "w-token".into(),
            reader: "r-token".into(),
        };
        assert_eq!(role_of(&tokens, "w-token"), Some(Role::Writer));
        assert_eq!(role_of(&tokens, "r-token"), Some(Role::Reader));
        assert_eq!(role_of(&tokens, "w-toke"), None);
        let empty = ApiTokens {
            writer: String::new(),
            reader: String::new(),
        };
        assert_eq!(role_of(&empty, ""), None);
    }
}
