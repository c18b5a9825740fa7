//! API errors: one status code (gRPC's numbering, as SpiceDB uses it) and a message, mapped
//! once from engine errors and once to HTTP statuses.

use serde::Serialize;

use crate::engine::EngineError;
use crate::revision::ZedTokenError;
use crate::store::StoreError;

/// gRPC status codes (the numbers are the wire values).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Code {
    /// The request was cancelled.
    Cancelled = 1,
    /// An unknown error.
    Unknown = 2,
    /// The request is malformed or names something the schema does not have.
    InvalidArgument = 3,
    /// The deadline passed.
    DeadlineExceeded = 4,
    /// A named entity does not exist.
    NotFound = 5,
    /// A CREATE of something that exists.
    AlreadyExists = 6,
    /// Authenticated, but not allowed.
    PermissionDenied = 7,
    /// A limit was exceeded.
    ResourceExhausted = 8,
    /// The system is not in the state the request needs (precondition, orphaning schema).
    FailedPrecondition = 9,
    /// The operation was aborted.
    Aborted = 10,
    /// A value is outside its valid range.
    OutOfRange = 11,
    /// Not implemented.
    Unimplemented = 12,
    /// An internal failure; details go to the log only.
    Internal = 13,
    /// The service is unavailable (e.g. shutting down).
    Unavailable = 14,
    /// No or wrong credentials.
    Unauthenticated = 16,
}

impl Code {
    /// The wire number.
    pub fn number(self) -> u8 {
        self as u8
    }

    /// The HTTP status SpiceDB's HTTP gateway answers for this code.
    pub fn http_status(self) -> u16 {
        match self {
            Code::Cancelled => 499,
            Code::Unknown | Code::Internal => 500,
            Code::InvalidArgument | Code::FailedPrecondition | Code::OutOfRange => 400,
            Code::DeadlineExceeded => 504,
            Code::NotFound => 404,
            Code::AlreadyExists | Code::Aborted => 409,
            Code::PermissionDenied => 403,
            Code::ResourceExhausted => 429,
            Code::Unimplemented => 501,
            Code::Unavailable => 503,
            Code::Unauthenticated => 401,
        }
    }
}

/// A failed API call: what the client sees.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct ApiError {
    /// The status code.
    pub code: Code,
    /// What is wrong, for the client.
    pub message: String,
    /// An HTTP status overriding the code's usual one (e.g. 413 for an oversized body).
    pub http_status: Option<u16>,
}

/// The JSON body of an error answer: `{"code": 3, "message": "...", "details": []}`.
#[derive(Debug, Serialize)]
pub struct ErrorBody<'a> {
    /// The gRPC code number.
    pub code: u8,
    /// The message.
    pub message: &'a str,
    /// Always empty (SpiceDB puts typed error details here).
    pub details: [(); 0],
}

impl ApiError {
    /// An error with `code` and `message`.
    pub fn new(code: Code, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            http_status: None,
        }
    }

    /// INVALID_ARGUMENT with `message`.
    pub fn invalid(message: impl Into<String>) -> Self {
        Self::new(Code::InvalidArgument, message)
    }

    /// The HTTP status to answer with.
    pub fn http_status(&self) -> u16 {
        self.http_status.unwrap_or_else(|| self.code.http_status())
    }

    /// The JSON body.
    pub fn body(&self) -> ErrorBody<'_> {
        ErrorBody {
            code: self.code.number(),
            message: &self.message,
            details: [],
        }
    }

    /// An internal failure: the cause is logged, the client sees a generic message.
    pub fn internal(cause: &dyn std::fmt::Display) -> Self {
        tracing::error!(error = %cause, "internal error");
        Self::new(Code::Internal, "internal error; see the server log")
    }
}

impl From<EngineError> for ApiError {
    fn from(err: EngineError) -> Self {
        let code = match &err {
            EngineError::Store(store) => return store_error(store),
            EngineError::NoSchema => Code::FailedPrecondition,
            EngineError::Schema(_)
            | EngineError::Tuple(_)
            | EngineError::UnknownType(_)
            | EngineError::UnknownRelation { .. }
            | EngineError::WriteToPermission { .. }
            | EngineError::SubjectNotAllowed { .. }
            | EngineError::UnknownCaveat(_)
            | EngineError::CaveatContextType { .. }
            | EngineError::StoredContextTooLarge { .. }
            | EngineError::WildcardSubject(_)
            | EngineError::FutureRevision { .. } => Code::InvalidArgument,
            EngineError::CaveatEvaluation { .. } => Code::InvalidArgument,
            EngineError::CaveatContextTooLarge { .. } => Code::ResourceExhausted,
            EngineError::MaxDepthExceeded(_) => Code::ResourceExhausted,
            EngineError::SchemaWouldOrphan(_) => Code::FailedPrecondition,
        };
        Self::new(code, err.to_string())
    }
}

fn store_error(err: &StoreError) -> ApiError {
    let code = match err {
        StoreError::AlreadyExists(_) => Code::AlreadyExists,
        StoreError::PreconditionFailed(_) => Code::FailedPrecondition,
        StoreError::DuplicateUpdate(_)
        | StoreError::Unstorable(_)
        | StoreError::UnstorableRecord(_) => Code::InvalidArgument,
        StoreError::RecordConflict { exists: true, .. } => Code::AlreadyExists,
        StoreError::RecordConflict { exists: false, .. } => Code::NotFound,
        StoreError::RevisionUnavailable { .. } => Code::FailedPrecondition,
        // The message names the database and what failed (never a password), so an operator
        // reading a client's error knows where to look; the client may retry.
        StoreError::Unavailable { .. } => {
            tracing::warn!(error = %err, "database unavailable");
            Code::Unavailable
        }
        StoreError::Backend(_)
        | StoreError::Corrupt(_)
        | StoreError::FormatVersion { .. }
        | StoreError::NewerLayout { .. }
        | StoreError::Rejected(_) => return ApiError::internal(err),
    };
    ApiError::new(code, err.to_string())
}

impl From<ZedTokenError> for ApiError {
    fn from(err: ZedTokenError) -> Self {
        ApiError::invalid(err.to_string())
    }
}

impl From<crate::tuple::TupleError> for ApiError {
    fn from(err: crate::tuple::TupleError) -> Self {
        ApiError::invalid(err.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_map_to_the_gateway_statuses() {
        assert_eq!(Code::InvalidArgument.http_status(), 400);
        assert_eq!(Code::FailedPrecondition.http_status(), 400);
        assert_eq!(Code::AlreadyExists.http_status(), 409);
        assert_eq!(Code::Unauthenticated.http_status(), 401);
        assert_eq!(Code::ResourceExhausted.http_status(), 429);
        assert_eq!(Code::Internal.http_status(), 500);
    }

    #[test]
    fn an_unreachable_database_is_unavailable_and_named() {
        let err = ApiError::from(EngineError::Store(StoreError::Unavailable {
            database: "postgres://zanzi@db:5432/authz".into(),
            reason: "connection refused".into(),
        }));
        assert_eq!(err.code, Code::Unavailable);
        assert_eq!(err.http_status(), 503);
        assert!(
            err.message.contains("postgres://zanzi@db:5432/authz"),
            "{}",
            err.message
        );
    }

    #[test]
    fn storage_failures_hide_their_cause() {
        let err = ApiError::from(EngineError::Store(StoreError::Backend(
            "disk on fire".into(),
        )));
        assert_eq!(err.code, Code::Internal);
        assert!(!err.message.contains("disk"));
    }
}
