//! Stopping a walk early: a request's deadline and a flag its caller sets when the answer is
//! no longer wanted (the client went away), tested as the walk goes.

use std::cell::Cell;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::EngineError;

/// How many steps a walk takes between two looks at the clock (the cancel flag is looked at
/// on every step: one relaxed atomic load).
const CLOCK_EVERY: u32 = 64;

/// When a request's work must stop: a deadline, a cancel flag, or both, and optionally a
/// bound on the steps of each walk. Clones share the flag.
#[derive(Debug, Clone, Default)]
pub struct Interrupt {
    deadline: Option<(Instant, Duration)>,
    cancelled: Arc<AtomicBool>,
    /// Each walk stops with [`EngineError::StepLimit`] at its step past this many.
    step_limit: Option<u32>,
}

impl Interrupt {
    /// Work that is never interrupted.
    pub fn never() -> Self {
        Self::default()
    }

    /// Work that must stop `timeout` from now (or when cancelled).
    pub fn after(timeout: Duration) -> Self {
        Self {
            deadline: Instant::now()
                .checked_add(timeout)
                .map(|deadline| (deadline, timeout)),
            cancelled: Arc::default(),
            step_limit: None,
        }
    }

    /// This interrupt, with each walk run under it stopped with [`EngineError::StepLimit`]
    /// once it takes more than `steps` steps (recursive steps and relationships read): how a
    /// caller tries a walk on a thread that must not be held long, and moves it elsewhere
    /// when it turns out long.
    pub fn with_step_limit(mut self, steps: u32) -> Self {
        self.step_limit = Some(steps);
        self
    }

    /// The instant the work must stop by, if any.
    pub fn deadline(&self) -> Option<Instant> {
        self.deadline.map(|(deadline, _)| deadline)
    }

    /// How long the work was given, if it has a deadline.
    pub fn timeout(&self) -> Option<Duration> {
        self.deadline.map(|(_, timeout)| timeout)
    }

    /// Asks the work to stop at its next step.
    pub fn cancel(&self) {
        self.cancelled.store(true, Ordering::Relaxed);
    }

    /// Whether [`Interrupt::cancel`] was called.
    pub fn is_cancelled(&self) -> bool {
        self.cancelled.load(Ordering::Relaxed)
    }

    /// `Ok` while the work may go on; [`EngineError::Cancelled`] or
    /// [`EngineError::DeadlineExceeded`] once it must stop.
    pub fn check(&self) -> Result<(), EngineError> {
        if self.is_cancelled() {
            return Err(EngineError::Cancelled);
        }
        self.check_clock()
    }

    fn check_clock(&self) -> Result<(), EngineError> {
        match self.deadline {
            Some((deadline, timeout)) if Instant::now() >= deadline => {
                Err(EngineError::DeadlineExceeded(timeout))
            }
            _ => Ok(()),
        }
    }
}

/// An [`Interrupt`] as one walk tests it: the flag on every step, the clock every
/// [`CLOCK_EVERY`] steps (and on the first).
#[derive(Debug)]
pub(crate) struct Ticker {
    interrupt: Interrupt,
    steps: Cell<u32>,
}

impl Ticker {
    pub(crate) fn new(interrupt: Interrupt) -> Self {
        Self {
            interrupt,
            steps: Cell::new(0),
        }
    }

    /// One step of the walk: an error once the work must stop.
    pub(crate) fn tick(&self) -> Result<(), EngineError> {
        if self.interrupt.is_cancelled() {
            return Err(EngineError::Cancelled);
        }
        let steps = self.steps.get();
        self.steps.set(steps.wrapping_add(1));
        if let Some(limit) = self.interrupt.step_limit {
            if steps >= limit {
                return Err(EngineError::StepLimit(limit));
            }
        }
        if steps % CLOCK_EVERY == 0 {
            self.interrupt.check_clock()?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cancelled_interrupt_stops_the_next_step() {
        let interrupt = Interrupt::never();
        let ticker = Ticker::new(interrupt.clone());
        assert!(ticker.tick().is_ok());
        interrupt.cancel();
        assert!(matches!(ticker.tick(), Err(EngineError::Cancelled)));
    }

    #[test]
    fn a_passed_deadline_stops_within_the_clock_interval() {
        let ticker = Ticker::new(Interrupt::after(Duration::ZERO));
        let stopped = (0..=CLOCK_EVERY).find_map(|_| ticker.tick().err());
        assert!(matches!(stopped, Some(EngineError::DeadlineExceeded(_))));
    }

    #[test]
    fn a_step_limit_stops_the_walk_past_it() {
        let ticker = Ticker::new(Interrupt::never().with_step_limit(3));
        assert!((0..3).all(|_| ticker.tick().is_ok()));
        assert!(matches!(ticker.tick(), Err(EngineError::StepLimit(3))));
    }

    #[test]
    fn no_deadline_never_stops() {
        let ticker = Ticker::new(Interrupt::never());
        assert!((0..1000).all(|_| ticker.tick().is_ok()));
    }
}
