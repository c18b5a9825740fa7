//! [`PgTxn`]: a write transaction on the database. The store has already opened it at
//! SERIALIZABLE and taken the next revision (the head row update); the body reads the head
//! through the transaction's own connection and stages changes here; [`PgTxn::flush`] writes
//! them as a handful of batched statements: end the replaced rows, insert the new ones, the
//! same for records, the schema text, and the change-log entry.

use std::cell::RefCell;
use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Utc};
use tokio_postgres::types::ToSql;

use super::rows::{self, Key, KeyColumns, RowColumns};
use super::snapshot::{PgSnapshot, TxnConn};
use super::sql;
use crate::revision::Revision;
use crate::store::keys::{LogEntry, RecordKey};
use crate::store::{Snapshot, StoreError, WriteTxn};
use crate::transaction::{Change, UpdateOp};
use crate::tuple::Relationship;

/// A record's identity: keyspace and key.
type RecordId = (String, String);

/// A write transaction in progress: its head view and what it staged.
pub(super) struct PgTxn<'s> {
    pub(super) head: PgSnapshot<'s>,
    pub(super) conn: &'s TxnConn<'s>,
    pub(super) revision: Revision,
    pub(super) now: DateTime<Utc>,
    /// Relationship keys in the order first staged, with their final state (`None`: removed).
    relationships: Vec<(Key, Option<Relationship>)>,
    /// Where each key sits in `relationships`.
    positions: HashMap<Key, usize>,
    /// Records in the order first staged, with their final value.
    records: Vec<(RecordId, Option<Vec<u8>>)>,
    record_positions: HashMap<RecordId, usize>,
    schema: Option<String>,
    /// The log entry's changes, in the order they were staged.
    changes: Vec<Change>,
    /// Keys [`WriteTxn::stored`] found no row for at the head: nothing to end for them.
    absent: RefCell<HashSet<Key>>,
}

impl<'s> PgTxn<'s> {
    pub(super) fn new(
        head: PgSnapshot<'s>,
        conn: &'s TxnConn<'s>,
        revision: Revision,
        now: DateTime<Utc>,
    ) -> Self {
        Self {
            head,
            conn,
            revision,
            now,
            relationships: Vec::new(),
            positions: HashMap::new(),
            records: Vec::new(),
            record_positions: HashMap::new(),
            schema: None,
            changes: Vec::new(),
            absent: RefCell::new(HashSet::new()),
        }
    }

    /// Whether nothing was staged.
    pub(super) fn is_empty(&self) -> bool {
        self.relationships.is_empty() && self.records.is_empty() && self.schema.is_none()
    }

    fn stage(&mut self, key: Key, state: Option<Relationship>) {
        match self.positions.get(&key) {
            Some(&at) => self.relationships[at].1 = state,
            None => {
                self.positions.insert(key.clone(), self.relationships.len());
                self.relationships.push((key, state));
            }
        }
    }

    /// Writes everything staged, and the log entry, in the transaction (not yet committed).
    pub(super) fn flush(self) -> Result<(), StoreError> {
        let at = rows::revision_param(self.revision)?;
        let conn = self.conn;
        if !self.relationships.is_empty() {
            let mut ended = KeyColumns::default();
            let mut inserted = RowColumns::default();
            let absent = self.absent.borrow();
            for (key, state) in &self.relationships {
                if !absent.contains(key) {
                    ended.push(key.clone());
                }
                if let Some(relationship) = state {
                    inserted.push(relationship);
                }
            }
            if !ended.is_empty() {
                conn.execute(
                    sql::END_RELATIONSHIPS,
                    &[
                        &at,
                        &ended.resource_types,
                        &ended.resource_ids,
                        &ended.relations,
                        &ended.subject_types,
                        &ended.subject_ids,
                        &ended.subject_relations,
                    ],
                )?;
            }
            if !inserted.keys.is_empty() {
                let keys = &inserted.keys;
                let params: [&(dyn ToSql + Sync); 11] = [
                    &at,
                    &keys.resource_types,
                    &keys.resource_ids,
                    &keys.relations,
                    &keys.subject_types,
                    &keys.subject_ids,
                    &keys.subject_relations,
                    &inserted.caveat_names,
                    &inserted.caveat_contexts,
                    &inserted.expires_us,
                    &inserted.expires_ns,
                ];
                conn.execute(sql::INSERT_RELATIONSHIPS, &params)?;
            }
        }
        if !self.records.is_empty() {
            let keyspaces: Vec<&str> = self.records.iter().map(|((s, _), _)| s.as_str()).collect();
            let keys: Vec<&str> = self.records.iter().map(|((_, k), _)| k.as_str()).collect();
            conn.execute(sql::END_RECORDS, &[&at, &keyspaces, &keys])?;
            let kept: Vec<_> = self
                .records
                .iter()
                .filter_map(|((s, k), v)| {
                    v.as_ref().map(|v| (s.as_str(), k.as_str(), v.as_slice()))
                })
                .collect();
            if !kept.is_empty() {
                let keyspaces: Vec<&str> = kept.iter().map(|(s, _, _)| *s).collect();
                let keys: Vec<&str> = kept.iter().map(|(_, k, _)| *k).collect();
                let values: Vec<&[u8]> = kept.iter().map(|(_, _, v)| *v).collect();
                conn.execute(sql::INSERT_RECORDS, &[&at, &keyspaces, &keys, &values])?;
            }
        }
        if let Some(text) = &self.schema {
            conn.execute(sql::INSERT_SCHEMA, &[&at, text])?;
        }
        let entry = LogEntry {
            changes: self.changes,
            schema: self.schema,
            committed_at: self.now,
        };
        let payload = entry.encode(self.revision)?;
        let committed = self.now.timestamp_micros();
        conn.execute(sql::INSERT_CHANGE, &[&at, &committed, &payload])?;
        Ok(())
    }
}

impl WriteTxn for PgTxn<'_> {
    fn revision(&self) -> Revision {
        self.revision
    }

    fn now(&self) -> DateTime<Utc> {
        self.now
    }

    fn head(&self) -> &dyn Snapshot {
        &self.head
    }

    fn stored(
        &self,
        relationships: &[&Relationship],
    ) -> Result<Vec<Option<Relationship>>, StoreError> {
        let mut keys = KeyColumns::default();
        for relationship in relationships {
            rows::check_storable(relationship)?;
            keys.push(rows::key_of(relationship));
        }
        let found: HashMap<Key, Relationship> = self
            .head
            .stored(&keys)?
            .into_iter()
            .map(|rel| (rows::key_of(&rel), rel))
            .collect();
        let mut absent = self.absent.borrow_mut();
        Ok(relationships
            .iter()
            .map(|rel| {
                let key = rows::key_of(rel);
                let stored = found.get(&key).cloned();
                if stored.is_none() {
                    absent.insert(key);
                }
                stored
            })
            .collect())
    }

    fn put(&mut self, relationship: &Relationship) -> Result<(), StoreError> {
        rows::check_storable(relationship)?;
        self.stage(rows::key_of(relationship), Some(relationship.clone()));
        self.changes.push(Change {
            op: UpdateOp::Touch,
            relationship: relationship.clone(),
        });
        Ok(())
    }

    fn remove(&mut self, stored: &Relationship) -> Result<(), StoreError> {
        rows::check_storable(stored)?;
        self.stage(rows::key_of(stored), None);
        self.changes.push(Change {
            op: UpdateOp::Delete,
            relationship: stored.clone(),
        });
        Ok(())
    }

    fn put_record(
        &mut self,
        keyspace: &str,
        key: &str,
        value: Option<&[u8]>,
    ) -> Result<(), StoreError> {
        RecordKey::new(keyspace, key)?;
        let id = (keyspace.to_string(), key.to_string());
        let value = value.map(<[u8]>::to_vec);
        match self.record_positions.get(&id) {
            Some(&at) => self.records[at].1 = value,
            None => {
                self.record_positions.insert(id.clone(), self.records.len());
                self.records.push((id, value));
            }
        }
        Ok(())
    }

    fn put_schema(&mut self, text: &str) -> Result<(), StoreError> {
        if text.contains('\0') {
            return Err(StoreError::Backend(
                "the schema text contains a NUL byte, which the database cannot store".to_string(),
            ));
        }
        self.schema = Some(text.to_string());
        Ok(())
    }
}
