//! The HTTP API's JSON shapes (SpiceDB's HTTP gateway: camelCase fields, enum values as
//! strings, 64-bit counts as strings) and their conversion to and from domain types.
//!
//! Conversions *into* the domain validate every name and id, so a handler never sees a
//! malformed request.

use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::error::ApiError;
use crate::engine::{ExpandNode, ExpandTree, FoundSubject, Permissionship};
use crate::filter::{RelationshipFilter, SubjectFilter};
use crate::transaction::{Precondition, PreconditionOp, Update, UpdateOp};
use crate::tuple::{self, ContextualizedCaveat, ObjectRef, Relationship, SubjectRef};

/// `{"objectType": "doc", "objectId": "1"}`. The text is `String` by default; a request read
/// once on a hot path may borrow it from the body instead (`ObjectReference<&str>`).
#[derive(Debug, Clone, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ObjectReference<S = String> {
    /// The object type.
    #[serde(default)]
    pub object_type: S,
    /// The object id.
    #[serde(default)]
    pub object_id: S,
}

/// `{"object": {...}, "optionalRelation": "member"}` (text owned or borrowed, as
/// [`ObjectReference`]).
#[derive(Debug, Clone, Serialize, Deserialize, Default)]
#[serde(
    rename_all = "camelCase",
    deny_unknown_fields,
    bound(serialize = "S: Serialize + AsRef<str>")
)]
pub struct SubjectReference<S = String> {
    /// The subject object.
    #[serde(default)]
    pub object: ObjectReference<S>,
    /// The subject relation; empty for none.
    #[serde(default, skip_serializing_if = "is_empty")]
    pub optional_relation: S,
}

fn is_empty<S: AsRef<str>>(text: &S) -> bool {
    text.as_ref().is_empty()
}

/// `{"caveatName": "...", "context": {...}}`.
#[derive(Debug, Clone, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct WireCaveat {
    /// The caveat's name.
    #[serde(default)]
    pub caveat_name: String,
    /// Its stored context.
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    pub context: Map<String, Value>,
}

/// A relationship on the wire.
#[derive(Debug, Clone, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct WireRelationship {
    /// The resource.
    #[serde(default)]
    pub resource: ObjectReference,
    /// The relation.
    #[serde(default)]
    pub relation: String,
    /// The subject.
    #[serde(default)]
    pub subject: SubjectReference,
    /// A caveat, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub optional_caveat: Option<WireCaveat>,
    /// An expiration (RFC 3339), if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub optional_expires_at: Option<String>,
}

/// `{"token": "..."}`.
#[derive(Debug, Clone, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct Token {
    /// The opaque token text.
    #[serde(default)]
    pub token: String,
}

/// One of the four consistency requirements.
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct WireConsistency {
    /// Any recent revision.
    #[serde(default)]
    pub minimize_latency: Option<bool>,
    /// At least as fresh as the token.
    #[serde(default)]
    pub at_least_as_fresh: Option<Token>,
    /// Exactly the token's revision.
    #[serde(default)]
    pub at_exact_snapshot: Option<Token>,
    /// The newest revision.
    #[serde(default)]
    pub fully_consistent: Option<bool>,
}

/// The subject part of a relationship filter.
#[derive(Debug, Clone, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct WireSubjectFilter {
    /// Subject type (required).
    #[serde(default)]
    pub subject_type: String,
    /// Subject id, if restricted.
    #[serde(default)]
    pub optional_subject_id: String,
    /// Subject relation, if restricted (`{"relation": ""}` means "no subject relation").
    #[serde(default)]
    pub optional_relation: Option<WireRelationFilter>,
}

/// `{"relation": "member"}`.
#[derive(Debug, Clone, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct WireRelationFilter {
    /// The relation; empty for none.
    #[serde(default)]
    pub relation: String,
}

/// A relationship filter on the wire.
#[derive(Debug, Clone, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct WireFilter {
    /// Resource type (empty for any).
    #[serde(default)]
    pub resource_type: String,
    /// Exact resource id.
    #[serde(default)]
    pub optional_resource_id: String,
    /// Resource id prefix.
    #[serde(default)]
    pub optional_resource_id_prefix: String,
    /// Relation.
    #[serde(default)]
    pub optional_relation: String,
    /// Subject constraints.
    #[serde(default)]
    pub optional_subject_filter: Option<WireSubjectFilter>,
}

/// `{"operation": "OPERATION_TOUCH", "relationship": {...}}`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct WireUpdate {
    /// `OPERATION_CREATE`, `OPERATION_TOUCH` or `OPERATION_DELETE`.
    pub operation: String,
    /// The relationship.
    pub relationship: WireRelationship,
}

/// `{"operation": "OPERATION_MUST_MATCH", "filter": {...}}`.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct WirePrecondition {
    /// `OPERATION_MUST_MATCH` or `OPERATION_MUST_NOT_MATCH`.
    pub operation: String,
    /// Which relationships.
    pub filter: WireFilter,
}

/// A count that protobuf's JSON mapping writes as a string and accepts as a string or number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Count(pub u64);

impl Serialize for Count {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0.to_string())
    }
}

impl<'de> Deserialize<'de> for Count {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Either {
            Number(u64),
            Text(String),
        }
        match Either::deserialize(d)? {
            Either::Number(n) => Ok(Count(n)),
            Either::Text(text) => text
                .parse()
                .map(Count)
                .map_err(|_| serde::de::Error::custom(format!("`{text}` is not a count"))),
        }
    }
}

// ---- conversions into the domain ----

fn optional(text: &str) -> Option<&str> {
    (!text.is_empty()).then_some(text)
}

impl<S: AsRef<str>> ObjectReference<S> {
    /// The checked object.
    pub fn to_domain(&self, what: &str) -> Result<ObjectRef, ApiError> {
        if self.object_type.as_ref().is_empty() {
            return Err(ApiError::invalid(format!("{what}: objectType is required")));
        }
        ObjectRef::new(self.object_type.as_ref(), self.object_id.as_ref())
            .map_err(|e| ApiError::invalid(format!("{what}: {e}")))
    }
}

impl ObjectReference {
    /// The wire form of `object`.
    pub fn from_domain(object: &ObjectRef) -> Self {
        Self {
            object_type: object.object_type.clone(),
            object_id: object.object_id.clone(),
        }
    }
}

impl<S: AsRef<str>> SubjectReference<S> {
    /// The checked subject.
    pub fn to_domain(&self, what: &str) -> Result<SubjectRef, ApiError> {
        if self.object.object_type.as_ref().is_empty() {
            return Err(ApiError::invalid(format!(
                "{what}: object.objectType is required"
            )));
        }
        SubjectRef::new(
            self.object.object_type.as_ref(),
            self.object.object_id.as_ref(),
            optional(self.optional_relation.as_ref()),
        )
        .map_err(|e| ApiError::invalid(format!("{what}: {e}")))
    }
}

impl SubjectReference {
    /// The wire form of `subject`.
    pub fn from_domain(subject: &SubjectRef) -> Self {
        Self {
            object: ObjectReference::from_domain(&subject.object),
            optional_relation: subject.relation.clone().unwrap_or_default(),
        }
    }
}

impl WireRelationship {
    /// The checked relationship.
    pub fn to_domain(&self) -> Result<Relationship, ApiError> {
        let resource = self.resource.to_domain("relationship.resource")?;
        tuple::validate_relation(&self.relation)
            .map_err(|e| ApiError::invalid(format!("relationship.relation: {e}")))?;
        let subject = self.subject.to_domain("relationship.subject")?;
        let mut rel = Relationship::new(resource, &self.relation, subject);
        if let Some(caveat) = &self.optional_caveat {
            if !caveat.caveat_name.is_empty() {
                rel.caveat = Some(ContextualizedCaveat {
                    name: caveat.caveat_name.clone(),
                    context: caveat.context.clone(),
                });
            }
        }
        if let Some(expires) = self.optional_expires_at.as_deref().and_then(optional) {
            rel.expiration =
                Some(tuple::parse_expiration(expires).map_err(|e| {
                    ApiError::invalid(format!("relationship.optionalExpiresAt: {e}"))
                })?);
        }
        Ok(rel)
    }

    /// The wire form of `rel`.
    pub fn from_domain(rel: &Relationship) -> Self {
        Self {
            resource: ObjectReference::from_domain(&rel.resource),
            relation: rel.relation.clone(),
            subject: SubjectReference::from_domain(&rel.subject),
            optional_caveat: rel.caveat.as_ref().map(|c| WireCaveat {
                caveat_name: c.name.clone(),
                context: c.context.clone(),
            }),
            optional_expires_at: rel.expiration.as_ref().map(timestamp),
        }
    }
}

/// RFC 3339 with seconds and a `Z`, as protobuf's JSON mapping writes timestamps.
pub fn timestamp(at: &DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::AutoSi, true)
}

impl WireFilter {
    /// The checked filter. `require_type` refuses an empty resource type (SpiceDB requires
    /// one except for bulk export and watch).
    pub fn to_domain(&self, require_type: bool) -> Result<RelationshipFilter, ApiError> {
        if require_type && self.resource_type.is_empty() {
            return Err(ApiError::invalid(
                "relationshipFilter.resourceType is required",
            ));
        }
        if !self.optional_resource_id.is_empty() && !self.optional_resource_id_prefix.is_empty() {
            return Err(ApiError::invalid(
                "relationshipFilter: optionalResourceId and optionalResourceIdPrefix cannot both be set",
            ));
        }
        let check = |r: Result<(), tuple::TupleError>| {
            r.map_err(|e| ApiError::invalid(format!("relationshipFilter: {e}")))
        };
        if let Some(t) = optional(&self.resource_type) {
            check(tuple::validate_object_type(t))?;
        }
        if let Some(id) = optional(&self.optional_resource_id) {
            check(tuple::validate_object_id(id))?;
        }
        if let Some(rel) = optional(&self.optional_relation) {
            check(tuple::validate_relation(rel))?;
        }
        let subject = match &self.optional_subject_filter {
            None => None,
            Some(s) => {
                if s.subject_type.is_empty() {
                    return Err(ApiError::invalid(
                        "relationshipFilter.optionalSubjectFilter.subjectType is required",
                    ));
                }
                check(tuple::validate_object_type(&s.subject_type))?;
                let relation = match &s.optional_relation {
                    None => None,
                    Some(r) if r.relation.is_empty() => Some(None),
                    Some(r) => {
                        check(tuple::validate_relation(&r.relation))?;
                        Some(Some(r.relation.clone()))
                    }
                };
                Some(SubjectFilter {
                    subject_type: s.subject_type.clone(),
                    subject_id: optional(&s.optional_subject_id).map(str::to_string),
                    relation,
                })
            }
        };
        Ok(RelationshipFilter {
            resource_type: optional(&self.resource_type).map(str::to_string),
            resource_id: optional(&self.optional_resource_id).map(str::to_string),
            resource_id_prefix: optional(&self.optional_resource_id_prefix).map(str::to_string),
            relation: optional(&self.optional_relation).map(str::to_string),
            subject,
        })
    }
}

impl WireUpdate {
    /// The checked update.
    pub fn to_domain(&self) -> Result<Update, ApiError> {
        let op = match self.operation.as_str() {
            "OPERATION_CREATE" => UpdateOp::Create,
            "OPERATION_TOUCH" => UpdateOp::Touch,
            "OPERATION_DELETE" => UpdateOp::Delete,
            other => {
                return Err(ApiError::invalid(format!(
                    "unknown update operation `{other}`: expected OPERATION_CREATE, OPERATION_TOUCH or OPERATION_DELETE"
                )))
            }
        };
        Ok(Update {
            op,
            relationship: self.relationship.to_domain()?,
        })
    }
}

impl WirePrecondition {
    /// The checked precondition.
    pub fn to_domain(&self) -> Result<Precondition, ApiError> {
        let op = match self.operation.as_str() {
            "OPERATION_MUST_MATCH" => PreconditionOp::MustMatch,
            "OPERATION_MUST_NOT_MATCH" => PreconditionOp::MustNotMatch,
            other => {
                return Err(ApiError::invalid(format!(
                    "unknown precondition operation `{other}`: expected OPERATION_MUST_MATCH or OPERATION_MUST_NOT_MATCH"
                )))
            }
        };
        Ok(Precondition {
            op,
            filter: self.filter.to_domain(true)?,
        })
    }
}

// ---- answers ----

/// `PERMISSIONSHIP_...` for a check answer.
pub fn check_permissionship(p: &Permissionship) -> &'static str {
    match p {
        Permissionship::Has => "PERMISSIONSHIP_HAS_PERMISSION",
        Permissionship::No => "PERMISSIONSHIP_NO_PERMISSION",
        Permissionship::Conditional { .. } => "PERMISSIONSHIP_CONDITIONAL_PERMISSION",
    }
}

/// `LOOKUP_PERMISSIONSHIP_...` for a lookup result.
pub fn lookup_permissionship(p: &Permissionship) -> &'static str {
    match p {
        Permissionship::Conditional { .. } => "LOOKUP_PERMISSIONSHIP_CONDITIONAL_PERMISSION",
        _ => "LOOKUP_PERMISSIONSHIP_HAS_PERMISSION",
    }
}

/// `{"missingRequiredContext": [...]}` for a conditional answer.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PartialCaveatInfo {
    /// The parameters nobody supplied.
    pub missing_required_context: Vec<String>,
}

/// The partial caveat info of a conditional answer.
pub fn partial_caveat_info(p: &Permissionship) -> Option<PartialCaveatInfo> {
    match p {
        Permissionship::Conditional { missing } => Some(PartialCaveatInfo {
            missing_required_context: missing.iter().cloned().collect(),
        }),
        _ => None,
    }
}

/// An expand tree node on the wire.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PermissionRelationshipTree {
    /// Set for union, intersection and exclusion nodes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub intermediate: Option<AlgebraicSubjectSet>,
    /// Set for leaves.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub leaf: Option<DirectSubjectSet>,
    /// The object expanded.
    pub expanded_object: ObjectReference,
    /// The relation or permission expanded.
    pub expanded_relation: String,
}

/// `{"operation": "OPERATION_UNION", "children": [...]}`.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AlgebraicSubjectSet {
    /// `OPERATION_UNION`, `OPERATION_INTERSECTION` or `OPERATION_EXCLUSION`.
    pub operation: &'static str,
    /// The operands.
    pub children: Vec<PermissionRelationshipTree>,
}

/// `{"subjects": [...]}`.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DirectSubjectSet {
    /// The subjects.
    pub subjects: Vec<SubjectReference>,
}

impl PermissionRelationshipTree {
    /// The wire form of an expand tree.
    pub fn from_domain(tree: &ExpandTree) -> Self {
        let (intermediate, leaf) = match &tree.node {
            ExpandNode::Leaf(subjects) => (
                None,
                Some(DirectSubjectSet {
                    subjects: subjects
                        .iter()
                        .map(|s| SubjectReference::from_domain(&s.subject))
                        .collect(),
                }),
            ),
            ExpandNode::Union(children) => (Some(algebra("OPERATION_UNION", children)), None),
            ExpandNode::Intersection(children) => {
                (Some(algebra("OPERATION_INTERSECTION", children)), None)
            }
            ExpandNode::Exclusion(base, minus) => (
                Some(AlgebraicSubjectSet {
                    operation: "OPERATION_EXCLUSION",
                    children: vec![Self::from_domain(base), Self::from_domain(minus)],
                }),
                None,
            ),
        };
        Self {
            intermediate,
            leaf,
            expanded_object: ObjectReference::from_domain(&tree.object),
            expanded_relation: tree.relation.clone(),
        }
    }
}

fn algebra(operation: &'static str, children: &[ExpandTree]) -> AlgebraicSubjectSet {
    AlgebraicSubjectSet {
        operation,
        children: children
            .iter()
            .map(PermissionRelationshipTree::from_domain)
            .collect(),
    }
}

/// A subject found by LookupSubjects.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ResolvedSubject {
    /// The subject id (`*` for the wildcard).
    pub subject_object_id: String,
    /// `LOOKUP_PERMISSIONSHIP_...`.
    pub permissionship: &'static str,
    /// Missing parameters of a conditional result.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub partial_caveat_info: Option<PartialCaveatInfo>,
}

impl ResolvedSubject {
    /// The wire form of a found subject (without its exclusions).
    pub fn from_domain(found: &FoundSubject) -> Self {
        Self {
            subject_object_id: found.subject_id.clone(),
            permissionship: lookup_permissionship(&found.permissionship),
            partial_caveat_info: partial_caveat_info(&found.permissionship),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relationships_round_trip_through_the_wire_form() {
        let rel = Relationship::parse(
            r#"doc:1#viewer@group:eng#member[only_ip:{"allowed":"10.0.0.0/8"}][expiration:2030-01-01T00:00:00Z]"#,
        )
        .unwrap();
        let wire = WireRelationship::from_domain(&rel);
        let json = serde_json::to_value(&wire).unwrap();
        assert_eq!(json["optionalExpiresAt"], "2030-01-01T00:00:00Z");
        assert_eq!(json["subject"]["optionalRelation"], "member");
        let back: WireRelationship = serde_json::from_value(json).unwrap();
        assert_eq!(back.to_domain().unwrap(), rel);
    }

    #[test]
    fn bad_names_and_operations_are_invalid_arguments() {
        let mut wire =
            WireRelationship::from_domain(&Relationship::parse("doc:1#viewer@user:tom").unwrap());
        wire.resource.object_id = "has space".into();
        assert!(wire
            .to_domain()
            .unwrap_err()
            .message
            .contains("relationship.resource"));
        let update = WireUpdate {
            operation: "OPERATION_UPSERT".into(),
            relationship: WireRelationship::default(),
        };
        assert!(update
            .to_domain()
            .unwrap_err()
            .message
            .contains("OPERATION_UPSERT"));
    }

    #[test]
    fn counts_accept_strings_and_numbers() {
        assert_eq!(serde_json::from_str::<Count>("\"12\"").unwrap(), Count(12));
        assert_eq!(serde_json::from_str::<Count>("12").unwrap(), Count(12));
        assert_eq!(serde_json::to_string(&Count(5)).unwrap(), "\"5\"");
    }

    #[test]
    fn empty_subject_relation_filter_means_no_relation() {
        let filter: WireFilter = serde_json::from_str(
            r#"{"resourceType":"doc","optionalSubjectFilter":{"subjectType":"user","optionalRelation":{"relation":""}}}"#,
        )
        .unwrap();
        let domain = filter.to_domain(true).unwrap();
        assert_eq!(domain.subject.unwrap().relation, Some(None));
    }
}
