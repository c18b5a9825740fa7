//! The raw syntax tree: what the parser read, with positions, before any name is resolved.

use super::error::Pos;
use super::model::ArrowMode;

/// A name as written, with where it starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Name {
    /// The text (`app/group`, `viewer`).
    pub text: String,
    /// Where it starts.
    pub pos: Pos,
}

/// A whole schema file.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct File {
    /// `use` directives, in order.
    pub uses: Vec<Name>,
    /// Object definitions, in order.
    pub definitions: Vec<DefinitionAst>,
    /// Caveat definitions, in order.
    pub caveats: Vec<CaveatAst>,
}

/// `definition name { ... }`.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct DefinitionAst {
    /// The type name.
    pub name: Name,
    /// Relations and permissions in order.
    pub members: Vec<MemberAst>,
}

/// A relation or permission line.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum MemberAst {
    /// `relation name: allowed | ...`.
    Relation {
        /// Relation name.
        name: Name,
        /// Allowed subject types.
        allowed: Vec<AllowedAst>,
    },
    /// `permission name = expr`.
    Permission {
        /// Permission name.
        name: Name,
        /// Its expression.
        expr: ExprAst,
    },
}

impl MemberAst {
    /// The member's name.
    pub(crate) fn name(&self) -> &Name {
        match self {
            MemberAst::Relation { name, .. } | MemberAst::Permission { name, .. } => name,
        }
    }
}

/// The shape of one allowed subject type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum AllowedKindAst {
    /// `user` or `user#...`.
    Direct,
    /// `user:*`.
    Wildcard,
    /// `group#member`.
    SubjectSet(Name),
}

/// One `type[:*|#rel] [with caveat] [and expiration]` alternative.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct AllowedAst {
    /// The subject type.
    pub subject_type: Name,
    /// Direct, wildcard or subject set.
    pub kind: AllowedKindAst,
    /// `with caveat`.
    pub caveat: Option<Name>,
    /// `with expiration` / `and expiration`.
    pub expiration: bool,
}

/// A permission expression.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum ExprAst {
    /// `a + b + ...` (already flattened).
    Union(Vec<ExprAst>),
    /// `a & b & ...` (already flattened).
    Intersection(Vec<ExprAst>),
    /// `a - b`.
    Exclusion(Box<ExprAst>, Box<ExprAst>),
    /// A relation or permission of the same object.
    Ident(Name),
    /// `tupleset->computed`, `.any(computed)`, `.all(computed)`.
    Arrow {
        /// Left side.
        tupleset: Name,
        /// Right side.
        computed: Name,
        /// Any or all.
        mode: ArrowMode,
    },
    /// `nil`.
    Nil,
    /// `self`.
    SelfRef,
}

/// `caveat name(params) { expression }`.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct CaveatAst {
    /// Caveat name.
    pub name: Name,
    /// Parameters in order.
    pub params: Vec<(Name, TypeRefAst)>,
    /// The CEL text, trimmed.
    pub expression: String,
    /// Where the CEL text starts.
    pub expression_pos: Pos,
}

/// A caveat parameter type as written: `int`, `list<string>`.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct TypeRefAst {
    /// The type keyword.
    pub name: Name,
    /// Generic arguments.
    pub args: Vec<TypeRefAst>,
}
