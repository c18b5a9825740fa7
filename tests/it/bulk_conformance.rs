//! The store conformance suite for imports (`TupleStore::bulk_load`): one revision, all or
//! nothing, CREATE exact and TOUCH replacing, duplicates refused naming the item, the log read
//! back in parts; run on every backend with the fixtures of `store_conformance`.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use zanzi::clock::FixedClock;
use zanzi::filter::RelationshipFilter;
use zanzi::revision::Revision;
use zanzi::store::{BulkError, BulkOutcome, BulkSource, Snapshot, StoreError, TupleStore, Writes};
use zanzi::transaction::{ImportMode, Update, UpdateOp};
use zanzi::tuple::Relationship;

use crate::store_conformance::{Backend, Postgres, Rocks};

macro_rules! bulk_conformance {
    ($module:ident, $backend:expr) => {
        mod $module {
            bulk_conformance!(@cases $backend;
                an_import_is_one_revision_with_its_changes_in_parts,
                a_create_of_a_live_relationship_fails_the_whole_import,
                an_expired_relationship_counts_as_absent_for_create,
                duplicates_within_one_import_are_refused_naming_the_later_one,
                a_touch_import_replaces_live_relationships,
                a_failing_source_stores_nothing,
                an_empty_import_commits_nothing,
                a_large_import_commits_whole,
            );
        }
    };
    (@cases $backend:expr; $($case:ident),* $(,)?) => {
        $(
            #[test]
            fn $case() {
                super::$case(&$backend);
            }
        )*
    };
}

bulk_conformance!(rocks, super::Rocks);
bulk_conformance!(postgres, super::Postgres);

/// Relationships from a list, failing at `fail_at` when set.
struct Listed {
    items: Vec<Relationship>,
    next: usize,
    fail_at: Option<usize>,
}

impl Listed {
    fn new(texts: &[String]) -> Self {
        Self {
            items: texts
                .iter()
                .map(|t| Relationship::parse(t).unwrap())
                .collect(),
            next: 0,
            fail_at: None,
        }
    }
}

impl BulkSource for Listed {
    fn start(&mut self, _head: &dyn Snapshot) -> Result<(), StoreError> {
        Ok(())
    }

    fn next_item(&mut self) -> Option<Result<Relationship, StoreError>> {
        let at = self.next;
        self.next += 1;
        if self.fail_at == Some(at) {
            return Some(Err(StoreError::Backend(format!("item {at} is bad"))));
        }
        self.items.get(at).cloned().map(Ok)
    }
}

fn texts(list: &[&str]) -> Vec<String> {
    list.iter().map(ToString::to_string).collect()
}

fn import(
    store: &dyn TupleStore,
    list: &[String],
    mode: ImportMode,
) -> Result<BulkOutcome, BulkError> {
    store.bulk_load(&mut Listed::new(list), mode)
}

fn touch(store: &dyn TupleStore, list: &[&str]) -> Revision {
    let updates: Vec<Update> = list
        .iter()
        .map(|t| Update {
            op: UpdateOp::Touch,
            relationship: Relationship::parse(t).unwrap(),
        })
        .collect();
    store.write_updates(&updates, &[]).unwrap()
}

fn all(store: &dyn TupleStore) -> Vec<String> {
    let snapshot = store.snapshot().unwrap();
    let mut found: Vec<String> = snapshot
        .read(&RelationshipFilter::default(), None)
        .map(|r| r.unwrap().to_string())
        .collect();
    found.sort();
    found
}

/// Asserts two long lists are equal, naming the first difference rather than printing them.
fn same(found: &[String], expected: &[String]) {
    let first = found.iter().zip(expected).position(|(f, e)| f != e);
    assert!(
        first.is_none() && found.len() == expected.len(),
        "{} found, {} expected; first difference at {first:?}: {:?} vs {:?}",
        found.len(),
        expected.len(),
        first.map(|at| &found[at]),
        first.map(|at| &expected[at]),
    );
}

fn sorted(mut list: Vec<String>) -> Vec<String> {
    list.sort();
    list
}

fn at(text: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(text)
        .unwrap()
        .with_timezone(&Utc)
}

/// Every change of the bulk revision `revision`, read part by part, as text.
fn read_parts(store: &dyn TupleStore, after: Revision) -> (Revision, u64, Vec<String>) {
    let logged = store.changes_since(after, 10).unwrap();
    assert_eq!(logged.len(), 1, "{logged:?}");
    let entry = &logged[0];
    let summary = entry.bulk.clone().expect("a bulk revision");
    assert!(entry.changes.is_empty());
    let mut changes = Vec::new();
    for part in 1..=summary.parts {
        for change in store.bulk_part(entry.revision, part).unwrap() {
            assert_eq!(change.op, UpdateOp::Touch);
            changes.push(change.relationship.to_string());
        }
    }
    assert!(store.bulk_part(entry.revision, summary.parts + 1).is_err());
    (entry.revision, summary.changes, changes)
}

pub fn an_import_is_one_revision_with_its_changes_in_parts(backend: &dyn Backend) {
    let fixture = backend.fresh();
    let store = fixture.store();
    let before = touch(store, &["doc:old#viewer@user:ann"]);
    let mut list: Vec<String> = (0..9_000)
        .map(|i| format!("doc:d{i}#viewer@user:u{}", i % 97))
        .collect();
    list.extend((0..1_000).map(|i| format!("group:g{i}#member@group:g{}#member", i + 1)));
    list.push("doc:c#viewer@user:cat[flag:{\"on\":true}]".to_string());
    list.push("doc:e#viewer@user:eve[expiration:2099-01-01T00:00:00Z]".to_string());
    let outcome = import(store, &list, ImportMode::Create).unwrap();
    assert_eq!(outcome.revision, before.next());
    assert_eq!(outcome.loaded, list.len() as u64);
    assert_eq!(store.head_revision(), outcome.revision);
    let mut expected = list.clone();
    expected.push("doc:old#viewer@user:ann".to_string());
    same(&all(store), &sorted(expected));
    // Both indexes have them.
    let snapshot = store.snapshot().unwrap();
    let subject = zanzi::tuple::SubjectRef::parse("user:u5").unwrap();
    let by_subject = snapshot
        .resources_with_subject(&subject, "doc", "viewer")
        .count();
    assert_eq!(
        by_subject,
        list.iter().filter(|t| t.ends_with("@user:u5")).count()
    );

    let (revision, changes, logged) = read_parts(store, before);
    assert_eq!(revision, outcome.revision);
    assert_eq!(changes, list.len() as u64);
    same(&sorted(logged), &sorted(list.clone()));
    let summary = store.changes_since(before, 1).unwrap()[0]
        .bulk
        .clone()
        .unwrap();
    let pairs: Vec<(&str, &str)> = summary
        .relations
        .iter()
        .map(|r| (r.resource_type.as_str(), r.relation.as_str()))
        .collect();
    assert_eq!(pairs, [("doc", "viewer"), ("group", "member")]);
    assert!(summary.parts > 1, "{summary:?}");

    // The next write follows it.
    assert_eq!(
        touch(store, &["doc:next#viewer@user:ann"]),
        outcome.revision.next()
    );
}

pub fn a_create_of_a_live_relationship_fails_the_whole_import(backend: &dyn Backend) {
    let fixture = backend.fresh();
    let store = fixture.store();
    let head = touch(store, &["doc:b#viewer@user:x", "doc:z#viewer@user:x"]);
    let list = texts(&[
        "doc:a#viewer@user:x",
        "doc:c#viewer@user:x",
        "doc:z#viewer@user:x",
        "doc:b#viewer@user:x",
    ]);
    let err = import(store, &list, ImportMode::Create).unwrap_err();
    assert!(
        matches!(&err.error, StoreError::AlreadyExists(key) if key == "doc:z#viewer@user:x"),
        "{err}"
    );
    assert_eq!(err.item, Some(2));
    assert_eq!(store.head_revision(), head);
    assert_eq!(all(store), ["doc:b#viewer@user:x", "doc:z#viewer@user:x"]);
    assert!(store.changes_since(head, 10).unwrap().is_empty());
}

pub fn an_expired_relationship_counts_as_absent_for_create(backend: &dyn Backend) {
    let clock = Arc::new(FixedClock::new(at("2030-01-01T00:00:00Z")));
    let fixture = backend.fresh_with_clock(Arc::clone(&clock));
    let store = fixture.store();
    touch(
        store,
        &["doc:a#viewer@user:x[expiration:2030-01-01T00:00:10Z]"],
    );
    clock.set(at("2030-01-01T00:00:20Z"));
    let outcome = import(store, &texts(&["doc:a#viewer@user:x"]), ImportMode::Create).unwrap();
    assert_eq!(outcome.loaded, 1);
    assert_eq!(all(store), ["doc:a#viewer@user:x"]);
}

pub fn duplicates_within_one_import_are_refused_naming_the_later_one(backend: &dyn Backend) {
    let fixture = backend.fresh();
    let store = fixture.store();
    let head = touch(store, &["doc:keep#viewer@user:x"]);
    let list = texts(&[
        "doc:a#viewer@user:x",
        "doc:b#viewer@user:x",
        "doc:c#viewer@user:x",
        "doc:b#viewer@user:x[expiration:2099-01-01T00:00:00Z]",
        "doc:a#viewer@user:x",
    ]);
    for mode in [ImportMode::Create, ImportMode::Touch] {
        let err = import(store, &list, mode).unwrap_err();
        assert!(
            matches!(&err.error, StoreError::DuplicateUpdate(key) if key == "doc:b#viewer@user:x"),
            "{err}"
        );
        assert_eq!(err.item, Some(3));
        assert_eq!(store.head_revision(), head);
        assert_eq!(all(store), ["doc:keep#viewer@user:x"]);
    }
}

pub fn a_touch_import_replaces_live_relationships(backend: &dyn Backend) {
    let fixture = backend.fresh();
    let store = fixture.store();
    let head = touch(
        store,
        &[
            "doc:a#viewer@user:x[flag:{\"on\":true}]",
            "doc:b#viewer@user:x",
        ],
    );
    let list = texts(&[
        "doc:a#viewer@user:x",
        "doc:c#viewer@user:x[expiration:2099-01-01T00:00:00Z]",
    ]);
    let outcome = import(store, &list, ImportMode::Touch).unwrap();
    assert_eq!(outcome.revision, head.next());
    assert_eq!(
        all(store),
        [
            "doc:a#viewer@user:x",
            "doc:b#viewer@user:x",
            "doc:c#viewer@user:x[expiration:2099-01-01T00:00:00Z]",
        ]
    );
    let (_, changes, logged) = read_parts(store, head);
    assert_eq!(changes, 2);
    assert_eq!(sorted(logged), sorted(list));
}

pub fn a_failing_source_stores_nothing(backend: &dyn Backend) {
    let fixture = backend.fresh();
    let store = fixture.store();
    let head = touch(store, &["doc:keep#viewer@user:x"]);
    let list: Vec<String> = (0..10).map(|i| format!("doc:d{i}#viewer@user:x")).collect();
    let mut source = Listed::new(&list);
    source.fail_at = Some(7);
    let err = store
        .bulk_load(&mut source, ImportMode::Create)
        .unwrap_err();
    assert_eq!(err.item, Some(7));
    assert!(err.to_string().contains("item 7 is bad"), "{err}");
    assert_eq!(store.head_revision(), head);
    assert_eq!(all(store), ["doc:keep#viewer@user:x"]);
}

pub fn an_empty_import_commits_nothing(backend: &dyn Backend) {
    let fixture = backend.fresh();
    let store = fixture.store();
    let head = touch(store, &["doc:keep#viewer@user:x"]);
    let outcome = import(store, &[], ImportMode::Create).unwrap();
    assert_eq!(
        outcome,
        BulkOutcome {
            revision: head,
            loaded: 0
        }
    );
    assert_eq!(store.head_revision(), head);
    assert!(store.changes_since(head, 10).unwrap().is_empty());
}

pub fn a_large_import_commits_whole(backend: &dyn Backend) {
    const COUNT: usize = 120_000;
    let fixture = backend.fresh();
    let store = fixture.store();
    let list: Vec<String> = (0..COUNT)
        .map(|i| format!("doc:d{i}#viewer@user:u{}", i % 1_000))
        .collect();
    let outcome = import(store, &list, ImportMode::Create).unwrap();
    assert_eq!(outcome.loaded, COUNT as u64);
    assert_eq!(store.head_revision(), outcome.revision);
    assert_eq!(all(store).len(), COUNT);
    let (_, changes, logged) = read_parts(store, Revision::ZERO);
    assert_eq!(changes, COUNT as u64);
    assert_eq!(logged.len(), COUNT);
    // Importing the same again with CREATE fails on the first item and changes nothing.
    let err = import(store, &list, ImportMode::Create).unwrap_err();
    assert!(matches!(err.error, StoreError::AlreadyExists(_)), "{err}");
    assert_eq!(err.item, Some(0));
    assert_eq!(store.head_revision(), outcome.revision);
}
