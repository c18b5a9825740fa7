//! Groups inside organizations: create (the caller becomes owner and member), list per
//! organization with a state filter, paging, `memberCount` and `withMembers`, the
//! superusers' list, get, update, delete (cascading), members (idempotent add, list with
//! `withRoles`, remove), the role filter `relations`, and `disable` / `enable`, which write
//! and remove the `suspended` wildcards so access granted through the group stops and comes
//! back at once.

use std::collections::BTreeSet;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

use super::organizations::EmptyBody;
use super::{GROUP_MEMBER, GROUP_OWNER};
use crate::facade::core::bindings::{self, Principal, GROUP_TYPE, ORG_TYPE};
use crate::facade::core::error::FacadeError;
use crate::facade::core::fields::{self, parse_body, Params, UserIdsBody};
use crate::facade::core::graph;
use crate::facade::core::organizations as orgs;
use crate::facade::core::records::{Keyspace, Tx};
use crate::facade::core::roles::{Role, PRINCIPAL_TYPES};
use crate::facade::core::runner::{new_id, now, object, Answer, Authed, Cx, USER_TYPE};
use crate::facade::core::{users, Facade};
use crate::transaction::UpdateOp;
use crate::tuple::{Relationship, SubjectRef};

/// A group record.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Group {
    /// Id (UUID).
    pub id: String,
    /// Slug, unique in its organization.
    pub name: String,
    /// Title.
    pub title: String,
    /// The organization.
    pub org_id: String,
    /// Metadata object.
    pub metadata: Map<String, Value>,
    /// `enabled` or `disabled`.
    pub state: String,
    /// RFC 3339.
    pub created_at: String,
    /// RFC 3339.
    pub updated_at: String,
}

/// Groups by id.
pub const GROUPS: Keyspace<Group> = Keyspace::new("group");
/// Group ids by `{org_id}/{name}`.
pub const GROUP_NAMES: Keyspace<String> = Keyspace::new("group_name");
/// Group ids by `{org_id}/{group_id}` (the groups of an organization).
pub const ORG_GROUPS: Keyspace<String> = Keyspace::new("org_group");

fn name_key(org: &str, name: &str) -> String {
    format!("{org}/{name}")
}

/// `{name, title, metadata}`.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct GroupBody {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    title: Option<String>,
    #[serde(default)]
    metadata: Option<Value>,
}

/// A checked [`GroupBody`].
#[derive(Debug, Clone)]
struct GroupFields {
    name: String,
    title: String,
    metadata: Map<String, Value>,
}

fn group_fields(bytes: &[u8]) -> Result<GroupFields, FacadeError> {
    let body: GroupBody = parse_body(bytes)?;
    Ok(GroupFields {
        name: fields::slug_name(body.name.as_deref(), body.title.as_deref())?,
        title: fields::title(body.title)?,
        metadata: fields::metadata(body.metadata)?,
    })
}

/// Every group of `org`.
pub fn in_org(cx: &Cx<'_>, org: &str) -> Result<Vec<Group>, FacadeError> {
    let mut out = Vec::new();
    for (_, id) in ORG_GROUPS.scan(cx.view, &format!("{org}/"))? {
        if let Some(group) = GROUPS.get(cx.view, &id)? {
            out.push(group);
        }
    }
    Ok(out)
}

/// Stages the removal of a group's records.
pub fn remove_records(tx: &mut Tx, group: &Group) {
    tx.remove(&GROUP_NAMES, &name_key(&group.org_id, &group.name));
    tx.remove(&ORG_GROUPS, &name_key(&group.org_id, &group.id));
    tx.remove(&GROUPS, &group.id);
}

/// The group `id` of the organization `org` when the caller has `permission` on it: 404
/// when the organization or the group does not exist, or the group belongs to another
/// organization; 403 without the permission.
fn require(cx: &Cx<'_>, org: &str, id: &str, permission: &str) -> Result<Group, FacadeError> {
    orgs::load(cx, org)?;
    let group = GROUPS
        .get(cx.view, id)?
        .filter(|g| g.org_id == org)
        .ok_or_else(|| FacadeError::not_found("group"))?;
    cx.require(&object(GROUP_TYPE, id)?, permission)?;
    Ok(group)
}

/// The user members of group `id` once `tx` is applied, in id order.
fn members_after(cx: &Cx<'_>, tx: &Tx, id: &str) -> Result<Vec<String>, FacadeError> {
    let resource = object(GROUP_TYPE, id)?;
    let is_user = |r: &Relationship| r.subject.object.object_type == USER_TYPE;
    let mut members: BTreeSet<String> = cx
        .subjects(&resource, "member")?
        .into_iter()
        .filter(is_user)
        .map(|r| r.subject.object.object_id)
        .collect();
    for update in tx.updates() {
        let rel = &update.relationship;
        if rel.resource == resource && rel.relation == "member" && is_user(rel) {
            let user = rel.subject.object.object_id.clone();
            if update.op == UpdateOp::Delete {
                members.remove(&user);
            } else {
                members.insert(user);
            }
        }
    }
    Ok(members.into_iter().collect())
}

/// The group as JSON with its `memberCount` as of the end of the call, and its `users` when
/// `with_members`.
fn group_json(
    cx: &Cx<'_>,
    tx: &Tx,
    group: &Group,
    with_members: bool,
) -> Result<Value, FacadeError> {
    let members = members_after(cx, tx, &group.id)?;
    let mut value = json!(group);
    if let Some(map) = value.as_object_mut() {
        map.insert("memberCount".to_string(), json!(members.len()));
        if with_members {
            let users = members
                .iter()
                .map(|u| users::json_of(cx, u))
                .collect::<Result<Vec<_>, _>>()?;
            map.insert("users".to_string(), json!(users));
        }
    }
    Ok(value)
}

/// `POST /v1beta1/organizations/{org_id}/groups` `{name, title, metadata}`.
pub async fn create(
    State(facade): State<Arc<Facade>>,
    auth: Authed,
    Path(org): Path<String>,
    body: Bytes,
) -> Result<Answer, FacadeError> {
    let input = group_fields(&body)?;
    facade
        .write(auth, move |cx, tx| {
            orgs::require(cx, &org, "groupcreate")?;
            let key = name_key(&org, &input.name);
            if GROUP_NAMES.get(cx.view, &key)?.is_some() {
                return Err(FacadeError::AlreadyExists("already exist".to_string()));
            }
            let at = now();
            let group = Group {
                id: new_id(),
                name: input.name.clone(),
                title: input.title.clone(),
                org_id: org.clone(),
                metadata: input.metadata.clone(),
                state: "enabled".to_string(),
                created_at: at.clone(),
                updated_at: at,
            };
            let resource = object(GROUP_TYPE, &group.id)?;
            tx.touch(Relationship::new(
                resource.clone(),
                "org",
                SubjectRef::new(ORG_TYPE, &org, None)?,
            ));
            let owner = cx.facade.known_role(GROUP_OWNER)?;
            let me = Principal::User(cx.user_id()?.to_string());
            bindings::grant(cx, tx, &resource, owner, &me, "")?;
            tx.touch(Relationship::new(resource, "member", cx.me().clone()));
            tx.require_absent(&GROUP_NAMES, &key);
            tx.put(&GROUP_NAMES, &key, &group.id)?;
            tx.put(&ORG_GROUPS, &name_key(&org, &group.id), &group.id)?;
            tx.put(&GROUPS, &group.id, &group)?;
            Ok(json!({ "group": group_json(cx, tx, &group, false)? }))
        })
        .await
}

/// Which states a `state` filter keeps: none given = enabled only (as Frontier).
fn state_filter(params: &Params) -> Result<Option<String>, FacadeError> {
    match params.get("state").unwrap_or("enabled") {
        "enabled" => Ok(Some("enabled".to_string())),
        "disabled" => Ok(Some("disabled".to_string())),
        "all" => Ok(None),
        other => Err(FacadeError::InvalidArgument(format!(
            "invalid state `{other}`: expected `enabled`, `disabled` or `all`"
        ))),
    }
}

/// One page of `groups` (filtered by state) as JSON, with `count`.
fn group_page(cx: &Cx<'_>, groups: Vec<Group>, params: &Params) -> Result<Value, FacadeError> {
    let state = state_filter(params)?;
    let with_members = params.flag("withMembers")?;
    let kept: Vec<Group> = groups
        .into_iter()
        .filter(|g| state.as_ref().is_none_or(|s| g.state == *s))
        .collect();
    let (page, count) = params.page()?.of(kept);
    let empty = Tx::default();
    let groups = page
        .iter()
        .map(|g| group_json(cx, &empty, g, with_members))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(json!({ "groups": groups, "count": count }))
}

/// `GET /v1beta1/organizations/{org_id}/groups?state=&withMembers=&pageSize=&pageNum=`.
pub async fn list(
    State(facade): State<Arc<Facade>>,
    auth: Authed,
    Path(org): Path<String>,
    Query(params): Query<Params>,
) -> Result<Answer, FacadeError> {
    params.page()?;
    facade
        .read(auth, move |cx| {
            orgs::require(cx, &org, "grouplist")?;
            group_page(cx, in_org(cx, &org)?, &params)
        })
        .await
}

/// `GET /v1beta1/admin/groups?orgId=&state=&pageSize=&pageNum=`: superusers only.
pub async fn admin_list(
    State(facade): State<Arc<Facade>>,
    auth: Authed,
    Query(params): Query<Params>,
) -> Result<Answer, FacadeError> {
    params.page()?;
    facade
        .read(auth, move |cx| {
            cx.require_superuser()?;
            let groups = match params.get("orgId") {
                Some(org) => in_org(cx, org)?,
                None => GROUPS
                    .scan(cx.view, "")?
                    .into_iter()
                    .map(|(_, g)| g)
                    .collect(),
            };
            group_page(cx, groups, &params)
        })
        .await
}

/// `GET /v1beta1/organizations/{org_id}/groups/{id}?withMembers=` (also for a disabled
/// group).
pub async fn get_one(
    State(facade): State<Arc<Facade>>,
    auth: Authed,
    Path((org, id)): Path<(String, String)>,
    Query(params): Query<Params>,
) -> Result<Answer, FacadeError> {
    let with_members = params.flag("withMembers")?;
    facade
        .read(auth, move |cx| {
            let group = require(cx, &org, &id, "get")?;
            let value = group_json(cx, &Tx::default(), &group, with_members)?;
            Ok(json!({ "group": value }))
        })
        .await
}

/// `PUT /v1beta1/organizations/{org_id}/groups/{id}` `{name, title, metadata}`: a full
/// replace of the three fields (the organization never changes).
pub async fn update(
    State(facade): State<Arc<Facade>>,
    auth: Authed,
    Path((org, id)): Path<(String, String)>,
    body: Bytes,
) -> Result<Answer, FacadeError> {
    let input = group_fields(&body)?;
    facade
        .write(auth, move |cx, tx| {
            let mut group = require(cx, &org, &id, "update")?;
            if input.name != group.name {
                let key = name_key(&org, &input.name);
                if GROUP_NAMES.get(cx.view, &key)?.is_some() {
                    return Err(FacadeError::AlreadyExists("already exist".to_string()));
                }
                tx.remove(&GROUP_NAMES, &name_key(&org, &group.name));
                tx.require_absent(&GROUP_NAMES, &key);
                tx.put(&GROUP_NAMES, &key, &group.id)?;
                group.name.clone_from(&input.name);
            }
            group.title.clone_from(&input.title);
            group.metadata.clone_from(&input.metadata);
            group.updated_at = now();
            tx.put(&GROUPS, &group.id, &group)?;
            Ok(json!({ "group": group_json(cx, tx, &group, false)? }))
        })
        .await
}

/// `DELETE /v1beta1/organizations/{org_id}/groups/{id}`: the group's tuples, every binding
/// on it or borne by it, every grant to it, its records.
pub async fn delete_one(
    State(facade): State<Arc<Facade>>,
    auth: Authed,
    Path((org, id)): Path<(String, String)>,
) -> Result<Answer, FacadeError> {
    facade
        .write(auth, move |cx, tx| {
            let group = require(cx, &org, &id, "delete")?;
            graph::forget(cx, tx, &object(GROUP_TYPE, &id)?)?;
            remove_records(tx, &group);
            Ok(json!({}))
        })
        .await
}

/// `POST /v1beta1/organizations/{org_id}/groups/{id}/users` `{"userIds": [...]}`:
/// idempotent; each user must exist (404) and belong to the organization (400); the group
/// must be enabled (400).
pub async fn add_users(
    State(facade): State<Arc<Facade>>,
    auth: Authed,
    Path((org, id)): Path<(String, String)>,
    body: Bytes,
) -> Result<Answer, FacadeError> {
    let ids = parse_body::<UserIdsBody>(&body)?.ids()?;
    facade
        .write(auth, move |cx, tx| {
            let group = require(cx, &org, &id, "update")?;
            let resource = object(GROUP_TYPE, &id)?;
            if group.state != "enabled" {
                return Err(FacadeError::FailedPrecondition(
                    "group is disabled; enable it before adding members".to_string(),
                ));
            }
            let member_role = cx.facade.known_role(GROUP_MEMBER)?;
            for user in &ids {
                users::load(cx, user)?;
                if !orgs::is_member(cx, &org, user)? {
                    return Err(FacadeError::FailedPrecondition(format!(
                        "user `{user}` is not a member of the organization"
                    )));
                }
                let principal = Principal::User(user.clone());
                if !bindings::has_binding(cx, &resource, &principal)? {
                    bindings::grant(cx, tx, &resource, member_role, &principal, "")?;
                }
                let member = Relationship::new(
                    resource.clone(),
                    "member",
                    SubjectRef::new(USER_TYPE, user, None)?,
                );
                if !cx.exists(&member)? {
                    tx.touch(member);
                }
            }
            Ok(json!({}))
        })
        .await
}

/// `GET /v1beta1/organizations/{org_id}/groups/{id}/users?withRoles=&pageSize=&pageNum=`.
pub async fn list_users(
    State(facade): State<Arc<Facade>>,
    auth: Authed,
    Path((org, id)): Path<(String, String)>,
    Query(params): Query<Params>,
) -> Result<Answer, FacadeError> {
    let page = params.page()?;
    let with_roles = params.flag("withRoles")?;
    facade
        .read(auth, move |cx| {
            require(cx, &org, &id, "get")?;
            let (members, count) = page.of(members_after(cx, &Tx::default(), &id)?);
            let users = members
                .iter()
                .map(|u| users::json_of(cx, u))
                .collect::<Result<Vec<_>, _>>()?;
            let mut body = json!({ "users": users, "count": count });
            if let (true, Some(map)) = (with_roles, body.as_object_mut()) {
                let bound = bindings::bindings_on(cx, &object(GROUP_TYPE, &id)?)?;
                let pairs: Vec<Value> = members
                    .iter()
                    .map(|user| {
                        let principal = Principal::User(user.clone());
                        let roles: Vec<&Role> = bound
                            .iter()
                            .filter(|b| b.principal == principal)
                            .filter_map(|b| cx.facade.role(&b.role))
                            .collect();
                        json!({ "userId": user, "roles": roles })
                    })
                    .collect();
                map.insert("rolePairs".to_string(), json!(pairs));
            }
            Ok(body)
        })
        .await
}

/// `DELETE /v1beta1/organizations/{org_id}/groups/{id}/users/{user_id}`: removes the user's
/// bindings on the group and the membership. Needs `update`, and `delete` (the group's
/// policy permission) when the user is an owner; the last owner stays (400); a non-member is
/// a no-op.
pub async fn remove_user(
    State(facade): State<Arc<Facade>>,
    auth: Authed,
    Path((org, id, user)): Path<(String, String, String)>,
) -> Result<Answer, FacadeError> {
    facade
        .write(auth, move |cx, tx| {
            require(cx, &org, &id, "update")?;
            let resource = object(GROUP_TYPE, &id)?;
            let principal = Principal::User(user.clone());
            let removing: Vec<bindings::Binding> = bindings::bindings_on(cx, &resource)?
                .into_iter()
                .filter(|b| b.principal == principal)
                .collect();
            bindings::guard_removal(cx, &resource, &removing)?;
            for binding in &removing {
                bindings::revoke(cx, tx, &binding.id)?;
            }
            if let Ok(subject) = SubjectRef::new(USER_TYPE, &user, None) {
                tx.delete(Relationship::new(resource, "member", subject));
            }
            Ok(json!({}))
        })
        .await
}

/// `GET /v1beta1/organizations/{org_id}/groups/{id}/relations?subjectType=&role=`: one entry
/// per principal bound on the group with a matching role (`owner` = `app_group_owner`,
/// `member` = `app_group_member`; an owner is not listed as a member).
pub async fn relations(
    State(facade): State<Arc<Facade>>,
    auth: Authed,
    Path((org, id)): Path<(String, String)>,
    Query(params): Query<Params>,
) -> Result<Answer, FacadeError> {
    let subject_type = match params.get("subjectType") {
        None => None,
        Some("user" | "app/user") => Some(USER_TYPE),
        Some("group" | "app/group") => Some(GROUP_TYPE),
        Some(other) => {
            return Err(FacadeError::InvalidArgument(format!(
                "invalid subjectType `{other}`: expected `user` or `group`"
            )))
        }
    };
    let role = params.get("role").map(str::to_string);
    facade
        .read(auth, move |cx| {
            require(cx, &org, &id, "get")?;
            let role = match role.as_deref() {
                None => None,
                Some("owner") => Some(GROUP_OWNER),
                Some("member") => Some(GROUP_MEMBER),
                Some(other) => match cx.facade.role(other) {
                    Some(role) => Some(role.name),
                    None => {
                        return Err(FacadeError::InvalidArgument(format!(
                            "invalid role `{other}`: expected `owner` or `member`"
                        )))
                    }
                },
            };
            let mut relations = Vec::new();
            for binding in bindings::bindings_on(cx, &object(GROUP_TYPE, &id)?)? {
                if role.is_some_and(|r| r != binding.role) {
                    continue;
                }
                let role_name = match binding.role.as_str() {
                    GROUP_OWNER => "owner",
                    GROUP_MEMBER => "member",
                    other => other,
                };
                let entry = match &binding.principal {
                    Principal::User(user) if subject_type.is_none_or(|t| t == USER_TYPE) => json!({
                        "subjectType": USER_TYPE,
                        "role": role_name,
                        "user": users::json_of(cx, user)?,
                    }),
                    Principal::Group(group) if subject_type.is_none_or(|t| t == GROUP_TYPE) => {
                        let group = GROUPS
                            .get(cx.view, group)?
                            .map_or_else(|| json!({ "id": group }), |g| json!(g));
                        json!({ "subjectType": GROUP_TYPE, "role": role_name, "group": group })
                    }
                    _ => continue,
                };
                relations.push(entry);
            }
            Ok(json!({ "relations": relations }))
        })
        .await
}

async fn set_state(
    facade: Arc<Facade>,
    auth: Authed,
    (org, id): (String, String),
    body: &[u8],
    enabled: bool,
) -> Result<Answer, FacadeError> {
    parse_body::<EmptyBody>(body)?;
    facade
        .write(auth, move |cx, tx| {
            let mut group = require(cx, &org, &id, "delete")?;
            let resource = object(GROUP_TYPE, &id)?;
            for principal in PRINCIPAL_TYPES {
                let rel = Relationship::new(
                    resource.clone(),
                    "suspended",
                    SubjectRef::new(principal, "*", None)?,
                );
                if enabled {
                    tx.delete(rel);
                } else {
                    tx.touch(rel);
                }
            }
            group.state = if enabled { "enabled" } else { "disabled" }.to_string();
            group.updated_at = now();
            tx.put(&GROUPS, &group.id, &group)?;
            Ok(json!({}))
        })
        .await
}

/// `POST /v1beta1/organizations/{org_id}/groups/{id}/disable`: members lose access granted
/// through the group at once.
pub async fn disable(
    State(facade): State<Arc<Facade>>,
    auth: Authed,
    Path(ids): Path<(String, String)>,
    body: Bytes,
) -> Result<Answer, FacadeError> {
    set_state(facade, auth, ids, &body, false).await
}

/// `POST /v1beta1/organizations/{org_id}/groups/{id}/enable`: restores it.
pub async fn enable(
    State(facade): State<Arc<Facade>>,
    auth: Authed,
    Path(ids): Path<(String, String)>,
    body: Bytes,
) -> Result<Answer, FacadeError> {
    set_state(facade, auth, ids, &body, true).await
}
