//! Schema writes are linearizable with relationship writes: writer threads write
//! relationships of relations that schema changers add and remove at the same time (through
//! two engines on one store, as two nodes would); at the end no stored relationship is one the
//! stored schema does not allow, and every engine's schema is the stored one. On RocksDB and
//! on PostgreSQL.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use zanzi::engine::{Engine, EngineConfig};
use zanzi::filter::RelationshipFilter;
use zanzi::schema;
use zanzi::store::TupleStore;
use zanzi::transaction::{Update, UpdateOp};
use zanzi::tuple::Relationship;

use crate::store_conformance::{Backend, Postgres, Rocks};
use crate::support::Lcg;

/// The relations schema changers add and remove.
const RELATIONS: [&str; 4] = ["rel_a", "rel_b", "rel_c", "rel_d"];
const WRITERS: usize = 4;
const CHANGERS: usize = 2;
const WRITES: usize = 150;
const CHANGES: usize = 30;

/// A schema with `doc#owner` and the relations of `mask` (bit i: `RELATIONS[i]`).
fn schema_text(mask: u32) -> String {
    let mut text = String::from("definition user {}\ndefinition doc {\n    relation owner: user\n");
    for (i, relation) in RELATIONS.iter().enumerate() {
        if mask & (1 << i) != 0 {
            text.push_str(&format!("    relation {relation}: user\n"));
        }
    }
    text.push_str("}\n");
    text
}

fn race(store: Arc<dyn TupleStore>, seed: u64) {
    let engines: Vec<Engine> = (0..2)
        .map(|_| Engine::new(Arc::clone(&store), EngineConfig::default()).unwrap())
        .collect();
    engines[0].write_schema(&schema_text(0b1111)).unwrap();
    let written = AtomicUsize::new(0);
    let schema_writes = AtomicUsize::new(0);
    std::thread::scope(|scope| {
        for w in 0..WRITERS {
            let (engines, written) = (&engines, &written);
            scope.spawn(move || {
                let mut random = Lcg(seed * 31 + w as u64);
                for _ in 0..WRITES {
                    let relation = RELATIONS[random.below(4) as usize];
                    let text = format!(
                        "doc:{}#{relation}@user:u{}",
                        random.below(10),
                        random.below(3)
                    );
                    let op = if random.below(5) == 0 {
                        UpdateOp::Delete
                    } else {
                        UpdateOp::Touch
                    };
                    let update = Update {
                        op,
                        relationship: Relationship::parse(&text).unwrap(),
                    };
                    let engine = &engines[random.below(2) as usize];
                    if engine.write_relationships(&[update], &[]).is_ok() {
                        written.fetch_add(1, Ordering::Relaxed);
                    }
                }
            });
        }
        for c in 0..CHANGERS {
            let (engines, schema_writes) = (&engines, &schema_writes);
            scope.spawn(move || {
                let mut random = Lcg(seed * 131 + 7 + c as u64);
                let engine = &engines[c % 2];
                for _ in 0..CHANGES {
                    let mask = random.below(16) as u32;
                    // Clear what the new schema drops, half the time (writers may put some
                    // back meanwhile; either way a schema write that would orphan a stored
                    // relationship must be refused).
                    let clear = random.below(2) == 0;
                    for (i, relation) in RELATIONS.iter().enumerate() {
                        if clear && mask & (1 << i) == 0 {
                            let filter = RelationshipFilter {
                                resource_type: Some("doc".to_string()),
                                relation: Some(relation.to_string()),
                                ..RelationshipFilter::default()
                            };
                            let _ = engine.delete_relationships(&filter, &[], None);
                        }
                    }
                    if engine.write_schema(&schema_text(mask)).is_ok() {
                        schema_writes.fetch_add(1, Ordering::Relaxed);
                    }
                }
            });
        }
    });
    let snapshot = store.snapshot().unwrap();
    let text = snapshot.schema_text().unwrap().unwrap();
    let stored = schema::compile(&text).unwrap();
    let doc = stored.definition("doc").unwrap();
    let mut count = 0;
    for found in snapshot.read(&RelationshipFilter::default(), None) {
        let relationship = found.unwrap();
        count += 1;
        assert!(
            doc.relations.contains_key(&relationship.relation),
            "seed {seed}: `{relationship}` is stored but the stored schema has no `{}`:\n{text}",
            relationship.relation
        );
    }
    for (i, engine) in engines.iter().enumerate() {
        assert_eq!(
            *engine.schema().unwrap(),
            stored,
            "seed {seed}: engine {i} holds another schema than the stored one"
        );
    }
    eprintln!(
        "seed {seed}: {} relationship writes and {} schema writes succeeded; {count} stored",
        written.load(Ordering::Relaxed),
        schema_writes.load(Ordering::Relaxed)
    );
    assert!(
        written.load(Ordering::Relaxed) > 0 && schema_writes.load(Ordering::Relaxed) > 0,
        "seed {seed}: nothing raced ({count} stored)"
    );
}

fn races(backend: &dyn Backend, rounds: u64) {
    for seed in 0..rounds {
        let fx = backend.fresh();
        race(fx.shared(), seed);
    }
}

#[test]
fn schema_changes_racing_relationship_writes_never_leave_a_disallowed_relationship_rocks() {
    races(&Rocks, 4);
}

#[test]
fn schema_changes_racing_relationship_writes_never_leave_a_disallowed_relationship_postgres() {
    races(&Postgres, 2);
}
