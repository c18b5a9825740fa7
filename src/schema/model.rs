//! The compiled, resolved schema: what the engine walks.
//!
//! Built only by [`crate::schema::compile`]; every name in it has been checked to exist, so the
//! engine can look things up without re-validating.

use std::collections::{BTreeMap, BTreeSet};

/// A compiled schema: object definitions and caveat definitions, keyed by name.
#[derive(Debug, Clone, PartialEq)]
pub struct Schema {
    /// Object definitions by type name (`app/user`).
    pub definitions: BTreeMap<String, Definition>,
    /// Caveat definitions by name.
    pub caveats: BTreeMap<String, CaveatDefinition>,
    /// Whether the schema declared `use expiration`.
    pub uses_expiration: bool,
    /// Whether the schema declared `use self`.
    pub uses_self: bool,
    /// The schema text it was compiled from, verbatim.
    pub source: String,
}

/// One `definition name { ... }` block.
#[derive(Debug, Clone, PartialEq)]
pub struct Definition {
    /// The object type name, with any `prefix/` segments.
    pub name: String,
    /// Relations by name.
    pub relations: BTreeMap<String, RelationDefinition>,
    /// Permissions by name.
    pub permissions: BTreeMap<String, PermissionDefinition>,
    /// Relation and permission names in the order they were declared.
    pub member_order: Vec<String>,
}

/// A `relation name: allowed | allowed ...` line.
#[derive(Debug, Clone, PartialEq)]
pub struct RelationDefinition {
    /// Relation name.
    pub name: String,
    /// The subject types this relation may hold.
    pub allowed: Vec<AllowedSubject>,
}

/// One alternative in a relation's allowed subject types.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AllowedSubject {
    /// Subject object type.
    pub subject_type: String,
    /// Concrete object, wildcard, or subject set.
    pub kind: AllowedKind,
    /// `with caveat_name`, if any.
    pub caveat: Option<String>,
    /// `with expiration` (alone or as `with cav and expiration`).
    pub expiration: bool,
}

/// Which shape of subject an [`AllowedSubject`] admits.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum AllowedKind {
    /// `user`: a concrete object of the type, no subject relation.
    Direct,
    /// `user:*`: the public wildcard of the type.
    Wildcard,
    /// `group#member`: a subject set through the given relation or permission.
    SubjectSet(String),
}

/// A `permission name = expression` line.
#[derive(Debug, Clone, PartialEq)]
pub struct PermissionDefinition {
    /// Permission name.
    pub name: String,
    /// Its rewrite expression.
    pub rewrite: Rewrite,
}

/// A permission's expression tree.
#[derive(Debug, Clone, PartialEq)]
pub enum Rewrite {
    /// `a + b + ...`
    Union(Vec<Rewrite>),
    /// `a & b & ...`
    Intersection(Vec<Rewrite>),
    /// `a - b` (left-associative: `a - b - c` is `(a - b) - c`).
    Exclusion(Box<Rewrite>, Box<Rewrite>),
    /// A relation or permission of the same object.
    Computed(String),
    /// `tupleset->computed`, `tupleset.any(computed)` or `tupleset.all(computed)`.
    Arrow {
        /// The relation read on this object to find the targets.
        tupleset: String,
        /// The relation or permission checked on each target.
        computed: String,
        /// Whether any target or every target must have it.
        mode: ArrowMode,
    },
    /// `nil`: the empty set.
    Nil,
    /// `self`: the object itself as a subject.
    SelfRef,
}

/// How an arrow combines its targets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArrowMode {
    /// `->` or `.any()`: any target suffices.
    Any,
    /// `.all()`: every target must have the permission (and there must be at least one).
    All,
}

/// A `caveat name(param type, ...) { expression }` block.
#[derive(Debug, Clone, PartialEq)]
pub struct CaveatDefinition {
    /// Caveat name.
    pub name: String,
    /// Parameters in declaration order.
    pub parameters: Vec<(String, CaveatType)>,
    /// The CEL expression text, verbatim.
    pub expression: String,
    /// Line (1-based) where the expression starts in the schema text.
    pub expression_line: usize,
    /// Column (1-based) where the expression starts.
    pub expression_column: usize,
}

/// A caveat parameter type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CaveatType {
    /// `any`
    Any,
    /// `bool`
    Bool,
    /// `string`
    String,
    /// `int`
    Int,
    /// `uint`
    Uint,
    /// `double`
    Double,
    /// `bytes`
    Bytes,
    /// `duration`
    Duration,
    /// `timestamp`
    Timestamp,
    /// `ipaddress`
    IpAddress,
    /// `list<T>`
    List(Box<CaveatType>),
    /// `map<T>` (string keys)
    Map(Box<CaveatType>),
}

/// A relation or permission of a definition, as found by [`Definition::member`].
#[derive(Debug, Clone, Copy)]
pub enum Member<'a> {
    /// A relation.
    Relation(&'a RelationDefinition),
    /// A permission.
    Permission(&'a PermissionDefinition),
}

impl Schema {
    /// The definition of an object type.
    pub fn definition(&self, name: &str) -> Option<&Definition> {
        self.definitions.get(name)
    }

    /// The caveat definition of that name.
    pub fn caveat(&self, name: &str) -> Option<&CaveatDefinition> {
        self.caveats.get(name)
    }

    /// Every `(object type, relation)` whose stored relationships can affect the answer of
    /// `object_type#member` (following computed relations, arrows and subject sets
    /// transitively). Empty when the type or member is unknown.
    pub fn dependencies(&self, object_type: &str, member: &str) -> BTreeSet<(String, String)> {
        let mut seen_members = BTreeSet::new();
        let mut out = BTreeSet::new();
        self.collect_dependencies(object_type, member, &mut seen_members, &mut out);
        out
    }

    fn collect_dependencies(
        &self,
        object_type: &str,
        member: &str,
        seen: &mut BTreeSet<(String, String)>,
        out: &mut BTreeSet<(String, String)>,
    ) {
        if !seen.insert((object_type.to_string(), member.to_string())) {
            return;
        }
        let Some(def) = self.definition(object_type) else {
            return;
        };
        match def.member(member) {
            Some(Member::Relation(rel)) => {
                out.insert((object_type.to_string(), member.to_string()));
                for allowed in &rel.allowed {
                    if let AllowedKind::SubjectSet(sub_rel) = &allowed.kind {
                        self.collect_dependencies(&allowed.subject_type, sub_rel, seen, out);
                    }
                }
            }
            Some(Member::Permission(perm)) => {
                self.collect_rewrite_dependencies(def, &perm.rewrite, seen, out);
            }
            None => {}
        }
    }

    fn collect_rewrite_dependencies(
        &self,
        def: &Definition,
        rewrite: &Rewrite,
        seen: &mut BTreeSet<(String, String)>,
        out: &mut BTreeSet<(String, String)>,
    ) {
        match rewrite {
            Rewrite::Union(children) | Rewrite::Intersection(children) => {
                for child in children {
                    self.collect_rewrite_dependencies(def, child, seen, out);
                }
            }
            Rewrite::Exclusion(base, subtracted) => {
                self.collect_rewrite_dependencies(def, base, seen, out);
                self.collect_rewrite_dependencies(def, subtracted, seen, out);
            }
            Rewrite::Computed(name) => self.collect_dependencies(&def.name, name, seen, out),
            Rewrite::Arrow {
                tupleset, computed, ..
            } => {
                out.insert((def.name.clone(), tupleset.clone()));
                if let Some(rel) = def.relations.get(tupleset) {
                    for allowed in &rel.allowed {
                        self.collect_dependencies(&allowed.subject_type, computed, seen, out);
                    }
                }
            }
            Rewrite::Nil | Rewrite::SelfRef => {}
        }
    }
}

impl Definition {
    /// The relation or permission of that name.
    pub fn member(&self, name: &str) -> Option<Member<'_>> {
        if let Some(rel) = self.relations.get(name) {
            return Some(Member::Relation(rel));
        }
        self.permissions.get(name).map(Member::Permission)
    }
}
