//! A reverse proxy like Fly's edge, for process mode: routes by `Host` to a started machine's
//! process, HTTP and WebSocket upgrades alike.
//!
//! Routing: the app holding a certificate for the hostname (how `{slug}.{domain}` reaches a
//! customer's app on Fly), else `{app}.fly.dev`, and only while the app has a public address
//! (without one Fly's edge has nothing to route it by). The request goes to the app's first
//! started machine that has a running process (and, on the private network, declares a
//! service); none gives 503 as Fly's proxy does.
//!
//! The same proxy serves Fly's private network when its [`ProxyNetwork`] is `Private`: there it
//! routes `{app}.flycast` (Fly's DNS name of an app's Flycast address) to apps holding a Flycast
//! (`private_v6`) address for the organization's default network, and nothing else. Flycast is
//! HTTP only: a service port 80 with `force_https` is answered with a redirect to https, as Fly's
//! proxy does, which no client on the private network can follow.
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

/// The client address reported for loopback clients on the private network (a 6PN address).
pub const DEFAULT_PRIVATE_CLIENT_IP: IpAddr =
    IpAddr::V6(std::net::Ipv6Addr::new(0xfdaa, 0, 0x1, 0, 0, 0, 0, 0x2));

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

/// Which of Fly's networks a proxy listener stands for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ProxyNetwork {
    /// The public edge: certificate hostnames and `{app}.fly.dev` of apps with public addresses.
    #[default]
    Public,
    /// The organization's private network: `{app}.flycast` of apps with a Flycast address.
    Private,
}

/// Proxy settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProxySettings {
    /// Address reported for clients connecting from loopback.
    pub loopback_client_ip: IpAddr,
    /// The network this listener stands for.
    pub network: ProxyNetwork,
}

impl Default for ProxySettings {
    fn default() -> Self {
        Self {
            loopback_client_ip: DEFAULT_LOOPBACK_CLIENT_IP,
            network: ProxyNetwork::Public,
        }
    }
}

impl ProxySettings {
    /// The settings of a listener on the private network (Flycast): loopback clients are
    /// reported with a 6PN address, as callers on Fly's private network are.
    pub fn private() -> Self {
        Self {
            loopback_client_ip: DEFAULT_PRIVATE_CLIENT_IP,
            network: ProxyNetwork::Private,
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

/// Whether `app` answers for `host` on `network` (see the module's routing rules).
fn routes(app: &super::records::app::AppRec, host: &str, network: ProxyNetwork) -> bool {
    if app.deleting_at.is_some() {
        return false;
    }
    match network {
        ProxyNetwork::Public => {
            app.ips.iter().any(|ip| ip.is_public())
                && (app.certificates.contains_key(host) || format!("{}.fly.dev", app.name) == host)
        }
        ProxyNetwork::Private => {
            app.ips.iter().any(|ip| ip.is_default_flycast())
                && format!("{}.flycast", app.name) == host
        }
    }
}

/// Where a request for `host` goes: a started machine's process, or (Flycast) a redirect when
/// its HTTP port forces https.
enum Backend {
    Port(u16),
    ForcesHttps,
}

/// The backend serving `host` on `network`, if any: the first started machine of the app with a
/// running process that (on Flycast) declares a service, as Fly's proxy routes only to
/// services. The public edge does not check services yet: local tests run bare machines
/// behind it.
fn backend(sim: &Simulator, host: &str, network: ProxyNetwork) -> Option<Backend> {
    let processes = sim.process_host()?;
    let machines = sim
        .read(|w, ctx| {
            let app = w
                .apps
                .values()
                .find(|a| routes(a, host, network))
                .map(|a| a.machines.clone())
                .unwrap_or_default();
            let mut started = Vec::new();
            for id in app {
                w.settle_machine(&id, ctx);
                let serves = |m: &super::records::machine::MachRec| {
                    network == ProxyNetwork::Public || !m.config.services.is_empty()
                };
                if let Some(m) = w
                    .machines
                    .get(&id)
                    .filter(|m| m.state == "started" && !m.cordoned && serves(m))
                {
                    let forces_https = m.config.services.iter().any(|s| {
                        s.ports
                            .iter()
                            .any(|p| p.port == Some(80) && p.force_https == Some(true))
                    });
                    started.push((id, forces_https));
                }
            }
            Ok(started)
        })
        .ok()?;
    machines.iter().find_map(|(id, forces_https)| {
        let port = processes.running(id).map(|r| r.port)?;
        Some(match (network, forces_https) {
            (ProxyNetwork::Private, true) => Backend::ForcesHttps,
            _ => Backend::Port(port),
        })
    })
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
    let network = state.settings.network;
    let port = match backend(&state.sim, &host, network) {
        Some(Backend::Port(port)) => port,
        Some(Backend::ForcesHttps) => return redirect_to_https(&host, &req),
        None => {
            return text(
                StatusCode::SERVICE_UNAVAILABLE,
                "no started machine with a running process serves this host",
            )
        }
    };
    let client_ip = if peer.ip().is_loopback() {
        state.settings.loopback_client_ip
    } else {
        peer.ip()
    };
    let upgrade_to = req.headers().get(header::UPGRADE).cloned();
    let client_upgrade = upgrade_to.is_some().then(|| hyper::upgrade::on(&mut req));
    set_forwarding_headers(
        req.headers_mut(),
        client_ip,
        &host,
        upgrade_to.as_ref(),
        network,
    );
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

/// Fly's answer to plain HTTP on a port with `force_https`: a permanent redirect to https.
fn redirect_to_https(host: &str, req: &Request) -> Response {
    let path = req.uri().path_and_query().map_or("/", |p| p.as_str());
    let location = format!("https://{host}{path}");
    match HeaderValue::from_str(&location) {
        Ok(value) => (StatusCode::PERMANENT_REDIRECT, [(header::LOCATION, value)]).into_response(),
        Err(_) => text(StatusCode::BAD_REQUEST, "bad request target"),
    }
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

/// Drops hop-by-hop and client-sent forwarding headers and sets Fly's own (https on 443 at the
/// public edge, http on 80 on Flycast); an upgrade keeps its `Connection`/`Upgrade`.
fn set_forwarding_headers(
    headers: &mut HeaderMap,
    client_ip: IpAddr,
    host: &str,
    upgrade_to: Option<&HeaderValue>,
    network: ProxyNetwork,
) {
    for name in HOP_BY_HOP.iter().chain(FORWARDING.iter()) {
        headers.remove(*name);
    }
    let ip = HeaderValue::from_str(&client_ip.to_string()).expect("an IP is a valid header");
    headers.insert("x-forwarded-for", ip.clone());
    headers.insert("fly-client-ip", ip);
    let (proto, port) = match network {
        ProxyNetwork::Public => ("https", "443"),
        ProxyNetwork::Private => ("http", "80"),
    };
    headers.insert("x-forwarded-proto", HeaderValue::from_static(proto));
    headers.insert("x-forwarded-port", HeaderValue::from_static(port));
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
