//! Imports on RocksDB: sorted SST files for `fwd`, `rev` and the log, ingested into the
//! database instead of written through the memtable and the write-ahead log.
//!
//! Under the write lock, at revision R = head + 1:
//! 1. every item is encoded (forward key, reverse key, value) into two in-memory runs, which
//!    are sorted (the reverse one on a second thread);
//! 2. one pass over the sorted forward run refuses duplicates, merges with the head's `fwd`
//!    (CREATE fails on a live relationship; anything overwritten keeps its old value as an
//!    undo entry) and writes the `fwd` files, the log parts and the undo entries;
//! 3. `meta` gets the pending mark (R, synced); then the undo entries (`meta`), the log parts
//!    (`log`), `fwd` and `rev` are ingested, each ingestion atomic on its own;
//! 4. one synced batch commits: the ordinary log entry of R, the head revision, and the removal
//!    of the pending mark and the undo entries.
//!
//! Readers never see steps 3's files before step 4: they read the retained snapshot of the
//! head, and ingested files get sequence numbers after it. A crash before step 4 leaves the
//! pending mark; [`RocksStore::open`] then rolls the import back from its log parts (deleting
//! what it wrote, restoring what it overwrote) before anything reads. So a crash at any point
//! leaves the whole import or none of it.

use std::cmp::Ordering;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use rocksdb::{IngestExternalFileOptions, SstFileWriter, WriteBatch, WriteOptions};

use super::{backend, column_family, column_family_options, RocksStore};
use crate::store::keys::{
    append_keys, encode_bulk_part, encode_revision, prefix_upper_bound, BulkPartKey,
    BulkSummaryValue, ForwardKey, LogEntry, LogKey, RelationshipValue, ReverseKey,
    BULK_UNDO_PREFIX, CF_FWD, CF_LOG, CF_META, CF_REV, META_BULK_PENDING, META_HEAD_REVISION,
};
use crate::store::{BulkError, BulkOutcome, BulkSource, StoreError};
use crate::transaction::ImportMode;

/// Changes per log part: small enough that a reader holds one part at a time cheaply.
pub(super) const PART_CHANGES: usize = 4_096;
/// An ingested file is closed when it reaches this size and the next one begins.
const FILE_BYTES: u64 = 256 << 20;
/// Folder (inside the database folder) where an import's files are built.
const WORK_DIR: &str = "import";
/// Steps of `next` before a merge with the stored keys seeks instead.
const SCAN_STEPS: usize = 8;

/// Encoded entries (key then value, back to back in one buffer) and their order.
#[derive(Default)]
struct Run {
    bytes: Vec<u8>,
    items: Vec<Item>,
}

/// One entry of a [`Run`]: its first 32 key bytes (zero-padded, so comparing them agrees with
/// comparing whole keys wherever they differ; most keys fit, so sorting rarely reads the
/// buffer), where it lies, and the item it came from.
#[derive(Clone, Copy)]
struct Item {
    prefix: (u128, u128),
    start: usize,
    key_len: u32,
    value_len: u32,
    index: u64,
}

impl Run {
    /// Records the key written into `bytes` from `start` on, then appends `value` after it.
    fn seal(&mut self, start: usize, value: &[u8], index: u64) -> Result<(), StoreError> {
        let key = &self.bytes[start..];
        let mut head = [0u8; 32];
        let take = key.len().min(32);
        head[..take].copy_from_slice(&key[..take]);
        let (high, low) = head.split_at(16);
        let word = |bytes: &[u8]| {
            let mut array = [0u8; 16];
            array.copy_from_slice(bytes);
            u128::from_be_bytes(array)
        };
        let too_long = || StoreError::Backend("an imported relationship is too large".into());
        self.items.push(Item {
            prefix: (word(high), word(low)),
            start,
            key_len: u32::try_from(key.len()).map_err(|_| too_long())?,
            value_len: u32::try_from(value.len()).map_err(|_| too_long())?,
            index,
        });
        self.bytes.extend_from_slice(value);
        Ok(())
    }

    fn key(&self, item: &Item) -> &[u8] {
        &self.bytes[item.start..item.start + item.key_len as usize]
    }

    fn value(&self, item: &Item) -> &[u8] {
        let start = item.start + item.key_len as usize;
        &self.bytes[start..start + item.value_len as usize]
    }

    fn sort(&mut self) {
        let bytes = &self.bytes;
        let key = |item: &Item| &bytes[item.start..item.start + item.key_len as usize];
        self.items.sort_unstable_by(|a, b| {
            a.prefix
                .cmp(&b.prefix)
                .then_with(|| {
                    if a.key_len <= 32 && b.key_len <= 32 {
                        // Both keys are whole in their prefixes (padding sorts first).
                        a.key_len.cmp(&b.key_len)
                    } else {
                        key(a).cmp(key(b))
                    }
                })
                .then(a.index.cmp(&b.index))
        });
    }

    /// The first pair of equal keys, as the later item of the pair (runs are sorted by key,
    /// then by item).
    fn first_duplicate(&self) -> Option<&Item> {
        self.items
            .windows(2)
            .filter(|pair| self.key(&pair[0]) == self.key(&pair[1]))
            .map(|pair| &pair[1])
            .min_by_key(|item| item.index)
    }
}

/// Writes sorted `(key, value)` pairs into SST files for the column family `cf_name` under
/// `dir`, named `{name}-{n}.sst`, one more each time a file reaches [`FILE_BYTES`].
struct SstFiles<'o> {
    dir: PathBuf,
    name: &'static str,
    options: &'o rocksdb::Options,
    writer: Option<SstFileWriter<'o>>,
    files: Vec<PathBuf>,
}

impl<'o> SstFiles<'o> {
    fn new(dir: &Path, name: &'static str, options: &'o rocksdb::Options) -> Self {
        Self {
            dir: dir.to_path_buf(),
            name,
            options,
            writer: None,
            files: Vec::new(),
        }
    }

    fn put(&mut self, key: &[u8], value: &[u8]) -> Result<(), StoreError> {
        if self
            .writer
            .as_ref()
            .is_some_and(|w| w.file_size() >= FILE_BYTES)
        {
            self.close()?;
        }
        let writer = match &mut self.writer {
            Some(writer) => writer,
            None => {
                let path = self
                    .dir
                    .join(format!("{}-{}.sst", self.name, self.files.len()));
                let writer = SstFileWriter::create(self.options);
                writer.open(&path).map_err(backend)?;
                self.files.push(path);
                self.writer.insert(writer)
            }
        };
        writer.put(key, value).map_err(backend)
    }

    fn close(&mut self) -> Result<(), StoreError> {
        if let Some(mut writer) = self.writer.take() {
            writer.finish().map_err(backend)?;
        }
        Ok(())
    }

    fn finish(mut self) -> Result<Vec<PathBuf>, StoreError> {
        self.close()?;
        Ok(std::mem::take(&mut self.files))
    }
}

/// The files an import ingests, per column family.
struct Built {
    undo: Vec<PathBuf>,
    log: Vec<PathBuf>,
    forward: Vec<PathBuf>,
}

/// Moves the work folder out of the way when dropped, whatever happened.
struct WorkDir(PathBuf);

impl Drop for WorkDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn synced() -> WriteOptions {
    let mut options = WriteOptions::default();
    options.set_sync(true);
    options
}

/// The earlier of two item errors (errors are reported for the first item in input order).
fn earliest(found: &mut Option<BulkError>, index: u64, error: StoreError) {
    if found
        .as_ref()
        .is_none_or(|f| f.item.is_none_or(|at| index < at))
    {
        *found = Some(BulkError::at(index, error));
    }
}

impl RocksStore {
    /// [`crate::store::TupleStore::bulk_load`] on RocksDB (see the module documentation).
    pub(super) fn load_bulk(
        &self,
        source: &mut dyn BulkSource,
        mode: ImportMode,
    ) -> Result<BulkOutcome, BulkError> {
        let _guard = self.lock_writer();
        let started = std::time::Instant::now();
        let head = self.snapshot_at_head()?;
        source.start(&head)?;
        let revision = head.revision.next();

        // 1. Encode every item into the forward and reverse runs.
        let mut forward = Run::default();
        let mut reverse = Run::default();
        let mut count = 0u64;
        // Most relationships have neither caveat nor expiration: their value is this one.
        let plain = RelationshipValue {
            caveat: None,
            expiration: None,
            written_at: revision,
        }
        .encode()?;
        let mut own_value: Vec<u8>;
        while let Some(item) = source.next_item() {
            let at = |error| BulkError::at(count, error);
            let relationship = item.map_err(at)?;
            let value = if relationship.caveat.is_none() && relationship.expiration.is_none() {
                &plain
            } else {
                own_value = RelationshipValue::of(&relationship, revision)
                    .encode()
                    .map_err(at)?;
                &own_value
            };
            let (forward_start, reverse_start) = (forward.bytes.len(), reverse.bytes.len());
            append_keys(&relationship, &mut forward.bytes, &mut reverse.bytes).map_err(at)?;
            forward.seal(forward_start, value, count).map_err(at)?;
            reverse.seal(reverse_start, value, count).map_err(at)?;
            count += 1;
        }
        if count == 0 {
            return Ok(BulkOutcome {
                revision: head.revision,
                loaded: 0,
            });
        }
        let read = started.elapsed();
        let work = WorkDir(self.db.path().join(WORK_DIR));
        let _ = std::fs::remove_dir_all(&work.0);
        std::fs::create_dir_all(&work.0)
            .map_err(|e| StoreError::Backend(format!("cannot create the import folder: {e}")))?;

        // 2. Sort both runs (the reverse one beside), check, and build the files.
        let reverse_options = column_family_options(CF_REV);
        let (built, reverse_files) = std::thread::scope(|scope| {
            let reverse_job = scope.spawn(|| {
                reverse.sort();
                let mut files = SstFiles::new(&work.0, "rev", &reverse_options);
                let mut previous: Option<&[u8]> = None;
                for item in &reverse.items {
                    let key = reverse.key(item);
                    if previous != Some(key) {
                        files.put(key, reverse.value(item))?;
                    }
                    previous = Some(key);
                }
                files.finish()
            });
            forward.sort();
            let built = self.build_forward(&head, &forward, &work.0, mode, revision);
            let reverse_files = reverse_job.join().unwrap_or_else(|_| {
                Err(StoreError::Backend(
                    "building the reverse index failed".into(),
                ))
            });
            (built, reverse_files)
        });
        let built = built?;
        let sorted = started.elapsed();
        let reverse_files = reverse_files?;
        drop(head);

        // 3 and 4; anything that fails after the pending mark is rolled back at once.
        if let Err(error) = self.ingest_and_commit(revision, built, reverse_files) {
            if let Err(undo) = Self::roll_back_import(&self.db) {
                tracing::error!(%undo, "rolling back a failed import failed; the next open retries");
            }
            return Err(error.into());
        }
        tracing::debug!(
            relationships = count,
            read_ms = read.as_millis() as u64,
            built_ms = (sorted - read).as_millis() as u64,
            ingested_ms = (started.elapsed() - sorted).as_millis() as u64,
            "import committed"
        );
        Ok(BulkOutcome {
            revision,
            loaded: count,
        })
    }

    /// Steps 3 and 4: the pending mark, the ingestions and the commit, then the new head is
    /// published.
    fn ingest_and_commit(
        &self,
        revision: crate::revision::Revision,
        built: Built,
        reverse_files: Vec<PathBuf>,
    ) -> Result<(), StoreError> {
        let meta = self.cf(CF_META)?;
        self.db
            .put_cf_opt(
                meta,
                META_BULK_PENDING,
                encode_revision(revision),
                &synced(),
            )
            .map_err(backend)?;
        let mut ingest = IngestExternalFileOptions::default();
        ingest.set_move_files(true);
        for (cf, files) in [
            (CF_META, built.undo),
            (CF_LOG, built.log),
            (CF_FWD, built.forward),
            (CF_REV, reverse_files),
        ] {
            if !files.is_empty() {
                self.db
                    .ingest_external_file_cf_opts(self.cf(cf)?, &ingest, files)
                    .map_err(backend)?;
            }
        }
        let mut batch = WriteBatch::default();
        let entry = LogEntry {
            changes: Vec::new(),
            schema: None,
            committed_at: self.options.clock.now(),
        };
        batch.put_cf(
            self.cf(CF_LOG)?,
            LogKey(revision).encode(),
            entry.encode(revision)?,
        );
        batch.put_cf(meta, META_HEAD_REVISION, encode_revision(revision));
        clear_pending(&mut batch, meta);
        self.db.write_opt(batch, &synced()).map_err(backend)?;
        self.retain_snapshot(revision);
        self.head
            .store(revision.0, std::sync::atomic::Ordering::Release);
        Ok(())
    }

    /// Step 2 for the forward run: refuses duplicates and (for CREATE) live stored
    /// relationships, and writes the `fwd` files, the log parts and the undo entries.
    fn build_forward(
        &self,
        head: &super::RocksSnapshot<'_>,
        forward: &Run,
        dir: &Path,
        mode: ImportMode,
        revision: crate::revision::Revision,
    ) -> Result<Built, BulkError> {
        if let Some(item) = forward.first_duplicate() {
            let key = ForwardKey::decode(forward.key(item))?;
            let text = format!("{}#{}@{}", key.resource, key.relation, key.subject);
            return Err(BulkError::at(item.index, StoreError::DuplicateUpdate(text)));
        }
        let changes = forward.items.len();
        let parts = changes.div_ceil(PART_CHANGES);
        let summary = BulkSummaryValue {
            changes: changes as u64,
            parts: u32::try_from(parts).map_err(|_| {
                StoreError::Backend("an import this large has too many log parts".into())
            })?,
            relations: relation_parts(forward)?,
        };

        let log_options = column_family_options(CF_LOG);
        let mut log = SstFiles::new(dir, "log", &log_options);
        log.put(
            &BulkPartKey { revision, part: 0 }.encode(),
            &summary.encode()?,
        )?;
        for (n, chunk) in forward.items.chunks(PART_CHANGES).enumerate() {
            let part = u32::try_from(n + 1).unwrap_or(u32::MAX);
            let bytes = encode_bulk_part(
                chunk
                    .iter()
                    .map(|item| (forward.key(item), forward.value(item))),
            );
            log.put(&BulkPartKey { revision, part }.encode(), &bytes)?;
        }

        let forward_options = column_family_options(CF_FWD);
        let mut files = SstFiles::new(dir, "fwd", &forward_options);
        let meta_options = column_family_options(CF_META);
        let mut undo = SstFiles::new(dir, "undo", &meta_options);
        let mut stored = head
            .snap
            .borrow_dependent()
            .raw_iterator_cf(self.cf(CF_FWD)?);
        stored.seek_to_first();
        let mut found: Option<BulkError> = None;
        let mut undo_key = BULK_UNDO_PREFIX.to_vec();
        for item in &forward.items {
            let key = forward.key(item);
            let mut steps = 0;
            while let Some(at) = stored.key() {
                if at >= key {
                    break;
                }
                if steps == SCAN_STEPS {
                    stored.seek(key);
                    break;
                }
                stored.next();
                steps += 1;
            }
            if let Some((at, old)) = stored.item() {
                if at == key {
                    let live = !RelationshipValue::decode(old)?.is_expired(head.now);
                    if mode == ImportMode::Create && live {
                        let named = ForwardKey::decode(key)?;
                        let text =
                            format!("{}#{}@{}", named.resource, named.relation, named.subject);
                        earliest(&mut found, item.index, StoreError::AlreadyExists(text));
                    }
                    if found.is_none() {
                        undo_key.truncate(BULK_UNDO_PREFIX.len());
                        undo_key.extend_from_slice(key);
                        undo.put(&undo_key, old)?;
                    }
                }
            }
            if found.is_none() {
                files.put(key, forward.value(item))?;
            }
        }
        stored.status().map_err(backend)?;
        if let Some(error) = found {
            return Err(error);
        }
        Ok(Built {
            undo: undo.finish()?,
            log: log.finish()?,
            forward: files.finish()?,
        })
    }

    /// Rolls back an import that was being ingested when the process stopped (found by its
    /// pending mark at open): every relationship its log parts name is restored from its undo
    /// entry or removed, then the parts, the undo entries and the mark go. Safe to repeat.
    /// Returns the revision the rolled-back import would have committed at.
    pub(super) fn roll_back_import(
        db: &rocksdb::DB,
    ) -> Result<Option<crate::revision::Revision>, StoreError> {
        let meta = column_family(db, CF_META)?;
        let Some(pending) = db.get_cf(meta, META_BULK_PENDING).map_err(backend)? else {
            let _ = std::fs::remove_dir_all(db.path().join(WORK_DIR));
            return Ok(None);
        };
        let revision = crate::store::keys::decode_revision(&pending)?;
        let head = match db.get_cf(meta, META_HEAD_REVISION).map_err(backend)? {
            Some(bytes) => crate::store::keys::decode_revision(&bytes)?,
            None => crate::revision::Revision::ZERO,
        };
        let log = column_family(db, CF_LOG)?;
        let fwd = column_family(db, CF_FWD)?;
        let rev = column_family(db, CF_REV)?;
        if head < revision {
            tracing::warn!(%revision, "an import did not commit before the process stopped; rolling it back");
            let from = BulkPartKey { revision, part: 1 }.encode();
            let to = LogKey(revision.next()).encode();
            let mut parts = db.raw_iterator_cf(log);
            parts.seek(from);
            let mut batch = WriteBatch::default();
            let mut undo_key = BULK_UNDO_PREFIX.to_vec();
            while let Some((key, value)) = parts.item() {
                if key.cmp(&to[..]) != Ordering::Less {
                    break;
                }
                for change in crate::store::keys::decode_bulk_part(value)? {
                    let forward_key = ForwardKey::of(&change.relationship)?;
                    let reverse_key = ReverseKey::of(&change.relationship)?;
                    undo_key.truncate(BULK_UNDO_PREFIX.len());
                    undo_key.extend_from_slice(forward_key.as_bytes());
                    match db.get_cf(meta, &undo_key).map_err(backend)? {
                        Some(old) => {
                            batch.put_cf(fwd, forward_key.as_bytes(), &old);
                            batch.put_cf(rev, reverse_key.as_bytes(), &old);
                        }
                        None => {
                            batch.delete_cf(fwd, forward_key.as_bytes());
                            batch.delete_cf(rev, reverse_key.as_bytes());
                        }
                    }
                }
                if batch.len() >= 20_000 {
                    db.write(std::mem::take(&mut batch)).map_err(backend)?;
                }
                parts.next();
            }
            parts.status().map_err(backend)?;
            db.write(batch).map_err(backend)?;
        }
        let mut batch = WriteBatch::default();
        batch.delete_range_cf(
            log,
            &BulkPartKey { revision, part: 0 }.encode()[..],
            &LogKey(revision.next()).encode()[..],
        );
        clear_pending(&mut batch, meta);
        db.write_opt(batch, &synced()).map_err(backend)?;
        let _ = std::fs::remove_dir_all(db.path().join(WORK_DIR));
        Ok((head < revision).then_some(revision))
    }
}

/// Every `(resource type, relation)` of a sorted forward run with the first and last log part
/// holding its entries (a forward key starts with the type, the id, then the relation).
fn relation_parts(forward: &Run) -> Result<Vec<(String, String, u32, u32)>, StoreError> {
    /// A `(resource type, relation)` pair as forward-key bytes.
    type Pair<'a> = (&'a [u8], &'a [u8]);
    let mut ranges: BTreeMap<Pair<'_>, (u32, u32)> = BTreeMap::new();
    let mut last: Option<(Pair<'_>, u32)> = None;
    for (i, item) in forward.items.iter().enumerate() {
        let part = u32::try_from(i / PART_CHANGES + 1).unwrap_or(u32::MAX);
        let key = forward.key(item);
        let mut components = key.split(|b| *b == crate::store::keys::SEP);
        let resource_type = components.next().unwrap_or_default();
        let relation = components.nth(1).unwrap_or_default();
        let pair = (resource_type, relation);
        if last.is_some_and(|(seen, at)| seen == pair && at == part) {
            continue;
        }
        ranges
            .entry(pair)
            .and_modify(|(_, end)| *end = part)
            .or_insert((part, part));
        last = Some((pair, part));
    }
    ranges
        .into_iter()
        .map(|((resource_type, relation), (first, end))| {
            let text = |bytes: &[u8]| {
                String::from_utf8(bytes.to_vec())
                    .map_err(|e| StoreError::Corrupt(format!("forward key: {e}")))
            };
            Ok((text(resource_type)?, text(relation)?, first, end))
        })
        .collect()
}

/// Stages the removal of the pending mark and every undo entry.
fn clear_pending(batch: &mut WriteBatch, meta: &rocksdb::ColumnFamily) {
    batch.delete_cf(meta, META_BULK_PENDING);
    if let Some(end) = prefix_upper_bound(BULK_UNDO_PREFIX) {
        batch.delete_range_cf(meta, BULK_UNDO_PREFIX, end.as_slice());
    }
}
