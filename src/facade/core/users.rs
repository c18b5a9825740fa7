//! Users: a record per user id, created the first time a valid token for the user is seen
//! (from the token's `email` and `name` claims). Nothing but the user's own token writes it:
//! keys and other organizations never change what a user record says.

use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

use super::auth::UserIdentity;
use super::error::FacadeError;
use super::records::{Keyspace, Tx};
use super::runner::{now, Cx};

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

/// Stages the record of `identity` (409 at commit if it exists by then).
pub fn create(tx: &mut Tx, identity: &UserIdentity) -> Result<(), FacadeError> {
    let at = now();
    let user = User {
        id: identity.user_id.clone(),
        name: identity.user_id.clone(),
        title: identity.name.clone().unwrap_or_default(),
        email: identity.email.clone().unwrap_or_default(),
        metadata: Map::new(),
        state: "enabled".to_string(),
        created_at: at.clone(),
        updated_at: at,
    };
    tx.require_absent(&USERS, &user.id);
    tx.put(&USERS, &user.id, &user)
}

/// Stages the record of `identity` if the call's view has none.
pub fn stage_if_missing(
    cx: &Cx<'_>,
    tx: &mut Tx,
    identity: &UserIdentity,
) -> Result<(), FacadeError> {
    if USERS.get(cx.view, &identity.user_id)?.is_none() {
        create(tx, identity)?;
    }
    Ok(())
}

/// The user `id`, or 404.
pub fn load(cx: &Cx<'_>, id: &str) -> Result<User, FacadeError> {
    USERS
        .get(cx.view, id)?
        .ok_or_else(|| FacadeError::NotFound(format!("user `{id}` doesn't exist")))
}

/// The user `id` as JSON, or a stub with just the id when it has no record.
pub fn json_of(cx: &Cx<'_>, id: &str) -> Result<Value, FacadeError> {
    Ok(match USERS.get(cx.view, id)? {
        Some(user) => json!(user),
        None => json!({ "id": id }),
    })
}
