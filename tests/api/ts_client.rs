//! The typed TypeScript client under `clients/typescript/` against a running stack, with the
//! pinned Node (`scripts/ts-client.sh`): its checked-in `schema.d.ts` is what the served
//! `/openapi.json` generates, it type-checks (`tsc --noEmit`), and `test/e2e.ts` creates an
//! instance, applies a change as the `dashboard` field manager (and meets another manager's
//! conflict, then forces), watches the changes arrive, reads the gateway token and deletes it.

use openclaws_testkit::stack::{Stack, StackOptions, WRITER};
use openclaws_testkit::{target_tmp_dir, workspace_root};
use std::time::Duration;

/// Long enough for a first `npm ci` (and the pinned Node's install) on a fresh machine.
const SCRIPT_TIMEOUT: Duration = Duration::from_secs(600);

/// Runs `scripts/ts-client.sh ARGS` with `env`; panics with its output unless it succeeds.
async fn ts_client(args: &[&str], env: &[(&str, &str)]) -> String {
    let root = workspace_root();
    let mut command = tokio::process::Command::new(root.join("scripts/ts-client.sh"));
    command
        .args(args)
        .current_dir(&root)
        .env(
            "OPENCLAWS_CONTROLLER_BIN",
            env!("CARGO_BIN_EXE_openclaws-controller"),
        )
        .kill_on_drop(true);
    for (k, v) in env {
        command.env(k, v);
    }
    let output = tokio::time::timeout(SCRIPT_TIMEOUT, command.output())
        .await
        .unwrap_or_else(|_| {
            panic!("scripts/ts-client.sh {args:?} finishes within {SCRIPT_TIMEOUT:?}")
        })
        .expect("scripts/ts-client.sh runs");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "scripts/ts-client.sh {args:?} failed ({}):\n--- stdout\n{stdout}\n--- stderr\n{stderr}",
        output.status
    );
    stdout
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_typescript_client_creates_applies_watches_reads_the_token_and_deletes() {
    let stack = Stack::start(StackOptions::default()).await;
    ts_client(&["install"], &[]).await;

    // The checked-in schema is what the served document generates.
    let document = stack
        .http
        .get(format!("{}/openapi.json", stack.api_url))
        .send()
        .await
        .expect("GET /openapi.json")
        .text()
        .await
        .expect("the document");
    let path = target_tmp_dir().join(format!("openapi-ts-client-{}.json", std::process::id()));
    std::fs::write(&path, document).expect("write the document");
    ts_client(&["check", path.to_str().expect("a UTF-8 path")], &[]).await;
    let _ = std::fs::remove_file(&path);

    ts_client(&["typecheck"], &[]).await;
    let out = ts_client(
        &["e2e"],
        &[
            ("OPENCLAWS_API_URL", stack.api_url.as_str()),
            ("OPENCLAWS_API_TOKEN", WRITER),
        ],
    )
    .await;
    println!("{out}");
    assert!(out.contains("[e2e] ok"), "the e2e script finished:\n{out}");
}

#[test]
fn the_document_types_the_apply_and_patch_bodies_and_watch_objects() {
    let document = openclaws_api::openapi::document();
    let schemas = &document["components"]["schemas"];
    let patch = &document["paths"]["/v1/instances/{name}"]["patch"]["requestBody"]["content"];
    assert_eq!(
        patch["application/apply-patch+json"]["schema"]["$ref"],
        "#/components/schemas/InstanceApply"
    );
    assert_eq!(
        patch["application/merge-patch+json"]["schema"]["$ref"],
        "#/components/schemas/InstancePatch"
    );
    // An apply names any subset of the write spec's fields; a merge patch may also send null.
    let spec_write = &schemas["InstanceSpecWrite"];
    let spec_apply = &schemas["InstanceSpecApply"];
    assert!(spec_write["required"].is_array());
    assert!(spec_apply.get("required").is_none());
    assert_eq!(spec_apply["properties"], spec_write["properties"]);
    assert_eq!(
        schemas["InstanceApply"]["properties"]["spec"]["$ref"],
        "#/components/schemas/InstanceSpecApply"
    );
    let guest = &schemas["InstanceSpecPatch"]["properties"]["guest"]["anyOf"];
    assert_eq!(guest[1]["type"], "null");
    assert_eq!(
        schemas["InstancePatch"]["properties"]["spec"]["anyOf"][0]["$ref"],
        "#/components/schemas/InstanceSpecPatch"
    );
    let objects: Vec<&str> = schemas["WatchEvent"]["properties"]["object"]["anyOf"]
        .as_array()
        .expect("the watch object is one of several schemas")
        .iter()
        .filter_map(|s| s["$ref"].as_str())
        .collect();
    assert_eq!(
        objects,
        [
            "#/components/schemas/OpenClawInstance",
            "#/components/schemas/Event",
            "#/components/schemas/WatchBookmark",
            "#/components/schemas/ErrorBody"
        ]
    );
}
