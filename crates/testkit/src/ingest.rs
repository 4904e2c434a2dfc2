//! A stand-in for Sentry's ingest: accepts envelopes on `/api/{project}/envelope/` and keeps
//! each request's raw body, so tests can read the events and search the bytes that left.

use axum::body::Bytes;
use axum::extract::State;
use axum::routing::post;
use axum::Router;
use serde_json::Value;
use std::sync::{Arc, Mutex};

/// The running ingest and what it received.
#[derive(Clone)]
pub struct Ingest {
    /// DSN pointing at it (project 1).
    pub dsn: String,
    bodies: Arc<Mutex<Vec<Vec<u8>>>>,
}

impl Ingest {
    /// Listens on 127.0.0.1:0 until the test process ends.
    pub async fn start() -> Ingest {
        let bodies: Arc<Mutex<Vec<Vec<u8>>>> = Arc::default();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let router = Router::new()
            .route("/api/{project}/envelope/", post(receive))
            .with_state(bodies.clone());
        tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
        Ingest {
            dsn: format!("http://public@{addr}/1"),
            bodies,
        }
    }

    /// Every envelope body received so far, as text.
    pub fn bodies(&self) -> Vec<String> {
        self.bodies
            .lock()
            .unwrap()
            .iter()
            .map(|b| String::from_utf8_lossy(b).into_owned())
            .collect()
    }

    /// The event items of every envelope received so far.
    pub fn events(&self) -> Vec<Value> {
        self.bodies
            .lock()
            .unwrap()
            .iter()
            .flat_map(|b| envelope_items(b))
            .filter(|(header, _)| header["type"] == "event")
            .map(|(_, payload)| payload)
            .collect()
    }
}

async fn receive(State(bodies): State<Arc<Mutex<Vec<Vec<u8>>>>>, body: Bytes) -> &'static str {
    bodies.lock().unwrap().push(body.to_vec());
    "{}"
}

/// The (item header, payload) pairs of an envelope: a header line, then per item a header line
/// and a payload of `length` bytes (or up to the next newline).
fn envelope_items(body: &[u8]) -> Vec<(Value, Value)> {
    let mut rest = match body.iter().position(|&b| b == b'\n') {
        Some(end) => &body[end + 1..],
        None => return Vec::new(),
    };
    let mut items = Vec::new();
    while !rest.is_empty() {
        let Some(end) = rest.iter().position(|&b| b == b'\n') else {
            break;
        };
        let header: Value = serde_json::from_slice(&rest[..end]).unwrap_or(Value::Null);
        rest = &rest[end + 1..];
        let length = header["length"]
            .as_u64()
            .map(|l| l as usize)
            .or_else(|| rest.iter().position(|&b| b == b'\n'))
            .unwrap_or(rest.len())
            .min(rest.len());
        let payload = serde_json::from_slice(&rest[..length]).unwrap_or(Value::Null);
        items.push((header, payload));
        rest = &rest[length..];
        if rest.first() == Some(&b'\n') {
            rest = &rest[1..];
        }
    }
    items
}
