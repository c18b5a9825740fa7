//! Users (created the first time a valid token for them is seen) and the predefined roles:
//! `GET /v1beta1/users/self`, `GET /v1beta1/roles`.

use std::sync::Arc;

use axum::extract::State;
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

use super::records::{Keyspace, Tx};
use super::{now, roles, Answer, Authed, Caller, Cx, Facade, FacadeError};

/// A user record.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct User {
    /// The user id (the token's `sub`).
    pub id: String,
    /// A name (the id unless the token said otherwise).
    pub name: String,
    /// A display title.
    pub title: String,
    /// Email, from the token's `email` claim.
    pub email: String,
    /// Free-form metadata.
    pub metadata: Map<String, Value>,
    /// `enabled`.
    pub state: String,
    /// RFC 3339.
    pub created_at: String,
    /// RFC 3339.
    pub updated_at: String,
}

/// User records by id.
pub const USERS: Keyspace<User> = Keyspace::new("user");

/// Adds the caller's user record to `tx`.
pub fn create(tx: &mut Tx, caller: &Caller) -> Result<(), FacadeError> {
    let at = now();
    let user = User {
        id: caller.user_id.clone(),
        name: caller.user_id.clone(),
        title: caller.name.clone().unwrap_or_default(),
        email: caller.email.clone().unwrap_or_default(),
        metadata: Map::new(),
        state: "enabled".to_string(),
        created_at: at.clone(),
        updated_at: at,
    };
    tx.require_absent(&USERS, &user.id);
    tx.put(&USERS, &user.id, &user)
}

/// The user `id`, or 404.
pub fn load(cx: &Cx<'_>, id: &str) -> Result<User, FacadeError> {
    USERS
        .get(&cx.view, id)?
        .ok_or_else(|| FacadeError::NotFound(format!("user `{id}` doesn't exist")))
}

/// The user `id` as JSON, or a stub with just the id when it has no record.
pub fn json_of(cx: &Cx<'_>, id: &str) -> Result<Value, FacadeError> {
    Ok(match USERS.get(&cx.view, id)? {
        Some(user) => json!(user),
        None => json!({ "id": id }),
    })
}

/// `GET /v1beta1/users/self`.
pub async fn get_self(
    State(facade): State<Arc<Facade>>,
    auth: Authed,
) -> Result<Answer, FacadeError> {
    facade
        .read(auth, |cx| {
            let user = load(cx, &cx.caller.user_id)?;
            Ok(json!({ "user": user }))
        })
        .await
}

/// `GET /v1beta1/roles`: the predefined roles.
pub async fn list_roles(
    State(facade): State<Arc<Facade>>,
    auth: Authed,
) -> Result<Answer, FacadeError> {
    facade
        .read(auth, |_| {
            let roles: Vec<Value> = roles::ROLES
                .iter()
                .map(|r| {
                    json!({
                        "id": r.name,
                        "name": r.name,
                        "title": r.title,
                        "permissions": r.permissions,
                        "scopes": r.scopes,
                    })
                })
                .collect();
            Ok(json!({ "roles": roles }))
        })
        .await
}
