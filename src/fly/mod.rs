//! Fly Machines API: wire types and a client.

pub mod types;
