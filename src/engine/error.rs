//! The engine's error type: what a caller did wrong, and what failed underneath.

use crate::schema::SchemaErrors;
use crate::store::StoreError;
use crate::tuple::TupleError;

/// Why an engine call failed. Client mistakes and internal failures are distinct variants so
/// the API layer can map them to the right status.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// No schema has been written yet.
    #[error("no schema has been written")]
    NoSchema,
    /// The schema text does not compile.
    #[error("invalid schema: {0}")]
    Schema(#[from] SchemaErrors),
    /// A name or relationship text is malformed.
    #[error("{0}")]
    Tuple(#[from] TupleError),
    /// An object type the schema does not define.
    #[error("object definition `{0}` not found")]
    UnknownType(String),
    /// A relation or permission the type does not have.
    #[error("relation or permission `{relation}` not found under definition `{object_type}`")]
    UnknownRelation {
        /// The object type.
        object_type: String,
        /// The missing name.
        relation: String,
    },
    /// A write names a permission where a relation is needed.
    #[error(
        "cannot write a relationship to permission `{relation}` under definition `{object_type}`"
    )]
    WriteToPermission {
        /// The object type.
        object_type: String,
        /// The permission name.
        relation: String,
    },
    /// The relation does not allow that kind of subject.
    #[error("subjects of type `{subject}` are not allowed on relation `{object_type}#{relation}`")]
    SubjectNotAllowed {
        /// The subject's type text, e.g. `user with some_caveat`.
        subject: String,
        /// The resource type.
        object_type: String,
        /// The relation.
        relation: String,
    },
    /// A caveat the schema does not define.
    #[error("caveat with name `{0}` not found")]
    UnknownCaveat(String),
    /// A caveat was evaluated and failed.
    #[error("caveat `{name}` could not be evaluated: {reason}")]
    CaveatEvaluation {
        /// Caveat name.
        name: String,
        /// What went wrong.
        reason: String,
    },
    /// A context value does not have the type the caveat declares for it.
    #[error("parameter `{parameter}` of caveat `{caveat}` expects `{expected}`, {reason}")]
    CaveatContextType {
        /// Caveat name.
        caveat: String,
        /// Parameter name.
        parameter: String,
        /// The declared type, e.g. `list<int>`.
        expected: String,
        /// What was found instead, e.g. ``got `"abc"` ``.
        reason: String,
    },
    /// The request's caveat context is larger than allowed.
    #[error("request context is too large: {size} bytes serialized, the limit is {limit}")]
    CaveatContextTooLarge {
        /// Serialized size in bytes.
        size: usize,
        /// The limit in bytes.
        limit: usize,
    },
    /// A relationship's stored caveat context is over the size limit.
    #[error("caveat context of {size} bytes is over the limit of {limit} bytes for a stored relationship")]
    StoredContextTooLarge {
        /// Serialized size in bytes.
        size: usize,
        /// The limit in bytes.
        limit: usize,
    },
    /// The wildcard cannot be the subject of a check or lookup.
    #[error("wildcard subject `{0}` cannot be checked; check a concrete subject")]
    WildcardSubject(String),
    /// The recursion budget ran out before an answer was found.
    #[error("max depth of {0} exceeded: the graph is too deep or contains a cycle")]
    MaxDepthExceeded(u32),
    /// The request ran past its deadline; its walk was stopped.
    #[error("the request ran past its deadline of {0:?} and was stopped")]
    DeadlineExceeded(std::time::Duration),
    /// As many engine calls as the server runs at once are running; retry later.
    #[error("the server is busy: {0} requests are running, the most it runs at once; retry later")]
    Busy(usize),
    /// The caller no longer wanted the answer (e.g. the client disconnected); the walk was
    /// stopped.
    #[error("the request was cancelled")]
    Cancelled,
    /// The walk took more steps than its [`Interrupt::with_step_limit`](super::Interrupt)
    /// allowed; the caller runs it again without the limit.
    #[error("the walk took more than {0} steps, the limit of a short walk")]
    StepLimit(u32),
    /// A schema change would leave stored relationships that no longer fit.
    #[error("cannot apply schema: {0}")]
    SchemaWouldOrphan(String),
    /// A consistency token names a revision newer than the store's head.
    #[error("revision {requested} is in the future: the newest revision is {head}")]
    FutureRevision {
        /// The revision asked for.
        requested: crate::revision::Revision,
        /// The store's head revision.
        head: crate::revision::Revision,
    },
    /// The schema changed while an import was being read, so its relationships were checked
    /// against a schema no longer in force.
    #[error("the schema changed while the import was being read; nothing was stored")]
    SchemaChangedDuringImport,
    /// The store failed or refused the write.
    #[error(transparent)]
    Store(#[from] StoreError),
}
