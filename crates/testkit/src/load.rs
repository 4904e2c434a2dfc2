//! A lean HTTP/1.1 load generator for the API bench: one keep-alive connection per task driven
//! by hyper's connection-level client (no pool, no URL parsing, no redirect or proxy logic per
//! request), so the client costs about what `pgbench`'s own client costs and the ratio between
//! the two measures the API, not the load generator.

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper::header::{AUTHORIZATION, CONTENT_TYPE, HOST};
use hyper::{Method, Request};
use hyper_util::rt::TokioIo;
use std::time::{Duration, Instant};
use tokio::net::TcpStream;

/// Why a request could not be sent or answered.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The base address is not `http://host:port`.
    #[error("not an http://host:port address: {0}")]
    Address(String),
    /// Connecting or talking to the server failed.
    #[error("connection: {0}")]
    Io(#[from] std::io::Error),
    /// hyper rejected the request or the connection broke.
    #[error("http: {0}")]
    Http(#[from] hyper::Error),
    /// The request could not be built.
    #[error("request: {0}")]
    Request(#[from] hyper::http::Error),
}

/// One request to send: method, path (with query), optional body and content type.
#[derive(Debug, Clone)]
pub struct Call {
    /// The method.
    pub method: Method,
    /// Path and query, e.g. `/v1/instances?limit=50`.
    pub path: String,
    /// The body, empty for a GET.
    pub body: Bytes,
    /// The body's content type, if any.
    pub content_type: Option<&'static str>,
}

impl Call {
    /// A GET of `path`.
    pub fn get(path: String) -> Self {
        Self {
            method: Method::GET,
            path,
            body: Bytes::new(),
            content_type: None,
        }
    }
}

/// One keep-alive connection to the API, sending one request at a time.
pub struct Connection {
    sender: SendRequest<Full<Bytes>>,
    host: String,
    authorization: String,
}

impl Connection {
    /// Connects to `base` (`http://host:port`) with a bearer token sent on every request.
    pub async fn open(base: &str, bearer: &str) -> Result<Self, LoadError> {
        let host = base
            .strip_prefix("http://")
            .map(|h| h.trim_end_matches('/'))
            .filter(|h| h.contains(':'))
            .ok_or_else(|| LoadError::Address(base.to_owned()))?;
        let stream = TcpStream::connect(host).await?;
        stream.set_nodelay(true)?;
        let (sender, driver) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
        tokio::spawn(driver);
        Ok(Self {
            sender,
            host: host.to_owned(),
            authorization: format!("Bearer {bearer}"),
        })
    }

    /// Sends `call` and reads the whole answer: its status and how long it took.
    pub async fn send(&mut self, call: Call) -> Result<(u16, Duration), LoadError> {
        let started = Instant::now();
        let mut request = Request::builder()
            .method(call.method)
            .uri(call.path)
            .header(HOST, &self.host)
            .header(AUTHORIZATION, &self.authorization);
        if let Some(content_type) = call.content_type {
            request = request.header(CONTENT_TYPE, content_type);
        }
        self.sender.ready().await?;
        let response = self
            .sender
            .send_request(request.body(Full::new(call.body))?)
            .await?;
        let status = response.status().as_u16();
        response.into_body().collect().await?;
        Ok((status, started.elapsed()))
    }
}
