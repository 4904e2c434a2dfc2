//! The fake's HTTP side: `/bot{TOKEN}/{method}` routing, parameters from the query string and
//! the body, Telegram's answer envelope and each method's behaviour.

use super::{unix_now, EditedMessage, SentMessage, Shared, State, BOT_ID};
use axum::body::Bytes;
use axum::extract::State as Extract;
use axum::http::{header, HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Router;
use serde_json::{json, Map, Value};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

/// The methods served, spelled as Telegram documents them (names match case-insensitively).
const METHODS: &[&str] = &[
    "getMe",
    "getWebhookInfo",
    "setWebhook",
    "deleteWebhook",
    "getUpdates",
    "setMyCommands",
    "getMyCommands",
    "deleteMyCommands",
    "sendMessage",
    "sendChatAction",
    "editMessageText",
    "editMessageReplyMarkup",
    "deleteMessage",
    "setMessageReaction",
    "getChat",
    "getChatMember",
    "pinChatMessage",
    "unpinChatMessage",
    "answerCallbackQuery",
];

/// `sendChatAction`'s accepted actions.
const CHAT_ACTIONS: &[&str] = &[
    "typing",
    "upload_photo",
    "record_video",
    "upload_video",
    "record_voice",
    "upload_voice",
    "upload_document",
    "choose_sticker",
    "find_location",
    "record_video_note",
    "upload_video_note",
];

/// The longest text `sendMessage` takes.
const MAX_TEXT: usize = 4096;

/// A failed call: the HTTP status doubles as Telegram's `error_code`.
#[derive(Debug)]
struct Failure {
    code: u16,
    description: String,
}

impl Failure {
    fn bad_request(what: &str) -> Failure {
        Failure {
            code: 400,
            description: format!("Bad Request: {what}"),
        }
    }

    fn not_found() -> Failure {
        Failure {
            code: 404,
            description: "Not Found".into(),
        }
    }

    fn conflict(why: &str) -> Failure {
        Failure {
            code: 409,
            description: format!("Conflict: {why}"),
        }
    }
}

impl IntoResponse for Failure {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.code).unwrap_or(StatusCode::BAD_REQUEST);
        let body = json!({"ok": false, "error_code": self.code, "description": self.description});
        (status, axum::Json(body)).into_response()
    }
}

type Answer = Result<Value, Failure>;

#[derive(Clone)]
struct App {
    shared: Arc<Shared>,
    stop: CancellationToken,
}

/// Every path goes to one handler that reads `/bot{TOKEN}/{method}` itself (a token holds `:`
/// and the method name matches case-insensitively).
pub(super) fn router(shared: Arc<Shared>, stop: CancellationToken) -> Router {
    Router::new()
        .fallback(handle)
        .with_state(App { shared, stop })
}

async fn handle(Extract(app): Extract<App>, uri: Uri, headers: HeaderMap, body: Bytes) -> Response {
    let Some((token, method)) = split_path(uri.path()) else {
        return Failure::not_found().into_response();
    };
    if !app.shared.lock().tokens.contains(token) {
        let unauthorized = Failure {
            code: 401,
            description: "Unauthorized".into(),
        };
        return unauthorized.into_response();
    }
    let params = match read_params(uri.query(), &headers, &body) {
        Ok(params) => params,
        Err(failure) => return failure.into_response(),
    };
    let Some(method) = METHODS.iter().find(|m| m.eq_ignore_ascii_case(method)) else {
        return Failure::not_found().into_response();
    };
    *app.shared.lock().calls.entry((*method).into()).or_default() += 1;
    let answer = match *method {
        "getUpdates" => get_updates(&app, &params).await,
        method => {
            let answer = call(&mut app.shared.lock(), method, &params);
            app.shared.notify();
            answer
        }
    };
    match answer {
        Ok(result) => axum::Json(json!({"ok": true, "result": result})).into_response(),
        Err(failure) => failure.into_response(),
    }
}

/// `/bot{TOKEN}/{method}` → (token, method).
fn split_path(path: &str) -> Option<(&str, &str)> {
    let (bot, method) = path.trim_start_matches('/').split_once('/')?;
    let token = bot.strip_prefix("bot")?;
    let valid = !token.is_empty() && !method.is_empty() && !method.contains('/');
    valid.then_some((token, method))
}

/// The call's parameters: the query string, then the body's fields (JSON object or
/// URL-encoded form). Form and query values that read as JSON (numbers, booleans, the
/// JSON-serialized objects Telegram expects there) are taken as such.
fn read_params(
    query: Option<&str>,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Map<String, Value>, Failure> {
    let mut params = form_fields(query.unwrap_or("").as_bytes());
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(params);
    }
    if content_type.starts_with("application/json") {
        let Ok(Value::Object(fields)) = serde_json::from_slice::<Value>(body) else {
            return Err(Failure::bad_request("can't parse JSON object"));
        };
        params.extend(fields);
    } else if content_type.starts_with("application/x-www-form-urlencoded") {
        params.extend(form_fields(body));
    } else {
        return Err(Failure::bad_request(
            "the fake serves JSON and URL-encoded bodies only (no file uploads)",
        ));
    }
    Ok(params)
}

fn form_fields(bytes: &[u8]) -> Map<String, Value> {
    url::form_urlencoded::parse(bytes)
        .map(|(k, v)| {
            let value = match serde_json::from_str::<Value>(&v) {
                Ok(Value::String(_)) | Err(_) => Value::String(v.into_owned()),
                Ok(parsed) => parsed,
            };
            (k.into_owned(), value)
        })
        .collect()
}

fn call(state: &mut State, method: &str, p: &Map<String, Value>) -> Answer {
    match method {
        "getMe" => Ok(get_me(state)),
        "getWebhookInfo" => Ok(json!({
            "url": state.webhook_url,
            "has_custom_certificate": false,
            "pending_update_count": state.updates.len(),
        })),
        "setWebhook" => set_webhook(state, p),
        "deleteWebhook" => delete_webhook(state, p),
        "setMyCommands" => set_my_commands(state, p),
        "getMyCommands" => Ok(state.commands.clone()),
        "deleteMyCommands" => {
            state.commands = json!([]);
            Ok(json!(true))
        }
        "sendMessage" => send_message(state, p),
        "sendChatAction" => send_chat_action(state, p),
        "editMessageText" => edit_message_text(state, p),
        "editMessageReplyMarkup" => edit_reply_markup(state, p),
        "deleteMessage" => delete_message(state, p),
        "setMessageReaction" | "pinChatMessage" | "unpinChatMessage" => {
            private_chat(state, p).map(|_| json!(true))
        }
        "getChat" => private_chat(state, p).map(|chat| full_chat_info(state, chat)),
        "getChatMember" => get_chat_member(state, p),
        "answerCallbackQuery" => Err(Failure::bad_request(
            "query is too old and response timeout expired or query ID is invalid",
        )),
        _ => Err(Failure::not_found()),
    }
}

fn get_me(state: &State) -> Value {
    let mut me = state.bot_user();
    me["can_join_groups"] = json!(true);
    me["can_read_all_group_messages"] = json!(false);
    me["supports_inline_queries"] = json!(false);
    me["can_connect_to_business"] = json!(false);
    me["has_main_web_app"] = json!(false);
    me
}

/// A long poll: confirms updates below `offset`, then answers at once with what is queued,
/// or waits up to `timeout` seconds for an update. A newer `getUpdates` ends a waiting one
/// with 409, and an active webhook refuses polling, as Telegram does.
async fn get_updates(app: &App, p: &Map<String, Value>) -> Answer {
    let offset = int(p, "offset")?;
    let limit = int(p, "limit")?.unwrap_or(100).clamp(1, 100) as usize;
    let timeout = Duration::from_secs(int(p, "timeout")?.unwrap_or(0).max(0) as u64);
    let generation = start_poll(&mut app.shared.lock(), offset, p)?;
    app.shared.notify();
    let mut changed = app.shared.changed.subscribe();
    let deadline = Instant::now() + timeout;
    loop {
        {
            let state = app.shared.lock();
            if state.poll_generation != generation {
                return Err(Failure::conflict(
                    "terminated by other getUpdates request; make sure that only one bot instance is running",
                ));
            }
            let batch: Vec<Value> = state.updates.iter().take(limit).cloned().collect();
            if !batch.is_empty() || Instant::now() >= deadline {
                return Ok(Value::Array(batch));
            }
        }
        tokio::select! {
            _ = changed.changed() => {}
            _ = tokio::time::sleep_until(deadline.into()) => {}
            _ = app.stop.cancelled() => return Ok(json!([])),
        }
    }
}

fn start_poll(
    state: &mut State,
    offset: Option<i64>,
    p: &Map<String, Value>,
) -> Result<u64, Failure> {
    if !state.webhook_url.is_empty() {
        return Err(Failure::conflict(
            "can't use getUpdates method while webhook is active; use deleteWebhook to delete the webhook first",
        ));
    }
    match offset {
        Some(offset) if offset < 0 => {
            let keep = offset.unsigned_abs() as usize;
            while state.updates.len() > keep {
                state.updates.pop_front();
            }
        }
        Some(offset) => state
            .updates
            .retain(|u| u["update_id"].as_i64().unwrap_or(0) >= offset),
        None => {}
    }
    if let Some(Value::Array(kinds)) = p.get("allowed_updates") {
        let kinds = kinds.iter().filter_map(Value::as_str).map(str::to_owned);
        state.allowed_updates = kinds.collect();
    }
    state.poll_generation += 1;
    Ok(state.poll_generation)
}

fn set_webhook(state: &mut State, p: &Map<String, Value>) -> Answer {
    let url = string(p, "url").unwrap_or_default();
    if !url.is_empty() && !url.starts_with("https://") {
        return Err(Failure::bad_request(
            "bad webhook: HTTPS url must be provided for webhook",
        ));
    }
    state.webhook_url = url;
    Ok(json!(true))
}

fn delete_webhook(state: &mut State, p: &Map<String, Value>) -> Answer {
    state.webhook_url.clear();
    if p.get("drop_pending_updates").and_then(Value::as_bool) == Some(true) {
        state.updates.clear();
    }
    Ok(json!(true))
}

fn set_my_commands(state: &mut State, p: &Map<String, Value>) -> Answer {
    let Some(Value::Array(commands)) = p.get("commands") else {
        return Err(Failure::bad_request("parameter \"commands\" is required"));
    };
    let valid = commands.iter().all(|c| {
        let name = c["command"].as_str().unwrap_or("");
        let description = c["description"].as_str().unwrap_or("");
        (1..=32).contains(&name.len()) && (1..=256).contains(&description.chars().count())
    });
    if !valid || commands.len() > 100 {
        return Err(Failure::bad_request("BOT_COMMAND_INVALID"));
    }
    state.commands = Value::Array(commands.clone());
    Ok(json!(true))
}

fn send_message(state: &mut State, p: &Map<String, Value>) -> Answer {
    let chat = private_chat(state, p)?;
    let text = string(p, "text").unwrap_or_default();
    let parse_mode = string(p, "parse_mode").filter(|m| !m.is_empty());
    let shown = visible_text(&text, parse_mode.as_deref());
    if shown.trim().is_empty() {
        return Err(Failure::bad_request("message text is empty"));
    }
    if shown.chars().count() > MAX_TEXT {
        return Err(Failure::bad_request("message is too long"));
    }
    let message_id = state.take_message_id();
    state.texts.insert((chat, message_id), shown.clone());
    state.sent.push(SentMessage {
        chat_id: chat,
        message_id,
        text,
        parse_mode,
        params: Value::Object(p.clone()),
        at: Instant::now(),
    });
    Ok(bot_message(state, chat, message_id, &shown))
}

fn send_chat_action(state: &mut State, p: &Map<String, Value>) -> Answer {
    private_chat(state, p)?;
    let action = string(p, "action").unwrap_or_default();
    if !CHAT_ACTIONS.contains(&action.as_str()) {
        return Err(Failure::bad_request("wrong parameter action in request"));
    }
    Ok(json!(true))
}

fn edit_message_text(state: &mut State, p: &Map<String, Value>) -> Answer {
    let (chat, message_id) = bot_message_ref(state, p, "message to edit not found")?;
    let text = string(p, "text").unwrap_or_default();
    let shown = visible_text(&text, string(p, "parse_mode").as_deref());
    if shown.trim().is_empty() {
        return Err(Failure::bad_request("message text is empty"));
    }
    if state.texts.get(&(chat, message_id)) == Some(&shown) && p.get("reply_markup").is_none() {
        return Err(Failure::bad_request(
            "message is not modified: specified new message content and reply markup are exactly the same as a current content and reply markup of the message",
        ));
    }
    state.texts.insert((chat, message_id), shown.clone());
    state.edits.push(EditedMessage {
        chat_id: chat,
        message_id,
        text,
        at: Instant::now(),
    });
    let mut message = bot_message(state, chat, message_id, &shown);
    message["edit_date"] = json!(unix_now());
    Ok(message)
}

fn edit_reply_markup(state: &mut State, p: &Map<String, Value>) -> Answer {
    let (chat, message_id) = bot_message_ref(state, p, "message to edit not found")?;
    let text = state
        .texts
        .get(&(chat, message_id))
        .cloned()
        .unwrap_or_default();
    Ok(bot_message(state, chat, message_id, &text))
}

fn delete_message(state: &mut State, p: &Map<String, Value>) -> Answer {
    let chat = private_chat(state, p)?;
    let message_id = int(p, "message_id")?.unwrap_or(0);
    match state.texts.remove(&(chat, message_id)) {
        Some(_) => Ok(json!(true)),
        None => Err(Failure::bad_request("message to delete not found")),
    }
}

fn get_chat_member(state: &mut State, p: &Map<String, Value>) -> Answer {
    let chat = private_chat(state, p)?;
    let user_id = int(p, "user_id")?.unwrap_or(0);
    let user = match user_id {
        BOT_ID => state.bot_user(),
        id if id == chat => state.users[&chat].clone(),
        _ => return Err(Failure::bad_request("PARTICIPANT_ID_INVALID")),
    };
    Ok(json!({"status": "member", "user": user}))
}

/// The chat a call names in `chat_id`: a private chat with a user who wrote to the bot (the
/// only chats this fake knows).
fn private_chat(state: &State, p: &Map<String, Value>) -> Result<i64, Failure> {
    match p.get("chat_id") {
        None | Some(Value::Null) => Err(Failure::bad_request("chat_id is empty")),
        Some(_) => match int(p, "chat_id") {
            Ok(Some(id)) if state.users.contains_key(&id) => Ok(id),
            _ => Err(Failure::bad_request("chat not found")),
        },
    }
}

/// The bot's own message a call names with `chat_id` and `message_id`.
fn bot_message_ref(
    state: &State,
    p: &Map<String, Value>,
    missing: &str,
) -> Result<(i64, i64), Failure> {
    let chat = private_chat(state, p)?;
    let message_id = int(p, "message_id")?.unwrap_or(0);
    let own = state
        .sent
        .iter()
        .any(|m| m.chat_id == chat && m.message_id == message_id);
    match (own, state.texts.contains_key(&(chat, message_id))) {
        (true, true) => Ok((chat, message_id)),
        (false, true) => Err(Failure::bad_request("message can't be edited")),
        _ => Err(Failure::bad_request(missing)),
    }
}

fn bot_message(state: &State, chat: i64, message_id: i64, text: &str) -> Value {
    let name = state.users[&chat]["first_name"].clone();
    json!({
        "message_id": message_id,
        "from": state.bot_user(),
        "chat": {"id": chat, "type": "private", "first_name": name},
        "date": unix_now(),
        "text": text,
    })
}

fn full_chat_info(state: &State, chat: i64) -> Value {
    json!({
        "id": chat,
        "type": "private",
        "first_name": state.users[&chat]["first_name"],
        "accent_color_id": 0,
        "max_reaction_count": 11,
        "accepted_gift_types": {
            "unlimited_gifts": true,
            "limited_gifts": true,
            "unique_gifts": true,
            "premium_subscription": true,
        },
    })
}

/// The text a chat shows for `text` sent with `parse_mode`: HTML tags dropped and entities
/// decoded (what Telegram answers in the sent `Message`); other modes kept as sent.
fn visible_text(text: &str, parse_mode: Option<&str>) -> String {
    if !parse_mode.is_some_and(|m| m.eq_ignore_ascii_case("html")) {
        return text.to_owned();
    }
    let mut shown = String::with_capacity(text.len());
    let mut in_tag = false;
    for c in text.chars() {
        match (c, in_tag) {
            ('<', _) => in_tag = true,
            ('>', true) => in_tag = false,
            (c, false) => shown.push(c),
            _ => {}
        }
    }
    shown
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&amp;", "&")
}

fn string(p: &Map<String, Value>, name: &str) -> Option<String> {
    match p.get(name)? {
        Value::String(s) => Some(s.clone()),
        Value::Null => None,
        other => Some(other.to_string()),
    }
}

/// An integer parameter, given as a number or a numeric string.
fn int(p: &Map<String, Value>, name: &str) -> Result<Option<i64>, Failure> {
    let value = match p.get(name) {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::Number(n)) => n.as_i64(),
        Some(Value::String(s)) => s.trim().parse().ok(),
        Some(_) => None,
    };
    value
        .map(Some)
        .ok_or_else(|| Failure::bad_request(&format!("invalid {name} specified")))
}
