//! Bitwarden's public API for groups, `/public/groups`, authenticated by the organization
//! API key: list, get, create, update (name and external id replaced; collections replaced
//! only when the field is present), delete, and `GET|PUT /{id}/member-ids` (replace; ids
//! that are not users of the organization are ignored, as Bitwarden does).

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use serde::Deserialize;
use serde_json::{json, Value};

use super::errors::{BitwardenError, VaultError};
use super::groups::{list_json, MANAGE};
use super::model::{self, Access, GroupInput, VaultGroup};
use super::{run, Actor, Answer, Facade, KeyKind, Who};
use crate::facade::records::Tx;
use crate::facade::{organizations, parse_body, Cx, FacadeError};

/// `{"object": "group", id, name, externalId, collections}` (no organization, as Bitwarden).
fn public_of(group: &VaultGroup, collections: &[Access]) -> Value {
    json!({
        "object": "group",
        "id": group.id,
        "name": group.name,
        "externalId": group.external_id,
        "collections": collections,
    })
}

/// [`public_of`] with the group's stored access.
fn public_json(cx: &Cx<'_>, group: &VaultGroup) -> Result<Value, FacadeError> {
    Ok(public_of(group, &model::group_access(cx, &group.id)?))
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct PublicBody {
    #[serde(default)]
    name: Option<String>,
    #[serde(default, alias = "external_id")]
    external_id: Option<String>,
    #[serde(default)]
    collections: Option<Vec<Access>>,
}

fn public_request(bytes: &[u8]) -> Result<(GroupInput, Option<Vec<Access>>), VaultError> {
    let body: PublicBody = parse_body(bytes)?;
    if let Some(collections) = &body.collections {
        model::check_access(collections)?;
    }
    Ok((
        GroupInput {
            name: model::check_name(body.name.as_deref())?,
            external_id: model::check_external_id(body.external_id.as_deref())?,
            access_all: false,
        },
        body.collections,
    ))
}

async fn call<F>(
    facade: Arc<Facade>,
    headers: &HeaderMap,
    mutate: bool,
    work: F,
) -> Result<Answer, BitwardenError>
where
    F: FnOnce(&Cx<'_>, &mut Tx, &Actor, &str) -> Result<Value, VaultError> + Send + 'static,
{
    let who = Who::key(KeyKind::Api, headers)?;
    Ok(run(&facade, who, mutate, move |cx, tx, actor| {
        let org = actor.org()?.to_string();
        actor.require(cx, &org, MANAGE)?;
        work(cx, tx, actor, &org)
    })
    .await?)
}

/// `GET /public/groups`.
pub async fn list(
    State(facade): State<Arc<Facade>>,
    headers: HeaderMap,
) -> Result<Answer, BitwardenError> {
    call(facade, &headers, false, |cx, _, _, org| {
        let data = model::groups_in_org(cx, org)?
            .iter()
            .map(|g| public_json(cx, g))
            .collect::<Result<Vec<_>, _>>()?;
        let mut list = list_json(data);
        if let Some(map) = list.as_object_mut() {
            map.remove("continuationToken");
        }
        Ok(list)
    })
    .await
}

/// `GET /public/groups/{id}`.
pub async fn get_one(
    State(facade): State<Arc<Facade>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Answer, BitwardenError> {
    call(facade, &headers, false, move |cx, _, _, org| {
        Ok(public_json(cx, &model::load_group(cx, org, &id)?)?)
    })
    .await
}

/// `POST /public/groups` `{name, externalId, collections}`.
pub async fn create(
    State(facade): State<Arc<Facade>>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Answer, BitwardenError> {
    let (input, collections) = public_request(&body)?;
    call(facade, &headers, true, move |cx, tx, _, org| {
        let group = model::create_group(cx, tx, org, input)?;
        let collections = collections.unwrap_or_default();
        model::set_group_access(cx, tx, org, &group.id, &collections)?;
        Ok(public_of(&group, &collections))
    })
    .await
}

/// `PUT /public/groups/{id}`.
pub async fn update(
    State(facade): State<Arc<Facade>>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Answer, BitwardenError> {
    let (input, collections) = public_request(&body)?;
    call(facade, &headers, true, move |cx, tx, _, org| {
        let old = model::load_group(cx, org, &id)?;
        let input = GroupInput {
            access_all: old.access_all,
            ..input
        };
        let group = model::update_group(cx, tx, &old, input)?;
        let collections = match collections {
            Some(collections) => {
                model::set_group_access(cx, tx, org, &id, &collections)?;
                collections
            }
            None => model::group_access(cx, &id)?,
        };
        Ok(public_of(&group, &collections))
    })
    .await
}

/// `DELETE /public/groups/{id}`.
pub async fn delete_one(
    State(facade): State<Arc<Facade>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Answer, BitwardenError> {
    call(facade, &headers, true, move |cx, tx, _, org| {
        let group = model::load_group(cx, org, &id)?;
        model::delete_group(cx, tx, &group)?;
        Ok(json!({}))
    })
    .await
}

/// `GET /public/groups/{id}/member-ids`.
pub async fn member_ids(
    State(facade): State<Arc<Facade>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Answer, BitwardenError> {
    call(facade, &headers, false, move |cx, _, _, org| {
        model::load_group(cx, org, &id)?;
        Ok(json!(model::members(cx, &id)?))
    })
    .await
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct MemberIdsBody {
    #[serde(default, alias = "member_ids")]
    member_ids: Option<Vec<String>>,
}

/// `PUT /public/groups/{id}/member-ids` `{"memberIds": [...]}`.
pub async fn set_member_ids(
    State(facade): State<Arc<Facade>>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Answer, BitwardenError> {
    let body: MemberIdsBody = parse_body(&body)?;
    let Some(wanted) = body.member_ids else {
        return Err(VaultError::invalid("MemberIds", "memberIds is required").into());
    };
    call(facade, &headers, true, move |cx, tx, _, org| {
        model::load_group(cx, org, &id)?;
        let mut users: Vec<String> = Vec::new();
        for user in wanted {
            let member = crate::tuple::validate_object_id(&user).is_ok()
                && organizations::is_member(cx, org, &user)?;
            if member && !users.contains(&user) {
                users.push(user);
            }
        }
        model::set_members(cx, tx, org, &id, &users)?;
        Ok(json!({}))
    })
    .await
}
