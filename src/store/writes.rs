//! The write rules every backend shares, above the seam: duplicate updates, preconditions,
//! CREATE's existence rule, TOUCH and DELETE, record changes, delete-by-filter with its limit,
//! and the expiry sweep in small batches. Each runs inside one [`TupleStore::write`]
//! transaction, so what it reads is what it commits against (a limit or a precondition cannot
//! be overtaken by a concurrent writer).

use super::{Snapshot, StoreError, TupleStore, WriteTxn};
use crate::filter::RelationshipFilter;
use crate::revision::Revision;
use crate::transaction::{
    DeleteOutcome, Precondition, PreconditionOp, Transaction, Update, UpdateOp,
};
use crate::tuple::Relationship;

/// What a write transaction did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WriteOutcome {
    /// The committed revision, or the head the transaction read when it committed nothing.
    pub revision: Revision,
    /// Whether anything was committed.
    pub committed: bool,
}

/// How many expired relationships one sweep transaction removes: small enough that no writer
/// waits long behind it.
pub const SWEEP_BATCH: usize = 1_000;

/// The shared write rules, available on every [`TupleStore`].
pub trait Writes: TupleStore {
    /// Runs `body` in one write transaction (see [`TupleStore::write`]) and returns the
    /// outcome with the body's value; the body's own error comes back as it was.
    fn write_with<T, E>(
        &self,
        mut body: impl FnMut(&mut dyn WriteTxn) -> Result<T, E>,
    ) -> Result<(WriteOutcome, T), E>
    where
        E: From<StoreError> + std::error::Error + Send + Sync + 'static,
    {
        let mut value = None;
        let result = self.write(&mut |txn| match body(txn) {
            Ok(found) => {
                value = Some(found);
                Ok(())
            }
            Err(err) => Err(StoreError::Rejected(Box::new(err))),
        });
        match result {
            Ok(outcome) => match value {
                Some(value) => Ok((outcome, value)),
                None => Err(StoreError::Backend(
                    "the store finished a write transaction without running its body".to_string(),
                )
                .into()),
            },
            Err(StoreError::Rejected(inner)) => match inner.downcast::<E>() {
                Ok(err) => Err(*err),
                Err(other) => Err(StoreError::Rejected(other).into()),
            },
            Err(other) => Err(other.into()),
        }
    }

    /// Applies a [`Transaction`] atomically: every precondition (relationship and record)
    /// holds against the head, then the relationship updates and record changes commit at one
    /// new revision, which is returned. Either everything is written or nothing is.
    fn transact(&self, transaction: &Transaction) -> Result<Revision, StoreError> {
        let (outcome, ()) = self.write_with(|txn| apply_transaction(txn, transaction))?;
        Ok(outcome.revision)
    }

    /// Applies relationship `updates` atomically after checking `preconditions`.
    fn write_updates(
        &self,
        updates: &[Update],
        preconditions: &[Precondition],
    ) -> Result<Revision, StoreError> {
        reject_duplicates(updates)?;
        let (outcome, ()) = self.write_with(|txn| {
            check_preconditions(txn.head(), preconditions)?;
            apply_updates(txn, updates)
        })?;
        Ok(outcome.revision)
    }

    /// Deletes the relationships matching `filter` (at most `limit`, if given) atomically,
    /// after checking `preconditions`; the limit is counted inside the transaction.
    fn delete_matching(
        &self,
        filter: &RelationshipFilter,
        preconditions: &[Precondition],
        limit: Option<usize>,
    ) -> Result<DeleteOutcome, StoreError> {
        let (outcome, (deleted, partial)) = self.write_with(|txn| {
            check_preconditions(txn.head(), preconditions)?;
            let mut doomed = Vec::new();
            let mut partial = false;
            for found in txn.head().read(filter, None) {
                let relationship = found?;
                if limit.is_some_and(|limit| doomed.len() >= limit) {
                    partial = true;
                    break;
                }
                doomed.push(relationship);
            }
            for relationship in &doomed {
                txn.remove(relationship)?;
            }
            Ok::<_, StoreError>((doomed.len(), partial))
        })?;
        Ok(DeleteOutcome {
            revision: outcome.revision,
            deleted,
            partial,
        })
    }

    /// Removes every relationship that has expired, [`SWEEP_BATCH`] at a time, each batch its
    /// own transaction logged as deletes; returns how many were removed.
    fn sweep_expired(&self) -> Result<usize, StoreError> {
        let mut removed = 0;
        loop {
            let (_, swept) = self.write_with(|txn| {
                let expired = txn.head().expired(SWEEP_BATCH)?;
                for relationship in &expired {
                    txn.remove(relationship)?;
                }
                Ok::<_, StoreError>(expired.len())
            })?;
            removed += swept;
            if swept < SWEEP_BATCH {
                return Ok(removed);
            }
        }
    }

    /// The schema text at the head, if any.
    fn read_schema(&self) -> Result<Option<String>, StoreError> {
        self.snapshot()?.schema_text()
    }
}

impl<S: TupleStore + ?Sized> Writes for S {}

/// Refuses a batch that names one relationship twice (caveat and expiration aside).
pub(super) fn reject_duplicates(updates: &[Update]) -> Result<(), StoreError> {
    let key = |index: usize| {
        let rel = &updates[index].relationship;
        (&rel.resource, &rel.relation, &rel.subject)
    };
    let mut order: Vec<usize> = (0..updates.len()).collect();
    order.sort_unstable_by(|&a, &b| key(a).cmp(&key(b)));
    match order.windows(2).find(|pair| key(pair[0]) == key(pair[1])) {
        Some(pair) => Err(StoreError::DuplicateUpdate(
            updates[pair[1]].relationship.key_string(),
        )),
        None => Ok(()),
    }
}

/// Applies `transaction` inside the write transaction `txn`: duplicate updates are refused,
/// then preconditions, record preconditions, relationship updates and record changes, in that
/// order. For callers that compose it with checks of their own in one transaction (the
/// engine's schema check); others call [`Writes::transact`].
pub fn apply_transaction(
    txn: &mut dyn WriteTxn,
    transaction: &Transaction,
) -> Result<(), StoreError> {
    reject_duplicates(&transaction.updates)?;
    check_preconditions(txn.head(), &transaction.preconditions)?;
    for condition in &transaction.record_preconditions {
        let exists = txn
            .head()
            .record(&condition.keyspace, &condition.key)?
            .is_some();
        if exists != condition.must_exist {
            return Err(StoreError::RecordConflict {
                keyspace: condition.keyspace.clone(),
                key: condition.key.clone(),
                exists,
            });
        }
    }
    apply_updates(txn, &transaction.updates)?;
    for write in &transaction.records {
        txn.put_record(&write.keyspace, &write.key, write.value.as_deref())?;
    }
    Ok(())
}

/// [`apply_transaction`] for a transaction of relationship updates and preconditions only
/// (no records): duplicate updates are refused, then the preconditions, then the updates.
pub fn apply_relationship_updates(
    txn: &mut dyn WriteTxn,
    updates: &[Update],
    preconditions: &[Precondition],
) -> Result<(), StoreError> {
    reject_duplicates(updates)?;
    check_preconditions(txn.head(), preconditions)?;
    apply_updates(txn, updates)
}

/// CREATE fails on a live relationship (an expired one counts as absent), TOUCH writes, and
/// DELETE removes what is stored (logging it as it was) and ignores what is not.
pub(super) fn apply_updates(txn: &mut dyn WriteTxn, updates: &[Update]) -> Result<(), StoreError> {
    let keys: Vec<&Relationship> = updates.iter().map(|u| &u.relationship).collect();
    let stored = txn.stored(&keys)?;
    let now = txn.now();
    for (update, existing) in updates.iter().zip(stored) {
        match update.op {
            UpdateOp::Create | UpdateOp::Touch => {
                let live = existing
                    .as_ref()
                    .is_some_and(|found| found.expiration.is_none_or(|at| at > now));
                if update.op == UpdateOp::Create && live {
                    return Err(StoreError::AlreadyExists(update.relationship.key_string()));
                }
                txn.put_over(&update.relationship, existing.as_ref())?;
            }
            UpdateOp::Delete => {
                if let Some(existing) = existing {
                    txn.remove(&existing)?;
                }
            }
        }
    }
    Ok(())
}

/// Every precondition against `head`; the first that fails says which relationship or filter.
pub(crate) fn check_preconditions(
    head: &dyn Snapshot,
    preconditions: &[Precondition],
) -> Result<(), StoreError> {
    for precondition in preconditions {
        let matched = head.read(&precondition.filter, None).next().transpose()?;
        match (precondition.op, matched) {
            (PreconditionOp::MustMatch, None) => {
                return Err(StoreError::PreconditionFailed(format!(
                    "no relationship matches `{}`",
                    precondition.filter
                )))
            }
            (PreconditionOp::MustNotMatch, Some(found)) => {
                return Err(StoreError::PreconditionFailed(format!(
                    "relationship `{}` matches `{}`",
                    found.key_string(),
                    precondition.filter
                )))
            }
            _ => {}
        }
    }
    Ok(())
}
