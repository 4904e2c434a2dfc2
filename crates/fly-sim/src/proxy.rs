//! A reverse proxy like Fly's edge, for process mode: routes by `Host` to a started machine's
//! process, HTTP and WebSocket upgrades alike.
//!
//! Routing: the app holding a certificate for the hostname (how `{slug}.{domain}` reaches a
//! customer's app on Fly), else `{app}.fly.dev`. The request goes to the app's first started
//! machine that has a running process; none gives 503 as Fly's proxy does.
//!
//! Forwarding headers are Fly's: `X-Forwarded-For` (and `Fly-Client-IP`) carry the client's
//! address, `X-Forwarded-Proto: https` and `X-Forwarded-Port: 443` (Fly's edge terminates TLS),
//! `X-Forwarded-Host`, `Via`. A client on loopback (every local test) is reported as
//! [`ProxySettings::loopback_client_ip`], a public-looking address, so the gateway classifies
//! callers as remote exactly as it does behind Fly. Client-sent forwarding headers are replaced,
//! not trusted. The proxy connects to the gateway from 127.0.0.1: that is the address the
//! gateway's `gateway.trustedProxies` must cover in process mode.

use super::Simulator;
use axum::body::Body;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Router;
use hyper_util::rt::TokioIo;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use tokio_util::sync::CancellationToken;

/// The client address reported for loopback clients by default (TEST-NET-3).
pub const DEFAULT_LOOPBACK_CLIENT_IP: IpAddr = IpAddr::V4(Ipv4Addr::new(203, 0, 113, 10));

/// Hop-by-hop headers a proxy must not forward (RFC 9110 §7.6.1); `Connection`/`Upgrade` are
/// put back for upgrades.
const HOP_BY_HOP: [&str; 8] = [
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
];

/// Client-supplied forwarding headers, replaced by the proxy's own.
const FORWARDING: [&str; 7] = [
    "x-forwarded-for",
    "x-forwarded-proto",
    "x-forwarded-host",
    "x-forwarded-port",
    "x-real-ip",
    "forwarded",
    "fly-client-ip",
];

/// Proxy settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProxySettings {
    /// Address reported for clients connecting from loopback.
    pub loopback_client_ip: IpAddr,
}

impl Default for ProxySettings {
    fn default() -> Self {
        Self {
            loopback_client_ip: DEFAULT_LOOPBACK_CLIENT_IP,
        }
    }
}

#[derive(Clone)]
struct ProxyState {
    sim: Simulator,
    settings: ProxySettings,
}

/// Serves the proxy until `shutdown` is cancelled.
pub async fn serve_proxy(
    listener: tokio::net::TcpListener,
    sim: Simulator,
    settings: ProxySettings,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    let app = Router::new()
        .fallback(forward)
        .with_state(ProxyState { sim, settings });
    axum::serve(
        listener,
        app.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(async move { shutdown.cancelled().await })
    .await
}

fn text(status: StatusCode, message: &str) -> Response {
    (status, format!("{message}\n")).into_response()
}

/// The local port of the process serving `host`, if any.
fn backend_port(sim: &Simulator, host: &str) -> Option<u16> {
    let processes = sim.process_host()?;
    let machines = sim
        .read(|w, ctx| {
            let app = w
                .apps
                .values()
                .find(|a| {
                    a.deleting_at.is_none()
                        && (a.certificates.contains_key(host)
                            || format!("{}.fly.dev", a.name) == host)
                })
                .map(|a| a.machines.clone())
                .unwrap_or_default();
            let mut started = Vec::new();
            for id in app {
                w.settle_machine(&id, ctx);
                if w.machines
                    .get(&id)
                    .is_some_and(|m| m.state == "started" && !m.cordoned)
                {
                    started.push(id);
                }
            }
            Ok(started)
        })
        .ok()?;
    machines
        .iter()
        .find_map(|id| processes.running(id).map(|r| r.port))
}

/// Serves one request: finds the machine process for its `Host`, rewrites the forwarding
/// headers as Fly's edge does, and relays the answer (tunnelling an upgraded connection).
async fn forward(
    State(state): State<ProxyState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    mut req: Request,
) -> Response {
    let Some(host) = host_of(&req) else {
        return text(StatusCode::BAD_REQUEST, "missing Host header");
    };
    let Some(port) = backend_port(&state.sim, &host) else {
        return text(
            StatusCode::SERVICE_UNAVAILABLE,
            "no started machine with a running process serves this host",
        );
    };
    let client_ip = if peer.ip().is_loopback() {
        state.settings.loopback_client_ip
    } else {
        peer.ip()
    };
    let upgrade_to = req.headers().get(header::UPGRADE).cloned();
    let client_upgrade = upgrade_to.is_some().then(|| hyper::upgrade::on(&mut req));
    set_forwarding_headers(req.headers_mut(), client_ip, &host, upgrade_to.as_ref());
    let path = req
        .uri()
        .path_and_query()
        .map_or("/".to_owned(), |p| p.as_str().to_owned());
    *req.uri_mut() = match path.parse() {
        Ok(uri) => uri,
        Err(_) => return text(StatusCode::BAD_REQUEST, "bad request target"),
    };
    let mut response = match send_to_machine(port, req).await {
        Ok(response) => response,
        Err(refused) => return refused,
    };
    if response.status() != StatusCode::SWITCHING_PROTOCOLS {
        for name in HOP_BY_HOP {
            response.headers_mut().remove(name);
        }
    } else if let Some(client_upgrade) = client_upgrade {
        tunnel(client_upgrade, hyper::upgrade::on(&mut response));
    }
    response.map(Body::new)
}

/// The request's `Host`, lowercase, without a port.
fn host_of(req: &Request) -> Option<String> {
    req.headers()
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .map(|h| {
            h.rsplit_once(':')
                .map_or(h, |(name, _)| name)
                .to_ascii_lowercase()
        })
}

/// Drops hop-by-hop and client-sent forwarding headers and sets Fly's own; an upgrade keeps
/// its `Connection`/`Upgrade`.
fn set_forwarding_headers(
    headers: &mut HeaderMap,
    client_ip: IpAddr,
    host: &str,
    upgrade_to: Option<&HeaderValue>,
) {
    for name in HOP_BY_HOP.iter().chain(FORWARDING.iter()) {
        headers.remove(*name);
    }
    let ip = HeaderValue::from_str(&client_ip.to_string()).expect("an IP is a valid header");
    headers.insert("x-forwarded-for", ip.clone());
    headers.insert("fly-client-ip", ip);
    headers.insert("x-forwarded-proto", HeaderValue::from_static("https"));
    headers.insert("x-forwarded-port", HeaderValue::from_static("443"));
    if let Ok(value) = HeaderValue::from_str(host) {
        headers.insert("x-forwarded-host", value);
    }
    headers.insert(header::VIA, HeaderValue::from_static("1.1 fly.io"));
    if let Some(upgrade) = upgrade_to {
        headers.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
        headers.insert(header::UPGRADE, upgrade.clone());
    }
}

/// Sends `req` to the process listening on local `port` over HTTP/1.1 (upgrades allowed); a
/// 502 when the machine does not answer.
async fn send_to_machine(
    port: u16,
    req: Request,
) -> Result<axum::http::Response<hyper::body::Incoming>, Response> {
    let Ok(stream) = tokio::net::TcpStream::connect(("127.0.0.1", port)).await else {
        return Err(text(
            StatusCode::BAD_GATEWAY,
            "the machine refused the connection",
        ));
    };
    let Ok((mut sender, connection)) =
        hyper::client::conn::http1::handshake::<_, Body>(TokioIo::new(stream)).await
    else {
        return Err(text(
            StatusCode::BAD_GATEWAY,
            "the machine did not speak HTTP/1.1",
        ));
    };
    tokio::spawn(async move {
        let _ = connection.with_upgrades().await;
    });
    sender
        .send_request(req)
        .await
        .map_err(|_| text(StatusCode::BAD_GATEWAY, "the machine closed the connection"))
}

/// Copies bytes both ways between the client's and the machine's upgraded connections.
fn tunnel(client: hyper::upgrade::OnUpgrade, backend: hyper::upgrade::OnUpgrade) {
    tokio::spawn(async move {
        if let (Ok(client), Ok(backend)) = tokio::join!(client, backend) {
            let _ = tokio::io::copy_bidirectional(
                &mut TokioIo::new(client),
                &mut TokioIo::new(backend),
            )
            .await;
        }
    });
}
