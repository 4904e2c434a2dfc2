//! The records the simulated account is made of, one file per resource: plain data, and what a
//! record can tell about itself alone (its wire form, whether it is gone; for a machine, its
//! transition engine).
//!
//! Dependencies run one way: records name no route module and not the `World` that holds them;
//! [`super::state`] builds the world out of records; the route modules (`apps`, `volumes`,
//! `machines`, `dns`, …) build on both.

pub mod app;
pub mod certificate;
pub mod dns;
pub mod ip;
pub mod machine;
pub mod secret;
pub mod volume;
