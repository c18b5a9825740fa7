//! Bulk loads (imports) at the seam: what a load reads from ([`BulkSource`]), what it answers
//! ([`BulkOutcome`], [`BulkError`] naming the item at fault), and the default way any backend
//! runs one: a single ordinary write transaction.

use super::writes::reject_duplicates;
use super::{Snapshot, StoreError, TupleStore, WriteTxn};
use crate::revision::Revision;
use crate::transaction::{ImportMode, Update, UpdateOp};
use crate::tuple::Relationship;

/// Where a bulk load's relationships come from, in order (an item's position, from 0, is how
/// errors name it).
pub trait BulkSource {
    /// Called inside the load's write transaction, with the head state it commits against,
    /// before any item is read (and again if a backend retries the transaction after reading
    /// every item: then a source whose items no longer hold against the new head refuses).
    fn start(&mut self, head: &dyn Snapshot) -> Result<(), StoreError>;

    /// The next relationship, an error that ends the load, or `None` at the end.
    fn next_item(&mut self) -> Option<Result<Relationship, StoreError>>;
}

/// What a bulk load committed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BulkOutcome {
    /// The revision the load committed at (the head when it loaded nothing).
    pub revision: Revision,
    /// How many relationships it stored.
    pub loaded: u64,
}

/// Why a bulk load stored nothing: the error, and the position (from 0) of the item it
/// concerns when it concerns one.
#[derive(Debug, thiserror::Error)]
#[error("{error}")]
pub struct BulkError {
    /// The position of the item at fault.
    pub item: Option<u64>,
    /// What went wrong.
    #[source]
    pub error: StoreError,
}

impl BulkError {
    /// An error about the item at `item`.
    pub fn at(item: u64, error: StoreError) -> Self {
        Self {
            item: Some(item),
            error,
        }
    }
}

impl From<StoreError> for BulkError {
    fn from(error: StoreError) -> Self {
        Self { item: None, error }
    }
}

/// The default [`TupleStore::bulk_load`]: every item read into memory, then applied as CREATE
/// or TOUCH updates in one write transaction.
pub(super) fn load_through_write<S: TupleStore + ?Sized>(
    store: &S,
    source: &mut dyn BulkSource,
    mode: ImportMode,
) -> Result<BulkOutcome, BulkError> {
    let op = match mode {
        ImportMode::Create => UpdateOp::Create,
        ImportMode::Touch => UpdateOp::Touch,
    };
    let mut updates: Option<Vec<Update>> = None;
    let mut failed_at: Option<u64> = None;
    let result = store.write(&mut |txn: &mut dyn WriteTxn| {
        source.start(txn.head())?;
        if updates.is_none() {
            let mut read = Vec::new();
            while let Some(item) = source.next_item() {
                match item {
                    Ok(relationship) => read.push(Update { op, relationship }),
                    Err(err) => {
                        failed_at = Some(read.len() as u64);
                        return Err(err);
                    }
                }
            }
            updates = Some(read);
        }
        let Some(updates) = updates.as_deref() else {
            return Ok(());
        };
        reject_duplicates(updates)?;
        super::writes::apply_updates(txn, updates)
    });
    let loaded = updates.as_ref().map_or(0, Vec::len) as u64;
    match result {
        Ok(outcome) => Ok(BulkOutcome {
            revision: outcome.revision,
            loaded: if outcome.committed { loaded } else { 0 },
        }),
        Err(error) => {
            let item = failed_at.or_else(|| {
                let all = updates.as_deref().unwrap_or_default();
                item_named_by(&error, all)
            });
            Err(BulkError { item, error })
        }
    }
}

/// The position of the update an existence or duplicate error names (the last one with that
/// key, for a duplicate).
fn item_named_by(error: &StoreError, updates: &[Update]) -> Option<u64> {
    let key = match error {
        StoreError::AlreadyExists(key)
        | StoreError::DuplicateUpdate(key)
        | StoreError::Unstorable(key) => key,
        _ => return None,
    };
    updates
        .iter()
        .rposition(|update| update.relationship.key_string() == *key)
        .map(|at| at as u64)
}
