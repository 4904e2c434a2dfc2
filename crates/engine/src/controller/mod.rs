//! Running reconciles: claiming due work from the queue, holding leases while a reconcile runs,
//! and scheduling the next visit.
//!
//! # Guarantees
//! - An instance is reconciled by at most one worker at a time across every replica sharing the
//!   database, as long as a worker's lease renewals succeed (see [`openclaws_store::work`]). A worker
//!   that fails to renew abandons its reconcile at the next await point.
//! - A write through the API wakes an idle worker at once through `LISTEN/NOTIFY`; without a
//!   working listener (a transaction pooler), polling every `poll` finds the same work.
//! - After SIGTERM/SIGINT no new work is claimed; in-flight reconciles get `grace` to finish, then
//!   are abandoned and their leases released, so another replica may take them over at once.
//!
//! - Fencing: every Fly and DNS mutation of a reconcile first checks (and extends) its lease in
//!   the database ([`crate::lease::WorkLease`]) and is bounded to end before the lease could pass
//!   on; the recording transaction checks it too. A renewal that fails for any reason stops the
//!   reconcile at once. What an abandoned reconcile had sent goes into the instance's events.
//! - Waiting for Fly's rate limits, for a place in the organization's line or for Fly to answer
//!   again after an outage ([`outage`]) never raises an instance's backoff.
//!
//! # Caveats
//! - A reconcile abandoned mid-way stops between two Fly calls; every step is idempotent and the
//!   next visit observes what happened, so this is the same as a crash.
//! - A process frozen between its fence check and the moment its request leaves can still send
//!   that one request late; the request's timeout is bounded by the lease, not its departure.

mod dispatcher;
pub mod listener;
pub mod outage;
pub mod watch;

pub use dispatcher::{run, ControllerConfig, ControllerError, Reconcile};
