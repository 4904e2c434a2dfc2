//! Fly Machines API: wire types, a typed client and its error classes.

pub mod circuit;
pub mod client;
pub mod error;
pub mod limits;
pub mod observer;
pub mod types;

pub use client::FlyClient;
pub use error::FlyError;
pub use limits::{Budget, FlyRateLimits, LimitClass};
pub use observer::{FlyObserver, NoObserver};
