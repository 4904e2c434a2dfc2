//! The API and what people and tools read from it: the CRD, the instance and validation
//! endpoints over a fresh database, the support CLI and the typed TypeScript client against a
//! stack, and the Grafana dashboards against a real Prometheus.
//!
//! One binary for all of them (each former test file is a module) so the suite links and starts
//! it once. Nothing here sets process-wide state: every test has its own database, stack and
//! child processes, so they run side by side.

mod api_apply;
mod api_audit;
mod api_crd;
mod api_dm_pairing;
mod api_dry_run;
mod api_edge;
mod api_instances;
mod api_pooler;
mod api_render_cache;
mod api_round_trips;
mod api_selectors;
mod api_shared_writes;
mod api_validation;
mod api_watch;
mod api_webhooks;
mod api_writes;
mod cli_support;
mod prometheus_dashboards;
mod ts_client;
