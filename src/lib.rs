//! openclaws-controller: a Kubernetes-style reconciliation controller that provisions, repairs and
//! tears down one OpenClaw gateway per customer on Fly.io, with PostgreSQL holding desired state and
//! the work queue. See `../shared/design/ARCHITECTURE.md` and the README.

pub mod api;
pub mod cli;
pub mod config;
pub mod controller;
pub mod crd;
pub mod dev;
pub mod dns;
pub mod fly;
pub mod gateway;
pub mod reconcile;
pub mod resource;
pub mod secrets;
pub mod serve;
pub mod sim;
pub mod store;
pub mod telemetry;
