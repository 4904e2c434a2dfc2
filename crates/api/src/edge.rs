//! The edge of the API, before any route: who the client is (its address, through a trusted
//! proxy only), the limits on the request line and headers (answered in the JSON error shape,
//! below hyper's own hard limits, which answer with an empty body), and the limit on failed
//! credentials per client address that stops bearer tokens and support sign-ins from being
//! guessed.
//!
//! Failures are counted per address with a GCRA limiter ([`governor`]); a client over the limit
//! is answered 429 with `Retry-After` without its credential being checked at all, until the
//! limiter lets one more failure through. Each replica counts on its own. The counter
//! `openclaws_api_auth_failures_total{credential, result}` says how often either happened
//! (labels from fixed lists; never the address).

use axum::extract::{ConnectInfo, Request};
use axum::http::{HeaderMap, HeaderValue};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use governor::clock::Clock;
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::registry::Registry;
use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::num::NonZeroU32;
use std::str::FromStr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::error::ApiError;

/// Longest request target (path and query) answered by a route; longer ones get 414 in the JSON
/// shape. hyper itself refuses targets of 64 KiB and more (414, rewritten into the JSON shape by
/// [`crate::head_errors`]).
pub const MAX_URI_BYTES: usize = 8 * 1024;
/// Largest header section (names and values) answered by a route; larger ones get 431.
pub const MAX_HEADER_BYTES: usize = 32 * 1024;
/// Most header fields answered by a route; more get 431.
pub const MAX_HEADERS: usize = 100;

/// A network in CIDR notation (`172.16.0.0/12`, `fdaa::/16`, or a single address), for the
/// proxies whose client-address headers are believed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IpNet {
    addr: IpAddr,
    prefix: u8,
}

impl IpNet {
    /// Whether `ip` lies in this network (IPv4-mapped IPv6 addresses count as IPv4).
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.addr, canonical(ip)) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                u32::from(net) & mask == u32::from(ip) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                u128::from(net) & mask == u128::from(ip) & mask
            }
            _ => false,
        }
    }
}

impl FromStr for IpNet {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        let (addr, prefix) = match s.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (s, None),
        };
        let addr = canonical(
            addr.parse::<IpAddr>()
                .map_err(|_| format!("{s} is not an IP address or CIDR network"))?,
        );
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            None => max,
            Some(p) => p
                .parse::<u8>()
                .ok()
                .filter(|p| *p <= max)
                .ok_or_else(|| format!("{s}: the prefix length must be 0-{max}"))?,
        };
        Ok(IpNet { addr, prefix })
    }
}

/// An IPv4-mapped IPv6 address as the IPv4 address it is.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6
            .to_ipv4_mapped()
            .map(IpAddr::V4)
            .unwrap_or(IpAddr::V6(v6)),
        v4 => v4,
    }
}

/// What the edge is configured with (flags `--api-trusted-proxies`,
/// `--api-auth-failures-per-minute`, `--api-auth-failure-burst` of `serve`).
#[derive(Debug, Clone)]
pub struct EdgeSettings {
    /// Proxies in front of the API: only a connection from one of them has its client address
    /// read from `Fly-Client-IP` or `X-Forwarded-For`. Empty: the connection's own address is the
    /// client's, whatever headers say.
    pub trusted_proxies: Vec<IpNet>,
    /// Failed credentials one client address may present per minute, once its burst is spent.
    pub auth_failures_per_minute: u32,
    /// Failed credentials one client address may present in a row before the rate applies.
    pub auth_failure_burst: u32,
}

impl Default for EdgeSettings {
    fn default() -> Self {
        Self {
            trusted_proxies: Vec::new(),
            auth_failures_per_minute: 10,
            auth_failure_burst: 10,
        }
    }
}

/// The client address a request is counted under (its `/64` for IPv6, since one host commonly
/// holds a whole `/64`); put into the request's extensions by [`admit`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ClientAddr(pub IpAddr);

/// Which credential failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Credential {
    /// A bearer token on `/v1`.
    Bearer,
    /// A token entered on the support console's sign-in page.
    SignIn,
}

impl Credential {
    fn label(self) -> &'static str {
        match self {
            Credential::Bearer => "bearer",
            Credential::SignIn => "sign_in",
        }
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct FailureLabels {
    credential: &'static str,
    result: &'static str,
}

/// Failed credentials per client address, and the metric counting them.
#[derive(Debug)]
pub struct Edge {
    settings: EdgeSettings,
    limiter: DefaultKeyedRateLimiter<IpAddr>,
    /// Addresses over the limit and the moment they may try again.
    blocked: Mutex<HashMap<IpAddr, Instant>>,
    failures_seen: AtomicU64,
    registry: Registry,
    failures: Family<FailureLabels, Counter>,
}

/// How many failures between two sweeps of forgotten addresses.
const SWEEP_EVERY: u64 = 1024;

impl Edge {
    /// The edge for `settings` (a zero rate or burst counts as one).
    pub fn new(settings: EdgeSettings) -> Self {
        let per_minute =
            NonZeroU32::new(settings.auth_failures_per_minute).unwrap_or(NonZeroU32::MIN);
        let burst = NonZeroU32::new(settings.auth_failure_burst).unwrap_or(NonZeroU32::MIN);
        let quota = Quota::per_minute(per_minute).allow_burst(burst);
        let mut registry = Registry::with_prefix("openclaws");
        let failures = Family::<FailureLabels, Counter>::default();
        registry.register(
            "api_auth_failures",
            "Presented credentials that failed (bearer tokens on /v1, support console sign-ins): \
             rejected (401) or limited (429: too many failures from the client's address, the \
             credential not checked)",
            failures.clone(),
        );
        for credential in [Credential::Bearer, Credential::SignIn] {
            for result in ["rejected", "limited"] {
                failures
                    .get_or_create(&FailureLabels {
                        credential: credential.label(),
                        result,
                    })
                    .get();
            }
        }
        Self {
            settings,
            limiter: RateLimiter::keyed(quota),
            blocked: Mutex::new(HashMap::new()),
            failures_seen: AtomicU64::new(0),
            registry,
            failures,
        }
    }

    /// The settings this edge runs with.
    pub fn settings(&self) -> &EdgeSettings {
        &self.settings
    }

    /// Before a credential is checked: `Err(seconds to wait)` while `client` is over the limit
    /// (counted as `limited`); the credential must then not be checked at all.
    pub fn admit_credential(&self, client: ClientAddr, credential: Credential) -> Result<(), u64> {
        let now = Instant::now();
        let until = self
            .blocked
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&client.0)
            .copied();
        match until {
            Some(until) if until > now => {
                self.count(credential, "limited");
                Err(seconds_until(until, now))
            }
            _ => Ok(()),
        }
    }

    /// After a credential failed: `Ok` when `client` may still be told 401, `Err(seconds)` when
    /// this failure put it over the limit (answer 429; further attempts are refused unchecked).
    pub fn credential_failed(&self, client: ClientAddr, credential: Credential) -> Result<(), u64> {
        if self.failures_seen.fetch_add(1, Ordering::Relaxed) % SWEEP_EVERY == SWEEP_EVERY - 1 {
            self.sweep();
        }
        match self.limiter.check_key(&client.0) {
            Ok(()) => {
                self.count(credential, "rejected");
                Ok(())
            }
            Err(not_until) => {
                let wait = not_until.wait_time_from(self.limiter.clock().now());
                let now = Instant::now();
                let until = now + wait.max(Duration::from_millis(1));
                self.blocked
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .insert(client.0, until);
                self.count(credential, "limited");
                Err(seconds_until(until, now))
            }
        }
    }

    fn count(&self, credential: Credential, result: &'static str) {
        self.failures
            .get_or_create(&FailureLabels {
                credential: credential.label(),
                result,
            })
            .inc();
    }

    /// Forgets addresses whose limit has run out.
    fn sweep(&self) {
        let now = Instant::now();
        self.blocked
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .retain(|_, until| *until > now);
        self.limiter.retain_recent();
        self.limiter.shrink_to_fit();
    }

    /// The edge's metrics in the Prometheus text format, to append to `/metrics`.
    pub fn encode_metrics(&self) -> String {
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &self.registry)
            .expect("writing to a String cannot fail");
        openclaws_telemetry::openmetrics_to_text(&out)
    }

    /// The address a request is counted under: the connection's, or when the connection comes
    /// from a trusted proxy, the client the proxy reports (`Fly-Client-IP`, which Fly's proxy
    /// sets itself, else the nearest `X-Forwarded-For` entry that is not a trusted proxy).
    pub fn client_addr(&self, peer: Option<IpAddr>, headers: &HeaderMap) -> ClientAddr {
        let peer = peer
            .map(canonical)
            .unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED));
        let trusted = |ip: IpAddr| self.settings.trusted_proxies.iter().any(|n| n.contains(ip));
        let mut client = peer;
        if trusted(peer) {
            let fly = headers
                .get("fly-client-ip")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().parse::<IpAddr>().ok());
            let forwarded = || {
                headers
                    .get_all("x-forwarded-for")
                    .iter()
                    .filter_map(|v| v.to_str().ok())
                    .flat_map(|v| v.split(','))
                    .map(str::trim)
                    .collect::<Vec<_>>()
                    .into_iter()
                    .rev()
                    .map_while(|hop| hop.parse::<IpAddr>().ok().map(canonical))
                    .find(|ip| !trusted(*ip))
            };
            if let Some(ip) = fly.map(canonical).or_else(forwarded) {
                client = ip;
            }
        }
        ClientAddr(match client {
            IpAddr::V6(v6) => IpAddr::V6(Ipv6Addr::from(u128::from(v6) & !u128::from(u64::MAX))),
            v4 => v4,
        })
    }
}

fn seconds_until(until: Instant, now: Instant) -> u64 {
    let wait = until.saturating_duration_since(now);
    wait.as_secs() + u64::from(wait.subsec_nanos() > 0)
}

/// Middleware in front of every route: refuses request targets and header sections over the
/// limits (414, 431, JSON shape), then records the client's address ([`ClientAddr`]) and the
/// edge itself in the request's extensions for the credential checks.
pub async fn admit(edge: Arc<Edge>, mut request: Request, next: Next) -> Response {
    let target = request
        .uri()
        .path_and_query()
        .map_or(0, |p| p.as_str().len());
    if target > MAX_URI_BYTES {
        return ApiError::UriTooLong(MAX_URI_BYTES).into_response();
    }
    let headers = request.headers();
    let header_bytes: usize = headers
        .iter()
        .map(|(name, value)| name.as_str().len() + value.len() + 4)
        .sum();
    if headers.len() > MAX_HEADERS || header_bytes > MAX_HEADER_BYTES {
        return ApiError::HeadersTooLarge(format!(
            "the request has more than {MAX_HEADERS} header fields or {MAX_HEADER_BYTES} bytes of headers"
        ))
        .into_response();
    }
    let peer = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(addr)| addr.ip());
    let client = edge.client_addr(peer, request.headers());
    request.extensions_mut().insert(client);
    request.extensions_mut().insert(edge);
    next.run(request).await
}

/// A `Retry-After` header value of `seconds`.
pub fn retry_after(seconds: u64) -> HeaderValue {
    HeaderValue::from(seconds.max(1))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn edge(proxies: &[&str], per_minute: u32, burst: u32) -> Edge {
        Edge::new(EdgeSettings {
            trusted_proxies: proxies.iter().map(|p| p.parse().unwrap()).collect(),
            auth_failures_per_minute: per_minute,
            auth_failure_burst: burst,
        })
    }

    #[test]
    fn networks() {
        let net: IpNet = "172.16.0.0/12".parse().unwrap();
        assert!(net.contains("172.20.1.2".parse().unwrap()));
        assert!(net.contains("::ffff:172.20.1.2".parse().unwrap()));
        assert!(!net.contains("172.32.0.1".parse().unwrap()));
        let v6: IpNet = "fdaa::/16".parse().unwrap();
        assert!(v6.contains("fdaa:0:1::3".parse().unwrap()));
        assert!(!v6.contains("fdab::1".parse().unwrap()));
        let one: IpNet = "127.0.0.1".parse().unwrap();
        assert!(one.contains("127.0.0.1".parse().unwrap()));
        assert!(!one.contains("127.0.0.2".parse().unwrap()));
        assert!("10.0.0.0/33".parse::<IpNet>().is_err());
        assert!("nonsense".parse::<IpNet>().is_err());
    }

    #[test]
    fn headers_count_only_behind_a_trusted_proxy() {
        let mut headers = HeaderMap::new();
        headers.insert(
            "x-forwarded-for",
            "203.0.113.9, 198.51.100.7".parse().unwrap(),
        );
        let direct = edge(&[], 10, 10);
        let peer: IpAddr = "127.0.0.1".parse().unwrap();
        assert_eq!(direct.client_addr(Some(peer), &headers), ClientAddr(peer));
        let behind = edge(&["127.0.0.0/8"], 10, 10);
        assert_eq!(
            behind.client_addr(Some(peer), &headers),
            ClientAddr("198.51.100.7".parse().unwrap())
        );
        let chained = edge(&["127.0.0.0/8", "198.51.100.0/24"], 10, 10);
        assert_eq!(
            chained.client_addr(Some(peer), &headers),
            ClientAddr("203.0.113.9".parse().unwrap())
        );
        headers.insert("fly-client-ip", "192.0.2.44".parse().unwrap());
        assert_eq!(
            behind.client_addr(Some(peer), &headers),
            ClientAddr("192.0.2.44".parse().unwrap())
        );
        let v6: IpAddr = "2001:db8:1:2:3:4:5:6".parse().unwrap();
        assert_eq!(
            direct.client_addr(Some(v6), &HeaderMap::new()),
            ClientAddr("2001:db8:1:2::".parse().unwrap())
        );
    }

    #[test]
    fn failures_over_the_burst_are_limited_per_address() {
        let edge = edge(&[], 1, 3);
        let a = ClientAddr("192.0.2.1".parse().unwrap());
        let b = ClientAddr("192.0.2.2".parse().unwrap());
        for _ in 0..3 {
            assert_eq!(edge.admit_credential(a, Credential::Bearer), Ok(()));
            assert_eq!(edge.credential_failed(a, Credential::Bearer), Ok(()));
        }
        let wait = edge.credential_failed(a, Credential::Bearer).unwrap_err();
        assert!((1..=60).contains(&wait), "{wait}");
        assert!(edge.admit_credential(a, Credential::SignIn).is_err());
        assert_eq!(edge.admit_credential(b, Credential::Bearer), Ok(()));
        assert_eq!(edge.credential_failed(b, Credential::Bearer), Ok(()));
        let text = edge.encode_metrics();
        assert!(
            text.contains(
                r#"openclaws_api_auth_failures_total{credential="bearer",result="rejected"} 4"#
            ),
            "{text}"
        );
        assert!(
            text.contains(
                r#"openclaws_api_auth_failures_total{credential="bearer",result="limited"} 1"#
            ),
            "{text}"
        );
        assert!(
            text.contains(
                r#"openclaws_api_auth_failures_total{credential="sign_in",result="limited"} 1"#
            ),
            "{text}"
        );
        assert!(!text.contains("192.0.2"));
    }
}
