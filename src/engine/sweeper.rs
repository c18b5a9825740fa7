//! Background removal of expired relationships.
//!
//! Reads already hide expired relationships the moment they expire; the sweeper only reclaims
//! their space, so how often it runs affects disk use, never answers.

use std::sync::Arc;
use std::time::Duration;

use crate::store::{Periodic, TupleStore, Writes};

/// A thread that sweeps expired relationships every interval until dropped.
#[derive(Debug)]
pub struct ExpirySweeper {
    _thread: Periodic,
}

impl ExpirySweeper {
    /// Starts sweeping `store` every `every`.
    pub fn start(store: Arc<dyn TupleStore>, every: Duration) -> std::io::Result<Self> {
        let thread = Periodic::start("zanzi-expiry-sweeper", every, move || {
            match store.sweep_expired() {
                Ok(0) => {}
                Ok(removed) => tracing::info!(removed, "swept expired relationships"),
                Err(err) => tracing::warn!(error = %err, "expiry sweep failed"),
            }
        })?;
        Ok(Self { _thread: thread })
    }
}
