//! Policies = role bindings: `(role, resource, principal)` as three tuples
//! (`rb#bearer@principal`, `rb#role@app/role:R`, `resource#granted@rb`) plus a record for
//! listing. The binding id is deterministic (UUID v5 of `resource|role|principal`), so
//! granting the same thing twice touches the same tuples. Every role assignment of the
//! facade (owners, members, policies) goes through [`grant`] and [`revoke`].
//!
//! Endpoints: `POST /v1beta1/policies`, `POST /v1beta1/projects/{id}/policies`,
//! `POST /v1beta1/resources/{id}/policies`, `GET /v1beta1/policies`,
//! `GET|DELETE /v1beta1/policies/{id}`.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

use super::records::{Keyspace, Tx};
use super::roles::{self, Role, ROLE_TYPE};
use super::{
    groups, now, object, organizations, parse_body, projects, users, Answer, Authed, Cx, Facade,
    FacadeError, USER_TYPE,
};
use crate::filter::{RelationshipFilter, SubjectFilter};
use crate::tuple::{ObjectRef, Relationship, SubjectRef};

/// The type of role bindings.
pub const BINDING_TYPE: &str = "app/rolebinding";

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
            Self::Group(id) => format!("{}:{id}", groups::GROUP_TYPE),
        }
    }

    /// The bearer subject: the user, or the group's `active_member` set.
    pub fn bearer(&self) -> Result<SubjectRef, FacadeError> {
        Ok(match self {
            Self::User(id) => SubjectRef::new(USER_TYPE, id, None)?,
            Self::Group(id) => SubjectRef::new(groups::GROUP_TYPE, id, Some("active_member"))?,
        })
    }

    fn from_bearer(subject: &SubjectRef) -> Option<Self> {
        let id = subject.object.object_id.clone();
        match (
            subject.object.object_type.as_str(),
            subject.relation.as_deref(),
        ) {
            (USER_TYPE, None) => Some(Self::User(id)),
            (groups::GROUP_TYPE, Some("active_member")) => Some(Self::Group(id)),
            _ => None,
        }
    }
}

/// One binding found on a resource.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Binding {
    /// The binding id.
    pub id: String,
    /// The role's name.
    pub role: String,
    /// Who.
    pub principal: Principal,
}

/// The deterministic binding id of `(resource, role, principal)`.
pub fn binding_id(resource: &ObjectRef, role: &str, principal: &Principal) -> String {
    let name = format!("{resource}|{role}|{}", principal.text());
    uuid::Uuid::new_v5(&BINDING_NAMESPACE, name.as_bytes()).to_string()
}

/// Binds `role` on `resource` to `principal` (three tuples and the record).
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
        binding.clone(),
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
        .get(&cx.view, &id)?
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

/// Removes a binding: every tuple on it, the grant pointing at it, and its record.
pub fn revoke(cx: &Cx<'_>, tx: &mut Tx, id: &str) -> Result<(), FacadeError> {
    let binding = object(BINDING_TYPE, id)?;
    for relation in ["bearer", "role"] {
        for rel in cx.subjects(&binding, relation)? {
            tx.delete(rel);
        }
    }
    let grants = RelationshipFilter {
        relation: Some("granted".to_string()),
        subject: Some(SubjectFilter {
            subject_type: BINDING_TYPE.to_string(),
            subject_id: Some(id.to_string()),
            relation: Some(None),
        }),
        ..RelationshipFilter::default()
    };
    for rel in cx.view.read_relationships(&grants, None, None)? {
        tx.delete(rel);
    }
    tx.remove(&POLICIES, id);
    Ok(())
}

/// Every binding granted on `resource`.
pub fn bindings_on(cx: &Cx<'_>, resource: &ObjectRef) -> Result<Vec<Binding>, FacadeError> {
    let mut out = Vec::new();
    for grant in cx.subjects(resource, "granted")? {
        let id = grant.subject.object.object_id;
        let binding = object(BINDING_TYPE, &id)?;
        let role = cx
            .subjects(&binding, "role")?
            .into_iter()
            .next()
            .map(|r| r.subject.object.object_id);
        let principal = cx
            .subjects(&binding, "bearer")?
            .iter()
            .find_map(|r| Principal::from_bearer(&r.subject));
        if let (Some(role), Some(principal)) = (role, principal) {
            out.push(Binding {
                id,
                role,
                principal,
            });
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
    for role in roles::ROLES {
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

/// The organization `resource` belongs to (itself for an organization), if it exists.
pub fn org_of(cx: &Cx<'_>, resource: &ObjectRef) -> Result<Option<String>, FacadeError> {
    let id = &resource.object_id;
    Ok(match resource.object_type.as_str() {
        organizations::ORG_TYPE => organizations::ORGS.get(&cx.view, id)?.map(|o| o.id),
        groups::GROUP_TYPE => groups::GROUPS.get(&cx.view, id)?.map(|g| g.org_id),
        projects::PROJECT_TYPE => projects::PROJECTS.get(&cx.view, id)?.map(|p| p.org_id),
        namespace => projects::RESOURCES
            .get(&cx.view, id)?
            .filter(|r| r.namespace == namespace)
            .map(|r| r.org_id),
    })
}

/// 400 when removing the bindings `removing` would leave `resource` (a group or an
/// organization) without an owner.
pub fn keep_an_owner(
    cx: &Cx<'_>,
    resource: &ObjectRef,
    removing: &[String],
) -> Result<(), FacadeError> {
    let (owner_role, what) = match resource.object_type.as_str() {
        groups::GROUP_TYPE => (roles::GROUP_OWNER, "group"),
        organizations::ORG_TYPE => (roles::ORG_OWNER, "organization"),
        _ => return Ok(()),
    };
    let owners: Vec<Binding> = bindings_on(cx, resource)?
        .into_iter()
        .filter(|b| b.role == owner_role && matches!(b.principal, Principal::User(_)))
        .collect();
    let touched = owners.iter().any(|b| removing.contains(&b.id));
    let left = owners.iter().filter(|b| !removing.contains(&b.id)).count();
    if touched && left == 0 {
        return Err(FacadeError::FailedPrecondition(format!(
            "{what} must have at least one owner, consider adding another owner before removing"
        )));
    }
    Ok(())
}

/// The check that guards policy changes on `resource`: `delete` on a group, `policymanage`
/// on everything else.
fn guard(cx: &Cx<'_>, resource: &ObjectRef) -> Result<(), FacadeError> {
    if resource.object_type == groups::GROUP_TYPE {
        cx.require(resource, "delete")
    } else {
        cx.require(resource, "policymanage")
    }
}

/// Parses `type:id` with Frontier's aliases (`project:ID`, `organization:ID`, `group:ID`).
fn resource_ref(text: &str) -> Result<ObjectRef, FacadeError> {
    let bad =
        || FacadeError::InvalidArgument(format!("invalid resource `{text}`: expected `type:id`"));
    let (kind, id) = text.split_once(':').ok_or_else(bad)?;
    let kind = match kind {
        "organization" | "org" => organizations::ORG_TYPE,
        "project" => projects::PROJECT_TYPE,
        "group" => groups::GROUP_TYPE,
        other => other,
    };
    ObjectRef::new(kind, id).map_err(|_| bad())
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct PolicyBody {
    #[serde(alias = "role_id")]
    role_id: String,
    #[serde(default)]
    resource: Option<String>,
    principal: String,
    #[serde(default)]
    title: Option<String>,
}

/// Validates and writes one policy on `resource`.
fn create_policy(
    cx: &Cx<'_>,
    tx: &mut Tx,
    resource: &ObjectRef,
    body: PolicyBody,
) -> Result<Value, FacadeError> {
    let Some(org) = org_of(cx, resource)? else {
        return Err(FacadeError::NotFound(format!(
            "resource `{resource}` doesn't exist"
        )));
    };
    guard(cx, resource)?;
    let role = roles::find(&body.role_id).ok_or_else(|| FacadeError::not_found("role"))?;
    if !role.scopes.contains(&resource.object_type.as_str()) {
        return Err(FacadeError::InvalidArgument(format!(
            "role `{}` cannot be bound on `{}`",
            role.name, resource.object_type
        )));
    }
    let principal = Principal::parse(&body.principal)?;
    match &principal {
        Principal::User(id) => {
            users::load(cx, id)?;
        }
        Principal::Group(id) => {
            let group = groups::GROUPS
                .get(&cx.view, id)?
                .ok_or_else(|| FacadeError::not_found("group"))?;
            if group.org_id != org {
                return Err(FacadeError::InvalidArgument(format!(
                    "group `{id}` is not in the organization of `{resource}`"
                )));
            }
        }
    }
    let policy = grant(
        cx,
        tx,
        resource,
        role,
        &principal,
        body.title.as_deref().unwrap_or_default(),
    )?;
    Ok(json!({ "policy": policy }))
}

/// `POST /v1beta1/policies` `{roleId, resource, principal, title}`.
pub async fn create(
    State(facade): State<Arc<Facade>>,
    auth: Authed,
    body: Bytes,
) -> Result<Answer, FacadeError> {
    let body: PolicyBody = parse_body(&body)?;
    let resource = resource_ref(body.resource.as_deref().unwrap_or_default())?;
    facade
        .write(auth, move |cx, tx| create_policy(cx, tx, &resource, body))
        .await
}

/// `POST /v1beta1/projects/{project_id}/policies` `{roleId, principal, title}`.
pub async fn create_on_project(
    State(facade): State<Arc<Facade>>,
    auth: Authed,
    Path(project_id): Path<String>,
    body: Bytes,
) -> Result<Answer, FacadeError> {
    let body: PolicyBody = parse_body(&body)?;
    let resource = object(projects::PROJECT_TYPE, &project_id)?;
    facade
        .write(auth, move |cx, tx| create_policy(cx, tx, &resource, body))
        .await
}

/// `POST /v1beta1/resources/{resource_id}/policies` `{roleId, principal, title}`.
pub async fn create_on_resource(
    State(facade): State<Arc<Facade>>,
    auth: Authed,
    Path(resource_id): Path<String>,
    body: Bytes,
) -> Result<Answer, FacadeError> {
    let body: PolicyBody = parse_body(&body)?;
    facade
        .write(auth, move |cx, tx| {
            let record = projects::RESOURCES
                .get(&cx.view, &resource_id)?
                .ok_or_else(|| FacadeError::not_found("resource"))?;
            let resource = object(&record.namespace, &record.id)?;
            create_policy(cx, tx, &resource, body)
        })
        .await
}

/// Filters of `GET /v1beta1/policies`.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PolicyQuery {
    #[serde(default, alias = "org_id")]
    org_id: Option<String>,
    #[serde(default, alias = "project_id")]
    project_id: Option<String>,
    #[serde(default, alias = "group_id")]
    group_id: Option<String>,
    #[serde(default, alias = "user_id")]
    user_id: Option<String>,
    #[serde(default, alias = "role_id")]
    role_id: Option<String>,
    #[serde(default)]
    resource: Option<String>,
    #[serde(default)]
    principal: Option<String>,
}

/// `GET /v1beta1/policies?orgId|projectId|groupId|resource=...&userId|principal=...&roleId=`:
/// with a resource filter the caller needs the policy permission on it (403 otherwise);
/// without one, only policies the caller may manage or that name the caller are listed.
pub async fn list(
    State(facade): State<Arc<Facade>>,
    auth: Authed,
    Query(query): Query<PolicyQuery>,
) -> Result<Answer, FacadeError> {
    let mut resource = None;
    for (kind, id) in [
        (organizations::ORG_TYPE, &query.org_id),
        (projects::PROJECT_TYPE, &query.project_id),
        (groups::GROUP_TYPE, &query.group_id),
    ] {
        if let Some(id) = id {
            resource = Some(object(kind, id)?);
        }
    }
    if let Some(text) = &query.resource {
        resource = Some(resource_ref(text)?);
    }
    let principal = match (&query.user_id, &query.principal) {
        (Some(user), _) => Some(Principal::User(user.clone())),
        (None, Some(text)) => Some(Principal::parse(text)?),
        (None, None) => None,
    };
    let role = query
        .role_id
        .map(|r| roles::find(&r).map_or(r, |role| role.name.to_string()));
    facade
        .read(auth, move |cx| {
            if let Some(resource) = &resource {
                guard(cx, resource)?;
            }
            let me = Principal::User(cx.caller.user_id.clone()).text();
            let mut policies = Vec::new();
            for (_, policy) in POLICIES.scan(&cx.view, "")? {
                let wanted = resource
                    .as_ref()
                    .is_none_or(|r| policy.resource == r.to_string())
                    && principal
                        .as_ref()
                        .is_none_or(|p| policy.principal == p.text())
                    && role.as_ref().is_none_or(|r| policy.role_id == *r);
                if !wanted {
                    continue;
                }
                let visible = resource.is_some()
                    || policy.principal == me
                    || guard(cx, &resource_ref(&policy.resource)?).is_ok();
                if visible {
                    policies.push(policy);
                }
            }
            Ok(json!({ "policies": policies }))
        })
        .await
}

fn load(cx: &Cx<'_>, id: &str) -> Result<Policy, FacadeError> {
    POLICIES
        .get(&cx.view, id)?
        .ok_or_else(|| FacadeError::not_found("policy"))
}

/// `GET /v1beta1/policies/{id}`: for the policy's principal or whoever may manage it.
pub async fn get_one(
    State(facade): State<Arc<Facade>>,
    auth: Authed,
    Path(id): Path<String>,
) -> Result<Answer, FacadeError> {
    facade
        .read(auth, move |cx| {
            let policy = load(cx, &id)?;
            if policy.principal != Principal::User(cx.caller.user_id.clone()).text() {
                guard(cx, &resource_ref(&policy.resource)?)?;
            }
            Ok(json!({ "policy": policy }))
        })
        .await
}

/// `DELETE /v1beta1/policies/{id}`: guarded like creation; the last owner of a group or an
/// organization cannot be removed.
pub async fn delete_one(
    State(facade): State<Arc<Facade>>,
    auth: Authed,
    Path(id): Path<String>,
) -> Result<Answer, FacadeError> {
    facade
        .write(auth, move |cx, tx| {
            let policy = load(cx, &id)?;
            let resource = resource_ref(&policy.resource)?;
            guard(cx, &resource)?;
            keep_an_owner(cx, &resource, std::slice::from_ref(&id))?;
            revoke(cx, tx, &id)?;
            Ok(json!({}))
        })
        .await
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
        assert_eq!(
            resource_ref("project:p1")
                .ok()
                .map(|r| r.to_string())
                .as_deref(),
            Some("app/project:p1")
        );
    }
}
