//! Request extractors that fail the way Fly does (400 JSON), never with a panic or axum's text.

use super::errors::SimError;
use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::HeaderMap;
use serde::de::DeserializeOwned;

/// The lease nonce header clients send on mutations of a leased machine.
pub const NONCE_HEADER: &str = "fly-machine-lease-nonce";

/// A required JSON body; a missing or malformed body is `400 invalid_argument`.
pub struct JsonBody<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for JsonBody<T> {
    type Rejection = SimError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let bytes = Bytes::from_request(req, state)
            .await
            .map_err(|e| SimError::invalid(format!("reading body: {e}")))?;
        serde_json::from_slice(&bytes)
            .map(JsonBody)
            .map_err(|e| SimError::invalid(format!("invalid JSON body: {e}")))
    }
}

/// An optional JSON body: empty means `T::default()`.
pub struct OptionalJson<T>(pub T);

impl<T: DeserializeOwned + Default, S: Send + Sync> FromRequest<S> for OptionalJson<T> {
    type Rejection = SimError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let bytes = Bytes::from_request(req, state)
            .await
            .map_err(|e| SimError::invalid(format!("reading body: {e}")))?;
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(OptionalJson(T::default()));
        }
        serde_json::from_slice(&bytes)
            .map(OptionalJson)
            .map_err(|e| SimError::invalid(format!("invalid JSON body: {e}")))
    }
}

/// The query string as ordered pairs, keeping repeated keys (`state=a&state=b`, `metadata.k=v`).
#[derive(Debug, Default, Clone)]
pub struct QueryPairs(pub Vec<(String, String)>);

impl QueryPairs {
    /// Parses a raw query string.
    pub fn parse(raw: Option<&str>) -> Self {
        let Some(raw) = raw.filter(|q| !q.is_empty()) else {
            return Self::default();
        };
        match reqwest::Url::parse(&format!("http://q/?{raw}")) {
            Ok(url) => Self(url.query_pairs().into_owned().collect()),
            Err(_) => Self::default(),
        }
    }

    /// The first value of `key`.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// Every value of `key`.
    pub fn all<'a>(&'a self, key: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.0
            .iter()
            .filter(move |(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// A boolean flag: present as `true`/`1`/empty counts as set.
    pub fn flag(&self, key: &str) -> bool {
        matches!(self.get(key), Some("true" | "1" | "" | "yes"))
    }

    /// A non-negative integer, `400` when present but not a number.
    pub fn u64(&self, key: &str) -> Result<Option<u64>, SimError> {
        self.get(key)
            .map(|v| {
                v.parse::<u64>()
                    .map_err(|_| SimError::invalid(format!("{key} must be a non-negative integer")))
            })
            .transpose()
    }
}

impl<S: Send + Sync> FromRequestParts<S> for QueryPairs {
    type Rejection = SimError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        Ok(Self::parse(parts.uri.query()))
    }
}

/// The lease nonce a request carries, if any.
pub fn lease_nonce(headers: &HeaderMap) -> Option<String> {
    headers
        .get(NONCE_HEADER)
        .and_then(|v| v.to_str().ok())
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
}

/// Parses a Go-style duration (`"10s"`, `"500ms"`, `"1m"`) or a bare number of seconds.
pub fn parse_duration(s: &str) -> Option<std::time::Duration> {
    let s = s.trim();
    if let Ok(secs) = s.parse::<f64>() {
        return (secs.is_finite() && secs >= 0.0).then(|| super::clock::secs_f64(secs));
    }
    let (num, unit) = s.split_at(s.find(|c: char| c.is_ascii_alphabetic())?);
    let n: f64 = num.parse().ok()?;
    let secs = match unit {
        "ms" => n / 1000.0,
        "s" => n,
        "m" => n * 60.0,
        "h" => n * 3600.0,
        _ => return None,
    };
    (secs.is_finite() && secs >= 0.0).then(|| super::clock::secs_f64(secs))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_keeps_repeats_and_decodes() {
        let q = QueryPairs::parse(Some("state=a&state=b%2Cc&metadata.ctl.customer=x%20y"));
        assert_eq!(q.all("state").collect::<Vec<_>>(), vec!["a", "b,c"]);
        assert_eq!(q.get("metadata.ctl.customer"), Some("x y"));
    }

    #[test]
    fn durations() {
        assert_eq!(
            parse_duration("10s"),
            Some(std::time::Duration::from_secs(10))
        );
        assert_eq!(
            parse_duration("500ms"),
            Some(std::time::Duration::from_millis(500))
        );
        assert_eq!(parse_duration("3"), Some(std::time::Duration::from_secs(3)));
        assert_eq!(parse_duration("x"), None);
    }
}
