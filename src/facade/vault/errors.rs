//! The error bodies of the Bitwarden-style APIs: Bitwarden's
//! `{"object": "error", "message": ..., "validationErrors": {...}}` for `/api` and `/public`,
//! and SCIM's `urn:ietf:params:scim:api:messages:2.0:Error` for `/scim/v2` (RFC 7644 §3.12),
//! both with the HTTP status the facade's error maps to.

use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};

use crate::api::error::ApiError;
use crate::engine::EngineError;
use crate::facade::FacadeError;

/// SCIM's error schema URN.
pub const SCIM_ERROR: &str = "urn:ietf:params:scim:api:messages:2.0:Error";
/// SCIM's media type.
pub const SCIM_JSON: &str = "application/scim+json";

/// Why a Bitwarden-style or SCIM call failed.
#[derive(Debug, thiserror::Error)]
pub enum VaultError {
    /// A field of the request is invalid (400, named in `validationErrors`).
    #[error("{field}: {message}")]
    Validation {
        /// The field, as Bitwarden names it (`Name`, `ExternalId`, `Collections`).
        field: &'static str,
        /// What is wrong.
        message: String,
    },
    /// A SCIM filter that is not `displayName eq "x"` / `externalId eq "y"` (400).
    #[error("{0}")]
    InvalidFilter(String),
    /// Every other failure, with the facade's status mapping.
    #[error(transparent)]
    Facade(#[from] FacadeError),
}

impl From<EngineError> for VaultError {
    fn from(err: EngineError) -> Self {
        Self::Facade(FacadeError::Engine(err))
    }
}

impl VaultError {
    /// A 400 for `field`.
    pub fn invalid(field: &'static str, message: impl Into<String>) -> Self {
        Self::Validation {
            field,
            message: message.into(),
        }
    }

    /// The HTTP status, the message, and the invalid field if any.
    fn parts(self) -> (u16, String, Option<&'static str>) {
        match self {
            Self::Validation { field, message } => (400, message, Some(field)),
            Self::InvalidFilter(message) => (400, message, None),
            Self::Facade(err) => {
                let api = ApiError::from(err);
                (api.http_status(), api.message.clone(), None)
            }
        }
    }
}

fn respond(status: u16, content_type: &'static str, body: &Value) -> Response {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    (
        status,
        [(header::CONTENT_TYPE, content_type)],
        body.to_string(),
    )
        .into_response()
}

/// A [`VaultError`] answered in Bitwarden's shape.
#[derive(Debug)]
pub struct BitwardenError(pub VaultError);

impl From<VaultError> for BitwardenError {
    fn from(err: VaultError) -> Self {
        Self(err)
    }
}

impl From<FacadeError> for BitwardenError {
    fn from(err: FacadeError) -> Self {
        Self(VaultError::Facade(err))
    }
}

impl IntoResponse for BitwardenError {
    fn into_response(self) -> Response {
        let (status, message, field) = self.0.parts();
        let (message, errors) = match field {
            Some(field) => (
                "The model state is invalid.".to_string(),
                json!({ field: [message] }),
            ),
            None if status == 404 => ("Resource not found.".to_string(), Value::Null),
            None => (message, Value::Null),
        };
        let body = json!({
            "object": "error",
            "message": message,
            "validationErrors": errors,
        });
        respond(status, "application/json", &body)
    }
}

/// A [`VaultError`] answered in SCIM's shape.
#[derive(Debug)]
pub struct ScimError(pub VaultError);

impl From<VaultError> for ScimError {
    fn from(err: VaultError) -> Self {
        Self(err)
    }
}

impl From<FacadeError> for ScimError {
    fn from(err: FacadeError) -> Self {
        Self(VaultError::Facade(err))
    }
}

impl IntoResponse for ScimError {
    fn into_response(self) -> Response {
        let filter = matches!(self.0, VaultError::InvalidFilter(_));
        let (status, message, field) = self.0.parts();
        let mut body = json!({
            "schemas": [SCIM_ERROR],
            "status": status.to_string(),
            "detail": match field {
                Some(field) => format!("{field}: {message}"),
                None => message,
            },
        });
        let scim_type = match status {
            409 => Some("uniqueness"),
            400 if filter => Some("invalidFilter"),
            400 => Some("invalidValue"),
            _ => None,
        };
        if let (Some(kind), Some(map)) = (scim_type, body.as_object_mut()) {
            map.insert("scimType".to_string(), json!(kind));
        }
        respond(status, SCIM_JSON, &body)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn errors_keep_the_facade_status_in_both_shapes() {
        let bw = BitwardenError::from(VaultError::invalid("Name", "the name is required"));
        assert_eq!(bw.into_response().status(), 400);
        let bw = BitwardenError::from(FacadeError::not_found("group"));
        assert_eq!(bw.into_response().status(), 404);
        let scim = ScimError::from(FacadeError::AlreadyExists("taken".into()));
        let response = scim.into_response();
        assert_eq!(response.status(), 409);
        assert_eq!(
            response.headers().get(header::CONTENT_TYPE).unwrap(),
            SCIM_JSON
        );
        let scim = ScimError::from(FacadeError::Unauthenticated("no key".into()));
        assert_eq!(scim.into_response().status(), 401);
    }
}
