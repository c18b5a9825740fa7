//! Groups inside organizations: create (the caller becomes owner and member), list per
//! organization with a state filter and `memberCount`, the superusers' list, get, update,
//! delete (cascading), members (idempotent add, list, remove with the last-owner guard), the
//! role filter `relations`, and `disable` / `enable`, which write and remove the `suspended`
//! wildcards so access granted through the group stops and comes back at once.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

use super::fields::{self, NamedBody, UserIdsBody};
use super::organizations::{self, ORG_TYPE};
use super::policies::{self, Principal};
use super::records::{Keyspace, Tx};
use super::roles::{self, PRINCIPAL_TYPES};
use super::USER_TYPE;
use super::{new_id, now, object, parse_body, users, Answer, Authed, Cx, Facade, FacadeError};
use crate::tuple::{Relationship, SubjectRef};

/// The group type.
pub const GROUP_TYPE: &str = "app/group";

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

/// Every group of `org`.
pub fn in_org(cx: &Cx<'_>, org: &str) -> Result<Vec<Group>, FacadeError> {
    let mut out = Vec::new();
    for (_, id) in ORG_GROUPS.scan(&cx.view, &format!("{org}/"))? {
        if let Some(group) = GROUPS.get(&cx.view, &id)? {
            out.push(group);
        }
    }
    Ok(out)
}

/// The group `id` of the organization `org`: 404 when the organization or the group does
/// not exist, or the group belongs to another organization.
fn load_in_org(cx: &Cx<'_>, org: &str, id: &str) -> Result<Group, FacadeError> {
    organizations::load(cx, org)?;
    GROUPS
        .get(&cx.view, id)?
        .filter(|g| g.org_id == org)
        .ok_or_else(|| FacadeError::not_found("group"))
}

/// The group as JSON with its member count.
fn with_count(cx: &Cx<'_>, group: &Group) -> Result<Value, FacadeError> {
    let members = cx
        .subjects(&object(GROUP_TYPE, &group.id)?, "member")?
        .len();
    let mut value = json!(group);
    if let Some(map) = value.as_object_mut() {
        map.insert("memberCount".to_string(), json!(members));
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
    let body: NamedBody = parse_body(&body)?;
    let name = fields::slug_name(body.name.as_deref(), body.title.as_deref())?;
    let metadata = fields::metadata(body.metadata)?;
    facade
        .write(auth, move |cx, tx| {
            organizations::load(cx, &org)?;
            cx.require(&object(ORG_TYPE, &org)?, "groupcreate")?;
            let key = name_key(&org, &name);
            if GROUP_NAMES.get(&cx.view, &key)?.is_some() {
                return Err(FacadeError::AlreadyExists("already exist".to_string()));
            }
            let at = now();
            let group = Group {
                id: new_id(),
                name,
                title: body.title.unwrap_or_default(),
                org_id: org.clone(),
                metadata,
                state: "enabled".to_string(),
                created_at: at.clone(),
                updated_at: at,
            };
            let object = object(GROUP_TYPE, &group.id)?;
            tx.touch(Relationship::new(
                object.clone(),
                "org",
                SubjectRef::new(ORG_TYPE, &org, None)?,
            ));
            let owner =
                roles::find(roles::GROUP_OWNER).ok_or_else(|| FacadeError::not_found("role"))?;
            policies::grant(
                cx,
                tx,
                &object,
                owner,
                &Principal::User(cx.caller.user_id.clone()),
                "",
            )?;
            tx.touch(Relationship::new(object, "member", cx.me()?));
            tx.require_absent(&GROUP_NAMES, &key);
            tx.put(&GROUP_NAMES, &key, &group.id)?;
            tx.put(&ORG_GROUPS, &name_key(&org, &group.id), &group.id)?;
            tx.put(&GROUPS, &group.id, &group)?;
            Ok(json!({ "group": with_count(cx, &group)? }))
        })
        .await
}

/// `?state=` of the list endpoints.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ListQuery {
    #[serde(default)]
    state: Option<String>,
    #[serde(default, alias = "org_id")]
    org_id: Option<String>,
}

/// Which states a `state` filter keeps: none given = enabled only (as Frontier).
fn state_filter(state: Option<&str>) -> Result<Option<String>, FacadeError> {
    match state.unwrap_or("enabled") {
        "" | "enabled" => Ok(Some("enabled".to_string())),
        "disabled" => Ok(Some("disabled".to_string())),
        "all" => Ok(None),
        other => Err(FacadeError::InvalidArgument(format!(
            "invalid state `{other}`: expected `enabled`, `disabled` or `all`"
        ))),
    }
}

/// `GET /v1beta1/organizations/{org_id}/groups?state=enabled|disabled|all`.
pub async fn list(
    State(facade): State<Arc<Facade>>,
    auth: Authed,
    Path(org): Path<String>,
    Query(query): Query<ListQuery>,
) -> Result<Answer, FacadeError> {
    let state = state_filter(query.state.as_deref())?;
    facade
        .read(auth, move |cx| {
            organizations::load(cx, &org)?;
            cx.require(&object(ORG_TYPE, &org)?, "grouplist")?;
            let groups = in_org(cx, &org)?
                .iter()
                .filter(|g| state.as_ref().is_none_or(|s| g.state == *s))
                .map(|g| with_count(cx, g))
                .collect::<Result<Vec<_>, _>>()?;
            Ok(json!({ "groups": groups }))
        })
        .await
}

/// `GET /v1beta1/admin/groups?orgId=&state=`: superusers only.
pub async fn admin_list(
    State(facade): State<Arc<Facade>>,
    auth: Authed,
    Query(query): Query<ListQuery>,
) -> Result<Answer, FacadeError> {
    let state = state_filter(query.state.as_deref())?;
    facade
        .read(auth, move |cx| {
            cx.require_superuser()?;
            let groups = GROUPS
                .scan(&cx.view, "")?
                .into_iter()
                .map(|(_, g)| g)
                .filter(|g| query.org_id.as_ref().is_none_or(|o| g.org_id == *o))
                .filter(|g| state.as_ref().is_none_or(|s| g.state == *s))
                .map(|g| with_count(cx, &g))
                .collect::<Result<Vec<_>, _>>()?;
            Ok(json!({ "groups": groups }))
        })
        .await
}

/// `GET /v1beta1/organizations/{org_id}/groups/{id}` (also for a disabled group).
pub async fn get_one(
    State(facade): State<Arc<Facade>>,
    auth: Authed,
    Path((org, id)): Path<(String, String)>,
) -> Result<Answer, FacadeError> {
    facade
        .read(auth, move |cx| {
            let group = load_in_org(cx, &org, &id)?;
            cx.require(&object(GROUP_TYPE, &id)?, "get")?;
            Ok(json!({ "group": with_count(cx, &group)? }))
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
    let body: NamedBody = parse_body(&body)?;
    let name = fields::slug_name(body.name.as_deref(), body.title.as_deref())?;
    let metadata = fields::metadata(body.metadata)?;
    facade
        .write(auth, move |cx, tx| {
            let mut group = load_in_org(cx, &org, &id)?;
            cx.require(&object(GROUP_TYPE, &id)?, "update")?;
            if name != group.name {
                let key = name_key(&org, &name);
                if GROUP_NAMES.get(&cx.view, &key)?.is_some() {
                    return Err(FacadeError::AlreadyExists("already exist".to_string()));
                }
                tx.remove(&GROUP_NAMES, &name_key(&org, &group.name));
                tx.require_absent(&GROUP_NAMES, &key);
                tx.put(&GROUP_NAMES, &key, &group.id)?;
                group.name = name;
            }
            group.title = body.title.unwrap_or_default();
            group.metadata = metadata;
            group.updated_at = now();
            tx.put(&GROUPS, &group.id, &group)?;
            Ok(json!({ "group": with_count(cx, &group)? }))
        })
        .await
}

/// The group's cascade: its bindings, every tuple on it (members, suspension, org link),
/// every binding whose principal is the group, and its records.
pub fn cascade(cx: &Cx<'_>, tx: &mut Tx, group: &Group) -> Result<(), FacadeError> {
    let object = object(GROUP_TYPE, &group.id)?;
    for binding in policies::bindings_on(cx, &object)? {
        policies::revoke(cx, tx, &binding.id)?;
    }
    organizations::delete_all_tuples_of(cx, tx, &object)?;
    for binding in policies::bindings_of(cx, &Principal::Group(group.id.clone()))? {
        policies::revoke(cx, tx, &binding)?;
    }
    tx.remove(&GROUP_NAMES, &name_key(&group.org_id, &group.name));
    tx.remove(&ORG_GROUPS, &name_key(&group.org_id, &group.id));
    tx.remove(&GROUPS, &group.id);
    Ok(())
}

/// `DELETE /v1beta1/organizations/{org_id}/groups/{id}`.
pub async fn delete_one(
    State(facade): State<Arc<Facade>>,
    auth: Authed,
    Path((org, id)): Path<(String, String)>,
) -> Result<Answer, FacadeError> {
    facade
        .write(auth, move |cx, tx| {
            let group = load_in_org(cx, &org, &id)?;
            cx.require(&object(GROUP_TYPE, &id)?, "delete")?;
            cascade(cx, tx, &group)?;
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
            let group = load_in_org(cx, &org, &id)?;
            let object = object(GROUP_TYPE, &id)?;
            cx.require(&object, "update")?;
            if group.state != "enabled" {
                return Err(FacadeError::FailedPrecondition(
                    "group is disabled; enable it before adding members".to_string(),
                ));
            }
            let member_role =
                roles::find(roles::GROUP_MEMBER).ok_or_else(|| FacadeError::not_found("role"))?;
            for user in &ids {
                users::load(cx, user)?;
                if !organizations::is_member(cx, &org, user)? {
                    return Err(FacadeError::FailedPrecondition(format!(
                        "user `{user}` is not a member of the organization"
                    )));
                }
                let principal = Principal::User(user.clone());
                if !policies::has_binding(cx, &object, &principal)? {
                    policies::grant(cx, tx, &object, member_role, &principal, "")?;
                }
                let member = Relationship::new(
                    object.clone(),
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

/// `GET /v1beta1/organizations/{org_id}/groups/{id}/users`.
pub async fn list_users(
    State(facade): State<Arc<Facade>>,
    auth: Authed,
    Path((org, id)): Path<(String, String)>,
) -> Result<Answer, FacadeError> {
    facade
        .read(auth, move |cx| {
            load_in_org(cx, &org, &id)?;
            let object = object(GROUP_TYPE, &id)?;
            cx.require(&object, "get")?;
            let users = cx
                .subjects(&object, "member")?
                .iter()
                .filter(|m| m.subject.object.object_type == USER_TYPE)
                .map(|m| users::json_of(cx, &m.subject.object.object_id))
                .collect::<Result<Vec<_>, _>>()?;
            Ok(json!({ "users": users }))
        })
        .await
}

/// `DELETE /v1beta1/organizations/{org_id}/groups/{id}/users/{user_id}`: removes the user's
/// bindings on the group and the membership; the last owner stays (400); a non-member is a
/// no-op.
pub async fn remove_user(
    State(facade): State<Arc<Facade>>,
    auth: Authed,
    Path((org, id, user)): Path<(String, String, String)>,
) -> Result<Answer, FacadeError> {
    facade
        .write(auth, move |cx, tx| {
            load_in_org(cx, &org, &id)?;
            let object = object(GROUP_TYPE, &id)?;
            cx.require(&object, "update")?;
            let principal = Principal::User(user.clone());
            let doomed: Vec<String> = policies::bindings_on(cx, &object)?
                .into_iter()
                .filter(|b| b.principal == principal)
                .map(|b| b.id)
                .collect();
            policies::keep_an_owner(cx, &object, &doomed)?;
            for binding in &doomed {
                policies::revoke(cx, tx, binding)?;
            }
            if let Ok(subject) = SubjectRef::new(USER_TYPE, &user, None) {
                tx.delete(Relationship::new(object, "member", subject));
            }
            Ok(json!({}))
        })
        .await
}

/// `?subjectType=user|group&role=owner|member` of `relations`.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RelationsQuery {
    #[serde(default, alias = "subject_type")]
    subject_type: Option<String>,
    #[serde(default)]
    role: Option<String>,
}

/// `GET /v1beta1/organizations/{org_id}/groups/{id}/relations?subjectType=&role=`: one entry
/// per principal bound on the group with a matching role (`owner` = `app_group_owner`,
/// `member` = `app_group_member`; an owner is not listed as a member).
pub async fn relations(
    State(facade): State<Arc<Facade>>,
    auth: Authed,
    Path((org, id)): Path<(String, String)>,
    Query(query): Query<RelationsQuery>,
) -> Result<Answer, FacadeError> {
    let subject_type = match query.subject_type.as_deref() {
        None | Some("") => None,
        Some("user" | "app/user") => Some(USER_TYPE),
        Some("group" | "app/group") => Some(GROUP_TYPE),
        Some(other) => {
            return Err(FacadeError::InvalidArgument(format!(
                "invalid subjectType `{other}`: expected `user` or `group`"
            )))
        }
    };
    let role = match query.role.as_deref() {
        None | Some("") => None,
        Some("owner") => Some(roles::GROUP_OWNER),
        Some("member") => Some(roles::GROUP_MEMBER),
        Some(other) => match roles::find(other) {
            Some(role) => Some(role.name),
            None => {
                return Err(FacadeError::InvalidArgument(format!(
                    "invalid role `{other}`: expected `owner` or `member`"
                )))
            }
        },
    };
    facade
        .read(auth, move |cx| {
            load_in_org(cx, &org, &id)?;
            let object = object(GROUP_TYPE, &id)?;
            cx.require(&object, "get")?;
            let mut relations = Vec::new();
            for binding in policies::bindings_on(cx, &object)? {
                if role.is_some_and(|r| r != binding.role) {
                    continue;
                }
                let role_name = match binding.role.as_str() {
                    roles::GROUP_OWNER => "owner",
                    roles::GROUP_MEMBER => "member",
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
                            .get(&cx.view, group)?
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

fn set_state(
    cx: &Cx<'_>,
    tx: &mut Tx,
    org: &str,
    id: &str,
    enabled: bool,
) -> Result<Value, FacadeError> {
    let mut group = load_in_org(cx, org, id)?;
    let object = object(GROUP_TYPE, id)?;
    cx.require(&object, "delete")?;
    for principal in PRINCIPAL_TYPES {
        let rel = Relationship::new(
            object.clone(),
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
}

/// `POST /v1beta1/organizations/{org_id}/groups/{id}/disable`: members lose access granted
/// through the group at once.
pub async fn disable(
    State(facade): State<Arc<Facade>>,
    auth: Authed,
    Path((org, id)): Path<(String, String)>,
    body: Bytes,
) -> Result<Answer, FacadeError> {
    parse_body::<Value>(&body)?;
    facade
        .write(auth, move |cx, tx| set_state(cx, tx, &org, &id, false))
        .await
}

/// `POST /v1beta1/organizations/{org_id}/groups/{id}/enable`: restores it.
pub async fn enable(
    State(facade): State<Arc<Facade>>,
    auth: Authed,
    Path((org, id)): Path<(String, String)>,
    body: Bytes,
) -> Result<Answer, FacadeError> {
    parse_body::<Value>(&body)?;
    facade
        .write(auth, move |cx, tx| set_state(cx, tx, &org, &id, true))
        .await
}
