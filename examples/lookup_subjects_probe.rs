//! Times lookup-subjects on the `vs_spicedb` workloads (fan-out, frontier small and full)
//! without SpiceDB: a quick loop for profiling the forward walk.
//!
//! ```sh
//! cargo run --example lookup_subjects_probe -- fan 2000
//! ```
//!
//! The first argument picks the workload (`fan`, `small`, `full`, `chain`), the second the
//! number of timed rounds over its lookup-subjects queries.

#![allow(missing_docs)]

use std::time::{Duration, Instant};

use zanzi::engine::Context;
use zanzi::transaction::ImportMode;
use zanzi::tuple::Relationship;

#[path = "../benches/vs_spicedb/workload.rs"]
#[allow(dead_code)]
mod workload;

#[allow(dead_code)]
mod common;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let which = args.get(1).map(String::as_str).unwrap_or("fan");
    let rounds: usize = args.get(2).and_then(|r| r.parse().ok()).unwrap_or(1_000);
    let work = match which {
        "fan" => workload::fan_out(),
        "small" => workload::frontier(workload::FrontierSize::SMALL, 100),
        "full" => workload::frontier(workload::FrontierSize::FULL, 100),
        "chain" => workload::chain(),
        other => return Err(format!("unknown workload `{other}`").into()),
    };
    let dir = tempfile::tempdir()?;
    let engine = common::uncached_engine(dir.path(), false, workload::SCHEMA)?;
    let rels = work
        .relationships
        .iter()
        .map(|t| Relationship::parse(t))
        .collect::<Result<Vec<_>, _>>()?;
    engine.import(rels.into_iter().map(Ok), ImportMode::Create)?;
    let ctx = Context::default();
    let queries = &work.queries.subjects;
    let mut found = 0usize;
    for q in queries {
        let (subjects, _) =
            engine.lookup_subjects(&q.resource, &q.permission, &q.subject_type, None, &ctx)?;
        found += subjects.len();
    }
    let mut samples: Vec<Duration> = Vec::with_capacity(rounds);
    for i in 0..rounds {
        let q = &queries[i % queries.len()];
        let start = Instant::now();
        let (subjects, _) =
            engine.lookup_subjects(&q.resource, &q.permission, &q.subject_type, None, &ctx)?;
        samples.push(start.elapsed());
        std::hint::black_box(subjects);
    }
    samples.sort();
    let at = |p: f64| samples[((samples.len() - 1) as f64 * p) as usize];
    println!(
        "{which}: {} queries, {found} subjects in the first pass, p50 {:?} p99 {:?}",
        queries.len(),
        at(0.5),
        at(0.99)
    );
    Ok(())
}
