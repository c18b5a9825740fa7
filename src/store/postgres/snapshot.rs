//! [`PgSnapshot`]: a read view at one revision. A snapshot is a revision number and a pinned
//! "now", not a database transaction: every statement filters rows live at that revision, and
//! every revision up to the head is committed, so separate statements (on any pooled
//! connection, or inside a write transaction) all see exactly that revision.
//!
//! Scans are paged by their sort key (`(columns...) > (last row)`), so a long scan holds no
//! connection between pages and never loads more than a page into memory.
//!
//! Round trips dominate on a database, and a check touches each object it walks through
//! several times (a point read, the subject sets of the same relation, the arrows of other
//! relations). So the first point read or scan of an object fetches all its relationships in
//! one query when it has at most [`OBJECT_ROWS`] of them, and the snapshot answers every later
//! read of that object from memory (the data at one revision never changes). Objects with more
//! relationships are read relation by relation, as asked.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use chrono::{DateTime, Utc};
use tokio_postgres::types::ToSql;
use tokio_postgres::Row;

use super::pool::{ConflictFlag, Conn, Lease, Params, Pool};
use super::rows::{self, prefix_end, readable};
use super::sql::{self, columns, visible};
use crate::filter::RelationshipFilter;
use crate::revision::Revision;
use crate::store::{ReadAhead, RecordIter, RelationshipIter, Snapshot, StoreError};
use crate::tuple::{ObjectRef, Relationship, SubjectRef};

/// Rows fetched by the first page of a scan (most scans are short: a precondition, a page of
/// an API read); later pages grow to [`LARGEST_PAGE`].
const FIRST_PAGE: i64 = 64;
const LARGEST_PAGE: i64 = 4_096;

/// Objects with at most this many relationships are fetched whole (see the module docs).
const OBJECT_ROWS: usize = 64;

/// Arrow targets fetched per object and hop with an object (see [`sql::OBJECT_ROWS_NEAR`]).
const NEAR_TARGETS: usize = 8;

/// Objects a snapshot remembers (a bound on its memory, not a cache policy: past it, reads go
/// to the database as asked).
const REMEMBERED_OBJECTS: usize = 4_096;

/// What a snapshot knows of one object: all its relationships, or that it has too many.
enum Known {
    /// Every relationship of the object, in relation then subject order.
    Whole(Vec<Relationship>),
    /// More than [`OBJECT_ROWS`]: read relation by relation.
    Large,
}

/// The object types known to have relationships of their own (seen as a resource), shared by
/// a store's snapshots: the types whose objects are worth fetching with the objects that point
/// at them. Learnt from what reads return, so it may lag behind the data; a type it lacks is
/// only fetched in a round trip of its own.
#[derive(Debug, Default)]
pub(super) struct ResourceTypes(std::sync::RwLock<Vec<String>>);

impl ResourceTypes {
    fn known(&self) -> Vec<String> {
        self.0
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    fn learn(&self, object_type: &str) {
        let known = self.0.read().unwrap_or_else(PoisonError::into_inner);
        if known.iter().any(|t| t == object_type) {
            return;
        }
        drop(known);
        let mut known = self.0.write().unwrap_or_else(PoisonError::into_inner);
        if !known.iter().any(|t| t == object_type) {
            known.push(object_type.to_string());
        }
    }
}

/// Where a snapshot's statements run.
pub(super) enum Source<'s> {
    /// Any pooled connection, one per statement.
    Pool(&'s Pool),
    /// The connection of a write transaction (the transaction's head view).
    Txn(&'s TxnConn<'s>),
}

/// The connection a write transaction holds, and whether one of its statements conflicted.
pub(super) struct TxnConn<'p> {
    pub(super) pool: &'p Pool,
    pub(super) lease: Lease<'p>,
    pub(super) conflict: ConflictFlag,
}

impl TxnConn<'_> {
    /// Runs a statement in the transaction, noting a serialization conflict.
    pub(super) fn query(&self, sql: &str, params: &Params<'_>) -> Result<Vec<Row>, StoreError> {
        self.lease.query(sql, params).map_err(|err| {
            self.conflict.note(&err);
            self.pool.error(&err)
        })
    }

    /// As [`TxnConn::query`], returning the number of rows changed.
    pub(super) fn execute(&self, sql: &str, params: &Params<'_>) -> Result<u64, StoreError> {
        self.lease.execute(sql, params).map_err(|err| {
            self.conflict.note(&err);
            self.pool.error(&err)
        })
    }

    /// As [`TxnConn::query`], for a statement not worth keeping prepared (its table lives for
    /// this transaction only).
    pub(super) fn query_once(
        &self,
        sql: &str,
        params: &Params<'_>,
    ) -> Result<Vec<Row>, StoreError> {
        self.lease
            .query_once(sql, params)
            .map_err(|err| self.fail(&err))
    }

    /// The error for a failed statement of the transaction, noting a serialization conflict.
    pub(super) fn fail(&self, err: &tokio_postgres::Error) -> StoreError {
        self.conflict.note(err);
        self.pool.error(err)
    }

    /// Runs parameterless statements in the transaction, noting a serialization conflict.
    pub(super) fn batch(&self, sql: &str) -> Result<(), StoreError> {
        self.lease.batch(sql).map_err(|err| {
            self.conflict.note(&err);
            self.pool.error(&err)
        })
    }

    pub(super) fn conn(&self) -> &Conn {
        &self.lease
    }
}

/// A read view at one revision of the database.
pub(super) struct PgSnapshot<'s> {
    source: Source<'s>,
    revision: Revision,
    schema_revision: Revision,
    now: DateTime<Utc>,
    /// `revision` as a statement parameter.
    at: i64,
    now_us: i64,
    now_ns: i32,
    /// Objects fetched whole (or known to be large), by (type, id).
    objects: Mutex<HashMap<(String, String), Arc<Known>>>,
    /// When set, an object is fetched with the objects it points at (see [`ResourceTypes`]).
    near: Option<&'s ResourceTypes>,
    /// Whether the walk under way may follow arrows ([`Snapshot::read_ahead`]); without
    /// arrows, fetching an object's neighbours costs the database work nobody reads.
    arrows_ahead: AtomicBool,
}

impl<'s> PgSnapshot<'s> {
    pub(super) fn new(
        source: Source<'s>,
        revision: Revision,
        schema_revision: Revision,
        now: DateTime<Utc>,
    ) -> Result<Self, StoreError> {
        let (now_us, now_ns) = rows::instant(now);
        Ok(Self {
            source,
            at: rows::revision_param(revision)?,
            revision,
            schema_revision,
            now,
            now_us,
            now_ns,
            objects: Mutex::new(HashMap::new()),
            near: None,
            arrows_ahead: AtomicBool::new(true),
        })
    }

    /// Fetches each object with the objects it points at whose types `types` knows.
    pub(super) fn fetching_near(mut self, types: &'s ResourceTypes) -> Self {
        self.near = Some(types);
        self
    }

    /// Fetches `resource` whole (or learns it is large) and, when the snapshot fetches near
    /// objects, the objects it points at; remembers them all. Returns what it knows of
    /// `resource`.
    fn fetch_object(&self, resource: &ObjectRef) -> Result<Arc<Known>, StoreError> {
        let limit = i64::try_from(OBJECT_ROWS + 1).unwrap_or(i64::MAX);
        let near = self
            .near
            .filter(|_| self.arrows_ahead.load(Ordering::Relaxed));
        let Some(types) = near else {
            let mut found = self.relationships_of(
                sql::OBJECT_ROWS,
                &[&resource.object_type, &resource.object_id, &limit],
            )?;
            let known = Arc::new(if found.len() > OBJECT_ROWS {
                found.clear();
                Known::Large
            } else {
                Known::Whole(found)
            });
            self.remember(resource, &known);
            return Ok(known);
        };
        let known_types = types.known();
        let cap = i64::try_from(NEAR_TARGETS).unwrap_or(i64::MAX);
        let mut params: Vec<&(dyn ToSql + Sync)> = vec![&self.at, &self.now_us, &self.now_ns];
        params.extend_from_slice(&[
            &resource.object_type,
            &resource.object_id,
            &limit,
            &known_types,
            &cap,
        ]);
        let mut hops: [HashMap<ObjectRef, Vec<Relationship>>; 3] = Default::default();
        for row in self.rows(sql::OBJECT_ROWS_NEAR, &params)? {
            let relationship = rows::relationship(&row)?;
            let hop: i32 = row
                .try_get(10)
                .map_err(|e| StoreError::Corrupt(format!("relationship row: {e}")))?;
            let at = usize::try_from(hop).unwrap_or(usize::MAX);
            let Some(objects) = hops.get_mut(at) else {
                return Err(StoreError::Corrupt(format!(
                    "relationship row of hop {hop}"
                )));
            };
            objects
                .entry(relationship.resource.clone())
                .or_default()
                .push(relationship);
        }
        // The same rule as the statement's: which objects each hop fetched.
        let mut fetched: Vec<ObjectRef> = vec![resource.clone()];
        let mut root = None;
        for (hop, objects) in hops.iter_mut().enumerate() {
            let mut next: Vec<ObjectRef> = Vec::new();
            for object in &fetched {
                let mut found = objects.remove(object).unwrap_or_default();
                let known = Arc::new(if found.len() > OBJECT_ROWS {
                    Known::Large
                } else {
                    found.sort_by(|a, b| (&a.relation, &a.subject).cmp(&(&b.relation, &b.subject)));
                    next.extend(
                        found
                            .iter()
                            .filter(|r| {
                                r.subject.relation.is_none()
                                    && known_types.contains(&r.subject.object.object_type)
                            })
                            .map(|r| r.subject.object.clone()),
                    );
                    Known::Whole(found)
                });
                if let Known::Whole(rows) = known.as_ref() {
                    if !rows.is_empty() {
                        types.learn(&object.object_type);
                    }
                }
                self.remember(object, &known);
                if hop == 0 {
                    root = Some(known);
                }
            }
            next.sort_unstable();
            next.dedup();
            next.truncate(NEAR_TARGETS);
            fetched = next;
        }
        root.ok_or_else(|| StoreError::Corrupt("an object fetch lost its object".to_string()))
    }

    /// Keeps what is known of `object` for later reads of this snapshot (up to a bound).
    fn remember(&self, object: &ObjectRef, known: &Arc<Known>) {
        let key = (object.object_type.clone(), object.object_id.clone());
        let mut objects = self.objects.lock().unwrap_or_else(PoisonError::into_inner);
        if objects.len() < REMEMBERED_OBJECTS {
            objects.entry(key).or_insert_with(|| Arc::clone(known));
        }
    }

    /// Every relationship of `resource` when it has few (fetched once per snapshot), `None`
    /// when it has many.
    fn object(&self, resource: &ObjectRef) -> Result<Option<Arc<Known>>, StoreError> {
        let key = (resource.object_type.clone(), resource.object_id.clone());
        let remembered = self
            .objects
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&key)
            .cloned();
        let known = match remembered {
            Some(known) => known,
            None => self.fetch_object(resource)?,
        };
        Ok(match known.as_ref() {
            Known::Whole(_) => Some(known),
            Known::Large => None,
        })
    }

    /// Runs a read statement at this view.
    fn rows(&self, sql: &str, params: &Params<'_>) -> Result<Vec<Row>, StoreError> {
        match &self.source {
            Source::Pool(pool) => pool.read(|conn| conn.query(sql, params)),
            Source::Txn(txn) => txn.query(sql, params),
        }
    }

    /// Runs a relationship read whose first three parameters are the revision and "now",
    /// followed by `rest`.
    fn relationships_of(
        &self,
        sql: &str,
        rest: &Params<'_>,
    ) -> Result<Vec<Relationship>, StoreError> {
        let mut params: Vec<&(dyn ToSql + Sync)> = vec![&self.at, &self.now_us, &self.now_ns];
        params.extend_from_slice(rest);
        self.rows(sql, &params)?
            .iter()
            .map(rows::relationship)
            .collect()
    }

    /// The stored rows with the keys of `keys`, live at this revision, expired included.
    pub(super) fn stored(&self, keys: &rows::KeyColumns) -> Result<Vec<Relationship>, StoreError> {
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        let params: [&(dyn ToSql + Sync); 7] = [
            &self.at,
            &keys.resource_types,
            &keys.resource_ids,
            &keys.relations,
            &keys.subject_types,
            &keys.subject_ids,
            &keys.subject_relations,
        ];
        self.rows(sql::STORED, &params)?
            .iter()
            .map(rows::relationship)
            .collect()
    }
}

fn eager<'a>(found: Result<Vec<Relationship>, StoreError>) -> RelationshipIter<'a> {
    match found {
        Ok(found) => Box::new(found.into_iter().map(Ok)),
        Err(err) => Box::new(std::iter::once(Err(err))),
    }
}

impl Snapshot for PgSnapshot<'_> {
    fn revision(&self) -> Revision {
        self.revision
    }

    fn now(&self) -> Option<DateTime<Utc>> {
        Some(self.now)
    }

    fn schema_revision(&self) -> Revision {
        self.schema_revision
    }

    fn read_ahead(&self, hint: ReadAhead) {
        self.arrows_ahead
            .store(hint == ReadAhead::ArrowTargets, Ordering::Relaxed);
    }

    fn schema_text(&self) -> Result<Option<String>, StoreError> {
        if self.schema_revision == Revision::ZERO {
            return Ok(None);
        }
        let at = rows::revision_param(self.schema_revision)?;
        let found = self.rows(sql::SCHEMA_TEXT, &[&at])?;
        found
            .first()
            .map(|row| {
                row.try_get::<_, String>(0)
                    .map_err(|e| StoreError::Corrupt(format!("schema text: {e}")))
            })
            .transpose()
    }

    fn get(
        &self,
        resource: &ObjectRef,
        relation: &str,
        subject: &SubjectRef,
    ) -> Result<Option<Relationship>, StoreError> {
        let subject_relation = subject.relation.as_deref().unwrap_or("");
        let parts = [
            resource.object_type.as_str(),
            &resource.object_id,
            relation,
            &subject.object.object_type,
            &subject.object.object_id,
            subject_relation,
        ];
        if !readable(&parts) {
            return Ok(None);
        }
        if let Some(known) = self.object(resource)? {
            if let Known::Whole(rows) = known.as_ref() {
                return Ok(rows
                    .iter()
                    .find(|r| r.relation == relation && r.subject == *subject)
                    .cloned());
            }
        }
        let params: [&(dyn ToSql + Sync); 6] = [
            &parts[0], &parts[1], &parts[2], &parts[3], &parts[4], &parts[5],
        ];
        Ok(self.relationships_of(sql::GET, &params)?.into_iter().next())
    }

    fn subjects_of(&self, resource: &ObjectRef, relation: &str) -> RelationshipIter<'_> {
        if !readable(&[&resource.object_type, &resource.object_id, relation]) {
            return Box::new(std::iter::empty());
        }
        match self.object(resource) {
            Err(err) => return eager(Err(err)),
            Ok(Some(known)) => {
                if let Known::Whole(rows) = known.as_ref() {
                    let relation = relation.to_string();
                    let mine: Vec<Relationship> = rows
                        .iter()
                        .filter(|r| r.relation == relation)
                        .cloned()
                        .collect();
                    return eager(Ok(mine));
                }
            }
            Ok(None) => {}
        }
        eager(self.relationships_of(
            sql::SUBJECTS_OF,
            &[&resource.object_type, &resource.object_id, &relation],
        ))
    }

    fn subjects_of_many(&self, resources: &[ObjectRef], relation: &str) -> RelationshipIter<'_> {
        let mut sorted: Vec<&ObjectRef> = resources
            .iter()
            .filter(|r| readable(&[&r.object_type, &r.object_id]))
            .collect();
        sorted.sort_unstable();
        sorted.dedup();
        if sorted.is_empty() || !readable(&[relation]) {
            return Box::new(std::iter::empty());
        }
        let types: Vec<&str> = sorted.iter().map(|r| r.object_type.as_str()).collect();
        let ids: Vec<&str> = sorted.iter().map(|r| r.object_id.as_str()).collect();
        eager(self.relationships_of(sql::SUBJECTS_OF_MANY, &[&types, &ids, &relation]))
    }

    fn resources_with_subject(
        &self,
        subject: &SubjectRef,
        resource_type: &str,
        relation: &str,
    ) -> RelationshipIter<'_> {
        let subject_relation = subject.relation.as_deref().unwrap_or("");
        if !readable(&[
            &subject.object.object_type,
            &subject.object.object_id,
            subject_relation,
            resource_type,
            relation,
        ]) {
            return Box::new(std::iter::empty());
        }
        eager(self.relationships_of(
            sql::RESOURCES_WITH_SUBJECT,
            &[
                &subject.object.object_type,
                &subject.object.object_id,
                &subject_relation,
                &resource_type,
                &relation,
            ],
        ))
    }

    fn resources_with_subjects(
        &self,
        subjects: &[SubjectRef],
        resource_type: &str,
        relation: &str,
    ) -> RelationshipIter<'_> {
        let mut sorted: Vec<&SubjectRef> = subjects
            .iter()
            .filter(|s| {
                readable(&[
                    &s.object.object_type,
                    &s.object.object_id,
                    s.relation.as_deref().unwrap_or(""),
                ])
            })
            .collect();
        sorted.sort_unstable();
        sorted.dedup();
        if sorted.is_empty() || !readable(&[resource_type, relation]) {
            return Box::new(std::iter::empty());
        }
        let types: Vec<&str> = sorted
            .iter()
            .map(|s| s.object.object_type.as_str())
            .collect();
        let ids: Vec<&str> = sorted.iter().map(|s| s.object.object_id.as_str()).collect();
        let relations: Vec<&str> = sorted
            .iter()
            .map(|s| s.relation.as_deref().unwrap_or(""))
            .collect();
        eager(self.relationships_of(
            sql::RESOURCES_WITH_SUBJECTS,
            &[&types, &ids, &relations, &resource_type, &relation],
        ))
    }

    fn record(&self, keyspace: &str, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        if keyspace.is_empty() || !readable(&[keyspace, key]) {
            return Err(StoreError::UnstorableRecord(format!("{keyspace}/{key}")));
        }
        let found = self.rows(sql::RECORD, &[&self.at, &keyspace, &key])?;
        found
            .first()
            .map(|row| {
                row.try_get::<_, Vec<u8>>(0)
                    .map_err(|e| StoreError::Corrupt(format!("record value: {e}")))
            })
            .transpose()
    }

    fn records(&self, keyspace: &str, key_prefix: &str) -> RecordIter<'_> {
        if keyspace.is_empty() || !readable(&[keyspace, key_prefix]) {
            return Box::new(std::iter::once(Err(StoreError::UnstorableRecord(format!(
                "{keyspace}/{key_prefix}"
            )))));
        }
        Box::new(RecordPages {
            snapshot: self,
            keyspace: keyspace.to_string(),
            prefix: key_prefix.to_string(),
            last: None,
            buffer: VecDeque::new(),
            page: FIRST_PAGE,
            done: false,
        })
    }

    fn read(
        &self,
        filter: &RelationshipFilter,
        after: Option<&Relationship>,
    ) -> RelationshipIter<'_> {
        Box::new(ReadPages {
            snapshot: self,
            plan: ReadPlan::new(filter),
            filter: filter.clone(),
            last: after.map(rows::key_of),
            buffer: VecDeque::new(),
            page: FIRST_PAGE,
            done: false,
        })
    }

    fn expired(&self, limit: usize) -> Result<Vec<Relationship>, StoreError> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.relationships_of(sql::EXPIRED, &[&limit])
    }
}

/// The records of a keyspace with a key prefix, a page at a time.
struct RecordPages<'v, 's> {
    snapshot: &'v PgSnapshot<'s>,
    keyspace: String,
    prefix: String,
    /// The last key returned (the next page starts after it).
    last: Option<String>,
    buffer: VecDeque<(String, Vec<u8>)>,
    page: i64,
    done: bool,
}

impl RecordPages<'_, '_> {
    fn fetch(&mut self) -> Result<(), StoreError> {
        let snapshot = self.snapshot;
        let found = match &self.last {
            None => snapshot.rows(
                sql::RECORDS_FROM,
                &[&snapshot.at, &self.keyspace, &self.prefix, &self.page],
            )?,
            Some(last) => snapshot.rows(
                sql::RECORDS_AFTER,
                &[&snapshot.at, &self.keyspace, last, &self.page],
            )?,
        };
        let full = i64::try_from(found.len()).unwrap_or(i64::MAX) >= self.page;
        for row in &found {
            let key: String = row
                .try_get(0)
                .map_err(|e| StoreError::Corrupt(format!("record key: {e}")))?;
            if !key.starts_with(&self.prefix) {
                self.done = true;
                break;
            }
            let value: Vec<u8> = row
                .try_get(1)
                .map_err(|e| StoreError::Corrupt(format!("record value: {e}")))?;
            self.last = Some(key.clone());
            self.buffer.push_back((key, value));
        }
        if !full {
            self.done = true;
        }
        self.page = (self.page * 4).min(LARGEST_PAGE);
        Ok(())
    }
}

impl Iterator for RecordPages<'_, '_> {
    type Item = Result<(String, Vec<u8>), StoreError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.buffer.is_empty() && !self.done {
            if let Err(err) = self.fetch() {
                self.done = true;
                return Some(Err(err));
            }
        }
        self.buffer.pop_front().map(Ok)
    }
}

/// How a filtered read scans: which order, and the statement text for a first page and for
/// the pages after a cursor.
struct ReadPlan {
    /// Conditions on the filter's fields (numbered from `$4`), joined by `AND`.
    conditions: Vec<String>,
    /// Parameters of those conditions, in order.
    values: Vec<String>,
    /// The sort key columns.
    order: &'static [&'static str],
    /// Whether the order is the subject-major one.
    reverse: bool,
}

const FORWARD_ORDER: &[&str] = &[
    "resource_type",
    "resource_id",
    "relation",
    "subject_type",
    "subject_id",
    "subject_relation",
];
const REVERSE_ORDER: &[&str] = &[
    "subject_type",
    "subject_id",
    "subject_relation",
    "resource_type",
    "relation",
    "resource_id",
];

impl ReadPlan {
    /// The order is the one the store trait documents: subject-major when the filter names a
    /// subject but no resource type, resource-major otherwise.
    fn new(filter: &RelationshipFilter) -> Self {
        let reverse = filter.resource_type.is_none() && filter.subject.is_some();
        let mut plan = Self {
            conditions: Vec::new(),
            values: Vec::new(),
            order: if reverse {
                REVERSE_ORDER
            } else {
                FORWARD_ORDER
            },
            reverse,
        };
        if let Some(resource_type) = &filter.resource_type {
            plan.equal("resource_type", resource_type);
        }
        if let Some(id) = &filter.resource_id {
            plan.equal("resource_id", id);
        }
        if let Some(prefix) = filter.resource_id_prefix.as_ref().filter(|p| !p.is_empty()) {
            plan.compare("resource_id", ">=", prefix);
            if let Some(end) = prefix_end(prefix) {
                plan.compare("resource_id", "<", &end);
            }
        }
        if let Some(relation) = &filter.relation {
            plan.equal("relation", relation);
        }
        if let Some(subject) = &filter.subject {
            plan.equal("subject_type", &subject.subject_type);
            if let Some(id) = &subject.subject_id {
                plan.equal("subject_id", id);
            }
            if let Some(relation) = &subject.relation {
                plan.equal("subject_relation", relation.as_deref().unwrap_or(""));
            }
        }
        plan
    }

    fn equal(&mut self, column: &str, value: &str) {
        self.compare(column, "=", value);
    }

    fn compare(&mut self, column: &str, op: &str, value: &str) {
        self.values.push(value.to_string());
        self.conditions
            .push(format!("{column} {op} ${}", self.values.len() + 3));
    }

    /// Whether any value contains a NUL byte (then nothing can match).
    fn impossible(&self) -> bool {
        !self.values.iter().all(|v| readable(&[v]))
    }

    /// The statement for a page, starting after a cursor when `after` is set (its six key
    /// parameters follow the conditions' ones, then the page size).
    fn statement(&self, after: bool) -> String {
        let mut conditions = self.conditions.clone();
        let mut next = self.values.len() + 4;
        if after {
            let placeholders: Vec<String> = (0..self.order.len())
                .map(|i| format!("${}", next + i))
                .collect();
            conditions.push(format!(
                "({}) > ({})",
                self.order.join(", "),
                placeholders.join(", ")
            ));
            next += self.order.len();
        }
        conditions.push(visible!().to_string());
        format!(
            "SELECT {} FROM zanzi_relationships WHERE {} ORDER BY {} LIMIT ${next}",
            columns!(),
            conditions.join(" AND "),
            self.order.join(", ")
        )
    }

    /// A cursor's key in this plan's column order.
    fn cursor(&self, key: &rows::Key) -> [String; 6] {
        let (rt, ri, rl, st, si, sr) = key.clone();
        if self.reverse {
            [st, si, sr, rt, rl, ri]
        } else {
            [rt, ri, rl, st, si, sr]
        }
    }
}

/// The relationships a filter matches, a page at a time.
struct ReadPages<'v, 's> {
    snapshot: &'v PgSnapshot<'s>,
    plan: ReadPlan,
    filter: RelationshipFilter,
    /// The key of the last relationship returned (or the caller's cursor).
    last: Option<rows::Key>,
    buffer: VecDeque<Relationship>,
    page: i64,
    done: bool,
}

impl ReadPages<'_, '_> {
    fn fetch(&mut self) -> Result<(), StoreError> {
        if self.plan.impossible() {
            self.done = true;
            return Ok(());
        }
        let snapshot = self.snapshot;
        let cursor = self.last.as_ref().map(|key| self.plan.cursor(key));
        let statement = self.plan.statement(cursor.is_some());
        let mut params: Vec<&(dyn ToSql + Sync)> =
            vec![&snapshot.at, &snapshot.now_us, &snapshot.now_ns];
        params.extend(self.plan.values.iter().map(|v| v as &(dyn ToSql + Sync)));
        if let Some(cursor) = &cursor {
            if !readable(&cursor.iter().map(String::as_str).collect::<Vec<_>>()) {
                self.done = true;
                return Ok(());
            }
            params.extend(cursor.iter().map(|v| v as &(dyn ToSql + Sync)));
        }
        params.push(&self.page);
        let found = snapshot.rows(&statement, &params)?;
        if i64::try_from(found.len()).unwrap_or(i64::MAX) < self.page {
            self.done = true;
        }
        for row in &found {
            let relationship = rows::relationship(row)?;
            self.last = Some(rows::key_of(&relationship));
            if self.filter.matches(&relationship) {
                self.buffer.push_back(relationship);
            }
        }
        self.page = (self.page * 4).min(LARGEST_PAGE);
        Ok(())
    }
}

impl Iterator for ReadPages<'_, '_> {
    type Item = Result<Relationship, StoreError>;

    fn next(&mut self) -> Option<Self::Item> {
        while self.buffer.is_empty() && !self.done {
            if let Err(err) = self.fetch() {
                self.done = true;
                return Some(Err(err));
            }
        }
        self.buffer.pop_front().map(Ok)
    }
}
