//! Helpers shared by the integration tests: paths to the shared conformance data, a fresh
//! engine on a real RocksDB store in a temporary folder.

use std::path::PathBuf;
use std::sync::Arc;

use tempfile::TempDir;
use zanzi::engine::{Context, Engine, EngineConfig, Permissionship};
use zanzi::store::{RocksStore, StoreOptions};
use zanzi::transaction::{Update, UpdateOp};
use zanzi::tuple::{Relationship, SubjectRef};

/// The shared conformance folder (`../shared/conformance` beside the repository).
pub fn conformance_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/conformance")
}

/// Every `*.yaml` file directly in `dir`, sorted.
pub fn yaml_files(dir: &std::path::Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("cannot list {}: {e}", dir.display()))
        .map(|entry| entry.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    files.sort();
    files
}

/// Every engine configuration whose answers must agree: the plain walk, the check cache alone,
/// the nested-group index alone, wide arrows from the subject's side alone, and all of them
/// (the default).
pub fn configs() -> Vec<(&'static str, EngineConfig)> {
    let plain = EngineConfig::plain();
    vec![
        ("plain walk", plain.clone()),
        (
            "cache only",
            EngineConfig {
                cache_bytes: 1 << 20,
                ..plain.clone()
            },
        ),
        (
            "group index only",
            EngineConfig {
                group_index: true,
                ..plain.clone()
            },
        ),
        (
            "reverse arrows only",
            EngineConfig {
                reverse_arrows: true,
                ..plain
            },
        ),
        ("cache and group index", EngineConfig::default()),
    ]
}

/// An engine over a fresh RocksDB store; keep the `TempDir` alive as long as the engine.
pub fn engine_with(schema: &str, relationships: &[&str]) -> (Engine, TempDir) {
    engine_with_config(schema, relationships, EngineConfig::default())
}

/// [`engine_with`] under the given configuration.
pub fn engine_with_config(
    schema: &str,
    relationships: &[&str],
    config: EngineConfig,
) -> (Engine, TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let store = RocksStore::open(dir.path(), StoreOptions::default()).unwrap();
    let engine = Engine::new(Arc::new(store), config).unwrap();
    engine.write_schema(schema).unwrap();
    let updates: Vec<Update> = relationships
        .iter()
        .map(|r| Update {
            op: UpdateOp::Touch,
            relationship: Relationship::parse(r).unwrap(),
        })
        .collect();
    if !updates.is_empty() {
        engine.write_relationships(&updates, &[]).unwrap();
    }
    (engine, dir)
}

/// Runs a check written as `resource#permission@subject`.
pub fn check(engine: &Engine, text: &str) -> Permissionship {
    let rel = Relationship::parse(text).unwrap();
    engine
        .check(&rel.resource, &rel.relation, &rel.subject, &Context::new())
        .unwrap()
        .permissionship
}

/// The ids of the `resource_type` resources on which `subject` (text such as `user:ann`) has
/// `permission`, sorted.
pub fn resource_ids(
    engine: &Engine,
    resource_type: &str,
    permission: &str,
    subject: &str,
) -> Vec<String> {
    let subject = SubjectRef::parse(subject).unwrap();
    let (found, _) = engine
        .lookup_resources(resource_type, permission, &subject, &Context::new())
        .unwrap();
    let mut ids: Vec<String> = found.into_iter().map(|(id, _)| id).collect();
    ids.sort();
    ids
}

/// A random permission expression over named leaves (relations, or `parent->view`).
#[derive(Debug, Clone)]
pub enum Expr {
    /// A leaf, written as is.
    Rel(&'static str),
    /// `a + b`
    Union(Box<Expr>, Box<Expr>),
    /// `a & b`
    Inter(Box<Expr>, Box<Expr>),
    /// `a - b`
    Excl(Box<Expr>, Box<Expr>),
}

impl Expr {
    /// The expression in schema syntax, fully parenthesised.
    pub fn text(&self) -> String {
        match self {
            Expr::Rel(r) => (*r).to_string(),
            Expr::Union(a, b) => format!("({} + {})", a.text(), b.text()),
            Expr::Inter(a, b) => format!("({} & {})", a.text(), b.text()),
            Expr::Excl(a, b) => format!("({} - {})", a.text(), b.text()),
        }
    }
}

/// Random expressions of up to three levels over `leaves`.
pub fn expr_over(
    leaves: &'static [&'static str],
) -> impl proptest::strategy::Strategy<Value = Expr> {
    use proptest::prelude::*;
    let leaf = prop::sample::select(leaves).prop_map(Expr::Rel);
    leaf.prop_recursive(3, 8, 2, |inner| {
        prop_oneof![
            (inner.clone(), inner.clone()).prop_map(|(a, b)| Expr::Union(Box::new(a), Box::new(b))),
            (inner.clone(), inner.clone()).prop_map(|(a, b)| Expr::Inter(Box::new(a), Box::new(b))),
            (inner.clone(), inner).prop_map(|(a, b)| Expr::Excl(Box::new(a), Box::new(b))),
        ]
    })
}

/// A small deterministic generator for tests that need a reproducible stream of choices
/// without a property-test runner (a linear congruential generator, Knuth's MMIX constants).
pub struct Lcg(pub u64);

impl Lcg {
    /// A number in `0..n`.
    pub fn below(&mut self, n: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (self.0 >> 33) % n
    }
}
