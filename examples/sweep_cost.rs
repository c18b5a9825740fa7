//! What the expiry sweep costs in a large store: loads `--live` relationships without an
//! expiration (one import) and `--expired` that have expired, then times one sweep (the
//! expiration index read up to now, the expired ones removed in batches of 1,000) against one
//! pass over the whole forward index (what the sweep did before the index, decoding every
//! value to find the expired ones).
//!
//! ```sh
//! cargo run --example sweep_cost -- --live 1000000 --expired 1000
//! ```

use std::sync::Arc;
use std::time::Instant;

use zanzi::clock::FixedClock;
use zanzi::filter::RelationshipFilter;
use zanzi::store::{
    BulkSource, RocksStore, Snapshot, StoreError, StoreOptions, TupleStore, Writes,
};
use zanzi::transaction::{ImportMode, Update, UpdateOp};
use zanzi::tuple::Relationship;

#[allow(dead_code)]
mod common;
use common::arg;

/// Generated relationships `doc:{i}#viewer@user:u{i % 1000}`.
struct Generated {
    next: u64,
    end: u64,
}

impl BulkSource for Generated {
    fn start(&mut self, _head: &dyn Snapshot) -> Result<(), StoreError> {
        Ok(())
    }

    fn next_item(&mut self) -> Option<Result<Relationship, StoreError>> {
        if self.next == self.end {
            return None;
        }
        let i = self.next;
        self.next += 1;
        Some(
            Relationship::parse(&format!("doc:{i}#viewer@user:u{}", i % 1000))
                .map_err(|e| StoreError::Backend(e.to_string())),
        )
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let live = arg("--live", 1_000_000);
    let expired = arg("--expired", 1_000);
    let dir = tempfile::tempdir()?;
    let start = zanzi::tuple::parse_expiration("2030-01-01T00:00:00Z")?;
    let clock = Arc::new(FixedClock::new(start));
    let store = RocksStore::open(
        dir.path(),
        StoreOptions {
            sync_writes: false,
            clock: clock.clone(),
            ..StoreOptions::default()
        },
    )?;
    store.bulk_load(&mut Generated { next: 0, end: live }, ImportMode::Create)?;
    let expiring: Vec<Update> = (0..expired)
        .map(|i| {
            Relationship::parse(&format!(
                "doc:x{i}#viewer@user:u{i}[expiration:2030-01-01T00:00:01Z]"
            ))
            .map(|relationship| Update {
                op: UpdateOp::Touch,
                relationship,
            })
        })
        .collect::<Result<_, _>>()?;
    for chunk in expiring.chunks(1_000) {
        store.write_updates(chunk, &[])?;
    }
    store.compact()?;
    clock.set(start + chrono::Duration::seconds(2));

    let scan = Instant::now();
    let visible = store
        .snapshot()?
        .read(&RelationshipFilter::default(), None)
        .count();
    let scanned = scan.elapsed();

    let sweep = Instant::now();
    let removed = store.sweep_expired()?;
    let swept = sweep.elapsed();
    println!(
        "{live} live, {expired} expired: sweep through the index removed {removed} in {:.1} ms; \
         one pass over the forward index ({visible} visible) took {:.1} ms",
        swept.as_secs_f64() * 1e3,
        scanned.as_secs_f64() * 1e3
    );
    Ok(())
}
