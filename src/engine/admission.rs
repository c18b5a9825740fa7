//! How much engine work runs at once and how long a read may take: one bound shared by every
//! API that calls the engine (`/v1` over HTTP and gRPC, and the facades), so a flood on one
//! surface cannot take the blocking pool from the others.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::{EngineError, Interrupt};

/// The concurrency bound and the read deadline. Cheap to share behind an `Arc`.
#[derive(Debug)]
pub struct Admission {
    gate: Arc<Semaphore>,
    limit: usize,
    timeout: Option<Duration>,
}

impl Admission {
    /// At most `limit` engine calls at once (at least one), each read stopped after `timeout`.
    pub fn new(limit: usize, timeout: Duration) -> Self {
        let limit = limit.clamp(1, Semaphore::MAX_PERMITS);
        Self {
            gate: Arc::new(Semaphore::new(limit)),
            limit,
            timeout: Some(timeout),
        }
    }

    /// No bound and no deadline (embedding without a server, tests).
    pub fn unbounded() -> Self {
        Self {
            gate: Arc::new(Semaphore::new(Semaphore::MAX_PERMITS)),
            limit: Semaphore::MAX_PERMITS,
            timeout: None,
        }
    }

    /// A permit to run one engine call, held until the call's work ends; refused at once
    /// (never queued) with [`EngineError::Busy`] when `limit` calls are running.
    pub fn admit(&self) -> Result<OwnedSemaphorePermit, EngineError> {
        Arc::clone(&self.gate)
            .try_acquire_owned()
            .map_err(|_| EngineError::Busy(self.limit))
    }

    /// How many engine calls hold a permit now.
    pub fn running(&self) -> usize {
        self.limit.saturating_sub(self.gate.available_permits())
    }

    /// The most engine calls that run at once.
    pub fn limit(&self) -> usize {
        self.limit
    }

    /// What stops a read started now: its deadline, or nothing when unbounded.
    pub fn interrupt(&self) -> Interrupt {
        self.timeout.map_or_else(Interrupt::never, Interrupt::after)
    }
}

/// Cancels its [`Interrupt`] when dropped: held by the future that waits for a walk, so a
/// client that goes away stops the walk at its next step.
#[derive(Debug)]
pub struct CancelOnDrop(pub Interrupt);

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        self.0.cancel();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn past_the_limit_calls_are_refused_until_a_permit_returns() {
        let admission = Admission::new(2, Duration::from_secs(1));
        let first = admission.admit().unwrap();
        let _second = admission.admit().unwrap();
        assert_eq!(admission.running(), 2);
        assert!(matches!(admission.admit(), Err(EngineError::Busy(2))));
        drop(first);
        assert!(admission.admit().is_ok());
    }

    #[test]
    fn dropping_the_guard_cancels_the_interrupt() {
        let interrupt = Admission::unbounded().interrupt();
        assert!(interrupt.check().is_ok());
        drop(CancelOnDrop(interrupt.clone()));
        assert!(matches!(interrupt.check(), Err(EngineError::Cancelled)));
    }
}
