//! The cost of caveats on a check: the same direct check without a caveat, with a simple
//! integer caveat and with an `in_cidr` caveat, on a small store. The differences are the CEL
//! evaluation (compiled programs are cached, so compilation is not measured). Names carry
//! their parameters.

#![allow(clippy::expect_used, clippy::unwrap_used, missing_docs)]

use std::hint::black_box;
use std::sync::Arc;

use criterion::{criterion_group, criterion_main, Criterion};
use zanzi::engine::{Context, Engine, EngineConfig};
use zanzi::store::{RocksStore, StoreOptions};
use zanzi::transaction::{Update, UpdateOp};
use zanzi::tuple::{ObjectRef, Relationship, SubjectRef};

const SCHEMA: &str = "
caveat cav1(a int) { a == 1 }
caveat ip_allow(user_ip ipaddress, allowed string) { user_ip.in_cidr(allowed) }
definition user {}
definition doc {
    relation viewer: user | user with cav1 | user with ip_allow
    permission view = viewer
}";

const RELATIONSHIPS: [&str; 3] = [
    "doc:1#viewer@user:ann",
    "doc:1#viewer@user:tom[cav1]",
    r#"doc:1#viewer@user:ivy[ip_allow:{"allowed":"10.0.0.0/8"}]"#,
];

fn open_engine(dir: &std::path::Path) -> Engine {
    let store = RocksStore::open(
        dir,
        StoreOptions {
            sync_writes: false,
            ..StoreOptions::default()
        },
    )
    .expect("open bench store");
    let engine = Engine::new(Arc::new(store), EngineConfig::default()).expect("engine");
    engine.write_schema(SCHEMA).expect("schema");
    let updates: Vec<Update> = RELATIONSHIPS
        .iter()
        .map(|text| Update {
            op: UpdateOp::Touch,
            relationship: Relationship::parse(text).expect("bench relationship"),
        })
        .collect();
    engine
        .write_relationships(&updates, &[])
        .expect("bench write");
    engine
}

fn context(json: serde_json::Value) -> Context {
    json.as_object().expect("a JSON object").clone()
}

fn bench_caveated_checks(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("tempdir");
    let engine = open_engine(dir.path());
    let resource = ObjectRef::new("doc", "1").expect("doc");
    let mut group = c.benchmark_group("check/direct");
    let cases = [
        ("no_caveat", "ann", Context::new()),
        (
            "caveat/expr=a==1/context=a:1",
            "tom",
            context(serde_json::json!({ "a": 1 })),
        ),
        (
            "caveat_ip/allowed=10.0.0.0_8/user_ip=10.1.2.3",
            "ivy",
            context(serde_json::json!({ "user_ip": "10.1.2.3" })),
        ),
    ];
    for (name, user, ctx) in cases {
        let who = SubjectRef::parse(&format!("user:{user}")).expect("subject");
        let answer = engine.check(&resource, "view", &who, &ctx).expect("check");
        assert!(answer.permissionship.is_has(), "{name} must be allowed");
        group.bench_function(name, |b| {
            b.iter(|| {
                black_box(
                    engine
                        .check(
                            black_box(&resource),
                            "view",
                            black_box(&who),
                            black_box(&ctx),
                        )
                        .expect("check"),
                )
            })
        });
    }
    group.finish();
    drop(engine);
    drop(dir);
}

criterion_group!(benches, bench_caveated_checks);
criterion_main!(benches);
