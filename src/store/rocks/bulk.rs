//! Imports on RocksDB: sorted SST files for `fwd`, `rev` and the log, ingested into the
//! database instead of written through the memtable and the write-ahead log.
//!
//! Under the write lock, at revision R = head + 1:
//! 1. every item is encoded (forward key, reverse key, value) into in-memory runs of 262,144
//!    relationships, each pair of runs sorted (and its buffer rewritten in key order) by a
//!    second thread while the next is read;
//! 2. the sorted reverse runs are merged into the `rev` files on the second thread, while one
//!    merged pass over the forward runs refuses duplicates, merges with the head's `fwd`
//!    (CREATE fails on a live relationship; anything overwritten keeps its old value as an
//!    undo entry) and writes the `fwd` files, the log parts, the log summary and the undo
//!    entries;
//! 3. `meta` gets the pending mark (R, synced); then the undo entries (`meta`), the log parts
//!    (`log`), `fwd` and `rev` are ingested, each ingestion atomic on its own;
//! 4. one synced batch commits: the ordinary log entry of R, the head revision, the expiration
//!    index's changes (entries of overwritten relationships out, of imported ones with an
//!    expiration in: usually few, so a batch rather than files), and the removal of the
//!    pending mark and the undo entries.
//!
//! Readers never see steps 3's files before step 4: they read the retained snapshot of the
//! head, and ingested files get sequence numbers after it. A crash before step 4 leaves the
//! pending mark; [`RocksStore::open`] then rolls the import back from its log parts (deleting
//! what it wrote, restoring what it overwrote) before anything reads. So a crash at any point
//! leaves the whole import or none of it.

use std::cmp::Ordering;
use std::collections::{BTreeMap, BinaryHeap};
use std::path::{Path, PathBuf};
use std::sync::mpsc;

use rocksdb::{IngestExternalFileOptions, SstFileWriter, WriteBatch, WriteOptions};

use super::{backend, column_family, column_family_options, RocksStore};
use crate::store::keys::{
    append_keys, encode_bulk_part, encode_revision, prefix_upper_bound, BulkPartKey,
    BulkSummaryValue, ExpiryKey, ForwardKey, LogEntry, LogKey, RelationshipValue, ReverseKey,
    BULK_UNDO_PREFIX, CF_EXP, CF_FWD, CF_LOG, CF_META, CF_REV, META_BULK_PENDING,
    META_HEAD_REVISION,
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
/// Relationships per sorted run: a run is sorted by a second thread while the next is read.
/// (Small in unit tests, so they cross run boundaries.)
const CHUNK_ITEMS: usize = if cfg!(test) { 1_000 } else { 1 << 18 };

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

    /// Sorts the items by key (equal keys in item order), then rewrites the buffer in that
    /// order: the merge that follows reads each run front to back instead of jumping around a
    /// buffer of tens of megabytes (a cache miss per entry, on the busier thread).
    fn sort(&mut self) {
        self.sort_items();
        let mut sorted = Vec::with_capacity(self.bytes.len());
        for item in &mut self.items {
            let end = item.start + item.key_len as usize + item.value_len as usize;
            let start = std::mem::replace(&mut item.start, sorted.len());
            sorted.extend_from_slice(&self.bytes[start..end]);
        }
        self.bytes = sorted;
    }

    fn sort_items(&mut self) {
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
}

/// Reads every item of `source` into forward and reverse runs, handing each pair of runs to
/// `sorter` when it holds [`CHUNK_ITEMS`] (and the last one at the end); `count` ends as the
/// number of items read.
fn read_runs(
    source: &mut dyn BulkSource,
    revision: crate::revision::Revision,
    count: &mut u64,
    sorter: &mpsc::Sender<(Run, Run)>,
) -> Result<(), BulkError> {
    let stopped = || BulkError::from(StoreError::Backend("the import's sorter stopped".into()));
    // Most relationships have neither caveat nor expiration: their value is this one.
    let plain = RelationshipValue {
        caveat: None,
        expiration: None,
        written_at: revision,
    }
    .encode()?;
    let mut own_value: Vec<u8>;
    let (mut forward, mut reverse) = (Run::default(), Run::default());
    while let Some(item) = source.next_item() {
        let index = *count;
        let at = |error| BulkError::at(index, error);
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
        forward.seal(forward_start, value, index).map_err(at)?;
        reverse.seal(reverse_start, value, index).map_err(at)?;
        *count += 1;
        if forward.items.len() == CHUNK_ITEMS {
            let full = (std::mem::take(&mut forward), std::mem::take(&mut reverse));
            sorter.send(full).map_err(|_| stopped())?;
        }
    }
    if !forward.items.is_empty() {
        sorter.send((forward, reverse)).map_err(|_| stopped())?;
    }
    Ok(())
}

/// The next entry of one sorted run in a [`Merged`] pass.
struct Head<'r> {
    prefix: (u128, u128),
    key: &'r [u8],
    index: u64,
    run: usize,
    position: usize,
}

impl Head<'_> {
    fn order(&self, other: &Self) -> Ordering {
        self.prefix
            .cmp(&other.prefix)
            .then_with(|| self.key.cmp(other.key))
            .then(self.index.cmp(&other.index))
    }
}

impl PartialEq for Head<'_> {
    fn eq(&self, other: &Self) -> bool {
        self.order(other) == Ordering::Equal
    }
}

impl Eq for Head<'_> {}

impl PartialOrd for Head<'_> {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Head<'_> {
    /// Reversed, so the max-heap pops the smallest key first.
    fn cmp(&self, other: &Self) -> Ordering {
        other.order(self)
    }
}

/// The entries `(key, value, item)` of several sorted runs, merged in key order (equal keys
/// in item order).
struct Merged<'r> {
    runs: &'r [Run],
    heads: BinaryHeap<Head<'r>>,
}

impl<'r> Merged<'r> {
    fn new(runs: &'r [Run]) -> Self {
        let mut merged = Self {
            runs,
            heads: BinaryHeap::with_capacity(runs.len()),
        };
        for run in 0..runs.len() {
            merged.push(run, 0);
        }
        merged
    }

    fn push(&mut self, run: usize, position: usize) {
        let runs = self.runs;
        if let Some(item) = runs[run].items.get(position) {
            self.heads.push(Head {
                prefix: item.prefix,
                key: runs[run].key(item),
                index: item.index,
                run,
                position,
            });
        }
    }
}

impl<'r> Iterator for Merged<'r> {
    type Item = (&'r [u8], &'r [u8], u64);

    fn next(&mut self) -> Option<Self::Item> {
        let head = self.heads.pop()?;
        let runs = self.runs;
        let run = &runs[head.run];
        let value = run.value(&run.items[head.position]);
        self.push(head.run, head.position + 1);
        Some((head.key, value, head.index))
    }
}

/// A `(resource type, relation)` pair as forward-key bytes.
type Pair<'k> = (&'k [u8], &'k [u8]);

/// Every `(resource type, relation)` of the forward keys written, with the first and last log
/// part holding its entries (a forward key starts with the type, the id, then the relation).
#[derive(Default)]
struct RelationParts<'k> {
    ranges: BTreeMap<Pair<'k>, (u32, u32)>,
    last: Option<(&'k [u8], &'k [u8], u32)>,
}

impl<'k> RelationParts<'k> {
    fn note(&mut self, key: &'k [u8], part: u32) {
        let mut components = key.split(|b| *b == crate::store::keys::SEP);
        let resource_type = components.next().unwrap_or_default();
        let relation = components.nth(1).unwrap_or_default();
        if self
            .last
            .is_some_and(|(t, r, p)| t == resource_type && r == relation && p == part)
        {
            return;
        }
        self.ranges
            .entry((resource_type, relation))
            .and_modify(|(_, end)| *end = part)
            .or_insert((part, part));
        self.last = Some((resource_type, relation, part));
    }

    fn finish(self) -> Result<Vec<(String, String, u32, u32)>, StoreError> {
        let text = |bytes: &[u8]| {
            String::from_utf8(bytes.to_vec())
                .map_err(|e| StoreError::Corrupt(format!("forward key: {e}")))
        };
        self.ranges
            .into_iter()
            .map(|((t, r), (first, end))| Ok((text(t)?, text(r)?, first, end)))
            .collect()
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
    expiry: ExpiryChanges,
}

/// The expiration index's changes of an import: entries to remove (of relationships it
/// overwrote) and to add (of those it writes with an expiration). They go into the commit
/// batch, so they commit with the import and a rolled-back import never wrote them.
#[derive(Default)]
struct ExpiryChanges {
    removed: Vec<Vec<u8>>,
    added: Vec<Vec<u8>>,
}

/// What the forward pass wrote: undo and `fwd` files, how many log parts, and the relations
/// with their parts (for the summary).
struct Passed {
    undo: Vec<PathBuf>,
    forward: Vec<PathBuf>,
    parts: u32,
    relations: Vec<(String, String, u32, u32)>,
    expiry: ExpiryChanges,
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

        // 1. Encode every item into forward and reverse runs of `CHUNK_ITEMS`, each sorted by
        //    a second thread while the next is read.
        let mut count = 0u64;
        let (to_sorter, unsorted) = mpsc::channel::<(Run, Run)>();
        let (sorted_out, sorted) = mpsc::channel::<(Run, Run)>();
        let read = std::thread::scope(|scope| {
            scope.spawn(move || {
                for (mut forward, mut reverse) in unsorted {
                    forward.sort();
                    reverse.sort();
                    if sorted_out.send((forward, reverse)).is_err() {
                        return;
                    }
                }
            });
            let read = read_runs(source, revision, &mut count, &to_sorter);
            drop(to_sorter);
            read
        });
        read?;
        let (forwards, reverses): (Vec<Run>, Vec<Run>) = sorted.into_iter().unzip();
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

        // 2. Merge the sorted runs: the reverse ones into their files beside, the forward ones
        //    through the checks into theirs.
        let reverse_options = column_family_options(CF_REV);
        let (built, reverse_files) = std::thread::scope(|scope| {
            let reverse_job = scope.spawn(|| {
                let mut files = SstFiles::new(&work.0, "rev", &reverse_options);
                let mut previous: Option<&[u8]> = None;
                for (key, value, _) in Merged::new(&reverses) {
                    if previous != Some(key) {
                        files.put(key, value)?;
                    }
                    previous = Some(key);
                }
                files.finish()
            });
            let built = self.build_forward(&head, &forwards, count, &work.0, mode, revision);
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
        let exp = self.cf(CF_EXP)?;
        for key in &built.expiry.removed {
            batch.delete_cf(exp, key);
        }
        for key in &built.expiry.added {
            batch.put_cf(exp, key, []);
        }
        clear_pending(&mut batch, meta);
        let schema_revision = self.head_schema_revision();
        self.db.write_opt(batch, &synced()).map_err(backend)?;
        self.retain_snapshot(revision, schema_revision);
        self.head
            .store(revision.0, std::sync::atomic::Ordering::Release);
        Ok(())
    }

    /// Step 2 for the forward runs: [`RocksStore::forward_pass`], with the log parts it encodes
    /// written into their files by a thread of their own.
    fn build_forward(
        &self,
        head: &super::RocksSnapshot<'_>,
        forwards: &[Run],
        count: u64,
        dir: &Path,
        mode: ImportMode,
        revision: crate::revision::Revision,
    ) -> Result<Built, BulkError> {
        let log_options = column_family_options(CF_LOG);
        let (parts, encoded) = mpsc::sync_channel::<(u32, Vec<u8>)>(8);
        std::thread::scope(|scope| {
            let writer = scope.spawn(|| {
                let mut log = SstFiles::new(dir, "log", &log_options);
                for (part, bytes) in encoded {
                    log.put(&BulkPartKey { revision, part }.encode(), &bytes)?;
                }
                log.finish()
            });
            let passed = self.forward_pass(head, forwards, dir, mode, &parts);
            drop(parts);
            let log = writer.join().unwrap_or_else(|_| {
                Err(StoreError::Backend(
                    "writing the import's log failed".into(),
                ))
            });
            let passed = passed?;
            // The summary (part 0) sorts before the parts: a file of its own.
            let mut summary = SstFiles::new(dir, "summary", &log_options);
            summary.put(
                &BulkPartKey { revision, part: 0 }.encode(),
                &BulkSummaryValue {
                    changes: count,
                    parts: passed.parts,
                    relations: passed.relations,
                }
                .encode()?,
            )?;
            let mut log_files = summary.finish()?;
            log_files.extend(log?);
            Ok(Built {
                undo: passed.undo,
                log: log_files,
                forward: passed.forward,
                expiry: passed.expiry,
            })
        })
    }

    /// One merged pass over the sorted forward runs: refuses duplicates and (for CREATE) live
    /// stored relationships, writes the `fwd` files and the undo entries, and hands each log
    /// part to `parts`.
    fn forward_pass(
        &self,
        head: &super::RocksSnapshot<'_>,
        forwards: &[Run],
        dir: &Path,
        mode: ImportMode,
        parts: &mpsc::SyncSender<(u32, Vec<u8>)>,
    ) -> Result<Passed, BulkError> {
        let stopped = || StoreError::Backend("the import's log writer stopped".into());
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
        let mut previous: Option<&[u8]> = None;
        let mut part_entries: Vec<(&[u8], &[u8])> = Vec::with_capacity(PART_CHANGES);
        let mut part = 1u32;
        let mut relations = RelationParts::default();
        let mut expiry = ExpiryChanges::default();
        for (key, value, index) in Merged::new(forwards) {
            if previous == Some(key) {
                let named = ForwardKey::decode(key)?;
                let text = format!("{}#{}@{}", named.resource, named.relation, named.subject);
                earliest(&mut found, index, StoreError::DuplicateUpdate(text));
                continue;
            }
            previous = Some(key);
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
            let written = RelationshipValue::expiration_of(value)?;
            let mut overwritten = None;
            if let Some((at, old)) = stored.item() {
                if at == key {
                    overwritten = RelationshipValue::expiration_of(old)?;
                    let live = overwritten.is_none_or(|at| at > head.now);
                    if mode == ImportMode::Create && live {
                        let named = ForwardKey::decode(key)?;
                        let text =
                            format!("{}#{}@{}", named.resource, named.relation, named.subject);
                        earliest(&mut found, index, StoreError::AlreadyExists(text));
                    }
                    if found.is_none() {
                        undo_key.truncate(BULK_UNDO_PREFIX.len());
                        undo_key.extend_from_slice(key);
                        undo.put(&undo_key, old)?;
                    }
                }
            }
            if found.is_some() {
                continue;
            }
            if overwritten != written {
                if let Some(at) = overwritten {
                    expiry
                        .removed
                        .push(ExpiryKey::new(at, key).as_bytes().to_vec());
                }
                if let Some(at) = written {
                    expiry
                        .added
                        .push(ExpiryKey::new(at, key).as_bytes().to_vec());
                }
            }
            files.put(key, value)?;
            relations.note(key, part);
            part_entries.push((key, value));
            if part_entries.len() == PART_CHANGES {
                let bytes = encode_bulk_part(part_entries.drain(..));
                parts.send((part, bytes)).map_err(|_| stopped())?;
                part = part.saturating_add(1);
            }
        }
        stored.status().map_err(backend)?;
        if let Some(error) = found {
            return Err(error);
        }
        if !part_entries.is_empty() {
            let bytes = encode_bulk_part(part_entries.drain(..));
            parts.send((part, bytes)).map_err(|_| stopped())?;
        } else {
            part = part.saturating_sub(1);
        }
        Ok(Passed {
            undo: undo.finish()?,
            forward: files.finish()?,
            parts: part,
            relations: relations.finish()?,
            expiry,
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

/// Stages the removal of the pending mark and every undo entry.
fn clear_pending(batch: &mut WriteBatch, meta: &rocksdb::ColumnFamily) {
    batch.delete_cf(meta, META_BULK_PENDING);
    if let Some(end) = prefix_upper_bound(BULK_UNDO_PREFIX) {
        batch.delete_range_cf(meta, BULK_UNDO_PREFIX, end.as_slice());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::filter::RelationshipFilter;
    use crate::store::{Snapshot, StoreOptions, TupleStore};
    use crate::tuple::Relationship;

    /// Relationships from a list, positions from 0.
    struct Listed(std::vec::IntoIter<Relationship>);

    impl BulkSource for Listed {
        fn start(&mut self, _head: &dyn Snapshot) -> Result<(), StoreError> {
            Ok(())
        }

        fn next_item(&mut self) -> Option<Result<Relationship, StoreError>> {
            self.0.next().map(Ok)
        }
    }

    fn listed(texts: &[String]) -> Listed {
        Listed(
            texts
                .iter()
                .map(|t| Relationship::parse(t).unwrap())
                .collect::<Vec<_>>()
                .into_iter(),
        )
    }

    fn texts(n: usize, tag: &str) -> Vec<String> {
        // Not in key order, so every run needs its sort and the merge interleaves them.
        (0..n)
            .map(|i| format!("doc:{tag}{}#viewer@user:u{}", (i * 7_919) % n, i % 13))
            .collect()
    }

    #[test]
    fn imports_across_many_runs_merge_into_both_indexes_and_the_log() {
        let dir = tempfile::TempDir::new().unwrap();
        let store = RocksStore::open(dir.path(), StoreOptions::default()).unwrap();
        let lines = texts(5_500, "d");
        let outcome = store
            .bulk_load(&mut listed(&lines), ImportMode::Create)
            .unwrap();
        assert_eq!(outcome.loaded, 5_500);
        let snapshot = store.snapshot().unwrap();
        let stored: Vec<String> = snapshot
            .read(&RelationshipFilter::default(), None)
            .map(|r| r.unwrap().to_string())
            .collect();
        let mut expected = lines.clone();
        expected.sort_by_key(|t| ForwardKey::of(&Relationship::parse(t).unwrap()).unwrap());
        assert_eq!(stored, expected);
        let subject = crate::tuple::SubjectRef::parse("user:u3").unwrap();
        let reverse = snapshot
            .resources_with_subject(&subject, "doc", "viewer")
            .count();
        assert_eq!(
            reverse,
            lines.iter().filter(|t| t.ends_with("@user:u3")).count()
        );
        let logged = store
            .changes_since(crate::revision::Revision::ZERO, 5)
            .unwrap();
        let summary = logged[0].bulk.clone().unwrap();
        assert_eq!(summary.parts as usize, 5_500usize.div_ceil(PART_CHANGES));
        let mut parts = Vec::new();
        for part in 1..=summary.parts {
            parts.extend(
                store
                    .bulk_part(outcome.revision, part)
                    .unwrap()
                    .into_iter()
                    .map(|c| c.relationship.to_string()),
            );
        }
        assert_eq!(parts, expected);
    }

    #[test]
    fn duplicates_and_existing_relationships_are_found_across_runs() {
        let dir = tempfile::TempDir::new().unwrap();
        let store = RocksStore::open(dir.path(), StoreOptions::default()).unwrap();
        store
            .bulk_load(&mut listed(&texts(2_000, "old")), ImportMode::Create)
            .unwrap();
        let head = store.head_revision();
        // A duplicate 3,000 items apart (so in another run): the later one is named.
        let mut lines = texts(4_000, "new");
        lines[3_500] = lines[500].clone();
        let err = store
            .bulk_load(&mut listed(&lines), ImportMode::Create)
            .unwrap_err();
        assert_eq!(err.item, Some(3_500), "{err}");
        assert!(matches!(err.error, StoreError::DuplicateUpdate(_)), "{err}");
        // Two existing relationships: the first in input order is named.
        let mut lines = texts(4_000, "new");
        lines[2_700] = texts(2_000, "old")[10].clone();
        lines[1_200] = texts(2_000, "old")[1_999].clone();
        let err = store
            .bulk_load(&mut listed(&lines), ImportMode::Create)
            .unwrap_err();
        assert_eq!(err.item, Some(1_200), "{err}");
        assert!(matches!(err.error, StoreError::AlreadyExists(_)), "{err}");
        assert_eq!(store.head_revision(), head);
        // TOUCH takes them.
        let outcome = store
            .bulk_load(&mut listed(&lines), ImportMode::Touch)
            .unwrap();
        assert_eq!(outcome.loaded, 4_000);
        let count = store
            .snapshot()
            .unwrap()
            .read(&RelationshipFilter::default(), None)
            .count();
        assert_eq!(count, 2_000 + 4_000 - 2);
    }
}
