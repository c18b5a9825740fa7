//! Protobuf messages of `authzed.api.v1` to and from domain types.
//!
//! Conversions into the domain go through the same checked conversions as the HTTP API's JSON
//! (`api::wire`), so both wire formats accept and refuse exactly the same requests with the
//! same messages; field names in those messages are protobuf's JSON names (`objectType`).

use chrono::{DateTime, Utc};
use prost_types::value::Kind;
use serde_json::{Map, Number, Value};

use crate::api::error::ApiError;
use crate::api::service::Requested;
use crate::api::wire::{
    self, ObjectReference, SubjectReference, WireCaveat, WireFilter, WirePrecondition,
    WireRelationFilter, WireRelationship, WireSubjectFilter,
};
use crate::engine::{Context, ExpandNode, ExpandTree, Permissionship};
use crate::filter::RelationshipFilter;
use crate::proto::v1;
use crate::transaction::{Precondition, Update, UpdateOp};
use crate::tuple::{ObjectRef, Relationship, SubjectRef};

// ---- google.protobuf.Struct ⇄ JSON ----

/// A protobuf `Struct` as a JSON object (integral numbers become JSON integers, so `int`
/// caveat parameters read as integers).
pub fn struct_to_json(value: Option<&prost_types::Struct>) -> Map<String, Value> {
    value
        .map(|s| {
            s.fields
                .iter()
                .map(|(k, v)| (k.clone(), value_to_json(v)))
                .collect()
        })
        .unwrap_or_default()
}

fn value_to_json(value: &prost_types::Value) -> Value {
    match &value.kind {
        None | Some(Kind::NullValue(_)) => Value::Null,
        Some(Kind::BoolValue(b)) => Value::Bool(*b),
        Some(Kind::StringValue(s)) => Value::String(s.clone()),
        Some(Kind::NumberValue(n)) => number(*n),
        Some(Kind::StructValue(s)) => Value::Object(struct_to_json(Some(s))),
        Some(Kind::ListValue(list)) => {
            Value::Array(list.values.iter().map(value_to_json).collect())
        }
    }
}

/// Largest magnitude below which every integer is exact in an `f64` (2^53).
const EXACT_INTEGER: f64 = 9_007_199_254_740_992.0;

fn number(n: f64) -> Value {
    if n.fract() == 0.0 && n.abs() <= EXACT_INTEGER {
        // INVARIANT: integral and within ±2^53, so the cast is exact.
        return Value::Number(Number::from(n as i64));
    }
    Number::from_f64(n).map_or(Value::Null, Value::Number)
}

/// A JSON object as a protobuf `Struct`.
pub fn json_to_struct(map: &Map<String, Value>) -> prost_types::Struct {
    prost_types::Struct {
        fields: map
            .iter()
            .map(|(k, v)| (k.clone(), json_to_value(v)))
            .collect(),
    }
}

fn json_to_value(value: &Value) -> prost_types::Value {
    let kind = match value {
        Value::Null => Kind::NullValue(0),
        Value::Bool(b) => Kind::BoolValue(*b),
        Value::Number(n) => Kind::NumberValue(n.as_f64().unwrap_or_default()),
        Value::String(s) => Kind::StringValue(s.clone()),
        Value::Array(items) => Kind::ListValue(prost_types::ListValue {
            values: items.iter().map(json_to_value).collect(),
        }),
        Value::Object(map) => Kind::StructValue(json_to_struct(map)),
    };
    prost_types::Value { kind: Some(kind) }
}

/// The request's caveat context.
pub fn context(value: Option<&prost_types::Struct>) -> Context {
    struct_to_json(value)
}

// ---- timestamps ----

/// A protobuf `Timestamp` as a UTC instant.
pub fn timestamp(value: &prost_types::Timestamp, what: &str) -> Result<DateTime<Utc>, ApiError> {
    u32::try_from(value.nanos)
        .ok()
        .filter(|n| *n < 1_000_000_000)
        .and_then(|nanos| DateTime::from_timestamp(value.seconds, nanos))
        .ok_or_else(|| {
            ApiError::invalid(format!(
                "{what}: timestamp {}s {}ns is out of range",
                value.seconds, value.nanos
            ))
        })
}

/// A UTC instant as a protobuf `Timestamp`.
pub fn to_timestamp(at: &DateTime<Utc>) -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: at.timestamp(),
        // INVARIANT: sub-second nanoseconds are below 10^9 < 2^31.
        nanos: i32::try_from(at.timestamp_subsec_nanos()).unwrap_or_default(),
    }
}

// ---- references and relationships ----

fn wire_object(object: Option<&v1::ObjectReference>) -> ObjectReference {
    object.map_or_else(ObjectReference::default, |o| ObjectReference {
        object_type: o.object_type.clone(),
        object_id: o.object_id.clone(),
    })
}

fn wire_subject(subject: Option<&v1::SubjectReference>) -> SubjectReference {
    subject.map_or_else(SubjectReference::default, |s| SubjectReference {
        object: wire_object(s.object.as_ref()),
        optional_relation: s.optional_relation.clone(),
    })
}

/// The checked object (`what` names the field in errors).
pub fn object(object: Option<&v1::ObjectReference>, what: &str) -> Result<ObjectRef, ApiError> {
    wire_object(object).to_domain(what)
}

/// The checked subject (`what` names the field in errors).
pub fn subject(subject: Option<&v1::SubjectReference>, what: &str) -> Result<SubjectRef, ApiError> {
    wire_subject(subject).to_domain(what)
}

/// The wire form of an object.
pub fn to_object(object: &ObjectRef) -> v1::ObjectReference {
    v1::ObjectReference {
        object_type: object.object_type.clone(),
        object_id: object.object_id.clone(),
    }
}

/// The wire form of a subject.
pub fn to_subject(subject: &SubjectRef) -> v1::SubjectReference {
    v1::SubjectReference {
        object: Some(to_object(&subject.object)),
        optional_relation: subject.relation.clone().unwrap_or_default(),
    }
}

/// The checked relationship.
pub fn relationship(rel: Option<&v1::Relationship>) -> Result<Relationship, ApiError> {
    let Some(rel) = rel else {
        return Err(ApiError::invalid("relationship is required"));
    };
    let wire = WireRelationship {
        resource: wire_object(rel.resource.as_ref()),
        relation: rel.relation.clone(),
        subject: wire_subject(rel.subject.as_ref()),
        optional_caveat: rel.optional_caveat.as_ref().map(|c| WireCaveat {
            caveat_name: c.caveat_name.clone(),
            context: struct_to_json(c.context.as_ref()),
        }),
        optional_expires_at: None,
    };
    let mut domain = wire.to_domain()?;
    if let Some(at) = &rel.optional_expires_at {
        domain.expiration = Some(timestamp(at, "relationship.optionalExpiresAt")?);
    }
    Ok(domain)
}

/// The wire form of a relationship.
pub fn to_relationship(rel: &Relationship) -> v1::Relationship {
    v1::Relationship {
        resource: Some(to_object(&rel.resource)),
        relation: rel.relation.clone(),
        subject: Some(to_subject(&rel.subject)),
        optional_caveat: rel.caveat.as_ref().map(|c| v1::ContextualizedCaveat {
            caveat_name: c.name.clone(),
            context: (!c.context.is_empty()).then(|| json_to_struct(&c.context)),
        }),
        optional_expires_at: rel.expiration.as_ref().map(to_timestamp),
    }
}

fn wire_filter(filter: &v1::RelationshipFilter) -> WireFilter {
    WireFilter {
        resource_type: filter.resource_type.clone(),
        optional_resource_id: filter.optional_resource_id.clone(),
        optional_resource_id_prefix: filter.optional_resource_id_prefix.clone(),
        optional_relation: filter.optional_relation.clone(),
        optional_subject_filter: filter.optional_subject_filter.as_ref().map(|s| {
            WireSubjectFilter {
                subject_type: s.subject_type.clone(),
                optional_subject_id: s.optional_subject_id.clone(),
                optional_relation: s.optional_relation.as_ref().map(|r| WireRelationFilter {
                    relation: r.relation.clone(),
                }),
            }
        }),
    }
}

/// The checked filter; `require_type` refuses a filter without a resource type.
pub fn filter(
    filter: Option<&v1::RelationshipFilter>,
    require_type: bool,
) -> Result<RelationshipFilter, ApiError> {
    filter
        .map(wire_filter)
        .unwrap_or_default()
        .to_domain(require_type)
}

/// The checked update.
pub fn update(update: &v1::RelationshipUpdate) -> Result<Update, ApiError> {
    use v1::relationship_update::Operation;
    let op = match Operation::try_from(update.operation) {
        Ok(Operation::Create) => UpdateOp::Create,
        Ok(Operation::Touch) => UpdateOp::Touch,
        Ok(Operation::Delete) => UpdateOp::Delete,
        Ok(Operation::Unspecified) | Err(_) => {
            return Err(ApiError::invalid(format!(
                "unknown update operation `{}`: expected OPERATION_CREATE, OPERATION_TOUCH or OPERATION_DELETE",
                enum_name(Operation::try_from(update.operation).map(|o| o.as_str_name()), update.operation)
            )))
        }
    };
    Ok(Update {
        op,
        relationship: relationship(update.relationship.as_ref())?,
    })
}

/// An enum value's name, or its number when it has none.
fn enum_name<E>(name: Result<&str, E>, number: i32) -> String {
    name.map_or_else(|_| number.to_string(), str::to_string)
}

/// The checked precondition.
pub fn precondition(precondition: &v1::Precondition) -> Result<Precondition, ApiError> {
    let operation = enum_name(
        v1::precondition::Operation::try_from(precondition.operation).map(|o| o.as_str_name()),
        precondition.operation,
    );
    WirePrecondition {
        operation,
        filter: precondition
            .filter
            .as_ref()
            .map(wire_filter)
            .unwrap_or_default(),
    }
    .to_domain()
}

/// What consistency the request asked for.
pub fn requested(consistency: Option<&v1::Consistency>) -> Requested {
    use v1::consistency::Requirement;
    match consistency.and_then(|c| c.requirement.as_ref()) {
        Some(Requirement::MinimizeLatency(true)) => Requested::MinimizeLatency,
        Some(Requirement::AtLeastAsFresh(token)) => Requested::AtLeastAsFresh(token.token.clone()),
        Some(Requirement::AtExactSnapshot(token)) => {
            Requested::AtExactSnapshot(token.token.clone())
        }
        Some(Requirement::MinimizeLatency(false) | Requirement::FullyConsistent(_)) | None => {
            Requested::FullyConsistent
        }
    }
}

// ---- answers ----

/// The check answer's enum value.
pub fn check_permissionship(p: &Permissionship) -> v1::check_permission_response::Permissionship {
    use v1::check_permission_response::Permissionship as P;
    match p {
        Permissionship::Has => P::HasPermission,
        Permissionship::No => P::NoPermission,
        Permissionship::Conditional { .. } => P::ConditionalPermission,
    }
}

/// The lookup answer's enum value.
pub fn lookup_permissionship(p: &Permissionship) -> v1::LookupPermissionship {
    match p {
        Permissionship::Conditional { .. } => v1::LookupPermissionship::ConditionalPermission,
        _ => v1::LookupPermissionship::HasPermission,
    }
}

/// The missing parameters of a conditional answer.
pub fn partial_caveat_info(p: &Permissionship) -> Option<v1::PartialCaveatInfo> {
    wire::partial_caveat_info(p).map(|info| v1::PartialCaveatInfo {
        missing_required_context: info.missing_required_context,
    })
}

/// The wire form of an expand tree.
pub fn to_tree(tree: &ExpandTree) -> v1::PermissionRelationshipTree {
    use v1::algebraic_subject_set::Operation;
    use v1::permission_relationship_tree::TreeType;
    let algebra = |operation: Operation, children: Vec<&ExpandTree>| {
        TreeType::Intermediate(v1::AlgebraicSubjectSet {
            operation: operation as i32,
            children: children.into_iter().map(to_tree).collect(),
        })
    };
    let tree_type = match &tree.node {
        ExpandNode::Leaf(subjects) => TreeType::Leaf(v1::DirectSubjectSet {
            subjects: subjects.iter().map(|s| to_subject(&s.subject)).collect(),
        }),
        ExpandNode::Union(children) => algebra(Operation::Union, children.iter().collect()),
        ExpandNode::Intersection(children) => {
            algebra(Operation::Intersection, children.iter().collect())
        }
        ExpandNode::Exclusion(base, minus) => {
            algebra(Operation::Exclusion, vec![base.as_ref(), minus.as_ref()])
        }
    };
    v1::PermissionRelationshipTree {
        tree_type: Some(tree_type),
        expanded_object: Some(to_object(&tree.object)),
        expanded_relation: tree.relation.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn structs_round_trip_with_integers_as_integers() {
        let json: Map<String, Value> = serde_json::from_str(
            r#"{"n": 3, "x": 1.5, "s": "a", "b": true, "l": [1, "two"], "m": {"k": null}}"#,
        )
        .unwrap();
        let back = struct_to_json(Some(&json_to_struct(&json)));
        assert_eq!(back, json);
        assert!(back["n"].is_i64());
    }

    #[test]
    fn relationships_round_trip_through_protobuf() {
        let rel = Relationship::parse(
            r#"doc:1#viewer@group:eng#member[ip:{"allowed":"10.0.0.0/8"}][expiration:2030-01-01T00:00:00Z]"#,
        )
        .unwrap();
        let wire = to_relationship(&rel);
        assert_eq!(relationship(Some(&wire)).unwrap(), rel);
    }

    #[test]
    fn unknown_operations_and_bad_names_are_invalid_arguments() {
        let mut update = v1::RelationshipUpdate {
            operation: 7,
            relationship: Some(to_relationship(
                &Relationship::parse("doc:1#viewer@user:tom").unwrap(),
            )),
        };
        assert!(self::update(&update).unwrap_err().message.contains("`7`"));
        update.operation = 0;
        assert!(self::update(&update)
            .unwrap_err()
            .message
            .contains("OPERATION_UNSPECIFIED"));
        update.operation = 2;
        if let Some(rel) = update.relationship.as_mut() {
            rel.relation = "Bad Relation".into();
        }
        assert!(self::update(&update).is_err());
    }
}
