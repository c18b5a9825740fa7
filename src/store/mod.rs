//! Storage of relationships: the [`TupleStore`] trait and its RocksDB implementation.
//!
//! Invariants: only `store/rocks.rs` names RocksDB; every byte layout lives in `store/keys.rs`;
//! a [`Snapshot`] sees exactly one revision; expired relationships are never returned.

mod keys;
mod rocks;

pub use rocks::{RocksStore, StoreOptions};

use chrono::{DateTime, Utc};

use crate::revision::Revision;
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
    /// A read at exactly a revision that is no longer (or not) retained.
    #[error("revision {requested} is no longer readable at exactly its state: the oldest retained revision is {oldest} and the head is {head}")]
    RevisionUnavailable {
        /// The revision asked for.
        requested: Revision,
        /// The oldest revision still readable exactly.
        oldest: Revision,
        /// The store's head revision.
        head: Revision,
    },
}

/// A store's identity: random bytes fixed when its folder is created, so a revision from one
/// store is never mistaken for a revision of another.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct StoreId(pub [u8; 16]);

/// What a write does to one relationship.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UpdateOp {
    /// Insert; fails if the relationship already exists.
    Create,
    /// Insert or overwrite (caveat and expiration replaced).
    Touch,
    /// Remove if present.
    Delete,
}

/// One update of a write batch.
#[derive(Debug, Clone, PartialEq)]
pub struct Update {
    /// What to do.
    pub op: UpdateOp,
    /// To which relationship (caveat and expiration are ignored for deletes).
    pub relationship: Relationship,
}

/// Matches stored relationships by subject.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SubjectFilter {
    /// Subject type (required).
    pub subject_type: String,
    /// Subject id, if restricted.
    pub subject_id: Option<String>,
    /// Subject relation: `None` = any; `Some(None)` = no subject relation (`...`);
    /// `Some(Some(r))` = exactly `r`.
    pub relation: Option<Option<String>>,
}

/// Matches stored relationships. Every field that is `None` matches anything.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RelationshipFilter {
    /// Resource type.
    pub resource_type: Option<String>,
    /// Exact resource id.
    pub resource_id: Option<String>,
    /// Resource id prefix (exclusive with `resource_id`).
    pub resource_id_prefix: Option<String>,
    /// Relation name.
    pub relation: Option<String>,
    /// Subject constraints.
    pub subject: Option<SubjectFilter>,
}

impl RelationshipFilter {
    /// Whether `rel` satisfies every constraint of the filter.
    pub fn matches(&self, rel: &Relationship) -> bool {
        let resource_ok = self
            .resource_type
            .as_ref()
            .is_none_or(|t| *t == rel.resource.object_type)
            && self
                .resource_id
                .as_ref()
                .is_none_or(|id| *id == rel.resource.object_id)
            && self
                .resource_id_prefix
                .as_ref()
                .is_none_or(|p| rel.resource.object_id.starts_with(p.as_str()))
            && self.relation.as_ref().is_none_or(|r| *r == rel.relation);
        let subject_ok = self.subject.as_ref().is_none_or(|s| {
            s.subject_type == rel.subject.object.object_type
                && s.subject_id
                    .as_ref()
                    .is_none_or(|id| *id == rel.subject.object.object_id)
                && s.relation
                    .as_ref()
                    .is_none_or(|r| *r == rel.subject.relation)
        });
        resource_ok && subject_ok
    }
}

/// Whether a precondition needs a match or the absence of one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PreconditionOp {
    /// At least one stored relationship must match the filter.
    MustMatch,
    /// No stored relationship may match the filter.
    MustNotMatch,
}

/// A condition evaluated against the head state before a write is applied.
#[derive(Debug, Clone, PartialEq)]
pub struct Precondition {
    /// Match or no match.
    pub op: PreconditionOp,
    /// Which relationships.
    pub filter: RelationshipFilter,
}

/// The result of a delete-by-filter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeleteOutcome {
    /// Revision the deletion committed at (the head revision if nothing matched).
    pub revision: Revision,
    /// How many relationships were removed.
    pub deleted: usize,
    /// True when `limit` stopped the deletion before every match was removed.
    pub partial: bool,
}

/// One change recorded in the write log.
#[derive(Debug, Clone, PartialEq)]
pub struct Change {
    /// Touch (created or overwritten) or delete.
    pub op: UpdateOp,
    /// The relationship as written (or as it was, for a delete).
    pub relationship: Relationship,
}

/// One change of a facade record: `value` `None` deletes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordWrite {
    /// The record's keyspace (e.g. `group`).
    pub keyspace: String,
    /// The record's key within its keyspace.
    pub key: String,
    /// The new bytes, or `None` to delete the record.
    pub value: Option<Vec<u8>>,
}

/// A condition on one record, evaluated against the head state before a transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordPrecondition {
    /// The record's keyspace.
    pub keyspace: String,
    /// The record's key.
    pub key: String,
    /// `true`: the record must exist; `false`: it must not.
    pub must_exist: bool,
}

/// Relationship updates and record changes applied as one atomic write, after every
/// precondition holds against the head state.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Transaction {
    /// Relationship updates.
    pub updates: Vec<Update>,
    /// Relationship preconditions.
    pub preconditions: Vec<Precondition>,
    /// Record puts and deletes (the last write of a key wins).
    pub records: Vec<RecordWrite>,
    /// Record preconditions.
    pub record_preconditions: Vec<RecordPrecondition>,
}

/// A boxed stream of records read from a snapshot: `(key, value)` in key order.
pub type RecordIter<'a> = Box<dyn Iterator<Item = Result<(String, Vec<u8>), StoreError>> + 'a>;

/// A boxed stream of relationships read from a snapshot.
pub type RelationshipIter<'a> = Box<dyn Iterator<Item = Result<Relationship, StoreError>> + 'a>;

/// Durable storage for relationships and the schema text.
///
/// Writers are serialised inside the store; readers take a [`Snapshot`].
pub trait TupleStore: Send + Sync {
    /// The revision of the last committed write.
    fn head_revision(&self) -> Revision;

    /// A consistent read view at the head revision.
    fn snapshot(&self) -> Result<Box<dyn Snapshot + '_>, StoreError>;

    /// A read view at exactly `revision`, if that revision is still retained
    /// ([`StoreError::RevisionUnavailable`] otherwise).
    fn snapshot_at(&self, revision: Revision) -> Result<Box<dyn Snapshot + '_>, StoreError>;

    /// This store's identity.
    fn store_id(&self) -> StoreId;

    /// Applies `updates` atomically after checking `preconditions` against the head state.
    /// Either everything is written (and synced, if configured) or nothing is.
    fn write(
        &self,
        updates: &[Update],
        preconditions: &[Precondition],
    ) -> Result<Revision, StoreError>;

    /// Applies a [`Transaction`] atomically: every precondition (relationship and record) is
    /// checked against the head state, then the relationship updates (validated as in
    /// [`TupleStore::write`]) and the record changes are written in one batch at one new
    /// revision, which is returned. Either everything is written or nothing is.
    fn transact(&self, transaction: &Transaction) -> Result<Revision, StoreError>;

    /// Deletes relationships matching `filter` (at most `limit`, if given) atomically, after
    /// checking `preconditions`.
    fn delete_matching(
        &self,
        filter: &RelationshipFilter,
        preconditions: &[Precondition],
        limit: Option<usize>,
    ) -> Result<DeleteOutcome, StoreError>;

    /// The stored schema text, if any.
    fn read_schema(&self) -> Result<Option<String>, StoreError>;

    /// Replaces the stored schema text; returns the new revision.
    fn write_schema(&self, text: &str) -> Result<Revision, StoreError>;

    /// The changes committed after `after`, in revision order (at most `limit` revisions).
    fn changes_since(
        &self,
        after: Revision,
        limit: usize,
    ) -> Result<Vec<(Revision, Vec<Change>)>, StoreError>;

    /// Approximate bytes the store occupies (on disk and in write buffers).
    fn size_on_disk(&self) -> u64;

    /// Removes every relationship that has expired by the store's clock, in one atomic batch
    /// logged as deletes; returns how many were removed.
    fn sweep_expired(&self) -> Result<usize, StoreError>;
}

/// A read view pinned at one revision.
pub trait Snapshot {
    /// The revision this view shows.
    fn revision(&self) -> Revision;

    /// The instant that decides which relationships have expired for this view, if the store
    /// pins one. The engine's cache only keeps answers that rest on expiring relationships
    /// when it knows this.
    fn now(&self) -> Option<DateTime<Utc>> {
        None
    }

    /// The stored relationship `resource#relation@subject`, if present (a point lookup).
    fn get(
        &self,
        resource: &ObjectRef,
        relation: &str,
        subject: &SubjectRef,
    ) -> Result<Option<Relationship>, StoreError>;

    /// Every relationship `resource#relation@*` (a prefix scan of the forward index).
    fn subjects_of(&self, resource: &ObjectRef, relation: &str) -> RelationshipIter<'_>;

    /// Every relationship `resource_type:*#relation@subject` for this exact subject
    /// (a prefix scan of the reverse index).
    fn resources_with_subject(
        &self,
        subject: &SubjectRef,
        resource_type: &str,
        relation: &str,
    ) -> RelationshipIter<'_>;

    /// The record `key` of `keyspace`, if present at this revision.
    fn record(&self, keyspace: &str, key: &str) -> Result<Option<Vec<u8>>, StoreError>;

    /// Every record of `keyspace` whose key starts with `key_prefix`, in key order.
    fn records(&self, keyspace: &str, key_prefix: &str) -> RecordIter<'_>;

    /// Every relationship matching `filter`, in forward-key order, starting strictly after
    /// `after` when given (for cursors).
    fn read(
        &self,
        filter: &RelationshipFilter,
        after: Option<&Relationship>,
    ) -> RelationshipIter<'_>;
}
