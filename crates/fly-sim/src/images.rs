//! What an image runs in process mode, and the control routes that register broken images.
//!
//! An image registered as broken (`PUT /_sim/images {"image","boot_exit_code"}`) runs a process
//! that exits at boot with that code, so the machine crash-loops as on Fly: `exit` events and
//! the restart policy. Otherwise an image whose tag is an OpenClaw version (`2026.9.5`, also
//! `v2026.9.5` or `2026.9.5-beta.1`; any registry and repository) runs the install of that
//! version, `<cache>/openclaw-<version>/bin/openclaw` (the installer's cache directory), and a
//! version that is not installed fails the machine as a bad image does. Any other tag (`main`,
//! `latest`, a digest only) runs the simulator's default install.
//!
//! An OpenClaw image (its repository's last component is `openclaw`) also brings the image's
//! layout: WORKDIR `/app` (the install's package directory, holding `dist/index.js` and
//! `openclaw.mjs`) and CMD `node openclaw.mjs gateway` for a machine config without a command.

use super::errors::{SimError, SimResult};
use super::extract::JsonBody;
use super::records::machine::image_ref;
use super::Simulator;
use axum::extract::State;
use axum::routing::put;
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::sync::Mutex;

/// The CMD of the OpenClaw image, run when a machine config has no command.
pub const OPENCLAW_CMD: [&str; 3] = ["node", "openclaw.mjs", "gateway"];
/// The OpenClaw image's WORKDIR, mapped to the install's package directory.
pub const OPENCLAW_WORKDIR: &str = "/app";

/// What a machine's image runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ImageRun {
    /// The simulator's default install.
    Default,
    /// The install of this OpenClaw version.
    Version(String),
    /// A process that exits at boot with this code.
    Broken(i32),
}

/// The OpenClaw version a tag names (`2026.9.5`, `v2026.9.5`, `2026.9.5-beta.1`), if it names
/// one: at least three dot-separated numbers, then an optional `-` suffix.
pub fn version_of_tag(tag: &str) -> Option<&str> {
    let version = tag.strip_prefix('v').unwrap_or(tag);
    let (core, suffix) = match version.split_once('-') {
        Some((core, suffix)) => (core, Some(suffix)),
        None => (version, None),
    };
    let numbers: Vec<&str> = core.split('.').collect();
    let numeric = |s: &&str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    let suffix_ok = suffix.is_none_or(|s| {
        !s.is_empty()
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-')
    });
    (numbers.len() >= 3 && numbers.iter().all(numeric) && suffix_ok).then_some(version)
}

/// Whether `image` is an OpenClaw image (its repository's last component is `openclaw`).
pub fn is_openclaw_image(image: &str) -> bool {
    image_ref(image)
        .repository
        .as_deref()
        .and_then(|r| r.rsplit('/').next())
        == Some("openclaw")
}

/// The images registered as broken, with the exit code each boot ends with.
#[derive(Debug, Default)]
pub struct BrokenImages(Mutex<BTreeMap<String, i32>>);

impl BrokenImages {
    /// What `image` runs: broken, a version's install, or the default install.
    pub fn run_of(&self, image: &str) -> ImageRun {
        if let Some(code) = self.lock().get(image) {
            return ImageRun::Broken(*code);
        }
        image_ref(image)
            .tag
            .as_deref()
            .and_then(version_of_tag)
            .map_or(ImageRun::Default, |v| ImageRun::Version(v.to_owned()))
    }

    fn set(&self, image: String, code: Option<i32>) {
        match code {
            Some(code) => self.lock().insert(image, code),
            None => self.lock().remove(&image),
        };
    }

    fn list(&self) -> BTreeMap<String, i32> {
        self.lock().clone()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, i32>> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Body of `PUT /_sim/images`.
#[derive(Debug, Deserialize)]
struct ImageSetting {
    image: String,
    /// Exit code of every boot; `null` makes the image good again.
    #[serde(alias = "bootExitCode")]
    boot_exit_code: Option<i32>,
}

/// `PUT /_sim/images {"image","boot_exit_code": N|null}`: machines booting `image` exit at
/// boot with `N` (`null`: run normally again); process mode only.
async fn set_image(
    State(sim): State<Simulator>,
    JsonBody(body): JsonBody<ImageSetting>,
) -> SimResult<Json<Value>> {
    let host = sim
        .process_host()
        .ok_or_else(|| SimError::precondition("broken images need process mode"))?;
    if body.image.trim().is_empty() {
        return Err(SimError::invalid("image must not be empty"));
    }
    host.broken_images()
        .set(body.image.clone(), body.boot_exit_code);
    Ok(Json(
        json!({"image": body.image, "boot_exit_code": body.boot_exit_code}),
    ))
}

/// `GET /_sim/images`: the broken images and their exit codes.
async fn list_images(State(sim): State<Simulator>) -> Json<Value> {
    let broken = sim
        .process_host()
        .map(|host| host.broken_images().list())
        .unwrap_or_default();
    Json(json!({"broken": broken}))
}

/// The image control routes.
pub fn router(sim: Simulator) -> Router {
    Router::new()
        .route("/_sim/images", put(set_image).get(list_images))
        .with_state(sim)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_tags_name_versions_and_other_tags_do_not() {
        assert_eq!(version_of_tag("2026.9.5"), Some("2026.9.5"));
        assert_eq!(version_of_tag("v2026.9.6"), Some("2026.9.6"));
        assert_eq!(version_of_tag("2026.10.1-beta.2"), Some("2026.10.1-beta.2"));
        for tag in [
            "main",
            "latest",
            "2026.9",
            "2026.9.x",
            "",
            "2026..5",
            "2026.9.5-",
            "1.2.3-a/b",
        ] {
            assert_eq!(version_of_tag(tag), None, "{tag}");
        }
    }

    #[test]
    fn broken_images_win_then_versions_then_the_default() {
        let images = BrokenImages::default();
        let v5 = "ghcr.io/openclaw/openclaw:2026.9.5";
        assert_eq!(images.run_of(v5), ImageRun::Version("2026.9.5".into()));
        assert_eq!(
            images.run_of("registry.fly.io/legacy:2026.9.6"),
            ImageRun::Version("2026.9.6".into())
        );
        assert_eq!(
            images.run_of("ghcr.io/openclaw/openclaw:main"),
            ImageRun::Default
        );
        assert_eq!(
            images.run_of("ghcr.io/openclaw/openclaw"),
            ImageRun::Default
        );
        images.set(v5.into(), Some(3));
        assert_eq!(images.run_of(v5), ImageRun::Broken(3));
        images.set(v5.into(), None);
        assert_eq!(images.run_of(v5), ImageRun::Version("2026.9.5".into()));
    }

    #[test]
    fn openclaw_images_are_named_by_their_repository() {
        assert!(is_openclaw_image("ghcr.io/openclaw/openclaw:main"));
        assert!(is_openclaw_image("openclaw/openclaw:2026.9.5"));
        assert!(!is_openclaw_image("nginx"));
        assert!(!is_openclaw_image("ghcr.io/openclaw/openclaw-tools:1.0.0"));
    }
}
