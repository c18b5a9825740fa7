//! Imports on PostgreSQL: [`TupleStore::bulk_load`](crate::store::TupleStore::bulk_load) by
//! binary `COPY` into a staging table, then a few set-based statements, all in one write
//! transaction at one revision (so the whole import or none of it).
//!
//! In the write transaction at revision R (the head row bumped first, as for every write):
//! 1. the source starts against the head, and every item is streamed into the temporary table
//!    `zanzi_import` with `COPY ... FROM STDIN (FORMAT binary)` as it is read, with its
//!    position (`ord`); the items are kept, so a retried transaction sends them again;
//! 2. one `UPDATE ... FROM` ends the rows live at the head with an item's key, saying whether
//!    one was unexpired (what CREATE refuses; TOUCH replaces it);
//! 3. one `INSERT ... SELECT` writes every item as a row created at R, while a second thread
//!    encodes the log parts; two items with one key collide on the primary key there (both
//!    rows are created at R), so duplicates cost no pass of their own. On either fault the
//!    insert is undone to a savepoint, a slower query names the first item at fault, as the
//!    embedded store does, and the transaction rolls back;
//! 4. the log entry of R (no changes, a summary in `bulk_summary`) and its parts
//!    (`zanzi_change_parts`, [`PART_CHANGES`] changes each, in import order), then `COMMIT`.
//!
//! The log parts use the embedded store's encoding, so followers and watch read an import the
//! same way on both backends.

use std::collections::BTreeMap;

use tokio_postgres::error::SqlState;
use tokio_postgres::types::{ToSql, Type};

use super::pool::{Attempt, BinaryCopy};
use super::rows;
use super::snapshot::{PgSnapshot, Source, TxnConn};
use super::{sql, PgStore};
use crate::revision::Revision;
use crate::store::keys::{
    decode_bulk_part, encode_bulk_part, BulkSummaryValue, ForwardKey, LogEntry, RelationshipValue,
};
use crate::store::{BulkError, BulkOutcome, BulkSource, StoreError};
use crate::transaction::{BulkRelation, BulkSummary, Change, ImportMode};
use crate::tuple::Relationship;

/// Changes per log part: small enough that a reader holds one part at a time cheaply.
const PART_CHANGES: usize = 4_096;

/// The staging table's column types, in [`sql::COPY_STAGING`]'s order.
const STAGING_TYPES: [Type; 11] = [
    Type::TEXT,
    Type::TEXT,
    Type::TEXT,
    Type::TEXT,
    Type::TEXT,
    Type::TEXT,
    Type::TEXT,
    Type::TEXT,
    Type::INT8,
    Type::INT4,
    Type::INT8,
];

/// What one import has read so far, across retried transactions.
#[derive(Default)]
struct Progress {
    /// Every item, once the source has been read to its end.
    items: Option<Vec<Relationship>>,
    /// The position of the item the import failed on.
    fault: Option<u64>,
    /// The source's own error (it cannot be read again, so the import ends with it).
    source_error: Option<StoreError>,
}

/// [`crate::store::TupleStore::bulk_load`] on PostgreSQL (see the module documentation).
pub(super) fn load(
    store: &PgStore,
    source: &mut dyn BulkSource,
    mode: ImportMode,
) -> Result<BulkOutcome, BulkError> {
    let mut progress = Progress::default();
    let result = store.pool.retrying(|_| {
        if let Some(error) = progress.source_error.take() {
            return Err(Attempt::Failed(error));
        }
        progress.fault = None;
        store.attempt(&mut |conn| run(store, conn, source, mode, &mut progress))
    });
    result.map_err(|error| BulkError {
        item: progress.fault,
        error: progress.source_error.take().unwrap_or(error),
    })
}

/// One run of the import's transaction on `conn`; on an error the caller rolls it back.
fn run(
    store: &PgStore,
    conn: &TxnConn<'_>,
    source: &mut dyn BulkSource,
    mode: ImportMode,
    progress: &mut Progress,
) -> Result<BulkOutcome, StoreError> {
    let started = std::time::Instant::now();
    let began = store.begin(conn)?;
    {
        let head = PgSnapshot::new(
            Source::Txn(conn),
            began.head,
            began.schema_revision,
            began.now,
        )?;
        source.start(&head)?;
    }
    conn.batch(&sql::CREATE_STAGING.replace("{text}", store.dialect.text_type()))?;
    let mut copy = conn
        .conn()
        .copy_in_binary(sql::COPY_STAGING, &STAGING_TYPES)
        .map_err(|err| conn.fail(&err))?;
    if progress.items.is_none() {
        read_and_stage(conn, source, &mut copy, progress)?;
    } else {
        for (ord, item) in progress.items.iter().flatten().enumerate() {
            stage(&mut copy, item, ord).map_err(|err| conn.fail(&err))?;
        }
    }
    copy.finish().map_err(|err| conn.fail(&err))?;
    let staged = started.elapsed();
    let items = progress.items.as_deref().unwrap_or_default();
    if items.is_empty() {
        store.commit_nothing(conn, began.head)?;
        return Ok(BulkOutcome {
            revision: began.head,
            loaded: 0,
        });
    }

    let revision = rows::revision_param(began.revision)?;
    let head = rows::revision_param(began.head)?;
    let (now_us, now_ns) = rows::instant(began.now);
    let ended = conn.query_once(sql::END_STAGED, &[&revision, &now_us, &now_ns])?;
    let first_live = match ended.first() {
        Some(row) => row
            .try_get::<_, Option<i64>>(1)
            .map_err(|e| StoreError::Backend(format!("ending replaced rows: {e}")))?,
        None => None,
    };
    let fault = Fault {
        conn,
        items,
        head,
        now: (now_us, now_ns),
        mode,
    };
    if mode == ImportMode::Create && first_live.is_some() {
        return Err(fault.name(&mut progress.fault)?);
    }

    let checked = started.elapsed();
    // The rows go in while a second thread encodes the log parts.
    conn.batch(sql::BEFORE_INSERT)?;
    let (inserted, encoded) = std::thread::scope(|scope| {
        let parts = scope.spawn(|| encode_parts(items, began.revision));
        let inserted = conn.conn().query_once(sql::INSERT_STAGED, &[&revision]);
        let encoded = parts.join().unwrap_or_else(|_| {
            Err(StoreError::Backend(
                "encoding the import's log failed".to_string(),
            ))
        });
        (inserted, encoded)
    });
    if let Err(err) = inserted {
        if err.code() == Some(&SqlState::UNIQUE_VIOLATION) {
            conn.batch(sql::UNDO_INSERT)?;
            return Err(fault.name(&mut progress.fault)?);
        }
        return Err(conn.fail(&err));
    }
    let (parts, summary) = encoded?;
    let wrote = started.elapsed();
    let numbers: Vec<i32> = (1..=parts.len())
        .map(|n| i32::try_from(n).unwrap_or(i32::MAX))
        .collect();
    conn.execute(sql::INSERT_CHANGE_PARTS, &[&revision, &numbers, &parts])?;
    let entry = LogEntry {
        changes: Vec::new(),
        schema: None,
        committed_at: began.now,
    }
    .encode(began.revision)?;
    let committed = began.now.timestamp_micros();
    let summary = summary.encode()?;
    conn.execute(
        sql::INSERT_BULK_CHANGE,
        &[&revision, &committed, &entry, &summary],
    )?;
    store.commit(conn, began.revision)?;
    tracing::debug!(
        relationships = items.len(),
        staged_ms = staged.as_millis() as u64,
        checked_ms = (checked - staged).as_millis() as u64,
        inserted_ms = (wrote - checked).as_millis() as u64,
        logged_ms = (started.elapsed() - wrote).as_millis() as u64,
        "import committed"
    );
    Ok(BulkOutcome {
        revision: began.revision,
        loaded: items.len() as u64,
    })
}

/// What names the first item at fault once an import is known to fail.
struct Fault<'a, 'c> {
    conn: &'a TxnConn<'c>,
    items: &'a [Relationship],
    head: i64,
    now: (i64, i32),
    mode: ImportMode,
}

impl Fault<'_, '_> {
    /// The error for the first item that repeats an earlier item's key or (CREATE) meets a
    /// live relationship at the head, as the embedded store names it; records its position.
    fn name(&self, position: &mut Option<u64>) -> Result<StoreError, StoreError> {
        let create = self.mode == ImportMode::Create;
        let (now_us, now_ns) = self.now;
        let found = self.conn.query_once(
            sql::FIRST_STAGED_FAULT,
            &[&self.head, &now_us, &now_ns, &create],
        )?;
        let row = found
            .first()
            .ok_or_else(|| StoreError::Backend("an import fault went missing".to_string()))?;
        let read = |e: tokio_postgres::Error| {
            StoreError::Backend(format!("finding the import's fault: {e}"))
        };
        let ord = row.try_get::<_, i64>(0).map_err(read)?;
        let repeated = row.try_get::<_, bool>(1).map_err(read)?;
        let item = usize::try_from(ord)
            .ok()
            .and_then(|at| self.items.get(at))
            .ok_or_else(|| {
                StoreError::Backend(format!(
                    "the import's fault names item {ord}, which it does not have"
                ))
            })?;
        *position = u64::try_from(ord).ok();
        let key = item.key_string();
        Ok(if repeated {
            StoreError::DuplicateUpdate(key)
        } else {
            StoreError::AlreadyExists(key)
        })
    }
}

/// Reads the source to its end, sending each item to the staging table and keeping it. A
/// failed send stops the sending, not the reading, so a retry has every item.
fn read_and_stage(
    conn: &TxnConn<'_>,
    source: &mut dyn BulkSource,
    copy: &mut BinaryCopy,
    progress: &mut Progress,
) -> Result<(), StoreError> {
    let mut items = Vec::new();
    let mut failed = None;
    while let Some(item) = source.next_item() {
        let checked = item.and_then(|item| rows::check_storable(&item).map(|()| item));
        let item = match checked {
            Ok(item) => item,
            Err(error) => {
                progress.fault = Some(items.len() as u64);
                progress.source_error = Some(error);
                return Err(StoreError::Backend(
                    "the import's source failed".to_string(),
                ));
            }
        };
        if failed.is_none() {
            if let Err(err) = stage(copy, &item, items.len()) {
                failed = Some(conn.fail(&err));
            }
        }
        items.push(item);
    }
    progress.items = Some(items);
    failed.map_or(Ok(()), Err)
}

/// Sends `item`, the import's item at position `ord`, to the staging table.
fn stage(
    copy: &mut BinaryCopy,
    item: &Relationship,
    ord: usize,
) -> Result<(), tokio_postgres::Error> {
    let subject_relation = item.subject.relation.as_deref().unwrap_or("");
    let caveat_name = item.caveat.as_ref().map(|c| c.name.as_str());
    let caveat_context = item
        .caveat
        .as_ref()
        .map(|c| serde_json::Value::Object(c.context.clone()).to_string());
    let expiration = item.expiration.map(rows::instant);
    let expires_us = expiration.map(|(us, _)| us);
    let expires_ns = expiration.map(|(_, ns)| ns);
    let ord = i64::try_from(ord).unwrap_or(i64::MAX);
    let values: [&(dyn ToSql + Sync); 11] = [
        &item.resource.object_type,
        &item.resource.object_id,
        &item.relation,
        &item.subject.object.object_type,
        &item.subject.object.object_id,
        &subject_relation,
        &caveat_name,
        &caveat_context,
        &expires_us,
        &expires_ns,
        &ord,
    ];
    copy.write(&values)
}

/// The log parts of an import of `items` at `revision` (every item a touch, in import order)
/// and their summary.
fn encode_parts(
    items: &[Relationship],
    revision: Revision,
) -> Result<(Vec<Vec<u8>>, BulkSummaryValue), StoreError> {
    let mut parts = Vec::with_capacity(items.len().div_ceil(PART_CHANGES));
    let mut relations: BTreeMap<(&str, &str), (u32, u32)> = BTreeMap::new();
    for (index, chunk) in items.chunks(PART_CHANGES).enumerate() {
        let part = u32::try_from(index + 1)
            .map_err(|_| StoreError::Backend("an import of too many parts".to_string()))?;
        let mut last: Option<(&str, &str)> = None;
        let mut entries = Vec::with_capacity(chunk.len());
        for item in chunk {
            let pair = (item.resource.object_type.as_str(), item.relation.as_str());
            if last != Some(pair) {
                relations
                    .entry(pair)
                    .and_modify(|(_, end)| *end = part)
                    .or_insert((part, part));
                last = Some(pair);
            }
            entries.push((
                ForwardKey::of(item)?.into_bytes(),
                RelationshipValue::of(item, revision).encode()?,
            ));
        }
        parts.push(encode_bulk_part(
            entries.iter().map(|(k, v)| (k.as_slice(), v.as_slice())),
        ));
    }
    let summary = BulkSummaryValue {
        changes: items.len() as u64,
        parts: u32::try_from(parts.len())
            .map_err(|_| StoreError::Backend("an import of too many parts".to_string()))?,
        relations: relations
            .into_iter()
            .map(|((t, r), (first, last))| (t.to_string(), r.to_string(), first, last))
            .collect(),
    };
    Ok((parts, summary))
}

/// An import's summary as stored in `zanzi_changes.bulk_summary`.
pub(super) fn summary(bytes: &[u8]) -> Result<BulkSummary, StoreError> {
    let stored = BulkSummaryValue::decode(bytes)?;
    Ok(BulkSummary {
        changes: stored.changes,
        parts: stored.parts,
        relations: stored
            .relations
            .into_iter()
            .map(
                |(resource_type, relation, first_part, last_part)| BulkRelation {
                    resource_type,
                    relation,
                    first_part,
                    last_part,
                },
            )
            .collect(),
    })
}

/// [`crate::store::TupleStore::bulk_part`] on PostgreSQL.
pub(super) fn part(
    store: &PgStore,
    revision: Revision,
    part: u32,
) -> Result<Vec<Change>, StoreError> {
    let at = rows::revision_param(revision)?;
    let number = i32::try_from(part).unwrap_or(i32::MAX);
    let found = store
        .pool
        .read(|conn| conn.query(sql::CHANGE_PART, &[&at, &number]))?;
    if let (Some(row), true) = (found.first(), part > 0) {
        let payload: Vec<u8> = row
            .try_get(0)
            .map_err(|e| StoreError::Corrupt(format!("change log part: {e}")))?;
        return decode_bulk_part(&payload);
    }
    let (head, oldest, _) = store.read_state(None)?;
    if revision <= oldest || revision > head {
        return Err(StoreError::RevisionUnavailable {
            requested: revision,
            oldest,
            head,
        });
    }
    Err(StoreError::Corrupt(format!(
        "revision {revision} has no bulk log part {part}"
    )))
}
