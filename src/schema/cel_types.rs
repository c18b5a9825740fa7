//! Static types of caveat expressions: a small type checker over the `cel` crate's parsed
//! (macro-expanded) AST, with the semantics of cel-go's checker in the environment SpiceDB
//! builds for caveats. The `cel` crate (0.15) only evaluates; it has no checker of its own.
//!
//! Parameters are typed as SpiceDB declares them: `any` is `dyn`, `map<T>` is
//! `map<string, T>`, `ipaddress` is an opaque type whose one method is `in_cidr(string)`, and
//! `uint` is CEL `int` (SpiceDB declares it so; the engine converts `uint` values to `int`).
//!
//! The rules follow CEL's standard declarations: `==` and `!=` take two values of one type;
//! `<`, `<=`, `>`, `>=` also compare `int`, `uint` and `double` with each other; arithmetic
//! needs both sides of one numeric type (`int + double` and `int + uint` are errors), with
//! `timestamp`/`duration` arithmetic and `+` on strings, bytes and lists. `dyn` (an `any`
//! parameter, an element of a `list<any>`) fits wherever a type is expected, and when several
//! overloads fit a `dyn` argument with different results the result is `dyn`. List and map
//! literals of mixed element types are `dyn` lists and maps, as in cel-go. Comprehensions
//! (the expansions of `all`, `exists`, `exists_one`, `map`, `filter`) are checked node by
//! node, with the accumulator's type inferred from its initial value and its update, so
//! `l.map(x, x * 2)` is a `list<int>` when `l` is.
//!
//! Type variables stand for not-yet-known types (the elements of `[]`, the `A` of an
//! overload such as `_==_(A, A)`); they are bound by unification as checking goes.

use std::collections::HashSet;

use cel::common::ast::{ComprehensionExpr, EntryExpr, Expr, IdedEntryExpr, IdedExpr, LiteralValue};

use super::model::CaveatType;

/// The static type of a CEL expression.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum CelType {
    /// Known only at evaluation time: fits anywhere.
    Dyn,
    /// The type of `null`.
    Null,
    /// `bool`
    Bool,
    /// `int`
    Int,
    /// `uint`
    Uint,
    /// `double`
    Double,
    /// `string`
    String,
    /// `bytes`
    Bytes,
    /// `duration`
    Duration,
    /// `timestamp`
    Timestamp,
    /// SpiceDB's `ipaddress`.
    IpAddress,
    /// `list<T>`
    List(Box<CelType>),
    /// `map<K, V>`
    Map(Box<CelType>, Box<CelType>),
    /// A type value: a type name such as `int`, or the result of `type(x)`.
    Type,
    /// A type variable, bound (or not yet) in the checker's substitution.
    Var(usize),
}

impl CelType {
    /// The CEL type SpiceDB declares for a caveat parameter of type `ty`.
    pub(crate) fn of_parameter(ty: &CaveatType) -> CelType {
        match ty {
            CaveatType::Any => CelType::Dyn,
            CaveatType::Bool => CelType::Bool,
            CaveatType::String => CelType::String,
            // SpiceDB registers `uint` with CEL type `int`.
            CaveatType::Int | CaveatType::Uint => CelType::Int,
            CaveatType::Double => CelType::Double,
            CaveatType::Bytes => CelType::Bytes,
            CaveatType::Duration => CelType::Duration,
            CaveatType::Timestamp => CelType::Timestamp,
            CaveatType::IpAddress => CelType::IpAddress,
            CaveatType::List(inner) => CelType::List(Box::new(CelType::of_parameter(inner))),
            CaveatType::Map(inner) => CelType::Map(
                Box::new(CelType::String),
                Box::new(CelType::of_parameter(inner)),
            ),
        }
    }
}

/// What checking one expression found.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Checked {
    /// The expression's type, with every bound type variable substituted.
    pub(crate) result: CelType,
    /// Each problem, with the id of the AST node it concerns (for its source position).
    pub(crate) errors: Vec<(u64, String)>,
    /// The parameters the expression refers to.
    pub(crate) used: HashSet<String>,
}

/// Type names that CEL resolves as identifiers (their value is a type).
const TYPE_NAMES: &[&str] = &[
    "int",
    "uint",
    "double",
    "bool",
    "string",
    "bytes",
    "list",
    "map",
    "null_type",
    "type",
    "dyn",
    "timestamp",
    "duration",
];

/// Type-checks `expr` where `params` are the declared parameters and their types.
pub(crate) fn check(expr: &IdedExpr, params: &[(String, CelType)]) -> Checked {
    let mut checker = Checker {
        params,
        scopes: Vec::new(),
        bindings: Bindings::default(),
        errors: Vec::new(),
        used: HashSet::new(),
    };
    let ty = checker.expr(expr);
    let result = settle(checker.resolve(&ty));
    Checked {
        result,
        errors: checker.errors,
        used: checker.used,
    }
}

/// The text of a type in messages: `int`, `list<string>`, `map<string, dyn>`.
pub(crate) fn type_name(ty: &CelType) -> String {
    match ty {
        CelType::Dyn | CelType::Var(_) => "dyn".to_string(),
        CelType::Null => "null".to_string(),
        CelType::Bool => "bool".to_string(),
        CelType::Int => "int".to_string(),
        CelType::Uint => "uint".to_string(),
        CelType::Double => "double".to_string(),
        CelType::String => "string".to_string(),
        CelType::Bytes => "bytes".to_string(),
        CelType::Duration => "duration".to_string(),
        CelType::Timestamp => "timestamp".to_string(),
        CelType::IpAddress => "ipaddress".to_string(),
        CelType::List(elem) => format!("list<{}>", type_name(elem)),
        CelType::Map(key, value) => format!("map<{}, {}>", type_name(key), type_name(value)),
        CelType::Type => "type".to_string(),
    }
}

/// A type in an overload's signature; `A` and `B` are its type parameters.
#[derive(Debug, Clone, Copy)]
enum Sig {
    Dyn,
    Bool,
    Int,
    Uint,
    Double,
    String,
    Bytes,
    Duration,
    Timestamp,
    IpAddress,
    Type,
    A,
    B,
    ListA,
    MapAb,
    MapStringDyn,
}

/// One overload: argument types (the receiver first, for a method) and the result type.
type Overload = (&'static [Sig], Sig);

use Sig as S;

const EQUALITY: &[Overload] = &[(&[S::A, S::A], S::Bool)];
const ORDERING: &[Overload] = &[
    (&[S::Bool, S::Bool], S::Bool),
    (&[S::Int, S::Int], S::Bool),
    (&[S::Int, S::Double], S::Bool),
    (&[S::Int, S::Uint], S::Bool),
    (&[S::Uint, S::Uint], S::Bool),
    (&[S::Uint, S::Double], S::Bool),
    (&[S::Uint, S::Int], S::Bool),
    (&[S::Double, S::Double], S::Bool),
    (&[S::Double, S::Int], S::Bool),
    (&[S::Double, S::Uint], S::Bool),
    (&[S::String, S::String], S::Bool),
    (&[S::Bytes, S::Bytes], S::Bool),
    (&[S::Timestamp, S::Timestamp], S::Bool),
    (&[S::Duration, S::Duration], S::Bool),
];
const ADD: &[Overload] = &[
    (&[S::Bytes, S::Bytes], S::Bytes),
    (&[S::Double, S::Double], S::Double),
    (&[S::Duration, S::Duration], S::Duration),
    (&[S::Duration, S::Timestamp], S::Timestamp),
    (&[S::Timestamp, S::Duration], S::Timestamp),
    (&[S::Int, S::Int], S::Int),
    (&[S::ListA, S::ListA], S::ListA),
    (&[S::String, S::String], S::String),
    (&[S::Uint, S::Uint], S::Uint),
];
const SUBTRACT: &[Overload] = &[
    (&[S::Double, S::Double], S::Double),
    (&[S::Duration, S::Duration], S::Duration),
    (&[S::Int, S::Int], S::Int),
    (&[S::Timestamp, S::Duration], S::Timestamp),
    (&[S::Timestamp, S::Timestamp], S::Duration),
    (&[S::Uint, S::Uint], S::Uint),
];
const MULTIPLY_DIVIDE: &[Overload] = &[
    (&[S::Double, S::Double], S::Double),
    (&[S::Int, S::Int], S::Int),
    (&[S::Uint, S::Uint], S::Uint),
];
const MODULO: &[Overload] = &[(&[S::Int, S::Int], S::Int), (&[S::Uint, S::Uint], S::Uint)];
const NEGATE: &[Overload] = &[(&[S::Double], S::Double), (&[S::Int], S::Int)];
const NOT: &[Overload] = &[(&[S::Bool], S::Bool)];
const LOGICAL: &[Overload] = &[(&[S::Bool, S::Bool], S::Bool)];
const CONDITIONAL: &[Overload] = &[(&[S::Bool, S::A, S::A], S::A)];
const INDEX: &[Overload] = &[(&[S::ListA, S::Int], S::A), (&[S::MapAb, S::A], S::B)];
const IN: &[Overload] = &[(&[S::A, S::ListA], S::Bool), (&[S::A, S::MapAb], S::Bool)];
const SIZE: &[Overload] = &[
    (&[S::Bytes], S::Int),
    (&[S::ListA], S::Int),
    (&[S::MapAb], S::Int),
    (&[S::String], S::Int),
];
const TO_BOOL: &[Overload] = &[(&[S::Bool], S::Bool), (&[S::String], S::Bool)];
const TO_BYTES: &[Overload] = &[(&[S::Bytes], S::Bytes), (&[S::String], S::Bytes)];
const TO_DOUBLE: &[Overload] = &[
    (&[S::Double], S::Double),
    (&[S::Int], S::Double),
    (&[S::String], S::Double),
    (&[S::Uint], S::Double),
];
const TO_DURATION: &[Overload] = &[
    (&[S::Duration], S::Duration),
    (&[S::Int], S::Duration),
    (&[S::String], S::Duration),
];
const TO_DYN: &[Overload] = &[(&[S::A], S::Dyn)];
const TO_INT: &[Overload] = &[
    (&[S::Int], S::Int),
    (&[S::Double], S::Int),
    (&[S::Duration], S::Int),
    (&[S::String], S::Int),
    (&[S::Timestamp], S::Int),
    (&[S::Uint], S::Int),
];
const TO_STRING: &[Overload] = &[
    (&[S::String], S::String),
    (&[S::Bool], S::String),
    (&[S::Bytes], S::String),
    (&[S::Double], S::String),
    (&[S::Duration], S::String),
    (&[S::Int], S::String),
    (&[S::Timestamp], S::String),
    (&[S::Uint], S::String),
];
const TO_TIMESTAMP: &[Overload] = &[
    (&[S::Timestamp], S::Timestamp),
    (&[S::Int], S::Timestamp),
    (&[S::String], S::Timestamp),
];
const TO_UINT: &[Overload] = &[
    (&[S::Uint], S::Uint),
    (&[S::Double], S::Uint),
    (&[S::Int], S::Uint),
    (&[S::String], S::Uint),
];
const TYPE_OF: &[Overload] = &[(&[S::A], S::Type)];
const STRING_TEST: &[Overload] = &[(&[S::String, S::String], S::Bool)];
const DATE_PART: &[Overload] = &[
    (&[S::Timestamp], S::Int),
    (&[S::Timestamp, S::String], S::Int),
];
const TIME_PART: &[Overload] = &[
    (&[S::Timestamp], S::Int),
    (&[S::Timestamp, S::String], S::Int),
    (&[S::Duration], S::Int),
];
const IN_CIDR: &[Overload] = &[(&[S::IpAddress, S::String], S::Bool)];
const IS_SUBTREE_OF: &[Overload] = &[(&[S::MapStringDyn, S::MapStringDyn], S::Bool)];

/// The overloads of a global function (`member == false`) or a method.
fn overloads(name: &str, member: bool) -> Option<&'static [Overload]> {
    let found = if member {
        match name {
            "size" => SIZE,
            "contains" | "startsWith" | "endsWith" | "matches" => STRING_TEST,
            "getFullYear" | "getMonth" | "getDayOfYear" | "getDayOfMonth" | "getDate"
            | "getDayOfWeek" => DATE_PART,
            "getHours" | "getMinutes" | "getSeconds" | "getMilliseconds" => TIME_PART,
            "in_cidr" => IN_CIDR,
            "isSubtreeOf" => IS_SUBTREE_OF,
            _ => return None,
        }
    } else {
        match name {
            "_==_" | "_!=_" => EQUALITY,
            "_<_" | "_<=_" | "_>_" | "_>=_" => ORDERING,
            "_+_" => ADD,
            "_-_" => SUBTRACT,
            "_*_" | "_/_" => MULTIPLY_DIVIDE,
            "_%_" => MODULO,
            "-_" => NEGATE,
            "!_" | "@not_strictly_false" => NOT,
            "_&&_" | "_||_" => LOGICAL,
            "_?_:_" => CONDITIONAL,
            "_[_]" => INDEX,
            "@in" => IN,
            "size" => SIZE,
            "bool" => TO_BOOL,
            "bytes" => TO_BYTES,
            "double" => TO_DOUBLE,
            "duration" => TO_DURATION,
            "dyn" => TO_DYN,
            "int" => TO_INT,
            "string" => TO_STRING,
            "timestamp" => TO_TIMESTAMP,
            "uint" => TO_UINT,
            "type" => TYPE_OF,
            "matches" => STRING_TEST,
            _ => return None,
        }
    };
    Some(found)
}

/// A function's name as the user wrote it, for messages (`_==_` stays, `@in` is `in`).
fn shown_name(name: &str) -> &str {
    match name {
        "@in" => "in",
        "@not_strictly_false" => "not_strictly_false",
        other => other,
    }
}

/// Bindings of type variables, with a trail of the bindings made so that a trial
/// unification (one overload, one literal element) can be undone without copying.
#[derive(Debug, Default)]
struct Bindings {
    /// `vars[v]` is what `Var(v)` stands for, once known.
    vars: Vec<Option<CelType>>,
    /// The variables bound, in order (a binding is never changed, only undone).
    trail: Vec<usize>,
}

/// A point to undo bindings back to.
#[derive(Debug, Clone, Copy)]
struct Mark {
    vars: usize,
    trail: usize,
}

impl Bindings {
    fn fresh(&mut self) -> CelType {
        self.vars.push(None);
        CelType::Var(self.vars.len() - 1)
    }

    fn mark(&self) -> Mark {
        Mark {
            vars: self.vars.len(),
            trail: self.trail.len(),
        }
    }

    /// Forgets every variable and binding made since `mark`.
    fn undo(&mut self, mark: Mark) {
        for v in self.trail.drain(mark.trail..) {
            if let Some(slot) = self.vars.get_mut(v) {
                *slot = None;
            }
        }
        self.vars.truncate(mark.vars);
    }

    /// Follows variable bindings at the top of `ty` only.
    fn shallow(&self, ty: &CelType) -> CelType {
        let mut current = ty.clone();
        while let CelType::Var(v) = current {
            match self.vars.get(v).and_then(Option::as_ref) {
                Some(bound) => current = bound.clone(),
                None => break,
            }
        }
        current
    }

    /// `ty` with every bound variable replaced, all the way down.
    fn resolve(&self, ty: &CelType) -> CelType {
        match self.shallow(ty) {
            CelType::List(elem) => CelType::List(Box::new(self.resolve(&elem))),
            CelType::Map(key, value) => {
                CelType::Map(Box::new(self.resolve(&key)), Box::new(self.resolve(&value)))
            }
            other => other,
        }
    }

    /// Whether variable `v` occurs in `ty` (binding it there would make an infinite type).
    fn occurs(&self, v: usize, ty: &CelType) -> bool {
        match self.shallow(ty) {
            CelType::Var(w) => v == w,
            CelType::List(elem) => self.occurs(v, &elem),
            CelType::Map(key, value) => self.occurs(v, &key) || self.occurs(v, &value),
            _ => false,
        }
    }

    /// Makes `a` and `b` the same type by binding variables; false when they cannot be (the
    /// bindings made on the way stay: callers that try, undo to a mark). `dyn` unifies with
    /// everything.
    fn unify(&mut self, a: &CelType, b: &CelType) -> bool {
        let (a, b) = (self.shallow(a), self.shallow(b));
        match (&a, &b) {
            (CelType::Var(x), CelType::Var(y)) if x == y => true,
            (CelType::Var(v), other) | (other, CelType::Var(v)) => {
                if self.occurs(*v, other) {
                    return false;
                }
                if let Some(slot) = self.vars.get_mut(*v) {
                    *slot = Some(other.clone());
                    self.trail.push(*v);
                }
                true
            }
            (CelType::Dyn, _) | (_, CelType::Dyn) => true,
            (CelType::List(x), CelType::List(y)) => self.unify(x, y),
            (CelType::Map(k1, v1), CelType::Map(k2, v2)) => {
                self.unify(k1, k2) && self.unify(v1, v2)
            }
            (x, y) => x == y,
        }
    }

    /// Unifies `args` with an overload's parameters (its `A` and `B` as fresh variables) and
    /// returns its result type; `None`, with the bindings as they may be left, when it does
    /// not fit.
    fn fit(&mut self, params: &[Sig], returns: Sig, args: &[CelType]) -> Option<CelType> {
        if params.len() != args.len() {
            return None;
        }
        let a = self.fresh();
        let b = self.fresh();
        for (param, arg) in params.iter().zip(args) {
            if !self.unify(arg, &instantiate(*param, &a, &b)) {
                return None;
            }
        }
        Some(self.resolve(&instantiate(returns, &a, &b)))
    }
}

struct Checker<'a> {
    params: &'a [(String, CelType)],
    /// Variables bound by enclosing comprehensions, innermost last.
    scopes: Vec<(String, CelType)>,
    bindings: Bindings,
    errors: Vec<(u64, String)>,
    used: HashSet<String>,
}

impl Checker<'_> {
    fn error(&mut self, id: u64, message: String) {
        self.errors.push((id, message));
    }

    fn resolve(&self, ty: &CelType) -> CelType {
        self.bindings.resolve(ty)
    }

    fn show(&self, ty: &CelType) -> String {
        type_name(&self.resolve(ty))
    }

    fn expr(&mut self, expr: &IdedExpr) -> CelType {
        match &expr.expr {
            Expr::Unspecified => CelType::Dyn,
            Expr::Literal(literal) => literal_type(literal),
            Expr::Ident(name) => self.ident(expr.id, name),
            Expr::Select(select) => {
                let operand = self.expr(&select.operand);
                let fits = match self.resolve(&operand) {
                    CelType::Map(_, value) => Some(*value),
                    CelType::Dyn | CelType::Var(_) => Some(CelType::Dyn),
                    _ => None,
                };
                match fits {
                    Some(_) if select.test => CelType::Bool,
                    Some(value) => value,
                    None => {
                        let shown = self.show(&operand);
                        self.error(
                            expr.id,
                            format!("type `{shown}` does not support field selection"),
                        );
                        if select.test {
                            CelType::Bool
                        } else {
                            CelType::Dyn
                        }
                    }
                }
            }
            Expr::Call(call) => {
                let mut args = Vec::with_capacity(call.args.len() + 1);
                if let Some(target) = &call.target {
                    args.push(self.expr(target));
                }
                for arg in &call.args {
                    args.push(self.expr(arg));
                }
                self.call(expr.id, &call.func_name, call.target.is_some(), &args)
            }
            Expr::List(list) => {
                let mut elem = self.bindings.fresh();
                for element in &list.elements {
                    let ty = self.expr(element);
                    elem = self.join(elem, &ty);
                }
                if !list.optional_indices.is_empty() {
                    self.error(
                        expr.id,
                        "optional list elements are not supported".to_string(),
                    );
                }
                CelType::List(Box::new(elem))
            }
            Expr::Map(map) => {
                let mut key = self.bindings.fresh();
                let mut value = self.bindings.fresh();
                for entry in &map.entries {
                    match &entry.expr {
                        EntryExpr::MapEntry(map_entry) => {
                            let k = self.expr(&map_entry.key);
                            let v = self.expr(&map_entry.value);
                            key = self.join(key, &k);
                            value = self.join(value, &v);
                            if map_entry.optional {
                                self.error(
                                    entry.id,
                                    "optional map entries are not supported".to_string(),
                                );
                            }
                        }
                        EntryExpr::StructField(field) => {
                            self.expr(&field.value);
                        }
                    }
                }
                CelType::Map(Box::new(key), Box::new(value))
            }
            Expr::Struct(structure) => {
                self.entries(&structure.entries);
                self.error(
                    expr.id,
                    format!("undeclared reference to `{}`", structure.type_name),
                );
                CelType::Dyn
            }
            Expr::Comprehension(comprehension) => self.comprehension(expr.id, comprehension),
        }
    }

    fn entries(&mut self, entries: &[IdedEntryExpr]) {
        for entry in entries {
            match &entry.expr {
                EntryExpr::StructField(field) => {
                    self.expr(&field.value);
                }
                EntryExpr::MapEntry(map_entry) => {
                    self.expr(&map_entry.key);
                    self.expr(&map_entry.value);
                }
            }
        }
    }

    fn ident(&mut self, id: u64, name: &str) -> CelType {
        if let Some((_, ty)) = self.scopes.iter().rev().find(|(bound, _)| bound == name) {
            return ty.clone();
        }
        if let Some((_, ty)) = self.params.iter().find(|(param, _)| param == name) {
            self.used.insert(name.to_string());
            return ty.clone();
        }
        if TYPE_NAMES.contains(&name) {
            return CelType::Type;
        }
        self.error(id, format!("undeclared reference to `{name}`"));
        CelType::Dyn
    }

    /// The element type of a list or map literal after meeting one more element of type
    /// `ty`: the common type, or `dyn` when they differ.
    fn join(&mut self, current: CelType, ty: &CelType) -> CelType {
        let mark = self.bindings.mark();
        if self.bindings.unify(&current, ty) {
            current
        } else {
            self.bindings.undo(mark);
            CelType::Dyn
        }
    }

    /// Resolves a call against the function's overloads and returns its result type.
    fn call(&mut self, id: u64, name: &str, member: bool, args: &[CelType]) -> CelType {
        let Some(candidates) = overloads(name, member) else {
            if overloads(name, !member).is_some() {
                self.no_overload(id, name, member, args);
            } else {
                self.error(id, format!("undeclared reference to `{name}`"));
            }
            return CelType::Dyn;
        };
        // Every overload that fits counts towards the result type; the first one's bindings
        // are kept.
        let mark = self.bindings.mark();
        let mut result: Option<CelType> = None;
        let mut first: Option<&Overload> = None;
        for overload in candidates {
            let (params, returns) = overload;
            let fitted = self.bindings.fit(params, *returns, args);
            self.bindings.undo(mark);
            let Some(returned) = fitted else {
                continue;
            };
            result = Some(match result {
                None => returned,
                Some(previous) if previous == returned => previous,
                // Several overloads fit (a `dyn` argument) with different results.
                Some(_) => CelType::Dyn,
            });
            first = first.or(Some(overload));
        }
        match (result, first) {
            (Some(result), Some((params, returns))) => {
                // Keep the bindings of the first fit (it fitted before, so it fits again).
                let _ = self.bindings.fit(params, *returns, args);
                result
            }
            _ => {
                self.no_overload(id, name, member, args);
                CelType::Dyn
            }
        }
    }

    fn no_overload(&mut self, id: u64, name: &str, member: bool, args: &[CelType]) {
        let shown: Vec<String> = args.iter().map(|arg| self.show(arg)).collect();
        let applied = match (member, shown.split_first()) {
            (true, Some((receiver, rest))) => format!("{receiver}.({})", rest.join(", ")),
            _ => format!("({})", shown.join(", ")),
        };
        self.error(
            id,
            format!(
                "no matching overload for `{}` on {applied}",
                shown_name(name)
            ),
        );
    }

    fn comprehension(&mut self, id: u64, comprehension: &ComprehensionExpr) -> CelType {
        let range = self.expr(&comprehension.iter_range);
        let (first, second) = match self.resolve(&range) {
            CelType::List(elem) => (
                if comprehension.iter_var2.is_some() {
                    CelType::Int
                } else {
                    *elem.clone()
                },
                *elem,
            ),
            CelType::Map(key, value) => (*key, *value),
            CelType::Dyn | CelType::Var(_) => (CelType::Dyn, CelType::Dyn),
            other => {
                self.error(
                    id,
                    format!(
                        "expression of type `{}` cannot be the range of a comprehension (must be a list, a map or dyn)",
                        type_name(&other)
                    ),
                );
                (CelType::Dyn, CelType::Dyn)
            }
        };
        let accumulator = self.expr(&comprehension.accu_init);
        let mark = self.scopes.len();
        self.scopes
            .push((comprehension.accu_var.clone(), accumulator.clone()));
        self.scopes.push((comprehension.iter_var.clone(), first));
        if let Some(second_var) = &comprehension.iter_var2 {
            self.scopes.push((second_var.clone(), second));
        }
        let condition = self.expr(&comprehension.loop_cond);
        if !self.bindings.unify(&condition, &CelType::Bool) {
            let shown = self.show(&condition);
            self.error(
                comprehension.loop_cond.id,
                format!("comprehension condition must be a bool, found `{shown}`"),
            );
        }
        let step = self.expr(&comprehension.loop_step);
        if !self.bindings.unify(&accumulator, &step) {
            let (expected, found) = (self.show(&accumulator), self.show(&step));
            self.error(
                comprehension.loop_step.id,
                format!("comprehension step must be a `{expected}`, found `{found}`"),
            );
        }
        self.scopes.truncate(mark + 1);
        let result = self.expr(&comprehension.result);
        self.scopes.truncate(mark);
        result
    }
}

fn literal_type(literal: &LiteralValue) -> CelType {
    match literal {
        LiteralValue::Boolean(_) => CelType::Bool,
        LiteralValue::Bytes(_) => CelType::Bytes,
        LiteralValue::Double(_) => CelType::Double,
        LiteralValue::Int(_) => CelType::Int,
        LiteralValue::Null => CelType::Null,
        LiteralValue::String(_) => CelType::String,
        LiteralValue::UInt(_) => CelType::Uint,
    }
}

/// A signature type with the overload's parameters `A` and `B` replaced by `a` and `b`.
fn instantiate(sig: Sig, a: &CelType, b: &CelType) -> CelType {
    match sig {
        Sig::Dyn => CelType::Dyn,
        Sig::Bool => CelType::Bool,
        Sig::Int => CelType::Int,
        Sig::Uint => CelType::Uint,
        Sig::Double => CelType::Double,
        Sig::String => CelType::String,
        Sig::Bytes => CelType::Bytes,
        Sig::Duration => CelType::Duration,
        Sig::Timestamp => CelType::Timestamp,
        Sig::IpAddress => CelType::IpAddress,
        Sig::Type => CelType::Type,
        Sig::A => a.clone(),
        Sig::B => b.clone(),
        Sig::ListA => CelType::List(Box::new(a.clone())),
        Sig::MapAb => CelType::Map(Box::new(a.clone()), Box::new(b.clone())),
        Sig::MapStringDyn => CelType::Map(Box::new(CelType::String), Box::new(CelType::Dyn)),
    }
}

/// A resolved type with the variables nothing bound turned into `dyn`.
fn settle(ty: CelType) -> CelType {
    match ty {
        CelType::Var(_) => CelType::Dyn,
        CelType::List(elem) => CelType::List(Box::new(settle(*elem))),
        CelType::Map(key, value) => CelType::Map(Box::new(settle(*key)), Box::new(settle(*value))),
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Parses `text` (with the standard macros) and checks it against `params`.
    fn run(text: &str, params: &[(&str, CaveatType)]) -> Checked {
        let expr = cel::parser::Parser::new()
            .parse(text)
            .unwrap_or_else(|e| panic!("`{text}` does not parse: {e:?}"));
        let params: Vec<(String, CelType)> = params
            .iter()
            .map(|(name, ty)| (name.to_string(), CelType::of_parameter(ty)))
            .collect();
        check(&expr, &params)
    }

    fn params() -> Vec<(&'static str, CaveatType)> {
        use CaveatType::*;
        vec![
            ("i", Int),
            ("u", Uint),
            ("d", Double),
            ("s", String),
            ("b", Bool),
            ("by", Bytes),
            ("dur", Duration),
            ("ts", Timestamp),
            ("ip", IpAddress),
            ("a", Any),
            ("li", List(Box::new(Int))),
            ("ls", List(Box::new(String))),
            ("la", List(Box::new(Any))),
            ("mi", Map(Box::new(Int))),
            ("ma", Map(Box::new(Any))),
            ("mli", Map(Box::new(List(Box::new(Int))))),
        ]
    }

    /// The type of `text`, which must check without errors.
    fn type_of(text: &str) -> CelType {
        let checked = run(text, &params());
        assert!(
            checked.errors.is_empty(),
            "`{text}` should check, got {:?}",
            checked.errors
        );
        checked.result
    }

    /// The single error message `text` produces.
    fn error_of(text: &str) -> String {
        let checked = run(text, &params());
        assert_eq!(
            checked.errors.len(),
            1,
            "`{text}` should have one error, got {:?}",
            checked.errors
        );
        checked.errors[0].1.clone()
    }

    fn list(elem: CelType) -> CelType {
        CelType::List(Box::new(elem))
    }

    #[test]
    fn literals_and_parameters() {
        assert_eq!(type_of("true"), CelType::Bool);
        assert_eq!(type_of("1"), CelType::Int);
        assert_eq!(type_of("1u"), CelType::Uint);
        assert_eq!(type_of("1.5"), CelType::Double);
        assert_eq!(type_of("'x'"), CelType::String);
        assert_eq!(type_of("b'x'"), CelType::Bytes);
        assert_eq!(type_of("null"), CelType::Null);
        assert_eq!(type_of("ts"), CelType::Timestamp);
        assert_eq!(type_of("ip"), CelType::IpAddress);
        // SpiceDB declares `uint` parameters as CEL `int`.
        assert_eq!(type_of("u"), CelType::Int);
        assert_eq!(type_of("u + 1"), CelType::Int);
        assert_eq!(
            type_of("mi"),
            CelType::Map(Box::new(CelType::String), Box::new(CelType::Int))
        );
        assert_eq!(type_of("int"), CelType::Type);
        assert_eq!(type_of("type(i) == int"), CelType::Bool);
    }

    #[test]
    fn operators() {
        assert_eq!(type_of("i == 1 && s != 'x' || !b"), CelType::Bool);
        assert_eq!(type_of("-i * 2 % 3 - i / 4"), CelType::Int);
        assert_eq!(type_of("-d + 1.0"), CelType::Double);
        assert_eq!(type_of("1u + 2u"), CelType::Uint);
        assert_eq!(type_of("s + 'x'"), CelType::String);
        assert_eq!(type_of("by + b'x'"), CelType::Bytes);
        assert_eq!(type_of("li + [1]"), list(CelType::Int));
        assert_eq!(type_of("b ? i : 2"), CelType::Int);
        assert_eq!(type_of("'x' in ls && 'k' in mi && 1 in li"), CelType::Bool);
        // Ordering compares numbers across types.
        assert_eq!(
            type_of("i < d && d >= 1u && 1u > i && i <= 2"),
            CelType::Bool
        );
        assert_eq!(type_of("s < 'b' && by > b'a' && b < true"), CelType::Bool);
    }

    #[test]
    fn timestamps_and_durations() {
        assert_eq!(type_of("ts + dur"), CelType::Timestamp);
        assert_eq!(type_of("dur + ts"), CelType::Timestamp);
        assert_eq!(type_of("ts - dur"), CelType::Timestamp);
        assert_eq!(type_of("ts - ts"), CelType::Duration);
        assert_eq!(type_of("dur + duration('1h30m')"), CelType::Duration);
        assert_eq!(
            type_of("ts > timestamp('2024-01-01T00:00:00Z') && dur < duration('1h')"),
            CelType::Bool
        );
        for method in [
            "getFullYear",
            "getMonth",
            "getDayOfMonth",
            "getDate",
            "getDayOfWeek",
            "getDayOfYear",
            "getHours",
            "getMinutes",
            "getSeconds",
            "getMilliseconds",
        ] {
            assert_eq!(type_of(&format!("ts.{method}()")), CelType::Int, "{method}");
            assert_eq!(
                type_of(&format!("ts.{method}('Europe/Paris')")),
                CelType::Int,
                "{method}"
            );
        }
        assert_eq!(
            type_of("dur.getHours() + dur.getMilliseconds()"),
            CelType::Int
        );
        assert_eq!(type_of("int(ts) + int(dur)"), CelType::Int);
        assert_eq!(type_of("string(ts) + string(dur)"), CelType::String);
    }

    #[test]
    fn functions_and_methods() {
        assert_eq!(
            type_of("size(s) + s.size() + size(li) + mi.size() + size(by)"),
            CelType::Int
        );
        assert_eq!(
            type_of("s.contains('a') && s.startsWith('a') && s.endsWith('z') && s.matches('^a')"),
            CelType::Bool
        );
        assert_eq!(type_of("matches(s, '^a')"), CelType::Bool);
        assert_eq!(type_of("ip.in_cidr('10.0.0.0/8')"), CelType::Bool);
        assert_eq!(type_of("ma.isSubtreeOf({'a': 1})"), CelType::Bool);
        assert_eq!(type_of("int('1') + int(1.5) + int(u)"), CelType::Int);
        assert_eq!(type_of("uint(i) + uint('2')"), CelType::Uint);
        assert_eq!(type_of("double(i) + double('1.5')"), CelType::Double);
        assert_eq!(
            type_of("string(i) + string(b) + string(by)"),
            CelType::String
        );
        assert_eq!(type_of("bytes(s)"), CelType::Bytes);
        assert_eq!(type_of("bool('true')"), CelType::Bool);
        assert_eq!(type_of("dyn(i)"), CelType::Dyn);
    }

    #[test]
    fn indexing_selection_and_literals() {
        assert_eq!(type_of("li[0]"), CelType::Int);
        assert_eq!(type_of("mi['k']"), CelType::Int);
        assert_eq!(type_of("mi.k"), CelType::Int);
        assert_eq!(type_of("mli.k[0]"), CelType::Int);
        assert_eq!(type_of("has(mi.k)"), CelType::Bool);
        assert_eq!(type_of("[1, 2][0]"), CelType::Int);
        assert_eq!(type_of("{'a': 'b'}['a']"), CelType::String);
        // Mixed literals are dyn, as in cel-go.
        assert_eq!(type_of("[1, 'a']"), list(CelType::Dyn));
        assert_eq!(type_of("[]"), list(CelType::Dyn));
    }

    #[test]
    fn dyn_values_fit_everywhere() {
        assert_eq!(type_of("a == 1"), CelType::Bool);
        assert_eq!(type_of("a + 1"), CelType::Int);
        assert_eq!(type_of("a + a"), CelType::Dyn);
        assert_eq!(type_of("a.b.c"), CelType::Dyn);
        assert_eq!(type_of("a[0].foo"), CelType::Dyn);
        assert_eq!(type_of("la[0] == 'x' && la[1] > 3"), CelType::Bool);
        assert_eq!(type_of("ma['k'] == 1 && ma.k.size() == 2"), CelType::Bool);
        assert_eq!(type_of("a.in_cidr('10.0.0.0/8')"), CelType::Bool);
        assert_eq!(type_of("size(a)"), CelType::Int);
        assert_eq!(type_of("dyn(i) == 'x'"), CelType::Bool);
    }

    #[test]
    fn macros() {
        assert_eq!(type_of("li.all(x, x > 1)"), CelType::Bool);
        assert_eq!(type_of("li.exists(x, x == i)"), CelType::Bool);
        assert_eq!(type_of("li.exists_one(x, x == 2)"), CelType::Bool);
        assert_eq!(type_of("li.map(x, x * 2)"), list(CelType::Int));
        assert_eq!(
            type_of("li.map(x, x > 0, string(x))"),
            list(CelType::String)
        );
        assert_eq!(
            type_of("ls.filter(x, x.startsWith('a'))"),
            list(CelType::String)
        );
        assert_eq!(type_of("li.map(x, x * 2).all(y, y > 0)"), CelType::Bool);
        assert_eq!(
            type_of("mi.all(k, k.size() > 0 && mi[k] > 0)"),
            CelType::Bool
        );
        assert_eq!(type_of("la.exists(x, x.foo == 1)"), CelType::Bool);
        assert_eq!(type_of("a.all(x, x)"), CelType::Bool);
        // A comprehension variable shadows a parameter of the same name.
        let checked = run("li.all(s, s > 1)", &params());
        assert!(checked.errors.is_empty(), "{:?}", checked.errors);
        assert!(!checked.used.contains("s"));
    }

    #[test]
    fn equality_across_types_is_an_error() {
        assert_eq!(
            error_of("i == 'x'"),
            "no matching overload for `_==_` on (int, string)"
        );
        assert_eq!(
            error_of("1 == 1.0"),
            "no matching overload for `_==_` on (int, double)"
        );
        assert_eq!(
            error_of("ip == 'x'"),
            "no matching overload for `_==_` on (ipaddress, string)"
        );
        assert_eq!(
            error_of("li == ls"),
            "no matching overload for `_==_` on (list<int>, list<string>)"
        );
        assert_eq!(
            error_of("s != 1u"),
            "no matching overload for `_!=_` on (string, uint)"
        );
    }

    #[test]
    fn arithmetic_on_mismatched_types_is_an_error() {
        assert_eq!(
            error_of("i + d"),
            "no matching overload for `_+_` on (int, double)"
        );
        assert_eq!(
            error_of("i + 1u"),
            "no matching overload for `_+_` on (int, uint)"
        );
        assert_eq!(
            error_of("s - 'x'"),
            "no matching overload for `_-_` on (string, string)"
        );
        assert_eq!(
            error_of("ts + ts"),
            "no matching overload for `_+_` on (timestamp, timestamp)"
        );
        assert_eq!(error_of("-s"), "no matching overload for `-_` on (string)");
        assert_eq!(
            error_of("d % 2.0"),
            "no matching overload for `_%_` on (double, double)"
        );
        assert_eq!(error_of("!i"), "no matching overload for `!_` on (int)");
    }

    #[test]
    fn comparisons_across_incompatible_types_are_errors() {
        assert_eq!(
            error_of("s < 1"),
            "no matching overload for `_<_` on (string, int)"
        );
        assert_eq!(
            error_of("ts > dur"),
            "no matching overload for `_>_` on (timestamp, duration)"
        );
        assert_eq!(
            error_of("ts > '2020-01-01T00:00:00Z'"),
            "no matching overload for `_>_` on (timestamp, string)"
        );
    }

    #[test]
    fn logic_and_conditionals_need_bools() {
        assert_eq!(
            error_of("i && b"),
            "no matching overload for `_&&_` on (int, bool)"
        );
        assert_eq!(
            error_of("b || s"),
            "no matching overload for `_||_` on (bool, string)"
        );
        assert_eq!(
            error_of("i ? 1 : 2"),
            "no matching overload for `_?_:_` on (int, int, int)"
        );
        assert_eq!(
            error_of("b ? 1 : 'x'"),
            "no matching overload for `_?_:_` on (bool, int, string)"
        );
    }

    #[test]
    fn unknown_functions_and_methods_are_errors() {
        assert_eq!(
            error_of("frobnicate(i)"),
            "undeclared reference to `frobnicate`"
        );
        assert_eq!(
            error_of("s.frobnicate()"),
            "undeclared reference to `frobnicate`"
        );
        assert_eq!(
            error_of("getHours(ts)"),
            "no matching overload for `getHours` on (timestamp)"
        );
        assert_eq!(
            error_of("i.size()"),
            "no matching overload for `size` on int.()"
        );
        assert_eq!(error_of("nope == 1"), "undeclared reference to `nope`");
    }

    #[test]
    fn wrong_argument_types_are_errors() {
        assert_eq!(
            error_of("ip.in_cidr(1)"),
            "no matching overload for `in_cidr` on ipaddress.(int)"
        );
        assert_eq!(
            error_of("s.in_cidr('10.0.0.0/8')"),
            "no matching overload for `in_cidr` on string.(string)"
        );
        assert_eq!(
            error_of("s.contains(1)"),
            "no matching overload for `contains` on string.(int)"
        );
        assert_eq!(
            error_of("ts.getHours(1)"),
            "no matching overload for `getHours` on timestamp.(int)"
        );
        assert_eq!(
            error_of("dur.getFullYear()"),
            "no matching overload for `getFullYear` on duration.()"
        );
        assert_eq!(
            error_of("timestamp(true)"),
            "no matching overload for `timestamp` on (bool)"
        );
        assert_eq!(
            error_of("size(i)"),
            "no matching overload for `size` on (int)"
        );
    }

    #[test]
    fn indexing_and_membership_errors() {
        assert_eq!(
            error_of("li['x']"),
            "no matching overload for `_[_]` on (list<int>, string)"
        );
        assert_eq!(
            error_of("mi[1]"),
            "no matching overload for `_[_]` on (map<string, int>, int)"
        );
        assert_eq!(
            error_of("1 in ls"),
            "no matching overload for `in` on (int, list<string>)"
        );
        assert_eq!(
            error_of("i.foo"),
            "type `int` does not support field selection"
        );
        assert_eq!(
            error_of("has(s.foo)"),
            "type `string` does not support field selection"
        );
    }

    #[test]
    fn macro_errors() {
        assert_eq!(
            error_of("i.all(x, x > 0)"),
            "expression of type `int` cannot be the range of a comprehension (must be a list, a map or dyn)"
        );
        assert_eq!(
            error_of("li.all(x, x + 1)"),
            "no matching overload for `_&&_` on (bool, int)"
        );
        assert_eq!(
            error_of("ls.exists(x, x > 1)"),
            "no matching overload for `_>_` on (string, int)"
        );
        assert_eq!(
            error_of("li.map(x, x + 'a')"),
            "no matching overload for `_+_` on (int, string)"
        );
    }

    #[test]
    fn errors_do_not_cascade() {
        let checked = run("(i + 'a') == 2 && nope.foo", &params());
        let messages: Vec<&str> = checked.errors.iter().map(|(_, m)| m.as_str()).collect();
        assert_eq!(
            messages,
            [
                "no matching overload for `_+_` on (int, string)",
                "undeclared reference to `nope`"
            ]
        );
    }

    #[test]
    fn long_chains_check_without_copying_bindings() {
        // Trial unifications are undone, not copied: a chain of thousands of overloaded
        // calls stays linear. The parser recurses, so this runs on a large stack.
        let checked = std::thread::Builder::new()
            .stack_size(64 << 20)
            .spawn(|| {
                let chain = vec!["i"; 4000].join(" + ");
                let list = vec!["[i]"; 1000].join(" + ");
                (
                    type_of(&format!("{chain} > 0")),
                    type_of(&format!("({list})[0] == i")),
                )
            })
            .unwrap()
            .join()
            .unwrap();
        assert_eq!(checked, (CelType::Bool, CelType::Bool));
    }

    #[test]
    fn used_parameters_are_reported() {
        let checked = run("i > 1 && li.exists(x, x == 2)", &params());
        let mut used: Vec<&str> = checked.used.iter().map(String::as_str).collect();
        used.sort_unstable();
        assert_eq!(used, ["i", "li"]);
    }
}
