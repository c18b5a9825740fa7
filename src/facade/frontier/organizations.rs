//! Organizations over `/v1beta1`: `POST|GET /organizations`, `GET|PUT|DELETE .../{id}`
//! (delete cascades to everything in it), `POST|GET .../{id}/users`,
//! `DELETE .../{id}/users/{user_id}` (the user leaves: every grant inside ends), and
//! `POST .../{id}/disable|enable` (superusers: suspends every role-derived permission in it).

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use serde::Deserialize;
use serde_json::{json, Value};

use crate::engine::{Context, Permissionship};
use crate::facade::core::bindings::ORG_TYPE;
use crate::facade::core::error::FacadeError;
use crate::facade::core::fields::{self, parse_body, Params, UserIdsBody};
use crate::facade::core::organizations::{self as orgs, NewOrganization, Organization};
use crate::facade::core::roles::{self, Role};
use crate::facade::core::runner::{now, Answer, Authed, Cx};
use crate::facade::core::{users, Facade};

/// `{name, title, metadata, avatar}`.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct OrgBody {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    title: Option<String>,
    #[serde(default)]
    metadata: Option<Value>,
    #[serde(default)]
    avatar: Option<String>,
}

/// The organization as JSON, with its members when `with_members`.
fn org_json(cx: &Cx<'_>, org: &Organization, with_members: bool) -> Result<Value, FacadeError> {
    let mut value = json!(org);
    if let (true, Some(map)) = (with_members, value.as_object_mut()) {
        let members = orgs::members(cx, &org.id)?
            .iter()
            .map(|u| users::json_of(cx, u))
            .collect::<Result<Vec<_>, _>>()?;
        map.insert("users".to_string(), json!(members));
    }
    Ok(value)
}

/// `POST /v1beta1/organizations` `{name, title, metadata, avatar}`: the caller becomes owner.
pub async fn create(
    State(facade): State<Arc<Facade>>,
    auth: Authed,
    body: Bytes,
) -> Result<Answer, FacadeError> {
    let body: OrgBody = parse_body(&body)?;
    let new = NewOrganization {
        name: fields::slug_name(body.name.as_deref(), body.title.as_deref())?,
        title: fields::title(body.title)?,
        metadata: fields::metadata(body.metadata)?,
        avatar: fields::bounded("avatar", body.avatar, fields::MAX_METADATA_BYTES)?,
    };
    facade
        .write(auth, move |cx, tx| {
            let org = orgs::create(cx, tx, new.clone())?;
            Ok(json!({ "organization": org }))
        })
        .await
}

/// `GET /v1beta1/organizations?pageSize=&pageNum=`: the organizations the caller can `get`,
/// by id, with `count` (all of them).
pub async fn list(
    State(facade): State<Arc<Facade>>,
    auth: Authed,
    Query(params): Query<Params>,
) -> Result<Answer, FacadeError> {
    let page = params.page()?;
    facade
        .read(auth, move |cx| {
            let found = cx
                .view
                .lookup_resources(ORG_TYPE, "get", cx.me(), &Context::new())?;
            let ids: Vec<String> = found
                .into_iter()
                .filter(|(_, p)| *p == Permissionship::Has)
                .map(|(id, _)| id)
                .collect();
            let (ids, count) = page.of(ids);
            let mut orgs = Vec::new();
            for id in ids {
                if let Some(org) = orgs::ORGS.get(cx.view, &id)? {
                    orgs.push(org);
                }
            }
            Ok(json!({ "organizations": orgs, "count": count }))
        })
        .await
}

/// `GET /v1beta1/organizations/{id}?withMembers=`.
pub async fn get_one(
    State(facade): State<Arc<Facade>>,
    auth: Authed,
    Path(id): Path<String>,
    Query(params): Query<Params>,
) -> Result<Answer, FacadeError> {
    let with_members = params.flag("withMembers")?;
    facade
        .read(auth, move |cx| {
            let org = orgs::require(cx, &id, "get")?;
            Ok(json!({ "organization": org_json(cx, &org, with_members)? }))
        })
        .await
}

/// `PUT /v1beta1/organizations/{id}` `{name, title, metadata, avatar}`: the fields given are
/// replaced (metadata always).
pub async fn update(
    State(facade): State<Arc<Facade>>,
    auth: Authed,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Answer, FacadeError> {
    let body: OrgBody = parse_body(&body)?;
    let name = body
        .name
        .as_deref()
        .map(|n| fields::slug_name(Some(n), None))
        .transpose()?;
    let title = body.title.map(|t| fields::title(Some(t))).transpose()?;
    let avatar = body
        .avatar
        .map(|a| fields::bounded("avatar", Some(a), fields::MAX_METADATA_BYTES))
        .transpose()?;
    let metadata = fields::metadata(body.metadata)?;
    facade
        .write(auth, move |cx, tx| {
            let mut org = orgs::require(cx, &id, "update")?;
            if let Some(name) = &name {
                orgs::rename(cx, tx, &mut org, name.clone())?;
            }
            if let Some(title) = &title {
                org.title.clone_from(title);
            }
            if let Some(avatar) = &avatar {
                org.avatar.clone_from(avatar);
            }
            org.metadata = metadata.clone();
            org.updated_at = now();
            tx.put(&orgs::ORGS, &org.id, &org)?;
            Ok(json!({ "organization": org }))
        })
        .await
}

/// `DELETE /v1beta1/organizations/{id}`.
pub async fn delete_one(
    State(facade): State<Arc<Facade>>,
    auth: Authed,
    Path(id): Path<String>,
) -> Result<Answer, FacadeError> {
    facade
        .write(auth, move |cx, tx| {
            let org = orgs::require(cx, &id, "delete")?;
            orgs::delete(cx, tx, &org)?;
            Ok(json!({}))
        })
        .await
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
            orgs::require(cx, &id, "update")?;
            for user in &ids {
                users::load(cx, user)?;
                orgs::add_member(cx, tx, &id, user, roles::ORG_VIEWER)?;
            }
            Ok(json!({}))
        })
        .await
}

/// The roles of `user` on the organization, as `GET /roles` shows them.
fn role_pair(cx: &Cx<'_>, org: &str, user: &str) -> Result<Value, FacadeError> {
    let roles: Vec<&Role> = orgs::roles_of(cx, org, user)?
        .iter()
        .filter_map(|b| cx.facade.role(&b.role))
        .collect();
    Ok(json!({ "userId": user, "roles": roles }))
}

/// `GET /v1beta1/organizations/{id}/users?withRoles=&pageSize=&pageNum=`: users with a
/// binding on the organization (and, with `withRoles`, `rolePairs`).
pub async fn list_users(
    State(facade): State<Arc<Facade>>,
    auth: Authed,
    Path(id): Path<String>,
    Query(params): Query<Params>,
) -> Result<Answer, FacadeError> {
    let page = params.page()?;
    let with_roles = params.flag("withRoles")?;
    facade
        .read(auth, move |cx| {
            orgs::require(cx, &id, "get")?;
            let (members, count) = page.of(orgs::members(cx, &id)?);
            let users = members
                .iter()
                .map(|u| users::json_of(cx, u))
                .collect::<Result<Vec<_>, _>>()?;
            let mut body = json!({ "users": users, "count": count });
            if let (true, Some(map)) = (with_roles, body.as_object_mut()) {
                let pairs = members
                    .iter()
                    .map(|u| role_pair(cx, &id, u))
                    .collect::<Result<Vec<_>, _>>()?;
                map.insert("rolePairs".to_string(), json!(pairs));
            }
            Ok(body)
        })
        .await
}

/// `DELETE /v1beta1/organizations/{id}/users/{user_id}`: the user leaves; every grant they
/// hold inside the organization ends in this one write. Needs `update`, and the policy
/// permission for each owner binding it removes; the last owner stays.
pub async fn remove_user(
    State(facade): State<Arc<Facade>>,
    auth: Authed,
    Path((id, user)): Path<(String, String)>,
) -> Result<Answer, FacadeError> {
    facade
        .write(auth, move |cx, tx| {
            orgs::require(cx, &id, "update")?;
            orgs::remove_member(cx, tx, &id, &user)?;
            Ok(json!({}))
        })
        .await
}

async fn set_enabled(
    facade: Arc<Facade>,
    auth: Authed,
    id: String,
    body: &[u8],
    enabled: bool,
) -> Result<Answer, FacadeError> {
    parse_body::<EmptyBody>(body)?;
    facade
        .write(auth, move |cx, tx| {
            cx.require_superuser()?;
            let mut org = orgs::load(cx, &id)?;
            orgs::set_enabled(tx, &mut org, enabled)?;
            Ok(json!({}))
        })
        .await
}

/// A body that must be empty or `{}`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EmptyBody {}

/// `POST /v1beta1/organizations/{id}/disable` (superusers): no member gets any permission
/// through the organization until it is enabled again.
pub async fn disable(
    State(facade): State<Arc<Facade>>,
    auth: Authed,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Answer, FacadeError> {
    set_enabled(facade, auth, id, &body, false).await
}

/// `POST /v1beta1/organizations/{id}/enable` (superusers).
pub async fn enable(
    State(facade): State<Arc<Facade>>,
    auth: Authed,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Answer, FacadeError> {
    set_enabled(facade, auth, id, &body, true).await
}
