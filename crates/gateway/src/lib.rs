//! The OpenClaw gateway seen from the controller: what it renders into a gateway's state
//! directory, and how it talks to a running gateway.
//!
//! Facts come from `docs/reference/openclaw-gateway.md` (openclaw 2026.9.6, verified by
//! experiment) and are re-checked by `tests/gateway/gateway_real.rs` against a real gateway installed by
//! `scripts/install-openclaw.sh`.
//!
//! - [`bundle`]: the machine files and command (a Node boot step) that prepare the state
//!   directory before the gateway starts;
//! - [`identity`]: the controller's Ed25519 device identity (remote callers need a paired one);
//! - [`protocol`]: wire types of the WebSocket protocol v4, no I/O;
//! - [`client`]: a WebSocket client with challenge, signed `connect`, calls with deadlines, and
//!   the pairing calls `device.pair.list` / `device.pair.approve`;
//! - [`hot_reload`]: which config paths the running gateway applies by itself and which need a
//!   restart, and the `config.patch` that puts owned fields back without one;
//! - [`channels`]: the messaging channels the controller manages (owned config fields, secret
//!   store entries, `channels.status`);
//! - [`health`]: `/readyz` and `/startupz` probes, with the proxy-attribution refusal as its own
//!   error.

/// The openclaw version these modules were verified against; `scripts/install-openclaw.sh`
/// installs it for the tests.
pub const VERIFIED_OPENCLAW_VERSION: &str = "2026.9.6";
/// Environment variable the gateway reads its shared token from (a Fly app secret).
pub const GATEWAY_TOKEN_ENV: &str = "OPENCLAW_GATEWAY_TOKEN";

pub mod bundle;
pub mod channels;
pub mod client;
pub mod config;
pub mod files;
pub mod health;
pub mod hot_reload;
pub mod identity;
pub mod protocol;
pub mod proxy_token;
