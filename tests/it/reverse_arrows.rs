//! Wide arrows answered from the subject's side give the plain walk's answers: organizations
//! with up to a hundred role bindings (past the point where the engine turns to the subject's
//! side), bearers that are users, groups (nested, suspended) or every user, caveated and plain
//! bindings, an exclusion on top, checked for every user and project in every context.

use std::sync::Arc;

use zanzi::engine::{Context, Engine, EngineConfig, Permissionship};
use zanzi::store::{RocksStore, StoreOptions};
use zanzi::transaction::{Update, UpdateOp};
use zanzi::tuple::{ObjectRef, Relationship, SubjectRef};

const SCHEMA: &str = "
caveat only_if(allowed bool) { allowed }

definition user {}

definition group {
    relation member: user | group#member
    relation suspended: user:*
    permission active = member - suspended
}

definition role {
    relation get: user:*
}

definition binding {
    relation bearer: user | user:* | group#active
    relation role: role
    permission get = bearer & role->get
}

definition org {
    relation granted: binding | binding with only_if
    relation banned: user
    permission project_get = granted->get - banned
}

definition project {
    relation org: org
    permission get = org->project_get
}
";

const USERS: usize = 12;
const GROUPS: usize = 6;
const ORGS: usize = 3;

/// A small deterministic generator, so a failure names a seed that reproduces it.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 % n as u64) as usize
    }
}

fn world(seed: u64) -> Vec<String> {
    let mut rng = Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1);
    let mut rels = vec!["role:viewer#get@user:*".to_string()];
    for g in 0..GROUPS {
        for _ in 0..rng.below(4) {
            rels.push(format!("group:g{g}#member@user:u{}", rng.below(USERS)));
        }
        if g > 0 && rng.below(3) == 0 {
            rels.push(format!("group:g{g}#member@group:g{}#member", rng.below(g)));
        }
        if rng.below(4) == 0 {
            rels.push(format!("group:g{g}#suspended@user:*"));
        }
    }
    for o in 0..ORGS {
        // 0, a few, or many bindings: below and well past the turning point.
        let bindings = [0, 5, 40, 100][rng.below(4)];
        for b in 0..bindings {
            let id = format!("o{o}b{b}");
            let bearer = match rng.below(10) {
                0 => "user:*".to_string(),
                1..=4 => format!("group:g{}#active", rng.below(GROUPS)),
                _ => format!("user:u{}", rng.below(USERS)),
            };
            rels.push(format!("binding:{id}#bearer@{bearer}"));
            let role = if rng.below(5) == 0 {
                "nothing"
            } else {
                "viewer"
            };
            rels.push(format!("binding:{id}#role@role:{role}"));
            let caveat = if rng.below(4) == 0 { "[only_if]" } else { "" };
            rels.push(format!("org:o{o}#granted@binding:{id}{caveat}"));
        }
        if rng.below(2) == 0 {
            rels.push(format!("org:o{o}#banned@user:u{}", rng.below(USERS)));
        }
        rels.push(format!("project:p{o}#org@org:o{o}"));
    }
    rels.sort();
    rels.dedup();
    rels
}

fn engine(rels: &[String], config: EngineConfig) -> (Engine, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let store = RocksStore::open(dir.path(), StoreOptions::default()).unwrap();
    let engine = Engine::new(Arc::new(store), config).unwrap();
    engine.write_schema(SCHEMA).unwrap();
    let updates: Vec<Update> = rels
        .iter()
        .map(|text| Update {
            op: UpdateOp::Touch,
            relationship: Relationship::parse(text).unwrap(),
        })
        .collect();
    engine.write_relationships(&updates, &[]).unwrap();
    (engine, dir)
}

fn contexts() -> Vec<Context> {
    let mut allowed = Context::new();
    allowed.insert("allowed".into(), true.into());
    let mut refused = Context::new();
    refused.insert("allowed".into(), false.into());
    vec![Context::new(), allowed, refused]
}

fn answers(engine: &Engine) -> Vec<(String, Permissionship)> {
    let mut out = Vec::new();
    for context in contexts() {
        for p in 0..ORGS {
            for u in 0..USERS {
                let resource = ObjectRef::parse(&format!("project:p{p}")).unwrap();
                let subject = SubjectRef::parse(&format!("user:u{u}")).unwrap();
                let answer = engine.check(&resource, "get", &subject, &context).unwrap();
                out.push((
                    format!("project:p{p}#get@user:u{u} with {context:?}"),
                    answer.permissionship,
                ));
            }
        }
    }
    out
}

#[test]
fn wide_arrows_answered_from_the_subject_side_agree_with_the_plain_walk() {
    let reverse_only = EngineConfig {
        reverse_arrows: true,
        ..EngineConfig::plain()
    };
    let mut turned = 0;
    for seed in 1..=24 {
        let rels = world(seed);
        let (plain, _a) = engine(&rels, EngineConfig::plain());
        let (reverse, _b) = engine(&rels, reverse_only.clone());
        let (default, _c) = engine(&rels, EngineConfig::default());
        let expected = answers(&plain);
        assert_eq!(
            answers(&reverse),
            expected,
            "seed {seed}: reverse arrows alone"
        );
        assert_eq!(
            answers(&default),
            expected,
            "seed {seed}: default configuration"
        );
        let wide = rels.iter().filter(|r| r.contains("#granted@")).count() > 16;
        turned += usize::from(wide);
    }
    assert!(turned >= 10, "too few worlds had a wide arrow: {turned}");
}
