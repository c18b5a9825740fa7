//! Bounded storage: a RocksDB store under a steady TOUCH/DELETE load over a fixed set of keys
//! stays within a bounded size when its history is pruned to the retention window and
//! compacted, and grows past that bound when it is not (so the bound means something).

use std::sync::Arc;

use chrono::{DateTime, Utc};
use zanzi::clock::FixedClock;
use zanzi::store::{RocksStore, StoreOptions, TupleStore, Writes};
use zanzi::transaction::{Update, UpdateOp};
use zanzi::tuple::Relationship;

use crate::support::Lcg;

/// Keys the load writes to.
const KEYS: u64 = 1_000;
/// Updates per revision.
const UPDATES: usize = 10;
/// Revisions written.
const REVISIONS: u64 = 20_000;
/// Revisions after which the bound is taken, and between two prunes.
const STEP: u64 = 1_000;
/// The retention window: the clock moves one second per revision, so about 100 revisions.
const RETENTION: std::time::Duration = std::time::Duration::from_secs(100);

fn start() -> DateTime<Utc> {
    zanzi::tuple::parse_expiration("2030-01-01T00:00:00Z").unwrap()
}

/// Runs the load; with `prune`, history older than [`RETENTION`] is pruned every [`STEP`]
/// revisions. After every step the store is compacted and its size recorded.
fn run(prune: bool) -> Vec<u64> {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(FixedClock::new(start()));
    let store = RocksStore::open(
        dir.path(),
        StoreOptions {
            sync_writes: false,
            clock: clock.clone(),
            ..StoreOptions::default()
        },
    )
    .unwrap();
    let mut random = Lcg(7);
    let mut sizes = Vec::new();
    for revision in 1..=REVISIONS {
        clock.set(start() + chrono::Duration::seconds(revision as i64));
        let mut keys: Vec<u64> = Vec::with_capacity(UPDATES);
        while keys.len() < UPDATES {
            let key = random.below(KEYS);
            if !keys.contains(&key) {
                keys.push(key);
            }
        }
        let updates: Vec<Update> = keys
            .iter()
            .map(|key| Update {
                op: if random.below(3) == 0 {
                    UpdateOp::Delete
                } else {
                    UpdateOp::Touch
                },
                relationship: Relationship::parse(&format!(
                    "document:doc{key}#viewer@user:someone{}",
                    key % 97
                ))
                .unwrap(),
            })
            .collect();
        store.write_updates(&updates, &[]).unwrap();
        if revision % STEP == 0 {
            if prune {
                store.prune_older_than(RETENTION).unwrap();
            }
            store.compact().unwrap();
            sizes.push(store.size_on_disk());
        }
    }
    if prune {
        // The window really was kept: about RETENTION's worth of revisions, no more.
        let oldest = store.oldest_revision().0;
        assert!(
            (REVISIONS - 101..=REVISIONS - 99).contains(&oldest),
            "oldest kept revision {oldest}"
        );
    }
    sizes
}

#[test]
fn a_steady_touch_delete_load_stays_bounded_with_pruning_and_grows_without() {
    let (pruned, kept) = std::thread::scope(|scope| {
        let kept = scope.spawn(|| run(false));
        (run(true), kept.join().unwrap())
    });
    // The bound: four times the size after the first 1,000 revisions (pruned and compacted).
    // Live data (at most 1,000 relationships in two indexes) is the same all along; the log
    // holds at most the retention window's ~100 revisions; everything else is garbage that
    // pruning and compaction remove. Four times leaves room for file overheads.
    let bound = 4 * pruned[0];
    eprintln!(
        "bounded size: first step {} bytes, bound {bound}, with pruning at the end {}, max {}; without pruning at the end {}",
        pruned[0],
        pruned[pruned.len() - 1],
        pruned.iter().max().unwrap(),
        kept[kept.len() - 1]
    );
    for (step, size) in pruned.iter().enumerate() {
        assert!(
            *size <= bound,
            "after {} revisions the pruned store holds {size} bytes, over the bound {bound}",
            (step as u64 + 1) * STEP
        );
    }
    assert!(
        kept[kept.len() - 1] > bound,
        "without pruning the store should outgrow the bound: {} <= {bound}",
        kept[kept.len() - 1]
    );
}
