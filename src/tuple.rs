//! Names, object references and relationships, with the text form SpiceDB uses:
//! `resource_type:id#relation@subject_type:id[#subject_relation][caveat:{json}][expiration:RFC3339]`.
//!
//! Pure: no I/O. Every constructor that takes text validates it, and errors quote the bad part.

use std::fmt;

use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{Map, Value};

/// Longest object id accepted.
pub const MAX_OBJECT_ID_LEN: usize = 1024;
/// The subject id that stands for every object of a type.
pub const WILDCARD_ID: &str = "*";
/// The text form of "no subject relation".
pub const ELLIPSIS: &str = "...";

/// Why a name, reference or relationship text was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TupleError {
    /// An object type does not match `([a-z][a-z0-9_]{1,61}[a-z0-9]/)*[a-z][a-z0-9_]{1,62}[a-z0-9]`.
    #[error("invalid object type `{0}`: expected lowercase letters, digits and `_`, 3 to 64 characters per `/`-separated segment")]
    ObjectType(String),
    /// An object id has characters outside `[a-zA-Z0-9/_|-=+]` or the wrong length.
    #[error("invalid object id `{0}`: expected 1 to 1024 characters of `a-z A-Z 0-9 / _ | - = +`")]
    ObjectId(String),
    /// A relation name does not match `[a-z][a-z0-9_]{1,62}[a-z0-9]`.
    #[error(
        "invalid relation `{0}`: expected lowercase letters, digits and `_`, 3 to 64 characters"
    )]
    Relation(String),
    /// The text does not have the relationship's shape.
    #[error("invalid relationship `{text}`: {reason}")]
    Syntax {
        /// The whole text that was being parsed.
        text: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A caveat name does not match SpiceDB's `^[a-zA-Z0-9_][a-zA-Z0-9/_|-]{0,127}$`.
    #[error("invalid caveat name `{0}`: expected 1 to 128 characters of `a-z A-Z 0-9 _ / | -`, not starting with `/`, `|` or `-`")]
    CaveatName(String),
    /// A caveat context is not a JSON object.
    #[error("invalid caveat context `{0}`: expected a JSON object")]
    CaveatContext(String),
    /// An expiration is not an RFC 3339 timestamp.
    #[error(
        "invalid expiration `{0}`: expected an RFC 3339 timestamp such as `2030-01-01T00:00:00Z`"
    )]
    Expiration(String),
}

fn is_name_segment(segment: &str, max_len: usize) -> bool {
    let bytes = segment.as_bytes();
    let (Some(first), Some(last)) = (bytes.first(), bytes.last()) else {
        return false;
    };
    bytes.len() >= 3
        && bytes.len() <= max_len
        && first.is_ascii_lowercase()
        && (last.is_ascii_lowercase() || last.is_ascii_digit())
        && bytes
            .iter()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'_')
}

/// Checks an object type such as `document` or `app/group`.
pub fn validate_object_type(name: &str) -> Result<(), TupleError> {
    let mut segments = name.split('/').peekable();
    while let Some(segment) = segments.next() {
        let max = if segments.peek().is_some() { 63 } else { 64 };
        if !is_name_segment(segment, max) {
            return Err(TupleError::ObjectType(name.to_string()));
        }
    }
    Ok(())
}

/// Checks a relation or permission name such as `viewer`.
pub fn validate_relation(name: &str) -> Result<(), TupleError> {
    if is_name_segment(name, 64) {
        Ok(())
    } else {
        Err(TupleError::Relation(name.to_string()))
    }
}

/// Longest caveat name accepted, in bytes.
pub const MAX_CAVEAT_NAME_LEN: usize = 128;

/// Checks a caveat name the way SpiceDB's API does (`ContextualizedCaveat.caveat_name` and
/// `CaveatDefinition.name`: `^[a-zA-Z0-9_][a-zA-Z0-9/_|-]{0,127}$`). The schema compiler
/// applies the same rule to `caveat` definitions, so every caveat a schema can define can be
/// named in a relationship.
pub fn validate_caveat_name(name: &str) -> Result<(), TupleError> {
    let bytes = name.as_bytes();
    let ok = bytes
        .first()
        .is_some_and(|b| b.is_ascii_alphanumeric() || *b == b'_')
        && bytes.len() <= MAX_CAVEAT_NAME_LEN
        && bytes
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'/' | b'|' | b'-'));
    if ok {
        Ok(())
    } else {
        Err(TupleError::CaveatName(name.to_string()))
    }
}

/// Checks an object id (not the wildcard).
pub fn validate_object_id(id: &str) -> Result<(), TupleError> {
    let ok = !id.is_empty()
        && id.len() <= MAX_OBJECT_ID_LEN
        && id.bytes().all(|b| {
            b.is_ascii_alphanumeric() || matches!(b, b'/' | b'_' | b'|' | b'-' | b'=' | b'+')
        });
    if ok {
        Ok(())
    } else {
        Err(TupleError::ObjectId(id.to_string()))
    }
}

/// A typed object: `document:readme`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ObjectRef {
    /// The object type, e.g. `app/group`.
    pub object_type: String,
    /// The object id, e.g. `eng`.
    pub object_id: String,
}

impl ObjectRef {
    /// A checked object reference (the id may not be the wildcard).
    pub fn new(object_type: &str, object_id: &str) -> Result<Self, TupleError> {
        validate_object_type(object_type)?;
        validate_object_id(object_id)?;
        Ok(Self::new_unchecked(object_type, object_id))
    }

    /// An object reference whose parts the caller has already checked.
    pub fn new_unchecked(object_type: &str, object_id: &str) -> Self {
        Self {
            object_type: object_type.to_string(),
            object_id: object_id.to_string(),
        }
    }

    /// Parses `type:id`.
    pub fn parse(text: &str) -> Result<Self, TupleError> {
        let (object_type, object_id) = text.split_once(':').ok_or_else(|| TupleError::Syntax {
            text: text.to_string(),
            reason: "expected `type:id`".to_string(),
        })?;
        Self::new(object_type, object_id)
    }
}

impl fmt::Display for ObjectRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.object_type, self.object_id)
    }
}

/// A subject: a concrete object (`user:tom`), a wildcard (`user:*`) or a subject set
/// (`group:eng#member`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SubjectRef {
    /// The subject object (its id may be `*`).
    pub object: ObjectRef,
    /// The subject relation; `None` for a plain object (`...` in text).
    pub relation: Option<String>,
}

impl SubjectRef {
    /// A checked subject.
    pub fn new(
        object_type: &str,
        object_id: &str,
        relation: Option<&str>,
    ) -> Result<Self, TupleError> {
        validate_object_type(object_type)?;
        if object_id != WILDCARD_ID {
            validate_object_id(object_id)?;
        }
        let relation = match relation {
            None | Some(ELLIPSIS) => None,
            Some(rel) => {
                validate_relation(rel)?;
                Some(rel.to_string())
            }
        };
        if object_id == WILDCARD_ID && relation.is_some() {
            return Err(TupleError::Syntax {
                text: format!("{object_type}:{object_id}"),
                reason: "a wildcard subject cannot have a subject relation".to_string(),
            });
        }
        Ok(Self {
            object: ObjectRef::new_unchecked(object_type, object_id),
            relation,
        })
    }

    /// Parses `type:id`, `type:*`, `type:id#relation` or `type:id#...`.
    pub fn parse(text: &str) -> Result<Self, TupleError> {
        let (object, relation) = match text.split_once('#') {
            Some((object, relation)) => (object, Some(relation)),
            None => (text, None),
        };
        let (object_type, object_id) =
            object.split_once(':').ok_or_else(|| TupleError::Syntax {
                text: text.to_string(),
                reason: "expected a subject `type:id` or `type:id#relation`".to_string(),
            })?;
        Self::new(object_type, object_id, relation)
    }

    /// Whether this is the wildcard subject of its type.
    pub fn is_wildcard(&self) -> bool {
        self.object.object_id == WILDCARD_ID
    }

    /// The subject relation, or `...` when there is none.
    pub fn relation_or_ellipsis(&self) -> &str {
        self.relation.as_deref().unwrap_or(ELLIPSIS)
    }
}

impl fmt::Display for SubjectRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.object)?;
        if let Some(relation) = &self.relation {
            write!(f, "#{relation}")?;
        }
        Ok(())
    }
}

/// A caveat attached to a relationship, with the context stored alongside it.
#[derive(Debug, Clone, PartialEq)]
pub struct ContextualizedCaveat {
    /// The caveat's name in the schema.
    pub name: String,
    /// Parameter values fixed when the relationship was written.
    pub context: Map<String, Value>,
}

/// One stored fact: `resource#relation@subject`, optionally caveated and expiring.
#[derive(Debug, Clone, PartialEq)]
pub struct Relationship {
    /// The object the relation is on.
    pub resource: ObjectRef,
    /// The relation name.
    pub relation: String,
    /// Who or what holds the relation.
    pub subject: SubjectRef,
    /// A caveat that must hold for the relationship to apply.
    pub caveat: Option<ContextualizedCaveat>,
    /// When the relationship stops applying.
    pub expiration: Option<DateTime<Utc>>,
}

impl Relationship {
    /// A relationship with no caveat and no expiration.
    pub fn new(resource: ObjectRef, relation: &str, subject: SubjectRef) -> Self {
        Self {
            resource,
            relation: relation.to_string(),
            subject,
            caveat: None,
            expiration: None,
        }
    }

    /// Parses the text form, including optional `[caveat:{...}]` and `[expiration:...]` suffixes.
    pub fn parse(text: &str) -> Result<Self, TupleError> {
        let syntax = |reason: &str| TupleError::Syntax {
            text: text.to_string(),
            reason: reason.to_string(),
        };
        let trimmed = text.trim();
        let (resource_part, rest) = trimmed
            .split_once('@')
            .ok_or_else(|| syntax("expected `resource#relation@subject`"))?;
        let (resource_text, relation) = resource_part
            .split_once('#')
            .ok_or_else(|| syntax("expected `#relation` after the resource"))?;
        let resource = ObjectRef::parse(resource_text)?;
        validate_relation(relation)?;

        let (subject_text, mut suffix) = match rest.find('[') {
            Some(at) => rest.split_at(at),
            None => (rest, ""),
        };
        let subject = SubjectRef::parse(subject_text)?;

        let mut expiration = None;
        if let Some(at) = suffix.rfind("[expiration:") {
            let block = suffix.get(at..).unwrap_or_default();
            let value = block
                .strip_prefix("[expiration:")
                .and_then(|v| v.strip_suffix(']'))
                .ok_or_else(|| syntax("expected `[expiration:RFC3339]` at the end"))?;
            expiration = Some(parse_expiration(value)?);
            suffix = suffix.get(..at).unwrap_or_default();
        }

        let caveat = if suffix.is_empty() {
            None
        } else {
            let inner = suffix
                .strip_prefix('[')
                .and_then(|v| v.strip_suffix(']'))
                .ok_or_else(|| syntax("expected `[caveat]` or `[caveat:{context}]`"))?;
            Some(parse_caveat(inner)?)
        };

        Ok(Self {
            resource,
            relation: relation.to_string(),
            subject,
            caveat,
            expiration,
        })
    }

    /// The relationship without caveat or expiration, as `resource#relation@subject`.
    pub fn key_string(&self) -> String {
        format!("{}#{}@{}", self.resource, self.relation, self.subject)
    }
}

fn parse_caveat(inner: &str) -> Result<ContextualizedCaveat, TupleError> {
    let (name, context) = match inner.split_once(':') {
        Some((name, json)) => {
            let value: Value = serde_json::from_str(json)
                .map_err(|_| TupleError::CaveatContext(json.to_string()))?;
            match value {
                Value::Object(map) => (name, map),
                _ => return Err(TupleError::CaveatContext(json.to_string())),
            }
        }
        None => (inner, Map::new()),
    };
    validate_caveat_name(name)?;
    Ok(ContextualizedCaveat {
        name: name.to_string(),
        context,
    })
}

/// Parses an RFC 3339 timestamp into UTC.
pub fn parse_expiration(text: &str) -> Result<DateTime<Utc>, TupleError> {
    DateTime::parse_from_rfc3339(text.trim())
        .map(|t| t.with_timezone(&Utc))
        .map_err(|_| TupleError::Expiration(text.to_string()))
}

impl fmt::Display for Relationship {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}#{}@{}", self.resource, self.relation, self.subject)?;
        if let Some(caveat) = &self.caveat {
            write!(f, "[{}", caveat.name)?;
            if !caveat.context.is_empty() {
                write!(f, ":{}", Value::Object(caveat.context.clone()))?;
            }
            write!(f, "]")?;
        }
        if let Some(expiration) = &self.expiration {
            write!(
                f,
                "[expiration:{}]",
                expiration.to_rfc3339_opts(SecondsFormat::AutoSi, true)
            )?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_prints_plain_relationship() {
        let rel = Relationship::parse("app/group:eng#member@app/user:alice").unwrap();
        assert_eq!(rel.resource.object_type, "app/group");
        assert_eq!(rel.subject.relation, None);
        assert_eq!(rel.to_string(), "app/group:eng#member@app/user:alice");
    }

    #[test]
    fn ellipsis_subject_relation_means_none() {
        let rel = Relationship::parse("doc:firstdoc#viewer@user:tom#...").unwrap();
        assert_eq!(rel.subject.relation, None);
        assert_eq!(rel.to_string(), "doc:firstdoc#viewer@user:tom");
    }

    #[test]
    fn parses_subject_set_caveat_and_expiration() {
        let text = r#"doc:1#viewer@group:eng#member[only_ip:{"allowed":"10.0.0.0/8"}][expiration:2030-01-01T00:00:00Z]"#;
        let rel = Relationship::parse(text).unwrap();
        assert_eq!(rel.subject.relation.as_deref(), Some("member"));
        let caveat = rel.caveat.clone().unwrap();
        assert_eq!(caveat.name, "only_ip");
        assert_eq!(caveat.context["allowed"], "10.0.0.0/8");
        assert!(rel.expiration.is_some());
        assert_eq!(rel.to_string(), text);
    }

    #[test]
    fn caveat_without_context() {
        let rel = Relationship::parse("resource:first#reader@user:tom[some_caveat]").unwrap();
        assert_eq!(rel.caveat.unwrap().context.len(), 0);
    }

    #[test]
    fn caveat_context_may_contain_brackets() {
        let rel = Relationship::parse(r#"doc:1#viewer@user:tom[cav:{"l":["a]"]}]"#).unwrap();
        assert_eq!(rel.caveat.unwrap().context["l"][0], "a]");
    }

    #[test]
    fn wildcard_subject() {
        let rel = Relationship::parse("doc:1#viewer@user:*").unwrap();
        assert!(rel.subject.is_wildcard());
        assert!(Relationship::parse("doc:*#viewer@user:tom").is_err());
        assert!(Relationship::parse("doc:1#viewer@user:*#member").is_err());
    }

    #[test]
    fn errors_quote_the_bad_part() {
        let err = Relationship::parse("Doc:1#viewer@user:tom").unwrap_err();
        assert!(err.to_string().contains("`Doc`"), "{err}");
        let err = Relationship::parse("doc:1#viewer@user:t om").unwrap_err();
        assert!(err.to_string().contains("`t om`"), "{err}");
        let err = Relationship::parse("doc:1viewer@user:tom").unwrap_err();
        assert!(err.to_string().contains("#relation"), "{err}");
        let err = Relationship::parse("doc:1#viewer@user:tom[cav:[1]]").unwrap_err();
        assert!(err.to_string().contains("JSON object"), "{err}");
        let err = Relationship::parse("doc:1#viewer@user:tom[expiration:tomorrow]").unwrap_err();
        assert!(err.to_string().contains("`tomorrow`"), "{err}");
    }

    #[test]
    fn names_follow_spicedb_rules() {
        assert!(validate_object_type("app/group").is_ok());
        assert!(validate_object_type("a/b/c").is_err());
        assert!(validate_object_type("user_").is_err());
        assert!(validate_object_type("User").is_err());
        assert!(validate_relation("member").is_ok());
        assert!(validate_object_id(&"a".repeat(1024)).is_ok());
        assert!(validate_object_id(&"a".repeat(1025)).is_err());
        assert!(validate_object_id("a=b+c|d/e_f-g").is_ok());
    }

    #[test]
    fn caveat_names_follow_spicedb_api_rule() {
        for good in [
            "c",
            "c1",
            "C",
            "_",
            "9lives",
            "ns/cav",
            "a|b-c",
            &"a".repeat(128),
        ] {
            assert!(validate_caveat_name(good).is_ok(), "{good}");
        }
        for bad in [
            "",
            "/c",
            "|c",
            "-c",
            "c.d",
            "c d",
            "café",
            "c{",
            &"a".repeat(129),
        ] {
            assert!(validate_caveat_name(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn short_caveat_names_parse_in_relationships() {
        let rel = Relationship::parse(r#"doc:1#viewer@user:tom[c1:{"a":1}]"#).unwrap();
        assert_eq!(rel.caveat.unwrap().name, "c1");
        let rel = Relationship::parse("doc:1#viewer@user:tom[c]").unwrap();
        assert_eq!(rel.caveat.unwrap().name, "c");
        assert!(Relationship::parse(r#"doc:1#viewer@user:tom[cav{"a":1}]"#).is_err());
        let err = Relationship::parse("doc:1#viewer@user:tom[c.d]").unwrap_err();
        assert!(matches!(err, TupleError::CaveatName(_)), "{err}");
    }
}
