//! The object graph of an organization, read from the tuples alone, so every product's
//! objects (and custom resource types added by a schema superset) are covered without a list
//! of types: an object belongs to an organization through its `org` relation, or through its
//! `project` relation to a project of it (the Frontier pattern every built-in and custom type
//! follows); a role binding belongs where it is granted (`resource#granted@rb`).

use std::collections::BTreeSet;

use super::bindings::{self, BINDING_TYPE, ORG_TYPE};
use super::error::FacadeError;
use super::records::Tx;
use super::runner::Cx;
use crate::filter::{RelationshipFilter, SubjectFilter};
use crate::tuple::{ObjectRef, Relationship};

/// The relations that tie an object to its parent inside an organization.
pub const PARENT_RELATIONS: [&str; 2] = ["org", "project"];

/// How many parent steps lead from any object to its organization at most.
const MAX_DEPTH: usize = 4;

/// Whether the schema in force gives `object_type` the relation `relation`.
fn has_relation(cx: &Cx<'_>, object_type: &str, relation: &str) -> bool {
    cx.view
        .schema()
        .definition(object_type)
        .is_some_and(|d| d.relations.contains_key(relation))
}

/// Every relationship whose resource is `object`.
pub fn tuples_of(cx: &Cx<'_>, object: &ObjectRef) -> Result<Vec<Relationship>, FacadeError> {
    cx.read(&RelationshipFilter {
        resource_type: Some(object.object_type.clone()),
        resource_id: Some(object.object_id.clone()),
        ..RelationshipFilter::default()
    })
}

/// Every relationship whose subject is `object`, with any subject relation (one scan of the
/// reverse index).
pub fn tuples_naming(cx: &Cx<'_>, object: &ObjectRef) -> Result<Vec<Relationship>, FacadeError> {
    cx.read(&RelationshipFilter {
        subject: Some(SubjectFilter {
            subject_type: object.object_type.clone(),
            subject_id: Some(object.object_id.clone()),
            relation: None,
        }),
        ..RelationshipFilter::default()
    })
}

/// The organization `object` belongs to, if any.
pub fn org_of(cx: &Cx<'_>, object: &ObjectRef) -> Result<Option<String>, FacadeError> {
    let mut current = object.clone();
    for _ in 0..MAX_DEPTH {
        if current.object_type == ORG_TYPE {
            return Ok(Some(current.object_id));
        }
        let parent = if current.object_type == BINDING_TYPE {
            tuples_naming(cx, &current)?
                .into_iter()
                .find(|r| r.relation == "granted")
                .map(|r| r.resource)
        } else {
            let mut found = None;
            for relation in PARENT_RELATIONS {
                if !has_relation(cx, &current.object_type, relation) {
                    continue;
                }
                if let Some(rel) = cx.subjects(&current, relation)?.into_iter().next() {
                    found = Some(rel.subject.object);
                    break;
                }
            }
            found
        };
        match parent {
            Some(parent) => current = parent,
            None => return Ok(None),
        }
    }
    Ok(None)
}

/// Every object of organization `org`: the organization, everything tied to it through
/// [`PARENT_RELATIONS`] (transitively), and every role binding granted on any of them.
pub fn objects_of_org(cx: &Cx<'_>, org: &ObjectRef) -> Result<Vec<ObjectRef>, FacadeError> {
    let mut seen: BTreeSet<ObjectRef> = BTreeSet::new();
    let mut queue = vec![org.clone()];
    while let Some(object) = queue.pop() {
        if !seen.insert(object.clone()) {
            continue;
        }
        for rel in tuples_naming(cx, &object)? {
            if PARENT_RELATIONS.contains(&rel.relation.as_str()) {
                queue.push(rel.resource);
            }
        }
    }
    let mut out: Vec<ObjectRef> = seen.iter().cloned().collect();
    for object in &seen {
        if !has_relation(cx, &object.object_type, "granted") {
            continue;
        }
        for grant in cx.subjects(object, "granted")? {
            if grant.subject.object.object_type == BINDING_TYPE {
                out.push(grant.subject.object);
            }
        }
    }
    Ok(out)
}

/// Stages the removal of `object` from the tuples: every relationship on it, every
/// relationship naming it (grants to it, memberships through it), and every role binding
/// granted on it or borne by it, with their records.
pub fn forget(cx: &Cx<'_>, tx: &mut Tx, object: &ObjectRef) -> Result<(), FacadeError> {
    for rel in tuples_of(cx, object)? {
        if rel.relation == "granted" && rel.subject.object.object_type == BINDING_TYPE {
            bindings::revoke(cx, tx, &rel.subject.object.object_id)?;
        }
        tx.delete(rel);
    }
    for rel in tuples_naming(cx, object)? {
        if rel.resource.object_type == BINDING_TYPE {
            bindings::revoke(cx, tx, &rel.resource.object_id)?;
        }
        tx.delete(rel);
    }
    Ok(())
}
