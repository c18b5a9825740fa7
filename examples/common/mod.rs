//! What the probes under `examples/` share: their numeric flags, and an engine with the check
//! cache off over a RocksDB store in a folder of the caller's.

use std::error::Error;
use std::path::Path;
use std::sync::Arc;

use zanzi::engine::{Engine, EngineConfig};
use zanzi::store::{RocksStore, StoreOptions};

/// The number after `name` on the command line, or `default` when it is absent or not a number.
pub fn arg(name: &str, default: u64) -> u64 {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|at| args.get(at + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// An engine with the check cache off (every answer walks) over a RocksDB store opened in `dir`,
/// holding `schema`; its write-ahead log is synced on each write when `sync_writes`.
pub fn uncached_engine(
    dir: &Path,
    sync_writes: bool,
    schema: &str,
) -> Result<Engine, Box<dyn Error>> {
    let store = RocksStore::open(
        dir,
        StoreOptions {
            sync_writes,
            ..StoreOptions::default()
        },
    )?;
    let config = EngineConfig {
        cache_bytes: 0,
        ..EngineConfig::default()
    };
    let engine = Engine::new(Arc::new(store), config)?;
    engine.write_schema(schema)?;
    Ok(engine)
}
