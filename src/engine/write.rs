//! Checks that writes, filters and schema changes fit the schema before the store sees them.

use std::collections::BTreeSet;

use super::{caveat, EngineError};
use crate::filter::RelationshipFilter;
use crate::schema::{AllowedKind, AllowedSubject, Member, Schema};
use crate::store::Snapshot;
use crate::transaction::{Update, UpdateOp};
use crate::tuple::Relationship;

/// Refuses an update whose relationship the schema does not allow.
pub(super) fn validate_update(schema: &Schema, update: &Update) -> Result<(), EngineError> {
    if update.op == UpdateOp::Delete {
        // Deleting something that cannot exist is harmless, but unknown names are still errors.
        return validate_names(schema, &update.relationship);
    }
    validate_relationship(schema, &update.relationship)
}

fn validate_names(schema: &Schema, rel: &Relationship) -> Result<(), EngineError> {
    let def = schema
        .definition(&rel.resource.object_type)
        .ok_or_else(|| EngineError::UnknownType(rel.resource.object_type.clone()))?;
    match def.member(&rel.relation) {
        Some(Member::Relation(_)) => Ok(()),
        Some(Member::Permission(_)) => Err(EngineError::WriteToPermission {
            object_type: rel.resource.object_type.clone(),
            relation: rel.relation.clone(),
        }),
        None => Err(EngineError::UnknownRelation {
            object_type: rel.resource.object_type.clone(),
            relation: rel.relation.clone(),
        }),
    }
}

/// Refuses a relationship the schema does not allow: unknown names, a permission instead of a
/// relation, or a subject type (with its caveat and expiration) the relation does not list.
pub(crate) fn validate_relationship(
    schema: &Schema,
    rel: &Relationship,
) -> Result<(), EngineError> {
    validate_names(schema, rel)?;
    if schema.definition(&rel.subject.object.object_type).is_none() {
        return Err(EngineError::UnknownType(
            rel.subject.object.object_type.clone(),
        ));
    }
    if let Some(caveat) = &rel.caveat {
        caveat::validate_stored_context(schema, caveat)?;
    }
    let Some(def) = schema.definition(&rel.resource.object_type) else {
        return Err(EngineError::UnknownType(rel.resource.object_type.clone()));
    };
    let Some(relation) = def.relations.get(&rel.relation) else {
        return Err(EngineError::UnknownRelation {
            object_type: rel.resource.object_type.clone(),
            relation: rel.relation.clone(),
        });
    };
    if relation.allowed.iter().any(|allowed| admits(allowed, rel)) {
        Ok(())
    } else {
        Err(EngineError::SubjectNotAllowed {
            subject: describe_allowed(&allowed_shape(rel)),
            object_type: rel.resource.object_type.clone(),
            relation: rel.relation.clone(),
        })
    }
}

/// Whether `allowed` is the entry [`allowed_shape`] gives `rel` (compared in place: a write
/// checks every row).
fn admits(allowed: &AllowedSubject, rel: &Relationship) -> bool {
    let kind = match &allowed.kind {
        AllowedKind::Wildcard => rel.subject.is_wildcard(),
        AllowedKind::Direct => !rel.subject.is_wildcard() && rel.subject.relation.is_none(),
        AllowedKind::SubjectSet(r) => {
            !rel.subject.is_wildcard() && rel.subject.relation.as_deref() == Some(r.as_str())
        }
    };
    kind && allowed.subject_type == rel.subject.object.object_type
        && allowed.caveat.as_deref() == rel.caveat.as_ref().map(|c| c.name.as_str())
        && allowed.expiration == rel.expiration.is_some()
}

/// The allowed-subject entry a relationship needs.
fn allowed_shape(rel: &Relationship) -> AllowedSubject {
    let kind = if rel.subject.is_wildcard() {
        AllowedKind::Wildcard
    } else {
        match &rel.subject.relation {
            Some(r) => AllowedKind::SubjectSet(r.clone()),
            None => AllowedKind::Direct,
        }
    };
    AllowedSubject {
        subject_type: rel.subject.object.object_type.clone(),
        kind,
        caveat: rel.caveat.as_ref().map(|c| c.name.clone()),
        expiration: rel.expiration.is_some(),
    }
}

/// Schema-language text of an allowed subject, e.g. `user:* with cav and expiration`.
pub(crate) fn describe_allowed(allowed: &AllowedSubject) -> String {
    let mut text = allowed.subject_type.clone();
    match &allowed.kind {
        AllowedKind::Direct => {}
        AllowedKind::Wildcard => text.push_str(":*"),
        AllowedKind::SubjectSet(r) => {
            text.push('#');
            text.push_str(r);
        }
    }
    match (&allowed.caveat, allowed.expiration) {
        (Some(c), true) => text.push_str(&format!(" with {c} and expiration")),
        (Some(c), false) => text.push_str(&format!(" with {c}")),
        (None, true) => text.push_str(" with expiration"),
        (None, false) => {}
    }
    text
}

/// Refuses a filter naming types or relations the schema does not have.
pub(super) fn validate_filter(
    schema: &Schema,
    filter: &RelationshipFilter,
) -> Result<(), EngineError> {
    if let Some(object_type) = &filter.resource_type {
        let def = schema
            .definition(object_type)
            .ok_or_else(|| EngineError::UnknownType(object_type.clone()))?;
        if let Some(relation) = &filter.relation {
            if def.member(relation).is_none() {
                return Err(EngineError::UnknownRelation {
                    object_type: object_type.clone(),
                    relation: relation.clone(),
                });
            }
        }
    }
    if let Some(subject) = &filter.subject {
        let def = schema
            .definition(&subject.subject_type)
            .ok_or_else(|| EngineError::UnknownType(subject.subject_type.clone()))?;
        if let Some(Some(relation)) = &subject.relation {
            if def.member(relation).is_none() {
                return Err(EngineError::UnknownRelation {
                    object_type: subject.subject_type.clone(),
                    relation: relation.clone(),
                });
            }
        }
    }
    Ok(())
}

/// Refuses a new schema under which some stored relationship would no longer be valid,
/// naming what is still in use. Only relations whose definition changed are read.
pub(super) fn check_no_orphans(
    snapshot: &dyn Snapshot,
    old: Option<&Schema>,
    new: &Schema,
) -> Result<(), EngineError> {
    let Some(old) = old else {
        return Ok(()); // nothing can be stored without a schema
    };
    let mut problems = BTreeSet::new();
    for (type_name, old_def) in &old.definitions {
        for (relation_name, old_relation) in &old_def.relations {
            let unchanged = new
                .definition(type_name)
                .and_then(|d| d.relations.get(relation_name))
                .is_some_and(|r| {
                    r.allowed == old_relation.allowed
                        && r.allowed.iter().all(|a| {
                            a.caveat.as_ref().is_none_or(|c| new.caveat(c).is_some())
                                && new.definition(&a.subject_type).is_some()
                        })
                });
            if unchanged {
                continue;
            }
            let filter = RelationshipFilter::of_relation(type_name, relation_name);
            for rel in snapshot.read(&filter, None) {
                if let Err(err) = validate_relationship(new, &rel?) {
                    problems.insert(orphan_message(err));
                }
                if problems.len() >= 10 {
                    break;
                }
            }
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(EngineError::SchemaWouldOrphan(
            problems.into_iter().collect::<Vec<_>>().join("; "),
        ))
    }
}

fn orphan_message(err: EngineError) -> String {
    match err {
        EngineError::UnknownType(t) => {
            format!("object definition `{t}` is still used by relationships")
        }
        EngineError::UnknownRelation {
            object_type,
            relation,
        }
        | EngineError::WriteToPermission {
            object_type,
            relation,
        } => format!("relation `{object_type}#{relation}` is still used by relationships"),
        EngineError::SubjectNotAllowed {
            subject,
            object_type,
            relation,
        } => format!(
            "subject type `{subject}` is still used by relationships on `{object_type}#{relation}`"
        ),
        EngineError::UnknownCaveat(c) => format!("caveat `{c}` is still used by relationships"),
        other => other.to_string(),
    }
}
