//! Sessions of the support console. Signing in with a bearer token yields a cookie that carries
//! the role, an expiry and a random session id, signed with a keyed HMAC
//! ([`SecretCipher::mac`]); the token itself is never stored in the browser. The signature also
//! covers a digest of the role's current token, so rotating a token ends its sessions.
//!
//! Forms carry a CSRF token derived from the session id under another MAC purpose: a form can
//! only be posted by a page rendered for that session.

use axum::http::{header, HeaderMap, HeaderValue};
use base64::Engine;
use chrono::{DateTime, Utc};
use rand::RngCore;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::auth::Role;
use crate::ApiTokens;
use openclaws_model::secrets::SecretCipher;

/// Name of the session cookie.
pub const COOKIE: &str = "oc_support";
/// How long a session lasts; signing in again starts a new one.
pub const LIFETIME: chrono::Duration = chrono::Duration::hours(8);
/// The path the cookie is scoped to: it is never sent to the `/v1` API.
pub const COOKIE_PATH: &str = "/support";

const SESSION_PURPOSE: &str = "openclaws support session v1";
const CSRF_PURPOSE: &str = "openclaws support csrf v1";

/// Why a request carries no usable session.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SessionError {
    /// No session cookie.
    #[error("not signed in")]
    Missing,
    /// A cookie that is not one this console issues.
    #[error("the session cookie is malformed")]
    Malformed,
    /// Tampered with, or signed under another secret key or a token since rotated.
    #[error("the session cookie's signature does not match (signed with another key or token)")]
    BadSignature,
    /// Past its expiry: sign in again.
    #[error("the session has expired")]
    Expired,
}

/// A verified session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    /// What the token used to sign in may do.
    pub role: Role,
    /// When the session ends.
    pub expires_at: DateTime<Utc>,
    /// Random id of this session (binds its CSRF token).
    id: String,
}

fn role_code(role: Role) -> &'static str {
    match role {
        Role::Writer => "w",
        Role::Reader => "r",
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn signature(
    cipher: &SecretCipher,
    tokens: &ApiTokens,
    role: Role,
    expires: i64,
    id: &str,
) -> [u8; 32] {
    let token = match role {
        Role::Writer => &tokens.writer,
        Role::Reader => &tokens.reader,
    };
    let mut message = format!("{}|{expires}|{id}|", role_code(role)).into_bytes();
    message.extend_from_slice(&Sha256::digest(token.as_bytes()));
    cipher.mac(SESSION_PURPOSE, &message)
}

impl Session {
    /// A new session for `role`, and the cookie value that carries it.
    pub fn issue(
        cipher: &SecretCipher,
        tokens: &ApiTokens,
        role: Role,
        now: DateTime<Utc>,
    ) -> (Session, String) {
        let mut id = [0u8; 16];
        rand::thread_rng().fill_bytes(&mut id);
        let id = hex(&id);
        let expires_at = now + LIFETIME;
        let expires = expires_at.timestamp();
        let tag = signature(cipher, tokens, role, expires, &id);
        let value = format!(
            "v1.{}.{expires}.{id}.{}",
            role_code(role),
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(tag)
        );
        let session = Session {
            role,
            expires_at: DateTime::from_timestamp(expires, 0).unwrap_or(expires_at),
            id,
        };
        (session, value)
    }

    /// Checks a cookie value: format, signature (in constant time), then expiry.
    pub fn verify(
        cipher: &SecretCipher,
        tokens: &ApiTokens,
        value: &str,
        now: DateTime<Utc>,
    ) -> Result<Session, SessionError> {
        let parts: Vec<&str> = value.split('.').collect();
        let [version, role, expires, id, tag] = parts[..] else {
            return Err(SessionError::Malformed);
        };
        if version != "v1" || id.len() != 32 || !id.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(SessionError::Malformed);
        }
        let role = match role {
            "w" => Role::Writer,
            "r" => Role::Reader,
            _ => return Err(SessionError::Malformed),
        };
        let expires: i64 = expires.parse().map_err(|_| SessionError::Malformed)?;
        let tag = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(tag)
            .map_err(|_| SessionError::Malformed)?;
        let token_set = match role {
            Role::Writer => !tokens.writer.is_empty(),
            Role::Reader => !tokens.reader.is_empty(),
        };
        let expected = signature(cipher, tokens, role, expires, id);
        if !token_set || !bool::from(expected.as_slice().ct_eq(&tag)) {
            return Err(SessionError::BadSignature);
        }
        let expires_at = DateTime::from_timestamp(expires, 0).ok_or(SessionError::Malformed)?;
        if expires_at <= now {
            return Err(SessionError::Expired);
        }
        Ok(Session {
            role,
            expires_at,
            id: id.to_owned(),
        })
    }

    /// The session in a request's `Cookie` headers.
    pub fn from_headers(
        cipher: &SecretCipher,
        tokens: &ApiTokens,
        headers: &HeaderMap,
        now: DateTime<Utc>,
    ) -> Result<Session, SessionError> {
        let value = cookie_value(headers, COOKIE).ok_or(SessionError::Missing)?;
        Session::verify(cipher, tokens, value, now)
    }

    /// The CSRF token every form of this session carries.
    pub fn csrf_token(&self, cipher: &SecretCipher) -> String {
        let tag = cipher.mac(CSRF_PURPOSE, self.id.as_bytes());
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(tag)
    }

    /// Whether a posted CSRF token is this session's (compared in constant time).
    pub fn csrf_matches(&self, cipher: &SecretCipher, presented: &str) -> bool {
        let expected = self.csrf_token(cipher);
        expected.len() == presented.len()
            && bool::from(expected.as_bytes().ct_eq(presented.as_bytes()))
    }

    /// How the audit trail names this session: `console:` and the first 8 hex digits of its
    /// random id (which tell sessions apart and prove nothing: the cookie's signature does).
    pub fn actor(&self) -> String {
        let short: String = self.id.chars().take(8).collect();
        format!("console:{short}")
    }

    /// Whether this session may take actions.
    pub fn can_act(&self) -> bool {
        self.role == Role::Writer
    }
}

/// The value of cookie `name` among a request's `Cookie` headers.
pub fn cookie_value<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.trim_matches('"'))
}

/// Whether the request reached us as plain HTTP on a loopback address (local development and
/// tests), where a `Secure` cookie would not be sent back by every browser.
pub fn plain_http_on_loopback(headers: &HeaderMap) -> bool {
    let forwarded_https = headers
        .get("x-forwarded-proto")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("https"));
    if forwarded_https {
        return false;
    }
    let Some(host) = headers.get(header::HOST).and_then(|v| v.to_str().ok()) else {
        return false;
    };
    let host = match host.strip_prefix('[') {
        Some(rest) => rest.split(']').next().unwrap_or_default(),
        None => host.rsplit_once(':').map_or(host, |(h, _)| h),
    };
    host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// The `Set-Cookie` value that stores `value` (or, with `None`, removes the cookie).
pub fn set_cookie(value: Option<&str>, secure: bool) -> HeaderValue {
    let (value, max_age) = match value {
        Some(v) => (v, LIFETIME.num_seconds()),
        None => ("", 0),
    };
    let secure = if secure { "; Secure" } else { "" };
    let text = format!(
        "{COOKIE}={value}; Path={COOKIE_PATH}; Max-Age={max_age}; HttpOnly; SameSite=Strict{secure}"
    );
    HeaderValue::from_str(&text).unwrap_or_else(|_| HeaderValue::from_static(""))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tokens() -> ApiTokens {
        ApiTokens {
            writer: "writer-token".into(),
            reader: "reader-token".into(),
        }
    }

    #[test]
    fn issued_sessions_verify_and_carry_no_token() {
        let cipher = SecretCipher::from_key([3; 32]);
        let now = Utc::now();
        let (session, value) = Session::issue(&cipher, &tokens(), Role::Writer, now);
        assert!(!value.contains("writer-token"));
        let back = Session::verify(&cipher, &tokens(), &value, now).unwrap();
        assert_eq!(back, session);
        assert!(back.can_act());
        let (reader, value) = Session::issue(&cipher, &tokens(), Role::Reader, now);
        assert!(!reader.can_act());
        assert_eq!(
            Session::verify(&cipher, &tokens(), &value, now)
                .unwrap()
                .role,
            Role::Reader
        );
    }

    #[test]
    fn tampering_other_keys_rotation_and_expiry_are_refused() {
        let cipher = SecretCipher::from_key([3; 32]);
        let now = Utc::now();
        let (_, value) = Session::issue(&cipher, &tokens(), Role::Reader, now);
        let promoted = value.replacen(".r.", ".w.", 1);
        assert_eq!(
            Session::verify(&cipher, &tokens(), &promoted, now),
            Err(SessionError::BadSignature)
        );
        let other = SecretCipher::from_key([4; 32]);
        assert_eq!(
            Session::verify(&other, &tokens(), &value, now),
            Err(SessionError::BadSignature)
        );
        let rotated = ApiTokens {
            reader: "new-reader-token".into(),
            ..tokens()
        };
        assert_eq!(
            Session::verify(&cipher, &rotated, &value, now),
            Err(SessionError::BadSignature)
        );
        assert_eq!(
            Session::verify(&cipher, &tokens(), &value, now + LIFETIME),
            Err(SessionError::Expired)
        );
        for junk in [
            "",
            "v1",
            "v1.r.1.2.3",
            "v2.r.1.00.AA",
            "v1.x.1.a.b",
            ".....",
        ] {
            assert_eq!(
                Session::verify(&cipher, &tokens(), junk, now),
                Err(SessionError::Malformed),
                "{junk}"
            );
        }
    }

    #[test]
    fn csrf_tokens_are_bound_to_the_session() {
        let cipher = SecretCipher::from_key([3; 32]);
        let now = Utc::now();
        let (a, _) = Session::issue(&cipher, &tokens(), Role::Writer, now);
        let (b, _) = Session::issue(&cipher, &tokens(), Role::Writer, now);
        let token = a.csrf_token(&cipher);
        assert!(a.csrf_matches(&cipher, &token));
        assert!(!b.csrf_matches(&cipher, &token));
        assert!(!a.csrf_matches(&cipher, ""));
    }

    #[test]
    fn cookies_and_loopback() {
        let mut headers = HeaderMap::new();
        headers.append(
            header::COOKIE,
            HeaderValue::from_static("a=1; oc_support=xyz"),
        );
        assert_eq!(cookie_value(&headers, COOKIE), Some("xyz"));
        assert_eq!(cookie_value(&headers, "b"), None);
        for (host, local) in [
            ("127.0.0.1:8080", true),
            ("localhost", true),
            ("[::1]:80", true),
            ("support.openclaws.biz", false),
            ("10.0.0.1:80", false),
        ] {
            headers.insert(header::HOST, HeaderValue::from_str(host).unwrap());
            assert_eq!(plain_http_on_loopback(&headers), local, "{host}");
        }
        headers.insert("x-forwarded-proto", HeaderValue::from_static("https"));
        assert!(!plain_http_on_loopback(&headers));
        let set = set_cookie(Some("v"), true);
        let set = set.to_str().unwrap();
        assert!(set.contains("HttpOnly") && set.contains("SameSite=Strict"));
        assert!(set.contains("Secure") && set.contains("Path=/support"));
    }
}
