//! `make run INERT=1` in miniature: `openclaws-dev run --inert` brings up the whole stack as
//! separate processes (the simulator's own binary and the production controller binary) and its
//! demo instance reaches Ready without a gateway, and says the gateway was not checked. The real
//! stack (`make run`) is tested with a real gateway and a browser in `tests/gateway/dev_real.rs`.

use openclaws_testkit::db::fresh_database;
use openclaws_testkit::process::free_port;
use std::process::Command;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dev_stack_brings_the_demo_instance_to_ready() {
    let db = fresh_database().await;
    let dev = openclaws_testkit::workspace_binary("openclaws-dev").unwrap();
    let logs = std::env::temp_dir().join(format!("oc-dev-{}", uuid::Uuid::new_v4().simple()));
    let (api, sim) = (free_port(), free_port());
    let log_dir = logs.clone();
    let out = tokio::task::spawn_blocking(move || {
        Command::new(dev)
            .args(["run", "--exit-when-ready", "--inert"])
            .args(["--listen", &format!("127.0.0.1:{api}")])
            .args(["--sim-listen", &format!("127.0.0.1:{sim}")])
            .arg("--log-dir")
            .arg(&log_dir)
            .env("DATABASE_URL", &db.url)
            .output()
            .expect("run openclaws-dev")
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "dev failed: {stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("demo instance demo is Ready"), "{stdout}");
    assert!(
        stdout.contains("gateway checks are off") && !stdout.contains("the gateway is running"),
        "Ready claims only what was checked: {stdout}"
    );
    assert!(
        stdout.contains("dev-writer-token"),
        "the dev tokens are printed: {stdout}"
    );
    let controller_log = std::fs::read_to_string(logs.join("controller.log")).unwrap();
    assert!(
        controller_log.contains("controller started"),
        "the controller logs to its file, not the terminal: {controller_log}"
    );
    assert!(
        !stdout.contains("controller started"),
        "no log lines among what is printed: {stdout}"
    );
    let _ = std::fs::remove_dir_all(&logs);
}
