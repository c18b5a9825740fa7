//! Bitwarden's public API for groups, `/public/groups`, authenticated by the organization
//! API key: list, get, create, update (name and external id replaced; collections replaced
//! only when the field is present), delete, and `GET|PUT /{id}/member-ids` (replace; ids
//! that are not users of the organization are ignored, as Bitwarden does).

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use serde::Deserialize;
use serde_json::{json, Map, Value};

use super::errors::{BitwardenError, VaultError};
use super::groups::{list_json, MANAGE};
use super::key_request;
use super::model::{self, Access, GroupInput, Guard, VaultGroup};
use crate::facade::core::error::FacadeError;
use crate::facade::core::fields::{parse_body, unique_ids};
use crate::facade::core::keys::KeyKind;
use crate::facade::core::organizations as orgs;
use crate::facade::core::records::Tx;
use crate::facade::core::runner::{Answer, Cx};
use crate::facade::core::Facade;

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

/// The organization of the API key that calls, once it may manage groups there.
fn key_org(cx: &Cx<'_>) -> Result<String, FacadeError> {
    let org = cx
        .key_org()
        .ok_or_else(|| FacadeError::Internal("a key call without an organization".into()))?
        .to_string();
    orgs::require(cx, &org, MANAGE)?;
    Ok(org)
}

/// Runs a read for the organization API key in `headers`, answering in Bitwarden's shape.
pub(super) async fn read<F>(
    facade: Arc<Facade>,
    headers: &HeaderMap,
    work: F,
) -> Result<Answer, BitwardenError>
where
    F: FnOnce(&Cx<'_>, &str) -> Result<Value, VaultError> + Send + 'static,
{
    let auth = key_request(&facade, KeyKind::Api, headers)?;
    Ok(facade.read(auth, move |cx| work(cx, &key_org(cx)?)).await?)
}

/// Runs a write for the organization API key in `headers`, answering in Bitwarden's shape.
pub(super) async fn write<F>(
    facade: Arc<Facade>,
    headers: &HeaderMap,
    mut work: F,
) -> Result<Answer, BitwardenError>
where
    F: FnMut(&Cx<'_>, &mut Tx, &str) -> Result<Value, VaultError> + Send + 'static,
{
    let auth = key_request(&facade, KeyKind::Api, headers)?;
    Ok(facade
        .write(auth, move |cx, tx| work(cx, tx, &key_org(cx)?))
        .await?)
}

/// `GET /public/groups`.
pub async fn list(
    State(facade): State<Arc<Facade>>,
    headers: HeaderMap,
) -> Result<Answer, BitwardenError> {
    read(facade, &headers, |cx, org| {
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
    read(facade, &headers, move |cx, org| {
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
    write(facade, &headers, move |cx, tx, org| {
        let group = model::create_group(cx, tx, org, input.clone())?;
        let collections = collections.clone().unwrap_or_default();
        model::set_group_access(cx, tx, org, &group.id, &collections, Guard::Off)?;
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
    write(facade, &headers, move |cx, tx, org| {
        let old = model::load_group(cx, org, &id)?;
        let input = GroupInput {
            access_all: old.access_all,
            ..input.clone()
        };
        let group = model::update_group(cx, tx, &old, input)?;
        let collections = match &collections {
            Some(collections) => {
                model::set_group_access(cx, tx, org, &id, collections, Guard::Off)?;
                collections.clone()
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
    write(facade, &headers, move |cx, tx, org| {
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
    read(facade, &headers, move |cx, org| {
        model::load_group(cx, org, &id)?;
        Ok(json!(model::members(cx, &id)?))
    })
    .await
}

/// The id list of a replace call, `{"<name>": [...]}` (camelCase or snake_case): required,
/// each id once, at most 1,000.
pub(super) fn id_list(
    bytes: &[u8],
    names: [&'static str; 2],
    field: &'static str,
) -> Result<Vec<String>, VaultError> {
    let body: Map<String, Value> = parse_body(bytes)?;
    let Some(value) = names.iter().find_map(|n| body.get(*n)) else {
        return Err(VaultError::invalid(
            field,
            format!("{} is required", names[0]),
        ));
    };
    let ids: Vec<String> = serde_json::from_value(value.clone())
        .map_err(|e| VaultError::invalid(field, format!("{}: {e}", names[0])))?;
    Ok(unique_ids(ids, names[0])?)
}

/// `PUT /public/groups/{id}/member-ids` `{"memberIds": [...]}`.
pub async fn set_member_ids(
    State(facade): State<Arc<Facade>>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Answer, BitwardenError> {
    let wanted = id_list(&body, ["memberIds", "member_ids"], "MemberIds")?;
    write(facade, &headers, move |cx, tx, org| {
        model::load_group(cx, org, &id)?;
        let mut users: Vec<String> = Vec::new();
        for user in &wanted {
            if orgs::is_member(cx, org, user)? {
                users.push(user.clone());
            }
        }
        model::set_members(cx, tx, org, &id, &users)?;
        Ok(json!({}))
    })
    .await
}
