//! The vocabulary of writes: relationship updates, preconditions, record changes, the
//! transaction that carries them, and the changes a committed revision logged.
//!
//! Pure data shared by every layer (the engine and the facade build transactions, every store
//! backend applies them); no I/O.

use chrono::{DateTime, Utc};

use crate::filter::RelationshipFilter;
use crate::revision::Revision;
use crate::tuple::Relationship;

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

/// One committed revision as its log entry records it.
#[derive(Debug, Clone, PartialEq)]
pub struct LoggedRevision {
    /// The revision.
    pub revision: Revision,
    /// When it committed, by the store's clock (the Unix epoch when the store did not record
    /// it).
    pub committed_at: DateTime<Utc>,
    /// Its relationship changes, in the order the write listed them.
    pub changes: Vec<Change>,
    /// The schema text, when this revision wrote the schema.
    pub schema: Option<String>,
    /// Set for a bulk revision (an import), whose changes are too many for one entry: `changes`
    /// is then empty and the changes are read part by part (`TupleStore::bulk_part`).
    pub bulk: Option<BulkSummary>,
}

/// What a bulk revision's log entry says about it, so a reader can follow it without loading
/// every change at once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BulkSummary {
    /// How many relationships it wrote (all logged as touches).
    pub changes: u64,
    /// How many parts hold its changes, numbered from 1, each at most a few thousand changes.
    pub parts: u32,
    /// Every `(resource type, relation)` it wrote, sorted, with the parts holding its changes:
    /// enough for a reader that only needs to know what changed, and a reader that needs the
    /// changes of a few relations reads only their parts.
    pub relations: Vec<BulkRelation>,
}

/// One `(resource type, relation)` a bulk revision wrote, and the parts holding those changes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BulkRelation {
    /// The resource type.
    pub resource_type: String,
    /// The relation.
    pub relation: String,
    /// The first part with a change of it.
    pub first_part: u32,
    /// The last part with a change of it.
    pub last_part: u32,
}

/// How an import treats a relationship that is already stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ImportMode {
    /// Fail (and store nothing) when any imported relationship exists: CREATE semantics.
    #[default]
    Create,
    /// Overwrite it: TOUCH semantics, so an export can go back into a non-empty store.
    Touch,
}
