//! Caveat expressions: syntax-check the CEL text with the `cel` crate and check that every
//! free identifier is a declared parameter and every parameter is used (as SpiceDB does).
//!
//! The `cel` parser is recursive (ANTLR) and overflows small stacks on deep nesting, so the
//! text is first bounded (length and bracket depth) and then parsed on a dedicated thread
//! with a large stack. A panic inside the crate is caught and reported as an error.

use std::collections::HashSet;

use cel::common::ast::{EntryExpr, Expr, IdedExpr, SourceInfo};

use super::error::{Pos, SchemaError};

/// Longest caveat expression accepted, in bytes.
const MAX_EXPRESSION_BYTES: usize = 16 * 1024;
/// Deepest bracket nesting (`(`, `[`, `{`) accepted in a caveat expression.
const MAX_BRACKET_DEPTH: usize = 32;
/// Stack for the parsing thread: the parser recurses deeply even on bounded input.
const PARSER_STACK_BYTES: usize = 64 << 20;

/// Names CEL itself resolves (type denotations), never caveat parameters.
const BUILTIN_IDENTS: &[&str] = &[
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

/// A problem at a 1-based (line, column) inside the expression text.
type Finding = (usize, usize, String);

/// Checks one caveat expression. `params` are the declared parameters with their positions;
/// `start` is where the expression text begins in the schema.
pub(crate) fn check_expression(
    caveat_name: &str,
    expression: &str,
    start: Pos,
    params: &[(String, Pos)],
) -> Vec<SchemaError> {
    if expression.is_empty() {
        // The parser has already reported the missing expression.
        return Vec::new();
    }
    if expression.len() > MAX_EXPRESSION_BYTES {
        return vec![SchemaError::at(
            start,
            format!(
                "expression for caveat `{caveat_name}` is too long (more than {MAX_EXPRESSION_BYTES} bytes)"
            ),
        )];
    }
    if let Some((line, column)) = too_deep(expression) {
        return vec![SchemaError::at(
            map_pos(start, line, column),
            format!(
                "expression for caveat `{caveat_name}` is nested too deeply (more than {MAX_BRACKET_DEPTH} levels)"
            ),
        )];
    }
    let text = expression.to_string();
    let names: Vec<String> = params.iter().map(|(name, _)| name.clone()).collect();
    let handle = std::thread::Builder::new()
        .name("zanzi-cel-parse".to_string())
        .stack_size(PARSER_STACK_BYTES)
        .spawn(move || parse_and_resolve(&text, &names));
    let outcome = match handle {
        Ok(handle) => handle.join().ok(),
        Err(_) => None,
    };
    let Some((findings, used)) = outcome else {
        return vec![SchemaError::at(
            start,
            format!("internal error while parsing the expression of caveat `{caveat_name}`"),
        )];
    };
    let mut errors: Vec<SchemaError> = findings
        .into_iter()
        .map(|(line, column, message)| {
            SchemaError::at(
                map_pos(start, line, column),
                format!("invalid expression for caveat `{caveat_name}`: {message}"),
            )
        })
        .collect();
    if errors.is_empty() {
        for (name, pos) in params {
            if !used.contains(name) {
                errors.push(SchemaError::at(
                    *pos,
                    format!("parameter `{name}` for caveat `{caveat_name}` is unused"),
                ));
            }
        }
    }
    errors
}

/// Maps a 1-based position inside the expression to the schema text.
fn map_pos(start: Pos, line: usize, column: usize) -> Pos {
    let line = line.max(1);
    let column = column.max(1);
    if line == 1 {
        Pos {
            line: start.line,
            column: start.column + column - 1,
        }
    } else {
        Pos {
            line: start.line + line - 1,
            column,
        }
    }
}

/// The position of the first bracket nested deeper than allowed, outside string literals.
fn too_deep(text: &str) -> Option<(usize, usize)> {
    let mut depth = 0usize;
    let mut quote: Option<char> = None;
    let mut escaped = false;
    let (mut line, mut column) = (1usize, 0usize);
    for c in text.chars() {
        if c == '\n' {
            line += 1;
            column = 0;
        } else {
            column += 1;
        }
        if let Some(q) = quote {
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == q {
                quote = None;
            }
            continue;
        }
        match c {
            '"' | '\'' => quote = Some(c),
            '(' | '[' | '{' => {
                depth += 1;
                if depth > MAX_BRACKET_DEPTH {
                    return Some((line, column));
                }
            }
            ')' | ']' | '}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    None
}

/// Parses `text` and returns syntax errors or unknown identifiers, plus the parameters used.
fn parse_and_resolve(text: &str, params: &[String]) -> (Vec<Finding>, HashSet<String>) {
    let mut findings = Vec::new();
    let mut used = HashSet::new();
    match cel::parser::Parser::new().parse_with_source_info(text) {
        Err(errors) => {
            for error in errors.errors {
                let line = usize::try_from(error.pos.0).unwrap_or(1);
                let column = usize::try_from(error.pos.1).unwrap_or(1);
                findings.push((line, column, lowercase_first(&error.msg)));
            }
        }
        Ok((expr, info)) => {
            let mut resolver = Resolver {
                params,
                scopes: Vec::new(),
                info: &info,
                text,
                findings: &mut findings,
                used: &mut used,
            };
            resolver.walk(&expr);
        }
    }
    (findings, used)
}

fn lowercase_first(message: &str) -> String {
    let mut chars = message.chars();
    match chars.next() {
        Some(first) => first.to_lowercase().chain(chars).collect(),
        None => String::new(),
    }
}

struct Resolver<'a> {
    params: &'a [String],
    /// Variables bound by enclosing comprehensions (macros such as `exists`).
    scopes: Vec<String>,
    info: &'a SourceInfo,
    text: &'a str,
    findings: &'a mut Vec<Finding>,
    used: &'a mut HashSet<String>,
}

impl Resolver<'_> {
    fn walk(&mut self, expr: &IdedExpr) {
        match &expr.expr {
            Expr::Unspecified | Expr::Literal(_) => {}
            Expr::Ident(name) => self.resolve(name, expr.id),
            Expr::Select(select) => self.walk(&select.operand),
            Expr::Call(call) => {
                if let Some(target) = &call.target {
                    self.walk(target);
                }
                for arg in &call.args {
                    self.walk(arg);
                }
            }
            Expr::List(list) => {
                for element in &list.elements {
                    self.walk(element);
                }
            }
            Expr::Map(map) => self.walk_entries(&map.entries),
            Expr::Struct(structure) => self.walk_entries(&structure.entries),
            Expr::Comprehension(comp) => {
                self.walk(&comp.iter_range);
                self.walk(&comp.accu_init);
                let mark = self.scopes.len();
                self.scopes.push(comp.accu_var.clone());
                self.walk(&comp.result);
                self.scopes.push(comp.iter_var.clone());
                if let Some(second) = &comp.iter_var2 {
                    self.scopes.push(second.clone());
                }
                self.walk(&comp.loop_cond);
                self.walk(&comp.loop_step);
                self.scopes.truncate(mark);
            }
        }
    }

    fn walk_entries(&mut self, entries: &[cel::common::ast::IdedEntryExpr]) {
        for entry in entries {
            match &entry.expr {
                EntryExpr::StructField(field) => self.walk(&field.value),
                EntryExpr::MapEntry(map_entry) => {
                    self.walk(&map_entry.key);
                    self.walk(&map_entry.value);
                }
            }
        }
    }

    fn resolve(&mut self, name: &str, id: u64) {
        if self.scopes.iter().any(|bound| bound == name) {
            return;
        }
        if self.params.iter().any(|param| param == name) {
            self.used.insert(name.to_string());
            return;
        }
        if BUILTIN_IDENTS.contains(&name) {
            return;
        }
        let (line, column) = self
            .info
            .offset_for(id)
            .map(|(start, _)| line_column(self.text, start as usize))
            .unwrap_or((1, 1));
        self.findings
            .push((line, column, format!("undeclared reference to `{name}`")));
    }
}

/// The 1-based line and column of the `offset`-th character of `text`.
fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let (mut line, mut column) = (1, 1);
    for c in text.chars().take(offset) {
        if c == '\n' {
            line += 1;
            column = 1;
        } else {
            column += 1;
        }
    }
    (line, column)
}
