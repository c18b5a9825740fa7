//! Organizations: `POST|GET /v1beta1/organizations`, `GET|PUT|DELETE .../{id}` (delete
//! cascades to every group and project), `POST|GET .../{id}/users`,
//! `DELETE .../{id}/users/{user_id}` (removes the user's bindings on the organization and on
//! everything in it, and their group memberships there).

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, State};
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

use super::bootstrap::PLATFORM;
use super::fields::{self, NamedBody, UserIdsBody};
use super::policies::{self, Principal};
use super::records::{Keyspace, Tx};
use super::roles;
use super::{groups, new_id, now, object, parse_body, projects, users, Answer, Authed, Cx};
use super::{Facade, FacadeError, USER_TYPE};
use crate::engine::Context;
use crate::filter::RelationshipFilter;
use crate::tuple::{ObjectRef, Relationship, SubjectRef};

/// The organization type.
pub const ORG_TYPE: &str = "app/organization";

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
    /// `enabled`.
    pub state: String,
    /// RFC 3339.
    pub created_at: String,
    /// RFC 3339.
    pub updated_at: String,
}

/// Organizations by id.
pub const ORGS: Keyspace<Organization> = Keyspace::new("org");
/// Organization ids by name (names are unique).
pub const ORG_NAMES: Keyspace<String> = Keyspace::new("org_name");

/// The organization `id`, or 404.
pub fn load(cx: &Cx<'_>, id: &str) -> Result<Organization, FacadeError> {
    ORGS.get(&cx.view, id)?
        .ok_or_else(|| FacadeError::not_found("org"))
}

/// `POST /v1beta1/organizations` `{name, title, metadata}`: the caller becomes owner.
pub async fn create(
    State(facade): State<Arc<Facade>>,
    auth: Authed,
    body: Bytes,
) -> Result<Answer, FacadeError> {
    let body: NamedBody = parse_body(&body)?;
    let name = fields::slug_name(body.name.as_deref(), body.title.as_deref())?;
    let metadata = fields::metadata(body.metadata)?;
    facade
        .write(auth, move |cx, tx| {
            if ORG_NAMES.get(&cx.view, &name)?.is_some() {
                return Err(FacadeError::AlreadyExists("already exist".to_string()));
            }
            let at = now();
            let org = Organization {
                id: new_id(),
                name,
                title: body.title.unwrap_or_default(),
                metadata,
                state: "enabled".to_string(),
                created_at: at.clone(),
                updated_at: at,
            };
            let object = object(ORG_TYPE, &org.id)?;
            tx.touch(Relationship::new(
                object.clone(),
                "platform",
                SubjectRef::new(PLATFORM.0, PLATFORM.1, None)?,
            ));
            let owner =
                roles::find(roles::ORG_OWNER).ok_or_else(|| FacadeError::not_found("role"))?;
            policies::grant(
                cx,
                tx,
                &object,
                owner,
                &Principal::User(cx.caller.user_id.clone()),
                "",
            )?;
            tx.require_absent(&ORG_NAMES, &org.name);
            tx.put(&ORG_NAMES, &org.name, &org.id)?;
            tx.put(&ORGS, &org.id, &org)?;
            Ok(json!({ "organization": org }))
        })
        .await
}

/// `GET /v1beta1/organizations`: the organizations the caller can `get`.
pub async fn list(State(facade): State<Arc<Facade>>, auth: Authed) -> Result<Answer, FacadeError> {
    facade
        .read(auth, |cx| {
            let found = cx
                .view
                .lookup_resources(ORG_TYPE, "get", &cx.me()?, &Context::new())?;
            let mut orgs = Vec::new();
            for (id, permissionship) in found {
                if permissionship == crate::engine::Permissionship::Has {
                    if let Some(org) = ORGS.get(&cx.view, &id)? {
                        orgs.push(org);
                    }
                }
            }
            Ok(json!({ "organizations": orgs }))
        })
        .await
}

/// `GET /v1beta1/organizations/{id}`.
pub async fn get_one(
    State(facade): State<Arc<Facade>>,
    auth: Authed,
    Path(id): Path<String>,
) -> Result<Answer, FacadeError> {
    facade
        .read(auth, move |cx| {
            let org = load(cx, &id)?;
            cx.require(&object(ORG_TYPE, &id)?, "get")?;
            Ok(json!({ "organization": org }))
        })
        .await
}

/// `PUT /v1beta1/organizations/{id}` `{name, title, metadata}`.
pub async fn update(
    State(facade): State<Arc<Facade>>,
    auth: Authed,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Answer, FacadeError> {
    let body: NamedBody = parse_body(&body)?;
    let metadata = fields::metadata(body.metadata)?;
    facade
        .write(auth, move |cx, tx| {
            let mut org = load(cx, &id)?;
            cx.require(&object(ORG_TYPE, &id)?, "update")?;
            let name = match body.name.as_deref() {
                Some(name) => fields::slug_name(Some(name), None)?,
                None => org.name.clone(),
            };
            if name != org.name {
                if ORG_NAMES.get(&cx.view, &name)?.is_some() {
                    return Err(FacadeError::AlreadyExists("already exist".to_string()));
                }
                tx.remove(&ORG_NAMES, &org.name);
                tx.require_absent(&ORG_NAMES, &name);
                tx.put(&ORG_NAMES, &name, &org.id)?;
                org.name = name;
            }
            if let Some(title) = body.title {
                org.title = title;
            }
            org.metadata = metadata;
            org.updated_at = now();
            tx.put(&ORGS, &org.id, &org)?;
            Ok(json!({ "organization": org }))
        })
        .await
}

/// Deletes every tuple whose resource is `resource`.
pub fn delete_all_tuples_of(
    cx: &Cx<'_>,
    tx: &mut Tx,
    resource: &ObjectRef,
) -> Result<(), FacadeError> {
    let filter = RelationshipFilter {
        resource_type: Some(resource.object_type.clone()),
        resource_id: Some(resource.object_id.clone()),
        ..RelationshipFilter::default()
    };
    for rel in cx.view.read_relationships(&filter, None, None)? {
        tx.delete(rel);
    }
    Ok(())
}

/// The organization's cascade: every group, every project, its bindings, its tuples, its
/// records.
fn cascade(cx: &Cx<'_>, tx: &mut Tx, org: &Organization) -> Result<(), FacadeError> {
    for group in groups::in_org(cx, &org.id)? {
        groups::cascade(cx, tx, &group)?;
    }
    for project in projects::in_org(cx, &org.id)? {
        projects::cascade(cx, tx, &project)?;
    }
    super::vault::delete_org(cx, tx, &org.id)?;
    let object = object(ORG_TYPE, &org.id)?;
    for binding in policies::bindings_on(cx, &object)? {
        policies::revoke(cx, tx, &binding.id)?;
    }
    delete_all_tuples_of(cx, tx, &object)?;
    tx.remove(&ORG_NAMES, &org.name);
    tx.remove(&ORGS, &org.id);
    Ok(())
}

/// `DELETE /v1beta1/organizations/{id}`.
pub async fn delete_one(
    State(facade): State<Arc<Facade>>,
    auth: Authed,
    Path(id): Path<String>,
) -> Result<Answer, FacadeError> {
    facade
        .write(auth, move |cx, tx| {
            let org = load(cx, &id)?;
            cx.require(&object(ORG_TYPE, &id)?, "delete")?;
            cascade(cx, tx, &org)?;
            Ok(json!({}))
        })
        .await
}

/// Whether `user` holds any binding on the organization `org` itself.
pub fn is_member(cx: &Cx<'_>, org: &str, user: &str) -> Result<bool, FacadeError> {
    policies::has_binding(
        cx,
        &object(ORG_TYPE, org)?,
        &Principal::User(user.to_string()),
    )
}

/// `POST /v1beta1/organizations/{id}/users` `{"userIds": [...]}`: each user not yet in the
/// organization becomes a viewer; unknown users are 404.
pub async fn add_users(
    State(facade): State<Arc<Facade>>,
    auth: Authed,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Answer, FacadeError> {
    let ids = parse_body::<UserIdsBody>(&body)?.ids()?;
    facade
        .write(auth, move |cx, tx| {
            load(cx, &id)?;
            let object = object(ORG_TYPE, &id)?;
            cx.require(&object, "update")?;
            let viewer =
                roles::find(roles::ORG_VIEWER).ok_or_else(|| FacadeError::not_found("role"))?;
            for user in &ids {
                users::load(cx, user)?;
                if !is_member(cx, &id, user)? {
                    policies::grant(cx, tx, &object, viewer, &Principal::User(user.clone()), "")?;
                }
            }
            Ok(json!({}))
        })
        .await
}

/// `GET /v1beta1/organizations/{id}/users`: users with a binding on the organization.
pub async fn list_users(
    State(facade): State<Arc<Facade>>,
    auth: Authed,
    Path(id): Path<String>,
) -> Result<Answer, FacadeError> {
    facade
        .read(auth, move |cx| {
            load(cx, &id)?;
            let object = object(ORG_TYPE, &id)?;
            cx.require(&object, "get")?;
            let mut seen = Vec::new();
            for binding in policies::bindings_on(cx, &object)? {
                if let Principal::User(user) = binding.principal {
                    if !seen.contains(&user) {
                        seen.push(user);
                    }
                }
            }
            let users = seen
                .iter()
                .map(|u| users::json_of(cx, u))
                .collect::<Result<Vec<_>, _>>()?;
            Ok(json!({ "users": users }))
        })
        .await
}

/// `DELETE /v1beta1/organizations/{id}/users/{user_id}`.
pub async fn remove_user(
    State(facade): State<Arc<Facade>>,
    auth: Authed,
    Path((id, user)): Path<(String, String)>,
) -> Result<Answer, FacadeError> {
    facade
        .write(auth, move |cx, tx| {
            load(cx, &id)?;
            let object = object(ORG_TYPE, &id)?;
            cx.require(&object, "update")?;
            let principal = Principal::User(user.clone());
            let mut doomed = Vec::new();
            for binding in policies::bindings_of(cx, &principal)? {
                let Some(policy) = policies::POLICIES.get(&cx.view, &binding)? else {
                    continue;
                };
                let Ok(resource) = crate::tuple::ObjectRef::parse(&policy.resource) else {
                    continue;
                };
                if policies::org_of(cx, &resource)?.as_deref() == Some(id.as_str()) {
                    doomed.push(binding);
                }
            }
            policies::keep_an_owner(cx, &object, &doomed)?;
            for binding in &doomed {
                policies::revoke(cx, tx, binding)?;
            }
            if let Ok(subject) = SubjectRef::new(USER_TYPE, &user, None) {
                for rel in cx.resources_of(&subject, groups::GROUP_TYPE, "member")? {
                    let in_org = groups::GROUPS
                        .get(&cx.view, &rel.resource.object_id)?
                        .is_some_and(|g| g.org_id == id);
                    if in_org {
                        tx.delete(rel);
                    }
                }
            }
            Ok(json!({}))
        })
        .await
}
