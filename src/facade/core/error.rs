//! The facade's errors: one enum, each variant a gRPC code, answered as
//! `{"code": <grpc code>, "message": "...", "details": []}` with the HTTP status of that code
//! (the mapping of `api::error::Code`). Products answer in their own shapes by wrapping it
//! ([`Failure`] is what the runners need of such a wrapper).

use axum::response::{IntoResponse, Response};

use crate::api::error::{ApiError, Code};
use crate::engine::EngineError;
use crate::store::StoreError;
use crate::tuple::TupleError;

/// Why a facade call failed.
#[derive(Debug, thiserror::Error)]
pub enum FacadeError {
    /// No valid bearer token (401).
    #[error("{0}")]
    Unauthenticated(String),
    /// The caller lacks the permission the call needs (403).
    #[error("not authorized")]
    PermissionDenied,
    /// A named entity does not exist (404).
    #[error("{0}")]
    NotFound(String),
    /// A name is taken (409).
    #[error("{0}")]
    AlreadyExists(String),
    /// The request is malformed (400).
    #[error("{0}")]
    InvalidArgument(String),
    /// The request is well formed but the state forbids it (400).
    #[error("{0}")]
    FailedPrecondition(String),
    /// The engine refused or failed.
    #[error(transparent)]
    Engine(#[from] EngineError),
    /// Stored bytes could not be read back, or a runtime failure (500, details logged).
    #[error("{0}")]
    Internal(String),
}

impl FacadeError {
    /// A 404 for the entity `what` (e.g. `group`): `group doesn't exist`.
    pub fn not_found(what: &str) -> Self {
        Self::NotFound(format!("{what} doesn't exist"))
    }

    /// A 400 for a malformed body.
    pub fn bad_body(reason: impl std::fmt::Display) -> Self {
        Self::InvalidArgument(format!("invalid syntax in body: {reason}"))
    }
}

/// What a product's error type must offer the runners: built from the core's errors, and
/// sendable across the blocking pool.
pub trait Failure:
    From<FacadeError> + From<EngineError> + std::error::Error + Send + Sync + 'static
{
}

impl<E> Failure for E where
    E: From<FacadeError> + From<EngineError> + std::error::Error + Send + Sync + 'static
{
}

impl From<StoreError> for FacadeError {
    fn from(err: StoreError) -> Self {
        Self::Engine(EngineError::Store(err))
    }
}

impl From<TupleError> for FacadeError {
    fn from(err: TupleError) -> Self {
        Self::InvalidArgument(err.to_string())
    }
}

impl From<FacadeError> for ApiError {
    fn from(err: FacadeError) -> Self {
        match err {
            FacadeError::Unauthenticated(m) => ApiError::new(Code::Unauthenticated, m),
            FacadeError::PermissionDenied => {
                ApiError::new(Code::PermissionDenied, "not authorized")
            }
            FacadeError::NotFound(m) => ApiError::new(Code::NotFound, m),
            FacadeError::AlreadyExists(m) => ApiError::new(Code::AlreadyExists, m),
            FacadeError::InvalidArgument(m) => ApiError::new(Code::InvalidArgument, m),
            FacadeError::FailedPrecondition(m) => ApiError::new(Code::FailedPrecondition, m),
            FacadeError::Engine(EngineError::Store(StoreError::RecordConflict {
                exists: true,
                ..
            })) => ApiError::new(Code::AlreadyExists, "already exist"),
            FacadeError::Engine(err) => ApiError::from(err),
            FacadeError::Internal(m) => ApiError::internal(&m),
        }
    }
}

impl IntoResponse for FacadeError {
    fn into_response(self) -> Response {
        ApiError::from(self).into_response()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_error_has_the_status_of_its_code() {
        let cases = [
            (FacadeError::Unauthenticated("no token".into()), 401),
            (FacadeError::PermissionDenied, 403),
            (FacadeError::not_found("group"), 404),
            (FacadeError::AlreadyExists("already exist".into()), 409),
            (FacadeError::bad_body("eof"), 400),
            (FacadeError::FailedPrecondition("disabled".into()), 400),
            (
                FacadeError::from(StoreError::RecordConflict {
                    keyspace: "group_name".into(),
                    key: "o/eng".into(),
                    exists: true,
                }),
                409,
            ),
            (FacadeError::Internal("disk".into()), 500),
        ];
        for (err, status) in cases {
            assert_eq!(ApiError::from(err).http_status(), status);
        }
    }
}
