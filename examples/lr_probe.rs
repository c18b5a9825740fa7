//! Times lookup-resources on the `vs_spicedb` workloads (fan-out and Frontier full), zanzi
//! alone, for quick before/after comparisons of the lookup-resources walk.
//!
//! ```sh
//! cargo run --example lr_probe --config 'profile.dev.package.zanzi.opt-level=3' \
//!     --config 'profile.dev.package.zanzi.debug-assertions=false' \
//!     --config 'profile.dev.package.zanzi.overflow-checks=false' -- [fan|full|both] [rounds] [queries]
//! ```
//!
//! Prints how long the import took, then the p50 (and p90) of each workload's first `queries` lookup-resources queries (100
//! unless given; the quick `vs_spicedb` run times the first 20) over `rounds` passes and the
//! answer sizes, so a change that alters an answer shows up at once.

use std::time::{Duration, Instant};

use zanzi::engine::{Context, Engine};
use zanzi::transaction::ImportMode;
use zanzi::tuple::Relationship;

#[path = "../benches/vs_spicedb/workload.rs"]
#[allow(dead_code)]
mod workload;

#[allow(dead_code)]
mod common;

use workload::{FrontierSize, Workload};

fn engine_with(dir: &std::path::Path, workloads: &[&Workload]) -> Result<Engine, String> {
    let engine =
        common::uncached_engine(dir, false, workload::SCHEMA).map_err(|e| e.to_string())?;
    let mut rels = Vec::new();
    for w in workloads {
        for text in &w.relationships {
            rels.push(Relationship::parse(text).map_err(|e| e.to_string())?);
        }
    }
    let count = rels.len();
    let start = Instant::now();
    engine
        .import(rels.into_iter().map(Ok), ImportMode::Create)
        .map_err(|e| e.to_string())?;
    println!(
        "imported {count} relationships in {:.0} ms",
        start.elapsed().as_secs_f64() * 1e3
    );
    Ok(engine)
}

fn measure(name: &str, engine: &Engine, w: &Workload, rounds: usize) -> Result<(), String> {
    let ctx = Context::new();
    let mut times: Vec<Duration> = Vec::new();
    let mut sizes = Vec::new();
    let mut checksum = 0u64;
    for round in 0..rounds {
        for q in &w.queries.resources {
            let start = Instant::now();
            let (found, _) = engine
                .lookup_resources(&q.resource_type, &q.permission, &q.subject, &ctx)
                .map_err(|e| e.to_string())?;
            times.push(start.elapsed());
            if round == 0 {
                sizes.push(found.len());
                for (id, _) in &found {
                    checksum = checksum.wrapping_mul(31).wrapping_add(
                        id.bytes()
                            .fold(7u64, |h, b| h.wrapping_mul(131).wrapping_add(u64::from(b))),
                    );
                }
            }
        }
    }
    times.sort_unstable();
    sizes.sort_unstable();
    let at = |p: usize| times[(times.len() * p / 100).min(times.len() - 1)];
    println!(
        "{name}: p50 {:?} p90 {:?} over {} lookups; answer sizes median {} max {}; checksum {checksum:x}",
        at(50),
        at(90),
        times.len(),
        sizes[sizes.len() / 2],
        sizes[sizes.len() - 1],
    );
    Ok(())
}

fn main() -> Result<(), String> {
    let args: Vec<String> = std::env::args().collect();
    let which = args.get(1).map_or("both", String::as_str);
    let rounds: usize = args.get(2).and_then(|r| r.parse().ok()).unwrap_or(5);
    let queries: usize = args.get(3).and_then(|q| q.parse().ok()).unwrap_or(100);
    if which == "fan" || which == "both" {
        let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
        let small = workload::frontier(FrontierSize::SMALL, queries);
        let chain = workload::chain();
        let fan = workload::fan_out();
        let engine = engine_with(dir.path(), &[&small, &chain, &fan])?;
        measure("fan-out", &engine, &fan, rounds * 20)?;
        measure("frontier (small)", &engine, &small, rounds)?;
    }
    if which == "full" || which == "both" {
        let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
        let full = workload::frontier(FrontierSize::FULL, queries);
        let engine = engine_with(dir.path(), &[&full])?;
        measure("frontier (full)", &engine, &full, rounds)?;
    }
    Ok(())
}
