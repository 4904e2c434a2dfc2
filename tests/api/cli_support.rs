//! The support commands as a person runs them: the built binary's `get` and `describe` against a
//! running stack's API, and their messages when the address, the token or the name is wrong.

use openclaws_testkit::stack::{condition, Stack, StackOptions, READER, WRITER};
use serde_json::{json, Value};
use std::time::Duration;

const READY_TIMEOUT: Duration = Duration::from_secs(30);

/// Output of one run of the binary.
struct Run {
    ok: bool,
    stdout: String,
    stderr: String,
}

/// Runs `openclaws-controller ARGS` with the given environment (and none of the caller's API
/// settings).
async fn run(args: &[&str], env: &[(&str, &str)]) -> Run {
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_openclaws-controller"));
    command
        .args(args)
        .env_remove("OPENCLAWS_API_URL")
        .env_remove("OPENCLAWS_API_TOKEN")
        .kill_on_drop(true);
    for (k, v) in env {
        command.env(k, v);
    }
    let output = tokio::time::timeout(Duration::from_secs(60), command.output())
        .await
        .expect("the command finishes")
        .expect("the binary runs");
    Run {
        ok: output.status.success(),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

fn row<'a>(table: &'a str, name: &str) -> Vec<&'a str> {
    table
        .lines()
        .find(|l| l.split_whitespace().next() == Some(name))
        .unwrap_or_else(|| panic!("no row {name} in\n{table}"))
        .split_whitespace()
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn get_and_describe_answer_support_questions() {
    let stack = Stack::start(StackOptions::default()).await;
    for name in ["acme", "held"] {
        stack
            .put(
                name,
                json!({"customerId": "cust-42", "region": "iad",
                       "providerKeys": {"anthropicApiKey": "sk-ant-canary-value"}}),
            )
            .await;
    }
    let ready = stack.wait_ready("acme", READY_TIMEOUT).await;
    stack.wait_ready("held", READY_TIMEOUT).await;
    let machine = ready["status"]["fly"]["machineId"]
        .as_str()
        .unwrap()
        .to_owned();
    // `held` is paused with a change waiting: the kind of instance support is asked about.
    stack.patch("held", json!({"spec": {"paused": true}})).await;
    stack
        .wait_for("held", "the Paused condition", READY_TIMEOUT, |b| {
            condition(b, "Paused")["status"] == "True"
        })
        .await;
    stack
        .patch("held", json!({"spec": {"guest": {"memoryMb": 4096}}}))
        .await;
    let token: Value = stack
        .http
        .get(format!("{}/v1/instances/acme/gateway-token", stack.api_url))
        .bearer_auth(WRITER)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let token = token["token"].as_str().unwrap().to_owned();
    let api = stack.api_url.as_str();

    let get = run(&["get", "--api-url", api, "--token", READER], &[]).await;
    assert!(get.ok, "{}", get.stderr);
    assert_eq!(
        get.stdout
            .lines()
            .next()
            .unwrap()
            .split_whitespace()
            .collect::<Vec<_>>(),
        ["NAME", "PHASE", "READY", "REASON", "MACHINE", "REGION", "CUSTOMER", "AGE"]
    );
    let acme = row(&get.stdout, "acme");
    assert_eq!(
        &acme[..7],
        [
            "acme",
            "Ready",
            "True",
            "Converged",
            "started",
            "iad",
            "cust-42"
        ]
    );
    assert!(
        row(&get.stdout, "held")[1].ends_with(",Paused"),
        "{}",
        get.stdout
    );

    // Selectors go to the API as labelSelector and fieldSelector; a bad one is the API's 400.
    let labelled = run(
        &["get", "--api-url", api, "--token", READER, "-l", "!team"],
        &[],
    )
    .await;
    assert!(labelled.ok, "{}", labelled.stderr);
    assert_eq!(row(&labelled.stdout, "held")[0], "held");
    let none = run(
        &[
            "get",
            "--api-url",
            api,
            "--token",
            READER,
            "--selector",
            "team=core",
            "--field-selector",
            "spec.customerId=cust-42",
        ],
        &[],
    )
    .await;
    assert_eq!(none.stdout, "No instances found.\n", "{}", none.stderr);
    let bad = run(
        &[
            "get",
            "--api-url",
            api,
            "--token",
            READER,
            "-l",
            "team in core",
        ],
        &[],
    )
    .await;
    assert!(!bad.ok);
    assert!(
        bad.stderr
            .contains("400: invalid labelSelector: at offset 8: expected '('"),
        "{}",
        bad.stderr
    );

    // The environment works as well as the flags.
    let describe = run(
        &["describe", "acme"],
        &[("OPENCLAWS_API_URL", api), ("OPENCLAWS_API_TOKEN", READER)],
    )
    .await;
    assert!(describe.ok, "{}", describe.stderr);
    let out = &describe.stdout;
    for expected in [
        "Name:               acme",
        "Customer:           cust-42",
        "Phase:              Ready",
        "Paused:             no",
        "Endpoint:           https://acme.openclaws.test",
        "  App:              oc-acme",
        &format!("  Machine:          {machine} (started)"),
        "Conditions:",
        "Ready",
        "Last Error:         <none>",
        "Plan (from the world observed",
        "  Converged: nothing to do.",
        "Events:",
        "GatewayTokenRead",
        "anthropicApiKey (set; values are never shown)",
    ] {
        assert!(out.contains(expected), "missing {expected:?} in\n{out}");
    }
    for secret in [token.as_str(), "sk-ant-canary-value"] {
        assert!(!out.contains(secret), "a secret was printed:\n{out}");
        assert!(!get.stdout.contains(secret));
    }

    let held = run(
        &["describe", "held", "--api-url", api, "--token", READER],
        &[],
    )
    .await;
    assert!(held.ok, "{}", held.stderr);
    for expected in [
        "Paused:             yes",
        "Generation:         3 (observed",
        "  1. UpdateMachine: update machine",
        "  Note:             spec.paused is true",
    ] {
        assert!(
            held.stdout.contains(expected),
            "missing {expected:?} in\n{}",
            held.stdout
        );
    }

    let missing = run(
        &["describe", "nobody", "--api-url", api, "--token", READER],
        &[],
    )
    .await;
    assert!(!missing.ok);
    assert_eq!(missing.stderr, "error: instance nobody not found\n");
    let wrong = run(&["get", "--api-url", api, "--token", "not-a-token"], &[]).await;
    assert!(!wrong.ok);
    assert!(
        wrong.stderr.contains("refused the token (401)") && wrong.stderr.contains("--token"),
        "{}",
        wrong.stderr
    );
    let anonymous = run(&["get", "--api-url", api], &[]).await;
    assert!(!anonymous.ok);
    assert!(
        anonymous.stderr.contains("without a token"),
        "{}",
        anonymous.stderr
    );
    let nowhere = run(
        &["get", "--api-url", "http://127.0.0.1:9", "--token", READER],
        &[],
    )
    .await;
    assert!(!nowhere.ok);
    assert!(
        nowhere
            .stderr
            .contains("cannot reach the API at http://127.0.0.1:9")
            && nowhere.stderr.contains("OPENCLAWS_API_URL"),
        "{}",
        nowhere.stderr
    );
    let bad_name = run(&["describe", "a/b", "--api-url", api], &[]).await;
    assert!(!bad_name.ok);
    assert!(
        bad_name.stderr.contains("\"a/b\" is not an instance name"),
        "{}",
        bad_name.stderr
    );
    let bad_url = run(&["get", "--api-url", "localhost:8080"], &[]).await;
    assert!(!bad_url.ok);
    assert!(
        bad_url.stderr.contains("is not an http(s) URL"),
        "{}",
        bad_url.stderr
    );
}

/// `get -w`: the table, then a line for each change; the controller's status writes show as
/// they happen, up to Ready.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn get_watch_prints_changes_as_they_happen() {
    use tokio::io::{AsyncBufReadExt, BufReader};
    let stack = Stack::start(StackOptions::default()).await;
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_openclaws-controller"))
        .args(["get", "-w", "--customer-id", "cust-w"])
        .env("OPENCLAWS_API_URL", &stack.api_url)
        .env("OPENCLAWS_API_TOKEN", READER)
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("the binary runs");
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    assert_eq!(next_line(&mut lines).await, "No instances found.");
    stack
        .put("watched", json!({"customerId": "cust-w", "region": "iad"}))
        .await;
    stack
        .put("unwatched", json!({"customerId": "other", "region": "iad"}))
        .await;
    let added = next_line(&mut lines).await;
    assert!(added.starts_with("ADDED     watched   Pending"), "{added}");
    let mut seen = vec![added];
    while !seen.last().unwrap().contains(" Ready ") {
        let line = next_line(&mut lines).await;
        assert!(line.starts_with("MODIFIED  watched "), "{line}");
        seen.push(line);
    }
    assert!(seen.iter().all(|l| !l.contains("unwatched")));
    child.kill().await.unwrap();
}

/// The next line of a child's output, within [`READY_TIMEOUT`].
async fn next_line(
    lines: &mut tokio::io::Lines<tokio::io::BufReader<tokio::process::ChildStdout>>,
) -> String {
    tokio::time::timeout(READY_TIMEOUT, lines.next_line())
        .await
        .expect("a line in time")
        .unwrap()
        .expect("the output goes on")
}
