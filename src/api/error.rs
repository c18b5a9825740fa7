//! API errors: one status code (gRPC's numbering, as SpiceDB uses it), a message and, where
//! SpiceDB gives one, its `ErrorReason` with metadata (a `google.rpc.ErrorInfo` in the
//! `details` of both wire formats); mapped once from engine errors and once to HTTP statuses.

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::{json, Value};

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

/// The `google.rpc.ErrorInfo` domain of SpiceDB's reasons.
pub const ERROR_DOMAIN: &str = "authzed.com";

/// The type URL of a `google.rpc.ErrorInfo` in a status's details.
pub const ERROR_INFO_TYPE: &str = "type.googleapis.com/google.rpc.ErrorInfo";

/// SpiceDB's `ErrorReason` for an error, with the metadata SpiceDB attaches to that reason
/// (and, for an import, `import_item`: the position of the relationship at fault).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ErrorInfo {
    /// The `ERROR_REASON_...` name.
    pub reason: &'static str,
    /// Reason-specific facts, e.g. `definition_name`.
    pub metadata: BTreeMap<String, String>,
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
    /// SpiceDB's reason, for the errors it gives one for.
    pub info: Option<ErrorInfo>,
}

/// The JSON body of an error answer: `{"code": 3, "message": "...", "details": [...]}`, the
/// details holding the error's `google.rpc.ErrorInfo` when it has a reason.
#[derive(Debug, Serialize)]
pub struct ErrorBody<'a> {
    /// The gRPC code number.
    pub code: u8,
    /// The message.
    pub message: &'a str,
    /// `[{"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason", "domain",
    /// "metadata"}]`, or empty.
    pub details: Vec<Value>,
}

impl ApiError {
    /// An error with `code` and `message`.
    pub fn new(code: Code, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            http_status: None,
            info: None,
        }
    }

    /// This error with SpiceDB's `reason` (`ERROR_REASON_...`) and its metadata.
    pub fn with_reason<'m>(
        mut self,
        reason: &'static str,
        metadata: impl IntoIterator<Item = (&'m str, String)>,
    ) -> Self {
        self.info = Some(ErrorInfo {
            reason,
            metadata: metadata
                .into_iter()
                .map(|(k, v)| (k.to_string(), v))
                .collect(),
        });
        self
    }

    /// Adds one metadata entry (to the error's reason, or to an unspecified one).
    pub fn with_metadata(mut self, key: &str, value: String) -> Self {
        let info = self.info.get_or_insert_with(|| ErrorInfo {
            reason: "ERROR_REASON_UNSPECIFIED",
            metadata: BTreeMap::new(),
        });
        info.metadata.insert(key.to_string(), value);
        self
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
        let details = self
            .info
            .iter()
            .map(|info| {
                json!({
                    "@type": ERROR_INFO_TYPE,
                    "reason": info.reason,
                    "domain": ERROR_DOMAIN,
                    "metadata": info.metadata,
                })
            })
            .collect();
        ErrorBody {
            code: self.code.number(),
            message: &self.message,
            details,
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
            EngineError::MaxDepthExceeded(_) | EngineError::Busy(_) => Code::ResourceExhausted,
            EngineError::DeadlineExceeded(_) => Code::DeadlineExceeded,
            EngineError::Cancelled => Code::Cancelled,
            // The service retries a walk that met its step limit; one reaching here is a bug.
            EngineError::StepLimit(_) => Code::Internal,
            EngineError::SchemaWouldOrphan(_) | EngineError::SchemaChangedDuringImport => {
                Code::FailedPrecondition
            }
        };
        let api = Self::new(code, err.to_string());
        match engine_reason(&err) {
            Some((reason, metadata)) => api.with_reason(reason, metadata),
            None => api,
        }
    }
}

/// SpiceDB's reason and metadata for an engine error, where it gives one.
fn engine_reason(err: &EngineError) -> Option<(&'static str, Vec<(&'static str, String)>)> {
    Some(match err {
        EngineError::Schema(errors) => {
            let first = errors.0.first();
            let position = first
                .map(|e| {
                    vec![
                        ("start_line_number", e.line.saturating_sub(1).to_string()),
                        (
                            "start_column_position",
                            e.column.saturating_sub(1).to_string(),
                        ),
                    ]
                })
                .unwrap_or_default();
            let parse = first.is_some_and(|e| {
                let m = e.message.as_str();
                m.contains("expected")
                    || m.contains("unterminated")
                    || m.contains("unknown character")
            });
            if parse {
                ("ERROR_REASON_SCHEMA_PARSE_ERROR", position)
            } else {
                ("ERROR_REASON_SCHEMA_TYPE_ERROR", position)
            }
        }
        EngineError::UnknownType(name) => (
            "ERROR_REASON_UNKNOWN_DEFINITION",
            vec![("definition_name", name.clone())],
        ),
        EngineError::UnknownRelation {
            object_type,
            relation,
        } => (
            "ERROR_REASON_UNKNOWN_RELATION_OR_PERMISSION",
            vec![
                ("definition_name", object_type.clone()),
                ("relation_or_permission_name", relation.clone()),
            ],
        ),
        EngineError::WriteToPermission {
            object_type,
            relation,
        } => (
            "ERROR_REASON_CANNOT_UPDATE_PERMISSION",
            vec![
                ("definition_name", object_type.clone()),
                ("permission_name", relation.clone()),
            ],
        ),
        EngineError::SubjectNotAllowed {
            subject,
            object_type,
            relation,
        } => (
            "ERROR_REASON_INVALID_SUBJECT_TYPE",
            vec![
                ("definition_name", object_type.clone()),
                ("relation_name", relation.clone()),
                ("subject_type", subject.clone()),
            ],
        ),
        EngineError::UnknownCaveat(name) => (
            "ERROR_REASON_UNKNOWN_CAVEAT",
            vec![("caveat_name", name.clone())],
        ),
        EngineError::CaveatEvaluation { name, .. } => (
            "ERROR_REASON_CAVEAT_EVALUATION_ERROR",
            vec![("caveat_name", name.clone())],
        ),
        EngineError::CaveatContextType {
            caveat,
            parameter,
            expected,
            ..
        } => (
            "ERROR_REASON_CAVEAT_PARAMETER_TYPE_ERROR",
            vec![
                ("caveat_name", caveat.clone()),
                ("parameter_name", parameter.clone()),
                ("expected_type", expected.clone()),
            ],
        ),
        EngineError::StoredContextTooLarge { size, limit } => (
            "ERROR_REASON_MAX_RELATIONSHIP_CONTEXT_SIZE",
            vec![
                ("max_allowed_size", limit.to_string()),
                ("context_size", size.to_string()),
            ],
        ),
        EngineError::WildcardSubject(_) => ("ERROR_REASON_WILDCARD_NOT_ALLOWED", Vec::new()),
        EngineError::MaxDepthExceeded(depth) => (
            "ERROR_REASON_MAXIMUM_DEPTH_EXCEEDED",
            vec![("maximum_depth_allowed", depth.to_string())],
        ),
        _ => return None,
    })
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
        // SpiceDB answers a revision past its garbage-collection window with OUT_OF_RANGE.
        StoreError::RevisionUnavailable { .. } => Code::OutOfRange,
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
    let api = ApiError::new(code, err.to_string());
    match err {
        StoreError::AlreadyExists(relationship) => api.with_reason(
            "ERROR_REASON_ATTEMPT_TO_RECREATE_RELATIONSHIP",
            [("relationship", relationship.clone())],
        ),
        StoreError::DuplicateUpdate(relationship) => api.with_reason(
            "ERROR_REASON_UPDATES_ON_SAME_RELATIONSHIP",
            [("relationship", relationship.clone())],
        ),
        StoreError::PreconditionFailed(_) => {
            api.with_reason("ERROR_REASON_WRITE_OR_DELETE_PRECONDITION_FAILURE", [])
        }
        _ => api,
    }
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
    fn reasons_go_into_the_details_with_their_metadata() {
        let err = ApiError::from(EngineError::UnknownRelation {
            object_type: "doc".into(),
            relation: "viewr".into(),
        });
        let body = serde_json::to_value(err.body()).unwrap();
        assert_eq!(body["details"][0]["@type"], ERROR_INFO_TYPE);
        assert_eq!(
            body["details"][0]["reason"],
            "ERROR_REASON_UNKNOWN_RELATION_OR_PERMISSION"
        );
        assert_eq!(body["details"][0]["domain"], "authzed.com");
        assert_eq!(
            body["details"][0]["metadata"]["relation_or_permission_name"],
            "viewr"
        );
        let plain = ApiError::invalid("no reason");
        assert_eq!(
            serde_json::to_value(plain.body()).unwrap()["details"],
            json!([])
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
