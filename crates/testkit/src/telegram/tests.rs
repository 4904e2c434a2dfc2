//! The fake Bot API driven with a plain HTTP client, as OpenClaw's grammY client and its
//! probes call it (POST JSON, GET query strings, URL-encoded forms).

use super::*;
use serde_json::{json, Value};

const USER: i64 = 42_000_042;

async fn post(fake: &FakeTelegram, token: &str, method: &str, body: Value) -> (u16, Value) {
    let url = format!("{}/bot{token}/{method}", fake.api_root);
    let response = reqwest::Client::new()
        .post(url)
        .json(&body)
        .send()
        .await
        .unwrap();
    (response.status().as_u16(), response.json().await.unwrap())
}

async fn get(fake: &FakeTelegram, path: &str) -> (u16, Value) {
    let response = reqwest::get(format!("{}{path}", fake.api_root))
        .await
        .unwrap();
    (response.status().as_u16(), response.json().await.unwrap())
}

/// Polls `check` every few milliseconds until it holds, failing after ten seconds.
async fn until(what: &str, check: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !check() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[tokio::test]
async fn get_me_answers_a_known_token_and_refuses_others_as_telegram_does() {
    let good = token("good");
    let fake = FakeTelegram::start([good.clone()]).await;
    let (status, me) = get(&fake, &format!("/bot{good}/getMe")).await;
    assert_eq!(status, 200);
    assert_eq!(me["ok"], true);
    assert_eq!(me["result"]["id"], BOT_ID);
    assert_eq!(me["result"]["is_bot"], true);
    assert_eq!(me["result"]["username"], BOT_USERNAME);
    let (status, refused) = get(&fake, &format!("/bot{}/getMe", token("bad"))).await;
    assert_eq!(
        (status, refused),
        (
            401,
            json!({"ok": false, "error_code": 401, "description": "Unauthorized"})
        )
    );
    let (status, unknown) = post(&fake, &good, "sendTelepathy", json!({})).await;
    assert_eq!(
        (status, unknown),
        (
            404,
            json!({"ok": false, "error_code": 404, "description": "Not Found"})
        )
    );
    let (status, _) = get(&fake, "/getMe").await;
    assert_eq!(status, 404);
    let (status, lower) = post(&fake, &good, "getme", json!({})).await;
    assert_eq!(
        (status, lower["ok"].clone()),
        (200, json!(true)),
        "method names match case-insensitively"
    );
    assert_eq!(fake.calls("getMe"), 2);
}

#[tokio::test]
async fn a_waiting_long_poll_returns_as_soon_as_a_user_writes_and_offsets_confirm() {
    let good = token("good");
    let fake = Arc::new(FakeTelegram::start([good.clone()]).await);
    let (poller, t) = (fake.clone(), good.clone());
    let started = Instant::now();
    let poll = tokio::spawn(async move {
        post(
            &poller,
            &t,
            "getUpdates",
            json!({"timeout": 30, "allowed_updates": ["message"]}),
        )
        .await
    });
    until("the poll to start", || fake.calls("getUpdates") == 1).await;
    let update_id = fake.send_text(USER, "Stranger", "hi");
    let (status, answer) = poll.await.unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "woken, not timed out"
    );
    assert_eq!(status, 200);
    let update = &answer["result"][0];
    assert_eq!(update["update_id"], update_id);
    assert_eq!(update["message"]["text"], "hi");
    assert_eq!(update["message"]["from"]["id"], USER);
    assert_eq!(
        update["message"]["chat"],
        json!({"id": USER, "type": "private", "first_name": "Stranger"})
    );
    let (_, again) = post(&fake, &good, "getUpdates", json!({"timeout": 0})).await;
    assert_eq!(
        again["result"].as_array().unwrap().len(),
        1,
        "unconfirmed updates come again"
    );
    let (_, confirmed) = post(&fake, &good, "getUpdates", json!({"offset": update_id + 1})).await;
    assert_eq!(confirmed["result"], json!([]));
    assert_eq!(fake.pending_updates(), 0);
    let command = fake.send_text(USER, "Stranger", "/start now");
    let (_, answer) = get(&fake, &format!("/bot{good}/getUpdates?offset={command}")).await;
    let entities = &answer["result"][0]["message"]["entities"];
    assert_eq!(
        entities,
        &json!([{"offset": 0, "length": 6, "type": "bot_command"}])
    );
}

#[tokio::test]
async fn a_newer_poll_ends_a_waiting_one_with_409_and_a_webhook_refuses_polling() {
    let good = token("good");
    let fake = Arc::new(FakeTelegram::start([good.clone()]).await);
    let (poller, t) = (fake.clone(), good.clone());
    let first =
        tokio::spawn(async move { post(&poller, &t, "getUpdates", json!({"timeout": 30})).await });
    until("the first poll", || fake.calls("getUpdates") == 1).await;
    let (status, second) = post(&fake, &good, "getUpdates", json!({"timeout": 0})).await;
    assert_eq!((status, second["result"].clone()), (200, json!([])));
    let (status, first) = first.await.unwrap();
    assert_eq!(status, 409);
    assert_eq!(first["error_code"], 409);
    assert!(first["description"]
        .as_str()
        .unwrap()
        .starts_with("Conflict: terminated by other getUpdates request"));
    let (status, _) = post(
        &fake,
        &good,
        "setWebhook",
        json!({"url": "https://example.com/hook"}),
    )
    .await;
    assert_eq!(status, 200);
    let (status, _) = post(&fake, &good, "getUpdates", json!({})).await;
    assert_eq!(status, 409);
    let (status, _) = post(
        &fake,
        &good,
        "deleteWebhook",
        json!({"drop_pending_updates": false}),
    )
    .await;
    assert_eq!(status, 200);
    let (_, info) = get(&fake, &format!("/bot{good}/getWebhookInfo")).await;
    assert_eq!(info["result"]["url"], "");
}

#[tokio::test]
async fn send_message_is_recorded_and_answered_with_the_message() {
    let good = token("good");
    let fake = FakeTelegram::start([good.clone()]).await;
    let (status, refused) = post(
        &fake,
        &good,
        "sendMessage",
        json!({"chat_id": USER, "text": "hello"}),
    )
    .await;
    assert_eq!(
        (status, refused["description"].clone()),
        (400, json!("Bad Request: chat not found"))
    );
    fake.send_text(USER, "Stranger", "hi");
    let (status, empty) = post(
        &fake,
        &good,
        "sendMessage",
        json!({"chat_id": USER, "text": ""}),
    )
    .await;
    assert_eq!(
        (status, empty["description"].clone()),
        (400, json!("Bad Request: message text is empty"))
    );
    let html = json!({"chat_id": USER.to_string(), "text": "<b>Code</b> &lt;ABCD2345&gt;", "parse_mode": "HTML"});
    let (status, sent) = post(&fake, &good, "sendMessage", html).await;
    assert_eq!(status, 200);
    assert_eq!(sent["result"]["text"], "Code <ABCD2345>");
    assert_eq!(sent["result"]["chat"]["id"], USER);
    assert_eq!(sent["result"]["from"]["id"], BOT_ID);
    let form = [("chat_id", USER.to_string()), ("text", "plain form".into())];
    let url = format!("{}/bot{good}/sendMessage", fake.api_root);
    let response = reqwest::Client::new()
        .post(url)
        .form(&form)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let found = fake
        .wait_for_message(USER, |m| m.text == "plain form", Duration::from_secs(5))
        .await
        .unwrap();
    assert_eq!(found.parse_mode, None);
    let sent = fake.sent_messages();
    assert_eq!(sent.len(), 2);
    assert_eq!(sent[0].parse_mode.as_deref(), Some("HTML"));
    assert_eq!(fake.calls("sendMessage"), 4);
}

#[tokio::test]
async fn wait_for_message_is_woken_by_a_later_send_and_gives_up_at_its_deadline() {
    let good = token("good");
    let fake = Arc::new(FakeTelegram::start([good.clone()]).await);
    fake.send_text(USER, "Stranger", "hi");
    let waiter = fake.clone();
    let wait = tokio::spawn(async move {
        waiter
            .wait_for_message(USER, |m| m.text.contains("later"), Duration::from_secs(20))
            .await
    });
    post(
        &fake,
        &good,
        "sendMessage",
        json!({"chat_id": USER, "text": "first"}),
    )
    .await;
    post(
        &fake,
        &good,
        "sendMessage",
        json!({"chat_id": USER, "text": "later"}),
    )
    .await;
    assert_eq!(wait.await.unwrap().unwrap().text, "later");
    let missing = fake
        .wait_for_message(USER, |m| m.text == "never", Duration::from_millis(50))
        .await;
    let Err(WaitError::Timeout { sent, .. }) = missing else {
        panic!("expected a timeout, got {missing:?}");
    };
    assert_eq!(sent, ["first", "later"]);
}

#[tokio::test]
async fn edits_deletes_and_chat_actions_follow_telegram() {
    let good = token("good");
    let fake = FakeTelegram::start([good.clone()]).await;
    fake.send_text(USER, "Stranger", "hi");
    let (_, sent) = post(
        &fake,
        &good,
        "sendMessage",
        json!({"chat_id": USER, "text": "draft"}),
    )
    .await;
    let id = sent["result"]["message_id"].clone();
    let edit = json!({"chat_id": USER, "message_id": id, "text": "final"});
    let (status, edited) = post(&fake, &good, "editMessageText", edit.clone()).await;
    assert_eq!(
        (status, edited["result"]["text"].clone()),
        (200, json!("final"))
    );
    let (status, same) = post(&fake, &good, "editMessageText", edit).await;
    assert_eq!(status, 400);
    assert!(same["description"]
        .as_str()
        .unwrap()
        .starts_with("Bad Request: message is not modified"));
    assert_eq!(fake.edited_messages()[0].text, "final");
    let typing = json!({"chat_id": USER, "action": "typing"});
    assert_eq!(post(&fake, &good, "sendChatAction", typing).await.0, 200);
    let dancing = json!({"chat_id": USER, "action": "dancing"});
    assert_eq!(post(&fake, &good, "sendChatAction", dancing).await.0, 400);
    let delete = json!({"chat_id": USER, "message_id": id});
    assert_eq!(
        post(&fake, &good, "deleteMessage", delete.clone()).await.0,
        200
    );
    let (status, gone) = post(&fake, &good, "deleteMessage", delete).await;
    assert_eq!(
        (status, gone["description"].clone()),
        (400, json!("Bad Request: message to delete not found"))
    );
    let commands = json!({"commands": [{"command": "status", "description": "Show status"}]});
    assert_eq!(post(&fake, &good, "setMyCommands", commands).await.0, 200);
    let (_, listed) = post(&fake, &good, "getMyCommands", json!({})).await;
    assert_eq!(listed["result"][0]["command"], "status");
}

#[tokio::test]
async fn a_rotated_token_replaces_the_old_one() {
    let (old, new) = (token("old"), token("new"));
    let fake = FakeTelegram::start([old.clone()]).await;
    assert_eq!(post(&fake, &new, "getMe", json!({})).await.0, 401);
    fake.set_tokens([new.clone()]);
    assert_eq!(post(&fake, &old, "getMe", json!({})).await.0, 401);
    assert_eq!(post(&fake, &new, "getMe", json!({})).await.0, 200);
    assert_eq!(fake.calls("getMe"), 1, "refused calls are not counted");
}
