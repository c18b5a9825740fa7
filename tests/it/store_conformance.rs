//! The store conformance suite: what every storage backend must do, written once against the
//! `TupleStore` / `Snapshot` / `WriteTxn` traits and run on each backend (one `#[test]` per
//! case and backend, instantiated by `conformance!`). A backend is done when this passes.
//!
//! Backends: the embedded RocksDB store in a temporary folder, and the PostgreSQL store on a
//! fresh database of the test process's PostgreSQL cluster (`pg_support`). Tests of one
//! backend's own mechanics (RocksDB's write-ahead log and format version, corrupt bytes) stay
//! beside that backend.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use tempfile::TempDir;
use zanzi::clock::{Clock, FixedClock, SystemClock};
use zanzi::filter::{RelationshipFilter, SubjectFilter};
use zanzi::revision::Revision;
use zanzi::store::{
    BulkSource, PgOptions, PgStore, RelationshipIter, RocksStore, Snapshot, StoreError,
    StoreOptions, SubjectIter, TupleStore, Writes,
};
use zanzi::transaction::{
    Change, DeleteOutcome, ImportMode, Precondition, PreconditionOp, RecordPrecondition,
    RecordWrite, Transaction, Update, UpdateOp,
};
use zanzi::tuple::{ObjectRef, Relationship, SubjectRef};

use crate::pg_support::{self, TestDb};

/// Opens fresh stores of one backend.
pub trait Backend {
    /// A new, empty store whose clock is `clock`.
    fn open(&self, clock: Arc<dyn Clock>) -> Fixture;

    /// A new, empty store on the system clock.
    fn fresh(&self) -> Fixture {
        self.open(Arc::new(SystemClock))
    }

    /// A new, empty store on a clock the test moves.
    fn fresh_with_clock(&self, clock: Arc<FixedClock>) -> Fixture {
        self.open(clock)
    }
}

/// An open store and what keeps its data alive (a folder, a database).
pub struct Fixture {
    store: Arc<dyn TupleStore>,
    place: Place,
    clock: Arc<dyn Clock>,
}

enum Place {
    Rocks(TempDir),
    Postgres(TestDb),
}

impl Fixture {
    /// The store.
    pub fn store(&self) -> &dyn TupleStore {
        self.store.as_ref()
    }

    /// The store, to share with threads.
    pub fn shared(&self) -> Arc<dyn TupleStore> {
        Arc::clone(&self.store)
    }

    /// Closes the store and opens it again on the same data.
    pub fn reopen(self) -> Fixture {
        let Fixture {
            store,
            place,
            clock,
        } = self;
        drop(store);
        let store = open_place(&place, Arc::clone(&clock));
        Fixture {
            store,
            place,
            clock,
        }
    }
}

fn open_place(place: &Place, clock: Arc<dyn Clock>) -> Arc<dyn TupleStore> {
    match place {
        Place::Rocks(dir) => Arc::new(
            RocksStore::open(
                dir.path(),
                StoreOptions {
                    sync_writes: false,
                    clock,
                    ..StoreOptions::default()
                },
            )
            .unwrap(),
        ),
        Place::Postgres(db) => Arc::new(
            PgStore::open(
                &db.url,
                PgOptions {
                    clock,
                    ..PgOptions::default()
                },
            )
            .unwrap(),
        ),
    }
}

/// The embedded RocksDB store.
pub struct Rocks;

impl Backend for Rocks {
    fn open(&self, clock: Arc<dyn Clock>) -> Fixture {
        let place = Place::Rocks(tempfile::tempdir().unwrap());
        Fixture {
            store: open_place(&place, Arc::clone(&clock)),
            place,
            clock,
        }
    }
}

/// The PostgreSQL store, each fixture on a database of its own.
pub struct Postgres;

impl Backend for Postgres {
    fn open(&self, clock: Arc<dyn Clock>) -> Fixture {
        let place = Place::Postgres(pg_support::database());
        Fixture {
            store: open_place(&place, Arc::clone(&clock)),
            place,
            clock,
        }
    }
}

/// One `#[test]` per case, in a module per backend.
macro_rules! conformance {
    ($module:ident, $backend:expr) => {
        mod $module {
            conformance!(@cases $backend;
                a_write_logs_its_changes_in_request_order_whatever_the_key_order,
                create_of_an_existing_relationship_fails_wherever_it_sits_in_the_batch,
                create_touch_delete,
                both_indexes_and_the_log_agree,
                create_of_existing_fails_and_leaves_store_unchanged,
                duplicate_update_in_one_batch_is_rejected,
                unstorable_relationship_is_rejected,
                precondition_failure_leaves_store_unchanged,
                prefix_scans_do_not_bleed,
                read_with_every_filter_shape,
                read_resumes_strictly_after_the_cursor,
                delete_matching_with_limit_is_partial,
                expired_relationships_are_invisible,
                sweep_removes_expired_relationships,
                reopen_keeps_data_head_revision_and_schema,
                schema_starts_empty_and_writes_bump_the_revision,
                snapshot_isolation,
                store_id_is_random_per_folder_and_stable_across_reopen,
                transactions_write_records_and_relationships_together_or_not_at_all,
                concurrent_writers_get_distinct_revisions,
                snapshots_at_a_revision_show_exactly_that_revision,
                changes_since_carry_revision_order_and_commit_time,
                records_scan_by_prefix_in_key_order_across_pages,
                each_snapshot_knows_its_schema_text_and_revision,
                expired_lists_only_what_expired_up_to_its_limit,
                batched_reads_match_one_read_per_object,
                batched_reads_over_many_ranges_skip_gaps_and_expired_entries,
                a_large_batch_commits_whole_and_scans_across_pages,
                a_failing_body_writes_nothing,
                pruned_history_is_refused_and_the_present_stays,
                a_touch_replaces_caveat_and_expiration_and_old_snapshots_keep_them,
                history_older_than_the_retention_window_is_pruned_by_commit_time,
                the_sweep_follows_every_change_of_an_expiration,
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

conformance!(rocks, super::Rocks);
conformance!(postgres, super::Postgres);

fn rel(text: &str) -> Relationship {
    Relationship::parse(text).unwrap()
}

fn update(op: UpdateOp, text: &str) -> Update {
    Update {
        op,
        relationship: rel(text),
    }
}

fn write_schema(store: &dyn TupleStore, text: &str) -> Result<Revision, StoreError> {
    let (outcome, ()) = store.write_with(|txn| txn.put_schema(text))?;
    Ok(outcome.revision)
}

fn touch_all(store: &dyn TupleStore, texts: &[&str]) -> Revision {
    let updates: Vec<_> = texts.iter().map(|t| update(UpdateOp::Touch, t)).collect();
    store.write_updates(&updates, &[]).unwrap()
}

fn strings(iter: RelationshipIter<'_>) -> Vec<String> {
    iter.map(|r| r.unwrap().to_string()).collect()
}

fn subject_strings(iter: SubjectIter<'_>) -> Vec<String> {
    iter.map(|s| s.unwrap().to_string()).collect()
}

/// What `subjects_of_many` must answer, read the slow way: each distinct object once, in order.
fn subjects_one_object_at_a_time(
    snapshot: &dyn Snapshot,
    objects: &[ObjectRef],
    relation: &str,
) -> Vec<String> {
    let mut sorted = objects.to_vec();
    sorted.sort();
    sorted.dedup();
    sorted
        .iter()
        .flat_map(|o| strings(snapshot.subjects_of(o, relation)))
        .collect()
}

fn all(store: &dyn TupleStore) -> Vec<String> {
    strings(
        store
            .snapshot()
            .unwrap()
            .read(&RelationshipFilter::default(), None),
    )
}

/// Conformance case.
pub fn a_write_logs_its_changes_in_request_order_whatever_the_key_order(backend: &dyn Backend) {
    let fx = backend.fresh();
    let store = fx.store();
    touch_all(store, &["doc:b#viewer@user:x", "doc:y#viewer@user:a"]);
    let updates = vec![
        update(UpdateOp::Create, "doc:z#viewer@user:z"),
        update(UpdateOp::Delete, "doc:y#viewer@user:a"),
        update(UpdateOp::Create, "doc:a#viewer@user:m"),
        update(UpdateOp::Delete, "doc:never#viewer@user:written"),
        update(UpdateOp::Touch, "doc:b#viewer@user:x"),
    ];
    let revision = store.write_updates(&updates, &[]).unwrap();
    let logged = store
        .changes_since(Revision(revision.0 - 1), 10)
        .unwrap()
        .pop()
        .unwrap();
    assert_eq!(logged.revision, revision);
    let described: Vec<_> = logged
        .changes
        .iter()
        .map(|c| format!("{:?} {}", c.op, c.relationship))
        .collect();
    assert_eq!(
        described,
        [
            "Touch doc:z#viewer@user:z",
            "Delete doc:y#viewer@user:a",
            "Touch doc:a#viewer@user:m",
            "Touch doc:b#viewer@user:x",
        ]
    );
    assert_eq!(
        all(store),
        [
            "doc:a#viewer@user:m",
            "doc:b#viewer@user:x",
            "doc:z#viewer@user:z"
        ]
    );
    let reverse = read(
        store,
        &RelationshipFilter {
            subject: Some(subject_filter("user", Some("a"), None)),
            ..Default::default()
        },
    );
    assert!(
        reverse.is_empty(),
        "the reverse index lost the delete: {reverse:?}"
    );
}

/// Conformance case.
pub fn create_of_an_existing_relationship_fails_wherever_it_sits_in_the_batch(
    backend: &dyn Backend,
) {
    let fx = backend.fresh();
    let store = fx.store();
    touch_all(store, &["doc:m#viewer@user:x"]);
    let updates = vec![
        update(UpdateOp::Create, "doc:z#viewer@user:z"),
        update(UpdateOp::Create, "doc:m#viewer@user:x"),
        update(UpdateOp::Create, "doc:a#viewer@user:a"),
    ];
    let err = store.write_updates(&updates, &[]).unwrap_err();
    assert!(
        matches!(err, StoreError::AlreadyExists(ref key) if key.contains("doc:m")),
        "{err}"
    );
    assert_eq!(all(store), ["doc:m#viewer@user:x"]);
}

fn read(store: &dyn TupleStore, filter: &RelationshipFilter) -> Vec<String> {
    strings(store.snapshot().unwrap().read(filter, None))
}

fn resource_filter(resource_type: &str) -> RelationshipFilter {
    RelationshipFilter {
        resource_type: Some(resource_type.to_string()),
        ..Default::default()
    }
}

fn subject_filter(
    subject_type: &str,
    id: Option<&str>,
    relation: Option<Option<&str>>,
) -> SubjectFilter {
    SubjectFilter {
        subject_type: subject_type.to_string(),
        subject_id: id.map(str::to_string),
        relation: relation.map(|r| r.map(str::to_string)),
    }
}

fn at(text: &str) -> DateTime<Utc> {
    zanzi::tuple::parse_expiration(text).unwrap()
}

/// Conformance case.
pub fn create_touch_delete(backend: &dyn Backend) {
    let fx = backend.fresh();
    let store = fx.store();
    assert_eq!(store.head_revision(), Revision::ZERO);
    let r1 = store
        .write_updates(&[update(UpdateOp::Create, "doc:1#viewer@user:tom")], &[])
        .unwrap();
    assert_eq!(r1, Revision(1));
    assert_eq!(store.head_revision(), r1);
    let snapshot = store.snapshot().unwrap();
    assert_eq!(snapshot.revision(), r1);
    let doc1 = ObjectRef::parse("doc:1").unwrap();
    let tom = SubjectRef::parse("user:tom").unwrap();
    assert_eq!(
        snapshot.get(&doc1, "viewer", &tom).unwrap(),
        Some(rel("doc:1#viewer@user:tom"))
    );
    drop(snapshot);

    let caveated = r#"doc:1#viewer@user:tom[only_ip:{"allowed":"10.0.0.0/8"}]"#;
    let r2 = store
        .write_updates(&[update(UpdateOp::Touch, caveated)], &[])
        .unwrap();
    assert_eq!(r2, Revision(2));
    let snapshot = store.snapshot().unwrap();
    assert_eq!(
        snapshot.get(&doc1, "viewer", &tom).unwrap(),
        Some(rel(caveated))
    );
    drop(snapshot);

    let r3 = store
        .write_updates(&[update(UpdateOp::Delete, "doc:1#viewer@user:tom")], &[])
        .unwrap();
    assert_eq!(r3, Revision(3));
    assert!(store
        .snapshot()
        .unwrap()
        .get(&doc1, "viewer", &tom)
        .unwrap()
        .is_none());
    assert!(all(store).is_empty());
    // Deleting a missing relationship changes nothing and commits no revision.
    let r4 = store
        .write_updates(&[update(UpdateOp::Delete, "doc:1#viewer@user:tom")], &[])
        .unwrap();
    assert_eq!(r4, Revision(3));
    assert!(all(store).is_empty());
}

/// Conformance case.
pub fn both_indexes_and_the_log_agree(backend: &dyn Backend) {
    let fx = backend.fresh();
    let store = fx.store();
    let caveated =
        r#"doc:1#viewer@group:eng#member[only_ip:{"a":1}][expiration:2100-01-01T00:00:00Z]"#;
    touch_all(store, &[caveated, "doc:2#owner@user:tom"]);
    let snapshot = store.snapshot().unwrap();
    let eng = SubjectRef::parse("group:eng#member").unwrap();
    assert_eq!(
        strings(snapshot.resources_with_subject(&eng, "doc", "viewer")),
        vec![caveated]
    );
    let doc1 = ObjectRef::parse("doc:1").unwrap();
    assert_eq!(
        strings(snapshot.subjects_of(&doc1, "viewer")),
        vec![caveated]
    );
    store
        .write_updates(
            &[update(UpdateOp::Delete, "doc:1#viewer@group:eng#member")],
            &[],
        )
        .unwrap();

    let changes = store.changes_since(Revision::ZERO, 10).unwrap();
    assert_eq!(changes.len(), 2);
    assert_eq!(changes[0].revision, Revision(1));
    assert_eq!(
        changes[0].changes,
        vec![
            Change {
                op: UpdateOp::Touch,
                relationship: rel(caveated)
            },
            Change {
                op: UpdateOp::Touch,
                relationship: rel("doc:2#owner@user:tom")
            },
        ]
    );
    // A delete logs the relationship as it was, caveat and expiration included.
    assert_eq!(changes[1].revision, Revision(2));
    assert_eq!(
        changes[1].changes,
        vec![Change {
            op: UpdateOp::Delete,
            relationship: rel(caveated)
        }]
    );
    assert_eq!(store.changes_since(Revision(1), 10).unwrap().len(), 1);
    assert_eq!(store.changes_since(Revision::ZERO, 1).unwrap().len(), 1);
    assert!(store.changes_since(Revision(2), 10).unwrap().is_empty());
    assert!(store
        .changes_since(Revision(u64::MAX), 10)
        .unwrap()
        .is_empty());
    // The old snapshot still sees the state before the delete from the reverse index.
    assert_eq!(
        strings(snapshot.resources_with_subject(&eng, "doc", "viewer")),
        vec![caveated]
    );
}

/// Conformance case.
pub fn create_of_existing_fails_and_leaves_store_unchanged(backend: &dyn Backend) {
    let fx = backend.fresh();
    let store = fx.store();
    touch_all(store, &["doc:1#viewer@user:tom"]);
    let before = (store.head_revision(), all(store));
    let err = store
        .write_updates(
            &[
                update(UpdateOp::Create, "doc:2#viewer@user:ann"),
                update(UpdateOp::Create, "doc:1#viewer@user:tom[cav]"),
            ],
            &[],
        )
        .unwrap_err();
    assert!(
        matches!(&err, StoreError::AlreadyExists(k) if k == "doc:1#viewer@user:tom"),
        "{err}"
    );
    assert_eq!((store.head_revision(), all(store)), before);
    assert_eq!(store.changes_since(Revision::ZERO, 10).unwrap().len(), 1);
}

/// Conformance case.
pub fn duplicate_update_in_one_batch_is_rejected(backend: &dyn Backend) {
    let fx = backend.fresh();
    let store = fx.store();
    let err = store
        .write_updates(
            &[
                update(UpdateOp::Touch, "doc:1#viewer@user:tom"),
                update(UpdateOp::Delete, "doc:1#viewer@user:tom[cav]"),
            ],
            &[],
        )
        .unwrap_err();
    assert!(
        matches!(&err, StoreError::DuplicateUpdate(k) if k == "doc:1#viewer@user:tom"),
        "{err}"
    );
    assert_eq!(store.head_revision(), Revision::ZERO);
    assert!(all(store).is_empty());
}

/// Conformance case.
pub fn unstorable_relationship_is_rejected(backend: &dyn Backend) {
    let fx = backend.fresh();
    let store = fx.store();
    let mut bad = rel("doc:1#viewer@user:tom");
    bad.resource.object_id = "a\0b".to_string();
    let err = store
        .write_updates(
            &[Update {
                op: UpdateOp::Touch,
                relationship: bad,
            }],
            &[],
        )
        .unwrap_err();
    assert!(matches!(err, StoreError::Unstorable(_)), "{err}");
    assert_eq!(store.head_revision(), Revision::ZERO);
}

/// Conformance case.
pub fn precondition_failure_leaves_store_unchanged(backend: &dyn Backend) {
    let fx = backend.fresh();
    let store = fx.store();
    touch_all(store, &["doc:1#viewer@user:tom"]);
    let before = (store.head_revision(), all(store));
    let tom_on_doc1 = RelationshipFilter {
        resource_type: Some("doc".into()),
        resource_id: Some("1".into()),
        subject: Some(subject_filter("user", Some("tom"), None)),
        ..Default::default()
    };
    let must_not = Precondition {
        op: PreconditionOp::MustNotMatch,
        filter: tom_on_doc1.clone(),
    };
    let err = store
        .write_updates(
            &[update(UpdateOp::Touch, "doc:2#viewer@user:ann")],
            &[must_not],
        )
        .unwrap_err();
    assert!(
        matches!(&err, StoreError::PreconditionFailed(m) if m.contains("doc:1#viewer@user:tom")),
        "{err}"
    );
    let must = Precondition {
        op: PreconditionOp::MustMatch,
        filter: RelationshipFilter {
            resource_id: Some("9".into()),
            ..tom_on_doc1.clone()
        },
    };
    let err = store
        .write_updates(&[update(UpdateOp::Touch, "doc:2#viewer@user:ann")], &[must])
        .unwrap_err();
    assert!(matches!(err, StoreError::PreconditionFailed(_)), "{err}");
    let err = store
        .delete_matching(
            &resource_filter("doc"),
            &[Precondition {
                op: PreconditionOp::MustNotMatch,
                filter: tom_on_doc1.clone(),
            }],
            None,
        )
        .unwrap_err();
    assert!(matches!(err, StoreError::PreconditionFailed(_)), "{err}");
    assert_eq!((store.head_revision(), all(store)), before);

    // Satisfied preconditions let the write through.
    let must = Precondition {
        op: PreconditionOp::MustMatch,
        filter: tom_on_doc1,
    };
    store
        .write_updates(&[update(UpdateOp::Touch, "doc:2#viewer@user:ann")], &[must])
        .unwrap();
    assert_eq!(all(store).len(), 2);
}

/// Conformance case.
pub fn prefix_scans_do_not_bleed(backend: &dyn Backend) {
    let fx = backend.fresh();
    let store = fx.store();
    touch_all(
        store,
        &[
            "doc:1#viewer@user:tom",
            "doc:10#viewer@user:tom",
            "doc:1#viewers@user:tom",
            "docs:1#viewer@user:tom",
            "doc:1#viewer@user:tommy",
            "doc:1#viewer@user:tom#friend",
        ],
    );
    let snapshot = store.snapshot().unwrap();
    let doc1 = ObjectRef::parse("doc:1").unwrap();
    assert_eq!(
        strings(snapshot.subjects_of(&doc1, "viewer")),
        vec![
            "doc:1#viewer@user:tom",
            "doc:1#viewer@user:tom#friend",
            "doc:1#viewer@user:tommy"
        ]
    );
    assert_eq!(
        subject_strings(snapshot.subject_refs_of(&doc1, "viewer")),
        vec!["user:tom", "user:tom#friend", "user:tommy"]
    );
    let tom = SubjectRef::parse("user:tom").unwrap();
    assert_eq!(
        strings(snapshot.resources_with_subject(&tom, "doc", "viewer")),
        vec!["doc:1#viewer@user:tom", "doc:10#viewer@user:tom"]
    );
    let exact = RelationshipFilter {
        resource_type: Some("doc".into()),
        resource_id: Some("1".into()),
        relation: Some("viewer".into()),
        subject: Some(subject_filter("user", Some("tom"), Some(None))),
        ..Default::default()
    };
    assert_eq!(read(store, &exact), vec!["doc:1#viewer@user:tom"]);
    assert_eq!(
        read(
            store,
            &RelationshipFilter {
                resource_id: Some("1".into()),
                ..resource_filter("doc")
            }
        ),
        vec![
            "doc:1#viewer@user:tom",
            "doc:1#viewer@user:tom#friend",
            "doc:1#viewer@user:tommy",
            "doc:1#viewers@user:tom",
        ]
    );
}

fn seed_for_reads(store: &dyn TupleStore) {
    touch_all(
        store,
        &[
            "doc:a1#viewer@user:tom",
            "doc:a2#viewer@user:ann",
            "doc:a2#owner@user:tom",
            "doc:b1#viewer@group:eng#member",
            "doc:b1#viewer@user:*",
            "folder:a1#viewer@user:tom",
            "group:eng#member@user:tom",
        ],
    );
}

/// Conformance case.
pub fn read_with_every_filter_shape(backend: &dyn Backend) {
    let fx = backend.fresh();
    let store = fx.store();
    seed_for_reads(store);
    let doc = resource_filter("doc");
    assert_eq!(
        read(store, &doc),
        vec![
            "doc:a1#viewer@user:tom",
            "doc:a2#owner@user:tom",
            "doc:a2#viewer@user:ann",
            "doc:b1#viewer@group:eng#member",
            "doc:b1#viewer@user:*",
        ]
    );
    let by_id = RelationshipFilter {
        resource_id: Some("a2".into()),
        ..doc.clone()
    };
    assert_eq!(
        read(store, &by_id),
        vec!["doc:a2#owner@user:tom", "doc:a2#viewer@user:ann"]
    );
    let by_prefix = RelationshipFilter {
        resource_id_prefix: Some("a".into()),
        ..doc.clone()
    };
    assert_eq!(read(store, &by_prefix).len(), 3);
    let by_relation = RelationshipFilter {
        relation: Some("viewer".into()),
        ..doc.clone()
    };
    assert_eq!(read(store, &by_relation).len(), 4);
    let by_prefix_relation = RelationshipFilter {
        relation: Some("viewer".into()),
        ..by_prefix.clone()
    };
    assert_eq!(
        read(store, &by_prefix_relation),
        vec!["doc:a1#viewer@user:tom", "doc:a2#viewer@user:ann"]
    );
    let with_subject_type = RelationshipFilter {
        subject: Some(subject_filter("user", None, None)),
        ..doc.clone()
    };
    assert_eq!(read(store, &with_subject_type).len(), 4);
    let subject_set = RelationshipFilter {
        subject: Some(subject_filter("group", Some("eng"), Some(Some("member")))),
        ..doc.clone()
    };
    assert_eq!(
        read(store, &subject_set),
        vec!["doc:b1#viewer@group:eng#member"]
    );
    let wildcard = RelationshipFilter {
        subject: Some(subject_filter("user", Some("*"), None)),
        ..doc.clone()
    };
    assert_eq!(read(store, &wildcard), vec!["doc:b1#viewer@user:*"]);

    // Subject-only filters use the reverse index: reverse-key order (resource type,
    // relation, id).
    let tom_anywhere = RelationshipFilter {
        subject: Some(subject_filter("user", Some("tom"), None)),
        ..Default::default()
    };
    assert_eq!(
        read(store, &tom_anywhere),
        vec![
            "doc:a2#owner@user:tom",
            "doc:a1#viewer@user:tom",
            "folder:a1#viewer@user:tom",
            "group:eng#member@user:tom",
        ]
    );
    let tom_viewer = RelationshipFilter {
        relation: Some("viewer".into()),
        ..tom_anywhere.clone()
    };
    assert_eq!(
        read(store, &tom_viewer),
        vec!["doc:a1#viewer@user:tom", "folder:a1#viewer@user:tom"]
    );
    let groups_as_sets = RelationshipFilter {
        subject: Some(subject_filter("group", None, Some(Some("member")))),
        ..Default::default()
    };
    assert_eq!(
        read(store, &groups_as_sets),
        vec!["doc:b1#viewer@group:eng#member"]
    );
    let direct_users = RelationshipFilter {
        subject: Some(subject_filter("user", None, Some(None))),
        ..Default::default()
    };
    assert_eq!(read(store, &direct_users).len(), 6);

    // No resource type, no subject: a full scan, optionally filtered.
    assert_eq!(all(store).len(), 7);
    let viewer_anywhere = RelationshipFilter {
        relation: Some("viewer".into()),
        ..Default::default()
    };
    assert_eq!(read(store, &viewer_anywhere).len(), 5);
    let ids_anywhere = RelationshipFilter {
        resource_id: Some("a1".into()),
        ..Default::default()
    };
    assert_eq!(
        read(store, &ids_anywhere),
        vec!["doc:a1#viewer@user:tom", "folder:a1#viewer@user:tom"]
    );
    assert!(read(store, &resource_filter("nothing")).is_empty());
}

/// Conformance case.
pub fn read_resumes_strictly_after_the_cursor(backend: &dyn Backend) {
    let fx = backend.fresh();
    let store = fx.store();
    seed_for_reads(store);
    for filter in [
        RelationshipFilter::default(),
        resource_filter("doc"),
        RelationshipFilter {
            resource_id_prefix: Some("a".into()),
            ..resource_filter("doc")
        },
        RelationshipFilter {
            subject: Some(subject_filter("user", Some("tom"), None)),
            ..Default::default()
        },
    ] {
        let everything = read(store, &filter);
        let snapshot = store.snapshot().unwrap();
        // Page through two at a time.
        let mut paged = Vec::new();
        let mut cursor: Option<Relationship> = None;
        loop {
            let page: Vec<Relationship> = snapshot
                .read(&filter, cursor.as_ref())
                .take(2)
                .map(Result::unwrap)
                .collect();
            if page.is_empty() {
                break;
            }
            paged.extend(page.iter().map(ToString::to_string));
            cursor = page.last().cloned();
        }
        assert_eq!(paged, everything, "{filter:?}");
    }
    // A cursor that is not stored (or precedes the prefix) still orders correctly.
    let snapshot = store.snapshot().unwrap();
    let cursor = rel("doc:a2#zzz@user:nobody");
    assert_eq!(
        strings(snapshot.read(&resource_filter("doc"), Some(&cursor))),
        vec!["doc:b1#viewer@group:eng#member", "doc:b1#viewer@user:*"]
    );
    let before_prefix = rel("aaa:x#viewer@user:tom");
    assert_eq!(
        strings(snapshot.read(&resource_filter("doc"), Some(&before_prefix))).len(),
        5
    );
}

/// Conformance case.
pub fn delete_matching_with_limit_is_partial(backend: &dyn Backend) {
    let fx = backend.fresh();
    let store = fx.store();
    seed_for_reads(store);
    let doc = resource_filter("doc");
    let outcome = store.delete_matching(&doc, &[], Some(2)).unwrap();
    assert_eq!(
        outcome,
        DeleteOutcome {
            revision: Revision(2),
            deleted: 2,
            partial: true
        }
    );
    assert_eq!(read(store, &doc).len(), 3);
    let outcome = store.delete_matching(&doc, &[], Some(3)).unwrap();
    assert_eq!(
        outcome,
        DeleteOutcome {
            revision: Revision(3),
            deleted: 3,
            partial: false
        }
    );
    let outcome = store.delete_matching(&doc, &[], Some(3)).unwrap();
    assert_eq!(
        outcome,
        DeleteOutcome {
            revision: Revision(3),
            deleted: 0,
            partial: false
        }
    );
    assert_eq!(
        all(store),
        vec!["folder:a1#viewer@user:tom", "group:eng#member@user:tom"]
    );
    // Deleted from the reverse index too.
    let tom = RelationshipFilter {
        subject: Some(subject_filter("user", Some("tom"), None)),
        ..Default::default()
    };
    assert_eq!(read(store, &tom).len(), 2);
    let outcome = store.delete_matching(&tom, &[], None).unwrap();
    assert_eq!(
        outcome,
        DeleteOutcome {
            revision: Revision(4),
            deleted: 2,
            partial: false
        }
    );
    assert!(all(store).is_empty());
    let log = store.changes_since(Revision(3), 10).unwrap();
    assert_eq!(log.len(), 1);
    assert!(log[0].changes.iter().all(|c| c.op == UpdateOp::Delete));
}

/// Conformance case.
pub fn expired_relationships_are_invisible(backend: &dyn Backend) {
    let clock = Arc::new(FixedClock::new(at("2030-01-01T00:00:00Z")));
    let fx = backend.fresh_with_clock(clock.clone());
    let store = fx.store();
    let expiring = "doc:1#viewer@user:tom[expiration:2030-06-01T00:00:00Z]";
    touch_all(store, &[expiring, "doc:1#viewer@user:ann"]);
    let doc1 = ObjectRef::parse("doc:1").unwrap();
    let tom = SubjectRef::parse("user:tom").unwrap();
    assert!(store
        .snapshot()
        .unwrap()
        .get(&doc1, "viewer", &tom)
        .unwrap()
        .is_some());
    assert_eq!(all(store).len(), 2);

    // Expiration is inclusive: at the instant itself the relationship is gone.
    clock.set(at("2030-06-01T00:00:00Z"));
    let snapshot = store.snapshot().unwrap();
    assert!(snapshot.get(&doc1, "viewer", &tom).unwrap().is_none());
    assert_eq!(
        strings(snapshot.subjects_of(&doc1, "viewer")),
        vec!["doc:1#viewer@user:ann"]
    );
    assert!(strings(snapshot.resources_with_subject(&tom, "doc", "viewer")).is_empty());
    assert_eq!(all(store), vec!["doc:1#viewer@user:ann"]);
    drop(snapshot);

    // An expired relationship does not satisfy MUST_MATCH and may be re-created.
    let tom_filter = RelationshipFilter {
        subject: Some(subject_filter("user", Some("tom"), None)),
        ..Default::default()
    };
    let must = Precondition {
        op: PreconditionOp::MustMatch,
        filter: tom_filter.clone(),
    };
    assert!(matches!(
        store.write_updates(&[update(UpdateOp::Touch, "doc:2#viewer@user:ann")], &[must]),
        Err(StoreError::PreconditionFailed(_))
    ));
    let renewed = "doc:1#viewer@user:tom[expiration:2031-01-01T00:00:00Z]";
    store
        .write_updates(&[update(UpdateOp::Create, renewed)], &[])
        .unwrap();
    assert_eq!(read(store, &tom_filter), vec![renewed]);
    assert!(matches!(
        store.write_updates(&[update(UpdateOp::Create, "doc:1#viewer@user:tom")], &[]),
        Err(StoreError::AlreadyExists(_))
    ));
}

/// Conformance case.
pub fn sweep_removes_expired_relationships(backend: &dyn Backend) {
    let clock = Arc::new(FixedClock::new(at("2030-01-01T00:00:00Z")));
    let fx = backend.fresh_with_clock(clock.clone());
    let store = fx.store();
    touch_all(
        store,
        &[
            "doc:1#viewer@user:tom[expiration:2030-02-01T00:00:00Z]",
            "doc:2#viewer@user:tom[expiration:2030-03-01T00:00:00Z]",
            "doc:3#viewer@user:tom",
        ],
    );
    assert_eq!(store.sweep_expired().unwrap(), 0);
    assert_eq!(store.head_revision(), Revision(1));
    clock.set(at("2030-02-15T00:00:00Z"));
    assert_eq!(store.sweep_expired().unwrap(), 1);
    assert_eq!(store.head_revision(), Revision(2));
    let log = store.changes_since(Revision(1), 10).unwrap();
    assert_eq!(log.len(), 1);
    assert_eq!(log[0].revision, Revision(2));
    assert_eq!(
        log[0].changes,
        vec![Change {
            op: UpdateOp::Delete,
            relationship: rel("doc:1#viewer@user:tom[expiration:2030-02-01T00:00:00Z]"),
        }]
    );
    // Gone from both indexes, even for a clock set back in time.
    clock.set(at("2029-01-01T00:00:00Z"));
    assert_eq!(all(store).len(), 2);
    let tom = SubjectRef::parse("user:tom").unwrap();
    let snapshot = store.snapshot().unwrap();
    assert_eq!(
        strings(snapshot.resources_with_subject(&tom, "doc", "viewer")).len(),
        2
    );
}

/// Conformance case.
pub fn reopen_keeps_data_head_revision_and_schema(backend: &dyn Backend) {
    let fx = backend.fresh();
    {
        let store = fx.store();
        touch_all(
            store,
            &["doc:1#viewer@user:tom", "doc:2#viewer@group:eng#member"],
        );
        assert_eq!(
            write_schema(store, "definition user {}").unwrap(),
            Revision(2)
        );
        store
            .write_updates(&[update(UpdateOp::Delete, "doc:1#viewer@user:tom")], &[])
            .unwrap();
    }
    let fx = fx.reopen();
    let store = fx.store();
    assert_eq!(store.head_revision(), Revision(3));
    assert_eq!(store.snapshot().unwrap().revision(), Revision(3));
    assert_eq!(all(store), vec!["doc:2#viewer@group:eng#member"]);
    assert_eq!(
        store.read_schema().unwrap().as_deref(),
        Some("definition user {}")
    );
    // Every revision has a log entry; the schema write has no relationship changes.
    let log = store.changes_since(Revision::ZERO, 10).unwrap();
    let revisions: Vec<_> = log
        .iter()
        .map(|e| (e.revision.0, e.changes.len()))
        .collect();
    assert_eq!(revisions, vec![(1, 2), (2, 0), (3, 1)]);
    // A write that changes nothing commits no revision.
    assert_eq!(store.write_updates(&[], &[]).unwrap(), Revision(3));
}

/// Conformance case.
pub fn schema_starts_empty_and_writes_bump_the_revision(backend: &dyn Backend) {
    let fx = backend.fresh();
    let store = fx.store();
    assert_eq!(store.read_schema().unwrap(), None);
    assert_eq!(write_schema(store, "a").unwrap(), Revision(1));
    assert_eq!(write_schema(store, "b").unwrap(), Revision(2));
    assert_eq!(store.read_schema().unwrap().as_deref(), Some("b"));
}

/// Conformance case.
pub fn snapshot_isolation(backend: &dyn Backend) {
    let fx = backend.fresh();
    let store = fx.store();
    touch_all(store, &["doc:1#viewer@user:tom"]);
    let before = store.snapshot().unwrap();
    touch_all(store, &["doc:1#viewer@user:ann"]);
    store
        .write_updates(&[update(UpdateOp::Delete, "doc:1#viewer@user:tom")], &[])
        .unwrap();
    assert_eq!(before.revision(), Revision(1));
    assert_eq!(
        strings(before.read(&RelationshipFilter::default(), None)),
        vec!["doc:1#viewer@user:tom"]
    );
    let doc1 = ObjectRef::parse("doc:1").unwrap();
    let ann = SubjectRef::parse("user:ann").unwrap();
    assert!(before.get(&doc1, "viewer", &ann).unwrap().is_none());
    let after = store.snapshot().unwrap();
    assert_eq!(after.revision(), Revision(3));
    assert_eq!(
        strings(after.subjects_of(&doc1, "viewer")),
        vec!["doc:1#viewer@user:ann"]
    );
}

/// Conformance case.
pub fn store_id_is_random_per_folder_and_stable_across_reopen(backend: &dyn Backend) {
    let first = backend.fresh();
    let second = backend.fresh();
    let id = first.store().store_id();
    assert_ne!(id, second.store().store_id());
    assert_eq!(id, first.reopen().store().store_id());
}

fn record_write(keyspace: &str, key: &str, value: Option<&str>) -> RecordWrite {
    RecordWrite {
        keyspace: keyspace.to_string(),
        key: key.to_string(),
        value: value.map(|v| v.as_bytes().to_vec()),
    }
}

fn records_of(snapshot: &dyn Snapshot, keyspace: &str, prefix: &str) -> Vec<(String, String)> {
    snapshot
        .records(keyspace, prefix)
        .map(|item| {
            let (key, value) = item.unwrap();
            (key, String::from_utf8(value).unwrap())
        })
        .collect()
}

/// Conformance case.
pub fn transactions_write_records_and_relationships_together_or_not_at_all(backend: &dyn Backend) {
    let fx = backend.fresh();
    let store = fx.store();
    let before = store.snapshot().unwrap();
    let revision = store
        .transact(&Transaction {
            updates: vec![update(UpdateOp::Touch, "app/group:g1#member@app/user:ann")],
            records: vec![
                record_write("group", "g1", Some("{\"name\":\"eng\"}")),
                record_write("group_name", "o1/eng", Some("g1")),
            ],
            record_preconditions: vec![RecordPrecondition {
                keyspace: "group_name".into(),
                key: "o1/eng".into(),
                must_exist: false,
            }],
            ..Transaction::default()
        })
        .unwrap();
    assert_eq!(revision, Revision(1));
    // The older snapshot sees neither part; the new one sees both.
    assert_eq!(before.record("group", "g1").unwrap(), None);
    let after = store.snapshot().unwrap();
    assert_eq!(
        after.record("group", "g1").unwrap().as_deref(),
        Some(&b"{\"name\":\"eng\"}"[..])
    );
    assert_eq!(
        records_of(after.as_ref(), "group", ""),
        [("g1".to_string(), "{\"name\":\"eng\"}".to_string())]
    );
    assert_eq!(records_of(after.as_ref(), "group_name", "o1/").len(), 1);
    assert_eq!(records_of(after.as_ref(), "group_name", "o2/").len(), 0);
    assert_eq!(all(store), ["app/group:g1#member@app/user:ann"]);

    // A failing record precondition writes nothing, relationships included.
    let err = store
        .transact(&Transaction {
            updates: vec![update(UpdateOp::Touch, "app/group:g2#member@app/user:bob")],
            records: vec![record_write("group_name", "o1/eng", Some("g2"))],
            record_preconditions: vec![RecordPrecondition {
                keyspace: "group_name".into(),
                key: "o1/eng".into(),
                must_exist: false,
            }],
            ..Transaction::default()
        })
        .unwrap_err();
    assert!(
        matches!(err, StoreError::RecordConflict { exists: true, .. }),
        "{err}"
    );
    assert_eq!(store.head_revision(), Revision(1));
    assert_eq!(all(store).len(), 1);

    // A records-only transaction still gets its own revision; deletes remove records.
    let revision = store
        .transact(&Transaction {
            records: vec![record_write("group", "g1", None)],
            ..Transaction::default()
        })
        .unwrap();
    assert_eq!(revision, Revision(2));
    assert_eq!(
        store.snapshot().unwrap().record("group", "g1").unwrap(),
        None
    );
    assert!(store.changes_since(Revision(1), 10).unwrap()[0]
        .changes
        .is_empty());
}

/// Conformance case.
pub fn concurrent_writers_get_distinct_revisions(backend: &dyn Backend) {
    let fx = backend.fresh();
    let store = fx.shared();
    let handles: Vec<_> = (0..4)
        .map(|t| {
            let store = Arc::clone(&store);
            std::thread::spawn(move || {
                (0..25)
                    .map(|i| {
                        let text = format!("doc:t{t}i{i}#viewer@user:tom");
                        store
                            .write_updates(&[update(UpdateOp::Create, &text)], &[])
                            .unwrap()
                            .0
                    })
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    let mut revisions: Vec<u64> = handles
        .into_iter()
        .flat_map(|h| h.join().unwrap())
        .collect();
    revisions.sort_unstable();
    assert_eq!(revisions, (1..=100).collect::<Vec<_>>());
    assert_eq!(all(store.as_ref()).len(), 100);
    let snapshot = store.snapshot().unwrap();
    assert_eq!(snapshot.revision(), Revision(100));
}
/// Conformance case.
pub fn snapshots_at_a_revision_show_exactly_that_revision(backend: &dyn Backend) {
    let fx = backend.fresh();
    let store = fx.store();
    let r1 = touch_all(store, &["doc:1#viewer@user:tom", "doc:2#viewer@user:ann"]);
    let r2 = store
        .write_updates(&[update(UpdateOp::Delete, "doc:1#viewer@user:tom")], &[])
        .unwrap();
    let r3 = touch_all(store, &["doc:3#viewer@user:bob"]);
    let at = |revision: Revision| {
        let snapshot = store.snapshot_at(revision).unwrap();
        assert_eq!(snapshot.revision(), revision);
        strings(snapshot.read(&RelationshipFilter::default(), None))
    };
    assert_eq!(at(r1), ["doc:1#viewer@user:tom", "doc:2#viewer@user:ann"]);
    assert_eq!(at(r2), ["doc:2#viewer@user:ann"]);
    assert_eq!(at(r3), ["doc:2#viewer@user:ann", "doc:3#viewer@user:bob"]);
    // The reverse index answers at the revision too.
    let tom = SubjectRef::parse("user:tom").unwrap();
    let old = store.snapshot_at(r1).unwrap();
    assert_eq!(
        strings(old.resources_with_subject(&tom, "doc", "viewer")),
        ["doc:1#viewer@user:tom"]
    );
    let doc1 = ObjectRef::parse("doc:1").unwrap();
    assert!(old.get(&doc1, "viewer", &tom).unwrap().is_some());
    assert!(store
        .snapshot_at(r2)
        .unwrap()
        .get(&doc1, "viewer", &tom)
        .unwrap()
        .is_none());
    // A revision not committed yet is refused, and says what the head is.
    let future = store.snapshot_at(Revision(r3.0 + 5));
    match future {
        Err(StoreError::RevisionUnavailable {
            requested, head, ..
        }) => {
            assert_eq!((requested, head), (Revision(r3.0 + 5), r3));
        }
        Err(other) => panic!("unexpected error {other}"),
        Ok(_) => panic!("a future revision was readable"),
    }
}

/// Conformance case.
pub fn changes_since_carry_revision_order_and_commit_time(backend: &dyn Backend) {
    let clock = Arc::new(FixedClock::new(at("2030-01-01T00:00:00Z")));
    let fx = backend.fresh_with_clock(clock.clone());
    let store = fx.store();
    touch_all(store, &["doc:1#viewer@user:tom"]);
    clock.set(at("2030-01-01T00:00:05.250Z"));
    write_schema(store, "definition user {}").unwrap();
    clock.set(at("2030-01-02T00:00:00Z"));
    store
        .transact(&Transaction {
            records: vec![record_write("k", "a", Some("1"))],
            ..Transaction::default()
        })
        .unwrap();
    let log = store.changes_since(Revision::ZERO, 100).unwrap();
    let summary: Vec<_> = log
        .iter()
        .map(|e| {
            (
                e.revision.0,
                e.committed_at,
                e.changes.len(),
                e.schema.clone(),
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            (1, at("2030-01-01T00:00:00Z"), 1, None),
            (
                2,
                at("2030-01-01T00:00:05.250Z"),
                0,
                Some("definition user {}".to_string())
            ),
            (3, at("2030-01-02T00:00:00Z"), 0, None),
        ]
    );
    let paged: Vec<u64> = store
        .changes_since(Revision(1), 1)
        .unwrap()
        .iter()
        .map(|e| e.revision.0)
        .collect();
    assert_eq!(paged, [2]);
    assert!(store.changes_since(Revision(3), 10).unwrap().is_empty());
}

/// Conformance case.
pub fn records_scan_by_prefix_in_key_order_across_pages(backend: &dyn Backend) {
    let fx = backend.fresh();
    let store = fx.store();
    // More records than a first page holds; keys that share prefixes, and a keyspace beside.
    let mut records: Vec<RecordWrite> = (0..300)
        .map(|i| record_write("org", &format!("o1/{i:04}"), Some(&i.to_string())))
        .collect();
    records.push(record_write("org", "o1", Some("exact")));
    records.push(record_write("org", "o10/x", Some("other org")));
    records.push(record_write("org", "o2/0001", Some("o2")));
    records.push(record_write("orgs", "o1/0001", Some("other keyspace")));
    records.push(record_write("org", "o1/é", Some("not ascii")));
    store
        .transact(&Transaction {
            records,
            ..Transaction::default()
        })
        .unwrap();
    let snapshot = store.snapshot().unwrap();
    let found = records_of(snapshot.as_ref(), "org", "o1/");
    assert_eq!(found.len(), 301);
    assert_eq!(found[0], ("o1/0000".to_string(), "0".to_string()));
    assert_eq!(found[299], ("o1/0299".to_string(), "299".to_string()));
    assert_eq!(found[300], ("o1/é".to_string(), "not ascii".to_string()));
    let keys: Vec<&String> = found.iter().map(|(k, _)| k).collect();
    let mut sorted = keys.clone();
    sorted.sort();
    assert_eq!(keys, sorted, "records come back in byte order");
    assert_eq!(records_of(snapshot.as_ref(), "org", "").len(), 304);
    assert_eq!(records_of(snapshot.as_ref(), "org", "o1").len(), 303);
    assert!(records_of(snapshot.as_ref(), "nothing", "").is_empty());
    assert_eq!(
        snapshot.record("org", "o1").unwrap().as_deref(),
        Some(&b"exact"[..])
    );
    // Deleting and rewriting: the older snapshot keeps what it saw.
    store
        .transact(&Transaction {
            records: vec![
                record_write("org", "o1", None),
                record_write("org", "o2/0001", Some("changed")),
            ],
            ..Transaction::default()
        })
        .unwrap();
    let now = store.snapshot().unwrap();
    assert_eq!(now.record("org", "o1").unwrap(), None);
    assert_eq!(
        now.record("org", "o2/0001").unwrap().as_deref(),
        Some(&b"changed"[..])
    );
    assert_eq!(
        snapshot.record("org", "o2/0001").unwrap().as_deref(),
        Some(&b"o2"[..])
    );
    // Keyspaces must be named, and keys free of NUL bytes.
    assert!(matches!(
        store.transact(&Transaction {
            records: vec![record_write("", "k", Some("v"))],
            ..Transaction::default()
        }),
        Err(StoreError::UnstorableRecord(_))
    ));
    assert!(matches!(
        store.transact(&Transaction {
            records: vec![record_write("org", "a\0b", Some("v"))],
            ..Transaction::default()
        }),
        Err(StoreError::UnstorableRecord(_))
    ));
}

/// Conformance case.
pub fn each_snapshot_knows_its_schema_text_and_revision(backend: &dyn Backend) {
    let fx = backend.fresh();
    let store = fx.store();
    let empty = store.snapshot().unwrap();
    assert_eq!(empty.schema_revision(), Revision::ZERO);
    assert_eq!(empty.schema_text().unwrap(), None);
    let first = write_schema(store, "definition user {}").unwrap();
    let data = touch_all(store, &["doc:1#viewer@user:tom"]);
    let second = write_schema(store, "definition user {}\ndefinition doc {}").unwrap();
    assert_eq!(
        (first, data, second),
        (Revision(1), Revision(2), Revision(3))
    );
    let at_data = store.snapshot_at(data).unwrap();
    assert_eq!(at_data.schema_revision(), first);
    assert_eq!(
        at_data.schema_text().unwrap().as_deref(),
        Some("definition user {}")
    );
    let head = store.snapshot().unwrap();
    assert_eq!(head.schema_revision(), second);
    assert_eq!(
        head.schema_text().unwrap().as_deref(),
        Some("definition user {}\ndefinition doc {}")
    );
    // A write transaction's head view knows it too.
    let (_, seen) = store
        .write_with(|txn| {
            Ok::<_, StoreError>((txn.head().schema_revision(), txn.head().schema_text()?))
        })
        .unwrap();
    assert_eq!(seen.0, second);
    assert!(seen.1.unwrap().contains("definition doc"));
}

/// Conformance case.
pub fn expired_lists_only_what_expired_up_to_its_limit(backend: &dyn Backend) {
    let clock = Arc::new(FixedClock::new(at("2030-01-01T00:00:00Z")));
    let fx = backend.fresh_with_clock(clock.clone());
    let store = fx.store();
    touch_all(
        store,
        &[
            "doc:1#viewer@user:a[expiration:2030-02-01T00:00:00Z]",
            "doc:2#viewer@user:b[expiration:2030-03-01T00:00:00Z]",
            "doc:3#viewer@user:c[expiration:2030-03-01T00:00:00.000000001Z]",
            "doc:4#viewer@user:d",
        ],
    );
    assert!(store.snapshot().unwrap().expired(10).unwrap().is_empty());
    clock.set(at("2030-03-01T00:00:00Z"));
    let snapshot = store.snapshot().unwrap();
    let mut expired: Vec<String> = snapshot
        .expired(10)
        .unwrap()
        .iter()
        .map(ToString::to_string)
        .collect();
    expired.sort();
    assert_eq!(
        expired,
        [
            "doc:1#viewer@user:a[expiration:2030-02-01T00:00:00Z]",
            "doc:2#viewer@user:b[expiration:2030-03-01T00:00:00Z]",
        ]
    );
    assert_eq!(snapshot.expired(1).unwrap().len(), 1);
    // One nanosecond later, the third one has expired too; reads hide all three.
    assert_eq!(
        all(store),
        [
            "doc:3#viewer@user:c[expiration:2030-03-01T00:00:00.000000001Z]",
            "doc:4#viewer@user:d"
        ]
    );
    clock.set(at("2030-03-01T00:00:00.000000001Z"));
    assert_eq!(store.snapshot().unwrap().expired(10).unwrap().len(), 3);
    assert_eq!(all(store), ["doc:4#viewer@user:d"]);
    // A deleted relationship is not listed, whatever its expiration.
    store
        .write_updates(&[update(UpdateOp::Delete, "doc:1#viewer@user:a")], &[])
        .unwrap();
    assert_eq!(store.snapshot().unwrap().expired(10).unwrap().len(), 2);
}

/// Conformance case.
pub fn batched_reads_match_one_read_per_object(backend: &dyn Backend) {
    let fx = backend.fresh();
    let store = fx.store();
    touch_all(
        store,
        &[
            "group:a#member@user:tom",
            "group:a#member@user:ann",
            "group:a#member@group:b#member",
            "group:b#member@user:tom",
            "group:c#member@user:bob",
            "group:c#admin@user:bob",
            "team:a#member@user:tom",
            "doc:1#viewer@group:a#member",
            "doc:2#viewer@group:b#member",
            "doc:3#viewer@user:tom",
            "folder:1#viewer@user:tom",
        ],
    );
    let snapshot = store.snapshot().unwrap();
    let objects: Vec<ObjectRef> = ["group:c", "group:a", "team:a", "group:zz", "group:a"]
        .iter()
        .map(|t| ObjectRef::parse(t).unwrap())
        .collect();
    let looped = subjects_one_object_at_a_time(snapshot.as_ref(), &objects, "member");
    assert_eq!(
        strings(snapshot.subjects_of_many(&objects, "member")),
        looped
    );
    assert_eq!(looped.len(), 5);
    assert!(strings(snapshot.subjects_of_many(&[], "member")).is_empty());

    let subjects: Vec<SubjectRef> = [
        "user:tom",
        "group:a#member",
        "group:b#member",
        "user:nobody",
        "user:tom",
    ]
    .iter()
    .map(|t| SubjectRef::parse(t).unwrap())
    .collect();
    let mut sorted = subjects.clone();
    sorted.sort();
    sorted.dedup();
    let looped: Vec<String> = sorted
        .iter()
        .flat_map(|s| strings(snapshot.resources_with_subject(s, "doc", "viewer")))
        .collect();
    assert_eq!(
        strings(snapshot.resources_with_subjects(&subjects, "doc", "viewer")),
        looped
    );
    assert_eq!(looped.len(), 3);
    assert!(strings(snapshot.resources_with_subjects(&[], "doc", "viewer")).is_empty());
}

/// Conformance case.
pub fn batched_reads_over_many_ranges_skip_gaps_and_expired_entries(backend: &dyn Backend) {
    let clock = Arc::new(FixedClock::new(at("2030-01-01T00:00:00Z")));
    let fx = backend.fresh_with_clock(clock.clone());
    let store = fx.store();
    // Groups g0..g59: every third one is empty, every fifth member expires in between, and
    // ids that extend another id (g1, g10, g1x) sit next to each other in the index.
    let mut texts: Vec<String> = Vec::new();
    for g in 0..60 {
        if g % 3 == 0 {
            continue;
        }
        let expiry = if g % 5 == 0 {
            "[expiration:2030-06-01T00:00:00Z]"
        } else {
            ""
        };
        texts.push(format!("group:g{g}#member@user:u{g}{expiry}"));
        texts.push(format!("group:g{g}#member@user:v{g}"));
        texts.push(format!("group:g{g}#admin@user:a{g}"));
        texts.push(format!("doc:d{g}#viewer@group:g{g}#member{expiry}"));
        texts.push(format!("doc:e{g}#viewer@group:g{g}#member"));
        texts.push(format!("folder:f{g}#viewer@group:g{g}#member"));
    }
    texts.push("group:g1x#member@user:x".to_string());
    texts.push("doc:x#viewer@group:g1x#member".to_string());
    let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
    touch_all(store, &refs);
    clock.set(at("2030-07-01T00:00:00Z"));
    let snapshot = store.snapshot().unwrap();

    // Every group, some twice, some absent, in no order.
    let mut ids: Vec<String> = (0..70).rev().map(|g| format!("g{g}")).collect();
    ids.extend(["g1".to_string(), "g1x".to_string(), "g7".to_string()]);
    let objects: Vec<ObjectRef> = ids
        .iter()
        .map(|id| ObjectRef::new("group", id).unwrap())
        .collect();
    let looped = subjects_one_object_at_a_time(snapshot.as_ref(), &objects, "member");
    let batched = strings(snapshot.subjects_of_many(&objects, "member"));
    assert_eq!(batched, looped);
    // The subjects-only read of one object matches the whole relationships, expired ones
    // skipped alike.
    for object in &objects {
        let whole: Vec<String> = snapshot
            .subjects_of(object, "member")
            .map(|found| found.unwrap().subject.to_string())
            .collect();
        assert_eq!(
            subject_strings(snapshot.subject_refs_of(object, "member")),
            whole
        );
    }
    // 40 non-empty groups with two members each, 8 of them expired, and g1x.
    assert_eq!(batched.len(), 40 * 2 - 8 + 1);
    assert!(batched.iter().all(|found| found.contains("#member@")));

    let subjects: Vec<SubjectRef> = ids
        .iter()
        .map(|id| SubjectRef::parse(&format!("group:{id}#member")).unwrap())
        .collect();
    let mut sorted = subjects.clone();
    sorted.sort();
    sorted.dedup();
    let looped: Vec<String> = sorted
        .iter()
        .flat_map(|s| strings(snapshot.resources_with_subject(s, "doc", "viewer")))
        .collect();
    let batched = strings(snapshot.resources_with_subjects(&subjects, "doc", "viewer"));
    assert_eq!(batched, looped);
    assert_eq!(batched.len(), 40 * 2 - 8 + 1);
    assert!(batched.iter().all(|found| found.starts_with("doc:")));
    // The ids-only form returns the same resources in the same order.
    let mut ids: Vec<String> = Vec::new();
    snapshot
        .resource_ids_with_subjects(&subjects, "doc", "viewer", &mut |id| {
            ids.push(format!("doc:{id}"))
        })
        .unwrap();
    let resources: Vec<String> = snapshot
        .resources_with_subjects(&subjects, "doc", "viewer")
        .map(|found| found.unwrap().resource.to_string())
        .collect();
    assert_eq!(ids, resources);
    let mut none = 0;
    snapshot
        .resource_ids_with_subjects(&[], "doc", "viewer", &mut |_| none += 1)
        .unwrap();
    assert_eq!(none, 0);
    // A few groups far apart (many keys between two ranges) and the same groups as neighbours.
    for step in [1, 2, 7, 13] {
        let few: Vec<SubjectRef> = sorted.iter().step_by(step).cloned().collect();
        let looped: Vec<String> = few
            .iter()
            .flat_map(|s| strings(snapshot.resources_with_subject(s, "doc", "viewer")))
            .map(|found| found.split('#').next().unwrap_or_default().to_string())
            .collect();
        let mut ids: Vec<String> = Vec::new();
        snapshot
            .resource_ids_with_subjects(&few, "doc", "viewer", &mut |id| {
                ids.push(format!("doc:{id}"))
            })
            .unwrap();
        assert_eq!(ids, looped, "every {step}th group");
        // The same subjects named by their ids alone (ascending, as the lookup walk names them).
        let few_ids: Vec<&str> = few.iter().map(|s| s.object.object_id.as_str()).collect();
        assert_eq!(
            resource_ids_of_ids(
                snapshot.as_ref(),
                "group",
                &few_ids,
                Some("member"),
                "doc",
                "viewer"
            ),
            looped,
            "every {step}th group, by id"
        );
    }
    // Ids in no order, some twice, some absent: the same answer as the subjects themselves.
    let ids_in_no_order: Vec<&str> = subjects
        .iter()
        .map(|s| s.object.object_id.as_str())
        .collect();
    let mut by_subject: Vec<String> = Vec::new();
    snapshot
        .resource_ids_with_subjects(&subjects, "doc", "viewer", &mut |id| {
            by_subject.push(format!("doc:{id}"))
        })
        .unwrap();
    let by_id = resource_ids_of_ids(
        snapshot.as_ref(),
        "group",
        &ids_in_no_order,
        Some("member"),
        "doc",
        "viewer",
    );
    assert_eq!(by_id, by_subject);
    assert_eq!(by_id.len(), 40 * 2 - 8 + 1);
    // Subjects without a relation (users), expired memberships skipped.
    let users: Vec<String> = (0..62).map(|u| format!("u{u}")).collect();
    let user_ids: Vec<&str> = users.iter().map(String::as_str).collect();
    let user_refs: Vec<SubjectRef> = users
        .iter()
        .map(|u| SubjectRef::parse(&format!("user:{u}")).unwrap())
        .collect();
    let mut groups: Vec<String> = Vec::new();
    snapshot
        .resource_ids_with_subjects(&user_refs, "group", "member", &mut |id| {
            groups.push(format!("group:{id}"))
        })
        .unwrap();
    assert_eq!(
        resource_ids_of_ids(
            snapshot.as_ref(),
            "user",
            &user_ids,
            None,
            "group",
            "member"
        ),
        groups
    );
    assert_eq!(groups.len(), 40 - 8);
    assert!(
        resource_ids_of_ids(snapshot.as_ref(), "user", &[], None, "group", "member").is_empty()
    );
}

/// `type:id` of each resource id [`Snapshot::resource_ids_with_subject_ids`] hands over.
fn resource_ids_of_ids(
    snapshot: &dyn Snapshot,
    subject_type: &str,
    subject_ids: &[&str],
    subject_relation: Option<&str>,
    resource_type: &str,
    relation: &str,
) -> Vec<String> {
    let mut found = Vec::new();
    snapshot
        .resource_ids_with_subject_ids(
            subject_type,
            &mut subject_ids.iter().copied(),
            subject_relation,
            resource_type,
            relation,
            &mut |id| found.push(format!("{resource_type}:{id}")),
        )
        .unwrap();
    found
}

/// Conformance case.
pub fn a_large_batch_commits_whole_and_scans_across_pages(backend: &dyn Backend) {
    let fx = backend.fresh();
    let store = fx.store();
    const N: usize = 20_000;
    let updates: Vec<Update> = (0..N)
        .map(|i| {
            update(
                UpdateOp::Create,
                &format!("doc:{i:05}#viewer@user:u{}", i % 7),
            )
        })
        .collect();
    let revision = store.write_updates(&updates, &[]).unwrap();
    assert_eq!(revision, Revision(1));
    let snapshot = store.snapshot().unwrap();
    let mut count = 0;
    let mut previous: Option<String> = None;
    for found in snapshot.read(&resource_filter("doc"), None) {
        let id = found.unwrap().resource.object_id;
        assert!(
            previous.as_ref().is_none_or(|p| *p < id),
            "out of order at {id}"
        );
        previous = Some(id);
        count += 1;
    }
    assert_eq!(count, N);
    let u3 = SubjectRef::parse("user:u3").unwrap();
    assert_eq!(
        snapshot
            .resources_with_subject(&u3, "doc", "viewer")
            .count(),
        N / 7
    );
    let log = store.changes_since(Revision::ZERO, 10).unwrap();
    assert_eq!(log[0].changes.len(), N);
    // Touching them all again and deleting them all are single revisions too.
    let deletes: Vec<Update> = updates
        .iter()
        .map(|u| Update {
            op: UpdateOp::Delete,
            relationship: u.relationship.clone(),
        })
        .collect();
    assert_eq!(store.write_updates(&deletes, &[]).unwrap(), Revision(2));
    assert!(all(store).is_empty());
    assert_eq!(
        store
            .snapshot_at(Revision(1))
            .unwrap()
            .read(&resource_filter("doc"), None)
            .count(),
        N
    );
}

/// The error a failing body returns.
#[derive(Debug, thiserror::Error)]
#[error("the body refused: {0}")]
struct Refused(String);

impl From<StoreError> for Refused {
    fn from(err: StoreError) -> Self {
        Refused(err.to_string())
    }
}

/// Conformance case.
pub fn a_failing_body_writes_nothing(backend: &dyn Backend) {
    let fx = backend.fresh();
    let store = fx.store();
    touch_all(store, &["doc:1#viewer@user:tom"]);
    let before = (store.head_revision(), all(store));
    let result: Result<(_, ()), Refused> = store.write_with(|txn| {
        txn.put(&rel("doc:2#viewer@user:ann"))?;
        txn.remove(&rel("doc:1#viewer@user:tom"))?;
        txn.put_record("k", "v", Some(b"x"))?;
        txn.put_schema("definition user {}")?;
        Err(Refused("no".to_string()))
    });
    match result {
        Err(Refused(reason)) => assert_eq!(reason, "no"),
        Ok(_) => panic!("the body's error was lost"),
    }
    assert_eq!((store.head_revision(), all(store)), before);
    let snapshot = store.snapshot().unwrap();
    assert_eq!(snapshot.revision(), Revision(1));
    assert_eq!(snapshot.record("k", "v").unwrap(), None);
    assert_eq!(snapshot.schema_text().unwrap(), None);
    assert_eq!(store.changes_since(Revision::ZERO, 10).unwrap().len(), 1);
    // The next write takes the next revision: the failed one left no gap.
    assert_eq!(touch_all(store, &["doc:3#viewer@user:bob"]), Revision(2));
}

/// Conformance case.
pub fn pruned_history_is_refused_and_the_present_stays(backend: &dyn Backend) {
    let fx = backend.fresh();
    let store = fx.store();
    touch_all(store, &["doc:1#viewer@user:tom"]);
    store
        .write_updates(&[update(UpdateOp::Delete, "doc:1#viewer@user:tom")], &[])
        .unwrap();
    touch_all(store, &["doc:2#viewer@user:ann"]);
    store
        .transact(&Transaction {
            records: vec![record_write("k", "a", Some("1"))],
            ..Transaction::default()
        })
        .unwrap();
    store
        .transact(&Transaction {
            records: vec![record_write("k", "a", None)],
            ..Transaction::default()
        })
        .unwrap();
    assert_eq!(store.oldest_revision(), Revision::ZERO);
    assert_eq!(store.prune_history(Revision(3)).unwrap(), Revision(3));
    assert_eq!(store.oldest_revision(), Revision(3));
    assert!(matches!(
        store.changes_since(Revision(1), 10),
        Err(StoreError::RevisionUnavailable {
            oldest: Revision(3),
            ..
        })
    ));
    let rest: Vec<u64> = store
        .changes_since(Revision(3), 10)
        .unwrap()
        .iter()
        .map(|e| e.revision.0)
        .collect();
    assert_eq!(rest, [4, 5]);
    assert!(matches!(
        store.snapshot_at(Revision(2)),
        Err(StoreError::RevisionUnavailable { .. })
    ));
    // Pruning again (and past the head, which clamps) removes dead history; the present and
    // every retained revision read as before.
    assert_eq!(store.prune_history(Revision(4)).unwrap(), Revision(4));
    assert_eq!(store.prune_history(Revision(99)).unwrap(), Revision(5));
    assert_eq!(
        store.prune_history(Revision(2)).unwrap(),
        Revision(5),
        "never lowered"
    );
    assert_eq!(all(store), ["doc:2#viewer@user:ann"]);
    let head = store.snapshot_at(Revision(5)).unwrap();
    assert_eq!(head.record("k", "a").unwrap(), None);
    assert_eq!(
        strings(head.read(&RelationshipFilter::default(), None)),
        ["doc:2#viewer@user:ann"]
    );
    // Writing goes on after the pruned history.
    assert_eq!(touch_all(store, &["doc:3#viewer@user:bob"]), Revision(6));
    assert_eq!(store.changes_since(Revision(5), 10).unwrap().len(), 1);
}

/// Conformance case.
pub fn a_touch_replaces_caveat_and_expiration_and_old_snapshots_keep_them(backend: &dyn Backend) {
    let fx = backend.fresh();
    let store = fx.store();
    let first = r#"doc:1#viewer@user:tom[only_ip:{"b":2,"a":[1,"x"]}][expiration:2100-01-01T00:00:00.123456789Z]"#;
    touch_all(store, &[first]);
    let old = store.snapshot().unwrap();
    touch_all(store, &["doc:1#viewer@user:tom"]);
    let doc1 = ObjectRef::parse("doc:1").unwrap();
    let tom = SubjectRef::parse("user:tom").unwrap();
    let stored = old.get(&doc1, "viewer", &tom).unwrap().unwrap();
    assert_eq!(stored.to_string(), rel(first).to_string());
    assert_eq!(
        stored,
        rel(first),
        "caveat context (key order too) and nanoseconds survive"
    );
    assert_eq!(
        strings(store.snapshot().unwrap().subjects_of(&doc1, "viewer")),
        ["doc:1#viewer@user:tom"]
    );
    assert_eq!(
        strings(old.subjects_of(&doc1, "viewer")),
        [rel(first).to_string()]
    );
}

/// Conformance case.
pub fn history_older_than_the_retention_window_is_pruned_by_commit_time(backend: &dyn Backend) {
    let clock = Arc::new(FixedClock::new(at("2030-01-01T00:00:00Z")));
    let fx = backend.fresh_with_clock(clock.clone());
    let store = fx.store();
    let hour = std::time::Duration::from_secs(3600);
    touch_all(store, &["doc:1#viewer@user:tom"]);
    clock.set(at("2030-01-01T00:10:00Z"));
    touch_all(store, &["doc:2#viewer@user:ann"]);
    clock.set(at("2030-01-01T00:50:00Z"));
    touch_all(store, &["doc:3#viewer@user:bob"]);
    // Nothing is an hour old yet.
    clock.set(at("2030-01-01T00:59:59Z"));
    assert_eq!(store.prune_older_than(hour).unwrap(), Revision::ZERO);
    assert_eq!(store.changes_since(Revision::ZERO, 10).unwrap().len(), 3);
    // Revision 1 is more than an hour old; 2 is not.
    clock.set(at("2030-01-01T01:05:00Z"));
    assert_eq!(store.prune_older_than(hour).unwrap(), Revision(1));
    assert!(matches!(
        store.changes_since(Revision::ZERO, 10),
        Err(StoreError::RevisionUnavailable {
            requested: Revision::ZERO,
            oldest: Revision(1),
            ..
        })
    ));
    let kept: Vec<u64> = store
        .changes_since(Revision(1), 10)
        .unwrap()
        .iter()
        .map(|e| e.revision.0)
        .collect();
    assert_eq!(kept, [2, 3]);
    // A day later everything is old: history ends at the head, which stays readable.
    clock.set(at("2030-01-02T00:00:00Z"));
    assert_eq!(store.prune_older_than(hour).unwrap(), Revision(3));
    assert!(store.changes_since(Revision(3), 10).unwrap().is_empty());
    let err = match store.snapshot_at(Revision(2)) {
        Err(err) => err,
        Ok(_) => panic!("a pruned revision was readable"),
    };
    assert!(err.to_string().contains("has expired"), "{err}");
    assert_eq!(
        store.snapshot_at(Revision(3)).unwrap().revision(),
        Revision(3)
    );
    assert_eq!(all(store).len(), 3);
    touch_all(store, &["doc:4#viewer@user:cat"]);
    assert_eq!(store.changes_since(Revision(3), 10).unwrap().len(), 1);
}

/// A bulk load of listed relationships.
struct Listed(std::vec::IntoIter<Relationship>);

impl BulkSource for Listed {
    fn start(&mut self, _head: &dyn Snapshot) -> Result<(), StoreError> {
        Ok(())
    }

    fn next_item(&mut self) -> Option<Result<Relationship, StoreError>> {
        self.0.next().map(Ok)
    }
}

/// Conformance case.
pub fn the_sweep_follows_every_change_of_an_expiration(backend: &dyn Backend) {
    let clock = Arc::new(FixedClock::new(at("2030-01-01T00:00:00Z")));
    let fx = backend.fresh_with_clock(clock.clone());
    let exp = |minutes: u32| format!("[expiration:2030-01-01T00:{minutes:02}:00Z]");
    {
        let store = fx.store();
        touch_all(
            store,
            &[
                &format!("doc:a#viewer@user:tom{}", exp(10)),
                &format!("doc:b#viewer@user:tom{}", exp(20)),
                &format!("doc:c#viewer@user:tom{}", exp(30)),
                "doc:d#viewer@user:tom",
                &format!("doc:e#viewer@user:tom{}", exp(5)),
            ],
        );
        // Expiration dropped, moved later, deleted, added; an import adds one and moves one.
        store
            .write_updates(
                &[
                    update(UpdateOp::Touch, "doc:a#viewer@user:tom"),
                    update(
                        UpdateOp::Touch,
                        &format!("doc:b#viewer@user:tom{}", exp(40)),
                    ),
                    update(UpdateOp::Delete, "doc:c#viewer@user:tom"),
                    update(
                        UpdateOp::Touch,
                        &format!("doc:d#viewer@user:tom{}", exp(15)),
                    ),
                ],
                &[],
            )
            .unwrap();
        let imported = vec![
            rel(&format!("doc:f#viewer@user:tom{}", exp(12))),
            rel(&format!("doc:e#viewer@user:tom{}", exp(50))),
        ];
        store
            .bulk_load(&mut Listed(imported.into_iter()), ImportMode::Touch)
            .unwrap();
    }
    let fx = fx.reopen();
    let store = fx.store();
    clock.set(at("2030-01-01T00:35:00Z"));
    let expired: Vec<String> = store
        .snapshot()
        .unwrap()
        .expired(10)
        .unwrap()
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(
        expired,
        [
            format!("doc:f#viewer@user:tom{}", exp(12)),
            format!("doc:d#viewer@user:tom{}", exp(15)),
        ],
        "soonest first, only what expired"
    );
    assert_eq!(store.sweep_expired().unwrap(), 2);
    assert_eq!(store.sweep_expired().unwrap(), 0);
    clock.set(at("2030-01-01T01:00:00Z"));
    assert_eq!(store.sweep_expired().unwrap(), 2);
    assert_eq!(store.sweep_expired().unwrap(), 0);
    clock.set(at("2029-01-01T00:00:00Z"));
    assert_eq!(all(store), ["doc:a#viewer@user:tom"]);
}
