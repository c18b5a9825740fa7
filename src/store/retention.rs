//! The history pruner: a background thread that forgets history older than the retention
//! window on any backend (the change log, retained snapshots, old row versions), so storage
//! stays bounded under a steady write load. Reads of a pruned revision (exact snapshots, watch
//! resumption, cursors) are refused with [`super::StoreError::RevisionUnavailable`].

use std::sync::Arc;
use std::time::Duration;

use super::{Periodic, TupleStore};

/// How often `zanzi serve` prunes history older than the retention window.
pub const PRUNE_EVERY: Duration = Duration::from_secs(60);

/// Starts a thread that prunes `store`'s history older than `retention` every `every`; it
/// stops when the handle is dropped. Pruning is idempotent, so every node sharing a database
/// may run one.
pub fn start_pruner(
    store: Arc<dyn TupleStore>,
    every: Duration,
    retention: Duration,
) -> std::io::Result<Periodic> {
    Periodic::start("zanzi-history-pruner", every, move || {
        match store.prune_older_than(retention) {
            Ok(oldest) => tracing::debug!(%oldest, "pruned history"),
            Err(err) => tracing::warn!(error = %err, "pruning history failed"),
        }
    })
}
