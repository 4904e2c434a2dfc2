//! `release status [NAME]` and `release list`: a release's progress per wave, its failed
//! members and its newest events, through the API (`docs/releases.md`). Rendering is pure.

use chrono::{DateTime, Utc};
use serde_json::Value;

use super::render::{age, table, text};
use super::{ApiArgs, ApiClient, CliError};

/// `release` subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum ReleaseCommand {
    /// One release's phase, waves, failed members and newest events (default: the running
    /// release, else the newest).
    Status(StatusArgs),
    /// Every release, newest first.
    List(ApiArgs),
}

/// Arguments of `release status`.
#[derive(Debug, clap::Args)]
pub struct StatusArgs {
    #[command(flatten)]
    pub api: ApiArgs,
    /// The release (default: the running one, else the newest).
    pub name: Option<String>,
}

/// Runs a `release` subcommand and returns what to print.
pub async fn run(command: &ReleaseCommand) -> Result<String, CliError> {
    match command {
        ReleaseCommand::List(api) => {
            let client = ApiClient::new(&api.api_url, api.token.clone())?;
            let list = client.get_json("/v1/releases", &[]).await?;
            Ok(release_table(items(&list), Utc::now()))
        }
        ReleaseCommand::Status(args) => status(args).await,
    }
}

async fn status(args: &StatusArgs) -> Result<String, CliError> {
    let client = ApiClient::new(&args.api.api_url, args.api.token.clone())?;
    let name = match &args.name {
        Some(name) => name.clone(),
        None => {
            let list = client.get_json("/v1/releases", &[]).await?;
            let all = items(&list);
            let chosen = all
                .iter()
                .find(|r| r["status"]["finishedAt"].is_null())
                .or(all.first());
            match chosen.and_then(|r| text(r, "/metadata/name")) {
                Some(name) => name.to_owned(),
                None => return Ok("No releases.\n".to_owned()),
            }
        }
    };
    let release = client
        .get_json(&format!("/v1/releases/{name}"), &[])
        .await?;
    let failed = client
        .get_json(
            &format!("/v1/releases/{name}/members"),
            &[("state", "Failed"), ("limit", "20")],
        )
        .await?;
    Ok(render_status(&release, items(&failed), Utc::now()))
}

fn items(list: &Value) -> &[Value] {
    list["items"].as_array().map(Vec::as_slice).unwrap_or(&[])
}

/// The `release list` table.
pub fn release_table(items: &[Value], now: DateTime<Utc>) -> String {
    if items.is_empty() {
        return "No releases.\n".to_owned();
    }
    let rows: Vec<Vec<String>> = items
        .iter()
        .map(|r| {
            vec![
                text(r, "/metadata/name").unwrap_or("-").to_owned(),
                text(r, "/status/phase").unwrap_or("-").to_owned(),
                text(r, "/spec/image").unwrap_or("-").to_owned(),
                r["status"]["members"].to_string(),
                created_age(r, now),
            ]
        })
        .collect();
    table(&["NAME", "PHASE", "IMAGE", "MEMBERS", "AGE"], &rows, "")
}

fn created_age(r: &Value, now: DateTime<Utc>) -> String {
    text(r, "/metadata/createdAt")
        .and_then(|t| t.parse::<DateTime<Utc>>().ok())
        .map(|t| age(t, now))
        .unwrap_or_else(|| "-".to_owned())
}

/// `release status`: the header, the waves, the failed members and the newest events.
pub fn render_status(release: &Value, failed: &[Value], now: DateTime<Utc>) -> String {
    let field = |p: &str| text(release, p).unwrap_or("-").to_owned();
    let mut out = String::new();
    let strategy = &release["spec"]["strategy"];
    for (label, value) in [
        ("Name:", field("/metadata/name")),
        ("Image:", field("/spec/image")),
        ("OpenClaw version:", field("/spec/openclawVersion")),
        ("Selector:", text(release, "/spec/selector").unwrap_or("<every instance>").to_owned()),
        ("Phase:", field("/status/phase")),
        ("Message:", field("/status/message")),
        ("Wave:", release["status"]["wave"].to_string()),
        (
            "Strategy:",
            format!(
                "canary {}, waves {}, maxUnavailable {}, health deadline {} s, halt at {} failed, on halt {}",
                strategy["canary"], strategy["waves"], strategy["maxUnavailable"],
                strategy["healthDeadlineSeconds"], strategy["failureThreshold"],
                text(strategy, "/onHalt").unwrap_or("-")
            ),
        ),
        ("Created:", format!("{} ago by {}", created_age(release, now), field("/metadata/createdBy"))),
    ] {
        out.push_str(&format!("{label:<18}{value}\n"));
    }
    out.push_str("\nWaves:\n");
    let waves = release["status"]["waves"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let rows: Vec<Vec<String>> = waves
        .iter()
        .map(|w| {
            [
                "name",
                "size",
                "pending",
                "updating",
                "healthy",
                "failed",
                "skipped",
                "rolledBack",
            ]
            .iter()
            .map(|k| match &w[*k] {
                Value::String(s) => s.clone(),
                v => v.to_string(),
            })
            .collect()
        })
        .collect();
    let headers = [
        "WAVE",
        "SIZE",
        "PENDING",
        "UPDATING",
        "HEALTHY",
        "FAILED",
        "SKIPPED",
        "ROLLED BACK",
    ];
    out.push_str(&table(&headers, &rows, "  "));
    if !failed.is_empty() {
        out.push_str("\nFailed:\n");
        for m in failed {
            let name = text(m, "/instanceName").unwrap_or("-");
            out.push_str(&format!(
                "  {name}: {}\n",
                text(m, "/message").unwrap_or("-")
            ));
        }
    }
    out.push_str("\nEvents:\n");
    let events = release["status"]["events"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    for e in events.iter().take(10).rev() {
        let at = text(e, "/createdAt")
            .and_then(|t| t.parse::<DateTime<Utc>>().ok())
            .map(|t| age(t, now))
            .unwrap_or_else(|| "-".to_owned());
        out.push_str(&format!(
            "  {at:>6}  {:<8} {:<16} {}\n",
            text(e, "/type").unwrap_or("-"),
            text(e, "/reason").unwrap_or("-"),
            text(e, "/message").unwrap_or("-")
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn now() -> DateTime<Utc> {
        "2026-12-01T12:00:00Z".parse().unwrap()
    }

    #[test]
    fn status_shows_waves_failures_and_events() {
        let release = json!({
            "metadata": {"name": "oc-2026.9.6", "createdAt": "2026-12-01T11:50:00Z", "createdBy": "writer"},
            "spec": {"image": "ghcr.io/openclaw/openclaw:2026.9.6", "openclawVersion": "2026.9.6",
                     "strategy": {"canary": 1, "waves": [50, 100], "maxUnavailable": 1,
                                  "healthDeadlineSeconds": 600, "failureThreshold": 1, "onHalt": "Rollback"}},
            "status": {"phase": "RollingBack", "message": "halted: 1 instance(s) failed", "wave": 0,
                       "waves": [{"wave": 0, "name": "canary", "size": 1, "pending": 0, "updating": 0,
                                  "healthy": 0, "failed": 1, "skipped": 0, "rolledBack": 0}],
                       "events": [{"type": "Warning", "reason": "Failed", "message": "acme: crash looping",
                                   "createdAt": "2026-12-01T11:58:00Z"}]}
        });
        let failed = [json!({"instanceName": "acme", "message": "the machine is crash looping"})];
        let page = render_status(&release, &failed, now());
        assert!(page.contains("RollingBack"), "{page}");
        assert!(page.contains("canary"), "{page}");
        assert!(
            page.contains("acme: the machine is crash looping"),
            "{page}"
        );
        assert!(
            page.contains("Failed           acme: crash looping"),
            "{page}"
        );
        assert!(page.contains("10m ago by writer"), "{page}");
    }

    #[test]
    fn an_empty_list_says_so() {
        assert_eq!(release_table(&[], now()), "No releases.\n");
    }
}
