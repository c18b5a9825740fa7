//! Policies over `/v1beta1` (the core's role bindings): `POST /v1beta1/policies`,
//! `POST /v1beta1/projects/{id}/policies`, `POST /v1beta1/resources/{id}/policies`,
//! `GET /v1beta1/policies`, `GET|DELETE /v1beta1/policies/{id}`. Creating and deleting a
//! policy needs the resource's policy permission ([`bindings::policy_permission`]).

use std::collections::BTreeSet;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use serde::Deserialize;
use serde_json::{json, Value};

use super::projects::{self, PROJECT_TYPE};
use crate::engine::{Context, Permissionship};
use crate::facade::core::bindings::{
    self, Policy, Principal, BINDING_TYPE, GROUP_TYPE, ORG_TYPE, POLICIES,
};
use crate::facade::core::error::FacadeError;
use crate::facade::core::fields::{self, parse_body, Params};
use crate::facade::core::graph;
use crate::facade::core::organizations as orgs;
use crate::facade::core::records::Tx;
use crate::facade::core::runner::{object, Answer, Authed, Cx};
use crate::facade::core::{users, Facade};
use crate::tuple::ObjectRef;

/// Parses `type:id` with Frontier's aliases (`project:ID`, `organization:ID`, `group:ID`).
fn resource_ref(text: &str) -> Result<ObjectRef, FacadeError> {
    let bad =
        || FacadeError::InvalidArgument(format!("invalid resource `{text}`: expected `type:id`"));
    let (kind, id) = text.split_once(':').ok_or_else(bad)?;
    let kind = match kind {
        "organization" | "org" => ORG_TYPE,
        "project" => PROJECT_TYPE,
        "group" => GROUP_TYPE,
        other => other,
    };
    ObjectRef::new(kind, id).map_err(|_| bad())
}

/// `{roleId, resource, principal, title}`.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct PolicyBody {
    #[serde(alias = "role_id")]
    role_id: String,
    #[serde(default)]
    resource: Option<String>,
    principal: String,
    #[serde(default)]
    title: Option<String>,
}

/// A checked [`PolicyBody`] for the resource of the path (or of the body).
#[derive(Debug, Clone)]
struct PolicyRequest {
    role: String,
    principal: Principal,
    title: String,
}

fn policy_request(bytes: &[u8]) -> Result<(PolicyRequest, Option<ObjectRef>), FacadeError> {
    let body: PolicyBody = parse_body(bytes)?;
    let resource = body.resource.as_deref().map(resource_ref).transpose()?;
    Ok((
        PolicyRequest {
            role: body.role_id,
            principal: Principal::parse(&body.principal)?,
            title: fields::title(body.title)?,
        },
        resource,
    ))
}

/// 400 when the body names another resource than the path.
fn agrees(path: &ObjectRef, body: Option<&ObjectRef>) -> Result<(), FacadeError> {
    match body {
        Some(named) if named != path => Err(FacadeError::InvalidArgument(format!(
            "the body's resource `{named}` is not the path's `{path}`"
        ))),
        _ => Ok(()),
    }
}

/// Validates and writes one policy on `resource`.
fn create_policy(
    cx: &Cx<'_>,
    tx: &mut Tx,
    resource: &ObjectRef,
    request: &PolicyRequest,
) -> Result<Value, FacadeError> {
    if resource.object_type == ORG_TYPE {
        orgs::load(cx, &resource.object_id)?;
    }
    let Some(org) = graph::org_of(cx, resource)? else {
        return Err(FacadeError::NotFound(format!(
            "resource `{resource}` doesn't exist"
        )));
    };
    bindings::require_policy_permission(cx, resource)?;
    let role = cx
        .facade
        .role(&request.role)
        .ok_or_else(|| FacadeError::not_found("role"))?;
    if !role.scopes.contains(&resource.object_type.as_str()) {
        return Err(FacadeError::InvalidArgument(format!(
            "role `{}` cannot be bound on `{}`",
            role.name, resource.object_type
        )));
    }
    match &request.principal {
        Principal::User(id) => {
            users::load(cx, id)?;
        }
        Principal::Group(id) => {
            let in_org = graph::org_of(cx, &object(GROUP_TYPE, id)?)?;
            if in_org.is_none() {
                return Err(FacadeError::not_found("group"));
            }
            if in_org.as_deref() != Some(org.as_str()) {
                return Err(FacadeError::InvalidArgument(format!(
                    "group `{id}` is not in the organization of `{resource}`"
                )));
            }
        }
    }
    let policy = bindings::grant(cx, tx, resource, role, &request.principal, &request.title)?;
    Ok(json!({ "policy": policy }))
}

/// `POST /v1beta1/policies` `{roleId, resource, principal, title}`.
pub async fn create(
    State(facade): State<Arc<Facade>>,
    auth: Authed,
    body: Bytes,
) -> Result<Answer, FacadeError> {
    let (request, resource) = policy_request(&body)?;
    let resource =
        resource.ok_or_else(|| FacadeError::InvalidArgument("resource is required".into()))?;
    facade
        .write(auth, move |cx, tx| {
            create_policy(cx, tx, &resource, &request)
        })
        .await
}

/// `POST /v1beta1/projects/{project_id}/policies` `{roleId, principal, title}` (a `resource`
/// in the body must be this project).
pub async fn create_on_project(
    State(facade): State<Arc<Facade>>,
    auth: Authed,
    Path(project_id): Path<String>,
    body: Bytes,
) -> Result<Answer, FacadeError> {
    let (request, named) = policy_request(&body)?;
    let resource = object(PROJECT_TYPE, &project_id)?;
    agrees(&resource, named.as_ref())?;
    facade
        .write(auth, move |cx, tx| {
            create_policy(cx, tx, &resource, &request)
        })
        .await
}

/// `POST /v1beta1/resources/{resource_id}/policies` `{roleId, principal, title}` (a
/// `resource` in the body must be this one).
pub async fn create_on_resource(
    State(facade): State<Arc<Facade>>,
    auth: Authed,
    Path(resource_id): Path<String>,
    body: Bytes,
) -> Result<Answer, FacadeError> {
    let (request, named) = policy_request(&body)?;
    facade
        .write(auth, move |cx, tx| {
            let record = projects::load_resource(cx, &resource_id)?;
            let resource = object(&record.namespace, &record.id)?;
            agrees(&resource, named.as_ref())?;
            create_policy(cx, tx, &resource, &request)
        })
        .await
}

/// The resource a `GET /v1beta1/policies` names, if any.
fn resource_filter(params: &Params) -> Result<Option<ObjectRef>, FacadeError> {
    let mut resource = None;
    for (kind, name) in [
        (ORG_TYPE, "orgId"),
        (PROJECT_TYPE, "projectId"),
        (GROUP_TYPE, "groupId"),
    ] {
        if let Some(id) = params.get(name) {
            resource = Some(object(kind, id)?);
        }
    }
    if let Some(text) = params.get("resource") {
        resource = Some(resource_ref(text)?);
    }
    Ok(resource)
}

/// The ids of the bindings the caller may see without naming a resource: those it bears,
/// and those on every resource where it holds the policy permission (one lookup per type
/// that can be granted roles, never one check per stored policy).
fn visible_bindings(cx: &Cx<'_>) -> Result<BTreeSet<String>, FacadeError> {
    let mut ids: BTreeSet<String> = cx
        .resources_of(cx.me(), BINDING_TYPE, "bearer")?
        .into_iter()
        .map(|r| r.resource.object_id)
        .collect();
    let schema = cx.view.schema().clone();
    for (name, definition) in &schema.definitions {
        let permission = bindings::policy_permission(name);
        if !definition.relations.contains_key("granted") || definition.member(permission).is_none()
        {
            continue;
        }
        let found = cx
            .view
            .lookup_resources(name, permission, cx.me(), &Context::new())?;
        for (id, permissionship) in found {
            if permissionship == Permissionship::Has {
                for grant in cx.subjects(&object(name, &id)?, "granted")? {
                    ids.insert(grant.subject.object.object_id);
                }
            }
        }
    }
    Ok(ids)
}

/// `GET /v1beta1/policies?orgId|projectId|groupId|resource=&userId|principal=&roleId=&pageSize=&pageNum=`:
/// with a resource filter the caller needs the policy permission on it (403 otherwise);
/// without one, the policies the caller bears or may manage.
pub async fn list(
    State(facade): State<Arc<Facade>>,
    auth: Authed,
    Query(params): Query<Params>,
) -> Result<Answer, FacadeError> {
    let page = params.page()?;
    let resource = resource_filter(&params)?;
    let principal = match (params.get("userId"), params.get("principal")) {
        (Some(user), _) => Some(Principal::User(user.to_string())),
        (None, Some(text)) => Some(Principal::parse(text)?),
        (None, None) => None,
    };
    let role = params.get("roleId").map(str::to_string);
    facade
        .read(auth, move |cx| {
            let ids: BTreeSet<String> = match &resource {
                Some(resource) => {
                    bindings::require_policy_permission(cx, resource)?;
                    cx.subjects(resource, "granted")?
                        .into_iter()
                        .map(|g| g.subject.object.object_id)
                        .collect()
                }
                None => visible_bindings(cx)?,
            };
            let role = role.as_deref().map(|r| {
                cx.facade
                    .role(r)
                    .map_or_else(|| r.to_string(), |known| known.name.to_string())
            });
            let mut policies: Vec<Policy> = Vec::new();
            for id in ids {
                let Some(policy) = POLICIES.get(cx.view, &id)? else {
                    continue;
                };
                let wanted = principal
                    .as_ref()
                    .is_none_or(|p| policy.principal == p.text())
                    && role.as_ref().is_none_or(|r| policy.role_id == *r);
                if wanted {
                    policies.push(policy);
                }
            }
            let (policies, count) = page.of(policies);
            Ok(json!({ "policies": policies, "count": count }))
        })
        .await
}

fn load(cx: &Cx<'_>, id: &str) -> Result<Policy, FacadeError> {
    POLICIES
        .get(cx.view, id)?
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
            if policy.principal != Principal::User(cx.user_id()?.to_string()).text() {
                bindings::require_policy_permission(cx, &resource_ref(&policy.resource)?)?;
            }
            Ok(json!({ "policy": policy }))
        })
        .await
}

/// `DELETE /v1beta1/policies/{id}`: the policy permission on its resource; the last owner of
/// a group or an organization cannot be removed.
pub async fn delete_one(
    State(facade): State<Arc<Facade>>,
    auth: Authed,
    Path(id): Path<String>,
) -> Result<Answer, FacadeError> {
    facade
        .write(auth, move |cx, tx| {
            let policy = load(cx, &id)?;
            let resource = resource_ref(&policy.resource)?;
            bindings::require_policy_permission(cx, &resource)?;
            let removing: Vec<_> = bindings::binding(cx, &id)?.into_iter().collect();
            bindings::guard_removal(cx, &resource, &removing)?;
            bindings::revoke(cx, tx, &id)?;
            Ok(json!({}))
        })
        .await
}
