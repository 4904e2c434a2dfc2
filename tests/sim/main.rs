//! The Fly simulator's API (apps, machines, volumes, leases, faults, guards, scale) and the
//! controller's Fly client against it.
//!
//! One binary for all of them (each former test file is a module) so the suite links and starts
//! it once. Nothing here sets process-wide state: every test serves its own simulator on its own
//! port.

mod fly_client;
mod sim_api;
mod sim_faults;
mod sim_guards;
mod sim_lifecycle;
mod sim_resources;
mod sim_scale;
