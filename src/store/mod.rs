//! Storage of relationships: the seam every backend implements ([`TupleStore`], [`Snapshot`],
//! [`WriteTxn`]), the write logic that is the same for every backend ([`Writes`]), and the
//! backends: embedded RocksDB (the default) and PostgreSQL / CockroachDB ([`PgStore`]), chosen
//! by a [`Datastore`].
//!
//! A backend only stores and reads: it runs a transaction body at the next revision and
//! commits what the body staged atomically, with its log entry; it answers reads at one
//! revision. Preconditions, CREATE's existence rule, delete-by-filter limits and the expiry
//! sweep's batching are decided once, above the seam, in `writes.rs`.
//!
//! Invariants: only `store/rocks.rs` names RocksDB and only `store/postgres/` names
//! `tokio_postgres`; every RocksDB byte layout lives in
//! `store/keys.rs`; a [`Snapshot`] sees exactly one revision; expired relationships are never
//! returned by a read (only by [`Snapshot::expired`] and [`WriteTxn::stored`]).

mod bulk;
mod datastore;
mod keys;
mod periodic;
mod postgres;
mod retention;
mod rocks;
mod writes;

pub use bulk::{BulkError, BulkOutcome, BulkSource};
pub use datastore::{Datastore, DatastoreError, OpenOptions, Opened};
pub use periodic::Periodic;
pub use postgres::{Migrated, PgOptions, PgStore, LATEST_VERSION as PG_LAYOUT_VERSION};
pub use retention::{start_pruner, PRUNE_EVERY};
pub use rocks::{RocksStore, StoreOptions};
pub use writes::{
    apply_relationship_updates, apply_transaction, WriteOutcome, Writes, SWEEP_BATCH,
};

use chrono::{DateTime, Utc};

use crate::filter::RelationshipFilter;
use crate::revision::{Revision, StoreId};
use crate::transaction::{Change, ImportMode, LoggedRevision};
use crate::tuple::{ObjectRef, Relationship, SubjectRef};

/// What can go wrong in the store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The underlying database failed (I/O, corruption, ...).
    #[error("storage failure: {0}")]
    Backend(String),
    /// Stored bytes could not be decoded.
    #[error("corrupt stored data: {0}")]
    Corrupt(String),
    /// The data folder was written by an incompatible version.
    #[error("data folder has format version {found}, this build reads version {expected}")]
    FormatVersion {
        /// Version found on disk.
        found: u8,
        /// Version this build understands.
        expected: u8,
    },
    /// CREATE of a relationship that already exists.
    #[error("relationship `{0}` already exists")]
    AlreadyExists(String),
    /// The same relationship appears twice in one batch.
    #[error("found more than one update for relationship `{0}` in one write")]
    DuplicateUpdate(String),
    /// A precondition did not hold; nothing was written.
    #[error("precondition failed: {0}")]
    PreconditionFailed(String),
    /// A relationship has an empty name or id, or one containing a NUL byte, which the key
    /// layout cannot represent (checked names and ids never do).
    #[error("relationship `{0}` cannot be stored: names and ids must be non-empty and free of NUL bytes")]
    Unstorable(String),
    /// A record keyspace is empty, or a keyspace or key contains a NUL byte.
    #[error(
        "record `{0}` cannot be stored: keyspaces must be non-empty and keys free of NUL bytes"
    )]
    UnstorableRecord(String),
    /// A record precondition did not hold; nothing was written.
    #[error("record `{keyspace}/{key}` {}", if *.exists { "already exists" } else { "does not exist" })]
    RecordConflict {
        /// The keyspace.
        keyspace: String,
        /// The key.
        key: String,
        /// Whether the record exists (the precondition wanted the opposite).
        exists: bool,
    },
    /// The transaction body refused to commit; the caller's own error is inside (see
    /// [`Writes::write_with`], which hands it back as the caller's type).
    #[error("{0}")]
    Rejected(Box<dyn std::error::Error + Send + Sync>),
    /// The database cannot be reached (down, restarting, refusing connections), or the
    /// connection broke; the same request may succeed once it is back.
    #[error("database `{database}` is unavailable: {reason}")]
    Unavailable {
        /// The database, as `postgres://USER@HOST:PORT/DB` (no password).
        database: String,
        /// What failed.
        reason: String,
    },
    /// The database's tables were created or upgraded by a newer zanzi.
    #[error("database `{database}` has zanzi table layout version {found}, newer than the {known} this build knows: upgrade zanzi (or use another database)")]
    NewerLayout {
        /// The database.
        database: String,
        /// The layout version found.
        found: i64,
        /// The newest layout version this build knows.
        known: i64,
    },
    /// A read at exactly a revision, or the changes after one, that the retention window no
    /// longer keeps (or that was never retained).
    #[error("revision {requested} has expired: history is kept from revision {oldest} on (the head is {head}); start again from a newer token or the head")]
    RevisionUnavailable {
        /// The revision asked for.
        requested: Revision,
        /// The oldest revision still readable exactly.
        oldest: Revision,
        /// The store's head revision.
        head: Revision,
    },
}

/// A boxed stream of records read from a snapshot: `(key, value)` in key order.
pub type RecordIter<'a> = Box<dyn Iterator<Item = Result<(String, Vec<u8>), StoreError>> + 'a>;

/// A boxed stream of relationships read from a snapshot.
pub type RelationshipIter<'a> = Box<dyn Iterator<Item = Result<Relationship, StoreError>> + 'a>;

/// Subjects found by a read that needs nothing else of the relationships.
pub type SubjectIter<'a> = Box<dyn Iterator<Item = Result<SubjectRef, StoreError>> + 'a>;

/// The body of a write transaction: it reads the head state through the [`WriteTxn`] and
/// stages changes on it. A backend may run it more than once (a retried serialization
/// conflict), so it must not have effects outside the transaction.
pub type WriteBody<'b> = dyn FnMut(&mut dyn WriteTxn) -> Result<(), StoreError> + 'b;

/// A storage backend: durable relationships, records, the schema text and the change log,
/// readable at a revision. What every backend must do and nothing more; the write rules all
/// backends share live in [`Writes`], implemented for every `TupleStore`.
pub trait TupleStore: Send + Sync {
    /// This store's identity.
    fn store_id(&self) -> StoreId;

    /// The newest revision this process knows to be committed. Exact for an embedded store; a
    /// shared database may have moved on (a [`TupleStore::snapshot`] finds out).
    fn head_revision(&self) -> Revision;

    /// A read view at the newest committed revision.
    fn snapshot(&self) -> Result<Box<dyn Snapshot + '_>, StoreError>;

    /// A read view at exactly `revision`, if that revision is still retained
    /// ([`StoreError::RevisionUnavailable`] otherwise).
    fn snapshot_at(&self, revision: Revision) -> Result<Box<dyn Snapshot + '_>, StoreError>;

    /// Runs `body` in a write transaction at the revision after the head, then commits what
    /// it staged, the log entry of those changes and the new head, atomically (and durably,
    /// when the backend is configured to sync). Writers are serialised: the body sees the head
    /// as no other writer can change it before the commit.
    ///
    /// When the body fails nothing is written and its error is returned. When it staged
    /// nothing, nothing is committed and the outcome says so (with the head it read).
    fn write(&self, body: &mut WriteBody<'_>) -> Result<WriteOutcome, StoreError>;

    /// Loads every relationship `source` yields as one revision: all of them or, on any
    /// error, none (the error names the item it concerns). [`ImportMode::Create`] fails on a
    /// relationship that is stored and live; [`ImportMode::Touch`] overwrites it. A load that
    /// yields nothing commits nothing.
    ///
    /// The default runs one ordinary write transaction (so its log entry is an ordinary one);
    /// a backend with a faster path for large loads overrides it and may log the revision as a
    /// bulk revision, read back with [`TupleStore::bulk_part`].
    fn bulk_load(
        &self,
        source: &mut dyn BulkSource,
        mode: ImportMode,
    ) -> Result<BulkOutcome, BulkError> {
        bulk::load_through_write(self, source, mode)
    }

    /// The revisions committed after `after`, oldest first (at most `limit` of them).
    /// [`StoreError::RevisionUnavailable`] when the log no longer reaches back to `after`.
    /// A bulk revision comes with its summary and no changes (see [`LoggedRevision::bulk`]).
    fn changes_since(
        &self,
        after: Revision,
        limit: usize,
    ) -> Result<Vec<LoggedRevision>, StoreError>;

    /// Part `part` (from 1 to the summary's `parts`) of the changes of the bulk revision
    /// `revision`. Backends that never log bulk revisions keep the default, which refuses.
    fn bulk_part(&self, revision: Revision, part: u32) -> Result<Vec<Change>, StoreError> {
        Err(StoreError::Corrupt(format!(
            "revision {revision} has no bulk part {part}: this store logs no bulk revisions"
        )))
    }

    /// The oldest revision whose exact state and changes are still kept.
    fn oldest_revision(&self) -> Revision;

    /// Forgets history before `horizon` (clamped to the head): log entries and exact-snapshot
    /// reads of older revisions may be dropped, so [`TupleStore::changes_since`] and
    /// [`TupleStore::snapshot_at`] refuse them afterwards. Returns the new oldest revision.
    fn prune_history(&self, horizon: Revision) -> Result<Revision, StoreError>;

    /// Forgets the history committed more than `retention` ago by the store's clock: prunes
    /// (see [`TupleStore::prune_history`]) up to the newest revision committed before that
    /// instant, and gives the space back. Returns the new oldest revision.
    fn prune_older_than(&self, retention: std::time::Duration) -> Result<Revision, StoreError>;

    /// Approximate bytes the store occupies (on disk and in write buffers).
    fn size_on_disk(&self) -> u64;

    /// Whether reads are served from this process's memory and local files, never waiting on
    /// a network round trip, so a short read may run on a thread that must not wait long (an
    /// async worker). `false` unless a backend says so.
    fn reads_are_local(&self) -> bool {
        false
    }
}

/// A write transaction in progress: reads of the head state it started from, and the changes
/// it stages. Relationship keys are resource, relation and subject; caveat and expiration are
/// the value.
pub trait WriteTxn {
    /// The revision this transaction commits at.
    fn revision(&self) -> Revision;

    /// The instant deciding what has expired for this transaction.
    fn now(&self) -> DateTime<Utc>;

    /// The head state the transaction started from (its staged changes are not visible here).
    fn head(&self) -> &dyn Snapshot;

    /// The stored relationships with the keys of `relationships`, in the same order, expired
    /// ones included: one batched read.
    fn stored(
        &self,
        relationships: &[&Relationship],
    ) -> Result<Vec<Option<Relationship>>, StoreError>;

    /// Stores `relationship`, replacing any with its key, and logs it as a touch.
    fn put(&mut self, relationship: &Relationship) -> Result<(), StoreError>;

    /// [`WriteTxn::put`] for a caller that has read the key: `existing` is what
    /// [`WriteTxn::stored`] returned for it (the head's relationship, expired or not, or
    /// `None`), so a backend need not read it again.
    fn put_over(
        &mut self,
        relationship: &Relationship,
        existing: Option<&Relationship>,
    ) -> Result<(), StoreError> {
        let _ = existing;
        self.put(relationship)
    }

    /// Removes the stored relationship with `stored`'s key and logs `stored` (as it was) as a
    /// delete. `stored` must be the relationship as the head holds it (read through this
    /// transaction's [`WriteTxn::stored`] or [`WriteTxn::head`]): a backend may rely on its
    /// expiration.
    fn remove(&mut self, stored: &Relationship) -> Result<(), StoreError>;

    /// Puts (`Some`) or deletes (`None`) the record `key` of `keyspace`.
    fn put_record(
        &mut self,
        keyspace: &str,
        key: &str,
        value: Option<&[u8]>,
    ) -> Result<(), StoreError>;

    /// Replaces the schema text; the transaction's revision becomes the schema revision.
    fn put_schema(&mut self, text: &str) -> Result<(), StoreError>;
}

/// What a walk is about to read, told to a snapshot so a backend with costly round trips can
/// fetch the right amount ahead (see [`Snapshot::read_ahead`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReadAhead {
    /// The walk reads the objects it is asked about and subject sets, never an arrow's targets:
    /// fetching more than each object itself is wasted.
    Objects,
    /// The walk may follow arrows (a document's folder, a resource's project): the objects an
    /// object points at are likely read next.
    ArrowTargets,
}

/// A read view pinned at one revision.
///
/// Scans come back in a fixed order, which cursors rely on: by resource (type, id), relation,
/// subject (type, id, relation) when a resource type is given or implied; by subject, then
/// resource type, relation and resource id for subject-only reads. Names compare byte-wise and
/// "no subject relation" sorts before any relation.
pub trait Snapshot {
    /// The revision this view shows.
    fn revision(&self) -> Revision;

    /// The instant that decides which relationships have expired for this view, if the store
    /// pins one. The engine's cache only keeps answers that rest on expiring relationships
    /// when it knows this.
    fn now(&self) -> Option<DateTime<Utc>> {
        None
    }

    /// The revision that wrote the schema in force at this view ([`Revision::ZERO`] when no
    /// schema was ever written, or it was written before stores kept this).
    fn schema_revision(&self) -> Revision;

    /// The schema text in force at this view, if any.
    fn schema_text(&self) -> Result<Option<String>, StoreError>;

    /// What the next walk over this view will read. Only a hint: every read answers the same
    /// whatever was hinted; a backend may ignore it (the default does), and one that fetches
    /// ahead assumes [`ReadAhead::ArrowTargets`] until told otherwise.
    fn read_ahead(&self, _hint: ReadAhead) {}

    /// The stored relationship `resource#relation@subject`, if present (a point lookup).
    fn get(
        &self,
        resource: &ObjectRef,
        relation: &str,
        subject: &SubjectRef,
    ) -> Result<Option<Relationship>, StoreError>;

    /// Every relationship `resource#relation@*` (a prefix scan of the forward index).
    fn subjects_of(&self, resource: &ObjectRef, relation: &str) -> RelationshipIter<'_>;

    /// The subject of every relationship [`Snapshot::subjects_of`] returns, in the same order:
    /// for walks that need only the subjects (caveats taken as satisfied), which a backend can
    /// read without building whole relationships.
    fn subject_refs_of(&self, resource: &ObjectRef, relation: &str) -> SubjectIter<'_> {
        Box::new(
            self.subjects_of(resource, relation)
                .map(|found| found.map(|relationship| relationship.subject)),
        )
    }

    /// Every relationship `r#relation@*` for each `r` of `resources`, in scan order: one
    /// multi-range scan (or one query) for them all where the backend can.
    fn subjects_of_many(&self, resources: &[ObjectRef], relation: &str) -> RelationshipIter<'_> {
        let mut sorted: Vec<ObjectRef> = resources.to_vec();
        sorted.sort_unstable();
        sorted.dedup();
        let relation = relation.to_string();
        Box::new(
            sorted
                .into_iter()
                .flat_map(move |resource| self.subjects_of(&resource, &relation)),
        )
    }

    /// Every relationship `resource_type:*#relation@subject` for this exact subject
    /// (a prefix scan of the reverse index).
    fn resources_with_subject(
        &self,
        subject: &SubjectRef,
        resource_type: &str,
        relation: &str,
    ) -> RelationshipIter<'_>;

    /// Every relationship `resource_type:*#relation@s` for each `s` of `subjects`, in scan
    /// order: one multi-range scan (or one query) for them all where the backend can.
    fn resources_with_subjects(
        &self,
        subjects: &[SubjectRef],
        resource_type: &str,
        relation: &str,
    ) -> RelationshipIter<'_> {
        let mut sorted: Vec<SubjectRef> = subjects.to_vec();
        sorted.sort_unstable();
        sorted.dedup();
        let resource_type = resource_type.to_string();
        let relation = relation.to_string();
        Box::new(sorted.into_iter().flat_map(move |subject| {
            self.resources_with_subject(&subject, &resource_type, &relation)
        }))
    }

    /// Hands `found` the resource id of every relationship
    /// [`Snapshot::resources_with_subjects`] returns, in the same order: for walks that need
    /// only the ids, which a backend can read in place without building whole relationships
    /// (or even an owned string per id).
    fn resource_ids_with_subjects(
        &self,
        subjects: &[SubjectRef],
        resource_type: &str,
        relation: &str,
        found: &mut dyn FnMut(&str),
    ) -> Result<(), StoreError> {
        for relationship in self.resources_with_subjects(subjects, resource_type, relation) {
            found(&relationship?.resource.object_id);
        }
        Ok(())
    }

    /// [`Snapshot::resource_ids_with_subjects`] for the subjects `subject_type:id` (with
    /// `subject_relation`, if given), one per id of `subject_ids`: a batch of one type's
    /// objects or subject sets, named without a [`SubjectRef`] each. Ids in ascending order
    /// without repeats let a backend skip sorting them.
    fn resource_ids_with_subject_ids(
        &self,
        subject_type: &str,
        subject_ids: &mut dyn Iterator<Item = &str>,
        subject_relation: Option<&str>,
        resource_type: &str,
        relation: &str,
        found: &mut dyn FnMut(&str),
    ) -> Result<(), StoreError> {
        let subjects: Vec<SubjectRef> = subject_ids
            .map(|id| SubjectRef {
                object: ObjectRef::new_unchecked(subject_type, id),
                relation: subject_relation.map(str::to_string),
            })
            .collect();
        self.resource_ids_with_subjects(&subjects, resource_type, relation, found)
    }

    /// The record `key` of `keyspace`, if present at this revision.
    fn record(&self, keyspace: &str, key: &str) -> Result<Option<Vec<u8>>, StoreError>;

    /// Every record of `keyspace` whose key starts with `key_prefix`, in key order.
    fn records(&self, keyspace: &str, key_prefix: &str) -> RecordIter<'_>;

    /// Every relationship matching `filter`, in scan order, starting strictly after `after`
    /// when given (for cursors).
    fn read(
        &self,
        filter: &RelationshipFilter,
        after: Option<&Relationship>,
    ) -> RelationshipIter<'_>;

    /// Up to `limit` relationships that have expired by this view's "now" (which every other
    /// read hides), for the expiry sweep.
    fn expired(&self, limit: usize) -> Result<Vec<Relationship>, StoreError>;
}
