//! Every byte layout the store writes: keys of the `fwd`, `rev`, `log` and `meta` column
//! families, and the values stored under them.
//!
//! Keys are built from names and ids joined by a `0` byte ([`SEP`]). Names and ids never
//! contain `0` and are never empty, so component-wise order equals byte order, and a prefix
//! made of whole components, each followed by [`SEP`], matches exactly the keys that start
//! with those components (`doc 0 1 0` never matches `doc 0 10 0`).
//!
//! "No subject relation" (`...` in text) is encoded as the **empty** component, so a
//! relationship's direct subject sorts before its subject sets (`user:tom` < `user:tom#member`).
//!
//! | column family | key                                                              | value |
//! |---------------|------------------------------------------------------------------|-------|
//! | `fwd`         | `type 0 id 0 relation 0 subject_type 0 subject_id 0 subject_rel`  | [`RelationshipValue`] |
//! | `rev`         | `subject_type 0 subject_id 0 subject_rel 0 type 0 relation 0 id`  | [`RelationshipValue`] (a copy of the `fwd` value) |
//! | `log`         | revision as `u64` big-endian                                      | [`LogEntry`] |
//! | `log`         | revision, then part as `u32` big-endian ([`BulkPartKey`])        | part 0: [`BulkSummaryValue`]; parts 1..: [`encode_bulk_part`] |
//! | `meta`        | [`META_FORMAT_VERSION`], [`META_HEAD_REVISION`], [`META_SCHEMA`], [`META_SCHEMA_REVISION`], [`META_OLDEST_REVISION`], [`META_STORE_ID`] | one byte; `u64` big-endian; UTF-8 text; `u64` big-endian; `u64` big-endian; 16 random bytes |
//! | `meta`        | [`META_BULK_PENDING`]; [`BULK_UNDO_PREFIX`] then a [`ForwardKey`] | revision of an import being ingested; the value that key held before it |
//!
//! A bulk revision (an import) logs its changes in parts: the ordinary entry under its
//! revision (no changes), a summary under part 0 and the changes, in forward-key order, a few
//! thousand per part, under parts 1 and up. Its keys sort between the revision and the next.
//! | `records`     | `keyspace 0 key` ([`RecordKey`])                                 | the record's bytes, as the facade wrote them |
//! | `exp`         | expiration (seconds, sign bit flipped, and nanoseconds, big-endian), then a [`ForwardKey`] ([`ExpiryKey`]) | empty |
//!
//! Every stored relationship with an expiration has exactly one `exp` entry, at its
//! expiration; the entry is written and removed in the same batch as the relationship (or
//! ingested with an import), so the expiry sweep reads the index up to "now" instead of
//! scanning `fwd`.
//!
//! Values are `bincode` (standard configuration, with a size limit so corrupt length prefixes
//! cannot trigger huge allocations). Caveat contexts are stored as JSON text inside the value.
//! Every decoder returns [`StoreError::Corrupt`] on bad bytes and never panics.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::StoreError;
use crate::filter::{RelationshipFilter, SubjectFilter};
use crate::revision::Revision;
use crate::transaction::{Change, UpdateOp};
use crate::tuple::{ContextualizedCaveat, ObjectRef, Relationship, SubjectRef};

/// The on-disk format this build writes; bump on any layout change. Version 2 added bulk
/// revisions (parts in `log`, the pending-import entries in `meta`); version 3 the expiration
/// index (`exp`).
pub const FORMAT_VERSION: u8 = 3;
/// The oldest format this build still opens (and upgrades to [`FORMAT_VERSION`]): version 1
/// is version 2 without bulk revisions, version 2 is version 3 without the expiration index
/// (built when the store is opened).
pub const OLDEST_READABLE_FORMAT: u8 = 1;
/// The first format with the expiration index.
pub const EXPIRATION_INDEX_FORMAT: u8 = 3;

/// Separator between key components.
pub const SEP: u8 = 0;

/// Column family of the resource-major index.
pub const CF_FWD: &str = "fwd";
/// Column family of the subject-major index.
pub const CF_REV: &str = "rev";
/// Column family of the write log.
pub const CF_LOG: &str = "log";
/// Column family of store metadata.
pub const CF_META: &str = "meta";
/// Column family of the facade's records (see [`RecordKey`]).
pub const CF_RECORDS: &str = "records";
/// Column family of the expiration index: relationships with an expiration, soonest first.
pub const CF_EXP: &str = "exp";
/// Every column family the store opens, in order.
pub const COLUMN_FAMILIES: [&str; 6] = [CF_FWD, CF_REV, CF_LOG, CF_META, CF_RECORDS, CF_EXP];

/// `meta` key of the format version byte.
pub const META_FORMAT_VERSION: &[u8] = b"format_version";
/// `meta` key of the head revision (`u64` big-endian).
pub const META_HEAD_REVISION: &[u8] = b"head_revision";
/// `meta` key of the schema text (UTF-8).
pub const META_SCHEMA: &[u8] = b"schema";
/// `meta` key of the revision that wrote the schema in force (`u64` big-endian; absent in
/// stores written before it was kept, which then report revision 0).
pub const META_SCHEMA_REVISION: &[u8] = b"schema_revision";
/// `meta` key of the oldest revision whose log entry and exact state are kept (`u64`
/// big-endian; absent until history is first pruned, meaning 0).
pub const META_OLDEST_REVISION: &[u8] = b"oldest_revision";
/// `meta` key of the store's identity: 16 random bytes written when the folder is created (or
/// first opened by a build that knows it), so consistency tokens from another folder are refused.
pub const META_STORE_ID: &[u8] = b"store_id";

/// `meta` key present only while an import is being ingested: the revision it will commit at
/// (`u64` big-endian). Found at open, it means the import never committed and is rolled back.
pub const META_BULK_PENDING: &[u8] = b"bulk_pending";
/// `meta` key prefix of an import's undo entries: the prefix then a [`ForwardKey`] the import
/// overwrites, holding the value stored there before it.
pub const BULK_UNDO_PREFIX: &[u8] = b"bulk_undo\0";

/// Largest encoded relationship value accepted (bounds allocations while decoding).
const VALUE_LIMIT: usize = 16 << 20;
/// Largest encoded log entry (one transaction) accepted.
pub const LOG_ENTRY_LIMIT: usize = 256 << 20;

fn corrupt(what: &str, detail: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt(format!("{what}: {detail}"))
}

/// The parts of a relationship that form its identity (what both index keys encode).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct RelationshipKey {
    /// The resource.
    pub resource: ObjectRef,
    /// The relation on the resource.
    pub relation: String,
    /// The subject.
    pub subject: SubjectRef,
}

impl RelationshipKey {
    /// The identity of `rel` (caveat and expiration dropped).
    pub fn of(rel: &Relationship) -> Self {
        Self {
            resource: rel.resource.clone(),
            relation: rel.relation.clone(),
            subject: rel.subject.clone(),
        }
    }

    /// The relationship with this identity and the metadata of `value`.
    pub fn into_relationship(self, value: RelationshipValue) -> Relationship {
        Relationship {
            resource: self.resource,
            relation: self.relation,
            subject: self.subject,
            caveat: value.caveat,
            expiration: value.expiration,
        }
    }
}

/// Checks that a component can be stored: non-empty and free of the separator.
fn check_component(rel: &dyn Fn() -> String, part: &str) -> Result<(), StoreError> {
    if part.is_empty() || part.as_bytes().contains(&SEP) {
        Err(StoreError::Unstorable(rel()))
    } else {
        Ok(())
    }
}

fn check_parts(
    resource: &ObjectRef,
    relation: &str,
    subject: &SubjectRef,
) -> Result<(), StoreError> {
    let describe = || format!("{resource}#{relation}@{subject}");
    check_component(&describe, &resource.object_type)?;
    check_component(&describe, &resource.object_id)?;
    check_component(&describe, relation)?;
    check_component(&describe, &subject.object.object_type)?;
    check_component(&describe, &subject.object.object_id)?;
    if let Some(subject_relation) = &subject.relation {
        check_component(&describe, subject_relation)?;
    }
    Ok(())
}

/// Joins whole components, each followed by [`SEP`], then an open-ended tail (no separator).
pub fn component_prefix(components: &[&str], open_tail: Option<&str>) -> Vec<u8> {
    let len = components.iter().map(|c| c.len() + 1).sum::<usize>() + open_tail.map_or(0, str::len);
    let mut out = Vec::with_capacity(len);
    for component in components {
        out.extend_from_slice(component.as_bytes());
        out.push(SEP);
    }
    if let Some(tail) = open_tail {
        out.extend_from_slice(tail.as_bytes());
    }
    out
}

/// The smallest key greater than every key starting with `prefix`, or `None` when no such
/// bound exists (empty prefix or all `0xff`). Used as an iterator upper bound.
pub fn prefix_upper_bound(prefix: &[u8]) -> Option<Vec<u8>> {
    let mut bound = prefix.to_vec();
    while let Some(last) = bound.pop() {
        if last < u8::MAX {
            bound.push(last + 1);
            return Some(bound);
        }
    }
    None
}

/// The smallest key strictly greater than `key` (for resuming after a cursor).
pub fn key_successor(key: &[u8]) -> Vec<u8> {
    let mut next = Vec::with_capacity(key.len() + 1);
    next.extend_from_slice(key);
    next.push(SEP);
    next
}

/// Splits `bytes` at separators into exactly `N` UTF-8 components.
fn split_components<'a, const N: usize>(
    what: &str,
    bytes: &'a [u8],
) -> Result<[&'a str; N], StoreError> {
    let mut out = [""; N];
    let mut parts = bytes.split(|b| *b == SEP);
    for slot in out.iter_mut() {
        let part = parts
            .next()
            .ok_or_else(|| corrupt(what, format!("expected {N} components")))?;
        *slot = std::str::from_utf8(part).map_err(|e| corrupt(what, e))?;
    }
    if parts.next().is_some() {
        return Err(corrupt(what, format!("more than {N} components")));
    }
    Ok(out)
}

fn non_empty<'a>(what: &str, part: &'a str) -> Result<&'a str, StoreError> {
    if part.is_empty() {
        Err(corrupt(what, "empty component"))
    } else {
        Ok(part)
    }
}

fn subject_relation(part: &str) -> Option<String> {
    if part.is_empty() {
        None
    } else {
        Some(part.to_string())
    }
}

/// A key of the `records` column family: `keyspace 0 key`. The keyspace is a non-empty name
/// without `0` bytes; the key is any text without `0` bytes (it may be empty), so every key of
/// one keyspace starts with `keyspace 0` and a key prefix scan is a byte prefix scan.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RecordKey(Vec<u8>);

impl RecordKey {
    /// The key of `key` in `keyspace`; fails when either contains a `0` byte or the keyspace
    /// is empty.
    pub fn new(keyspace: &str, key: &str) -> Result<Self, StoreError> {
        Ok(Self(Self::prefix(keyspace, key)?))
    }

    /// The bytes every key of `keyspace` starting with `key_prefix` starts with.
    pub fn prefix(keyspace: &str, key_prefix: &str) -> Result<Vec<u8>, StoreError> {
        if keyspace.is_empty() || keyspace.contains('\0') || key_prefix.contains('\0') {
            return Err(StoreError::UnstorableRecord(format!(
                "{keyspace}/{key_prefix}"
            )));
        }
        let mut bytes = Vec::with_capacity(keyspace.len() + 1 + key_prefix.len());
        bytes.extend_from_slice(keyspace.as_bytes());
        bytes.push(SEP);
        bytes.extend_from_slice(key_prefix.as_bytes());
        Ok(bytes)
    }

    /// The encoded bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// The keyspace and key of stored key bytes.
    pub fn decode(bytes: &[u8]) -> Result<(String, String), StoreError> {
        const WHAT: &str = "record key";
        let [keyspace, key] = split_components::<2>(WHAT, bytes)?;
        Ok((non_empty(WHAT, keyspace)?.to_string(), key.to_string()))
    }
}

/// A key of the `fwd` column family:
/// `type 0 id 0 relation 0 subject_type 0 subject_id 0 subject_relation` (empty = `...`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ForwardKey(Vec<u8>);

impl ForwardKey {
    /// The key of `resource#relation@subject`; fails if a part is empty or contains a `0` byte.
    pub fn new(
        resource: &ObjectRef,
        relation: &str,
        subject: &SubjectRef,
    ) -> Result<Self, StoreError> {
        check_parts(resource, relation, subject)?;
        let mut key = component_prefix(
            &[
                &resource.object_type,
                &resource.object_id,
                relation,
                &subject.object.object_type,
                &subject.object.object_id,
            ],
            None,
        );
        if let Some(subject_relation) = &subject.relation {
            key.extend_from_slice(subject_relation.as_bytes());
        }
        Ok(Self(key))
    }

    /// The key of `rel`.
    pub fn of(rel: &Relationship) -> Result<Self, StoreError> {
        Self::new(&rel.resource, &rel.relation, &rel.subject)
    }

    /// A forward key as stored (read from the index or the log), not checked.
    pub fn from_stored(bytes: Vec<u8>) -> Self {
        Self(bytes)
    }

    /// The encoded bytes, owned.
    pub fn into_bytes(self) -> Vec<u8> {
        self.0
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// Decodes a stored forward key.
    pub fn decode(bytes: &[u8]) -> Result<RelationshipKey, StoreError> {
        const WHAT: &str = "forward key";
        let [rt, rid, rel, st, sid, srel] = split_components::<6>(WHAT, bytes)?;
        Ok(RelationshipKey {
            resource: ObjectRef::new_unchecked(non_empty(WHAT, rt)?, non_empty(WHAT, rid)?),
            relation: non_empty(WHAT, rel)?.to_string(),
            subject: SubjectRef {
                object: ObjectRef::new_unchecked(non_empty(WHAT, st)?, non_empty(WHAT, sid)?),
                relation: subject_relation(srel),
            },
        })
    }

    /// The subject of a stored forward key under `prefix` (a [`ForwardKey::subjects_prefix`]):
    /// past it the key is `subject_type 0 subject_id 0 subject_relation`.
    pub fn decode_subject(prefix: &[u8], bytes: &[u8]) -> Result<SubjectRef, StoreError> {
        const WHAT: &str = "forward key";
        let rest = bytes
            .strip_prefix(prefix)
            .ok_or_else(|| corrupt(WHAT, "outside the range read"))?;
        let [st, sid, srel] = split_components::<3>(WHAT, rest)?;
        Ok(SubjectRef {
            object: ObjectRef::new_unchecked(non_empty(WHAT, st)?, non_empty(WHAT, sid)?),
            relation: subject_relation(srel),
        })
    }

    /// The prefix of every relationship `resource#relation@*`.
    pub fn subjects_prefix(resource: &ObjectRef, relation: &str) -> Vec<u8> {
        component_prefix(
            &[&resource.object_type, &resource.object_id, relation],
            None,
        )
    }

    /// The narrowest forward prefix covering every key `filter` can match; empty (a full scan)
    /// when the filter has no resource type. Keys under the prefix must still be checked
    /// against the filter.
    pub fn scan_prefix(filter: &RelationshipFilter) -> Vec<u8> {
        let Some(resource_type) = filter.resource_type.as_deref() else {
            return Vec::new();
        };
        let Some(resource_id) = filter.resource_id.as_deref() else {
            return component_prefix(&[resource_type], filter.resource_id_prefix.as_deref());
        };
        let Some(relation) = filter.relation.as_deref() else {
            return component_prefix(&[resource_type, resource_id], None);
        };
        let Some(subject) = &filter.subject else {
            return component_prefix(&[resource_type, resource_id, relation], None);
        };
        let Some(subject_id) = subject.subject_id.as_deref() else {
            return component_prefix(
                &[resource_type, resource_id, relation, &subject.subject_type],
                None,
            );
        };
        let tail = match &subject.relation {
            Some(Some(subject_relation)) => Some(subject_relation.as_str()),
            _ => None,
        };
        component_prefix(
            &[
                resource_type,
                resource_id,
                relation,
                &subject.subject_type,
                subject_id,
            ],
            tail,
        )
    }
}

/// Appends the forward key of `rel` to `forward` and its reverse key to `reverse`, checking its
/// parts once (the layouts of [`ForwardKey`] and [`ReverseKey`]; an import encodes millions).
pub fn append_keys(
    rel: &Relationship,
    forward: &mut Vec<u8>,
    reverse: &mut Vec<u8>,
) -> Result<(), StoreError> {
    check_parts(&rel.resource, &rel.relation, &rel.subject)?;
    let subject_relation = rel.subject.relation.as_deref().unwrap_or("");
    for part in [
        rel.resource.object_type.as_str(),
        &rel.resource.object_id,
        &rel.relation,
        &rel.subject.object.object_type,
        &rel.subject.object.object_id,
    ] {
        forward.extend_from_slice(part.as_bytes());
        forward.push(SEP);
    }
    forward.extend_from_slice(subject_relation.as_bytes());
    for part in [
        rel.subject.object.object_type.as_str(),
        &rel.subject.object.object_id,
        subject_relation,
        &rel.resource.object_type,
        &rel.relation,
    ] {
        reverse.extend_from_slice(part.as_bytes());
        reverse.push(SEP);
    }
    reverse.extend_from_slice(rel.resource.object_id.as_bytes());
    Ok(())
}

/// A key of the `rev` column family:
/// `subject_type 0 subject_id 0 subject_relation 0 type 0 relation 0 id`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ReverseKey(Vec<u8>);

impl ReverseKey {
    /// The key of `resource#relation@subject`; fails if a part is empty or contains a `0` byte.
    pub fn new(
        resource: &ObjectRef,
        relation: &str,
        subject: &SubjectRef,
    ) -> Result<Self, StoreError> {
        check_parts(resource, relation, subject)?;
        Ok(Self(component_prefix(
            &[
                &subject.object.object_type,
                &subject.object.object_id,
                subject.relation.as_deref().unwrap_or(""),
                &resource.object_type,
                relation,
            ],
            Some(&resource.object_id),
        )))
    }

    /// The key of `rel`.
    pub fn of(rel: &Relationship) -> Result<Self, StoreError> {
        Self::new(&rel.resource, &rel.relation, &rel.subject)
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// Decodes a stored reverse key.
    pub fn decode(bytes: &[u8]) -> Result<RelationshipKey, StoreError> {
        const WHAT: &str = "reverse key";
        let [st, sid, srel, rt, rel, rid] = split_components::<6>(WHAT, bytes)?;
        Ok(RelationshipKey {
            resource: ObjectRef::new_unchecked(non_empty(WHAT, rt)?, non_empty(WHAT, rid)?),
            relation: non_empty(WHAT, rel)?.to_string(),
            subject: SubjectRef {
                object: ObjectRef::new_unchecked(non_empty(WHAT, st)?, non_empty(WHAT, sid)?),
                relation: subject_relation(srel),
            },
        })
    }

    /// The prefix of every relationship `resource_type:*#relation@subject`.
    pub fn resources_prefix(subject: &SubjectRef, resource_type: &str, relation: &str) -> Vec<u8> {
        component_prefix(
            &[
                &subject.object.object_type,
                &subject.object.object_id,
                subject.relation.as_deref().unwrap_or(""),
                resource_type,
                relation,
            ],
            None,
        )
    }

    /// The narrowest reverse prefix covering every key whose subject `filter` can match.
    /// Keys under the prefix must still be checked against the filter.
    pub fn scan_prefix(filter: &SubjectFilter) -> Vec<u8> {
        let Some(subject_id) = filter.subject_id.as_deref() else {
            return component_prefix(&[&filter.subject_type], None);
        };
        match &filter.relation {
            None => component_prefix(&[&filter.subject_type, subject_id], None),
            Some(relation) => component_prefix(
                &[
                    &filter.subject_type,
                    subject_id,
                    relation.as_deref().unwrap_or(""),
                ],
                None,
            ),
        }
    }
}

/// A key of the `exp` column family: when the relationship expires, in an order-preserving
/// encoding (12 bytes), then its forward key.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct ExpiryKey(Vec<u8>);

impl ExpiryKey {
    /// Bytes of the expiration part.
    pub const INSTANT_BYTES: usize = 12;

    /// The key of the relationship with forward key `forward` expiring at `at`.
    pub fn new(at: DateTime<Utc>, forward: &[u8]) -> Self {
        let mut key = Self::instant(at).to_vec();
        key.extend_from_slice(forward);
        Self(key)
    }

    /// The order-preserving encoding of `at` (every key of a relationship expiring at or
    /// before `at` sorts before `instant(at)` followed by anything).
    pub fn instant(at: DateTime<Utc>) -> [u8; 12] {
        let mut out = [0u8; 12];
        // Flipping the sign bit makes two's complement sort as unsigned.
        let seconds = (at.timestamp() as u64) ^ (1 << 63);
        out[..8].copy_from_slice(&seconds.to_be_bytes());
        out[8..].copy_from_slice(&at.timestamp_subsec_nanos().to_be_bytes());
        out
    }

    /// The encoded bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// The expiration a stored expiry key starts with.
    pub fn instant_of(bytes: &[u8]) -> Result<DateTime<Utc>, StoreError> {
        let bad = || corrupt("expiry key", format!("{} bytes", bytes.len()));
        let seconds: [u8; 8] = bytes
            .get(..8)
            .and_then(|b| b.try_into().ok())
            .ok_or_else(bad)?;
        let nanos: [u8; 4] = bytes
            .get(8..Self::INSTANT_BYTES)
            .and_then(|b| b.try_into().ok())
            .ok_or_else(bad)?;
        let seconds = (u64::from_be_bytes(seconds) ^ (1 << 63)) as i64;
        DateTime::<Utc>::from_timestamp(seconds, u32::from_be_bytes(nanos))
            .ok_or_else(|| corrupt("expiry key", "expiration out of range"))
    }

    /// The forward key inside a stored expiry key.
    pub fn forward_of(bytes: &[u8]) -> Result<&[u8], StoreError> {
        bytes
            .get(Self::INSTANT_BYTES..)
            .filter(|rest| !rest.is_empty())
            .ok_or_else(|| corrupt("expiry key", format!("{} bytes", bytes.len())))
    }
}

/// A key of the `log` column family: the revision as `u64` big-endian.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct LogKey(pub Revision);

impl LogKey {
    /// The encoded bytes.
    pub fn encode(self) -> [u8; 8] {
        self.0 .0.to_be_bytes()
    }

    /// Decodes a stored log key.
    pub fn decode(bytes: &[u8]) -> Result<Self, StoreError> {
        decode_u64("log key", bytes).map(|n| Self(Revision(n)))
    }
}

/// A `log` key of one part of a bulk revision: the revision, then the part (`u32` big-endian;
/// 0 is the summary).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct BulkPartKey {
    /// The bulk revision.
    pub revision: Revision,
    /// The part.
    pub part: u32,
}

impl BulkPartKey {
    /// The encoded bytes.
    pub fn encode(self) -> [u8; 12] {
        let mut out = [0u8; 12];
        out[..8].copy_from_slice(&self.revision.0.to_be_bytes());
        out[8..].copy_from_slice(&self.part.to_be_bytes());
        out
    }

    /// Decodes a 12-byte `log` key (`None` for an ordinary 8-byte one).
    pub fn decode(bytes: &[u8]) -> Result<Option<Self>, StoreError> {
        match bytes.len() {
            8 => Ok(None),
            12 => {
                let revision = decode_u64("bulk part key", &bytes[..8])?;
                let part: [u8; 4] = bytes[8..]
                    .try_into()
                    .map_err(|_| corrupt("bulk part key", "bad length"))?;
                Ok(Some(Self {
                    revision: Revision(revision),
                    part: u32::from_be_bytes(part),
                }))
            }
            other => Err(corrupt("log key", format!("{other} bytes"))),
        }
    }
}

/// The summary of a bulk revision (part 0 of its log entry).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BulkSummaryValue {
    /// Relationships written.
    pub changes: u64,
    /// Parts holding them (numbered from 1).
    pub parts: u32,
    /// Every `(resource type, relation)` written, sorted, with the first and last part
    /// holding its changes.
    pub relations: Vec<(String, String, u32, u32)>,
}

impl BulkSummaryValue {
    /// The encoded bytes.
    pub fn encode(&self) -> Result<Vec<u8>, StoreError> {
        let config = bincode::config::standard().with_limit::<LOG_ENTRY_LIMIT>();
        bincode::serde::encode_to_vec(self, config)
            .map_err(|e| StoreError::Backend(format!("cannot encode a bulk summary: {e}")))
    }

    /// Decodes a stored summary.
    pub fn decode(bytes: &[u8]) -> Result<Self, StoreError> {
        let config = bincode::config::standard().with_limit::<LOG_ENTRY_LIMIT>();
        let (summary, read): (Self, usize) = bincode::serde::decode_from_slice(bytes, config)
            .map_err(|e| corrupt("bulk summary", e))?;
        if read != bytes.len() {
            return Err(corrupt("bulk summary", "trailing bytes"));
        }
        Ok(summary)
    }
}

/// One part of a bulk revision's changes: `(forward key, value)` pairs, every one a touch.
///
/// Written by hand in the encoding `bincode` gives a `Vec<StoredChange>` (a count, then each
/// change's operation byte and its two byte strings, each length-prefixed), so
/// [`decode_bulk_part`] reads it as one; an import writes millions of these.
pub fn encode_bulk_part<'a>(
    entries: impl ExactSizeIterator<Item = (&'a [u8], &'a [u8])>,
) -> Vec<u8> {
    let mut out = Vec::with_capacity(entries.len() * 48 + 8);
    put_varint(&mut out, entries.len() as u64);
    for (key, value) in entries {
        out.push(LOG_OP_TOUCH);
        put_varint(&mut out, key.len() as u64);
        out.extend_from_slice(key);
        put_varint(&mut out, value.len() as u64);
        out.extend_from_slice(value);
    }
    out
}

/// `bincode`'s signed integers: zigzagged (0, -1, 1, -2, ... become 0, 1, 2, 3, ...) then
/// written as [`put_varint`] writes unsigned ones.
fn zigzag(n: i64) -> u64 {
    ((n << 1) ^ (n >> 63)) as u64
}

/// `bincode`'s byte string (and UTF-8 string): the length as [`put_varint`], then the bytes.
fn put_bytes(out: &mut Vec<u8>, bytes: &[u8]) {
    put_varint(out, bytes.len() as u64);
    out.extend_from_slice(bytes);
}

/// `bincode`'s variable-length integer: one byte below 251, else a marker byte (251, 252, 253)
/// and the value as a little-endian `u16`, `u32` or `u64`.
fn put_varint(out: &mut Vec<u8>, n: u64) {
    if n < 251 {
        out.push(n as u8);
    } else if let Ok(n) = u16::try_from(n) {
        out.push(251);
        out.extend_from_slice(&n.to_le_bytes());
    } else if let Ok(n) = u32::try_from(n) {
        out.push(252);
        out.extend_from_slice(&n.to_le_bytes());
    } else {
        out.push(253);
        out.extend_from_slice(&n.to_le_bytes());
    }
}

/// Decodes one part of a bulk revision's changes.
pub fn decode_bulk_part(bytes: &[u8]) -> Result<Vec<Change>, StoreError> {
    const WHAT: &str = "bulk log part";
    let config = bincode::config::standard().with_limit::<LOG_ENTRY_LIMIT>();
    let (stored, read): (Vec<StoredChange>, usize) =
        bincode::serde::decode_from_slice(bytes, config).map_err(|e| corrupt(WHAT, e))?;
    if read != bytes.len() {
        return Err(corrupt(WHAT, "trailing bytes"));
    }
    decode_changes(WHAT, stored)
}

fn decode_changes(what: &str, stored: Vec<StoredChange>) -> Result<Vec<Change>, StoreError> {
    stored
        .into_iter()
        .map(|c| {
            let op = match c.op {
                LOG_OP_TOUCH => UpdateOp::Touch,
                LOG_OP_DELETE => UpdateOp::Delete,
                other => return Err(corrupt(what, format!("unknown operation {other}"))),
            };
            let key = ForwardKey::decode(&c.key)?;
            let value = RelationshipValue::decode(&c.value)?;
            Ok(Change {
                op,
                relationship: key.into_relationship(value),
            })
        })
        .collect()
}

/// Encodes a revision as stored under [`META_HEAD_REVISION`].
pub fn encode_revision(revision: Revision) -> [u8; 8] {
    revision.0.to_be_bytes()
}

/// Decodes a revision stored under [`META_HEAD_REVISION`].
pub fn decode_revision(bytes: &[u8]) -> Result<Revision, StoreError> {
    decode_u64("head revision", bytes).map(Revision)
}

fn decode_u64(what: &str, bytes: &[u8]) -> Result<u64, StoreError> {
    let array: [u8; 8] = bytes
        .try_into()
        .map_err(|_| corrupt(what, format!("expected 8 bytes, found {}", bytes.len())))?;
    Ok(u64::from_be_bytes(array))
}

#[derive(Serialize, Deserialize)]
struct StoredCaveat {
    name: String,
    /// The context as JSON object text.
    context: String,
}

#[derive(Serialize, Deserialize)]
struct StoredValue {
    caveat: Option<StoredCaveat>,
    /// Seconds and nanoseconds since the Unix epoch.
    expiration: Option<(i64, u32)>,
    written_at: u64,
}

/// The value stored under a forward (and reverse) key.
#[derive(Debug, Clone, PartialEq)]
pub struct RelationshipValue {
    /// The caveat and its stored context.
    pub caveat: Option<ContextualizedCaveat>,
    /// When the relationship stops applying.
    pub expiration: Option<DateTime<Utc>>,
    /// The revision that wrote it.
    pub written_at: Revision,
}

impl RelationshipValue {
    /// The metadata of `rel`, written at `revision`.
    pub fn of(rel: &Relationship, revision: Revision) -> Self {
        Self {
            caveat: rel.caveat.clone(),
            expiration: rel.expiration,
            written_at: revision,
        }
    }

    /// Whether the relationship no longer applies at `now` (expiration ≤ now).
    pub fn is_expired(&self, now: DateTime<Utc>) -> bool {
        self.expiration.is_some_and(|at| at <= now)
    }

    /// Whether the value stored as `bytes` no longer applies at `now`, as
    /// `decode(bytes)?.is_expired(now)` answers it, without decoding a value that has neither
    /// a caveat nor an expiration (the common case: two empty option tags and the revision).
    pub fn is_expired_bytes(bytes: &[u8], now: DateTime<Utc>) -> Result<bool, StoreError> {
        if Self::is_plain(bytes) {
            return Ok(false);
        }
        Ok(Self::decode(bytes)?.is_expired(now))
    }

    /// The expiration of the value stored as `bytes`, as `decode(bytes)?.expiration` answers
    /// it, without decoding a value that has neither a caveat nor an expiration.
    pub fn expiration_of(bytes: &[u8]) -> Result<Option<DateTime<Utc>>, StoreError> {
        if Self::is_plain(bytes) {
            return Ok(None);
        }
        Ok(Self::decode(bytes)?.expiration)
    }

    /// Whether `bytes` is a well-formed value with neither caveat nor expiration: two empty
    /// option tags and the revision.
    fn is_plain(bytes: &[u8]) -> bool {
        let [0, 0, revision @ ..] = bytes else {
            return false;
        };
        // The revision is one varint: a byte below 251, or a marker and 2, 4 or 8 bytes.
        let varint_length = match revision.first() {
            Some(&first) if first < 251 => 1,
            Some(251) => 3,
            Some(252) => 5,
            Some(253) => 9,
            _ => 0,
        };
        varint_length != 0 && revision.len() == varint_length
    }

    /// The encoded bytes.
    pub fn encode(&self) -> Result<Vec<u8>, StoreError> {
        Self::encode_parts(self.caveat.as_ref(), self.expiration, self.written_at)
    }

    /// The encoded value of `rel` written at `revision` (what `of(rel, revision).encode()`
    /// gives, without copying the caveat).
    pub fn encode_of(rel: &Relationship, revision: Revision) -> Result<Vec<u8>, StoreError> {
        Self::encode_parts(rel.caveat.as_ref(), rel.expiration, revision)
    }

    /// Writes the layout `bincode` gives a `StoredValue` (an option byte before the caveat's
    /// two strings and before the expiration's seconds and nanoseconds, variable-length
    /// integers, signed ones zigzagged) directly: every write encodes one value per row.
    fn encode_parts(
        caveat: Option<&ContextualizedCaveat>,
        expiration: Option<DateTime<Utc>>,
        written_at: Revision,
    ) -> Result<Vec<u8>, StoreError> {
        let mut out = Vec::with_capacity(16);
        match caveat {
            None => out.push(0),
            Some(c) => {
                out.push(1);
                put_bytes(&mut out, c.name.as_bytes());
                let context = serde_json::Value::Object(c.context.clone()).to_string();
                put_bytes(&mut out, context.as_bytes());
            }
        }
        match expiration {
            None => out.push(0),
            Some(at) => {
                out.push(1);
                put_varint(&mut out, zigzag(at.timestamp()));
                put_varint(&mut out, u64::from(at.timestamp_subsec_nanos()));
            }
        }
        put_varint(&mut out, written_at.0);
        if out.len() > VALUE_LIMIT {
            return Err(StoreError::Backend(format!(
                "cannot encode relationship value: {} bytes, the limit is {VALUE_LIMIT}",
                out.len()
            )));
        }
        Ok(out)
    }

    /// Decodes a stored value.
    pub fn decode(bytes: &[u8]) -> Result<Self, StoreError> {
        const WHAT: &str = "relationship value";
        let config = bincode::config::standard().with_limit::<VALUE_LIMIT>();
        let (stored, read): (StoredValue, usize) =
            bincode::serde::decode_from_slice(bytes, config).map_err(|e| corrupt(WHAT, e))?;
        if read != bytes.len() {
            return Err(corrupt(WHAT, "trailing bytes"));
        }
        let caveat = match stored.caveat {
            None => None,
            Some(c) => match serde_json::from_str(&c.context) {
                Ok(serde_json::Value::Object(context)) => Some(ContextualizedCaveat {
                    name: c.name,
                    context,
                }),
                _ => return Err(corrupt(WHAT, "caveat context is not a JSON object")),
            },
        };
        let expiration = match stored.expiration {
            None => None,
            Some((secs, nanos)) => Some(
                DateTime::<Utc>::from_timestamp(secs, nanos)
                    .ok_or_else(|| corrupt(WHAT, "expiration out of range"))?,
            ),
        };
        Ok(Self {
            caveat,
            expiration,
            written_at: Revision(stored.written_at),
        })
    }
}

const LOG_OP_TOUCH: u8 = 1;
const LOG_OP_DELETE: u8 = 2;

#[derive(Serialize, Deserialize)]
struct StoredChange {
    op: u8,
    /// A [`ForwardKey`].
    key: Vec<u8>,
    /// A [`RelationshipValue`] (the new one for a touch, the removed one for a delete).
    value: Vec<u8>,
}

#[derive(Serialize, Deserialize)]
struct StoredLogEntry {
    changes: Vec<StoredChange>,
    schema: Option<String>,
    /// Microseconds since the Unix epoch.
    committed_at: i64,
}

/// A log entry as stores written before entries carried their commit time hold it.
#[derive(Serialize, Deserialize)]
struct LegacyLogEntry {
    changes: Vec<StoredChange>,
    schema: Option<String>,
}

/// The value stored under a [`LogKey`]: what one transaction changed.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct LogEntry {
    /// Relationship changes (creates are recorded as touches).
    pub changes: Vec<Change>,
    /// The new schema text, for a schema write.
    pub schema: Option<String>,
    /// When the transaction committed, by the store's clock (the Unix epoch for entries
    /// written before the store kept this).
    pub committed_at: DateTime<Utc>,
}

/// Builds the bytes of a [`LogEntry`] one change at a time from the forward key and value a
/// write transaction encodes for its index entries anyway, so nothing is encoded twice. The
/// layout is the one `bincode` gives the stored entry (the change count, each change's
/// operation byte and two length-prefixed byte strings, the optional schema text, the commit
/// time in microseconds zigzagged), which [`LogEntry::decode`] reads.
#[derive(Debug, Default)]
pub struct LogEntryWriter {
    count: u64,
    body: Vec<u8>,
}

impl LogEntryWriter {
    /// Appends one change: `key` is a [`ForwardKey`], `value` a [`RelationshipValue`] (the new
    /// one for a touch, the removed one, written at the entry's revision, for a delete).
    pub fn push(&mut self, op: UpdateOp, key: &[u8], value: &[u8]) {
        self.count += 1;
        self.body.push(match op {
            UpdateOp::Delete => LOG_OP_DELETE,
            UpdateOp::Create | UpdateOp::Touch => LOG_OP_TOUCH,
        });
        put_bytes(&mut self.body, key);
        put_bytes(&mut self.body, value);
    }

    /// The entry's bytes, with `schema` for a schema write and the commit time; fails when
    /// they exceed [`LOG_ENTRY_LIMIT`] (the most a reader accepts).
    pub fn finish(
        self,
        schema: Option<&str>,
        committed_at: DateTime<Utc>,
    ) -> Result<Vec<u8>, StoreError> {
        let schema_len = schema.map_or(0, str::len);
        let mut out = Vec::with_capacity(self.body.len() + schema_len + 24);
        put_varint(&mut out, self.count);
        out.extend_from_slice(&self.body);
        match schema {
            None => out.push(0),
            Some(text) => {
                out.push(1);
                put_bytes(&mut out, text.as_bytes());
            }
        }
        put_varint(&mut out, zigzag(committed_at.timestamp_micros()));
        if out.len() > LOG_ENTRY_LIMIT {
            return Err(StoreError::Backend(format!(
                "cannot encode the write log entry (a transaction is limited to {LOG_ENTRY_LIMIT} bytes): {} bytes",
                out.len()
            )));
        }
        Ok(out)
    }
}

impl LogEntry {
    /// The encoded bytes; fails if a change cannot be keyed or the entry exceeds
    /// [`LOG_ENTRY_LIMIT`].
    pub fn encode(&self, revision: Revision) -> Result<Vec<u8>, StoreError> {
        let mut writer = LogEntryWriter::default();
        for change in &self.changes {
            let key = ForwardKey::of(&change.relationship)?;
            let value = RelationshipValue::encode_of(&change.relationship, revision)?;
            writer.push(change.op, key.as_bytes(), &value);
        }
        writer.finish(self.schema.as_deref(), self.committed_at)
    }

    /// Decodes a stored log entry.
    pub fn decode(bytes: &[u8]) -> Result<Self, StoreError> {
        const WHAT: &str = "log entry";
        let config = bincode::config::standard().with_limit::<LOG_ENTRY_LIMIT>();
        let current = bincode::serde::decode_from_slice::<StoredLogEntry, _>(bytes, config);
        let stored = match current {
            Ok((stored, read)) if read == bytes.len() => stored,
            _ => {
                let (legacy, read): (LegacyLogEntry, usize) =
                    bincode::serde::decode_from_slice(bytes, config)
                        .map_err(|e| corrupt(WHAT, e))?;
                if read != bytes.len() {
                    return Err(corrupt(WHAT, "trailing bytes"));
                }
                StoredLogEntry {
                    changes: legacy.changes,
                    schema: legacy.schema,
                    committed_at: 0,
                }
            }
        };
        let committed_at = DateTime::<Utc>::from_timestamp_micros(stored.committed_at)
            .ok_or_else(|| corrupt(WHAT, "commit time out of range"))?;
        let changes = decode_changes(WHAT, stored.changes)?;
        Ok(Self {
            changes,
            schema: stored.schema,
            committed_at,
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn rel(text: &str) -> Relationship {
        Relationship::parse(text).unwrap()
    }

    fn rk(text: &str) -> RelationshipKey {
        RelationshipKey::of(&rel(text))
    }

    #[test]
    fn record_keys_round_trip_and_sort_by_keyspace_then_key() {
        let a = RecordKey::new("group", "a").unwrap();
        assert_eq!(a.as_bytes(), b"group\x00a");
        assert_eq!(
            RecordKey::decode(a.as_bytes()).unwrap(),
            ("group".to_string(), "a".to_string())
        );
        let empty = RecordKey::new("group", "").unwrap();
        assert_eq!(RecordKey::decode(empty.as_bytes()).unwrap().1, "");
        // `group` keys never interleave with `group_name` keys, and keys sort as text.
        let other = RecordKey::new("group_name", "").unwrap();
        let b = RecordKey::new("group", "b").unwrap();
        assert!(empty < a && a < b && b < other);
        assert!(RecordKey::new("", "x").is_err());
        assert!(RecordKey::new("group", "a\0b").is_err());
        assert!(RecordKey::decode(b"group").is_err());
    }

    #[test]
    fn appended_keys_are_the_index_keys() {
        for text in [
            "doc:1#viewer@group:eng#member",
            "doc:1#viewer@user:tom",
            "doc:x/y#owner@user:*",
        ] {
            let (mut forward, mut reverse) = (b"earlier".to_vec(), Vec::new());
            append_keys(&rel(text), &mut forward, &mut reverse).unwrap();
            assert_eq!(
                &forward[7..],
                ForwardKey::of(&rel(text)).unwrap().as_bytes()
            );
            assert_eq!(reverse, ReverseKey::of(&rel(text)).unwrap().as_bytes());
        }
        let mut bad = rel("doc:1#viewer@user:tom");
        bad.relation = "a\0b".into();
        assert!(append_keys(&bad, &mut Vec::new(), &mut Vec::new()).is_err());
    }

    #[test]
    fn borrowed_bulk_parts_decode_as_changes() {
        let value = RelationshipValue::of(&rel("doc:1#viewer@user:tom"), Revision(3))
            .encode()
            .unwrap();
        let key = ForwardKey::of(&rel("doc:1#viewer@user:tom")).unwrap();
        let bytes = encode_bulk_part(std::iter::once((key.as_bytes(), value.as_slice())));
        let changes = decode_bulk_part(&bytes).unwrap();
        assert_eq!(changes.len(), 1);
        assert_eq!(changes[0].op, UpdateOp::Touch);
        assert_eq!(changes[0].relationship, rel("doc:1#viewer@user:tom"));
        // Long keys and values, and many changes, take the longer length prefixes.
        let long = rel(&format!(
            r#"doc:{}#viewer@user:tom[cav:{{"k":"{}"}}]"#,
            "d".repeat(300),
            "v".repeat(70_000)
        ));
        let (key, value) = (
            ForwardKey::of(&long).unwrap(),
            RelationshipValue::of(&long, Revision(3)).encode().unwrap(),
        );
        let many = vec![(key.as_bytes(), value.as_slice()); 300];
        let changes = decode_bulk_part(&encode_bulk_part(many.into_iter())).unwrap();
        assert_eq!(changes.len(), 300);
        assert!(changes.iter().all(|c| c.relationship == long));
    }

    #[test]
    fn forward_key_layout() {
        let key = ForwardKey::of(&rel("doc:1#viewer@group:eng#member")).unwrap();
        assert_eq!(
            key.as_bytes(),
            b"doc\x001\x00viewer\x00group\x00eng\x00member"
        );
        let key = ForwardKey::of(&rel("doc:1#viewer@user:tom")).unwrap();
        assert_eq!(key.as_bytes(), b"doc\x001\x00viewer\x00user\x00tom\x00");
    }

    #[test]
    fn reverse_key_layout() {
        let key = ReverseKey::of(&rel("doc:1#viewer@user:tom")).unwrap();
        assert_eq!(key.as_bytes(), b"user\x00tom\x00\x00doc\x00viewer\x001");
        let key = ReverseKey::of(&rel("doc:1#viewer@group:eng#member")).unwrap();
        assert_eq!(
            key.as_bytes(),
            b"group\x00eng\x00member\x00doc\x00viewer\x001"
        );
    }

    #[test]
    fn keys_round_trip() {
        for text in [
            "doc:1#viewer@user:tom",
            "app/doc:a=b+c|d#viewer@group:eng#member",
            "doc:1#viewer@user:*",
        ] {
            let forward = ForwardKey::of(&rel(text)).unwrap();
            assert_eq!(ForwardKey::decode(forward.as_bytes()).unwrap(), rk(text));
            let reverse = ReverseKey::of(&rel(text)).unwrap();
            assert_eq!(ReverseKey::decode(reverse.as_bytes()).unwrap(), rk(text));
        }
        for n in [0, 1, 255, 256, u64::MAX] {
            let key = LogKey(Revision(n));
            assert_eq!(LogKey::decode(&key.encode()).unwrap(), key);
            assert_eq!(
                decode_revision(&encode_revision(Revision(n))).unwrap(),
                Revision(n)
            );
        }
    }

    #[test]
    fn unstorable_parts_are_refused() {
        let mut bad = rel("doc:1#viewer@user:tom");
        bad.resource.object_id = "a\0b".to_string();
        assert!(matches!(
            ForwardKey::of(&bad),
            Err(StoreError::Unstorable(_))
        ));
        assert!(matches!(
            ReverseKey::of(&bad),
            Err(StoreError::Unstorable(_))
        ));
        let mut bad = rel("doc:1#viewer@user:tom");
        bad.subject.relation = Some(String::new());
        assert!(matches!(
            ForwardKey::of(&bad),
            Err(StoreError::Unstorable(_))
        ));
    }

    #[test]
    fn garbage_keys_are_corrupt() {
        for bytes in [
            &b""[..],
            b"doc",
            b"doc\x001\x00viewer\x00user\x00tom",
            b"doc\x001\x00viewer\x00user\x00tom\x00x\x00y",
            b"doc\x00\x00viewer\x00user\x00tom\x00",
            b"doc\x001\x00viewer\x00user\x00\xff\xfe\x00",
        ] {
            assert!(matches!(
                ForwardKey::decode(bytes),
                Err(StoreError::Corrupt(_))
            ));
            assert!(matches!(
                ReverseKey::decode(bytes),
                Err(StoreError::Corrupt(_))
            ));
        }
        assert!(matches!(
            LogKey::decode(b"1234567"),
            Err(StoreError::Corrupt(_))
        ));
        assert!(matches!(
            decode_revision(b"123456789"),
            Err(StoreError::Corrupt(_))
        ));
    }

    #[test]
    fn garbage_values_are_corrupt() {
        for bytes in [
            &b""[..],
            b"\xff\xff\xff\xff\xff\xff\xff\xff\xff",
            b"\x01\xfc\xff\xff\xff\xff",
            b"\x00\x00\x05\x00",
        ] {
            assert!(RelationshipValue::decode(bytes).is_err(), "{bytes:?}");
            assert!(LogEntry::decode(bytes).is_err(), "{bytes:?}");
        }
    }

    /// A value as `bincode` encodes the stored struct (the layout the hand encoder writes).
    fn bincode_value(value: &RelationshipValue) -> Vec<u8> {
        let stored = StoredValue {
            caveat: value.caveat.as_ref().map(|c| StoredCaveat {
                name: c.name.clone(),
                context: serde_json::Value::Object(c.context.clone()).to_string(),
            }),
            expiration: value
                .expiration
                .map(|at| (at.timestamp(), at.timestamp_subsec_nanos())),
            written_at: value.written_at.0,
        };
        bincode::serde::encode_to_vec(&stored, bincode::config::standard()).unwrap()
    }

    #[test]
    fn expiry_from_bytes_agrees_with_decoding_at_the_varint_edges() {
        let now = Utc::now();
        for bytes in [
            &b"\x00\x00\x00"[..],
            b"\x00\x00\xfa",
            b"\x00\x00\xfb\x05\x00",
            b"\x00\x00\xfb\xff\xff",
            b"\x00\x00\xfc\x05\x00\x00\x00",
            b"\x00\x00\xfd\x05\x00\x00\x00\x00\x00\x00\x00",
            b"\x00\x00\xfe\x05",
            b"\x00\x00\xfb\x05",
            b"\x00\x00",
        ] {
            let fast = RelationshipValue::is_expired_bytes(bytes, now);
            let full = RelationshipValue::decode(bytes).map(|value| value.is_expired(now));
            assert_eq!(fast.ok(), full.ok(), "{bytes:?}");
            let fast = RelationshipValue::expiration_of(bytes);
            let full = RelationshipValue::decode(bytes).map(|value| value.expiration);
            assert_eq!(fast.ok(), full.ok(), "{bytes:?}");
        }
    }

    #[test]
    fn value_round_trip() {
        let r = rel(
            r#"doc:1#viewer@user:tom[cav:{"a":[1,{"b":null}],"c":"d"}][expiration:2030-01-01T00:00:00.123456789Z]"#,
        );
        let value = RelationshipValue::of(&r, Revision(42));
        let decoded = RelationshipValue::decode(&value.encode().unwrap()).unwrap();
        assert_eq!(decoded, value);
        let plain = RelationshipValue::of(&rel("doc:1#viewer@user:tom"), Revision(1));
        assert_eq!(
            RelationshipValue::decode(&plain.encode().unwrap()).unwrap(),
            plain
        );
    }

    #[test]
    fn log_entry_round_trip() {
        let entry = LogEntry {
            changes: vec![
                Change {
                    op: UpdateOp::Touch,
                    relationship: rel(r#"doc:1#viewer@user:tom[cav:{"x":1}]"#),
                },
                Change {
                    op: UpdateOp::Delete,
                    relationship: rel("doc:2#viewer@group:eng#member"),
                },
            ],
            schema: None,
            committed_at: DateTime::from_timestamp_micros(1_700_000_000_123_456).unwrap(),
        };
        let decoded = LogEntry::decode(&entry.encode(Revision(3)).unwrap()).unwrap();
        assert_eq!(decoded, entry);
        let schema = LogEntry {
            changes: vec![],
            schema: Some("definition user {}".to_string()),
            committed_at: DateTime::UNIX_EPOCH,
        };
        assert_eq!(
            LogEntry::decode(&schema.encode(Revision(4)).unwrap()).unwrap(),
            schema
        );
    }

    #[test]
    fn log_entries_written_before_commit_times_were_kept_still_decode() {
        let legacy = LegacyLogEntry {
            changes: vec![StoredChange {
                op: LOG_OP_TOUCH,
                key: ForwardKey::of(&rel("doc:1#viewer@user:tom"))
                    .unwrap()
                    .into_bytes(),
                value: RelationshipValue::of(&rel("doc:1#viewer@user:tom"), Revision(1))
                    .encode()
                    .unwrap(),
            }],
            schema: None,
        };
        let bytes = bincode::serde::encode_to_vec(&legacy, bincode::config::standard()).unwrap();
        let decoded = LogEntry::decode(&bytes).unwrap();
        assert_eq!(decoded.committed_at, DateTime::UNIX_EPOCH);
        assert_eq!(decoded.changes.len(), 1);
    }

    #[test]
    fn prefixes_end_at_a_separator() {
        let doc1 = ForwardKey::subjects_prefix(&ObjectRef::new_unchecked("doc", "1"), "viewer");
        let key10 = ForwardKey::of(&rel("doc:10#viewer@user:tom")).unwrap();
        let key1 = ForwardKey::of(&rel("doc:1#viewer@user:tom")).unwrap();
        assert!(!key10.as_bytes().starts_with(&doc1));
        assert!(key1.as_bytes().starts_with(&doc1));
        let viewer = ForwardKey::subjects_prefix(&ObjectRef::new_unchecked("doc", "1"), "view");
        assert!(!key1.as_bytes().starts_with(&viewer));

        let subject = SubjectRef::parse("user:tom").unwrap();
        let prefix = ReverseKey::resources_prefix(&subject, "doc", "viewer");
        let tom = ReverseKey::of(&rel("doc:1#viewer@user:tom")).unwrap();
        let tommy = ReverseKey::of(&rel("doc:1#viewer@user:tommy")).unwrap();
        let set = ReverseKey::of(&rel("doc:1#viewer@user:tom#friend")).unwrap();
        assert!(tom.as_bytes().starts_with(&prefix));
        assert!(!tommy.as_bytes().starts_with(&prefix));
        assert!(!set.as_bytes().starts_with(&prefix));
    }

    #[test]
    fn scan_prefix_narrows_with_the_filter() {
        let mut filter = RelationshipFilter::default();
        assert_eq!(ForwardKey::scan_prefix(&filter), b"");
        filter.resource_type = Some("doc".into());
        assert_eq!(ForwardKey::scan_prefix(&filter), b"doc\x00");
        filter.resource_id_prefix = Some("ab".into());
        assert_eq!(ForwardKey::scan_prefix(&filter), b"doc\x00ab");
        filter.resource_id_prefix = None;
        filter.resource_id = Some("1".into());
        assert_eq!(ForwardKey::scan_prefix(&filter), b"doc\x001\x00");
        filter.relation = Some("viewer".into());
        assert_eq!(ForwardKey::scan_prefix(&filter), b"doc\x001\x00viewer\x00");
        filter.subject = Some(SubjectFilter {
            subject_type: "user".into(),
            subject_id: None,
            relation: None,
        });
        assert_eq!(
            ForwardKey::scan_prefix(&filter),
            b"doc\x001\x00viewer\x00user\x00"
        );
        let subject = SubjectFilter {
            subject_type: "user".into(),
            subject_id: Some("tom".into()),
            relation: Some(Some("member".into())),
        };
        filter.subject = Some(subject.clone());
        assert_eq!(
            ForwardKey::scan_prefix(&filter),
            b"doc\x001\x00viewer\x00user\x00tom\x00member"
        );
        assert_eq!(
            ReverseKey::scan_prefix(&subject),
            b"user\x00tom\x00member\x00"
        );
        let direct = SubjectFilter {
            relation: Some(None),
            ..subject.clone()
        };
        assert_eq!(ReverseKey::scan_prefix(&direct), b"user\x00tom\x00\x00");
        let any = SubjectFilter {
            relation: None,
            ..subject
        };
        assert_eq!(ReverseKey::scan_prefix(&any), b"user\x00tom\x00");
    }

    #[test]
    fn upper_bound_and_successor() {
        assert_eq!(prefix_upper_bound(b"doc\x00"), Some(b"doc\x01".to_vec()));
        assert_eq!(prefix_upper_bound(b"a\xff\xff"), Some(b"b".to_vec()));
        assert_eq!(prefix_upper_bound(b"\xff"), None);
        assert_eq!(prefix_upper_bound(b""), None);
        assert_eq!(key_successor(b"ab"), b"ab\x00".to_vec());
    }

    fn name() -> impl Strategy<Value = String> {
        prop_oneof!["[a-z][a-z0-9_/]{0,6}", "[^\u{0}]{1,6}"]
    }

    fn id() -> impl Strategy<Value = String> {
        prop_oneof!["[a-zA-Z0-9/_|=+*-]{1,6}", "[^\u{0}]{1,6}"]
    }

    prop_compose! {
        fn arb_key()(
            rt in name(), rid in id(), rel in name(),
            st in name(), sid in id(), srel in proptest::option::of(name()),
        ) -> RelationshipKey {
            RelationshipKey {
                resource: ObjectRef::new_unchecked(&rt, &rid),
                relation: rel,
                subject: SubjectRef { object: ObjectRef::new_unchecked(&st, &sid), relation: srel },
            }
        }
    }

    fn as_rel(key: &RelationshipKey) -> Relationship {
        Relationship::new(key.resource.clone(), &key.relation, key.subject.clone())
    }

    fn reverse_order(k: &RelationshipKey) -> (&str, &str, &Option<String>, &str, &str, &str) {
        (
            &k.subject.object.object_type,
            &k.subject.object.object_id,
            &k.subject.relation,
            &k.resource.object_type,
            &k.relation,
            &k.resource.object_id,
        )
    }

    proptest! {
        #[test]
        fn forward_key_round_trips(key in arb_key()) {
            let encoded = ForwardKey::of(&as_rel(&key)).unwrap();
            prop_assert_eq!(ForwardKey::decode(encoded.as_bytes()).unwrap(), key);
        }

        #[test]
        fn reverse_key_round_trips(key in arb_key()) {
            let encoded = ReverseKey::of(&as_rel(&key)).unwrap();
            prop_assert_eq!(ReverseKey::decode(encoded.as_bytes()).unwrap(), key);
        }

        #[test]
        fn forward_byte_order_is_logical_order(a in arb_key(), b in arb_key()) {
            let ka = ForwardKey::of(&as_rel(&a)).unwrap();
            let kb = ForwardKey::of(&as_rel(&b)).unwrap();
            // Derived `Ord` on RelationshipKey compares (type, id, relation, subject), with
            // `None` subject relation first: the logical order.
            prop_assert_eq!(ka.as_bytes().cmp(kb.as_bytes()), a.cmp(&b));
        }

        #[test]
        fn reverse_byte_order_is_logical_order(a in arb_key(), b in arb_key()) {
            let ka = ReverseKey::of(&as_rel(&a)).unwrap();
            let kb = ReverseKey::of(&as_rel(&b)).unwrap();
            prop_assert_eq!(ka.as_bytes().cmp(kb.as_bytes()), reverse_order(&a).cmp(&reverse_order(&b)));
        }

        #[test]
        fn log_key_order_is_numeric(a in any::<u64>(), b in any::<u64>()) {
            let (ka, kb) = (LogKey(Revision(a)).encode(), LogKey(Revision(b)).encode());
            prop_assert_eq!(ka.cmp(&kb), a.cmp(&b));
            prop_assert_eq!(LogKey::decode(&ka).unwrap(), LogKey(Revision(a)));
        }

        #[test]
        fn value_round_trips(
            caveat in proptest::option::of(("[a-z_]{1,8}", proptest::collection::btree_map("[a-z]{1,4}", any::<i64>(), 0..4))),
            expiration in proptest::option::of((-62_000_000_000i64..250_000_000_000i64, 0u32..1_000_000_000)),
            written_at in any::<u64>(),
        ) {
            let value = RelationshipValue {
                caveat: caveat.map(|(name, ctx)| ContextualizedCaveat {
                    name,
                    context: ctx.into_iter().map(|(k, v)| (k, serde_json::Value::from(v))).collect(),
                }),
                expiration: expiration.and_then(|(s, n)| DateTime::<Utc>::from_timestamp(s, n)),
                written_at: Revision(written_at),
            };
            let bytes = value.encode().unwrap();
            prop_assert_eq!(&bytes, &bincode_value(&value));
            prop_assert_eq!(RelationshipValue::decode(&bytes).unwrap(), value.clone());
            for now in [DateTime::<Utc>::MIN_UTC, Utc::now(), DateTime::<Utc>::MAX_UTC] {
                prop_assert_eq!(
                    RelationshipValue::is_expired_bytes(&bytes, now).unwrap(),
                    value.is_expired(now)
                );
            }
        }

        #[test]
        fn log_entries_are_laid_out_as_bincode_lays_out_the_stored_entry(
            changes in proptest::collection::vec((any::<bool>(), arb_key(), proptest::option::of(0i64..5_000_000_000)), 0..300),
            schema in proptest::option::of("[a-z {}]{0,300}"),
            committed_at in -1_000_000_000_000i64..5_000_000_000_000_000,
            revision in any::<u64>(),
        ) {
            let changes: Vec<Change> = changes
                .into_iter()
                .map(|(delete, key, expiry)| {
                    let mut relationship = as_rel(&key);
                    relationship.expiration = expiry.and_then(|s| DateTime::<Utc>::from_timestamp(s, 7));
                    let op = if delete { UpdateOp::Delete } else { UpdateOp::Touch };
                    Change { op, relationship }
                })
                .collect();
            let entry = LogEntry {
                changes,
                schema,
                committed_at: DateTime::from_timestamp_micros(committed_at).unwrap(),
            };
            let bytes = entry.encode(Revision(revision)).unwrap();
            let stored = StoredLogEntry {
                changes: entry
                    .changes
                    .iter()
                    .map(|c| StoredChange {
                        op: if c.op == UpdateOp::Delete { LOG_OP_DELETE } else { LOG_OP_TOUCH },
                        key: ForwardKey::of(&c.relationship).unwrap().into_bytes(),
                        value: bincode_value(&RelationshipValue::of(&c.relationship, Revision(revision))),
                    })
                    .collect(),
                schema: entry.schema.clone(),
                committed_at,
            };
            let expected = bincode::serde::encode_to_vec(&stored, bincode::config::standard()).unwrap();
            prop_assert_eq!(&bytes, &expected);
            prop_assert_eq!(LogEntry::decode(&bytes).unwrap(), entry);
        }

        #[test]
        fn expiry_from_bytes_agrees_with_decoding(
            plain in any::<bool>(),
            tail in proptest::collection::vec(any::<u8>(), 0..12),
        ) {
            let mut bytes = if plain { vec![0, 0] } else { Vec::new() };
            bytes.extend(tail);
            let now = Utc::now();
            match (RelationshipValue::is_expired_bytes(&bytes, now), RelationshipValue::decode(&bytes)) {
                (Ok(expired), Ok(value)) => prop_assert_eq!(expired, value.is_expired(now)),
                (Err(_), Err(_)) => {}
                (fast, full) => prop_assert!(false, "{bytes:?}: {fast:?} against {full:?}"),
            }
            match (RelationshipValue::expiration_of(&bytes), RelationshipValue::decode(&bytes)) {
                (Ok(at), Ok(value)) => prop_assert_eq!(at, value.expiration),
                (Err(_), Err(_)) => {}
                (fast, full) => prop_assert!(false, "{bytes:?}: {fast:?} against {full:?}"),
            }
        }

        #[test]
        fn decoding_arbitrary_bytes_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
            let _ = ForwardKey::decode(&bytes);
            let _ = ReverseKey::decode(&bytes);
            let _ = LogKey::decode(&bytes);
            let _ = RelationshipValue::decode(&bytes);
            let _ = LogEntry::decode(&bytes);
        }
    }
}
