//! The fence every outside mutation passes: a reconcile may change Fly or DNS only while it
//! still holds its work lease. The clients (Fly, DNS) ask a [`Fence`] before each mutation;
//! the engine answers from the lease row in PostgreSQL. A paused or partitioned replica that
//! lost its lease is refused before it sends anything.
//!
//! This lives at the bottom of the workspace so the clients and the engine share it without
//! depending on each other.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Instant;

/// Why a fence refused a mutation: the lease was lost (expired, taken over, or could not be
/// checked). The caller must stop at once.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the work lease was lost: {0}")]
pub struct Fenced(pub String);

/// A boxed future, so [`Fence`] stays object-safe.
pub type FenceFuture<'a> = Pin<Box<dyn Future<Output = Result<Instant, Fenced>> + Send + 'a>>;

/// Admits mutations while the caller still holds its lease.
pub trait Fence: Send + Sync + std::fmt::Debug {
    /// Checks the lease before `action` on `target` is sent and notes that it is about to be.
    /// `Ok` carries until when the lease is guaranteed, on the monotonic clock (which keeps
    /// running while the process is stopped): the request must go out and end before then
    /// ([`within`]), so it cannot land after another holder took over.
    fn admit<'a>(&'a self, action: &'static str, target: &'a str) -> FenceFuture<'a>;
}

/// Runs `inner` (a fenced request) only while `deadline` has not passed: the deadline is
/// checked before every poll, so a replica held up between its fence and the request (frozen by
/// SIGSTOP, starved of CPU) sends nothing when it comes back after the deadline; it gets `None`.
/// A request already on its way when the deadline passes is cut off the same way (its outcome
/// is then unknown, as after a timeout).
pub fn within<F: Future>(deadline: Instant, inner: F) -> Within<F> {
    Within {
        deadline,
        inner: Box::pin(inner),
    }
}

/// The future of [`within`].
pub struct Within<F> {
    deadline: Instant,
    inner: Pin<Box<F>>,
}

impl<F: Future> Future for Within<F> {
    type Output = Option<F::Output>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        if Instant::now() >= self.deadline {
            return Poll::Ready(None);
        }
        self.inner.as_mut().poll(cx).map(Some)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn now_or_never<F: Future>(f: F) -> Option<F::Output> {
        let waker = std::task::Waker::noop();
        let mut cx = Context::from_waker(waker);
        let mut f = Box::pin(f);
        match f.as_mut().poll(&mut cx) {
            Poll::Ready(v) => Some(v),
            Poll::Pending => None,
        }
    }

    #[test]
    fn nothing_runs_once_the_deadline_has_passed() {
        let ran = std::cell::Cell::new(false);
        let request = async {
            ran.set(true);
            7
        };
        let past = Instant::now() - Duration::from_millis(1);
        assert_eq!(now_or_never(within(past, request)), Some(None));
        assert!(!ran.get(), "the request was not even started");
        let future = Instant::now() + Duration::from_secs(60);
        assert_eq!(now_or_never(within(future, async { 7 })), Some(Some(7)));
    }
}
