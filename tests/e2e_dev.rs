//! `make run` in miniature: the `dev` command brings up the whole stack and its demo instance
//! reaches Ready.

mod common;

use std::process::Command;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dev_stack_brings_the_demo_instance_to_ready() {
    let db = common::fresh_database().await;
    let out = tokio::task::spawn_blocking(move || {
        Command::new(env!("CARGO_BIN_EXE_openclaws-controller"))
            .args(["dev", "--exit-when-ready", "--listen", "127.0.0.1:0"])
            .env("DATABASE_URL", &db.url)
            .env("RUST_LOG", "warn")
            .output()
            .expect("run the dev command")
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
        stdout.contains("dev-writer-token"),
        "the dev tokens are printed: {stdout}"
    );
}
