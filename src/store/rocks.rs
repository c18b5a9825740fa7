//! [`RocksStore`]: the [`TupleStore`] on RocksDB. The only file that names `rocksdb`.
//!
//! Write transactions are serialised by one mutex: under it a writer takes a fresh snapshot
//! (the transaction's head), runs the body, which reads it and stages changes, then commits
//! one atomic `WriteBatch` (fwd + rev + records + log + head revision, synced to the WAL if
//! configured) and publishes the new head revision. Nothing is written when the body fails.
//!
//! Readers pin a RocksDB snapshot and read the head revision from that snapshot's own `meta`
//! entry, so the revision a [`Snapshot`] reports is exactly the state it shows. Each snapshot
//! also pins "now" (from the store's clock) when it is taken: relationships whose expiration is
//! at or before that instant are invisible to every read through it.
//!
//! The `rev` index stores a copy of the `fwd` value (caveat, expiration, written-at revision)
//! rather than nothing: reverse scans (LookupResources, delete-by-subject) then need no point
//! lookup per result to check expiration or return the caveat, and the copy is tiny (3 bytes for
//! an uncaveated relationship). Both entries are written in the same atomic batch, so they
//! never disagree.
//!
//! Recent revisions stay readable: after each commit (still under the write lock, so the view is
//! exactly that revision) the store retains a RocksDB snapshot, up to
//! [`StoreOptions::snapshot_window`] revisions and [`StoreOptions::history_retention`] old, for
//! reads "at exactly revision R" (`at_exact_snapshot` consistency). A retained snapshot owns an
//! `Arc` of the database, so it can outlive the borrow that made it.
//!
//! Expiring relationships are also listed in the `exp` column family by (expiration, forward
//! key), changed in the same batch as the relationship (the commit reads the head's expiration
//! of every key it writes, from what the transaction already read where it can), so the expiry
//! sweep reads only the index up to "now". Stores of format 2 or older get the index built
//! when they are opened.
//!
//! History is pruned by [`TupleStore::prune_older_than`] (the retention window): log entries
//! go in one range deletion, then the log's range is compacted so the space comes back.
//!
//! Every revision after the oldest kept one ([`TupleStore::oldest_revision`]) up to the head
//! has one `log` entry with its commit time: relationship writes record their changes (creates
//! as touches, deletes with the value as it was), schema writes record the new schema text.

use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::fmt;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use rocksdb::{
    BlockBasedOptions, ColumnFamily, ColumnFamilyDescriptor, DBCompressionType, Direction,
    FlushOptions, IteratorMode, Options, ReadOptions, WriteBatch, WriteOptions, DB,
};

mod bulk;
mod ranges;
mod staged;

use super::keys::{
    decode_bulk_part, key_successor, prefix_upper_bound, BulkPartKey, BulkSummaryValue, ExpiryKey,
    ForwardKey, LogEntry, LogEntryWriter, LogKey, RecordKey, RelationshipKey, RelationshipValue,
    ReverseKey, CF_EXP, CF_FWD, CF_LOG, CF_META, CF_RECORDS, CF_REV, COLUMN_FAMILIES,
    EXPIRATION_INDEX_FORMAT, FORMAT_VERSION, META_FORMAT_VERSION, META_HEAD_REVISION,
    META_OLDEST_REVISION, META_SCHEMA, META_SCHEMA_REVISION, META_STORE_ID, OLDEST_READABLE_FORMAT,
};
use super::{
    BulkError, BulkOutcome, BulkSource, RecordIter, RelationshipIter, Snapshot, StoreError,
    SubjectIter, TupleStore, WriteBody, WriteOutcome, WriteTxn,
};
use crate::clock::{Clock, SystemClock};
use crate::filter::RelationshipFilter;
use crate::revision::Revision;
use crate::revision::StoreId;
use crate::transaction::{BulkRelation, BulkSummary, Change, ImportMode, LoggedRevision, UpdateOp};
use crate::tuple::{ObjectRef, Relationship, SubjectRef};

/// How a [`RocksStore`] behaves.
#[derive(Debug, Clone)]
pub struct StoreOptions {
    /// Sync every write batch to the WAL before acknowledging it (default `true`).
    pub sync_writes: bool,
    /// The time source deciding which relationships have expired (default [`SystemClock`]).
    pub clock: Arc<dyn Clock>,
    /// How many recent revisions stay readable at exactly their state (default 1024).
    pub snapshot_window: usize,
    /// The history retention window (default one hour): how long a recent revision stays
    /// readable at exactly its state; [`TupleStore::prune_older_than`] forgets the change log
    /// older than it.
    pub history_retention: Duration,
}

impl Default for StoreOptions {
    fn default() -> Self {
        Self {
            sync_writes: true,
            clock: Arc::new(SystemClock),
            snapshot_window: 1024,
            history_retention: Duration::from_secs(3600),
        }
    }
}

/// A [`TupleStore`] kept in a RocksDB folder.
pub struct RocksStore {
    db: Arc<DB>,
    /// Serialises writers; held from the fresh snapshot until the new head is published.
    write_lock: Mutex<()>,
    /// The last committed revision; only changed under `write_lock`.
    head: AtomicU64,
    /// The oldest revision whose log entry and exact state are kept; only changed under
    /// `write_lock`.
    oldest: AtomicU64,
    /// Snapshots of recent revisions, oldest first; the newest is always the head.
    retained: Mutex<VecDeque<Retained>>,
    id: StoreId,
    options: StoreOptions,
    /// The revision of an import that had not committed when the process stopped, rolled
    /// back when this store was opened.
    rolled_back: Option<Revision>,
}

self_cell::self_cell!(
    /// A RocksDB snapshot together with the database it reads, so it can be kept.
    struct OwnedSnapshot {
        owner: Arc<DB>,
        #[covariant]
        dependent: RawSnapshot,
    }
);

type RawSnapshot<'a> = rocksdb::Snapshot<'a>;

/// A retained snapshot of one revision, when it was taken, and the revision of the schema it
/// shows (read once here, so opening a reader costs no `meta` read).
struct Retained {
    revision: Revision,
    schema_revision: Revision,
    taken: Instant,
    snapshot: Arc<OwnedSnapshot>,
}

impl fmt::Debug for RocksStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RocksStore")
            .field("path", &self.db.path())
            .field("head", &self.head.load(Ordering::Acquire))
            .field("options", &self.options)
            .finish()
    }
}

fn backend(err: rocksdb::Error) -> StoreError {
    StoreError::Backend(err.into_string())
}

fn column_family_options(name: &str) -> Options {
    let mut options = Options::default();
    options.set_compression_type(DBCompressionType::Lz4);
    if name == CF_FWD {
        // Direct checks are point lookups on `fwd`: a bloom filter skips files without the key.
        let mut table = BlockBasedOptions::default();
        table.set_bloom_filter(10.0, false);
        options.set_block_based_table_factory(&table);
        // The same for the memtable: a write's existence reads and a direct check for an
        // absent relationship skip the skiplist search.
        options.set_memtable_prefix_bloom_ratio(0.02);
        options.set_memtable_whole_key_filtering(true);
    }
    options
}

/// A clean close writes the memtables out, so the next open has no write-ahead log to replay
/// (replaying a large one costs seconds at startup and the memory of the memtables).
impl Drop for RocksStore {
    fn drop(&mut self) {
        let families: Vec<_> = COLUMN_FAMILIES
            .iter()
            .filter_map(|name| self.db.cf_handle(name))
            .collect();
        if let Err(error) = self.db.flush_cfs_opt(&families, &FlushOptions::default()) {
            tracing::warn!(%error, "flushing memtables at close failed; the next open replays the log");
        }
    }
}

impl RocksStore {
    /// Opens (creating if needed) the store in the folder `path`.
    ///
    /// Fails with [`StoreError::FormatVersion`] when the folder was written by a build with a
    /// different on-disk format.
    pub fn open(path: &Path, options: StoreOptions) -> Result<Self, StoreError> {
        let mut db_options = Options::default();
        db_options.create_if_missing(true);
        db_options.create_missing_column_families(true);
        let descriptors = COLUMN_FAMILIES
            .iter()
            .map(|name| ColumnFamilyDescriptor::new(*name, column_family_options(name)));
        let db =
            Arc::new(DB::open_cf_descriptors(&db_options, path, descriptors).map_err(backend)?);

        let meta = column_family(&db, CF_META)?;
        let mut rolled_back = None;
        let head = match db.get_cf(meta, META_FORMAT_VERSION).map_err(backend)? {
            Some(version) => {
                let upgrade_from = match version.as_slice() {
                    [found] if *found == FORMAT_VERSION => None,
                    [found] if (OLDEST_READABLE_FORMAT..FORMAT_VERSION).contains(found) => {
                        Some(*found)
                    }
                    [found] => {
                        return Err(StoreError::FormatVersion {
                            found: *found,
                            expected: FORMAT_VERSION,
                        })
                    }
                    _ => {
                        return Err(StoreError::Corrupt(format!(
                            "format version entry has {} bytes, expected 1",
                            version.len()
                        )))
                    }
                };
                // An import that was being ingested when the process stopped goes first.
                rolled_back = Self::roll_back_import(&db)?;
                if let Some(found) = upgrade_from {
                    // The version is written last: a crash during the upgrade redoes it.
                    if found < EXPIRATION_INDEX_FORMAT {
                        build_expiration_index(&db)?;
                    }
                    let mut write_options = WriteOptions::default();
                    write_options.set_sync(true);
                    db.put_cf_opt(meta, META_FORMAT_VERSION, [FORMAT_VERSION], &write_options)
                        .map_err(backend)?;
                }
                let head = db
                    .get_cf(meta, META_HEAD_REVISION)
                    .map_err(backend)?
                    .ok_or_else(|| StoreError::Corrupt("head revision is missing".to_string()))?;
                super::keys::decode_revision(&head)?
            }
            None => {
                if db
                    .get_cf(meta, META_HEAD_REVISION)
                    .map_err(backend)?
                    .is_some()
                {
                    return Err(StoreError::Corrupt(
                        "format version is missing from a non-empty store".to_string(),
                    ));
                }
                let mut batch = WriteBatch::default();
                batch.put_cf(meta, META_FORMAT_VERSION, [FORMAT_VERSION]);
                batch.put_cf(
                    meta,
                    META_HEAD_REVISION,
                    super::keys::encode_revision(Revision::ZERO),
                );
                let mut write_options = WriteOptions::default();
                write_options.set_sync(true);
                db.write_opt(batch, &write_options).map_err(backend)?;
                Revision::ZERO
            }
        };

        let oldest = match db.get_cf(meta, META_OLDEST_REVISION).map_err(backend)? {
            Some(bytes) => super::keys::decode_revision(&bytes)?,
            None => Revision::ZERO,
        };
        let id = load_or_create_store_id(&db)?;
        let store = Self {
            db,
            write_lock: Mutex::new(()),
            head: AtomicU64::new(head.0),
            oldest: AtomicU64::new(oldest.0),
            retained: Mutex::new(VecDeque::new()),
            id,
            options,
            rolled_back,
        };
        let schema_revision = store
            .schema_revision_at(&OwnedSnapshot::new(Arc::clone(&store.db), |db| {
                db.snapshot()
            }))?;
        store.retain_snapshot(head, schema_revision);
        Ok(store)
    }

    /// Writes the memtables out and compacts every column family fully, so what was deleted,
    /// overwritten or pruned (and is no longer shown by a retained snapshot) leaves the disk
    /// now rather than at RocksDB's next compaction. For maintenance and tests: it rewrites
    /// the whole store.
    pub fn compact(&self) -> Result<(), StoreError> {
        for name in COLUMN_FAMILIES {
            let cf = self.cf(name)?;
            self.db.flush_cf(cf).map_err(backend)?;
            self.db.compact_range_cf(cf, None::<&[u8]>, None::<&[u8]>);
        }
        Ok(())
    }

    /// The revision of an import that was being ingested when the process last stopped and
    /// that opening the folder rolled back (`None` when there was none).
    pub fn rolled_back_import(&self) -> Option<Revision> {
        self.rolled_back
    }

    /// Keeps a snapshot of the database as it is now, labelled `revision`, and drops retained
    /// snapshots beyond the window. Called under the write lock (or before the store is shared).
    /// `schema_revision` is the revision of the schema the database holds now.
    fn retain_snapshot(&self, revision: Revision, schema_revision: Revision) {
        let snapshot = Arc::new(OwnedSnapshot::new(Arc::clone(&self.db), |db| db.snapshot()));
        let now = Instant::now();
        let mut retained = self.lock_retained();
        retained.push_back(Retained {
            revision,
            schema_revision,
            taken: now,
            snapshot,
        });
        let window = self.options.snapshot_window.max(1);
        while retained.len() > window
            || retained.front().is_some_and(|oldest| {
                retained.len() > 1
                    && now.duration_since(oldest.taken) > self.options.history_retention
            })
        {
            retained.pop_front();
        }
    }

    /// The schema revision of the newest retained snapshot (the head's).
    fn head_schema_revision(&self) -> Revision {
        self.lock_retained()
            .back()
            .map_or(Revision::ZERO, |r| r.schema_revision)
    }

    fn lock_retained(&self) -> MutexGuard<'_, VecDeque<Retained>> {
        // Each mutation leaves the deque valid, so a poisoned lock holds nothing inconsistent.
        self.retained.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn cf(&self, name: &str) -> Result<&ColumnFamily, StoreError> {
        column_family(&self.db, name)
    }

    fn lock_writer(&self) -> MutexGuard<'_, ()> {
        // The guarded data is `()`: a panic in another writer leaves nothing inconsistent.
        self.write_lock
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    fn snapshot_at_head(&self) -> Result<RocksSnapshot<'_>, StoreError> {
        let snap = Arc::new(OwnedSnapshot::new(Arc::clone(&self.db), |db| db.snapshot()));
        let meta = self.cf(CF_META)?;
        let head = snap
            .borrow_dependent()
            .get_cf(meta, META_HEAD_REVISION)
            .map_err(backend)?
            .ok_or_else(|| StoreError::Corrupt("head revision is missing".to_string()))?;
        let revision = super::keys::decode_revision(&head)?;
        let schema_revision = self.schema_revision_at(&snap)?;
        self.view(snap, revision, schema_revision)
    }

    fn view(
        &self,
        snap: Arc<OwnedSnapshot>,
        revision: Revision,
        schema_revision: Revision,
    ) -> Result<RocksSnapshot<'_>, StoreError> {
        Ok(RocksSnapshot {
            meta: self.cf(CF_META)?,
            schema_revision,
            snap,
            fwd: self.cf(CF_FWD)?,
            rev: self.cf(CF_REV)?,
            records: self.cf(CF_RECORDS)?,
            exp: self.cf(CF_EXP)?,
            revision,
            now: self.options.clock.now(),
        })
    }

    /// Writes the staged changes of `txn` with its log entry and new head revision atomically,
    /// then publishes the new head. Must be called under the write lock.
    fn commit(&self, mut txn: RocksTxn<'_>) -> Result<Revision, StoreError> {
        let log_entry = std::mem::take(&mut txn.log).finish(txn.schema.as_deref(), txn.now)?;
        // Room for everything up front: the batch is not copied as it grows.
        let records_bytes: usize = txn
            .records
            .iter()
            .map(|(key, value)| key.as_bytes().len() + value.as_ref().map_or(0, Vec::len) + 16)
            .sum();
        let mut batch = WriteBatch::with_capacity_bytes(
            txn.staged.batch_bytes()
                + records_bytes
                + log_entry.len()
                + txn.schema.as_ref().map_or(0, String::len)
                + 256,
        );
        txn.stage_expiration_index(&mut batch, self.cf(CF_EXP)?)?;
        txn.staged.sort();
        let RocksTxn {
            revision,
            staged,
            records,
            schema,
            head,
            ..
        } = txn;
        let schema_revision = match schema {
            Some(_) => revision,
            None => head.schema_revision,
        };
        // Each memtable receives its keys in order (a later change of a key wins: equal keys
        // keep their staging order).
        let [forward, reverse] = staged.sides();
        for (cf, entries) in [(self.cf(CF_FWD)?, forward), (self.cf(CF_REV)?, reverse)] {
            for (key, value) in entries {
                match value {
                    Some(value) => batch.put_cf(cf, key, value),
                    None => batch.delete_cf(cf, key),
                }
            }
        }
        let records_cf = self.cf(CF_RECORDS)?;
        for (key, value) in records {
            match value {
                Some(value) => batch.put_cf(records_cf, key.as_bytes(), value),
                None => batch.delete_cf(records_cf, key.as_bytes()),
            }
        }
        let meta = self.cf(CF_META)?;
        if let Some(text) = &schema {
            batch.put_cf(meta, META_SCHEMA, text.as_bytes());
            batch.put_cf(
                meta,
                META_SCHEMA_REVISION,
                super::keys::encode_revision(revision),
            );
        }
        batch.put_cf(self.cf(CF_LOG)?, LogKey(revision).encode(), log_entry);
        batch.put_cf(
            meta,
            META_HEAD_REVISION,
            super::keys::encode_revision(revision),
        );
        let mut write_options = WriteOptions::default();
        write_options.set_sync(self.options.sync_writes);
        self.db.write_opt(batch, &write_options).map_err(backend)?;
        // Retain before publishing: whoever sees the new head can also read at exactly it.
        self.retain_snapshot(revision, schema_revision);
        self.head.store(revision.0, Ordering::Release);
        Ok(revision)
    }

    /// The revision of the schema `snap` shows (zero before any schema was written).
    fn schema_revision_at(&self, snap: &OwnedSnapshot) -> Result<Revision, StoreError> {
        Ok(self
            .meta_revision(snap, META_SCHEMA_REVISION)?
            .unwrap_or(Revision::ZERO))
    }

    /// Reads a `u64` revision stored under `key` in `meta` at `snap` (`None` when absent).
    fn meta_revision(
        &self,
        snap: &OwnedSnapshot,
        key: &[u8],
    ) -> Result<Option<Revision>, StoreError> {
        snap.borrow_dependent()
            .get_cf(self.cf(CF_META)?, key)
            .map_err(backend)?
            .map(|bytes| super::keys::decode_revision(&bytes))
            .transpose()
    }
}

/// A write transaction on RocksDB: the head snapshot it read under the write lock, and the
/// changes staged for one `WriteBatch`.
struct RocksTxn<'a> {
    head: RocksSnapshot<'a>,
    revision: Revision,
    now: DateTime<Utc>,
    /// The relationships staged, under both keys.
    staged: staged::Staged,
    records: Vec<(RecordKey, Option<Vec<u8>>)>,
    schema: Option<String>,
    /// The log entry's changes, in the order they were staged.
    log: LogEntryWriter,
    /// The expiration at the head of forward keys this transaction knows (read through
    /// [`WriteTxn::stored`], or given to [`WriteTxn::put_over`] and [`WriteTxn::remove`]), so
    /// the commit need not read them again.
    head_expiry: RefCell<HashMap<Vec<u8>, Option<DateTime<Utc>>>>,
    /// The expiration each forward key written ends with (`None`: none, or removed). Keys
    /// without an expiration before or after, written while this is empty, are left out: their
    /// index entries do not change.
    final_expiry: BTreeMap<Vec<u8>, Option<DateTime<Utc>>>,
}

impl RocksTxn<'_> {
    fn is_empty(&self) -> bool {
        self.staged.is_empty() && self.records.is_empty() && self.schema.is_none()
    }

    /// Stages `relationship` under its keys with its value, logged as a touch. `before` is its
    /// key's expiration at the head when known (`Some(None)`: no expiration, or not stored).
    fn stage_put(
        &mut self,
        relationship: &Relationship,
        before: Option<Option<DateTime<Utc>>>,
    ) -> Result<(), StoreError> {
        let value = RelationshipValue::encode_of(relationship, self.revision)?;
        let (key, _) = self.staged.stage(relationship, Some(&value))?;
        self.log.push(UpdateOp::Touch, key, &value);
        Self::track_expiry(
            &mut self.head_expiry,
            &mut self.final_expiry,
            key,
            before,
            relationship.expiration,
        );
        Ok(())
    }

    /// Notes that forward key `key` ends with expiration `after`; `before` as in
    /// [`RocksTxn::stage_put`].
    fn track_expiry(
        head_expiry: &mut RefCell<HashMap<Vec<u8>, Option<DateTime<Utc>>>>,
        final_expiry: &mut BTreeMap<Vec<u8>, Option<DateTime<Utc>>>,
        key: &[u8],
        before: Option<Option<DateTime<Utc>>>,
        after: Option<DateTime<Utc>>,
    ) {
        if before == Some(None) && after.is_none() && final_expiry.is_empty() {
            // Nothing staged can have given this key an index entry, and the head has none.
            return;
        }
        if let Some(before) = before {
            head_expiry.get_mut().entry(key.to_vec()).or_insert(before);
        }
        final_expiry.insert(key.to_vec(), after);
    }

    /// Stages the expiration index's changes for every relationship written: the entry at the
    /// head's expiration goes, the entry at the new one comes (nothing when they are equal).
    fn stage_expiration_index(
        &self,
        batch: &mut WriteBatch,
        exp: &ColumnFamily,
    ) -> Result<(), StoreError> {
        if self.final_expiry.is_empty() {
            return Ok(());
        }
        let head_expiry = self.head_expiry.borrow();
        let unknown: Vec<ForwardKey> = self
            .final_expiry
            .keys()
            .filter(|key| !head_expiry.contains_key(*key))
            .map(|key| ForwardKey::from_stored(key.clone()))
            .collect();
        let fetched = self.head.get_values(unknown.iter())?;
        let fetched: HashMap<&[u8], Option<DateTime<Utc>>> = unknown
            .iter()
            .zip(fetched)
            .map(|(key, value)| (key.as_bytes(), value.and_then(|v| v.expiration)))
            .collect();
        for (key, after) in &self.final_expiry {
            let before = match head_expiry.get(key) {
                Some(found) => *found,
                None => fetched.get(key.as_slice()).copied().flatten(),
            };
            if before == *after {
                continue;
            }
            if let Some(at) = before {
                batch.delete_cf(exp, ExpiryKey::new(at, key).as_bytes());
            }
            if let Some(at) = after {
                batch.put_cf(exp, ExpiryKey::new(*at, key).as_bytes(), []);
            }
        }
        Ok(())
    }
}

impl WriteTxn for RocksTxn<'_> {
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
        // Forward keys in key order: the existence reads run as one sorted batched read.
        let keys = relationships
            .iter()
            .map(|relationship| ForwardKey::of(relationship))
            .collect::<Result<Vec<_>, StoreError>>()?;
        let mut order: Vec<usize> = (0..keys.len()).collect();
        order.sort_unstable_by(|&a, &b| keys[a].cmp(&keys[b]));
        let found = self
            .head
            .get_values(order.iter().map(|&index| &keys[index]))?;
        let mut stored = vec![None; relationships.len()];
        let mut known = self.head_expiry.borrow_mut();
        for (&index, value) in order.iter().zip(found) {
            // What is absent needs no note: a put that follows says so (`put_over`), and a
            // plain put's key is read again at commit.
            if let Some(value) = value {
                known
                    .entry(keys[index].as_bytes().to_vec())
                    .or_insert(value.expiration);
                stored[index] =
                    Some(RelationshipKey::of(relationships[index]).into_relationship(value));
            }
        }
        Ok(stored)
    }

    fn put(&mut self, relationship: &Relationship) -> Result<(), StoreError> {
        self.stage_put(relationship, None)
    }

    fn put_over(
        &mut self,
        relationship: &Relationship,
        existing: Option<&Relationship>,
    ) -> Result<(), StoreError> {
        self.stage_put(relationship, Some(existing.and_then(|e| e.expiration)))
    }

    fn remove(&mut self, stored: &Relationship) -> Result<(), StoreError> {
        let (key, _) = self.staged.stage(stored, None)?;
        // The log keeps the relationship as it was, written at this revision.
        let logged = RelationshipValue::encode_of(stored, self.revision)?;
        self.log.push(UpdateOp::Delete, key, &logged);
        // `stored` is the relationship as the head holds it (the trait's contract): its
        // expiration names the index entry to remove, with no read at commit.
        Self::track_expiry(
            &mut self.head_expiry,
            &mut self.final_expiry,
            key,
            Some(stored.expiration),
            None,
        );
        Ok(())
    }

    fn put_record(
        &mut self,
        keyspace: &str,
        key: &str,
        value: Option<&[u8]>,
    ) -> Result<(), StoreError> {
        self.records
            .push((RecordKey::new(keyspace, key)?, value.map(<[u8]>::to_vec)));
        Ok(())
    }

    fn put_schema(&mut self, text: &str) -> Result<(), StoreError> {
        self.schema = Some(text.to_string());
        Ok(())
    }
}

/// Builds the expiration index of a store written before it existed: one pass over `fwd`,
/// an entry per relationship with an expiration (written in batches; repeating it after a
/// crash writes the same entries again).
fn build_expiration_index(db: &DB) -> Result<(), StoreError> {
    let fwd = column_family(db, CF_FWD)?;
    let exp = column_family(db, CF_EXP)?;
    let mut batch = WriteBatch::default();
    let mut indexed = 0u64;
    for item in db.iterator_cf(fwd, IteratorMode::Start) {
        let (key, value) = item.map_err(backend)?;
        if let Some(at) = RelationshipValue::decode(&value)?.expiration {
            batch.put_cf(exp, ExpiryKey::new(at, &key).as_bytes(), []);
            indexed += 1;
        }
        if batch.len() >= 10_000 {
            db.write(std::mem::take(&mut batch)).map_err(backend)?;
        }
    }
    let mut write_options = WriteOptions::default();
    write_options.set_sync(true);
    db.write_opt(batch, &write_options).map_err(backend)?;
    tracing::info!(indexed, "built the expiration index (data folder format 3)");
    Ok(())
}

/// The store's identity from `meta`, created (16 random bytes, synced) when missing.
fn load_or_create_store_id(db: &DB) -> Result<StoreId, StoreError> {
    let meta = column_family(db, CF_META)?;
    if let Some(bytes) = db.get_cf(meta, META_STORE_ID).map_err(backend)? {
        let array: [u8; 16] = bytes.as_slice().try_into().map_err(|_| {
            StoreError::Corrupt(format!("store id has {} bytes, expected 16", bytes.len()))
        })?;
        return Ok(StoreId(array));
    }
    let mut array = [0u8; 16];
    getrandom::fill(&mut array)
        .map_err(|err| StoreError::Backend(format!("no randomness for the store id: {err}")))?;
    let mut write_options = WriteOptions::default();
    write_options.set_sync(true);
    db.put_cf_opt(meta, META_STORE_ID, array, &write_options)
        .map_err(backend)?;
    Ok(StoreId(array))
}

fn column_family<'a>(db: &'a DB, name: &str) -> Result<&'a ColumnFamily, StoreError> {
    db.cf_handle(name)
        .ok_or_else(|| StoreError::Backend(format!("column family `{name}` is missing")))
}

impl TupleStore for RocksStore {
    fn store_id(&self) -> StoreId {
        self.id
    }

    fn head_revision(&self) -> Revision {
        Revision(self.head.load(Ordering::Acquire))
    }

    fn snapshot(&self) -> Result<Box<dyn Snapshot + '_>, StoreError> {
        // The newest retained snapshot is the head as committed: an import whose files are
        // being ingested (visible in the live database before it commits) stays out of it.
        let newest = self
            .lock_retained()
            .back()
            .map(|r| (r.revision, r.schema_revision, Arc::clone(&r.snapshot)));
        match newest {
            Some((revision, schema_revision, snapshot)) => {
                Ok(Box::new(self.view(snapshot, revision, schema_revision)?))
            }
            None => Ok(Box::new(self.snapshot_at_head()?)),
        }
    }

    fn snapshot_at(&self, revision: Revision) -> Result<Box<dyn Snapshot + '_>, StoreError> {
        let found = {
            let retained = self.lock_retained();
            let oldest = retained.front().map_or(Revision::ZERO, |r| r.revision);
            match retained.iter().find(|r| r.revision == revision) {
                Some(r) => Ok((Arc::clone(&r.snapshot), r.schema_revision)),
                None => Err(StoreError::RevisionUnavailable {
                    requested: revision,
                    oldest: oldest.max(self.oldest_revision()),
                    head: self.head_revision(),
                }),
            }
        };
        let (snapshot, schema_revision) = found?;
        Ok(Box::new(self.view(snapshot, revision, schema_revision)?))
    }

    fn write(&self, body: &mut WriteBody<'_>) -> Result<WriteOutcome, StoreError> {
        let _guard = self.lock_writer();
        let head = self.snapshot_at_head()?;
        let mut txn = RocksTxn {
            revision: head.revision.next(),
            now: head.now,
            head,
            staged: staged::Staged::default(),
            records: Vec::new(),
            schema: None,
            log: LogEntryWriter::default(),
            head_expiry: RefCell::new(HashMap::new()),
            final_expiry: BTreeMap::new(),
        };
        body(&mut txn)?;
        if txn.is_empty() {
            return Ok(WriteOutcome {
                revision: txn.head.revision,
                committed: false,
            });
        }
        Ok(WriteOutcome {
            revision: self.commit(txn)?,
            committed: true,
        })
    }

    fn changes_since(
        &self,
        after: Revision,
        limit: usize,
    ) -> Result<Vec<LoggedRevision>, StoreError> {
        // Only published revisions: a batch committed but not yet published stays hidden.
        let head = self.head_revision();
        let oldest = self.oldest_revision();
        if after < oldest {
            return Err(StoreError::RevisionUnavailable {
                requested: after,
                oldest,
                head,
            });
        }
        let Some(first) = after.0.checked_add(1) else {
            return Ok(Vec::new());
        };
        let mut iter = self.db.raw_iterator_cf(self.cf(CF_LOG)?);
        iter.seek(LogKey(Revision(first)).encode());
        let mut out: Vec<LoggedRevision> = Vec::new();
        while let Some((key, value)) = iter.item() {
            if let Some(part) = BulkPartKey::decode(key)? {
                // Parts of a revision after its entry (the summary is read with the entry);
                // parts of a revision not yet committed end the read like its entry would.
                if part.revision > head {
                    break;
                }
                iter.seek(LogKey(part.revision.next()).encode());
                continue;
            }
            if out.len() >= limit {
                break;
            }
            let LogKey(revision) = LogKey::decode(key)?;
            if revision > head {
                break;
            }
            let entry = LogEntry::decode(value)?;
            out.push(LoggedRevision {
                revision,
                committed_at: entry.committed_at,
                changes: entry.changes,
                schema: entry.schema,
                bulk: None,
            });
            iter.next();
            if let Some((key, value)) = iter.item() {
                if BulkPartKey::decode(key)? == Some(BulkPartKey { revision, part: 0 }) {
                    let summary = BulkSummaryValue::decode(value)?;
                    if let Some(last) = out.last_mut() {
                        last.bulk = Some(BulkSummary {
                            changes: summary.changes,
                            parts: summary.parts,
                            relations: summary
                                .relations
                                .into_iter()
                                .map(|(resource_type, relation, first_part, last_part)| {
                                    BulkRelation {
                                        resource_type,
                                        relation,
                                        first_part,
                                        last_part,
                                    }
                                })
                                .collect(),
                        });
                    }
                    iter.seek(LogKey(revision.next()).encode());
                }
            }
        }
        iter.status().map_err(backend)?;
        Ok(out)
    }

    fn bulk_load(
        &self,
        source: &mut dyn BulkSource,
        mode: ImportMode,
    ) -> Result<BulkOutcome, BulkError> {
        self.load_bulk(source, mode)
    }

    fn bulk_part(&self, revision: Revision, part: u32) -> Result<Vec<Change>, StoreError> {
        let head = self.head_revision();
        let oldest = self.oldest_revision();
        if revision <= oldest || revision > head {
            return Err(StoreError::RevisionUnavailable {
                requested: revision,
                oldest,
                head,
            });
        }
        let key = BulkPartKey { revision, part }.encode();
        match self.db.get_cf(self.cf(CF_LOG)?, key).map_err(backend)? {
            Some(bytes) if part > 0 => decode_bulk_part(&bytes),
            _ => Err(StoreError::Corrupt(format!(
                "revision {revision} has no bulk log part {part}"
            ))),
        }
    }

    fn oldest_revision(&self) -> Revision {
        Revision(self.oldest.load(Ordering::Acquire))
    }

    fn prune_history(&self, horizon: Revision) -> Result<Revision, StoreError> {
        let _guard = self.lock_writer();
        let horizon = horizon.min(self.head_revision());
        let oldest = self.oldest_revision();
        if horizon <= oldest {
            return Ok(oldest);
        }
        // Log entries (oldest, horizon] go in one range deletion; the new oldest revision is
        // recorded in the same batch, so a crash leaves one or the other state.
        let mut batch = WriteBatch::default();
        batch.delete_range_cf(
            self.cf(CF_LOG)?,
            LogKey(oldest.next()).encode(),
            LogKey(horizon.next()).encode(),
        );
        batch.put_cf(
            self.cf(CF_META)?,
            META_OLDEST_REVISION,
            super::keys::encode_revision(horizon),
        );
        let mut write_options = WriteOptions::default();
        write_options.set_sync(self.options.sync_writes);
        self.db.write_opt(batch, &write_options).map_err(backend)?;
        self.oldest.store(horizon.0, Ordering::Release);
        {
            let mut retained = self.lock_retained();
            while retained.len() > 1 && retained.front().is_some_and(|r| r.revision < horizon) {
                retained.pop_front();
            }
        }
        drop(_guard);
        // A range deletion only hides the entries: compacting the range drops them (and the
        // tombstone) from the files, so the space comes back now rather than at RocksDB's next
        // compaction of those files; writers go on meanwhile. The range starts at the start of
        // the log: entries an earlier prune deleted while retained snapshots still showed them
        // could not be dropped then, and go now (files already empty cost next to nothing).
        self.db.compact_range_cf(
            self.cf(CF_LOG)?,
            None::<&[u8]>,
            Some(LogKey(horizon.next()).encode()),
        );
        Ok(horizon)
    }

    fn prune_older_than(&self, retention: Duration) -> Result<Revision, StoreError> {
        let window = chrono::Duration::from_std(retention).unwrap_or(chrono::Duration::MAX);
        let Some(cutoff) = self.options.clock.now().checked_sub_signed(window) else {
            return Ok(self.oldest_revision());
        };
        // Entries are in commit order: read from the oldest kept one up to the first committed
        // at or after the cutoff (only what is about to be pruned, and one more, is decoded).
        let head = self.head_revision();
        let mut horizon = self.oldest_revision();
        let mut iter = self.db.raw_iterator_cf(self.cf(CF_LOG)?);
        iter.seek(LogKey(horizon.next()).encode());
        while let Some((key, value)) = iter.item() {
            if BulkPartKey::decode(key)?.is_some() {
                iter.next();
                continue;
            }
            let LogKey(revision) = LogKey::decode(key)?;
            if revision > head || LogEntry::decode(value)?.committed_at >= cutoff {
                break;
            }
            horizon = revision;
            iter.next();
        }
        iter.status().map_err(backend)?;
        drop(iter);
        self.prune_history(horizon)
    }

    fn reads_are_local(&self) -> bool {
        true
    }

    fn size_on_disk(&self) -> u64 {
        COLUMN_FAMILIES
            .iter()
            .filter_map(|name| self.cf(name).ok())
            .flat_map(|cf| {
                [
                    "rocksdb.total-sst-files-size",
                    "rocksdb.cur-size-all-mem-tables",
                ]
                .map(|property| self.db.property_int_value_cf(cf, property))
            })
            .map(|value| value.ok().flatten().unwrap_or(0))
            .sum()
    }
}

/// A read view: a pinned RocksDB snapshot, the head revision it contains, and "now".
struct RocksSnapshot<'a> {
    snap: Arc<OwnedSnapshot>,
    meta: &'a ColumnFamily,
    schema_revision: Revision,
    fwd: &'a ColumnFamily,
    rev: &'a ColumnFamily,
    records: &'a ColumnFamily,
    exp: &'a ColumnFamily,
    revision: Revision,
    now: DateTime<Utc>,
}

type RawItem = Result<(Box<[u8]>, Box<[u8]>), StoreError>;

impl RocksSnapshot<'_> {
    /// Every raw entry of `cf` whose key starts with `prefix`, from `start` (if after the
    /// prefix) on, in key order; expired entries included.
    fn scan(
        &self,
        cf: &ColumnFamily,
        prefix: Vec<u8>,
        start: Option<Vec<u8>>,
    ) -> impl Iterator<Item = RawItem> + '_ {
        let mut read_options = ReadOptions::default();
        if let Some(bound) = prefix_upper_bound(&prefix) {
            read_options.set_iterate_upper_bound(bound);
        }
        let from = match start {
            Some(start) if start > prefix => start,
            _ => prefix.clone(),
        };
        self.snap
            .borrow_dependent()
            .iterator_cf_opt(
                cf,
                read_options,
                IteratorMode::From(&from, Direction::Forward),
            )
            .map(|item| item.map_err(backend))
            .take_while(move |item| match item {
                Ok((key, _)) => key.starts_with(&prefix),
                Err(_) => true,
            })
    }

    /// Visible relationships under `prefix` of `cf`, decoded with `decode_key`, that satisfy
    /// `keep`.
    fn relationships<'s>(
        &'s self,
        cf: &ColumnFamily,
        prefix: Vec<u8>,
        start: Option<Vec<u8>>,
        decode_key: fn(&[u8]) -> Result<RelationshipKey, StoreError>,
        keep: impl Fn(&Relationship) -> bool + 's,
    ) -> RelationshipIter<'s> {
        let now = self.now;
        Box::new(self.scan(cf, prefix, start).filter_map(move |item| {
            let decoded = item.and_then(|(key, value)| {
                let value = RelationshipValue::decode(&value)?;
                if value.is_expired(now) {
                    return Ok(None);
                }
                let relationship = decode_key(&key)?.into_relationship(value);
                Ok(keep(&relationship).then_some(relationship))
            });
            decoded.transpose()
        }))
    }

    /// Visible relationships under each prefix of `ranges` (sorted by prefix, deduplicated,
    /// none a prefix of another) of `cf`, in key order through one iterator, decoded with
    /// `decode_key`, that satisfy `keep` for the range they were found in.
    fn relationships_in_ranges<'s, T: 's>(
        &'s self,
        cf: &ColumnFamily,
        ranges: Vec<(Vec<u8>, T)>,
        decode_key: fn(&[u8]) -> Result<RelationshipKey, StoreError>,
        keep: impl Fn(&Relationship, &T) -> bool + 's,
    ) -> RelationshipIter<'s> {
        let now = self.now;
        let mut read_options = ReadOptions::default();
        if let Some(bound) = ranges
            .last()
            .and_then(|(prefix, _)| prefix_upper_bound(prefix))
        {
            read_options.set_iterate_upper_bound(bound);
        }
        let (prefixes, wanted): (Vec<Vec<u8>>, Vec<T>) = ranges.into_iter().unzip();
        let iter = self
            .snap
            .borrow_dependent()
            .raw_iterator_cf_opt(cf, read_options);
        Box::new(
            ranges::RangeScan::new(iter, prefixes.into()).filter_map(move |item| {
                let decoded = item.and_then(|(range, key, value)| {
                    let value = RelationshipValue::decode(&value)?;
                    if value.is_expired(now) {
                        return Ok(None);
                    }
                    let relationship = decode_key(&key)?.into_relationship(value);
                    let kept = wanted.get(range).is_some_and(|w| keep(&relationship, w));
                    Ok(kept.then_some(relationship))
                });
                decoded.transpose()
            }),
        )
    }

    /// Hands `found` the resource id of every live reverse entry under `prefixes` (each
    /// `subject parts 0 resource_type 0 relation 0`: past the prefix, the rest of the key is
    /// the id), read in one ordered multi-range scan with each id borrowed from the iterator.
    fn resource_ids_in(
        &self,
        prefixes: ranges::Prefixes,
        found: &mut dyn FnMut(&str),
    ) -> Result<(), StoreError> {
        let prefixes = prefixes.into_sorted();
        let mut read_options = ReadOptions::default();
        if let Some(bound) = prefixes.last().and_then(prefix_upper_bound) {
            read_options.set_iterate_upper_bound(bound);
        }
        let iter = self
            .snap
            .borrow_dependent()
            .raw_iterator_cf_opt(self.rev, read_options);
        let now = self.now;
        let mut scan = ranges::RangeScan::new(iter, prefixes);
        let mut read = |_, prefix: &[u8], key: &[u8], value: &[u8]| -> Result<(), StoreError> {
            let id = key
                .get(prefix.len()..)
                .filter(|id| !id.is_empty() && !id.contains(&0))
                .ok_or_else(|| {
                    StoreError::Corrupt("a reverse key with no resource id".to_string())
                })?;
            if RelationshipValue::is_expired_bytes(value, now)? {
                return Ok(());
            }
            let id = std::str::from_utf8(id)
                .map_err(|err| StoreError::Corrupt(format!("reverse key: {err}")))?;
            found(id);
            Ok(())
        };
        while let Some(entry) = scan.next_with(&mut read) {
            entry??;
        }
        Ok(())
    }

    /// The stored bytes of a record.
    fn raw_record(&self, key: &RecordKey) -> Result<Option<Vec<u8>>, StoreError> {
        self.snap
            .borrow_dependent()
            .get_cf(self.records, key.as_bytes())
            .map_err(backend)
    }

    /// The stored value under `key`, expired or not.
    /// The stored values of `keys` (sorted ascending), in one batched read.
    fn get_values<'k>(
        &self,
        keys: impl Iterator<Item = &'k ForwardKey>,
    ) -> Result<Vec<Option<RelationshipValue>>, StoreError> {
        let snapshot = self.snap.borrow_dependent();
        let mut options = ReadOptions::default();
        options.set_snapshot(snapshot);
        self.snap
            .borrow_owner()
            .batched_multi_get_cf_opt(self.fwd, keys.map(ForwardKey::as_bytes), true, &options)
            .into_iter()
            .map(|found| {
                found
                    .map_err(backend)?
                    .map(|bytes| RelationshipValue::decode(&bytes))
                    .transpose()
            })
            .collect()
    }

    fn get_value(&self, key: &ForwardKey) -> Result<Option<RelationshipValue>, StoreError> {
        self.snap
            .borrow_dependent()
            .get_pinned_cf(self.fwd, key.as_bytes())
            .map_err(backend)?
            .map(|bytes| RelationshipValue::decode(&bytes))
            .transpose()
    }
}

fn error_iter<'a>(err: StoreError) -> RelationshipIter<'a> {
    Box::new(std::iter::once(Err(err)))
}

impl Snapshot for RocksSnapshot<'_> {
    fn revision(&self) -> Revision {
        self.revision
    }

    fn now(&self) -> Option<DateTime<Utc>> {
        Some(self.now)
    }

    fn schema_revision(&self) -> Revision {
        self.schema_revision
    }

    fn schema_text(&self) -> Result<Option<String>, StoreError> {
        match self
            .snap
            .borrow_dependent()
            .get_cf(self.meta, META_SCHEMA)
            .map_err(backend)?
        {
            None => Ok(None),
            Some(bytes) => String::from_utf8(bytes)
                .map(Some)
                .map_err(|e| StoreError::Corrupt(format!("schema text: {e}"))),
        }
    }

    fn expired(&self, limit: usize) -> Result<Vec<Relationship>, StoreError> {
        // The expiration index up to "now" (inclusive), soonest first: no scan of `fwd`.
        let mut read_options = ReadOptions::default();
        if let Some(after_now) = self
            .now
            .checked_add_signed(chrono::Duration::nanoseconds(1))
        {
            read_options.set_iterate_upper_bound(ExpiryKey::instant(after_now).to_vec());
        }
        let mut entries: Vec<(DateTime<Utc>, ForwardKey)> = Vec::new();
        for item in self.snap.borrow_dependent().iterator_cf_opt(
            self.exp,
            read_options,
            IteratorMode::Start,
        ) {
            if entries.len() >= limit {
                break;
            }
            let (key, _) = item.map_err(backend)?;
            let forward = ExpiryKey::forward_of(&key)?;
            let at = ExpiryKey::instant_of(&key)?;
            entries.push((at, ForwardKey::from_stored(forward.to_vec())));
        }
        let mut order: Vec<usize> = (0..entries.len()).collect();
        order.sort_unstable_by(|&a, &b| entries[a].1.cmp(&entries[b].1));
        let values = self.get_values(order.iter().map(|&index| &entries[index].1))?;
        let mut found: Vec<Option<Relationship>> = vec![None; entries.len()];
        for (&index, value) in order.iter().zip(values) {
            let (at, key) = &entries[index];
            match value {
                Some(value) if value.expiration == Some(*at) && value.is_expired(self.now) => {
                    found[index] =
                        Some(ForwardKey::decode(key.as_bytes())?.into_relationship(value));
                }
                _ => tracing::warn!(
                    key = ?String::from_utf8_lossy(key.as_bytes()),
                    "an expiration index entry names no relationship expiring then; skipped"
                ),
            }
        }
        Ok(found.into_iter().flatten().collect())
    }

    fn get(
        &self,
        resource: &ObjectRef,
        relation: &str,
        subject: &SubjectRef,
    ) -> Result<Option<Relationship>, StoreError> {
        // A relationship the key layout cannot represent is never stored.
        let Ok(key) = ForwardKey::new(resource, relation, subject) else {
            return Ok(None);
        };
        Ok(self
            .get_value(&key)?
            .filter(|value| !value.is_expired(self.now))
            .map(|value| {
                RelationshipKey {
                    resource: resource.clone(),
                    relation: relation.to_string(),
                    subject: subject.clone(),
                }
                .into_relationship(value)
            }))
    }

    fn subjects_of(&self, resource: &ObjectRef, relation: &str) -> RelationshipIter<'_> {
        let resource = resource.clone();
        let relation = relation.to_string();
        let prefix = ForwardKey::subjects_prefix(&resource, &relation);
        self.relationships(self.fwd, prefix, None, ForwardKey::decode, move |found| {
            found.resource == resource && found.relation == relation
        })
    }

    fn subject_refs_of(&self, resource: &ObjectRef, relation: &str) -> SubjectIter<'_> {
        // One raw iterator over the prefix; each subject is decoded from the key's tail, with
        // no copy of the key or value and none of the resource's parts.
        let prefix = ForwardKey::subjects_prefix(resource, relation);
        let mut read_options = ReadOptions::default();
        if let Some(bound) = prefix_upper_bound(&prefix) {
            read_options.set_iterate_upper_bound(bound);
        }
        let mut iter = self
            .snap
            .borrow_dependent()
            .raw_iterator_cf_opt(self.fwd, read_options);
        iter.seek(&prefix);
        let now = self.now;
        let mut finished = false;
        Box::new(std::iter::from_fn(move || {
            while !finished {
                let (Some(key), Some(value)) = (iter.key(), iter.value()) else {
                    finished = true;
                    return iter.status().err().map(|err| Err(backend(err)));
                };
                if !key.starts_with(&prefix) {
                    finished = true;
                    return None;
                }
                let found = RelationshipValue::decode(value).and_then(|value| {
                    if value.is_expired(now) {
                        Ok(None)
                    } else {
                        ForwardKey::decode_subject(&prefix, key).map(Some)
                    }
                });
                iter.next();
                match found {
                    Ok(None) => continue,
                    Ok(Some(subject)) => return Some(Ok(subject)),
                    Err(err) => {
                        finished = true;
                        return Some(Err(err));
                    }
                }
            }
            None
        }))
    }

    fn resources_with_subject(
        &self,
        subject: &SubjectRef,
        resource_type: &str,
        relation: &str,
    ) -> RelationshipIter<'_> {
        let subject = subject.clone();
        let resource_type = resource_type.to_string();
        let relation = relation.to_string();
        let prefix = ReverseKey::resources_prefix(&subject, &resource_type, &relation);
        self.relationships(self.rev, prefix, None, ReverseKey::decode, move |found| {
            found.subject == subject
                && found.resource.object_type == resource_type
                && found.relation == relation
        })
    }

    fn subjects_of_many(&self, resources: &[ObjectRef], relation: &str) -> RelationshipIter<'_> {
        let mut ranges: Vec<(Vec<u8>, ObjectRef)> = resources
            .iter()
            .map(|resource| {
                (
                    ForwardKey::subjects_prefix(resource, relation),
                    resource.clone(),
                )
            })
            .collect();
        ranges.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        ranges.dedup_by(|a, b| a.0 == b.0);
        let relation = relation.to_string();
        self.relationships_in_ranges(
            self.fwd,
            ranges,
            ForwardKey::decode,
            move |found, resource| found.resource == *resource && found.relation == relation,
        )
    }

    fn resources_with_subjects(
        &self,
        subjects: &[SubjectRef],
        resource_type: &str,
        relation: &str,
    ) -> RelationshipIter<'_> {
        let mut ranges: Vec<(Vec<u8>, SubjectRef)> = subjects
            .iter()
            .map(|subject| {
                (
                    ReverseKey::resources_prefix(subject, resource_type, relation),
                    subject.clone(),
                )
            })
            .collect();
        ranges.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        ranges.dedup_by(|a, b| a.0 == b.0);
        let resource_type = resource_type.to_string();
        let relation = relation.to_string();
        self.relationships_in_ranges(
            self.rev,
            ranges,
            ReverseKey::decode,
            move |found, subject| {
                found.subject == *subject
                    && found.resource.object_type == resource_type
                    && found.relation == relation
            },
        )
    }

    fn resource_ids_with_subjects(
        &self,
        subjects: &[SubjectRef],
        resource_type: &str,
        relation: &str,
        found: &mut dyn FnMut(&str),
    ) -> Result<(), StoreError> {
        let mut prefixes = ranges::Prefixes::with_capacity(subjects.len(), 32);
        for subject in subjects {
            prefixes.push(&[&ReverseKey::resources_prefix(
                subject,
                resource_type,
                relation,
            )]);
        }
        self.resource_ids_in(prefixes, found)
    }

    fn resource_ids_with_subject_ids(
        &self,
        subject_type: &str,
        subject_ids: &mut dyn Iterator<Item = &str>,
        subject_relation: Option<&str>,
        resource_type: &str,
        relation: &str,
        found: &mut dyn FnMut(&str),
    ) -> Result<(), StoreError> {
        // Every prefix is `subject_type 0 id 0 subject_relation 0 resource_type 0 relation 0`
        // (as `ReverseKey::resources_prefix` writes it), built in one buffer.
        let head = ReverseKey::resources_prefix(
            &SubjectRef {
                object: ObjectRef::new_unchecked(subject_type, ""),
                relation: subject_relation.map(str::to_string),
            },
            resource_type,
            relation,
        );
        let (type_part, tail) = head.split_at(subject_type.len() + 1);
        // `tail` starts with the empty id's separator.
        let mut prefixes =
            ranges::Prefixes::with_capacity(subject_ids.size_hint().0, head.len() + 8);
        for id in subject_ids {
            prefixes.push(&[type_part, id.as_bytes(), tail]);
        }
        self.resource_ids_in(prefixes, found)
    }

    fn record(&self, keyspace: &str, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        self.raw_record(&RecordKey::new(keyspace, key)?)
    }

    fn records(&self, keyspace: &str, key_prefix: &str) -> RecordIter<'_> {
        let prefix = match RecordKey::prefix(keyspace, key_prefix) {
            Ok(prefix) => prefix,
            Err(err) => return Box::new(std::iter::once(Err(err))),
        };
        Box::new(self.scan(self.records, prefix, None).map(|item| {
            let (key, value) = item?;
            let (_, key) = RecordKey::decode(&key)?;
            Ok((key, value.into_vec()))
        }))
    }

    fn read(
        &self,
        filter: &RelationshipFilter,
        after: Option<&Relationship>,
    ) -> RelationshipIter<'_> {
        let owned = filter.clone();
        let keep = move |relationship: &Relationship| owned.matches(relationship);
        match (&filter.resource_type, &filter.subject) {
            (None, Some(subject)) => {
                let start = match after.map(ReverseKey::of).transpose() {
                    Ok(start) => start.map(|key| key_successor(key.as_bytes())),
                    Err(err) => return error_iter(err),
                };
                let prefix = ReverseKey::scan_prefix(subject);
                self.relationships(self.rev, prefix, start, ReverseKey::decode, keep)
            }
            _ => {
                let start = match after.map(ForwardKey::of).transpose() {
                    Ok(start) => start.map(|key| key_successor(key.as_bytes())),
                    Err(err) => return error_iter(err),
                };
                let prefix = ForwardKey::scan_prefix(filter);
                self.relationships(self.fwd, prefix, start, ForwardKey::decode, keep)
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    //! RocksDB's own mechanics: the write-ahead log, the format version, corrupt bytes and the
    //! window of retained snapshots. What every backend must do is the store conformance suite
    //! (`tests/it/store_conformance.rs`).

    use super::*;
    use crate::store::Writes;
    use crate::transaction::Update;
    use tempfile::TempDir;

    fn rel(text: &str) -> Relationship {
        Relationship::parse(text).unwrap()
    }

    fn open(dir: &TempDir) -> RocksStore {
        RocksStore::open(dir.path(), StoreOptions::default()).unwrap()
    }

    fn update(op: UpdateOp, text: &str) -> Update {
        Update {
            op,
            relationship: rel(text),
        }
    }

    fn touch_all(store: &RocksStore, texts: &[&str]) -> Revision {
        let updates: Vec<_> = texts.iter().map(|t| update(UpdateOp::Touch, t)).collect();
        store.write_updates(&updates, &[]).unwrap()
    }

    fn strings(iter: RelationshipIter<'_>) -> Vec<String> {
        iter.map(|r| r.unwrap().to_string()).collect()
    }

    fn all(store: &RocksStore) -> Vec<String> {
        strings(
            store
                .snapshot()
                .unwrap()
                .read(&RelationshipFilter::default(), None),
        )
    }

    #[test]
    fn a_clean_close_leaves_no_write_ahead_log_to_replay() {
        let dir = TempDir::new().unwrap();
        {
            let store = open(&dir);
            let texts: Vec<String> = (0..500)
                .map(|i| format!("doc:{i}#viewer@user:u{i}"))
                .collect();
            let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
            touch_all(&store, &refs);
        }
        let log_bytes: u64 = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|entry| entry.unwrap())
            .filter(|entry| entry.file_name().to_string_lossy().ends_with(".log"))
            .map(|entry| entry.metadata().unwrap().len())
            .sum();
        assert_eq!(log_bytes, 0, "the memtables were not flushed at close");
        let store = open(&dir);
        assert_eq!(all(&store).len(), 500);
    }

    #[test]
    fn format_version_mismatch_is_detected() {
        let dir = TempDir::new().unwrap();
        drop(open(&dir));
        {
            let descriptors = COLUMN_FAMILIES
                .iter()
                .map(|name| ColumnFamilyDescriptor::new(*name, Options::default()));
            let db = DB::open_cf_descriptors(&Options::default(), dir.path(), descriptors).unwrap();
            let meta = db.cf_handle(CF_META).unwrap();
            db.put_cf(meta, META_FORMAT_VERSION, [FORMAT_VERSION + 1])
                .unwrap();
        }
        let err = RocksStore::open(dir.path(), StoreOptions::default()).unwrap_err();
        match err {
            StoreError::FormatVersion { found, expected } => {
                assert_eq!((found, expected), (FORMAT_VERSION + 1, FORMAT_VERSION));
            }
            other => panic!("expected a format version error, got {other}"),
        }
    }

    #[test]
    fn corrupt_value_is_an_error_not_a_panic() {
        let dir = TempDir::new().unwrap();
        {
            let store = open(&dir);
            touch_all(&store, &["doc:1#viewer@user:tom"]);
            let key = ForwardKey::of(&rel("doc:1#viewer@user:tom")).unwrap();
            store
                .db
                .put_cf(store.cf(CF_FWD).unwrap(), key.as_bytes(), b"\xff\xff")
                .unwrap();
            store
                .db
                .put_cf(store.cf(CF_FWD).unwrap(), b"garbage", b"")
                .unwrap();
            // Written behind the store's back, so read from a fresh snapshot of the database
            // (reads through the store see the head it committed).
            let results: Vec<_> = store
                .snapshot_at_head()
                .unwrap()
                .read(&RelationshipFilter::default(), None)
                .collect();
            assert_eq!(results.len(), 2);
            assert!(results
                .iter()
                .all(|r| matches!(r, Err(StoreError::Corrupt(_)))));
            let doc1 = ObjectRef::parse("doc:1").unwrap();
            let tom = SubjectRef::parse("user:tom").unwrap();
            assert!(matches!(
                store.snapshot_at_head().unwrap().get(&doc1, "viewer", &tom),
                Err(StoreError::Corrupt(_))
            ));
        }
    }

    /// The `exp` entries, and the entries `fwd` calls for.
    fn index_and_expected(store: &RocksStore) -> (Vec<Vec<u8>>, Vec<Vec<u8>>) {
        let db = &store.db;
        let stored: Vec<Vec<u8>> = db
            .iterator_cf(store.cf(CF_EXP).unwrap(), IteratorMode::Start)
            .map(|item| item.unwrap().0.to_vec())
            .collect();
        let mut expected: Vec<Vec<u8>> = db
            .iterator_cf(store.cf(CF_FWD).unwrap(), IteratorMode::Start)
            .filter_map(|item| {
                let (key, value) = item.unwrap();
                RelationshipValue::decode(&value)
                    .unwrap()
                    .expiration
                    .map(|at| ExpiryKey::new(at, &key).as_bytes().to_vec())
            })
            .collect();
        expected.sort();
        (stored, expected)
    }

    #[test]
    fn the_expiration_index_matches_the_forward_index_after_any_writes() {
        use proptest::prelude::*;
        use proptest::test_runner::{Config, TestRunner};
        let expiring = |n: u8| match n % 4 {
            0 => String::new(),
            k => format!("[expiration:2030-01-01T00:0{k}:00Z]"),
        };
        struct One(Option<Relationship>);
        impl crate::store::BulkSource for One {
            fn start(&mut self, _head: &dyn Snapshot) -> Result<(), StoreError> {
                Ok(())
            }
            fn next_item(&mut self) -> Option<Result<Relationship, StoreError>> {
                self.0.take().map(Ok)
            }
        }
        let op = (0u8..5, 0u8..6, 0u8..8);
        let mut runner = TestRunner::new(Config {
            cases: 12,
            ..Config::default()
        });
        runner
            .run(&prop::collection::vec(op, 1..40), |ops| {
                let dir = TempDir::new().unwrap();
                let clock = Arc::new(crate::clock::FixedClock::new(
                    crate::tuple::parse_expiration("2030-01-01T00:00:00Z").unwrap(),
                ));
                let store = RocksStore::open(
                    dir.path(),
                    StoreOptions {
                        sync_writes: false,
                        clock: clock.clone(),
                        ..StoreOptions::default()
                    },
                )
                .unwrap();
                for (kind, doc, expiry) in ops {
                    let text = format!("doc:{doc}#viewer@user:tom{}", expiring(expiry));
                    match kind {
                        0 => {
                            touch_all(&store, &[&text]);
                        }
                        1 => {
                            store
                                .write_updates(&[update(UpdateOp::Delete, &text)], &[])
                                .unwrap();
                        }
                        4 => {
                            // One transaction mixing rows with and without an expiration.
                            let texts: Vec<String> = (0..3u8)
                                .map(|k| {
                                    format!(
                                        "doc:{}#viewer@user:tom{}",
                                        (doc + k) % 6,
                                        expiring(expiry.wrapping_add(k))
                                    )
                                })
                                .collect();
                            let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
                            touch_all(&store, &refs);
                        }
                        2 => {
                            store
                                .bulk_load(&mut One(Some(rel(&text))), ImportMode::Touch)
                                .unwrap();
                        }
                        _ => {
                            clock.set(
                                crate::tuple::parse_expiration(&format!(
                                    "2030-01-01T00:0{}:30Z",
                                    expiry % 5
                                ))
                                .unwrap(),
                            );
                            store.sweep_expired().unwrap();
                        }
                    }
                    let (stored, expected) = index_and_expected(&store);
                    prop_assert_eq!(stored, expected);
                }
                Ok(())
            })
            .unwrap();
    }

    #[test]
    fn opening_a_format_2_folder_builds_the_expiration_index() {
        let dir = TempDir::new().unwrap();
        let clock = Arc::new(crate::clock::FixedClock::new(
            crate::tuple::parse_expiration("2030-01-01T00:00:00Z").unwrap(),
        ));
        let options = StoreOptions {
            clock: clock.clone(),
            ..StoreOptions::default()
        };
        {
            let store = RocksStore::open(dir.path(), options.clone()).unwrap();
            touch_all(
                &store,
                &[
                    "doc:1#viewer@user:tom[expiration:2030-01-01T00:10:00Z]",
                    "doc:2#viewer@user:tom",
                    "doc:3#viewer@user:tom[expiration:2030-01-01T00:20:00Z]",
                ],
            );
            // What a build before the index left: no `exp` entries, format 2.
            let exp = store.cf(CF_EXP).unwrap();
            store
                .db
                .delete_range_cf(exp, [0u8].as_slice(), [0xffu8; 16].as_slice())
                .unwrap();
            store
                .db
                .put_cf(store.cf(CF_META).unwrap(), META_FORMAT_VERSION, [2u8])
                .unwrap();
            let (stored, _) = index_and_expected(&store);
            assert!(stored.is_empty());
        }
        let store = RocksStore::open(dir.path(), options).unwrap();
        let (stored, expected) = index_and_expected(&store);
        assert_eq!(stored.len(), 2);
        assert_eq!(stored, expected);
        let version = store
            .db
            .get_cf(store.cf(CF_META).unwrap(), META_FORMAT_VERSION)
            .unwrap();
        assert_eq!(version, Some(vec![FORMAT_VERSION]));
        clock.set(crate::tuple::parse_expiration("2030-01-01T00:15:00Z").unwrap());
        assert_eq!(store.sweep_expired().unwrap(), 1);
        assert_eq!(all(&store).len(), 2);
    }

    #[test]
    fn recent_revisions_are_readable_exactly_until_they_leave_the_window() {
        let dir = TempDir::new().unwrap();
        let options = StoreOptions {
            sync_writes: false,
            snapshot_window: 3,
            ..StoreOptions::default()
        };
        let store = RocksStore::open(dir.path(), options).unwrap();
        touch_all(&store, &["doc:1#viewer@user:tom"]);
        touch_all(&store, &["doc:1#viewer@user:ann"]);
        let at_one = store.snapshot_at(Revision(1)).unwrap();
        assert_eq!(at_one.revision(), Revision(1));
        assert_eq!(
            strings(at_one.read(&RelationshipFilter::default(), None)),
            vec!["doc:1#viewer@user:tom"]
        );
        touch_all(&store, &["doc:1#viewer@user:bob"]);
        touch_all(&store, &["doc:1#viewer@user:cat"]);
        // The window holds revisions 2..=4 now; 1 is gone, though a view taken earlier lives on.
        match store.snapshot_at(Revision(1)) {
            Err(StoreError::RevisionUnavailable {
                requested,
                oldest,
                head,
            }) => {
                assert_eq!(
                    (requested, oldest, head),
                    (Revision(1), Revision(2), Revision(4))
                );
            }
            Err(other) => panic!("unexpected error {other}"),
            Ok(_) => panic!("revision 1 should have left the window"),
        }
        assert_eq!(at_one.read(&RelationshipFilter::default(), None).count(), 1);
        let at_three = store.snapshot_at(Revision(3)).unwrap();
        assert_eq!(
            at_three.read(&RelationshipFilter::default(), None).count(),
            3
        );
    }
}
