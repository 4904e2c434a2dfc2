//! The whole controller against the Fly simulator in inert mode (machines change state but run
//! nothing): lifecycle, faults, ownership, planning, secrets, the fleet watch, the endpoint, the
//! running image and OpenClaw version as observed, crashes and Sentry reports of the controller
//! as a child process, `openclaws-dev run`, the work queue under the reconcile workers, and the
//! lifecycle, queue and fleet watch again through a transaction-mode pooler (PgBouncer).
//!
//! One binary for all of them (each former test file is a module) so the suite links and starts
//! it once. Nothing here sets process-wide state: each test starts its own stack (database,
//! simulator, controller) or database, and settings such as `SENTRY_DSN` go to the child
//! processes that need them, never into this process's environment.

mod budget;
mod db_cancel;
mod e2e_adopt;
mod e2e_crash;
mod e2e_dev;
mod e2e_endpoint;
mod e2e_failure_modes;
mod e2e_faults;
mod e2e_fencing;
mod e2e_images;
mod e2e_instance_watch;
mod e2e_lifecycle;
mod e2e_machine_faults;
mod e2e_outage;
mod e2e_ownership;
mod e2e_plan;
mod e2e_releases;
mod e2e_secrets;
mod e2e_watch;
mod idle;
mod pooler;
mod queue;
mod sentry_reports;
mod state_machine;
mod stuck_reports;
mod webhooks;
