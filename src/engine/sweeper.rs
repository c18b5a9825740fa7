//! Background removal of expired relationships.
//!
//! Reads already hide expired relationships the moment they expire; the sweeper only reclaims
//! their space, so how often it runs affects disk use, never answers.

use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use crate::store::{TupleStore, Writes};

/// A thread that sweeps expired relationships every interval until dropped.
#[derive(Debug)]
pub struct ExpirySweeper {
    stop: Arc<(Mutex<bool>, Condvar)>,
    handle: Option<JoinHandle<()>>,
}

impl ExpirySweeper {
    /// Starts sweeping `store` every `every`.
    pub fn start(store: Arc<dyn TupleStore>, every: Duration) -> std::io::Result<Self> {
        let stop = Arc::new((Mutex::new(false), Condvar::new()));
        let signal = Arc::clone(&stop);
        let handle = std::thread::Builder::new()
            .name("zanzi-expiry-sweeper".to_string())
            .spawn(move || loop {
                let (lock, wake) = &*signal;
                let stopped = lock.lock().unwrap_or_else(|p| p.into_inner());
                let (stopped, _) = wake
                    .wait_timeout_while(stopped, every, |stopped| !*stopped)
                    .unwrap_or_else(|p| p.into_inner());
                if *stopped {
                    return;
                }
                drop(stopped);
                match store.sweep_expired() {
                    Ok(0) => {}
                    Ok(removed) => tracing::info!(removed, "swept expired relationships"),
                    Err(err) => tracing::warn!(error = %err, "expiry sweep failed"),
                }
            })?;
        Ok(Self {
            stop,
            handle: Some(handle),
        })
    }
}

impl Drop for ExpirySweeper {
    fn drop(&mut self) {
        let (lock, wake) = &*self.stop;
        *lock.lock().unwrap_or_else(|p| p.into_inner()) = true;
        wake.notify_all();
        if let Some(handle) = self.handle.take() {
            let _ = handle.join();
        }
    }
}
