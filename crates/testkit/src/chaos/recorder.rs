//! The request log: every request the simulator receives (Fly and DNS), with when it arrived,
//! who sent it, what it was and what the caller got back. The simulator runs in the harness and
//! this is a layer around its whole router, so it also sees what the simulator's own rate
//! limits and fault rules answer before any handler runs.
//!
//! The sender is the replica named in the `User-Agent` (`… (replica <owner>)`); a request
//! without one (the DNS client sends none) is traced to the process that opened its connection
//! through `/proc`.
//!
//! The log is also where a kill or a freeze can wait for its moment ([`RequestLog::arm`]): the
//! replica's next mutation, once the simulator has carried it out and before the replica gets
//! the answer, so the replica dies or stops in the middle of a reconcile with a change made at
//! Fly that it has not heard of.

use axum::body::Body;
use axum::extract::{ConnectInfo, Request, State};
use axum::middleware::Next;
use axum::response::Response;
use chrono::{DateTime, Utc};
use futures_util::StreamExt;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use super::replicas::Registry;

/// The `User-Agent` of the harness's own calls (setting up foreign resources).
pub const HARNESS_AGENT: &str = "openclaws-chaos-harness";

/// One request as the simulator saw it.
#[derive(Debug, Clone)]
pub struct Entry {
    /// When it arrived.
    pub at: DateTime<Utc>,
    /// HTTP method.
    pub method: String,
    /// Path (no query).
    pub path: String,
    /// The lease owner named in its `User-Agent`.
    pub owner: Option<String>,
    /// The process that opened its connection, when the `User-Agent` names no replica.
    pub pid: Option<u32>,
    /// Sent by the harness itself.
    pub harness: bool,
    /// The status the caller got (`None` while in flight).
    pub status: Option<u16>,
    /// The answer's body broke off (a dropped connection).
    pub broken: bool,
    /// The client's name for the call (`apps.create`, `dns.delete`, …) and its target, as the
    /// controller lists them in a `ReconcileAbandoned` event; `None` for reads.
    pub call: Option<(&'static str, String)>,
    /// The app the call is about (from its path, or the body of an app create).
    pub app: Option<String>,
    /// The DNS record the call is about: its name (create, update) or id (delete).
    pub dns: Option<String>,
}

impl Entry {
    /// Whether it changes something (anything but a read).
    pub fn is_mutation(&self) -> bool {
        !matches!(self.method.as_str(), "GET" | "HEAD" | "OPTIONS")
    }

    /// Whether the caller got a complete 2xx answer.
    pub fn succeeded(&self) -> bool {
        self.status.is_some_and(|s| (200..300).contains(&s)) && !self.broken
    }
}

/// What happens to an armed replica at its next mutation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trap {
    /// SIGSTOP.
    Freeze,
    /// SIGKILL.
    Kill,
}

/// The log, shared by the layer and the checks.
pub struct RequestLog {
    entries: Mutex<Vec<Entry>>,
    registry: Arc<Mutex<Registry>>,
    sim_port: Mutex<u16>,
    armed: Mutex<Option<(usize, Trap)>>,
}

impl RequestLog {
    /// An empty log that traces connections to the processes in `registry`.
    pub fn new(registry: Arc<Mutex<Registry>>) -> Arc<Self> {
        Arc::new(Self {
            entries: Mutex::new(Vec::new()),
            registry,
            sim_port: Mutex::new(0),
            armed: Mutex::new(None),
        })
    }

    /// Sets `trap` off on replica `replica` at its next mutation.
    pub fn arm(&self, replica: usize, trap: Trap) {
        *self.armed.lock().unwrap_or_else(|e| e.into_inner()) = Some((replica, trap));
    }

    /// Waits until the armed trap went off, at most `within`; disarms it and returns `false`
    /// when it did not.
    pub async fn sprung_within(&self, within: std::time::Duration) -> bool {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            {
                let mut armed = self.armed.lock().unwrap_or_else(|e| e.into_inner());
                if armed.is_none() {
                    return true;
                }
                if tokio::time::Instant::now() >= deadline {
                    *armed = None;
                    return false;
                }
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
    }

    /// Sets the armed trap off if this mutation came from the armed replica's process.
    fn spring(&self, owner: Option<&str>, pid: Option<u32>) {
        let mut armed = self.armed.lock().unwrap_or_else(|e| e.into_inner());
        let Some((replica, trap)) = *armed else {
            return;
        };
        let mut registry = self.registry.lock().unwrap_or_else(|e| e.into_inner());
        let Some((current, current_pid)) = registry.current_of(replica) else {
            return;
        };
        if owner != Some(current) && pid != Some(current_pid) {
            return;
        }
        match trap {
            Trap::Freeze => registry.freeze(replica),
            Trap::Kill => registry.kill_now(replica),
        };
        *armed = None;
    }

    /// The port the simulator listens on (the far end of every traced connection).
    pub fn set_sim_port(&self, port: u16) {
        *self.sim_port.lock().unwrap_or_else(|e| e.into_inner()) = port;
    }

    /// Every entry so far.
    pub fn entries(&self) -> Vec<Entry> {
        self.entries
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    fn push(&self, entry: Entry) -> usize {
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        entries.push(entry);
        entries.len() - 1
    }

    fn update(&self, idx: usize, f: impl FnOnce(&mut Entry)) {
        if let Some(e) = self
            .entries
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get_mut(idx)
        {
            f(e);
        }
    }

    fn pid_of(&self, peer: SocketAddr) -> Option<u32> {
        let pids = self
            .registry
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .pids();
        let port = *self.sim_port.lock().unwrap_or_else(|e| e.into_inner());
        connection_owner(peer.port(), port, &pids)
    }
}

/// The layer: records the request, runs it, records the answer (and whether its body broke).
pub async fn record(
    State(log): State<Arc<RequestLog>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    req: Request,
    next: Next,
) -> Response {
    let path = req.uri().path().to_owned();
    if path.starts_with("/_sim") {
        return next.run(req).await;
    }
    let at = Utc::now();
    let method = req.method().as_str().to_owned();
    let agent = req
        .headers()
        .get(axum::http::header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let owner = replica_in_agent(&agent);
    let harness = agent == HARNESS_AGENT;
    let pid = match (&owner, harness) {
        (None, false) => log.pid_of(peer),
        _ => None,
    };
    let (req, body) = if needs_body(&method, &path) {
        let (parts, body) = req.into_parts();
        let bytes = axum::body::to_bytes(body, 1 << 20)
            .await
            .unwrap_or_default();
        let json = serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null);
        (Request::from_parts(parts, Body::from(bytes)), json)
    } else {
        (req, serde_json::Value::Null)
    };
    let described = describe(&method, &path, &body);
    let mutation = !matches!(method.as_str(), "GET" | "HEAD" | "OPTIONS");
    let sender = (owner.clone(), pid);
    let idx = log.push(Entry {
        at,
        method,
        path,
        owner,
        pid,
        harness,
        status: None,
        broken: false,
        call: described.call,
        app: described.app,
        dns: described.dns,
    });
    let response = next.run(req).await;
    let status = response.status().as_u16();
    log.update(idx, |e| e.status = Some(status));
    if !mutation {
        return response;
    }
    log.spring(sender.0.as_deref(), sender.1);
    let (parts, body) = response.into_parts();
    let watcher = log.clone();
    let stream = body.into_data_stream().map(move |chunk| {
        if chunk.is_err() {
            watcher.update(idx, |e| e.broken = true);
        }
        chunk
    });
    Response::from_parts(parts, Body::from_stream(stream))
}

/// The owner in `openclaws-controller/<ver> (replica <owner>)`.
pub fn replica_in_agent(agent: &str) -> Option<String> {
    let rest = agent.split_once("(replica ")?.1;
    let owner = rest.split_once(')')?.0.trim();
    (!owner.is_empty()).then(|| owner.to_owned())
}

fn needs_body(method: &str, path: &str) -> bool {
    (method == "POST" && path == "/v1/apps")
        || (path.starts_with("/client/v4/") && matches!(method, "POST" | "PUT" | "PATCH"))
}

/// What a request is about, as far as the checks care.
#[derive(Debug, Default, PartialEq)]
pub struct Described {
    /// The client's call name and target (mutations only).
    pub call: Option<(&'static str, String)>,
    /// The app it names.
    pub app: Option<String>,
    /// The DNS record it names (name, or id for a delete).
    pub dns: Option<String>,
}

/// Names a request the way the controller's clients do (`crates/fly/src/client.rs`,
/// `crates/dns/src/lib.rs`): the call and the target its fence admits it for.
pub fn describe(method: &str, path: &str, body: &serde_json::Value) -> Described {
    let parts: Vec<&str> = path.trim_matches('/').split('/').collect();
    let s = |i: usize| parts.get(i).copied().unwrap_or_default().to_owned();
    let mut out = Described::default();
    if parts.first() == Some(&"client") {
        let record_name = body["name"].as_str().map(str::to_owned);
        out.dns = match (method, parts.len()) {
            ("POST", 5) => record_name,
            (_, 6) if method != "GET" => record_name.or_else(|| Some(s(5))),
            _ => None,
        };
        out.call = match (method, parts.len()) {
            ("POST", 5) => Some(("dns.create", out.dns.clone().unwrap_or_default())),
            ("PUT" | "PATCH", 6) => Some(("dns.update", out.dns.clone().unwrap_or_default())),
            ("DELETE", 6) => Some(("dns.delete", s(5))),
            _ => None,
        };
        return out;
    }
    if parts.len() < 2 || parts[0] != "v1" || parts[1] != "apps" {
        return out;
    }
    if parts.len() == 2 {
        if method == "POST" {
            let name = body["app_name"]
                .as_str()
                .or_else(|| body["name"].as_str())
                .unwrap_or_default()
                .to_owned();
            out.app = Some(name.clone());
            out.call = Some(("apps.create", name));
        }
        return out;
    }
    let app = s(2);
    out.app = Some(app.clone());
    let tail: Vec<&str> = parts[3..].to_vec();
    let call: Option<(&'static str, String)> = match (method, tail.as_slice()) {
        ("GET", _) => None,
        ("DELETE", []) => Some(("apps.delete", app)),
        ("POST", ["secrets"]) => Some(("secrets.set", app)),
        ("POST", ["ip_assignments"]) => Some(("ips.assign", app)),
        ("DELETE", ["ip_assignments", _]) => Some(("ips.release", app)),
        ("POST", ["certificates", "acme"]) => Some(("certificates.create", app)),
        ("DELETE", ["certificates", ..]) => Some(("certificates.delete", app)),
        ("POST", ["volumes"]) => Some(("volumes.create", app)),
        ("PUT", ["volumes", id, "extend"]) => Some(("volumes.extend", id.to_string())),
        ("DELETE", ["volumes", id]) => Some(("volumes.delete", id.to_string())),
        ("POST", ["machines"]) => Some(("machines.create", app)),
        ("POST", ["machines", id]) => Some(("machines.update", id.to_string())),
        ("DELETE", ["machines", id]) => Some(("machines.delete", id.to_string())),
        ("POST", ["machines", id, "start"]) => Some(("machines.start", id.to_string())),
        ("POST", ["machines", id, "stop"]) => Some(("machines.stop", id.to_string())),
        ("POST", ["machines", id, "restart"]) => Some(("machines.restart", id.to_string())),
        ("POST", ["machines", id, "exec"]) => Some(("machines.exec", id.to_string())),
        ("POST", ["machines", id, "lease"]) => Some(("machines.lease.acquire", id.to_string())),
        ("DELETE", ["machines", id, "lease"]) => Some(("machines.lease.release", id.to_string())),
        (_, _) => Some(("other", path.to_owned())),
    };
    out.call = call;
    out
}

/// The process among `pids` that holds the client end of the loopback connection from
/// `peer_port` to `server_port`, found through `/proc/net/tcp` and the processes' descriptors.
pub fn connection_owner(peer_port: u16, server_port: u16, pids: &[u32]) -> Option<u32> {
    let inode = ["/proc/net/tcp", "/proc/net/tcp6"]
        .iter()
        .find_map(|table| {
            let text = std::fs::read_to_string(table).ok()?;
            text.lines().skip(1).find_map(|line| {
                let cols: Vec<&str> = line.split_whitespace().collect();
                let port = |c: &str| u16::from_str_radix(c.rsplit(':').next()?, 16).ok();
                (port(cols.get(1)?) == Some(peer_port) && port(cols.get(2)?) == Some(server_port))
                    .then(|| cols.get(9).map(|s| s.to_string()))
                    .flatten()
            })
        })?;
    let wanted = format!("socket:[{inode}]");
    pids.iter().rev().copied().find(|pid| {
        std::fs::read_dir(format!("/proc/{pid}/fd"))
            .into_iter()
            .flatten()
            .flatten()
            .any(|fd| {
                std::fs::read_link(fd.path()).is_ok_and(|target| target.to_string_lossy() == wanted)
            })
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn calls_are_named_as_the_clients_name_them() {
        let null = serde_json::Value::Null;
        let call = |m: &str, p: &str| describe(m, p, &null).call;
        assert_eq!(
            describe("POST", "/v1/apps", &json!({"app_name": "oc-a"})).call,
            Some(("apps.create", "oc-a".to_owned()))
        );
        assert_eq!(
            call("POST", "/v1/apps/oc-a/machines/3d8d/lease"),
            Some(("machines.lease.acquire", "3d8d".to_owned()))
        );
        assert_eq!(
            call("PUT", "/v1/apps/oc-a/volumes/vol_1/extend"),
            Some(("volumes.extend", "vol_1".to_owned()))
        );
        assert_eq!(
            call("DELETE", "/v1/apps/oc-a/certificates/a.openclaws.test"),
            Some(("certificates.delete", "oc-a".to_owned()))
        );
        assert_eq!(call("GET", "/v1/apps/oc-a/machines"), None);
        assert_eq!(
            describe("GET", "/v1/apps/oc-a", &null).app.as_deref(),
            Some("oc-a")
        );
        let dns = describe(
            "POST",
            "/client/v4/zones/z1/dns_records",
            &json!({"name": "a.openclaws.test"}),
        );
        assert_eq!(
            dns.call,
            Some(("dns.create", "a.openclaws.test".to_owned()))
        );
        assert_eq!(
            call("DELETE", "/client/v4/zones/z1/dns_records/r9"),
            Some(("dns.delete", "r9".to_owned()))
        );
    }

    #[test]
    fn the_owner_is_read_from_the_agent() {
        assert_eq!(
            replica_in_agent("openclaws-controller/0.1.0 (replica chaos-r1-0a1b2c3d)").as_deref(),
            Some("chaos-r1-0a1b2c3d")
        );
        assert_eq!(replica_in_agent("reqwest/0.12"), None);
    }

    #[test]
    fn a_connection_is_traced_to_its_process() {
        let server = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = server.local_addr().unwrap().port();
        let client = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
        let local = client.local_addr().unwrap().port();
        let me = std::process::id();
        assert_eq!(connection_owner(local, port, &[1, me]), Some(me));
        assert_eq!(connection_owner(local, port, &[1]), None);
    }
}
