//! Role bindings ("policies"): `(role, resource, principal)` as three tuples
//! (`rb#bearer@principal`, `rb#role@app/role:R`, `resource#granted@rb`) plus a record for
//! listing. The binding id is deterministic (UUID v5 of `resource|role|principal`), so
//! granting the same thing twice touches the same tuples. Every role assignment of every
//! product (owners, members, policies) goes through [`grant`] and [`revoke`], and every
//! removal of an owner binding asks for the same permission ([`policy_permission`]).

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::error::FacadeError;
use super::graph;
use super::records::{Keyspace, Tx};
use super::roles::{Role, ROLE_TYPE};
use super::runner::{now, object, Cx, USER_TYPE};
use crate::tuple::{ObjectRef, Relationship, SubjectRef};

/// The type of role bindings.
pub const BINDING_TYPE: &str = "app/rolebinding";
/// The group type (shared by both products: a group is a principal through
/// `app/group:G#active_member`).
pub const GROUP_TYPE: &str = "app/group";
/// The organization type.
pub const ORG_TYPE: &str = "app/organization";

/// The UUID namespace of binding ids.
const BINDING_NAMESPACE: uuid::Uuid =
    uuid::Uuid::from_u128(0x6a1f_0d3e_9b5c_4e27_a8d1_3c5b_7e90_f214);

/// A policy record.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Policy {
    /// The binding id.
    pub id: String,
    /// The role's name.
    pub role_id: String,
    /// `type:id` of the resource.
    pub resource: String,
    /// `type:id` of the principal (`app/user:U` or `app/group:G`).
    pub principal: String,
    /// A title.
    pub title: String,
    /// Free-form metadata.
    pub metadata: Map<String, Value>,
    /// RFC 3339.
    pub created_at: String,
    /// RFC 3339.
    pub updated_at: String,
}

/// Policy records by binding id.
pub const POLICIES: Keyspace<Policy> = Keyspace::new("policy");

/// Who a binding is for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Principal {
    /// A user.
    User(String),
    /// A group: its active members.
    Group(String),
}

impl Principal {
    /// Parses `app/user:U` / `user:U` / `app/group:G` / `group:G`.
    pub fn parse(text: &str) -> Result<Self, FacadeError> {
        let bad = || {
            FacadeError::InvalidArgument(format!(
                "invalid principal `{text}`: expected `app/user:<id>` or `app/group:<id>`"
            ))
        };
        let (kind, id) = text.split_once(':').ok_or_else(bad)?;
        crate::tuple::validate_object_id(id).map_err(|_| bad())?;
        match kind {
            "app/user" | "user" => Ok(Self::User(id.to_string())),
            "app/group" | "group" => Ok(Self::Group(id.to_string())),
            _ => Err(bad()),
        }
    }

    /// `app/user:U` or `app/group:G`.
    pub fn text(&self) -> String {
        match self {
            Self::User(id) => format!("{USER_TYPE}:{id}"),
            Self::Group(id) => format!("{GROUP_TYPE}:{id}"),
        }
    }

    /// The bearer subject: the user, or the group's `active_member` set.
    pub fn bearer(&self) -> Result<SubjectRef, FacadeError> {
        Ok(match self {
            Self::User(id) => SubjectRef::new(USER_TYPE, id, None)?,
            Self::Group(id) => SubjectRef::new(GROUP_TYPE, id, Some("active_member"))?,
        })
    }

    fn from_bearer(subject: &SubjectRef) -> Option<Self> {
        let id = subject.object.object_id.clone();
        match (
            subject.object.object_type.as_str(),
            subject.relation.as_deref(),
        ) {
            (USER_TYPE, None) => Some(Self::User(id)),
            (GROUP_TYPE, Some("active_member")) => Some(Self::Group(id)),
            _ => None,
        }
    }
}

/// A binding found in the tuples.
#[derive(Debug, Clone)]
pub struct Binding {
    /// Its id.
    pub id: String,
    /// The role's name.
    pub role: String,
    /// Who it is for.
    pub principal: Principal,
}

/// The deterministic id of the binding of `role` on `resource` for `principal`.
pub fn binding_id(resource: &ObjectRef, role: &str, principal: &Principal) -> String {
    let name = format!("{resource}|{role}|{}", principal.text());
    uuid::Uuid::new_v5(&BINDING_NAMESPACE, name.as_bytes()).to_string()
}

/// Writes a binding (touching its three tuples) and its record.
pub fn grant(
    cx: &Cx<'_>,
    tx: &mut Tx,
    resource: &ObjectRef,
    role: &Role,
    principal: &Principal,
    title: &str,
) -> Result<Policy, FacadeError> {
    let id = binding_id(resource, role.name, principal);
    let binding = object(BINDING_TYPE, &id)?;
    tx.touch(Relationship::new(
        binding.clone(),
        "bearer",
        principal.bearer()?,
    ));
    tx.touch(Relationship::new(
        binding,
        "role",
        SubjectRef::new(ROLE_TYPE, role.name, None)?,
    ));
    tx.touch(Relationship::new(
        resource.clone(),
        "granted",
        SubjectRef::new(BINDING_TYPE, &id, None)?,
    ));
    let at = now();
    let created_at = POLICIES
        .get(cx.view, &id)?
        .map_or_else(|| at.clone(), |p| p.created_at);
    let policy = Policy {
        id: id.clone(),
        role_id: role.name.to_string(),
        resource: resource.to_string(),
        principal: principal.text(),
        title: title.to_string(),
        metadata: Map::new(),
        created_at,
        updated_at: at,
    };
    tx.put(&POLICIES, &id, &policy)?;
    Ok(policy)
}

/// Removes a binding: every tuple on it, every tuple naming it (the grant), and its record.
pub fn revoke(cx: &Cx<'_>, tx: &mut Tx, id: &str) -> Result<(), FacadeError> {
    let binding = object(BINDING_TYPE, id)?;
    for rel in graph::tuples_of(cx, &binding)? {
        tx.delete(rel);
    }
    for rel in graph::tuples_naming(cx, &binding)? {
        tx.delete(rel);
    }
    tx.remove(&POLICIES, id);
    Ok(())
}

/// The role and principal of binding `id`, when it has both.
pub fn binding(cx: &Cx<'_>, id: &str) -> Result<Option<Binding>, FacadeError> {
    let object = object(BINDING_TYPE, id)?;
    let role = cx
        .subjects(&object, "role")?
        .into_iter()
        .next()
        .map(|r| r.subject.object.object_id);
    let principal = cx
        .subjects(&object, "bearer")?
        .iter()
        .find_map(|r| Principal::from_bearer(&r.subject));
    Ok(match (role, principal) {
        (Some(role), Some(principal)) => Some(Binding {
            id: id.to_string(),
            role,
            principal,
        }),
        _ => None,
    })
}

/// Every binding granted on `resource`.
pub fn bindings_on(cx: &Cx<'_>, resource: &ObjectRef) -> Result<Vec<Binding>, FacadeError> {
    let mut out = Vec::new();
    for grant in cx.subjects(resource, "granted")? {
        if let Some(found) = binding(cx, &grant.subject.object.object_id)? {
            out.push(found);
        }
    }
    Ok(out)
}

/// Whether `principal` holds any predefined role on `resource` (a point read per role whose
/// scope includes the resource's type: binding ids are deterministic).
pub fn has_binding(
    cx: &Cx<'_>,
    resource: &ObjectRef,
    principal: &Principal,
) -> Result<bool, FacadeError> {
    for role in cx.facade.roles() {
        if !role.scopes.contains(&resource.object_type.as_str()) {
            continue;
        }
        let id = binding_id(resource, role.name, principal);
        let grant = Relationship::new(
            resource.clone(),
            "granted",
            SubjectRef::new(BINDING_TYPE, &id, None)?,
        );
        if cx.exists(&grant)? {
            return Ok(true);
        }
    }
    Ok(false)
}

/// The ids of every binding whose bearer is `principal`.
pub fn bindings_of(cx: &Cx<'_>, principal: &Principal) -> Result<Vec<String>, FacadeError> {
    Ok(cx
        .resources_of(&principal.bearer()?, BINDING_TYPE, "bearer")?
        .into_iter()
        .map(|r| r.resource.object_id)
        .collect())
}

/// The permission that guards the bindings on a resource of `resource_type`: creating or
/// deleting a policy there, and removing an owner binding there by any other path.
/// `delete` on a group (Frontier's rule), `policymanage` on everything else.
pub fn policy_permission(resource_type: &str) -> &'static str {
    if resource_type == GROUP_TYPE {
        "delete"
    } else {
        "policymanage"
    }
}

/// 403 unless the caller may manage the bindings on `resource`.
pub fn require_policy_permission(cx: &Cx<'_>, resource: &ObjectRef) -> Result<(), FacadeError> {
    cx.require(resource, policy_permission(&resource.object_type))
}

/// 403 unless the caller may manage the bindings on `resource`, when `removing` holds an
/// owner binding: no path strips an owner more cheaply than deleting the policy would.
pub fn require_removal(
    cx: &Cx<'_>,
    resource: &ObjectRef,
    removing: &[Binding],
) -> Result<(), FacadeError> {
    if removing.iter().any(|b| is_owner(cx, b)) {
        require_policy_permission(cx, resource)?;
    }
    Ok(())
}

fn is_owner(cx: &Cx<'_>, binding: &Binding) -> bool {
    cx.facade.role(&binding.role).is_some_and(|r| r.owner)
}

/// 400 when removing the bindings `removing` would leave `resource` (an organization or a
/// group) without an owner.
pub fn keep_an_owner(
    cx: &Cx<'_>,
    resource: &ObjectRef,
    removing: &[Binding],
) -> Result<(), FacadeError> {
    if ![ORG_TYPE, GROUP_TYPE].contains(&resource.object_type.as_str()) {
        return Ok(());
    }
    let owners: Vec<Binding> = bindings_on(cx, resource)?
        .into_iter()
        .filter(|b| is_owner(cx, b) && matches!(b.principal, Principal::User(_)))
        .collect();
    let gone = |b: &Binding| removing.iter().any(|r| r.id == b.id);
    let touched = owners.iter().any(gone);
    let left = owners.iter().filter(|b| !gone(b)).count();
    if touched && left == 0 {
        let what = if resource.object_type == ORG_TYPE {
            "organization"
        } else {
            "group"
        };
        return Err(FacadeError::FailedPrecondition(format!(
            "{what} must have at least one owner, consider adding another owner before removing"
        )));
    }
    Ok(())
}

/// Both guards of removing `removing` from `resource`: [`require_removal`] and
/// [`keep_an_owner`].
pub fn guard_removal(
    cx: &Cx<'_>,
    resource: &ObjectRef,
    removing: &[Binding],
) -> Result<(), FacadeError> {
    require_removal(cx, resource, removing)?;
    keep_an_owner(cx, resource, removing)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn binding_ids_are_deterministic_per_triple() {
        let project = ObjectRef::new("app/project", "p1").unwrap_or_else(|e| panic!("{e}"));
        let group = Principal::Group("g1".into());
        let a = binding_id(&project, "app_project_viewer", &group);
        assert_eq!(a, binding_id(&project, "app_project_viewer", &group));
        assert_ne!(a, binding_id(&project, "app_project_owner", &group));
        assert_ne!(
            a,
            binding_id(
                &project,
                "app_project_viewer",
                &Principal::User("g1".into())
            )
        );
    }

    #[test]
    fn principals_parse_with_aliases() {
        assert_eq!(
            Principal::parse("user:u1").ok(),
            Some(Principal::User("u1".into()))
        );
        assert_eq!(
            Principal::parse("app/group:g").ok(),
            Some(Principal::Group("g".into()))
        );
        assert!(Principal::parse("app/project:p").is_err());
        assert!(Principal::parse("nocolon").is_err());
        assert_eq!(policy_permission(GROUP_TYPE), "delete");
        assert_eq!(policy_permission("app/project"), "policymanage");
    }
}
