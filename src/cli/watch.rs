//! `get -w`: the table, then one line per change as it happens, from the API's watch
//! (`docs/watch.md`). The watch resumes from the last version seen whenever its stream ends
//! (the API ends each after `timeoutSeconds`, a proxy may cut it); when the API no longer keeps
//! that version (410) the list is printed again and the watch goes on from it.

use chrono::Utc;
use serde_json::Value;
use std::io::Write;

use super::client::{ApiClient, CliError};
use super::{filters, list, render, GetArgs};

/// The longest stream the command asks for; it resumes after each.
const TIMEOUT_SECONDS: &str = "3600";
/// Pause before reopening a stream that ended as soon as it opened.
const REOPEN_PAUSE: std::time::Duration = std::time::Duration::from_secs(1);

/// Runs `get -w` until interrupted or a lasting error, writing to `out`.
pub async fn run(args: &GetArgs, out: &mut impl Write) -> Result<(), CliError> {
    let client = ApiClient::new(&args.api.api_url, args.api.token.clone())?;
    let mut from = print_list(&client, args, out).await?;
    loop {
        let opened = std::time::Instant::now();
        match follow(&client, args, &mut from, out).await {
            Ok(()) if opened.elapsed() < REOPEN_PAUSE => {
                // A stream that ended at once (a server shutting down): do not spin.
                tokio::time::sleep(REOPEN_PAUSE).await;
            }
            Ok(()) => {}
            Err(CliError::Gone(_)) => {
                writeln!(out, "(the watch fell too far behind; listing again)")?;
                from = print_list(&client, args, out).await?;
            }
            Err(e) => return Err(e),
        }
    }
}

/// Prints the table; the version to watch from.
async fn print_list(
    client: &ApiClient,
    args: &GetArgs,
    out: &mut impl Write,
) -> Result<String, CliError> {
    let (items, version) = list(client, args).await?;
    out.write_all(render::instance_table(&items, Utc::now()).as_bytes())?;
    out.flush()?;
    Ok(version)
}

/// Prints the changes of one stream; `from` follows every event and bookmark. Ends when the
/// stream does.
async fn follow(
    client: &ApiClient,
    args: &GetArgs,
    from: &mut String,
    out: &mut impl Write,
) -> Result<(), CliError> {
    let mut query: Vec<(&str, &str)> = vec![
        ("watch", "true"),
        ("resourceVersion", from.as_str()),
        ("timeoutSeconds", TIMEOUT_SECONDS),
    ];
    query.extend(filters(args));
    let mut response = client.open_stream("/v1/instances", &query).await?;
    let mut pending: Vec<u8> = Vec::new();
    while let Ok(Some(chunk)) = response.chunk().await {
        pending.extend_from_slice(&chunk);
        while let Some(end) = pending.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = pending.drain(..=end).collect();
            let Ok(event) = serde_json::from_slice::<Value>(&line) else {
                continue;
            };
            show(&event, from, out)?;
        }
    }
    Ok(())
}

/// Prints one event (bookmarks only move `from`); an `ERROR` ends the stream, as 410 when its
/// version is gone.
fn show(event: &Value, from: &mut String, out: &mut impl Write) -> Result<(), CliError> {
    let object = &event["object"];
    let type_ = event["type"].as_str().unwrap_or_default();
    if type_ == "ERROR" {
        let message = object["error"]["message"].as_str().unwrap_or("watch error");
        return match object["error"]["code"].as_str() {
            Some("gone") => Err(CliError::Gone(message.to_owned())),
            _ => Ok(()),
        };
    }
    if let Some(version) = object["metadata"]["resourceVersion"].as_str() {
        *from = version.to_owned();
    }
    if type_ != "BOOKMARK" {
        out.write_all(render::watch_line(type_, object, Utc::now()).as_bytes())?;
        out.flush()?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn events_print_rows_and_every_version_moves_the_cursor() {
        let mut from = "5".to_owned();
        let mut out = Vec::new();
        let modified = json!({"type": "MODIFIED", "object": {
            "metadata": {"name": "acme", "resourceVersion": "9"},
            "spec": {"region": "iad", "customerId": "c1"},
            "status": {"phase": "Ready"}}});
        show(&modified, &mut from, &mut out).unwrap();
        assert_eq!(from, "9");
        let line = String::from_utf8(out.clone()).unwrap();
        assert!(line.starts_with("MODIFIED  acme   Ready"), "{line}");
        let bookmark =
            json!({"type": "BOOKMARK", "object": {"metadata": {"resourceVersion": "12"}}});
        show(&bookmark, &mut from, &mut out).unwrap();
        assert_eq!(from, "12");
        assert_eq!(
            String::from_utf8(out).unwrap(),
            line,
            "bookmarks print nothing"
        );
    }

    #[test]
    fn a_gone_error_asks_for_a_new_list() {
        let mut from = "5".to_owned();
        let gone =
            json!({"type": "ERROR", "object": {"error": {"code": "gone", "message": "old"}}});
        assert!(matches!(
            show(&gone, &mut from, &mut Vec::new()),
            Err(CliError::Gone(_))
        ));
        let slow =
            json!({"type": "ERROR", "object": {"error": {"code": "too_slow", "message": "x"}}});
        assert!(show(&slow, &mut from, &mut Vec::new()).is_ok());
    }
}
