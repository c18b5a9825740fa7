//! [`PgStore`]: the [`TupleStore`] on PostgreSQL (and, keeping to portable SQL, CockroachDB),
//! so several zanzi nodes can share one database. The only module that names `tokio_postgres`.
//!
//! Data model (tables in `migrate.rs`, statements in `sql.rs`):
//! - `zanzi_head`: one row with the head revision and the oldest retained revision. Every write
//!   transaction bumps the head first, so writes are totally ordered, each commits at exactly
//!   the revision it took, and a revision is visible exactly when it is committed.
//! - `zanzi_relationships`: one row per version of a relationship, with the revision that
//!   created it and the one that ended it (a touch ends the old row and inserts a new one), so
//!   a read at revision R sees exactly R. Indexes: the primary key (resource-major) and
//!   `zanzi_relationships_by_subject` (subject-major).
//! - `zanzi_records` (facade records) and `zanzi_schema` (one text per schema revision) are
//!   versioned the same way; `zanzi_changes` is the change log, one entry per revision with its
//!   commit time, written in the same transaction; `zanzi_meta` holds the store id, which every
//!   node shares, so a ZedToken minted by one node is honoured by the others.
//!
//! Writes run at SERIALIZABLE and are retried on serialization failures and deadlocks
//! (`pool.rs`); on PostgreSQL each writer first takes the head table's lock, so concurrent
//! writers queue instead of failing and retrying (see `sql::BEGIN_LOCKED`). Reads need no
//! transaction: a snapshot is a revision number (see `snapshot.rs`). History older than the
//! oldest retained revision is removed in small batches by [`TupleStore::prune_history`].
//!
//! "Newest known" head: [`TupleStore::head_revision`] is the newest revision this process has
//! seen committed (its own writes, and every snapshot, which reads the head row); another node
//! may be ahead until the next snapshot.

mod bulk;
mod migrate;
mod pool;
mod rows;
mod snapshot;
mod sql;
mod txn;

pub use migrate::{Migrated, LATEST_VERSION};

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use pool::{Attempt, Failure, Pool};
use snapshot::{PgSnapshot, ResourceTypes, Source, TxnConn};
use txn::PgTxn;

use super::keys::LogEntry;
use super::{
    BulkError, BulkOutcome, BulkSource, Snapshot, StoreError, TupleStore, WriteBody, WriteOutcome,
};
use crate::clock::{Clock, SystemClock};
use crate::revision::{Revision, StoreId};
use crate::transaction::{Change, ImportMode, LoggedRevision};

/// Rows removed per statement when pruning history.
const PRUNE_BATCH: i64 = 1_000;

/// How a [`PgStore`] behaves.
#[derive(Debug, Clone)]
pub struct PgOptions {
    /// The time source deciding which relationships have expired (default [`SystemClock`]).
    pub clock: Arc<dyn Clock>,
    /// Most connections open at once (default 16).
    pub max_connections: usize,
}

impl Default for PgOptions {
    fn default() -> Self {
        Self {
            clock: Arc::new(SystemClock),
            max_connections: 16,
        }
    }
}

/// Which database speaks the wire protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Dialect {
    /// PostgreSQL.
    Postgres,
    /// CockroachDB (also for servers that say so in `version()`).
    Cockroach,
}

impl Dialect {
    /// The byte-ordered text type.
    fn text_type(self) -> &'static str {
        match self {
            Dialect::Postgres => "TEXT COLLATE \"C\"",
            Dialect::Cockroach => "STRING",
        }
    }
}

/// A [`TupleStore`] in a PostgreSQL or CockroachDB database.
pub struct PgStore {
    pool: Pool,
    dialect: Dialect,
    id: StoreId,
    /// The newest revision known to be committed.
    head: AtomicU64,
    /// The oldest retained revision, as last read.
    oldest: AtomicU64,
    /// Types seen with relationships of their own: snapshots fetch such objects with the
    /// objects that point at them.
    resource_types: ResourceTypes,
    options: PgOptions,
}

impl std::fmt::Debug for PgStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgStore")
            .field("database", &self.pool.name())
            .field("dialect", &self.dialect)
            .field("head", &self.head.load(Ordering::Acquire))
            .finish_non_exhaustive()
    }
}

impl PgStore {
    /// Connects to the database at `url` (`postgres://USER[:PASSWORD]@HOST:PORT/DB`), brings
    /// its tables to this build's layout (creating them in an empty database) and opens the
    /// store. Fails with [`StoreError::NewerLayout`] on a database migrated by a newer zanzi,
    /// and with [`StoreError::Unavailable`] when the database cannot be reached.
    pub fn open(url: &str, options: PgOptions) -> Result<Self, StoreError> {
        let pool = Pool::new(url, options.max_connections)?;
        let dialect = detect_dialect(&pool)?;
        if dialect == Dialect::Postgres {
            // Every statement is a parameterised index lookup: one plan per statement and
            // connection, instead of planning each call again with its values (PostgreSQL's
            // default for the first executions, and for ever when it judges the generic plan
            // no better), which costs as much as the lookup itself.
            pool.set_up_sessions("SET plan_cache_mode = force_generic_plan");
        }
        migrate::migrate(&pool, dialect)?;
        let id = load_or_create_store_id(&pool)?;
        let store = Self {
            pool,
            dialect,
            id,
            head: AtomicU64::new(0),
            oldest: AtomicU64::new(0),
            resource_types: ResourceTypes::default(),
            options,
        };
        store.read_state(None)?;
        Ok(store)
    }

    /// Runs the migrations alone (what `zanzi datastore migrate` does).
    pub fn migrate(url: &str) -> Result<Migrated, StoreError> {
        let pool = Pool::new(url, 1)?;
        let dialect = detect_dialect(&pool)?;
        migrate::migrate(&pool, dialect)
    }

    /// The database as messages name it: `postgres://USER@HOST:PORT/DB` (no password).
    pub fn database(&self) -> &str {
        self.pool.name()
    }

    /// Empties the database (relationships, records, schema, change log; the tables stay),
    /// gives it a new store id so tokens minted before are refused, and reopens it.
    pub fn clear(self) -> Result<Self, StoreError> {
        let mut id = [0u8; 16];
        getrandom::fill(&mut id)
            .map_err(|err| StoreError::Backend(format!("no randomness for the store id: {err}")))?;
        let hex = hex(&id);
        self.pool.retrying(|pool| {
            let lease = pool.get().map_err(Attempt::Failed)?;
            let run = || -> Result<(), tokio_postgres::Error> {
                lease.batch(sql::BEGIN)?;
                lease.batch(sql::CLEAR)?;
                lease.execute(sql::REPLACE_STORE_ID, &[&hex])?;
                lease.batch("COMMIT")
            };
            run().map_err(|err| {
                if lease.batch("ROLLBACK").is_err() {
                    lease.discard();
                }
                attempt_error(pool, &err)
            })
        })?;
        let store = Self {
            id: StoreId(id),
            head: AtomicU64::new(0),
            oldest: AtomicU64::new(0),
            ..self
        };
        store.read_state(None)?;
        Ok(store)
    }

    /// Reads the head and oldest revisions and the schema revision in force at `at` (the
    /// head when `None`); remembers the head and oldest.
    fn read_state(
        &self,
        at: Option<Revision>,
    ) -> Result<(Revision, Revision, Revision), StoreError> {
        let found = match at {
            None => self.pool.read(|conn| conn.query(sql::HEAD_STATE, &[]))?,
            Some(at) => {
                let at = rows::revision_param(at)?;
                self.pool.read(|conn| conn.query(sql::STATE_AT, &[&at]))?
            }
        };
        let row = found
            .first()
            .ok_or_else(|| StoreError::Corrupt("the head row is missing".to_string()))?;
        let read = |index: usize| -> Result<Revision, StoreError> {
            let value: i64 = row
                .try_get(index)
                .map_err(|e| StoreError::Corrupt(format!("head row: {e}")))?;
            rows::revision_of(value)
        };
        let (head, oldest, schema) = (read(0)?, read(1)?, read(2)?);
        self.head.fetch_max(head.0, Ordering::AcqRel);
        self.oldest.fetch_max(oldest.0, Ordering::AcqRel);
        Ok((head, oldest, schema))
    }

    /// One run of a write transaction on a connection of its own: `work` begins it (see
    /// [`PgStore::begin`]) and commits it; `Conflict` when it should run again.
    fn attempt<T>(
        &self,
        work: &mut dyn FnMut(&TxnConn<'_>) -> Result<T, StoreError>,
    ) -> Result<T, Attempt> {
        let lease = self.pool.get().map_err(Attempt::Failed)?;
        let conn = TxnConn {
            pool: &self.pool,
            lease,
            conflict: pool::ConflictFlag::default(),
        };
        let failed = match work(&conn) {
            Ok(done) => return Ok(done),
            Err(err) => err,
        };
        let rolled_back = conn.conn().batch("ROLLBACK").is_ok();
        let TxnConn {
            lease, conflict, ..
        } = conn;
        if !rolled_back {
            lease.discard();
        }
        // A conflict in any of the transaction's statements, even one the body's own error
        // wraps or hides, means "run it again".
        if conflict.raised() {
            Err(Attempt::Conflict)
        } else {
            Err(Attempt::Failed(failed))
        }
    }

    /// Begins a write transaction on `conn` and takes the next revision: the head it starts
    /// from, with its schema revision, and the revision it commits at.
    fn begin(&self, conn: &TxnConn<'_>) -> Result<Began, StoreError> {
        conn.batch(match self.dialect {
            Dialect::Postgres => sql::BEGIN_LOCKED,
            Dialect::Cockroach => sql::BEGIN,
        })?;
        let bumped = conn.query(sql::BUMP_HEAD, &[])?;
        let revision = match bumped.first() {
            Some(row) => rows::revision_of(
                row.try_get::<_, i64>(0)
                    .map_err(|e| StoreError::Corrupt(format!("head row: {e}")))?,
            )?,
            None => return Err(StoreError::Corrupt("the head row is missing".to_string())),
        };
        let head = Revision(revision.0.saturating_sub(1));
        let at = rows::revision_param(head)?;
        let state = conn.query(sql::STATE_AT, &[&at])?;
        let schema_revision = match state.first() {
            Some(row) => rows::revision_of(
                row.try_get::<_, i64>(2)
                    .map_err(|e| StoreError::Corrupt(format!("schema revision: {e}")))?,
            )?,
            None => Revision::ZERO,
        };
        Ok(Began {
            head,
            revision,
            schema_revision,
            now: self.options.clock.now(),
        })
    }

    /// Commits the transaction on `conn` at `revision`; a connection lost while committing
    /// is reported as an unknown outcome.
    fn commit(&self, conn: &TxnConn<'_>, revision: Revision) -> Result<(), StoreError> {
        if let Err(err) = conn.conn().batch("COMMIT") {
            conn.conflict.note(&err);
            if pool::classify(&err) == Failure::Unavailable {
                // The commit may or may not have happened; nobody can tell from here.
                return Err(self.pool.unavailable(&format!(
                    "the connection was lost while committing revision {revision}, which may or may not be committed: {}",
                    pool::describe(&err)
                )));
            }
            return Err(self.pool.error(&err));
        }
        self.head.fetch_max(revision.0, Ordering::AcqRel);
        Ok(())
    }

    /// Ends a transaction that wrote nothing: rolls it back, commits no revision.
    fn commit_nothing(&self, conn: &TxnConn<'_>, head: Revision) -> Result<(), StoreError> {
        conn.batch("ROLLBACK")?;
        self.head.fetch_max(head.0, Ordering::AcqRel);
        Ok(())
    }

    /// Runs the body in a new transaction on `conn` and commits what it staged (or rolls back
    /// when it staged nothing). On an error the transaction is left for the caller to roll
    /// back.
    fn run(
        &self,
        conn: &TxnConn<'_>,
        body: &mut WriteBody<'_>,
    ) -> Result<WriteOutcome, StoreError> {
        let began = self.begin(conn)?;
        let view = PgSnapshot::new(
            Source::Txn(conn),
            began.head,
            began.schema_revision,
            began.now,
        )?;
        let mut txn = PgTxn::new(view, conn, began.revision, began.now);
        body(&mut txn)?;
        if txn.is_empty() {
            self.commit_nothing(conn, began.head)?;
            return Ok(WriteOutcome {
                revision: began.head,
                committed: false,
            });
        }
        txn.flush()?;
        self.commit(conn, began.revision)?;
        Ok(WriteOutcome {
            revision: began.revision,
            committed: true,
        })
    }
}

/// A write transaction just begun.
struct Began {
    /// The head it starts from.
    head: Revision,
    /// The revision it commits at.
    revision: Revision,
    /// The schema revision in force at `head`.
    schema_revision: Revision,
    /// The instant deciding what has expired for it.
    now: chrono::DateTime<chrono::Utc>,
}

/// Whether the server is CockroachDB.
fn detect_dialect(pool: &Pool) -> Result<Dialect, StoreError> {
    let found = pool.read(|conn| conn.query(sql::VERSION, &[]))?;
    let version: String = found
        .first()
        .map(|row| row.try_get(0))
        .transpose()
        .map_err(|e| StoreError::Backend(format!("reading the server version: {e}")))?
        .unwrap_or_default();
    Ok(if version.contains("CockroachDB") {
        Dialect::Cockroach
    } else {
        Dialect::Postgres
    })
}

/// The store id from `zanzi_meta`, created (16 random bytes) when missing.
fn load_or_create_store_id(pool: &Pool) -> Result<StoreId, StoreError> {
    let mut fresh = [0u8; 16];
    getrandom::fill(&mut fresh)
        .map_err(|err| StoreError::Backend(format!("no randomness for the store id: {err}")))?;
    let fresh = hex(&fresh);
    let found = pool.read(|conn| {
        conn.execute(sql::CREATE_STORE_ID, &[&fresh])?;
        conn.query(sql::STORE_ID, &[])
    })?;
    let text: String = found
        .first()
        .ok_or_else(|| StoreError::Corrupt("the store id is missing".to_string()))?
        .try_get(0)
        .map_err(|e| StoreError::Corrupt(format!("store id: {e}")))?;
    parse_hex(&text)
        .map(StoreId)
        .ok_or_else(|| StoreError::Corrupt(format!("store id `{text}` is not 32 hex digits")))
}

fn hex(bytes: &[u8; 16]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn parse_hex(text: &str) -> Option<[u8; 16]> {
    let mut out = [0u8; 16];
    if text.len() != 32 {
        return None;
    }
    for (index, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(text.get(index * 2..index * 2 + 2)?, 16).ok()?;
    }
    Some(out)
}

/// A failed statement as a retry decision.
fn attempt_error(pool: &Pool, err: &tokio_postgres::Error) -> Attempt {
    match pool::classify(err) {
        Failure::Conflict => Attempt::Conflict,
        Failure::Unavailable | Failure::Other => Attempt::Failed(pool.error(err)),
    }
}

impl TupleStore for PgStore {
    fn store_id(&self) -> StoreId {
        self.id
    }

    fn head_revision(&self) -> Revision {
        Revision(self.head.load(Ordering::Acquire))
    }

    fn snapshot(&self) -> Result<Box<dyn Snapshot + '_>, StoreError> {
        let (head, _, schema) = self.read_state(None)?;
        Ok(Box::new(
            PgSnapshot::new(
                Source::Pool(&self.pool),
                head,
                schema,
                self.options.clock.now(),
            )?
            .fetching_near(&self.resource_types),
        ))
    }

    fn snapshot_at(&self, revision: Revision) -> Result<Box<dyn Snapshot + '_>, StoreError> {
        let (head, oldest, schema) = self.read_state(Some(revision))?;
        if revision < oldest || revision > head {
            return Err(StoreError::RevisionUnavailable {
                requested: revision,
                oldest,
                head,
            });
        }
        Ok(Box::new(
            PgSnapshot::new(
                Source::Pool(&self.pool),
                revision,
                schema,
                self.options.clock.now(),
            )?
            .fetching_near(&self.resource_types),
        ))
    }

    fn bulk_load(
        &self,
        source: &mut dyn BulkSource,
        mode: ImportMode,
    ) -> Result<BulkOutcome, BulkError> {
        match self.dialect {
            Dialect::Postgres => bulk::load(self, source, mode),
            // Temporary tables are experimental on CockroachDB: one ordinary transaction.
            Dialect::Cockroach => super::bulk::load_through_write(self, source, mode),
        }
    }

    fn bulk_part(&self, revision: Revision, part: u32) -> Result<Vec<Change>, StoreError> {
        bulk::part(self, revision, part)
    }

    fn write(&self, body: &mut WriteBody<'_>) -> Result<WriteOutcome, StoreError> {
        self.pool
            .retrying(|_| self.attempt(&mut |conn| self.run(conn, body)))
    }

    fn changes_since(
        &self,
        after: Revision,
        limit: usize,
    ) -> Result<Vec<LoggedRevision>, StoreError> {
        let Ok(after_param) = rows::revision_param(after) else {
            return Ok(Vec::new());
        };
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let found = self
            .pool
            .read(|conn| conn.query(sql::CHANGES_SINCE, &[&after_param, &limit]))?;
        let mut out = Vec::with_capacity(found.len());
        for row in &found {
            let corrupt =
                |e: tokio_postgres::Error| StoreError::Corrupt(format!("change log: {e}"));
            let oldest = rows::revision_of(row.try_get::<_, i64>(0).map_err(corrupt)?)?;
            self.oldest.fetch_max(oldest.0, Ordering::AcqRel);
            if after < oldest {
                return Err(StoreError::RevisionUnavailable {
                    requested: after,
                    oldest,
                    head: self.head_revision(),
                });
            }
            let Some(revision) = row.try_get::<_, Option<i64>>(1).map_err(corrupt)? else {
                continue;
            };
            let revision = rows::revision_of(revision)?;
            let payload: Vec<u8> = row.try_get(2).map_err(corrupt)?;
            let entry = LogEntry::decode(&payload)?;
            let summary: Option<Vec<u8>> = row.try_get(3).map_err(corrupt)?;
            self.head.fetch_max(revision.0, Ordering::AcqRel);
            out.push(LoggedRevision {
                revision,
                committed_at: entry.committed_at,
                changes: entry.changes,
                schema: entry.schema,
                bulk: summary.as_deref().map(bulk::summary).transpose()?,
            });
        }
        Ok(out)
    }

    fn oldest_revision(&self) -> Revision {
        Revision(self.oldest.load(Ordering::Acquire))
    }

    fn prune_history(&self, horizon: Revision) -> Result<Revision, StoreError> {
        let horizon_param = rows::revision_param(horizon)?;
        // The oldest revision before this prune: rows that ended by then are invisible to
        // every read that could still be running (each read checked its revision against the
        // oldest when it began), so they go now; rows ended later go at the next prune.
        let before = self.pool.read(|conn| conn.query(sql::OLDEST, &[]))?;
        let previous: i64 = before
            .first()
            .ok_or_else(|| StoreError::Corrupt("the head row is missing".to_string()))?
            .try_get(0)
            .map_err(|e| StoreError::Corrupt(format!("head row: {e}")))?;
        let raised = self
            .pool
            .read(|conn| conn.query(sql::RAISE_OLDEST, &[&horizon_param]))?;
        let oldest: i64 = raised
            .first()
            .ok_or_else(|| StoreError::Corrupt("the head row is missing".to_string()))?
            .try_get(0)
            .map_err(|e| StoreError::Corrupt(format!("head row: {e}")))?;
        self.oldest
            .fetch_max(rows::revision_of(oldest)?.0, Ordering::AcqRel);
        self.delete_in_batches(sql::DELETE_OLD_CHANGES, oldest)?;
        self.delete_in_batches(sql::DELETE_OLD_CHANGE_PARTS, oldest)?;
        for statement in [sql::DELETE_DEAD_RELATIONSHIPS, sql::DELETE_DEAD_RECORDS] {
            self.delete_in_batches(statement, previous)?;
        }
        self.pool
            .read(|conn| conn.execute(sql::DELETE_OLD_SCHEMAS, &[&previous]))?;
        rows::revision_of(oldest)
    }

    fn prune_older_than(&self, retention: Duration) -> Result<Revision, StoreError> {
        let window = chrono::Duration::from_std(retention).unwrap_or(chrono::Duration::MAX);
        let cutoff = self
            .options
            .clock
            .now()
            .checked_sub_signed(window)
            .map_or(i64::MIN, |at| at.timestamp_micros());
        let found = self
            .pool
            .read(|conn| conn.query(sql::REVISION_BEFORE, &[&cutoff]))?;
        let horizon = match found.first() {
            Some(row) => rows::revision_of(
                row.try_get::<_, i64>(0)
                    .map_err(|e| StoreError::Corrupt(format!("change log: {e}")))?,
            )?,
            None => Revision::ZERO,
        };
        self.prune_history(horizon)
    }

    fn size_on_disk(&self) -> u64 {
        if self.dialect != Dialect::Postgres {
            return 0;
        }
        self.pool
            .read(|conn| conn.query(sql::SIZE, &[]))
            .ok()
            .and_then(|found| found.first().and_then(|row| row.try_get::<_, i64>(0).ok()))
            .and_then(|size| u64::try_from(size).ok())
            .unwrap_or(0)
    }
}

impl PgStore {
    /// Runs a `DELETE ... LIMIT`-style statement (`$1` the revision, `$2` the batch size)
    /// until it removes less than a batch.
    fn delete_in_batches(&self, statement: &str, revision: i64) -> Result<(), StoreError> {
        loop {
            let removed = self
                .pool
                .read(|conn| conn.execute(statement, &[&revision, &PRUNE_BATCH]))?;
            if removed < PRUNE_BATCH.unsigned_abs() {
                return Ok(());
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn store_ids_round_trip_as_hex() {
        let id = [0u8, 1, 2, 0xab, 0xff, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0, 0x10];
        assert_eq!(parse_hex(&hex(&id)), Some(id));
        assert_eq!(parse_hex("zz"), None);
        assert_eq!(parse_hex(&"g".repeat(32)), None);
    }
}
