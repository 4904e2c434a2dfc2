//! What the client reports about its calls. Telemetry implements [`FlyObserver`] with
//! Prometheus metrics; the client itself knows nothing of metrics.

use std::time::Duration;

/// Receives one report per Fly call and per wait for a rate-limit token.
pub trait FlyObserver: Send + Sync + std::fmt::Debug {
    /// A request to `endpoint` finished with `status` (0 when no answer came) after `elapsed`.
    fn request(&self, endpoint: &'static str, status: u16, elapsed: Duration);
    /// A call to `endpoint` waited `waited` for our own rate limiter (or was told to come back
    /// after that long).
    fn throttled(&self, endpoint: &'static str, waited: Duration);
    /// The organization's circuit opened (`true`: calls are held) or closed again.
    fn circuit(&self, _open: bool) {}
}

/// Reports nothing, for tools and tests that do not look at metrics.
#[derive(Debug, Default, Clone, Copy)]
pub struct NoObserver;

impl FlyObserver for NoObserver {
    fn request(&self, _: &'static str, _: u16, _: Duration) {}
    fn throttled(&self, _: &'static str, _: Duration) {}
}
