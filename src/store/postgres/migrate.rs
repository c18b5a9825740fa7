//! Versioned migrations: zanzi creates and upgrades its own tables. Each migration runs once,
//! in its own transaction, recorded in `zanzi_migrations`; several nodes starting at once
//! queue on that table's lock (PostgreSQL) or retry (CockroachDB), and the ones that come
//! second find the work done. A database migrated by a newer zanzi is refused with a clear
//! error rather than misread.
//!
//! Text columns compare byte-wise, so scans come back in the order the store trait documents
//! (the same as the embedded store's keys): `COLLATE "C"` on PostgreSQL; CockroachDB's
//! `STRING` compares bytes without a collation.

use super::pool::{describe, Attempt, Failure, Pool};
use super::{sql, Dialect};
use crate::store::StoreError;

/// One step of the table layout.
struct Migration {
    version: i64,
    name: &'static str,
    /// Statements, with `{text}` standing for the byte-ordered text type.
    statements: &'static [&'static str],
}

/// Every migration, oldest first; the last one's version is the layout this build writes.
const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        name: "relationships, records, schema, change log, head revision",
        statements: &[
            "CREATE TABLE zanzi_meta (name {text} PRIMARY KEY, value {text} NOT NULL)",
            "CREATE TABLE zanzi_head (id INT PRIMARY KEY, revision BIGINT NOT NULL, \
         oldest BIGINT NOT NULL, CHECK (id = 1))",
            "INSERT INTO zanzi_head (id, revision, oldest) VALUES (1, 0, 0)",
            "CREATE TABLE zanzi_relationships (\
         resource_type {text} NOT NULL, resource_id {text} NOT NULL, relation {text} NOT NULL, \
         subject_type {text} NOT NULL, subject_id {text} NOT NULL, \
         subject_relation {text} NOT NULL, caveat_name {text}, caveat_context TEXT, \
         expires_us BIGINT, expires_ns INT4, created_rev BIGINT NOT NULL, deleted_rev BIGINT, \
         PRIMARY KEY (resource_type, resource_id, relation, subject_type, subject_id, \
         subject_relation, created_rev))",
            "CREATE INDEX zanzi_relationships_by_subject ON zanzi_relationships \
         (subject_type, subject_id, subject_relation, resource_type, relation, resource_id)",
            "CREATE INDEX zanzi_relationships_expiring ON zanzi_relationships \
         (expires_us, expires_ns) WHERE expires_us IS NOT NULL",
            "CREATE INDEX zanzi_relationships_dead ON zanzi_relationships (deleted_rev) \
         WHERE deleted_rev IS NOT NULL",
            "CREATE TABLE zanzi_records (keyspace {text} NOT NULL, key {text} NOT NULL, \
         value BYTEA NOT NULL, created_rev BIGINT NOT NULL, deleted_rev BIGINT, \
         PRIMARY KEY (keyspace, key, created_rev))",
            "CREATE INDEX zanzi_records_dead ON zanzi_records (deleted_rev) \
         WHERE deleted_rev IS NOT NULL",
            "CREATE TABLE zanzi_schema (revision BIGINT PRIMARY KEY, text TEXT NOT NULL)",
            "CREATE TABLE zanzi_changes (revision BIGINT PRIMARY KEY, \
         committed_us BIGINT NOT NULL, payload BYTEA NOT NULL)",
        ],
    },
    Migration {
        version: 2,
        name: "change-log parts of imports",
        statements: &[
            // An import's log entry carries a summary and no changes; its changes are in
            // parts of a few thousand (see `bulk.rs`).
            "ALTER TABLE zanzi_changes ADD COLUMN bulk_summary BYTEA",
            "CREATE TABLE zanzi_change_parts (revision BIGINT NOT NULL, part INT4 NOT NULL, \
             payload BYTEA NOT NULL, PRIMARY KEY (revision, part))",
        ],
    },
];

/// The layout version this build reads and writes.
pub const LATEST_VERSION: i64 = 2;

const CREATE_MIGRATIONS: &str = "CREATE TABLE IF NOT EXISTS zanzi_migrations \
     (version BIGINT PRIMARY KEY, name TEXT NOT NULL, applied_us BIGINT NOT NULL)";
const APPLIED: &str = "SELECT COALESCE(max(version), 0) FROM zanzi_migrations";
const LOCK_MIGRATIONS: &str = "LOCK TABLE zanzi_migrations IN EXCLUSIVE MODE";
const RECORD: &str = "INSERT INTO zanzi_migrations (version, name, applied_us) VALUES ($1, $2, $3)";

/// What running the migrations did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Migrated {
    /// The layout version found before.
    pub from: i64,
    /// The layout version now (this build's).
    pub to: i64,
}

/// Brings the database's tables to [`LATEST_VERSION`], refusing a newer layout.
pub(super) fn migrate(pool: &Pool, dialect: Dialect) -> Result<Migrated, StoreError> {
    create_migrations_table(pool)?;
    let from = applied(pool)?;
    refuse_newer(pool, from)?;
    for migration in MIGRATIONS.iter().filter(|m| m.version > from) {
        pool.retrying(|pool| apply(pool, dialect, migration))?;
    }
    Ok(Migrated {
        from,
        to: applied(pool)?,
    })
}

fn refuse_newer(pool: &Pool, found: i64) -> Result<(), StoreError> {
    if found > LATEST_VERSION {
        return Err(StoreError::NewerLayout {
            database: pool.name().to_string(),
            found,
            known: LATEST_VERSION,
        });
    }
    Ok(())
}

fn create_migrations_table(pool: &Pool) -> Result<(), StoreError> {
    // Two nodes creating the table at once can collide in PostgreSQL's catalog (a unique
    // violation on the type name): the loser tries again and finds the table.
    let mut last = None;
    for _ in 0..3 {
        match pool.read(|conn| conn.batch(CREATE_MIGRATIONS)) {
            Ok(()) => return Ok(()),
            Err(err) => last = Some(err),
        }
    }
    Err(last.unwrap_or_else(|| pool.unavailable(&"cannot create zanzi_migrations")))
}

fn applied(pool: &Pool) -> Result<i64, StoreError> {
    pool.read(|conn| first_version(&conn.query(APPLIED, &[])?))
}

/// The version in the first column of the first row (0 without rows).
fn first_version(rows: &[tokio_postgres::Row]) -> Result<i64, tokio_postgres::Error> {
    rows.first().map_or(Ok(0), |row| row.try_get::<_, i64>(0))
}

/// Runs one migration in a transaction, unless another node ran it meanwhile.
fn apply(pool: &Pool, dialect: Dialect, migration: &Migration) -> Result<(), Attempt> {
    let lease = pool.get().map_err(Attempt::Failed)?;
    let fail = |err: tokio_postgres::Error| match super::pool::classify(&err) {
        Failure::Conflict => Attempt::Conflict,
        Failure::Unavailable => Attempt::Failed(pool.error(&err)),
        Failure::Other => Attempt::Failed(StoreError::Backend(format!(
            "database `{}`: migration {} ({}) failed: {}",
            pool.name(),
            migration.version,
            migration.name,
            describe(&err)
        ))),
    };
    let run = || -> Result<(), tokio_postgres::Error> {
        lease.batch(sql::BEGIN)?;
        if dialect == Dialect::Postgres {
            lease.batch(LOCK_MIGRATIONS)?;
        }
        let done = first_version(&lease.query(APPLIED, &[])?)?;
        if done >= migration.version {
            return lease.batch("ROLLBACK");
        }
        for statement in migration.statements {
            lease.batch(&statement.replace("{text}", dialect.text_type()))?;
        }
        let now = chrono::Utc::now().timestamp_micros();
        lease.execute(RECORD, &[&migration.version, &migration.name, &now])?;
        lease.batch("COMMIT")
    };
    match run() {
        Ok(()) => {
            if migration.version == LATEST_VERSION {
                tracing::info!(
                    database = pool.name(),
                    version = migration.version,
                    "migrated"
                );
            }
            Ok(())
        }
        Err(err) => {
            if lease.batch("ROLLBACK").is_err() {
                lease.discard();
            }
            Err(fail(err))
        }
    }
}
