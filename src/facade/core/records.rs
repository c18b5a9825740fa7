//! Typed facade records over the store's generic record layer (a keyspace name + a key →
//! JSON bytes), and [`Tx`]: the one atomic write of a facade call, collecting relationship
//! updates, record puts and deletes, and record preconditions.
//!
//! Nothing here is Frontier-specific: a [`Keyspace`] is a name and a record type, so other
//! facades declare their own.

use std::collections::HashMap;
use std::marker::PhantomData;

use serde::de::DeserializeOwned;
use serde::Serialize;

use super::error::FacadeError;
use crate::engine::ReadView;
use crate::transaction::{RecordPrecondition, RecordWrite, Transaction, Update, UpdateOp};
use crate::tuple::Relationship;

/// A named set of records of one type, stored as JSON.
pub struct Keyspace<T> {
    name: &'static str,
    record: PhantomData<fn() -> T>,
}

impl<T> Keyspace<T> {
    /// The keyspace `name` (unique among every facade's keyspaces).
    pub const fn new(name: &'static str) -> Self {
        Self {
            name,
            record: PhantomData,
        }
    }

    /// The keyspace's name.
    pub fn name(&self) -> &'static str {
        self.name
    }
}

impl<T: Serialize + DeserializeOwned> Keyspace<T> {
    fn decode(&self, key: &str, bytes: &[u8]) -> Result<T, FacadeError> {
        serde_json::from_slice(bytes).map_err(|e| {
            FacadeError::Internal(format!("record `{}/{key}` is unreadable: {e}", self.name))
        })
    }

    /// The record `key` at the view's revision.
    pub fn get(&self, view: &ReadView<'_>, key: &str) -> Result<Option<T>, FacadeError> {
        view.record(self.name, key)?
            .map(|bytes| self.decode(key, &bytes))
            .transpose()
    }

    /// Every record whose key starts with `prefix`, in key order.
    pub fn scan(&self, view: &ReadView<'_>, prefix: &str) -> Result<Vec<(String, T)>, FacadeError> {
        view.records(self.name, prefix)?
            .into_iter()
            .map(|(key, bytes)| {
                let value = self.decode(&key, &bytes)?;
                Ok((key, value))
            })
            .collect()
    }
}

/// The changes one facade call makes, applied by one atomic engine write.
///
/// A relationship named twice keeps its last operation (a cascade may reach the same tuple
/// by two paths), and so does a record.
#[derive(Debug, Default)]
pub struct Tx {
    updates: Vec<Update>,
    positions: HashMap<String, usize>,
    records: Vec<RecordWrite>,
    record_preconditions: Vec<RecordPrecondition>,
}

impl Tx {
    fn update(&mut self, op: UpdateOp, relationship: Relationship) {
        let key = relationship.key_string();
        let update = Update { op, relationship };
        match self.positions.get(&key) {
            Some(&at) => {
                if let Some(slot) = self.updates.get_mut(at) {
                    *slot = update;
                }
            }
            None => {
                self.positions.insert(key, self.updates.len());
                self.updates.push(update);
            }
        }
    }

    /// Creates or keeps `relationship`.
    pub fn touch(&mut self, relationship: Relationship) {
        self.update(UpdateOp::Touch, relationship);
    }

    /// Removes `relationship` if present.
    pub fn delete(&mut self, relationship: Relationship) {
        self.update(UpdateOp::Delete, relationship);
    }

    /// Writes the record `key` of `keyspace`.
    pub fn put<T: Serialize>(
        &mut self,
        keyspace: &Keyspace<T>,
        key: &str,
        value: &T,
    ) -> Result<(), FacadeError> {
        let bytes = serde_json::to_vec(value).map_err(|e| {
            FacadeError::Internal(format!("encoding record `{}/{key}`: {e}", keyspace.name))
        })?;
        self.records.push(RecordWrite {
            keyspace: keyspace.name.to_string(),
            key: key.to_string(),
            value: Some(bytes),
        });
        Ok(())
    }

    /// Deletes the record `key` of `keyspace`.
    pub fn remove<T>(&mut self, keyspace: &Keyspace<T>, key: &str) {
        self.records.push(RecordWrite {
            keyspace: keyspace.name.to_string(),
            key: key.to_string(),
            value: None,
        });
    }

    /// Makes the write fail (409, nothing written) if the record `key` exists by then.
    pub fn require_absent<T>(&mut self, keyspace: &Keyspace<T>, key: &str) {
        self.record_preconditions.push(RecordPrecondition {
            keyspace: keyspace.name.to_string(),
            key: key.to_string(),
            must_exist: false,
        });
    }

    /// Whether the call changes nothing.
    pub fn is_empty(&self) -> bool {
        self.updates.is_empty() && self.records.is_empty()
    }

    /// The relationship updates collected so far.
    pub fn updates(&self) -> &[Update] {
        &self.updates
    }

    /// The store transaction.
    pub fn into_transaction(self) -> Transaction {
        Transaction {
            updates: self.updates,
            preconditions: Vec::new(),
            records: self.records,
            record_preconditions: self.record_preconditions,
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn a_relationship_named_twice_keeps_its_last_operation() {
        let rel = Relationship::parse("app/group:g#member@app/user:a").unwrap();
        let mut tx = Tx::default();
        tx.touch(rel.clone());
        tx.delete(rel.clone());
        tx.touch(Relationship::parse("app/group:g#member@app/user:b").unwrap());
        assert_eq!(tx.updates().len(), 2);
        assert_eq!(tx.updates()[0].op, UpdateOp::Delete);
        let keyspace: Keyspace<String> = Keyspace::new("group");
        tx.put(&keyspace, "g", &"x".to_string()).unwrap();
        tx.require_absent(&keyspace, "h");
        let transaction = tx.into_transaction();
        assert_eq!(transaction.records.len(), 1);
        assert_eq!(transaction.record_preconditions.len(), 1);
    }
}
