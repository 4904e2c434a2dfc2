//! The Messages API's wire format, as Anthropic publishes it: request validation, the
//! `Message` object, the server-sent event sequence of a streamed message, and the error shape.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};

/// What the fake model answers to one request.
#[derive(Debug, Clone)]
pub enum Reply {
    /// A message with these content blocks; its stop reason is `tool_use` when one of them is a
    /// tool call, `end_turn` otherwise.
    Blocks(Vec<Block>),
    /// An HTTP error in Anthropic's shape (for example 529 `overloaded_error`).
    Error {
        /// The HTTP status.
        status: u16,
        /// `error.type` (`invalid_request_error`, `rate_limit_error`, `overloaded_error`, …).
        kind: String,
        /// `error.message`.
        message: String,
    },
}

impl Reply {
    /// A message of one text block.
    pub fn text(text: &str) -> Reply {
        Reply::Blocks(vec![Block::Text(text.to_owned())])
    }
}

/// One content block of a reply.
#[derive(Debug, Clone)]
pub enum Block {
    /// `{"type":"text","text":…}`
    Text(String),
    /// `{"type":"tool_use","id":…,"name":…,"input":…}`: the model calls a tool.
    ToolUse {
        /// The call's id (`toolu_…`), which the client's `tool_result` names.
        id: String,
        /// The tool's name, as the request's `tools` list it.
        name: String,
        /// The tool's arguments.
        input: Value,
    },
}

impl Block {
    /// The block as it appears in a complete `Message`.
    fn complete(&self) -> Value {
        match self {
            Block::Text(text) => json!({"type": "text", "text": text}),
            Block::ToolUse { id, name, input } => {
                json!({"type": "tool_use", "id": id, "name": name, "input": input})
            }
        }
    }

    /// The block as `content_block_start` carries it (empty text or input) and the deltas that
    /// fill it in.
    fn streamed(&self) -> (Value, Vec<Value>) {
        match self {
            Block::Text(text) => {
                let deltas = chunks(text)
                    .map(|piece| json!({"type": "text_delta", "text": piece}))
                    .collect();
                (json!({"type": "text", "text": ""}), deltas)
            }
            Block::ToolUse { id, name, input } => {
                let serialized = input.to_string();
                let deltas = chunks(&serialized)
                    .map(|piece| json!({"type": "input_json_delta", "partial_json": piece}))
                    .collect();
                let start = json!({"type": "tool_use", "id": id, "name": name, "input": {}});
                (start, deltas)
            }
        }
    }
}

/// `text` in pieces of up to 16 characters, as a stream delivers it.
fn chunks(text: &str) -> impl Iterator<Item = String> + '_ {
    let chars: Vec<char> = text.chars().collect();
    let pieces: Vec<String> = chars.chunks(16).map(|c| c.iter().collect()).collect();
    pieces.into_iter()
}

/// The text of a `system` or message `content` value: the string itself, or the `text` of its
/// text blocks joined by newlines.
pub fn content_text(content: &Value) -> String {
    match content {
        Value::String(text) => text.clone(),
        Value::Array(blocks) => blocks
            .iter()
            .filter(|block| block["type"] == "text")
            .filter_map(|block| block["text"].as_str())
            .collect::<Vec<_>>()
            .join("\n"),
        _ => String::new(),
    }
}

/// Checks a request body as the Messages API does, naming the first problem the way it does
/// (`max_tokens: Field required`).
pub fn validate_messages_body(body: &Value) -> Result<(), String> {
    let Some(object) = body.as_object() else {
        return Err("body: Input should be a valid dictionary".into());
    };
    match object.get("model") {
        Some(Value::String(model)) if !model.is_empty() => {}
        Some(_) => return Err("model: Input should be a valid string".into()),
        None => return Err("model: Field required".into()),
    }
    match object.get("max_tokens") {
        Some(n) if n.as_u64().is_some_and(|n| n >= 1) => {}
        Some(_) => return Err("max_tokens: Input should be greater than or equal to 1".into()),
        None => return Err("max_tokens: Field required".into()),
    }
    validate_messages(object.get("messages"))?;
    validate_system(object.get("system"))?;
    validate_tools(object.get("tools"))?;
    match object.get("stream") {
        None | Some(Value::Bool(_)) => Ok(()),
        Some(_) => Err("stream: Input should be a valid boolean".into()),
    }
}

fn validate_messages(messages: Option<&Value>) -> Result<(), String> {
    let Some(messages) = messages else {
        return Err("messages: Field required".into());
    };
    let Some(messages) = messages.as_array() else {
        return Err("messages: Input should be a valid list".into());
    };
    if messages.is_empty() {
        return Err("messages: at least one message is required".into());
    }
    for (i, message) in messages.iter().enumerate() {
        if !matches!(message["role"].as_str(), Some("user" | "assistant")) {
            return Err(format!(
                "messages.{i}.role: Input should be 'user' or 'assistant'"
            ));
        }
        if !(message["content"].is_string() || message["content"].is_array()) {
            return Err(format!("messages.{i}.content: Field required"));
        }
    }
    Ok(())
}

fn validate_system(system: Option<&Value>) -> Result<(), String> {
    match system {
        None | Some(Value::String(_)) => Ok(()),
        Some(Value::Array(blocks)) if blocks.iter().all(|b| b["type"] == "text") => Ok(()),
        Some(_) => Err("system: Input should be a valid string or a list of text blocks".into()),
    }
}

fn validate_tools(tools: Option<&Value>) -> Result<(), String> {
    let Some(tools) = tools else { return Ok(()) };
    let Some(tools) = tools.as_array() else {
        return Err("tools: Input should be a valid list".into());
    };
    for (i, tool) in tools.iter().enumerate() {
        let custom = tool.get("type").is_none_or(|t| t == "custom");
        if custom && !(tool["name"].is_string() && tool["input_schema"].is_object()) {
            return Err(format!("tools.{i}: name and input_schema are required"));
        }
    }
    Ok(())
}

fn request_id() -> String {
    format!("req_{}", uuid::Uuid::new_v4().simple())
}

/// An error in Anthropic's shape, with its `request-id` header.
pub fn error(status: StatusCode, kind: &str, message: &str) -> Response {
    let id = request_id();
    let body = json!({
        "type": "error",
        "error": {"type": kind, "message": message},
        "request_id": id,
    });
    let mut response = (status, axum::Json(body)).into_response();
    if let Ok(value) = HeaderValue::from_str(&id) {
        response.headers_mut().insert("request-id", value);
    }
    response
}

fn stop_reason(blocks: &[Block]) -> &'static str {
    match blocks.iter().any(|b| matches!(b, Block::ToolUse { .. })) {
        true => "tool_use",
        false => "end_turn",
    }
}

fn output_tokens(blocks: &[Block]) -> usize {
    blocks
        .iter()
        .map(|b| b.complete().to_string().len().div_ceil(4))
        .sum()
}

/// The `Message` object answering a non-streaming request.
pub fn message_json(reply: &Reply, model: &str) -> Response {
    let blocks = match reply {
        Reply::Error {
            status,
            kind,
            message,
        } => return error_reply(*status, kind, message),
        Reply::Blocks(blocks) => blocks,
    };
    let content: Vec<Value> = blocks.iter().map(Block::complete).collect();
    axum::Json(json!({
        "id": format!("msg_{}", uuid::Uuid::new_v4().simple()),
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": content,
        "stop_reason": stop_reason(blocks),
        "stop_sequence": null,
        "usage": {"input_tokens": 10, "output_tokens": output_tokens(blocks)},
    }))
    .into_response()
}

fn error_reply(status: u16, kind: &str, message: &str) -> Response {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    error(status, kind, message)
}

/// The events of a streamed message, in the published order: `message_start`; per block
/// `content_block_start`, its `content_block_delta`s, `content_block_stop` (with a `ping`
/// after the first block starts, as the API sends); `message_delta`; `message_stop`.
pub fn stream_events(blocks: &[Block], model: &str) -> Vec<Value> {
    let mut events = vec![json!({
        "type": "message_start",
        "message": {
            "id": format!("msg_{}", uuid::Uuid::new_v4().simple()),
            "type": "message",
            "role": "assistant",
            "model": model,
            "content": [],
            "stop_reason": null,
            "stop_sequence": null,
            "usage": {"input_tokens": 10, "output_tokens": 1},
        },
    })];
    for (index, block) in blocks.iter().enumerate() {
        let (start, deltas) = block.streamed();
        events.push(json!({"type": "content_block_start", "index": index, "content_block": start}));
        if index == 0 {
            events.push(json!({"type": "ping"}));
        }
        for delta in deltas {
            events.push(json!({"type": "content_block_delta", "index": index, "delta": delta}));
        }
        events.push(json!({"type": "content_block_stop", "index": index}));
    }
    events.push(json!({
        "type": "message_delta",
        "delta": {"stop_reason": stop_reason(blocks), "stop_sequence": null},
        "usage": {"output_tokens": output_tokens(blocks)},
    }));
    events.push(json!({"type": "message_stop"}));
    events
}

/// The server-sent event stream answering a streaming request (an HTTP error instead when the
/// reply is one, as the API answers before a stream starts).
pub fn event_stream(reply: &Reply, model: &str) -> Response {
    let blocks = match reply {
        Reply::Error {
            status,
            kind,
            message,
        } => return error_reply(*status, kind, message),
        Reply::Blocks(blocks) => blocks,
    };
    let body: String = stream_events(blocks, model)
        .iter()
        .map(|event| {
            format!(
                "event: {}\ndata: {event}\n\n",
                event["type"].as_str().unwrap()
            )
        })
        .collect();
    (
        [
            (header::CONTENT_TYPE, "text/event-stream; charset=utf-8"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        body,
    )
        .into_response()
}

/// `GET /v1/models`: a page of the models OpenClaw's default configuration names.
pub fn model_list() -> Value {
    let ids = ["claude-sonnet-4-6", "claude-opus-4-6", "claude-haiku-4-5"];
    let data: Vec<Value> = ids
        .iter()
        .map(|id| {
            json!({
                "type": "model",
                "id": id,
                "display_name": id,
                "created_at": "2026-01-01T00:00:00Z",
            })
        })
        .collect();
    json!({
        "data": data,
        "has_more": false,
        "first_id": ids[0],
        "last_id": ids[ids.len() - 1],
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn valid() -> Value {
        json!({"model": "claude-sonnet-4-6", "max_tokens": 64,
               "messages": [{"role": "user", "content": "hi"}]})
    }

    #[test]
    fn a_request_is_checked_as_the_api_does() {
        assert_eq!(validate_messages_body(&valid()), Ok(()));
        let mut no_max = valid();
        no_max.as_object_mut().unwrap().remove("max_tokens");
        assert_eq!(
            validate_messages_body(&no_max),
            Err("max_tokens: Field required".into())
        );
        let mut bad_role = valid();
        bad_role["messages"][0]["role"] = json!("system");
        assert!(validate_messages_body(&bad_role)
            .unwrap_err()
            .starts_with("messages.0.role"));
        let mut blocks = valid();
        blocks["system"] = json!([{"type": "text", "text": "You are X"}]);
        assert_eq!(validate_messages_body(&blocks), Ok(()));
        assert_eq!(content_text(&blocks["system"]), "You are X");
    }

    #[test]
    fn a_stream_follows_the_published_event_order() {
        let blocks = vec![
            Block::Text("Let me look that up for you.".into()),
            Block::ToolUse {
                id: "toolu_1".into(),
                name: "exec".into(),
                input: json!({"command": "composio-exec GITHUB_GET_REPOS '{}'"}),
            },
        ];
        let events = stream_events(&blocks, "claude-sonnet-4-6");
        let kinds: Vec<&str> = events.iter().map(|e| e["type"].as_str().unwrap()).collect();
        assert_eq!(kinds.first(), Some(&"message_start"));
        assert_eq!(
            &kinds[kinds.len() - 2..],
            &["message_delta", "message_stop"]
        );
        assert_eq!(kinds[1..3], ["content_block_start", "ping"]);
        let text: String = events
            .iter()
            .filter(|e| e["index"] == 0 && e["delta"]["type"] == "text_delta")
            .map(|e| e["delta"]["text"].as_str().unwrap())
            .collect();
        assert_eq!(text, "Let me look that up for you.");
        let json: String = events
            .iter()
            .filter(|e| e["index"] == 1 && e["delta"]["type"] == "input_json_delta")
            .map(|e| e["delta"]["partial_json"].as_str().unwrap())
            .collect();
        let input: Value = serde_json::from_str(&json).unwrap();
        assert_eq!(input["command"], "composio-exec GITHUB_GET_REPOS '{}'");
        assert_eq!(events[events.len() - 2]["delta"]["stop_reason"], "tool_use");
    }
}
