//! Organizations, as every product needs them: the record, creation (the creator becomes
//! owner; a bounded number per user), the delete cascade (every tuple of every object of the
//! organization, then each product's records), members joining and leaving, and suspension.
//!
//! **Leaving ends access.** [`remove_member`] removes, in the call's one write, every tuple
//! that names the user inside the organization: role bindings on the organization and on
//! anything in it, memberships of groups of both products, direct collection grants, custom
//! resource ownership, the user's suspension marker, each found through
//! [`graph::org_of`], so a type added later is covered too.
//!
//! **Suspension.** `app/organization:O#suspended` holds `app/user:*` and
//! `app/serviceuser:*` while the organization is disabled, and `app/user:U` while U alone is
//! suspended in it (SCIM `active=false`). Every permission of every object of the
//! organization subtracts it in the built-in schema; the tuples that grant access stay, so
//! either suspension is undone by deleting the marker.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::bindings::{self, Binding, Principal, ORG_TYPE};
use super::bootstrap::PLATFORM;
use super::error::FacadeError;
use super::graph;
use super::keys;
use super::records::{Keyspace, Tx};
use super::roles::{self, PRINCIPAL_TYPES};
use super::runner::{new_id, now, object, Cx, USER_TYPE};
use super::Cascading;
use crate::tuple::{ObjectRef, Relationship, SubjectRef};

/// The relation holding an organization's suspension markers.
pub const SUSPENDED: &str = "suspended";

/// An organization record.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Organization {
    /// Id (UUID).
    pub id: String,
    /// Unique slug.
    pub name: String,
    /// Title.
    pub title: String,
    /// Metadata object.
    pub metadata: Map<String, Value>,
    /// An avatar URL or data, as Frontier keeps it.
    #[serde(default)]
    pub avatar: String,
    /// `enabled` or `disabled`.
    pub state: String,
    /// The user who created it (counted against their limit).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_by: Option<String>,
    /// RFC 3339.
    pub created_at: String,
    /// RFC 3339.
    pub updated_at: String,
}

/// Organizations by id.
pub const ORGS: Keyspace<Organization> = Keyspace::new("org");
/// Organization ids by name (names are unique).
pub const ORG_NAMES: Keyspace<String> = Keyspace::new("org_name");
/// Organization ids by `{creator}/{org}` (what the per-user limit counts).
pub const ORG_CREATORS: Keyspace<String> = Keyspace::new("org_creator");

/// What a new organization is made of (checked by the caller).
#[derive(Debug, Clone, Default)]
pub struct NewOrganization {
    /// Unique slug.
    pub name: String,
    /// Title.
    pub title: String,
    /// Metadata object.
    pub metadata: Map<String, Value>,
    /// Avatar.
    pub avatar: String,
}

/// The organization `id`, or 404.
pub fn load(cx: &Cx<'_>, id: &str) -> Result<Organization, FacadeError> {
    ORGS.get(cx.view, id)?
        .ok_or_else(|| FacadeError::not_found("org"))
}

/// The organization `id` when the caller has `permission` on it: 404 when it does not exist
/// (or a key of another organization asks), 403 without the permission.
pub fn require(cx: &Cx<'_>, id: &str, permission: &str) -> Result<Organization, FacadeError> {
    if cx.key_org().is_some_and(|own| own != id) {
        return Err(FacadeError::not_found("org"));
    }
    let org = load(cx, id)?;
    cx.require(&object(ORG_TYPE, id)?, permission)?;
    Ok(org)
}

fn is_superuser(cx: &Cx<'_>) -> Result<bool, FacadeError> {
    cx.can(&ObjectRef::new(PLATFORM.0, PLATFORM.1)?, "superuser")
}

/// Creates an organization owned by the calling user: 409 for a taken name, 400 past the
/// per-user limit.
pub fn create(cx: &Cx<'_>, tx: &mut Tx, new: NewOrganization) -> Result<Organization, FacadeError> {
    let creator = cx.user_id()?.to_string();
    let limit = cx.facade.max_orgs_per_user;
    if limit > 0 && !is_superuser(cx)? {
        let created = ORG_CREATORS.scan(cx.view, &format!("{creator}/"))?.len();
        if created >= limit {
            return Err(FacadeError::FailedPrecondition(format!(
                "user `{creator}` has created {created} organizations, the most allowed per user"
            )));
        }
    }
    if ORG_NAMES.get(cx.view, &new.name)?.is_some() {
        return Err(FacadeError::AlreadyExists("already exist".to_string()));
    }
    let at = now();
    let org = Organization {
        id: new_id(),
        name: new.name,
        title: new.title,
        metadata: new.metadata,
        avatar: new.avatar,
        state: "enabled".to_string(),
        created_by: Some(creator.clone()),
        created_at: at.clone(),
        updated_at: at,
    };
    let resource = object(ORG_TYPE, &org.id)?;
    tx.touch(Relationship::new(
        resource.clone(),
        "platform",
        SubjectRef::new(PLATFORM.0, PLATFORM.1, None)?,
    ));
    let owner = cx.facade.known_role(roles::ORG_OWNER)?;
    bindings::grant(
        cx,
        tx,
        &resource,
        owner,
        &Principal::User(creator.clone()),
        "",
    )?;
    tx.require_absent(&ORG_NAMES, &org.name);
    tx.put(&ORG_NAMES, &org.name, &org.id)?;
    tx.put(&ORG_CREATORS, &format!("{creator}/{}", org.id), &org.id)?;
    tx.put(&ORGS, &org.id, &org)?;
    Ok(org)
}

/// Renames an organization (409 when the name is taken) and stages its record.
pub fn rename(
    cx: &Cx<'_>,
    tx: &mut Tx,
    org: &mut Organization,
    name: String,
) -> Result<(), FacadeError> {
    if name == org.name {
        return Ok(());
    }
    if ORG_NAMES.get(cx.view, &name)?.is_some() {
        return Err(FacadeError::AlreadyExists("already exist".to_string()));
    }
    tx.remove(&ORG_NAMES, &org.name);
    tx.require_absent(&ORG_NAMES, &name);
    tx.put(&ORG_NAMES, &name, &org.id)?;
    org.name = name;
    Ok(())
}

/// The organization's cascade: every object of it forgotten (tuples and role bindings),
/// each product's records, its keys, its own records.
pub fn delete(cx: &Cx<'_>, tx: &mut Tx, org: &Organization) -> Result<(), FacadeError> {
    for object in graph::objects_of_org(cx, &object(ORG_TYPE, &org.id)?)? {
        graph::forget(cx, tx, &object)?;
    }
    cx.facade
        .cascade(cx, tx, &Cascading::Organization(&org.id))?;
    keys::remove_all(tx, &org.id);
    tx.remove(&ORG_NAMES, &org.name);
    if let Some(creator) = &org.created_by {
        tx.remove(&ORG_CREATORS, &format!("{creator}/{}", org.id));
    }
    tx.remove(&ORGS, &org.id);
    Ok(())
}

/// Whether `user` holds any binding on the organization `org` itself.
pub fn is_member(cx: &Cx<'_>, org: &str, user: &str) -> Result<bool, FacadeError> {
    if crate::tuple::validate_object_id(user).is_err() {
        return Ok(false);
    }
    bindings::has_binding(
        cx,
        &object(ORG_TYPE, org)?,
        &Principal::User(user.to_string()),
    )
}

/// The users bound on `org`, each once, in binding order.
pub fn members(cx: &Cx<'_>, org: &str) -> Result<Vec<String>, FacadeError> {
    let mut out: Vec<String> = Vec::new();
    for binding in bindings::bindings_on(cx, &object(ORG_TYPE, org)?)? {
        if let Principal::User(user) = binding.principal {
            if !out.contains(&user) {
                out.push(user);
            }
        }
    }
    Ok(out)
}

/// The user's bindings on the organization itself.
pub fn roles_of(cx: &Cx<'_>, org: &str, user: &str) -> Result<Vec<Binding>, FacadeError> {
    let principal = Principal::User(user.to_string());
    Ok(bindings::bindings_on(cx, &object(ORG_TYPE, org)?)?
        .into_iter()
        .filter(|b| b.principal == principal)
        .collect())
}

/// Makes `user` a member of `org` with `role` unless they already are one (with any role).
pub fn add_member(
    cx: &Cx<'_>,
    tx: &mut Tx,
    org: &str,
    user: &str,
    role: &str,
) -> Result<(), FacadeError> {
    if is_member(cx, org, user)? {
        return Ok(());
    }
    let role = cx.facade.known_role(role)?;
    bindings::grant(
        cx,
        tx,
        &object(ORG_TYPE, org)?,
        role,
        &Principal::User(user.to_string()),
        "",
    )?;
    Ok(())
}

/// Where binding `id` is granted.
fn granted_on(cx: &Cx<'_>, id: &str) -> Result<Option<ObjectRef>, FacadeError> {
    Ok(
        graph::tuples_naming(cx, &object(bindings::BINDING_TYPE, id)?)?
            .into_iter()
            .find(|r| r.relation == "granted")
            .map(|r| r.resource),
    )
}

/// Removes `user` from `org`: every tuple naming the user inside the organization (see the
/// module doc), and each product's records of them. An owner binding among them needs the
/// caller's policy permission on its resource (403); the organization's last owner stays
/// (400; a group whose last owner leaves stays managed by the organization's owners). A user
/// who is not a member is a no-op.
pub fn remove_member(cx: &Cx<'_>, tx: &mut Tx, org: &str, user: &str) -> Result<(), FacadeError> {
    let Ok(person) = ObjectRef::new(USER_TYPE, user) else {
        return Ok(());
    };
    let mut removed: Vec<(ObjectRef, Binding)> = Vec::new();
    for rel in graph::tuples_naming(cx, &person)? {
        if rel.resource.object_type == bindings::BINDING_TYPE {
            let id = &rel.resource.object_id;
            let Some(resource) = granted_on(cx, id)? else {
                tx.delete(rel);
                continue;
            };
            if graph::org_of(cx, &resource)?.as_deref() != Some(org) {
                continue;
            }
            if let Some(binding) = bindings::binding(cx, id)? {
                removed.push((resource, binding));
            }
            bindings::revoke(cx, tx, id)?;
        } else if graph::org_of(cx, &rel.resource)?.as_deref() == Some(org) {
            tx.delete(rel);
        }
    }
    let mut resources: Vec<&ObjectRef> = removed.iter().map(|(r, _)| r).collect();
    resources.sort();
    resources.dedup();
    for resource in resources {
        let on_it: Vec<Binding> = removed
            .iter()
            .filter(|(r, _)| r == resource)
            .map(|(_, b)| b.clone())
            .collect();
        bindings::require_removal(cx, resource, &on_it)?;
        if resource.object_type == ORG_TYPE {
            bindings::keep_an_owner(cx, resource, &on_it)?;
        }
    }
    cx.facade.cascade(cx, tx, &Cascading::Member { org, user })
}

/// The marker tuple suspending `subject` in `org`.
fn marker(org: &str, subject: SubjectRef) -> Result<Relationship, FacadeError> {
    Ok(Relationship::new(
        object(ORG_TYPE, org)?,
        SUSPENDED,
        subject,
    ))
}

/// Disables (`enabled = false`) or enables the whole organization: the wildcard markers and
/// the record's state. Superusers keep their permissions, so they can enable it again.
pub fn set_enabled(tx: &mut Tx, org: &mut Organization, enabled: bool) -> Result<(), FacadeError> {
    for principal in PRINCIPAL_TYPES {
        let rel = marker(&org.id, SubjectRef::new(principal, "*", None)?)?;
        if enabled {
            tx.delete(rel);
        } else {
            tx.touch(rel);
        }
    }
    org.state = if enabled { "enabled" } else { "disabled" }.to_string();
    org.updated_at = now();
    tx.put(&ORGS, &org.id, org)
}

/// Suspends (`active = false`) or restores one user in `org`; memberships stay.
pub fn set_user_active(
    tx: &mut Tx,
    org: &str,
    user: &str,
    active: bool,
) -> Result<(), FacadeError> {
    let rel = marker(org, SubjectRef::new(USER_TYPE, user, None)?)?;
    if active {
        tx.delete(rel);
    } else {
        tx.touch(rel);
    }
    Ok(())
}

/// Whether `user` alone is suspended in `org`.
pub fn is_user_suspended(cx: &Cx<'_>, org: &str, user: &str) -> Result<bool, FacadeError> {
    cx.exists(&marker(org, SubjectRef::new(USER_TYPE, user, None)?)?)
}
