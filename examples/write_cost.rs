//! What a batched CREATE write costs: `--batches` requests of `--rows` new relationships each
//! through `Engine::write_relationships` (schema validation, the exact existence check, both
//! indexes, the log entry, the nested-group index update) on a RocksDB store in a temp folder,
//! after `--preload` relationships were imported. The shape is that of `vs_spicedb`'s batch
//! write row; the WAL is not synced unless `--sync 1`, as in that benchmark. Besides the wall
//! time it prints the writing thread's CPU time per request, which a shared machine's load
//! does not inflate (compare builds with that).
//!
//! ```sh
//! cargo run --example write_cost --config 'profile.dev.package.zanzi.opt-level=3' -- \
//!     --batches 2000 --rows 1000 --preload 100000
//! ```

use std::time::{Duration, Instant};

use zanzi::transaction::{ImportMode, Update, UpdateOp};
use zanzi::tuple::Relationship;

#[allow(dead_code)]
mod common;
use common::arg;

const SCHEMA: &str = "definition user {}
definition group {
    relation member: user | group#member
}
definition resource {
    relation owner: user
    relation viewer: user | group#member
    permission view = viewer + owner
}";

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let batches = arg("--batches", 1_000) as usize;
    let rows = arg("--rows", 1_000) as usize;
    let preload = arg("--preload", 100_000);
    let sync = arg("--sync", 0) == 1;
    let dir = tempfile::tempdir()?;
    let engine = common::uncached_engine(dir.path(), sync, SCHEMA)?;
    let base = (0..preload).map(|i| {
        let text = match i % 3 {
            0 => format!("group:g{}#member@user:u{}", i % 1_000, i),
            1 => format!("resource:r{i}#viewer@group:g{}#member", i % 1_000),
            _ => format!("resource:r{i}#owner@user:u{}", i % 5_000),
        };
        Relationship::parse(&text).map_err(Into::into)
    });
    engine.import(base, ImportMode::Create)?;

    let mut durations = Vec::with_capacity(batches);
    let mut cpu = Duration::ZERO;
    for batch in 0..batches {
        let updates: Vec<Update> = (0..rows)
            .map(|row| {
                let i = batch * rows + row;
                Relationship::parse(&format!("resource:batch{i}#viewer@user:batcher{}", i % 97))
                    .map(|relationship| Update {
                        op: UpdateOp::Create,
                        relationship,
                    })
            })
            .collect::<Result<_, _>>()?;
        let (start, cpu_start) = (Instant::now(), thread_cpu());
        engine.write_relationships(&updates, &[])?;
        durations.push(start.elapsed());
        cpu += thread_cpu().saturating_sub(cpu_start);
    }
    let total: Duration = durations.iter().sum();
    durations.sort();
    let p50 = durations
        .get(durations.len() / 2)
        .copied()
        .unwrap_or_default();
    println!(
        "{batches} CREATE requests of {rows} rows after {preload} imported (WAL sync {}): \
         p50 {:.2} ms per request, mean {:.2} µs per relationship, \
         writing thread's CPU {:.2} ms per request",
        if sync { "on" } else { "off" },
        p50.as_secs_f64() * 1e3,
        total.as_secs_f64() * 1e6 / (batches * rows).max(1) as f64,
        cpu.as_secs_f64() * 1e3 / batches.max(1) as f64
    );
    Ok(())
}

/// The CPU time this thread has run (Linux's `/proc/thread-self/schedstat`; zero elsewhere):
/// a write's cost that a busy machine's waits for a core do not inflate. The write runs on
/// the caller's thread (memtable inserts and the write-ahead log included).
fn thread_cpu() -> Duration {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()
        .and_then(|text| text.split_whitespace().next()?.parse().ok())
        .map(Duration::from_nanos)
        .unwrap_or_default()
}
