//! The controller process: its settings ([`config`]) and its start-up ([`serve`]), which builds
//! the clients, the engine, telemetry and the API from the settings and runs them until shutdown.
//! The `openclaws-controller` binary and the test kit both start the controller through here.

pub mod config;
pub mod import;
pub mod retention;
pub mod serve;
