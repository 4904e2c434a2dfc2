//! A fake Telegram Bot API for tests: an axum server on 127.0.0.1 that answers
//! `{root}/bot{TOKEN}/{method}` the way <https://core.telegram.org/bots/api> describes, so a real
//! OpenClaw gateway pointed at it with `channels.telegram.apiRoot` runs its Telegram channel
//! against it. It serves the methods OpenClaw 2026.9.6's Telegram channel calls (`getMe`,
//! `getWebhookInfo`, `deleteWebhook`, `getUpdates` long polling, `setMyCommands`, `sendMessage`,
//! `sendChatAction`, `editMessageText`, …), reading parameters from the query string and from
//! JSON or URL-encoded bodies as Telegram does. One fake is one bot; its set of valid tokens can
//! change while it runs (a revoked token answers 401, as after a rotation in BotFather).
//!
//! A test feeds it private messages from users (`send_text`), which the next `getUpdates`
//! delivers at once (a waiting long poll is woken, not timed), and reads what the bot sent
//! (`sent_messages`, `wait_for_message`) and how often each method was called (`calls`).

mod api;

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

/// The bot's numeric id: a Telegram token is `{bot id}:{secret}`, so tokens for this fake
/// should start with it (rotating a token keeps the id, as in Telegram).
pub const BOT_ID: i64 = 7_000_000_001;

/// The bot's `@username`, as `getMe` reports it.
pub const BOT_USERNAME: &str = "openclaws_test_bot";

/// A token the fake's bot accepts unless told otherwise: `{BOT_ID}:{secret}`.
pub fn token(secret: &str) -> String {
    format!("{BOT_ID}:{secret}")
}

/// One `sendMessage` the bot made, as the fake recorded and answered it.
#[derive(Debug, Clone)]
pub struct SentMessage {
    /// The chat it went to (a user's id for a private chat).
    pub chat_id: i64,
    /// The id the fake gave it.
    pub message_id: i64,
    /// The text as the bot sent it (with its markup, if `parse_mode` is set).
    pub text: String,
    /// `parse_mode` (`HTML`, `MarkdownV2`, …) when the bot set one.
    pub parse_mode: Option<String>,
    /// Every parameter of the call.
    pub params: serde_json::Value,
    /// When it arrived.
    pub at: Instant,
}

/// An `editMessageText` the bot made (streamed previews are edited in place).
#[derive(Debug, Clone)]
pub struct EditedMessage {
    /// The chat of the edited message.
    pub chat_id: i64,
    /// The edited message.
    pub message_id: i64,
    /// The new text.
    pub text: String,
    /// When it arrived.
    pub at: Instant,
}

/// Why waiting for the bot to send something gave up.
#[derive(Debug, thiserror::Error)]
pub enum WaitError {
    /// Nothing matching arrived before the deadline.
    #[error("no matching sendMessage to chat {chat_id} within {waited:?}; the bot sent {sent:?}")]
    Timeout {
        /// The chat waited on.
        chat_id: i64,
        /// How long it waited.
        waited: Duration,
        /// The texts the bot did send to that chat.
        sent: Vec<String>,
    },
}

/// What the fake holds: the bot, the users who wrote to it, queued updates and the record of
/// what the bot did.
#[derive(Debug)]
struct State {
    tokens: BTreeSet<String>,
    first_name: String,
    /// Updates not yet confirmed by a `getUpdates` offset, oldest first.
    updates: VecDeque<serde_json::Value>,
    next_update_id: i64,
    /// The update types the last `getUpdates` asked for (Telegram remembers them; an empty
    /// list means every type but a few opt-in ones).
    allowed_updates: Vec<String>,
    /// Bumped by every `getUpdates`: an older poll still waiting ends with 409, as Telegram
    /// terminates it.
    poll_generation: u64,
    webhook_url: String,
    /// Users who wrote to the bot, by chat id: a private chat exists once its user wrote.
    users: HashMap<i64, serde_json::Value>,
    /// The current text of every message in each chat, by (chat id, message id).
    texts: HashMap<(i64, i64), String>,
    next_message_id: i64,
    commands: serde_json::Value,
    sent: Vec<SentMessage>,
    edits: Vec<EditedMessage>,
    calls: BTreeMap<String, usize>,
}

/// The fake's state and the signal that something changed (an update queued, a message sent,
/// a newer poll started), which waiting long polls and `wait_for_message` watch.
#[derive(Debug)]
struct Shared {
    state: Mutex<State>,
    changed: watch::Sender<u64>,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn notify(&self) {
        self.changed.send_modify(|n| *n += 1);
    }
}

/// A running fake Bot API; stops when dropped.
#[derive(Debug)]
pub struct FakeTelegram {
    /// The API root to configure (`channels.telegram.apiRoot`): `http://127.0.0.1:{port}`,
    /// without `/bot{TOKEN}`.
    pub api_root: String,
    shared: Arc<Shared>,
    stop: CancellationToken,
}

impl FakeTelegram {
    /// Starts a fake whose bot accepts `tokens` (build them with [`token`]).
    pub async fn start<I, S>(tokens: I) -> FakeTelegram
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let state = State {
            tokens: tokens.into_iter().map(Into::into).collect(),
            first_name: "OpenClaws Test Bot".into(),
            updates: VecDeque::new(),
            next_update_id: 100_000_001,
            allowed_updates: Vec::new(),
            poll_generation: 0,
            webhook_url: String::new(),
            users: HashMap::new(),
            texts: HashMap::new(),
            next_message_id: 1,
            commands: serde_json::json!([]),
            sent: Vec::new(),
            edits: Vec::new(),
            calls: BTreeMap::new(),
        };
        let (changed, _) = watch::channel(0);
        let shared = Arc::new(Shared {
            state: Mutex::new(state),
            changed,
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the fake Telegram");
        let addr = listener.local_addr().expect("the fake Telegram's address");
        let stop = CancellationToken::new();
        let app = api::router(shared.clone(), stop.clone());
        let until = stop.clone();
        tokio::spawn(async move {
            axum::serve(listener, app)
                .with_graceful_shutdown(async move { until.cancelled().await })
                .await
                .ok();
        });
        FakeTelegram {
            api_root: format!("http://{addr}"),
            shared,
            stop,
        }
    }

    /// Replaces the tokens the bot accepts (a rotation: the old token starts answering 401).
    pub fn set_tokens<I, S>(&self, tokens: I)
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.shared.lock().tokens = tokens.into_iter().map(Into::into).collect();
        self.shared.notify();
    }

    /// User `from_user_id` (shown as `name`) sends `text` to the bot in a private chat; the next
    /// `getUpdates` delivers it, and a waiting one returns at once. Returns the update's id.
    pub fn send_text(&self, from_user_id: i64, name: &str, text: &str) -> i64 {
        let id = {
            let mut state = self.shared.lock();
            let user = serde_json::json!({
                "id": from_user_id,
                "is_bot": false,
                "first_name": name,
                "language_code": "en",
            });
            state.users.insert(from_user_id, user.clone());
            let message_id = state.take_message_id();
            state
                .texts
                .insert((from_user_id, message_id), text.to_owned());
            let message = serde_json::json!({
                "message_id": message_id,
                "from": user,
                "chat": {"id": from_user_id, "type": "private", "first_name": name},
                "date": unix_now(),
                "text": text,
            });
            state.queue_update("message", with_command_entity(message, text))
        };
        self.shared.notify();
        id
    }

    /// Every `sendMessage` so far, in arrival order.
    pub fn sent_messages(&self) -> Vec<SentMessage> {
        self.shared.lock().sent.clone()
    }

    /// Every `editMessageText` so far, in arrival order.
    pub fn edited_messages(&self) -> Vec<EditedMessage> {
        self.shared.lock().edits.clone()
    }

    /// Waits until the bot has sent (`sendMessage`) a message to `chat_id` that `matches`,
    /// looking at messages sent before the call too, and returns the first such message.
    pub async fn wait_for_message(
        &self,
        chat_id: i64,
        matches: impl Fn(&SentMessage) -> bool,
        deadline: Duration,
    ) -> Result<SentMessage, WaitError> {
        let started = Instant::now();
        let mut changed = self.shared.changed.subscribe();
        loop {
            let found = self
                .sent_messages()
                .into_iter()
                .find(|m| m.chat_id == chat_id && matches(m));
            if let Some(message) = found {
                return Ok(message);
            }
            let left = deadline.saturating_sub(started.elapsed());
            let woke = tokio::time::timeout(left, changed.changed()).await;
            if !matches!(woke, Ok(Ok(()))) {
                let sent = self.sent_messages().into_iter();
                let sent = sent.filter(|m| m.chat_id == chat_id).map(|m| m.text);
                return Err(WaitError::Timeout {
                    chat_id,
                    waited: started.elapsed(),
                    sent: sent.collect(),
                });
            }
        }
    }

    /// How many times `method` was called with a valid token (names as Telegram spells them,
    /// e.g. `getUpdates`).
    pub fn calls(&self, method: &str) -> usize {
        self.shared.lock().calls.get(method).copied().unwrap_or(0)
    }

    /// Calls with a valid token, by method.
    pub fn call_counts(&self) -> BTreeMap<String, usize> {
        self.shared.lock().calls.clone()
    }

    /// Updates queued and not yet confirmed by a `getUpdates` offset.
    pub fn pending_updates(&self) -> usize {
        self.shared.lock().updates.len()
    }
}

impl Drop for FakeTelegram {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

impl State {
    fn take_message_id(&mut self) -> i64 {
        let id = self.next_message_id;
        self.next_message_id += 1;
        id
    }

    /// Queues an update of `kind` unless the last `getUpdates` excluded that kind (Telegram
    /// then never delivers it).
    fn queue_update(&mut self, kind: &str, payload: serde_json::Value) -> i64 {
        let id = self.next_update_id;
        self.next_update_id += 1;
        let allowed =
            self.allowed_updates.is_empty() || self.allowed_updates.iter().any(|k| k == kind);
        if allowed {
            let mut update = serde_json::json!({ "update_id": id });
            update[kind] = payload;
            self.updates.push_back(update);
        }
        id
    }

    fn bot_user(&self) -> serde_json::Value {
        serde_json::json!({
            "id": BOT_ID,
            "is_bot": true,
            "first_name": self.first_name,
            "username": BOT_USERNAME,
        })
    }
}

/// Adds the `bot_command` entity Telegram attaches to a message starting with `/command`.
fn with_command_entity(mut message: serde_json::Value, text: &str) -> serde_json::Value {
    if let Some(command) = text
        .split_whitespace()
        .next()
        .filter(|w| w.starts_with('/'))
    {
        let length = command.encode_utf16().count();
        message["entities"] =
            serde_json::json!([{"offset": 0, "length": length, "type": "bot_command"}]);
    }
    message
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

#[cfg(test)]
mod tests;
