//! The compiler: syntax tree → checked [`Schema`], reporting every semantic error.
//!
//! Mirrors SpiceDB's type system checks (`pkg/schema/typesystem_validation.go`,
//! `internal/namespace`): names resolve, nothing is declared twice, arrows start from
//! relations that hold no wildcard, subject sets do not pull wildcards in transitively,
//! caveats exist and their parameters are sound. One check is stricter than SpiceDB:
//! every cycle among permissions through plain references is an error (SpiceDB rejects only
//! cycles of pure aliases such as `a = b`, `b = a`; other such cycles fail at check time).
//! An arrow whose target exists on none of the tupleset's subject types is accepted, as in
//! SpiceDB (which only warns).

use std::collections::{BTreeMap, BTreeSet, HashMap};

use super::ast::{
    AllowedKindAst, CaveatAst, DefinitionAst, ExprAst, File, MemberAst, Name, TypeRefAst,
};
use super::caveat;
use super::error::{Pos, SchemaError};
use super::model::{
    AllowedKind, AllowedSubject, CaveatDefinition, CaveatType, Definition, PermissionDefinition,
    RelationDefinition, Rewrite, Schema,
};

/// Compiles a parsed file; `source` is kept verbatim in the result.
pub(crate) fn compile_file(file: &File, source: &str) -> Result<Schema, Vec<SchemaError>> {
    let mut compiler = Compiler {
        errors: Vec::new(),
        uses_expiration: file.uses.iter().any(|u| u.text == "expiration"),
        uses_self: file.uses.iter().any(|u| u.text == "self"),
    };

    // Top-level names: definitions and caveats share one namespace.
    let mut top_names: BTreeSet<&str> = BTreeSet::new();
    let mut definitions: BTreeMap<&str, &DefinitionAst> = BTreeMap::new();
    let mut caveats: BTreeMap<&str, &CaveatAst> = BTreeMap::new();
    let mut ordered: Vec<(&Name, bool)> = file
        .definitions
        .iter()
        .map(|d| (&d.name, true))
        .chain(file.caveats.iter().map(|c| (&c.name, false)))
        .collect();
    ordered.sort_by_key(|(name, _)| name.pos);
    for (name, is_definition) in ordered {
        if !top_names.insert(name.text.as_str()) {
            compiler.error(
                name.pos,
                format!(
                    "found name reused between multiple definitions and/or caveats: `{}`",
                    name.text
                ),
            );
            continue;
        }
        if is_definition {
            if let Some(def) = file
                .definitions
                .iter()
                .find(|d| std::ptr::eq(&d.name, name))
            {
                definitions.insert(name.text.as_str(), def);
            }
        } else if let Some(cav) = file.caveats.iter().find(|c| std::ptr::eq(&c.name, name)) {
            caveats.insert(name.text.as_str(), cav);
        }
    }

    let mut schema = Schema {
        definitions: BTreeMap::new(),
        caveats: BTreeMap::new(),
        uses_expiration: compiler.uses_expiration,
        uses_self: compiler.uses_self,
        source: source.to_string(),
    };

    for cav in caveats.values() {
        if let Some(compiled) = compiler.compile_caveat(cav) {
            schema.caveats.insert(compiled.name.clone(), compiled);
        }
    }

    // First pass: each definition's own shape (names, duplicates), so references can resolve.
    for def in definitions.values() {
        let compiled = compiler.compile_definition_shape(def);
        schema.definitions.insert(compiled.name.clone(), compiled);
    }

    // Second pass: references between definitions and to caveats.
    let checker = Checker {
        schema: &schema,
        caveat_names: &caveats,
    };
    for def in definitions.values() {
        checker.check_definition(def, &mut compiler);
    }

    if compiler.errors.is_empty() {
        Ok(schema)
    } else {
        Err(compiler.errors)
    }
}

struct Compiler {
    errors: Vec<SchemaError>,
    uses_expiration: bool,
    uses_self: bool,
}

impl Compiler {
    fn error(&mut self, pos: Pos, message: impl Into<String>) {
        self.errors.push(SchemaError::at(pos, message));
    }

    fn compile_caveat(&mut self, cav: &CaveatAst) -> Option<CaveatDefinition> {
        let before = self.errors.len();
        if !is_valid_caveat_name(&cav.name.text) {
            self.error(
                cav.name.pos,
                format!(
                    "invalid caveat name `{}`: expected 1 to 128 characters of `a-z A-Z 0-9 _ / | -`, not starting with `/`, `|` or `-`",
                    cav.name.text
                ),
            );
        }
        if cav.params.is_empty() {
            self.error(
                cav.name.pos,
                format!(
                    "caveat `{}` must have at least one parameter defined",
                    cav.name.text
                ),
            );
        }
        let mut parameters = Vec::new();
        let mut checked_params = Vec::new();
        let mut seen = BTreeSet::new();
        for (param, type_ref) in &cav.params {
            if !is_cel_identifier(&param.text) {
                self.error(
                    param.pos,
                    format!(
                        "invalid parameter name `{}` on caveat `{}`",
                        param.text, cav.name.text
                    ),
                );
            }
            if !seen.insert(param.text.as_str()) {
                self.error(
                    param.pos,
                    format!(
                        "duplicate parameter `{}` defined on caveat `{}`",
                        param.text, cav.name.text
                    ),
                );
                continue;
            }
            let ty = self.caveat_type(type_ref);
            checked_params.push(caveat::Param {
                name: param.text.clone(),
                pos: param.pos,
                ty: ty.clone(),
            });
            if let Some(ty) = ty {
                parameters.push((param.text.clone(), ty));
            }
        }
        let cel_errors = caveat::check_expression(
            &cav.name.text,
            &cav.expression,
            cav.expression_pos,
            &checked_params,
        );
        self.errors.extend(cel_errors);
        if self.errors.len() > before {
            return None;
        }
        Some(CaveatDefinition {
            name: cav.name.text.clone(),
            parameters,
            expression: cav.expression.clone(),
            expression_line: cav.expression_pos.line,
            expression_column: cav.expression_pos.column,
        })
    }

    fn caveat_type(&mut self, type_ref: &TypeRefAst) -> Option<CaveatType> {
        let name = type_ref.name.text.as_str();
        let arity = match name {
            "list" | "map" => 1,
            _ => 0,
        };
        let basic = match name {
            "any" => Some(CaveatType::Any),
            "bool" => Some(CaveatType::Bool),
            "string" => Some(CaveatType::String),
            "int" => Some(CaveatType::Int),
            "uint" => Some(CaveatType::Uint),
            "double" => Some(CaveatType::Double),
            "bytes" => Some(CaveatType::Bytes),
            "duration" => Some(CaveatType::Duration),
            "timestamp" => Some(CaveatType::Timestamp),
            "ipaddress" => Some(CaveatType::IpAddress),
            "list" | "map" => None,
            _ => {
                self.error(
                    type_ref.name.pos,
                    format!("unknown caveat parameter type `{name}`"),
                );
                return None;
            }
        };
        if type_ref.args.len() != arity {
            self.error(
                type_ref.name.pos,
                format!(
                    "type `{name}` takes {arity} type argument{}, found {}",
                    if arity == 1 { "" } else { "s" },
                    type_ref.args.len()
                ),
            );
            return None;
        }
        if let Some(basic) = basic {
            return Some(basic);
        }
        let inner = Box::new(self.caveat_type(type_ref.args.first()?)?);
        Some(if name == "list" {
            CaveatType::List(inner)
        } else {
            CaveatType::Map(inner)
        })
    }

    /// Names and shape of one definition; references are checked later.
    fn compile_definition_shape(&mut self, def: &DefinitionAst) -> Definition {
        if !is_valid_type_name(&def.name.text) {
            self.error(
                def.name.pos,
                format!(
                    "invalid definition name `{}`: each `/`-separated part must be 3 to 64 characters of `a-z`, `0-9` and `_`, starting with a letter and not ending with `_`",
                    def.name.text
                ),
            );
        }
        let mut out = Definition {
            name: def.name.text.clone(),
            relations: BTreeMap::new(),
            permissions: BTreeMap::new(),
            member_order: Vec::new(),
        };
        for member in &def.members {
            let name = member.name();
            if !is_valid_relation_name(&name.text) {
                self.error(
                    name.pos,
                    format!(
                        "invalid relation/permission name `{}`: must be 3 to 64 characters of `a-z`, `0-9` and `_`, starting with a letter and not ending with `_`",
                        name.text
                    ),
                );
            }
            if out.relations.contains_key(&name.text) || out.permissions.contains_key(&name.text) {
                self.error(
                    name.pos,
                    format!(
                        "found duplicate relation/permission name `{}` under definition `{}`",
                        name.text, def.name.text
                    ),
                );
                continue;
            }
            out.member_order.push(name.text.clone());
            match member {
                MemberAst::Relation { name, allowed } => {
                    let allowed = allowed
                        .iter()
                        .map(|a| AllowedSubject {
                            subject_type: a.subject_type.text.clone(),
                            kind: match &a.kind {
                                AllowedKindAst::Direct => AllowedKind::Direct,
                                AllowedKindAst::Wildcard => AllowedKind::Wildcard,
                                AllowedKindAst::SubjectSet(rel) => {
                                    AllowedKind::SubjectSet(rel.text.clone())
                                }
                            },
                            caveat: a.caveat.as_ref().map(|c| c.text.clone()),
                            expiration: a.expiration,
                        })
                        .collect();
                    out.relations.insert(
                        name.text.clone(),
                        RelationDefinition {
                            name: name.text.clone(),
                            allowed,
                        },
                    );
                }
                MemberAst::Permission { name, expr } => {
                    out.permissions.insert(
                        name.text.clone(),
                        PermissionDefinition {
                            name: name.text.clone(),
                            rewrite: to_rewrite(expr),
                        },
                    );
                }
            }
        }
        out
    }
}

fn to_rewrite(expr: &ExprAst) -> Rewrite {
    match expr {
        ExprAst::Union(items) => Rewrite::Union(items.iter().map(to_rewrite).collect()),
        ExprAst::Intersection(items) => {
            Rewrite::Intersection(items.iter().map(to_rewrite).collect())
        }
        ExprAst::Exclusion(base, subtracted) => {
            Rewrite::Exclusion(Box::new(to_rewrite(base)), Box::new(to_rewrite(subtracted)))
        }
        ExprAst::Ident(name) => Rewrite::Computed(name.text.clone()),
        ExprAst::Arrow {
            tupleset,
            computed,
            mode,
        } => Rewrite::Arrow {
            tupleset: tupleset.text.clone(),
            computed: computed.text.clone(),
            mode: *mode,
        },
        ExprAst::Nil => Rewrite::Nil,
        ExprAst::SelfRef => Rewrite::SelfRef,
    }
}

/// Cross-reference checks over the shapes built in the first pass.
struct Checker<'a> {
    schema: &'a Schema,
    caveat_names: &'a BTreeMap<&'a str, &'a CaveatAst>,
}

/// A wildcard reachable from a relation: (wildcard subject type, `type#relation` that allows it).
type WildcardRef = (String, String);

impl Checker<'_> {
    fn check_definition(&self, def: &DefinitionAst, c: &mut Compiler) {
        let Some(compiled) = self.schema.definition(&def.name.text) else {
            return;
        };
        let mut seen_members = BTreeSet::new();
        for member in &def.members {
            // Only the first of duplicated names was compiled; skip the rest.
            if !seen_members.insert(member.name().text.as_str()) {
                continue;
            }
            match member {
                MemberAst::Relation { name, allowed } => self.check_relation(def, name, allowed, c),
                MemberAst::Permission { name, expr } => self.check_expr(compiled, name, expr, c),
            }
        }
        self.check_cycles(def, compiled, c);
    }

    fn check_relation(
        &self,
        def: &DefinitionAst,
        relation: &Name,
        allowed: &[super::ast::AllowedAst],
        c: &mut Compiler,
    ) {
        let mut seen = BTreeSet::new();
        for a in allowed {
            let source = allowed_source(a);
            if !seen.insert(source.clone()) {
                c.error(
                    a.subject_type.pos,
                    format!(
                        "found duplicate allowed subject type `{source}` on relation `{}` under definition `{}`",
                        relation.text, def.name.text
                    ),
                );
            }
            match self.schema.definition(&a.subject_type.text) {
                None => c.error(
                    a.subject_type.pos,
                    format!("object definition `{}` not found", a.subject_type.text),
                ),
                Some(subject_def) => {
                    if let AllowedKindAst::SubjectSet(rel) = &a.kind {
                        if subject_def.member(&rel.text).is_none() {
                            c.error(
                                rel.pos,
                                format!(
                                    "relation/permission `{}` not found under definition `{}`",
                                    rel.text, a.subject_type.text
                                ),
                            );
                        } else if a.subject_type.text != def.name.text {
                            if let Some((wildcard_type, via)) =
                                self.references_wildcard(&a.subject_type.text, &rel.text)
                            {
                                c.error(
                                    rel.pos,
                                    format!(
                                        "for relation `{}`: relation/permission `{}#{}` includes wildcard type `{wildcard_type}` via relation `{via}`: wildcard relations cannot be transitively included",
                                        relation.text, a.subject_type.text, rel.text
                                    ),
                                );
                            }
                        }
                    }
                }
            }
            if let Some(cav) = &a.caveat {
                if !self.caveat_names.contains_key(cav.text.as_str()) {
                    let hint = if cav.text == "expiration" && !c.uses_expiration {
                        " (add `use expiration` at the top of the schema to allow expiring relationships)"
                    } else {
                        ""
                    };
                    c.error(
                        cav.pos,
                        format!("caveat with name `{}` not found{hint}", cav.text),
                    );
                }
            }
        }
    }

    /// SpiceDB's `referencesWildcardType`: follows subject sets through relations (not
    /// permissions) and returns the first wildcard found.
    fn references_wildcard(&self, object_type: &str, relation: &str) -> Option<WildcardRef> {
        let mut stack = vec![(object_type.to_string(), relation.to_string())];
        let mut seen = BTreeSet::new();
        while let Some((ty, rel)) = stack.pop() {
            if !seen.insert((ty.clone(), rel.clone())) {
                continue;
            }
            let Some(relation) = self
                .schema
                .definition(&ty)
                .and_then(|d| d.relations.get(&rel))
            else {
                continue;
            };
            for allowed in &relation.allowed {
                match &allowed.kind {
                    AllowedKind::Wildcard => {
                        return Some((allowed.subject_type.clone(), format!("{ty}#{rel}")));
                    }
                    AllowedKind::SubjectSet(sub) => {
                        stack.push((allowed.subject_type.clone(), sub.clone()));
                    }
                    AllowedKind::Direct => {}
                }
            }
        }
        None
    }

    fn check_expr(&self, def: &Definition, permission: &Name, expr: &ExprAst, c: &mut Compiler) {
        match expr {
            ExprAst::Union(items) | ExprAst::Intersection(items) => {
                for item in items {
                    self.check_expr(def, permission, item, c);
                }
            }
            ExprAst::Exclusion(base, subtracted) => {
                self.check_expr(def, permission, base, c);
                self.check_expr(def, permission, subtracted, c);
            }
            ExprAst::Ident(name) => {
                if def.member(&name.text).is_none() {
                    let hint = if name.text == "self" && !c.uses_self {
                        " (add `use self` at the top of the schema to refer to the object itself)"
                    } else {
                        ""
                    };
                    c.error(
                        name.pos,
                        format!(
                            "relation/permission `{}` not found under definition `{}`{hint}",
                            name.text, def.name
                        ),
                    );
                }
            }
            ExprAst::Arrow {
                tupleset, computed, ..
            } => self.check_arrow(def, permission, tupleset, computed, c),
            ExprAst::Nil | ExprAst::SelfRef => {}
        }
    }

    fn check_arrow(
        &self,
        def: &Definition,
        permission: &Name,
        tupleset: &Name,
        computed: &Name,
        c: &mut Compiler,
    ) {
        if def.permissions.contains_key(&tupleset.text) {
            c.error(
                tupleset.pos,
                format!(
                    "under permission `{}` under definition `{}`: permissions cannot be used on the left hand side of an arrow (found `{}`)",
                    permission.text, def.name, tupleset.text
                ),
            );
            return;
        }
        let Some(relation) = def.relations.get(&tupleset.text) else {
            c.error(
                tupleset.pos,
                format!(
                    "relation/permission `{}` not found under definition `{}`",
                    tupleset.text, def.name
                ),
            );
            return;
        };
        if let Some((wildcard_type, via)) = self.references_wildcard(&def.name, &tupleset.text) {
            c.error(
                tupleset.pos,
                format!(
                    "for arrow under permission `{}`: relation `{}#{}` includes wildcard type `{wildcard_type}` via relation `{via}`: wildcard relations cannot be used on the left side of arrows",
                    permission.text, def.name, tupleset.text
                ),
            );
            return;
        }
        // An arrow whose target exists on none of the relation's subject types is accepted, as
        // SpiceDB accepts it (it only warns): real schemas (Frontier's) rely on it, and such
        // an arrow simply finds nothing.
        let _ = (relation, computed);
    }

    /// Every strongly connected set of permissions that reference each other directly
    /// (not through an arrow) is a cycle that can never resolve.
    fn check_cycles(&self, def: &DefinitionAst, compiled: &Definition, c: &mut Compiler) {
        let mut perms: Vec<(&Name, Vec<&str>)> = Vec::new();
        let mut seen = BTreeSet::new();
        for member in &def.members {
            if let MemberAst::Permission { name, expr } = member {
                if !seen.insert(name.text.as_str()) {
                    continue;
                }
                let mut refs = Vec::new();
                collect_refs(expr, &mut refs);
                refs.retain(|r| compiled.permissions.contains_key(*r));
                perms.push((name, refs));
            }
        }
        let index: HashMap<&str, usize> = perms
            .iter()
            .enumerate()
            .map(|(i, (name, _))| (name.text.as_str(), i))
            .collect();
        let edges: Vec<Vec<usize>> = perms
            .iter()
            .map(|(_, refs)| refs.iter().filter_map(|r| index.get(r).copied()).collect())
            .collect();
        for component in strongly_connected(&edges) {
            let is_cycle = match component.as_slice() {
                [single] => edges.get(*single).is_some_and(|e| e.contains(single)),
                _ => true,
            };
            if !is_cycle {
                continue;
            }
            let mut names: Vec<&Name> = component
                .iter()
                .filter_map(|i| perms.get(*i).map(|p| p.0))
                .collect();
            names.sort_by_key(|n| n.pos);
            let Some(first) = names.first() else {
                continue;
            };
            let mut list: Vec<&str> = names.iter().map(|n| n.text.as_str()).collect();
            list.sort_unstable();
            c.error(
                first.pos,
                format!(
                    "under definition `{}`, there exists a cycle in permissions: {}",
                    def.name.text,
                    list.join(", ")
                ),
            );
        }
    }
}

/// Names referenced directly (not through arrows) by an expression.
fn collect_refs<'a>(expr: &'a ExprAst, out: &mut Vec<&'a str>) {
    match expr {
        ExprAst::Union(items) | ExprAst::Intersection(items) => {
            for item in items {
                collect_refs(item, out);
            }
        }
        ExprAst::Exclusion(base, subtracted) => {
            collect_refs(base, out);
            collect_refs(subtracted, out);
        }
        ExprAst::Ident(name) => out.push(name.text.as_str()),
        ExprAst::Arrow { .. } | ExprAst::Nil | ExprAst::SelfRef => {}
    }
}

/// Strongly connected components (Kosaraju, iterative so deep graphs cannot overflow).
fn strongly_connected(edges: &[Vec<usize>]) -> Vec<Vec<usize>> {
    let n = edges.len();
    let mut visited = vec![false; n];
    let mut order = Vec::with_capacity(n);
    for start in 0..n {
        if visited.get(start).copied().unwrap_or(true) {
            continue;
        }
        let mut stack = vec![(start, 0usize)];
        if let Some(v) = visited.get_mut(start) {
            *v = true;
        }
        while let Some((node, next)) = stack.pop() {
            let succ = edges.get(node).map(Vec::as_slice).unwrap_or_default();
            if let Some(&child) = succ.get(next) {
                stack.push((node, next + 1));
                if let Some(v) = visited.get_mut(child) {
                    if !*v {
                        *v = true;
                        stack.push((child, 0));
                    }
                }
            } else {
                order.push(node);
            }
        }
    }
    let mut reverse = vec![Vec::new(); n];
    for (from, succ) in edges.iter().enumerate() {
        for &to in succ {
            if let Some(r) = reverse.get_mut(to) {
                r.push(from);
            }
        }
    }
    let mut assigned = vec![false; n];
    let mut components = Vec::new();
    for &root in order.iter().rev() {
        if assigned.get(root).copied().unwrap_or(true) {
            continue;
        }
        let mut component = Vec::new();
        let mut stack = vec![root];
        if let Some(a) = assigned.get_mut(root) {
            *a = true;
        }
        while let Some(node) = stack.pop() {
            component.push(node);
            for &pred in reverse.get(node).map(Vec::as_slice).unwrap_or_default() {
                if let Some(a) = assigned.get_mut(pred) {
                    if !*a {
                        *a = true;
                        stack.push(pred);
                    }
                }
            }
        }
        components.push(component);
    }
    components
}

/// How an allowed subject type reads in schema text (`user:* with cav and expiration`).
fn allowed_source(a: &super::ast::AllowedAst) -> String {
    let mut s = a.subject_type.text.clone();
    match &a.kind {
        AllowedKindAst::Direct => {}
        AllowedKindAst::Wildcard => s.push_str(":*"),
        AllowedKindAst::SubjectSet(rel) => {
            s.push('#');
            s.push_str(&rel.text);
        }
    }
    match (&a.caveat, a.expiration) {
        (Some(cav), true) => s.push_str(&format!(" with {} and expiration", cav.text)),
        (Some(cav), false) => s.push_str(&format!(" with {}", cav.text)),
        (None, true) => s.push_str(" with expiration"),
        (None, false) => {}
    }
    s
}

/// `[a-z][a-z0-9_]{min,max}[a-z0-9]`.
fn is_name_segment(s: &str, max_len: usize) -> bool {
    let bytes = s.as_bytes();
    let (Some(first), Some(last)) = (bytes.first(), bytes.last()) else {
        return false;
    };
    bytes.len() >= 3
        && bytes.len() <= max_len
        && first.is_ascii_lowercase()
        && (last.is_ascii_lowercase() || last.is_ascii_digit())
        && bytes
            .iter()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'_')
}

/// An object type: `([a-z][a-z0-9_]{1,61}[a-z0-9]/)*[a-z][a-z0-9_]{1,62}[a-z0-9]`, at most 128 bytes.
pub(crate) fn is_valid_type_name(name: &str) -> bool {
    if name.len() > 128 {
        return false;
    }
    let mut segments: Vec<&str> = name.split('/').collect();
    let Some(last) = segments.pop() else {
        return false;
    };
    is_name_segment(last, 64) && segments.iter().all(|s| is_name_segment(s, 63))
}

/// A caveat name as SpiceDB's API and stored caveat definitions allow it:
/// `^[a-zA-Z0-9_][a-zA-Z0-9/_|-]{0,127}$` (the relationship parser in `tuple` applies the
/// same rule, so every caveat a schema defines can be named in a relationship).
pub(crate) fn is_valid_caveat_name(name: &str) -> bool {
    let bytes = name.as_bytes();
    bytes
        .first()
        .is_some_and(|b| b.is_ascii_alphanumeric() || *b == b'_')
        && bytes.len() <= 128
        && bytes
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'/' | b'|' | b'-'))
}

/// A relation or permission: `[a-z][a-z0-9_]{1,62}[a-z0-9]`.
pub(crate) fn is_valid_relation_name(name: &str) -> bool {
    is_name_segment(name, 64)
}

fn is_cel_identifier(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}
