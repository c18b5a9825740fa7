//! Engine benchmarks on a store of over a million relationships on disk.
//!
//! The store is built once (fixed seed) under `$CARGO_TARGET_DIR/zanzi-bench-store` and reused
//! by later runs; delete the folder to rebuild it. Names carry their parameters. Unprefixed
//! names run the plain walk (no cache, no group index), as before the accelerators existed;
//! `group_index/` runs with the nested-group index alone, and `cached/` with the cache and the
//! index (the default configuration), repeating the same query. `traced/` runs the plain walk
//! recording its trace (`check --explain`, `withTracing`).

#![allow(clippy::expect_used, clippy::unwrap_used, missing_docs)]

use std::hint::black_box;
use std::path::PathBuf;
use std::sync::Arc;

use criterion::{criterion_group, criterion_main, BatchSize, Criterion};
use zanzi::engine::{Context, Engine, EngineConfig};
use zanzi::store::{RocksStore, StoreOptions, TupleStore};
use zanzi::transaction::{Update, UpdateOp};
use zanzi::tuple::{ObjectRef, Relationship, SubjectRef};

const SCHEMA: &str = "
definition user {}
definition group {
    relation member: user | group#member
}
definition doc {
    relation owner: user
    relation viewer: user | group#member
    permission view = viewer + owner
}";

/// Filler relationships beyond the scenario-specific ones.
const FILLER: usize = 1_000_000;

fn store_dir() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("target"));
    target.join("zanzi-bench-store")
}

/// A small deterministic generator (xorshift), so the data is the same on every run.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

fn write_all(engine: &Engine, texts: impl Iterator<Item = String>) {
    let mut batch = Vec::with_capacity(1000);
    let mut in_batch = std::collections::HashSet::new();
    for text in texts {
        // A batch may not name one relationship twice; random filler can repeat.
        if !in_batch.insert(text.clone()) {
            continue;
        }
        batch.push(Update {
            op: UpdateOp::Touch,
            relationship: Relationship::parse(&text).expect("bench relationship"),
        });
        if batch.len() == 1000 {
            engine
                .write_relationships(&batch, &[])
                .expect("bench write");
            batch.clear();
        }
    }
    if !batch.is_empty() {
        engine
            .write_relationships(&batch, &[])
            .expect("bench write");
    }
}

fn scenario() -> Vec<String> {
    let mut rels = Vec::new();
    // Nested chains: user:deep is in chain{n}_0; chain{n}_i is in chain{n}_{i+1}.
    for depth in [5usize, 30] {
        rels.push(format!("group:chain{depth}_0#member@user:deep"));
        for i in 1..depth {
            rels.push(format!(
                "group:chain{depth}_{i}#member@group:chain{depth}_{}#member",
                i - 1
            ));
        }
        rels.push(format!(
            "doc:nested{depth}#viewer@group:chain{depth}_{}#member",
            depth - 1
        ));
    }
    // A document shared with 1,000 groups; user:fan is in the last one only.
    for g in 0..1000 {
        rels.push(format!("doc:fanout#viewer@group:fan{g}#member"));
        rels.push(format!("group:fan{g}#member@user:other{g}"));
    }
    rels.push("group:fan999#member@user:fan".to_string());
    // user:reader10k views 10k documents through a group; user:reader100k 100k directly.
    rels.push("group:readers#member@user:reader10k".to_string());
    for d in 0..10_000 {
        rels.push(format!("doc:shared{d}#viewer@group:readers#member"));
    }
    for d in 0..100_000 {
        rels.push(format!("doc:big{d}#viewer@user:reader100k"));
    }
    rels.push("doc:direct#owner@user:owner".to_string());
    rels
}

/// Scenario relationships added after the first bench store was built; touched (idempotently)
/// on every open so older stores get them too.
fn later_scenario() -> Vec<String> {
    // A group holding the 1,000 `fan` groups as nested members: user:fan is in it through fan999.
    (0..1000)
        .map(|g| format!("group:fanin#member@group:fan{g}#member"))
        .collect()
}

/// The bench store (built on first use).
fn open_store() -> Arc<dyn TupleStore> {
    let dir = store_dir();
    let fresh = !dir.join("READY").exists();
    if fresh {
        let _ = std::fs::remove_dir_all(&dir);
    }
    let store: Arc<dyn TupleStore> = Arc::new(
        RocksStore::open(
            &dir,
            StoreOptions {
                sync_writes: false,
                ..StoreOptions::default()
            },
        )
        .expect("open bench store"),
    );
    let engine = Engine::new(Arc::clone(&store), EngineConfig::plain()).expect("engine");
    if fresh {
        engine.write_schema(SCHEMA).expect("schema");
        let mut rng = Rng(0x5eed);
        let filler = (0..FILLER).map(move |_| {
            let doc = rng.below(200_000);
            let user = rng.below(10_000);
            if rng.below(4) == 0 {
                format!("group:team{}#member@user:u{user}", rng.below(1000))
            } else {
                format!("doc:f{doc}#viewer@user:u{user}")
            }
        });
        write_all(&engine, filler.chain(scenario()));
        std::fs::write(dir.join("READY"), b"1").expect("mark store ready");
    }
    write_all(&engine, later_scenario().into_iter());
    store
}

/// An engine over `store` with `config`; reports how long it took to start (the group index is
/// built from the store at startup).
fn engine(store: &Arc<dyn TupleStore>, name: &str, config: EngineConfig) -> Engine {
    let started = std::time::Instant::now();
    let engine = Engine::new(Arc::clone(store), config).expect("engine");
    eprintln!("engine `{name}` started in {:?}", started.elapsed());
    engine
}

fn subject(text: &str) -> SubjectRef {
    SubjectRef::parse(text).expect("subject")
}

fn doc(id: &str) -> ObjectRef {
    ObjectRef::new("doc", id).expect("doc")
}

fn bench_checks(c: &mut Criterion) {
    let store = open_store();
    let plain = engine(&store, "plain", EngineConfig::plain());
    let indexed = engine(
        &store,
        "group index",
        EngineConfig {
            group_index: true,
            ..EngineConfig::plain()
        },
    );
    let cached = engine(&store, "cache and group index", EngineConfig::default());
    let ctx = Context::new();
    let mut group = c.benchmark_group("check");
    let cases = [
        ("direct", doc("direct"), "view", "owner"),
        ("nested_groups/depth=5", doc("nested5"), "view", "deep"),
        ("nested_groups/depth=30", doc("nested30"), "view", "deep"),
        ("union_of_groups/groups=1000", doc("fanout"), "view", "fan"),
        (
            "nested_fanout/groups=1000",
            ObjectRef::new("group", "fanin").expect("group"),
            "member",
            "fan",
        ),
    ];
    for (prefix, engine) in [
        ("", &plain),
        ("group_index/", &indexed),
        ("cached/", &cached),
    ] {
        for (name, resource, permission, user) in &cases {
            if prefix == "group_index/" && *name == "direct" {
                continue; // no group involved
            }
            let who = subject(&format!("user:{user}"));
            let answer = engine
                .check(resource, permission, &who, &ctx)
                .expect("check");
            assert!(
                answer.permissionship.is_has(),
                "{prefix}{name} must be allowed"
            );
            group.bench_function(format!("{prefix}{name}"), |b| {
                b.iter(|| {
                    black_box(
                        engine
                            .check(resource, permission, &who, &ctx)
                            .expect("check"),
                    )
                })
            });
        }
    }
    // The same walks traced (`zanzi check --explain`, `withTracing`): what recording every
    // step costs when asked for. The untraced figures above are the cost when it is not.
    for (name, resource, permission, user) in &cases {
        let who = subject(&format!("user:{user}"));
        group.bench_function(format!("traced/{name}"), |b| {
            b.iter(|| {
                black_box(
                    plain
                        .check_traced(resource, permission, &who, &ctx)
                        .expect("check"),
                )
            })
        });
    }
    group.finish();
    eprintln!("cache: {:?}", cached.cache_stats());
}

fn bench_lookups(c: &mut Criterion) {
    let store = open_store();
    let plain = engine(&store, "plain", EngineConfig::plain());
    let indexed = engine(
        &store,
        "group index",
        EngineConfig {
            group_index: true,
            ..EngineConfig::plain()
        },
    );
    let ctx = Context::new();
    let mut group = c.benchmark_group("lookup_resources");
    group.sample_size(10);
    for (prefix, engine) in [("", &plain), ("group_index/", &indexed)] {
        for (name, user, expected) in [
            ("docs=10k", "reader10k", 10_000usize),
            ("docs=100k", "reader100k", 100_000),
        ] {
            let who = subject(&format!("user:{user}"));
            let (found, _) = engine
                .lookup_resources("doc", "view", &who, &ctx)
                .expect("lookup");
            assert_eq!(found.len(), expected, "{name}");
            group.bench_function(format!("{prefix}{name}"), |b| {
                b.iter(|| {
                    black_box(
                        engine
                            .lookup_resources("doc", "view", &who, &ctx)
                            .expect("lookup"),
                    )
                })
            });
        }
    }
    group.finish();
}

fn bench_writes(c: &mut Criterion) {
    let store = open_store();
    let mut group = c.benchmark_group("write");
    group.sample_size(10);
    let mut round = 0u64;
    // Plain: the store alone. Accelerated: the writer also feeds the log to the cache's write
    // tracker and the group index before returning.
    for (prefix, config) in [
        ("", EngineConfig::plain()),
        ("accelerated/", EngineConfig::default()),
    ] {
        let engine = engine(&store, prefix, config);
        group.bench_function(format!("{prefix}relationships=10k/batch=1000"), |b| {
            b.iter_batched(
                || {
                    round += 1;
                    (0..10_000)
                        .map(|i| format!("doc:w{round}_{i}#viewer@user:writer{}", i % 97))
                        .collect::<Vec<_>>()
                },
                |texts| write_all(&engine, texts.into_iter()),
                BatchSize::PerIteration,
            )
        });
    }
    group.finish();
}

criterion_group!(benches, bench_checks, bench_lookups, bench_writes);
criterion_main!(benches);
