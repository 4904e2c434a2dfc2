//! How watch events reach the client: one JSON object per line (`application/x-ndjson`), or
//! Server-Sent Events (`text/event-stream`, each message named by the event type and carrying
//! the resource version as its id, so a browser's `EventSource` resumes by itself). Events pass
//! through a bounded buffer: a client that stops reading for too long gets what is buffered,
//! then a final `ERROR` event, and the watch ends; the server never buffers without bound.

use axum::body::{Body, Bytes};
use axum::http::{header, HeaderMap};
use serde_json::{json, Value};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::mpsc;

use serde::Serialize;
use utoipa::ToSchema;

use crate::error::{ErrorBody, ErrorDetail};

/// One event of a watch: a line of NDJSON, or the `data` of a Server-Sent Event (whose `event`
/// is the type and whose `id` is the resource version, on every event but the initial list's
/// `ADDED` and `ERROR`).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct WatchEvent {
    /// What happened.
    #[serde(rename = "type")]
    pub type_: WatchEventType,
    /// `ADDED` / `MODIFIED` / `DELETED`: the object as GET renders it (an event, in an event
    /// watch); a `DELETED` object is the last state, with the deletion's resourceVersion.
    /// `BOOKMARK`: only `metadata.resourceVersion`, the version to resume from. `ERROR`: the
    /// API's error shape (codes `gone`, `too_slow`, `unavailable`); the stream ends after it.
    #[schema(value_type = Object)]
    pub object: Value,
}

/// The kinds of watch events.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "UPPERCASE")]
pub enum WatchEventType {
    /// New to the watch (the initial list, a creation, or now matching the filter).
    Added,
    /// Changed.
    Modified,
    /// Deleted, or no longer matching the filter.
    Deleted,
    /// Every change up to the version in the object was sent.
    Bookmark,
    /// The watch ends; the object says why.
    Error,
}

/// Media type of newline-delimited JSON watches.
pub const NDJSON: &str = "application/x-ndjson";
/// Media type of Server-Sent Events watches.
pub const EVENT_STREAM: &str = "text/event-stream";

/// How events are framed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// `application/x-ndjson`: one JSON object per line.
    Ndjson,
    /// `text/event-stream`: Server-Sent Events.
    Sse,
}

impl Format {
    /// Server-Sent Events when `Accept` names `text/event-stream`, else NDJSON.
    pub fn from_accept(headers: &HeaderMap) -> Self {
        let sse = headers
            .get_all(header::ACCEPT)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .filter_map(|m| m.split(';').next())
            .any(|t| t.trim().eq_ignore_ascii_case(EVENT_STREAM));
        if sse {
            Format::Sse
        } else {
            Format::Ndjson
        }
    }

    /// The response's `Content-Type`.
    pub fn content_type(self) -> &'static str {
        match self {
            Format::Ndjson => NDJSON,
            Format::Sse => EVENT_STREAM,
        }
    }

    /// `{"type", "object"}` framed: a line, or a message named `type` with `id` when given.
    pub fn frame(self, type_: &str, id: Option<i64>, object: &Value) -> Bytes {
        let line = json!({"type": type_, "object": object}).to_string();
        match self {
            Format::Ndjson => Bytes::from(line + "\n"),
            Format::Sse => {
                let id = id.map(|v| format!("id: {v}\n")).unwrap_or_default();
                Bytes::from(format!("event: {type_}\n{id}data: {line}\n\n"))
            }
        }
    }

    /// What keeps an idle stream open when bookmarks are off: an empty line, or an SSE comment.
    pub fn heartbeat(self) -> Bytes {
        match self {
            Format::Ndjson => Bytes::from_static(b"\n"),
            Format::Sse => Bytes::from_static(b": keep-alive\n\n"),
        }
    }
}

/// The `object` of an `ERROR` event: the API's error shape.
pub fn error_object(code: &str, message: &str, resource_version: Option<i64>) -> Value {
    serde_json::to_value(ErrorBody {
        error: ErrorDetail {
            code: code.to_owned(),
            message: message.to_owned(),
            fields: Vec::new(),
            resource_version: resource_version.map(|v| v.to_string()),
            reason: None,
        },
    })
    .unwrap_or(Value::Null)
}

/// Why a watch stopped sending.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stop {
    /// The client went away.
    ClientGone,
    /// The client did not read for too long; its final error is queued.
    TooSlow,
}

/// The producing end of a watch's stream.
#[derive(Debug)]
pub struct Sink {
    sender: mpsc::Sender<Bytes>,
    last: Arc<Mutex<Option<Bytes>>>,
    format: Format,
    slow_client: Duration,
}

impl Sink {
    /// Sends one event; waits at most the slow-client grace for room in the buffer.
    pub async fn event(&self, type_: &str, id: Option<i64>, object: &Value) -> Result<(), Stop> {
        self.send(self.format.frame(type_, id, object)).await
    }

    /// Sends a heartbeat.
    pub async fn heartbeat(&self) -> Result<(), Stop> {
        self.send(self.format.heartbeat()).await
    }

    async fn send(&self, bytes: Bytes) -> Result<(), Stop> {
        match tokio::time::timeout(self.slow_client, self.sender.send(bytes)).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(_)) => Err(Stop::ClientGone),
            Err(_) => {
                let message = format!(
                    "the client did not read events for {} s; watch again from the last \
                     resourceVersion received",
                    self.slow_client.as_secs()
                );
                self.finish_with("too_slow", &message, None);
                Err(Stop::TooSlow)
            }
        }
    }

    /// Ends the stream with an `ERROR` event after everything buffered.
    pub fn finish_with(&self, code: &str, message: &str, resource_version: Option<i64>) {
        let frame = self.format.frame(
            "ERROR",
            None,
            &error_object(code, message, resource_version),
        );
        if let Ok(mut last) = self.last.lock() {
            *last = Some(frame);
        }
    }
}

/// A watch's stream: the sink its producer writes to and the response body that drains it,
/// holding at most `buffer` events.
pub fn channel(format: Format, buffer: usize, slow_client: Duration) -> (Sink, Body) {
    let (sender, receiver) = mpsc::channel(buffer.max(1));
    let last = Arc::new(Mutex::new(None));
    let sink = Sink {
        sender,
        last: last.clone(),
        format,
        slow_client,
    };
    let frames = futures_util::stream::unfold(Some((receiver, last)), |state| async move {
        let (mut receiver, last) = state?;
        match receiver.recv().await {
            Some(frame) => Some((
                Ok::<_, std::convert::Infallible>(frame),
                Some((receiver, last)),
            )),
            None => {
                let frame = last.lock().ok().and_then(|mut l| l.take())?;
                Some((Ok(frame), None))
            }
        }
    });
    (sink, Body::from_stream(frames))
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    #[test]
    fn frames_are_lines_or_named_messages() {
        let object = json!({"metadata": {"resourceVersion": "7"}});
        let line = Format::Ndjson.frame("MODIFIED", Some(7), &object);
        assert_eq!(
            line,
            Bytes::from(
                "{\"object\":{\"metadata\":{\"resourceVersion\":\"7\"}},\"type\":\"MODIFIED\"}\n"
            )
        );
        let message =
            String::from_utf8(Format::Sse.frame("MODIFIED", Some(7), &object).to_vec()).unwrap();
        assert!(
            message.starts_with("event: MODIFIED\nid: 7\ndata: {"),
            "{message}"
        );
        assert!(message.ends_with("}\n\n"));
        assert_eq!(message.matches('\n').count(), 4, "one data line: {message}");
        let error = String::from_utf8(Format::Sse.frame("ERROR", None, &object).to_vec()).unwrap();
        assert!(!error.contains("id:"));
    }

    #[test]
    fn accept_chooses_the_format() {
        let mut headers = HeaderMap::new();
        assert_eq!(Format::from_accept(&headers), Format::Ndjson);
        headers.insert(header::ACCEPT, HeaderValue::from_static("application/json"));
        assert_eq!(Format::from_accept(&headers), Format::Ndjson);
        headers.insert(
            header::ACCEPT,
            HeaderValue::from_static("Text/Event-Stream; q=1"),
        );
        assert_eq!(Format::from_accept(&headers), Format::Sse);
    }

    proptest::proptest! {
        /// Whatever text an object holds (newlines, separators, any Unicode), an NDJSON frame
        /// is one line and an SSE frame one message with one data line, each giving the event
        /// back.
        #[test]
        fn any_object_frames_as_one_line_or_one_message(
            text in "\\PC*|[\n\r:{}\"\\\\ ]*",
            version in 1i64..i64::MAX,
        ) {
            let object = json!({"metadata": {"name": text, "resourceVersion": version.to_string()}});
            let line = String::from_utf8(Format::Ndjson.frame("ADDED", Some(version), &object).to_vec()).unwrap();
            proptest::prop_assert_eq!(line.matches('\n').count(), 1);
            proptest::prop_assert!(line.ends_with('\n'));
            let back: Value = serde_json::from_str(&line).unwrap();
            proptest::prop_assert_eq!(&back["object"], &object);
            let message = String::from_utf8(Format::Sse.frame("ADDED", Some(version), &object).to_vec()).unwrap();
            proptest::prop_assert!(message.ends_with("\n\n"));
            proptest::prop_assert_eq!(message.matches("\n\n").count(), 1);
            let data: Vec<&str> = message.lines().filter_map(|l| l.strip_prefix("data: ")).collect();
            proptest::prop_assert_eq!(data.len(), 1);
            let back: Value = serde_json::from_str(data[0]).unwrap();
            proptest::prop_assert_eq!(&back["object"], &object);
            let id = format!("id: {version}\n");
            proptest::prop_assert!(message.contains(&id));
        }
    }

    #[tokio::test]
    async fn a_client_that_stops_reading_gets_the_buffer_then_a_final_error() {
        let (sink, body) = channel(Format::Ndjson, 2, Duration::from_millis(50));
        let object = json!({});
        assert_eq!(sink.event("ADDED", Some(1), &object).await, Ok(()));
        assert_eq!(sink.event("ADDED", Some(2), &object).await, Ok(()));
        assert_eq!(
            sink.event("ADDED", Some(3), &object).await,
            Err(Stop::TooSlow)
        );
        drop(sink);
        let bytes = axum::body::to_bytes(body, usize::MAX).await.unwrap();
        let lines: Vec<Value> = String::from_utf8(bytes.to_vec())
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines.len(), 3);
        assert_eq!(lines[2]["type"], "ERROR");
        assert_eq!(lines[2]["object"]["error"]["code"], "too_slow");
    }

    #[tokio::test]
    async fn a_client_that_went_away_stops_the_producer() {
        let (sink, body) = channel(Format::Sse, 4, Duration::from_secs(5));
        drop(body);
        assert_eq!(sink.heartbeat().await, Err(Stop::ClientGone));
    }
}
