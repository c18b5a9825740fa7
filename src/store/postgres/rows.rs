//! Relationships to and from table rows: the columns of [`super::sql`]'s `columns!()`, the
//! column arrays of batched statements, and the text conversions they need.
//!
//! "No subject relation" is stored as `''`; a caveat as its name and its context as JSON
//! text (so the context's key order survives); an expiration as microseconds since the Unix
//! epoch plus the nanoseconds within that microsecond (exact, and ordered as a pair).

use chrono::{DateTime, Utc};
use tokio_postgres::Row;

use crate::revision::Revision;
use crate::store::StoreError;
use crate::tuple::{ContextualizedCaveat, ObjectRef, Relationship, SubjectRef};

/// A relationship's identity as column values.
pub(super) type Key = (String, String, String, String, String, String);

/// The identity columns of `rel`.
pub(super) fn key_of(rel: &Relationship) -> Key {
    (
        rel.resource.object_type.clone(),
        rel.resource.object_id.clone(),
        rel.relation.clone(),
        rel.subject.object.object_type.clone(),
        rel.subject.object.object_id.clone(),
        rel.subject.relation.clone().unwrap_or_default(),
    )
}

/// Whether every part of `rel` can be stored (the same rule as the embedded store's keys:
/// names and ids non-empty, nothing with a NUL byte, which PostgreSQL's text refuses).
pub(super) fn check_storable(rel: &Relationship) -> Result<(), StoreError> {
    crate::store::keys::ForwardKey::of(rel).map(|_| ())
}

/// Whether a read for these parts can match anything (a NUL byte never is stored, and
/// PostgreSQL would refuse it as a parameter).
pub(super) fn readable(parts: &[&str]) -> bool {
    parts.iter().all(|part| !part.contains('\0'))
}

/// An instant as (microseconds since the epoch, nanoseconds within the microsecond).
pub(super) fn instant(at: DateTime<Utc>) -> (i64, i32) {
    let nanos = at.timestamp_subsec_nanos();
    let micros = at
        .timestamp()
        .saturating_mul(1_000_000)
        .saturating_add(i64::from(nanos / 1_000));
    // `nanos % 1_000` is below 1,000.
    (micros, i32::try_from(nanos % 1_000).unwrap_or(0))
}

fn from_instant(micros: i64, nanos: i32) -> Result<DateTime<Utc>, StoreError> {
    let seconds = micros.div_euclid(1_000_000);
    let sub_micros = micros.rem_euclid(1_000_000);
    let sub_nanos = u32::try_from(sub_micros * 1_000 + i64::from(nanos))
        .map_err(|_| corrupt("expiration nanoseconds out of range"))?;
    DateTime::<Utc>::from_timestamp(seconds, sub_nanos)
        .ok_or_else(|| corrupt("expiration out of range"))
}

fn corrupt(detail: &str) -> StoreError {
    StoreError::Corrupt(format!("relationship row: {detail}"))
}

/// A revision as the database's `bigint`.
pub(super) fn revision_param(revision: Revision) -> Result<i64, StoreError> {
    i64::try_from(revision.0).map_err(|_| {
        StoreError::Backend(format!("revision {revision} exceeds the database's range"))
    })
}

/// A `bigint` read back as a revision.
pub(super) fn revision_of(value: i64) -> Result<Revision, StoreError> {
    u64::try_from(value)
        .map(Revision)
        .map_err(|_| StoreError::Corrupt(format!("negative revision {value}")))
}

/// Decodes a row of `columns!()`.
pub(super) fn relationship(row: &Row) -> Result<Relationship, StoreError> {
    let text = |index: usize| -> Result<String, StoreError> {
        row.try_get::<_, String>(index)
            .map_err(|e| corrupt(&e.to_string()))
    };
    let subject_relation = text(5)?;
    let caveat_name: Option<String> = row.try_get(6).map_err(|e| corrupt(&e.to_string()))?;
    let caveat_context: Option<String> = row.try_get(7).map_err(|e| corrupt(&e.to_string()))?;
    let caveat = match (caveat_name, caveat_context) {
        (None, _) => None,
        (Some(name), context) => {
            let context = match context.as_deref().map(serde_json::from_str) {
                None => serde_json::Map::new(),
                Some(Ok(serde_json::Value::Object(map))) => map,
                Some(_) => return Err(corrupt("caveat context is not a JSON object")),
            };
            Some(ContextualizedCaveat { name, context })
        }
    };
    let expires_us: Option<i64> = row.try_get(8).map_err(|e| corrupt(&e.to_string()))?;
    let expires_ns: Option<i32> = row.try_get(9).map_err(|e| corrupt(&e.to_string()))?;
    let expiration = match expires_us {
        None => None,
        Some(micros) => Some(from_instant(micros, expires_ns.unwrap_or(0))?),
    };
    Ok(Relationship {
        resource: ObjectRef {
            object_type: text(0)?,
            object_id: text(1)?,
        },
        relation: text(2)?,
        subject: SubjectRef {
            object: ObjectRef {
                object_type: text(3)?,
                object_id: text(4)?,
            },
            relation: (!subject_relation.is_empty()).then_some(subject_relation),
        },
        caveat,
        expiration,
    })
}

/// Column arrays of relationship keys, for `unnest` in a batched statement.
#[derive(Debug, Default)]
pub(super) struct KeyColumns {
    pub(super) resource_types: Vec<String>,
    pub(super) resource_ids: Vec<String>,
    pub(super) relations: Vec<String>,
    pub(super) subject_types: Vec<String>,
    pub(super) subject_ids: Vec<String>,
    pub(super) subject_relations: Vec<String>,
}

impl KeyColumns {
    pub(super) fn push(&mut self, key: Key) {
        let (rt, ri, rl, st, si, sr) = key;
        self.resource_types.push(rt);
        self.resource_ids.push(ri);
        self.relations.push(rl);
        self.subject_types.push(st);
        self.subject_ids.push(si);
        self.subject_relations.push(sr);
    }

    pub(super) fn is_empty(&self) -> bool {
        self.resource_types.is_empty()
    }
}

/// Column arrays of whole relationships, for the batched insert.
#[derive(Debug, Default)]
pub(super) struct RowColumns {
    pub(super) keys: KeyColumns,
    pub(super) caveat_names: Vec<Option<String>>,
    pub(super) caveat_contexts: Vec<Option<String>>,
    pub(super) expires_us: Vec<Option<i64>>,
    pub(super) expires_ns: Vec<Option<i32>>,
}

impl RowColumns {
    pub(super) fn push(&mut self, rel: &Relationship) {
        self.keys.push(key_of(rel));
        self.caveat_names
            .push(rel.caveat.as_ref().map(|c| c.name.clone()));
        self.caveat_contexts.push(
            rel.caveat
                .as_ref()
                .map(|c| serde_json::Value::Object(c.context.clone()).to_string()),
        );
        let expiration = rel.expiration.map(instant);
        self.expires_us.push(expiration.map(|(us, _)| us));
        self.expires_ns.push(expiration.map(|(_, ns)| ns));
    }
}

/// The smallest string greater than every string that starts with `prefix` (byte order), or
/// `None` when there is none (then a range has no upper bound).
pub(super) fn prefix_end(prefix: &str) -> Option<String> {
    let mut chars: Vec<char> = prefix.chars().collect();
    while let Some(last) = chars.pop() {
        let mut next = u32::from(last) + 1;
        if (0xD800..0xE000).contains(&next) {
            next = 0xE000;
        }
        if let Some(successor) = char::from_u32(next) {
            chars.push(successor);
            return Some(chars.into_iter().collect());
        }
    }
    None
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn instants_round_trip_to_the_nanosecond_and_order_as_pairs() {
        for text in [
            "2030-01-01T00:00:00Z",
            "2030-01-01T00:00:00.123456789Z",
            "1960-05-01T12:00:00.000000001Z",
        ] {
            let at = crate::tuple::parse_expiration(text).unwrap();
            let (us, ns) = instant(at);
            assert_eq!(from_instant(us, ns).unwrap(), at, "{text}");
        }
        let early =
            instant(crate::tuple::parse_expiration("2030-01-01T00:00:00.000000001Z").unwrap());
        let late = instant(crate::tuple::parse_expiration("2030-01-01T00:00:00.000001Z").unwrap());
        assert!(early < late);
    }

    #[test]
    fn prefix_end_bounds_exactly_the_strings_with_the_prefix() {
        assert_eq!(prefix_end("ab").as_deref(), Some("ac"));
        assert_eq!(prefix_end("a\u{10FFFF}").as_deref(), Some("b"));
        assert_eq!(prefix_end("\u{D7FF}").as_deref(), Some("\u{E000}"));
        assert_eq!(prefix_end("\u{10FFFF}"), None);
        assert_eq!(prefix_end(""), None);
        let end = prefix_end("ab").unwrap();
        assert!("ab\u{10FFFF}zz" < end.as_str());
    }
}
