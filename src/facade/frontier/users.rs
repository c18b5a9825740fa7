//! The caller and the predefined roles: `GET /v1beta1/users/self`, `GET /v1beta1/roles`.

use std::sync::Arc;

use axum::extract::State;
use serde_json::{json, Value};

use crate::facade::core::error::FacadeError;
use crate::facade::core::runner::{Answer, Authed};
use crate::facade::core::{users, Facade};

/// `GET /v1beta1/users/self`.
pub async fn get_self(
    State(facade): State<Arc<Facade>>,
    auth: Authed,
) -> Result<Answer, FacadeError> {
    facade
        .read(auth, |cx| {
            let user = users::load(cx, cx.user_id()?)?;
            Ok(json!({ "user": user }))
        })
        .await
}

/// `GET /v1beta1/roles`: the predefined roles of every product.
pub async fn list_roles(
    State(facade): State<Arc<Facade>>,
    auth: Authed,
) -> Result<Answer, FacadeError> {
    facade
        .read(auth, |cx| {
            let roles: Vec<Value> = cx
                .facade
                .roles()
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
