//! Every SQL statement the PostgreSQL backend runs, named after what it does, each with the
//! index it relies on. The tables and indexes themselves are created by `migrate.rs`.
//!
//! Conventions: relationship reads take the revision as `$1` and "now" as `$2` (microseconds
//! since the Unix epoch) and `$3` (the nanoseconds within that microsecond); a row is *live at
//! R* when `created_rev <= R AND (deleted_rev IS NULL OR deleted_rev > R)`, and *unexpired*
//! when it has no expiration or expires after now. Batched statements take one array per
//! column and join against `unnest(...)`, so a batch is one statement whatever its size. Only
//! portable SQL is used (no `ctid`, no `DELETE ... LIMIT`, no advisory locks); the one
//! PostgreSQL-only statement, [`BEGIN_LOCKED`]'s table lock, is an optimisation skipped on CockroachDB.

/// The columns a relationship is read from, in the order [`super::rows`] decodes them.
macro_rules! columns {
    () => {
        "resource_type, resource_id, relation, subject_type, subject_id, subject_relation, \
         caveat_name, caveat_context, expires_us, expires_ns"
    };
}

/// Live at revision `$1`.
macro_rules! live {
    () => {
        "created_rev <= $1 AND (deleted_rev IS NULL OR deleted_rev > $1)"
    };
}

/// Live at revision `$1` and not expired at (`$2`, `$3`).
macro_rules! visible {
    () => {
        "created_rev <= $1 AND (deleted_rev IS NULL OR deleted_rev > $1) \
         AND (expires_us IS NULL OR (expires_us, expires_ns) > ($2, $3))"
    };
}

pub(super) use {columns, visible};

/// The head revision, the oldest retained revision and the schema revision in force at the
/// head, in one read (the single `zanzi_head` row by its primary key).
pub(super) const HEAD_STATE: &str = "SELECT h.revision, h.oldest, \
     COALESCE((SELECT max(s.revision) FROM zanzi_schema s WHERE s.revision <= h.revision), 0) \
     FROM zanzi_head h WHERE h.id = 1";

/// The head and oldest revisions, and the schema revision in force at revision `$1`
/// (`zanzi_schema`'s primary key, scanned backwards from `$1`).
pub(super) const STATE_AT: &str = "SELECT h.revision, h.oldest, \
     COALESCE((SELECT max(s.revision) FROM zanzi_schema s WHERE s.revision <= $1), 0) \
     FROM zanzi_head h WHERE h.id = 1";

/// The schema text written at revision `$1` (primary key).
pub(super) const SCHEMA_TEXT: &str = "SELECT text FROM zanzi_schema WHERE revision = $1";

/// Starts a write transaction.
pub(super) const BEGIN: &str = "BEGIN ISOLATION LEVEL SERIALIZABLE";

/// Starts a write transaction that first takes the head table's lock, before the transaction's
/// snapshot exists, so concurrent writers queue here instead of failing with a serialization
/// error on the head row (PostgreSQL takes a SERIALIZABLE snapshot at the first query, and
/// `LOCK TABLE` is not one). EXCLUSIVE mode still lets readers read the head. One round trip.
/// PostgreSQL only: an optimisation, not needed for correctness (the head row update orders
/// writers on any database, and conflicts are retried).
pub(super) const BEGIN_LOCKED: &str =
    "BEGIN ISOLATION LEVEL SERIALIZABLE; LOCK TABLE zanzi_head IN EXCLUSIVE MODE";

/// Takes the next revision: the first statement of every write transaction (primary key).
pub(super) const BUMP_HEAD: &str =
    "UPDATE zanzi_head SET revision = revision + 1 WHERE id = 1 RETURNING revision";

/// One relationship by its full key, live and unexpired at `$1` (primary key:
/// `(resource_type, resource_id, relation, subject_type, subject_id, subject_relation,
/// created_rev)`).
pub(super) const GET: &str = concat!(
    "SELECT ",
    columns!(),
    " FROM zanzi_relationships WHERE resource_type = $4 AND resource_id = $5 AND relation = $6 \
     AND subject_type = $7 AND subject_id = $8 AND subject_relation = $9 AND ",
    visible!()
);

/// The first `$6` relationships of the object `$4:$5` (every relation), in relation then
/// subject order (primary key prefix): a snapshot fetches an object whole, once, and answers
/// its point reads and scans from memory when the object has few relationships.
pub(super) const OBJECT_ROWS: &str = concat!(
    "SELECT ",
    columns!(),
    " FROM zanzi_relationships WHERE resource_type = $4 AND resource_id = $5 AND ",
    visible!(),
    " ORDER BY relation, subject_type, subject_id, subject_relation LIMIT $6"
);

/// As [`OBJECT_ROWS`] for the object `$4:$5`, and in the same round trip the objects it points
/// at, two hops deep: when an object comes back whole (fewer than `$6` rows), its subjects
/// without a subject relation whose type is in `$7` (types known to have relationships of
/// their own: arrow targets such as a document's folder or a resource's project), the first
/// `$8` of them in (type, id) order, are fetched the same way. Each row ends with its hop
/// (0, 1 or 2); the rows of one object come in no particular order. The caller finds the
/// targets by the same rule, so it knows which of them have no relationships at all.
pub(super) const OBJECT_ROWS_NEAR: &str = concat!(
    "WITH o0 AS (SELECT ",
    columns!(),
    " FROM zanzi_relationships WHERE resource_type = $4 AND resource_id = $5 AND ",
    visible!(),
    " ORDER BY relation, subject_type, subject_id, subject_relation LIMIT $6), \
     t1 AS (SELECT DISTINCT subject_type AS t, subject_id AS i FROM o0 \
     WHERE subject_relation = '' AND subject_type = ANY($7::text[]) \
     AND (SELECT count(*) FROM o0) < $6 ORDER BY 1, 2 LIMIT $8), \
     o1 AS (SELECT x.* FROM t1 CROSS JOIN LATERAL (SELECT ",
    columns!(),
    " FROM zanzi_relationships WHERE resource_type = t1.t AND resource_id = t1.i AND ",
    visible!(),
    " ORDER BY relation, subject_type, subject_id, subject_relation LIMIT $6) x), \
     w1 AS (SELECT resource_type AS wt, resource_id AS wi FROM o1 \
     GROUP BY resource_type, resource_id HAVING count(*) < $6), \
     t2 AS (SELECT DISTINCT subject_type AS t, subject_id AS i FROM o1 \
     JOIN w1 ON resource_type = w1.wt AND resource_id = w1.wi \
     WHERE subject_relation = '' AND subject_type = ANY($7::text[]) ORDER BY 1, 2 LIMIT $8), \
     o2 AS (SELECT x.* FROM t2 CROSS JOIN LATERAL (SELECT ",
    columns!(),
    " FROM zanzi_relationships WHERE resource_type = t2.t AND resource_id = t2.i AND ",
    visible!(),
    " ORDER BY relation, subject_type, subject_id, subject_relation LIMIT $6) x) \
     SELECT *, 0 FROM o0 UNION ALL SELECT *, 1 FROM o1 UNION ALL SELECT *, 2 FROM o2"
);

/// Every relationship `$4:$5#$6@*`, in subject order (primary key prefix).
pub(super) const SUBJECTS_OF: &str = concat!(
    "SELECT ",
    columns!(),
    " FROM zanzi_relationships WHERE resource_type = $4 AND resource_id = $5 AND relation = $6 \
     AND ",
    visible!(),
    " ORDER BY subject_type, subject_id, subject_relation"
);

/// Every relationship `t:i#$6@*` for each `(t, i)` of the arrays `$4`, `$5`, in resource then
/// subject order (primary key prefix, once per resource).
pub(super) const SUBJECTS_OF_MANY: &str = concat!(
    "SELECT ",
    columns!(),
    " FROM zanzi_relationships JOIN unnest($4::text[], $5::text[]) AS k(t, i) \
     ON resource_type = k.t AND resource_id = k.i WHERE relation = $6 AND ",
    visible!(),
    " ORDER BY resource_type, resource_id, subject_type, subject_id, subject_relation"
);

/// Every relationship `$7:*#$8@$4:$5#$6`, in resource id order
/// (`zanzi_relationships_by_subject`).
pub(super) const RESOURCES_WITH_SUBJECT: &str = concat!(
    "SELECT ",
    columns!(),
    " FROM zanzi_relationships WHERE subject_type = $4 AND subject_id = $5 \
     AND subject_relation = $6 AND resource_type = $7 AND relation = $8 AND ",
    visible!(),
    " ORDER BY resource_id"
);

/// Every relationship `$7:*#$8@s` for each subject `s` of the arrays `$4`, `$5`, `$6`, in
/// subject then resource id order (`zanzi_relationships_by_subject`, once per subject).
pub(super) const RESOURCES_WITH_SUBJECTS: &str = concat!(
    "SELECT ",
    columns!(),
    " FROM zanzi_relationships JOIN unnest($4::text[], $5::text[], $6::text[]) AS k(t, i, r) \
     ON subject_type = k.t AND subject_id = k.i AND subject_relation = k.r \
     WHERE resource_type = $7 AND relation = $8 AND ",
    visible!(),
    " ORDER BY subject_type, subject_id, subject_relation, resource_id"
);

/// Up to `$4` relationships live at `$1` that have expired by (`$2`, `$3`), soonest first
/// (`zanzi_relationships_expiring`, partial: only expiring rows).
pub(super) const EXPIRED: &str = concat!(
    "SELECT ",
    columns!(),
    " FROM zanzi_relationships WHERE expires_us IS NOT NULL \
     AND (expires_us, expires_ns) <= ($2, $3) AND ",
    live!(),
    " ORDER BY expires_us, expires_ns LIMIT $4"
);

/// The live rows at `$1` with the keys of the arrays `$2`..`$7`, expired ones included: a
/// write's existence reads (primary key, once per key).
pub(super) const STORED: &str = concat!(
    "SELECT ",
    columns!(),
    " FROM zanzi_relationships JOIN \
     unnest($2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[]) \
     AS k(rt, ri, rl, st, si, sr) ON resource_type = k.rt AND resource_id = k.ri \
     AND relation = k.rl AND subject_type = k.st AND subject_id = k.si \
     AND subject_relation = k.sr WHERE ",
    live!()
);

/// Ends the live rows with the keys of the arrays `$2`..`$7` at revision `$1` (primary key).
pub(super) const END_RELATIONSHIPS: &str = "UPDATE zanzi_relationships SET deleted_rev = $1 \
     FROM unnest($2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[]) \
     AS k(rt, ri, rl, st, si, sr) WHERE resource_type = k.rt AND resource_id = k.ri \
     AND relation = k.rl AND subject_type = k.st AND subject_id = k.si \
     AND subject_relation = k.sr AND deleted_rev IS NULL";

/// Inserts the rows of the arrays `$2`..`$11`, created at revision `$1`.
pub(super) const INSERT_RELATIONSHIPS: &str = "INSERT INTO zanzi_relationships \
     (resource_type, resource_id, relation, subject_type, subject_id, subject_relation, \
     caveat_name, caveat_context, expires_us, expires_ns, created_rev) \
     SELECT rt, ri, rl, st, si, sr, cn, cc, eu, en, $1 FROM unnest($2::text[], $3::text[], \
     $4::text[], $5::text[], $6::text[], $7::text[], $8::text[], $9::text[], $10::int8[], \
     $11::int4[]) AS n(rt, ri, rl, st, si, sr, cn, cc, eu, en)";

/// The record `$2/$3` live at `$1` (primary key `(keyspace, key, created_rev)`).
pub(super) const RECORD: &str = concat!(
    "SELECT value FROM zanzi_records WHERE keyspace = $2 AND key = $3 AND ",
    live!()
);

/// Up to `$4` records of keyspace `$2` live at `$1` with keys from `$3` on, in key order
/// (primary key prefix). The caller stops at the first key without its prefix.
pub(super) const RECORDS_FROM: &str = concat!(
    "SELECT key, value FROM zanzi_records WHERE keyspace = $2 AND key >= $3 AND ",
    live!(),
    " ORDER BY key LIMIT $4"
);

/// As [`RECORDS_FROM`], for keys strictly after `$3` (the next page).
pub(super) const RECORDS_AFTER: &str = concat!(
    "SELECT key, value FROM zanzi_records WHERE keyspace = $2 AND key > $3 AND ",
    live!(),
    " ORDER BY key LIMIT $4"
);

/// Ends the live records with the keys of the arrays `$2`, `$3` at revision `$1`.
pub(super) const END_RECORDS: &str = "UPDATE zanzi_records SET deleted_rev = $1 \
     FROM unnest($2::text[], $3::text[]) AS k(s, k) \
     WHERE keyspace = k.s AND key = k.k AND deleted_rev IS NULL";

/// Inserts the records of the arrays `$2`..`$4`, created at revision `$1`.
pub(super) const INSERT_RECORDS: &str =
    "INSERT INTO zanzi_records (keyspace, key, value, created_rev) \
     SELECT s, k, v, $1 FROM unnest($2::text[], $3::text[], $4::bytea[]) AS n(s, k, v)";

/// Stores the schema text `$2` written at revision `$1`.
pub(super) const INSERT_SCHEMA: &str = "INSERT INTO zanzi_schema (revision, text) VALUES ($1, $2)";

/// Logs what revision `$1` changed (`$3`), committed at `$2` (microseconds).
pub(super) const INSERT_CHANGE: &str =
    "INSERT INTO zanzi_changes (revision, committed_us, payload) VALUES ($1, $2, $3)";

/// Part `$2` of the log entry of the import at revision `$1` (primary key).
pub(super) const CHANGE_PART: &str =
    "SELECT payload FROM zanzi_change_parts WHERE revision = $1 AND part = $2";

/// The oldest retained revision, then up to `$2` log entries (with the summary of an import's
/// entry) after revision `$1` in revision
/// order (primary key), in one statement, so a concurrent prune cannot slip between the
/// check and the read. With no entries, one row whose revision is NULL.
pub(super) const CHANGES_SINCE: &str = "SELECT h.oldest, c.revision, c.payload, c.bulk_summary \
     FROM zanzi_head h LEFT JOIN zanzi_changes c ON c.revision > $1 WHERE h.id = 1 \
     ORDER BY c.revision LIMIT $2";

/// The newest revision committed before `$1` (microseconds), for the retention window
/// (primary key of `zanzi_changes`, which only holds the retained window).
pub(super) const REVISION_BEFORE: &str =
    "SELECT COALESCE(max(revision), 0) FROM zanzi_changes WHERE committed_us < $1";

/// Raises the oldest retained revision to `$1` (never lowers it); returns the new and the
/// previous oldest revision and the head.
pub(super) const RAISE_OLDEST: &str = "UPDATE zanzi_head SET oldest = GREATEST(oldest, \
     LEAST($1, revision)) WHERE id = 1 RETURNING oldest, revision";

/// The oldest retained revision and the head (for pruning).
pub(super) const OLDEST: &str = "SELECT oldest, revision FROM zanzi_head WHERE id = 1";

/// Deletes up to `$2` relationship rows that ended at or before revision `$1`
/// (`zanzi_relationships_dead`, partial: only ended rows).
pub(super) const DELETE_DEAD_RELATIONSHIPS: &str = "DELETE FROM zanzi_relationships \
     WHERE (resource_type, resource_id, relation, subject_type, subject_id, subject_relation, \
     created_rev) IN (SELECT resource_type, resource_id, relation, subject_type, subject_id, \
     subject_relation, created_rev FROM zanzi_relationships \
     WHERE deleted_rev IS NOT NULL AND deleted_rev <= $1 LIMIT $2)";

/// Deletes up to `$2` record rows that ended at or before revision `$1`
/// (`zanzi_records_dead`).
pub(super) const DELETE_DEAD_RECORDS: &str = "DELETE FROM zanzi_records \
     WHERE (keyspace, key, created_rev) IN (SELECT keyspace, key, created_rev \
     FROM zanzi_records WHERE deleted_rev IS NOT NULL AND deleted_rev <= $1 LIMIT $2)";

/// Deletes up to `$2` log entries of revisions at or before `$1` (primary key).
pub(super) const DELETE_OLD_CHANGES: &str = "DELETE FROM zanzi_changes WHERE revision IN \
     (SELECT revision FROM zanzi_changes WHERE revision <= $1 ORDER BY revision LIMIT $2)";

/// Deletes up to `$2` parts of imports' log entries of revisions at or before `$1` (primary
/// key).
pub(super) const DELETE_OLD_CHANGE_PARTS: &str = "DELETE FROM zanzi_change_parts \
     WHERE (revision, part) IN (SELECT revision, part FROM zanzi_change_parts \
     WHERE revision <= $1 ORDER BY revision, part LIMIT $2)";

/// Deletes the schema texts replaced at or before revision `$1` (primary key).
pub(super) const DELETE_OLD_SCHEMAS: &str = "DELETE FROM zanzi_schema WHERE revision < \
     (SELECT COALESCE(max(revision), 0) FROM zanzi_schema WHERE revision <= $1)";

/// The store's identity.
pub(super) const STORE_ID: &str = "SELECT value FROM zanzi_meta WHERE name = 'store_id'";

/// Records the store's identity unless one is there already.
pub(super) const CREATE_STORE_ID: &str = "INSERT INTO zanzi_meta (name, value) \
     VALUES ('store_id', $1) ON CONFLICT (name) DO NOTHING";

/// Replaces the store's identity (after clearing the database).
pub(super) const REPLACE_STORE_ID: &str =
    "UPDATE zanzi_meta SET value = $1 WHERE name = 'store_id'";

/// Empties every table of data and resets the revisions (the tables stay).
pub(super) const CLEAR: &str = "TRUNCATE zanzi_relationships, zanzi_records, zanzi_schema, \
     zanzi_changes, zanzi_change_parts; UPDATE zanzi_head SET revision = 0, oldest = 0 WHERE id = 1";

/// Bytes the tables occupy with their indexes (PostgreSQL's catalog; unknown elsewhere).
pub(super) const SIZE: &str = "SELECT COALESCE(sum(pg_total_relation_size(c.oid)), 0)::int8 \
     FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
     WHERE n.nspname = current_schema() AND c.relkind = 'r' AND c.relname LIKE 'zanzi\\_%'";

/// The server's version text (tells PostgreSQL from CockroachDB).
pub(super) const VERSION: &str = "SELECT version()";

// ---------- imports (`bulk.rs`): a staging table per import, then set-based statements ----------

/// The staging table of one import, gone at the end of its transaction; `ord` is the item's
/// position in the import (`{text}` stands for the byte-ordered text type). It is never
/// analysed: without statistics PostgreSQL sizes it from its pages, enough to hash-join it.
pub(super) const CREATE_STAGING: &str = "CREATE TEMPORARY TABLE zanzi_import (\
     rt {text} NOT NULL, ri {text} NOT NULL, rl {text} NOT NULL, st {text} NOT NULL, \
     si {text} NOT NULL, sr {text} NOT NULL, cn {text}, cc TEXT, eu BIGINT, en INT4, \
     ord BIGINT NOT NULL) ON COMMIT DROP";

/// Fills the staging table (binary COPY, columns in [`CREATE_STAGING`]'s order).
pub(super) const COPY_STAGING: &str = "COPY zanzi_import (rt, ri, rl, st, si, sr, cn, cc, eu, \
     en, ord) FROM STDIN (FORMAT binary)";

/// Ends, at revision `$1`, the rows live at the head with the key of a staged item; returns
/// how many it ended and the first item among them that is unexpired at (`$2`, `$3`) (what a
/// CREATE refuses).
pub(super) const END_STAGED: &str = "WITH ended AS (UPDATE zanzi_relationships r \
     SET deleted_rev = $1 FROM zanzi_import i WHERE r.resource_type = i.rt \
     AND r.resource_id = i.ri AND r.relation = i.rl AND r.subject_type = i.st \
     AND r.subject_id = i.si AND r.subject_relation = i.sr AND r.deleted_rev IS NULL \
     RETURNING i.ord, (r.expires_us IS NULL OR (r.expires_us, r.expires_ns) > ($2, $3)) AS live) \
     SELECT count(*), min(CASE WHEN live THEN ord END) FROM ended";

/// The first staged item at fault and whether it repeats an earlier item's key (else it is
/// live and unexpired at the head `$1`, at (`$2`, `$3`), which only CREATE (`$4`) refuses).
/// Only run once an import is known to fail, so it may be slow.
pub(super) const FIRST_STAGED_FAULT: &str = "SELECT ord, repeated FROM (SELECT i.ord, \
     row_number() OVER (PARTITION BY i.rt, i.ri, i.rl, i.st, i.si, i.sr ORDER BY i.ord) > 1 \
     AS repeated, EXISTS (SELECT 1 FROM zanzi_relationships r WHERE r.resource_type = i.rt \
     AND r.resource_id = i.ri AND r.relation = i.rl AND r.subject_type = i.st \
     AND r.subject_id = i.si AND r.subject_relation = i.sr AND created_rev <= $1 \
     AND (deleted_rev IS NULL OR deleted_rev > $1) \
     AND (expires_us IS NULL OR (expires_us, expires_ns) > ($2, $3))) AS live \
     FROM zanzi_import i) f WHERE repeated OR ($4 AND live) ORDER BY ord LIMIT 1";

/// Inserts every staged item as a row created at revision `$1`. Two items with one key
/// collide on the primary key (both rows are created at `$1`): that is how duplicates are
/// found, with no pass of their own.
pub(super) const INSERT_STAGED: &str = "INSERT INTO zanzi_relationships \
     (resource_type, resource_id, relation, subject_type, subject_id, subject_relation, \
     caveat_name, caveat_context, expires_us, expires_ns, created_rev) \
     SELECT rt, ri, rl, st, si, sr, cn, cc, eu, en, $1 FROM zanzi_import";

/// Marks the point [`INSERT_STAGED`] can be undone to, to name the duplicate it found.
pub(super) const BEFORE_INSERT: &str = "SAVEPOINT zanzi_import_rows";

/// Undoes a failed [`INSERT_STAGED`].
pub(super) const UNDO_INSERT: &str = "ROLLBACK TO SAVEPOINT zanzi_import_rows";

/// Stores the parts (arrays `$2`, `$3`) of the log entry of the import at revision `$1`.
pub(super) const INSERT_CHANGE_PARTS: &str = "INSERT INTO zanzi_change_parts \
     (revision, part, payload) SELECT $1, p, b FROM unnest($2::int4[], $3::bytea[]) AS n(p, b)";

/// Logs the import at revision `$1`, committed at `$2`: an entry without changes (`$3`) and
/// its summary (`$4`).
pub(super) const INSERT_BULK_CHANGE: &str = "INSERT INTO zanzi_changes \
     (revision, committed_us, payload, bulk_summary) VALUES ($1, $2, $3, $4)";
