//! The engine: everything that turns desired state into the world. [`reconcile`] converges one
//! instance (load → resolve secrets → converge → judge → schedule → record); [`controller`]
//! runs reconciles from the durable work queue and watches the fleet for changes.
//!
//! The engine depends on the model, the clients (Fly, DNS, gateway) and the store; it knows
//! nothing of the API or of telemetry, which it feeds through the [`Telemetry`] interface it owns.

pub mod budget;
pub mod controller;
pub mod lease;
pub mod reconcile;
pub mod release;
pub mod stuck;
mod telemetry;
pub mod webhooks;

pub use telemetry::{ReconcileFuture, Telemetry, WatchPass};
