//! A client of the API's watches for tests and the watch bench: opens a stream and reads its
//! events (newline-delimited JSON or Server-Sent Events) as they arrive, each wait bounded by a
//! deadline.

use reqwest::StatusCode;
use serde_json::Value;
use std::time::Duration;
use tokio::time::Instant;

/// What the stream carried next.
#[derive(Debug, Clone)]
pub enum Frame {
    /// A watch event.
    Event(Received),
    /// An empty NDJSON line or an SSE comment.
    Heartbeat,
}

/// One watch event as received.
#[derive(Debug, Clone)]
pub struct Received {
    /// `ADDED`, `MODIFIED`, `DELETED`, `BOOKMARK` or `ERROR`.
    pub type_: String,
    /// The event's object.
    pub object: Value,
    /// The SSE message's `id`, when it had one.
    pub id: Option<String>,
    /// The SSE message's `event` name.
    pub sse_event: Option<String>,
    /// When it was read.
    pub at: Instant,
}

impl Received {
    /// The object's `metadata.resourceVersion` as a number.
    pub fn version(&self) -> Option<i64> {
        self.object["metadata"]["resourceVersion"]
            .as_str()
            .and_then(|v| v.parse().ok())
    }

    /// The object's name.
    pub fn name(&self) -> Option<&str> {
        self.object["metadata"]["name"].as_str()
    }
}

/// An open watch.
pub struct WatchStream {
    response: reqwest::Response,
    buffer: Vec<u8>,
    sse: bool,
    ended: bool,
}

impl WatchStream {
    /// `GET url` with `token`, as Server-Sent Events when `sse`; the status and JSON body of a
    /// refusal.
    pub async fn open(
        http: &reqwest::Client,
        url: &str,
        token: &str,
        sse: bool,
    ) -> Result<WatchStream, (StatusCode, Value)> {
        let mut request = http.get(url).bearer_auth(token);
        if sse {
            request = request.header("accept", "text/event-stream");
        }
        let response = request.send().await.expect("the API answers");
        if response.status() != StatusCode::OK {
            let status = response.status();
            return Err((status, response.json().await.unwrap_or(Value::Null)));
        }
        Ok(WatchStream {
            response,
            buffer: Vec::new(),
            sse,
            ended: false,
        })
    }

    /// The response's headers.
    pub fn headers(&self) -> &reqwest::header::HeaderMap {
        self.response.headers()
    }

    /// The next frame; `Ok(None)` when the stream ended, `Err(())` when nothing came within
    /// `timeout`.
    pub async fn next_frame(&mut self, timeout: Duration) -> Result<Option<Frame>, ()> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(frame) = self.parse() {
                return Ok(Some(frame));
            }
            if self.ended {
                return Ok(None);
            }
            match tokio::time::timeout_at(deadline, self.response.chunk()).await {
                Err(_) => return Err(()),
                Ok(Ok(Some(chunk))) => self.buffer.extend_from_slice(&chunk),
                Ok(Ok(None)) | Ok(Err(_)) => self.ended = true,
            }
        }
    }

    /// The next event (heartbeats skipped); `None` when the stream ended. Panics when none
    /// came within `timeout`.
    pub async fn next(&mut self, timeout: Duration) -> Option<Received> {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.next_frame(left).await {
                Ok(Some(Frame::Event(e))) => return Some(e),
                Ok(Some(Frame::Heartbeat)) => continue,
                Ok(None) => return None,
                Err(()) => panic!("no watch event within {timeout:?}"),
            }
        }
    }

    /// The next event that is not a bookmark; `None` when the stream ended.
    pub async fn next_change(&mut self, timeout: Duration) -> Option<Received> {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.next(left).await {
                Some(e) if e.type_ == "BOOKMARK" => continue,
                other => return other,
            }
        }
    }

    /// Whether an event other than a bookmark or heartbeat arrives within `wait`.
    pub async fn quiet_for(&mut self, wait: Duration) -> Option<Received> {
        let deadline = Instant::now() + wait;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.next_frame(left).await {
                Ok(Some(Frame::Event(e))) if e.type_ != "BOOKMARK" => return Some(e),
                Ok(Some(_)) => continue,
                Ok(None) | Err(()) => return None,
            }
        }
    }

    fn parse(&mut self) -> Option<Frame> {
        let separator: &[u8] = if self.sse { b"\n\n" } else { b"\n" };
        let at = self
            .buffer
            .windows(separator.len())
            .position(|w| w == separator)?;
        let raw: Vec<u8> = self.buffer.drain(..at + separator.len()).collect();
        let text = String::from_utf8(raw[..at].to_vec()).expect("UTF-8 frames");
        Some(if self.sse {
            sse_frame(&text)
        } else {
            ndjson_frame(&text)
        })
    }
}

fn ndjson_frame(line: &str) -> Frame {
    if line.trim().is_empty() {
        return Frame::Heartbeat;
    }
    let value: Value = serde_json::from_str(line).expect("each line is JSON");
    Frame::Event(received(value, None, None))
}

fn sse_frame(message: &str) -> Frame {
    let (mut event, mut id, mut data) = (None, None, None);
    for line in message.lines() {
        if let Some(v) = line.strip_prefix("event: ") {
            event = Some(v.to_owned());
        } else if let Some(v) = line.strip_prefix("id: ") {
            id = Some(v.to_owned());
        } else if let Some(v) = line.strip_prefix("data: ") {
            assert!(data.is_none(), "one data line per message: {message}");
            data = Some(v.to_owned());
        }
    }
    match data {
        None => Frame::Heartbeat,
        Some(d) => {
            let value: Value = serde_json::from_str(&d).expect("SSE data is JSON");
            Frame::Event(received(value, id, event))
        }
    }
}

fn received(value: Value, id: Option<String>, sse_event: Option<String>) -> Received {
    Received {
        type_: value["type"].as_str().unwrap_or_default().to_owned(),
        object: value["object"].clone(),
        id,
        sse_event,
        at: Instant::now(),
    }
}
