//! Caveat expressions: parse the CEL text with the `cel` crate, type-check it against the
//! declared parameters (`cel_types`; every free identifier must be a parameter, calls must
//! match an overload, the result must be a `bool`) and check that every parameter is used,
//! as SpiceDB does.
//!
//! The `cel` parser is recursive (ANTLR) and overflows small stacks on deep nesting, so the
//! text is first bounded (length and bracket depth) and then parsed on a dedicated thread
//! with a large stack. A panic inside the crate is caught and reported as an error.

use std::collections::HashSet;

use super::cel_types::{self, CelType};
use super::error::{Pos, SchemaError};
use super::model::CaveatType;

/// Longest caveat expression accepted, in bytes.
const MAX_EXPRESSION_BYTES: usize = 16 * 1024;
/// Deepest bracket nesting (`(`, `[`, `{`) accepted in a caveat expression.
const MAX_BRACKET_DEPTH: usize = 32;
/// Stack for the parsing thread: the parser recurses deeply even on bounded input.
const PARSER_STACK_BYTES: usize = 64 << 20;

/// A problem at a 1-based (line, column) inside the expression text.
type Finding = (usize, usize, String);

/// A declared caveat parameter: name, position in the schema, and type (`None` when the
/// type itself was invalid and already reported; such a parameter is checked as `dyn`).
pub(crate) struct Param {
    pub(crate) name: String,
    pub(crate) pos: Pos,
    pub(crate) ty: Option<CaveatType>,
}

/// Checks one caveat expression. `params` are the declared parameters; `start` is where the
/// expression text begins in the schema.
pub(crate) fn check_expression(
    caveat_name: &str,
    expression: &str,
    start: Pos,
    params: &[Param],
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
    let typed: Vec<(String, CelType)> = params
        .iter()
        .map(|param| {
            let ty = param
                .ty
                .as_ref()
                .map_or(CelType::Dyn, CelType::of_parameter);
            (param.name.clone(), ty)
        })
        .collect();
    let handle = std::thread::Builder::new()
        .name("zanzi-cel-parse".to_string())
        .stack_size(PARSER_STACK_BYTES)
        .spawn(move || parse_and_check(&text, &typed));
    let outcome = match handle {
        Ok(handle) => handle.join().ok(),
        Err(_) => None,
    };
    let Some(Outcome {
        findings,
        result,
        used,
    }) = outcome
    else {
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
        if let Some(result) = result.filter(|ty| *ty != CelType::Bool) {
            errors.push(SchemaError::at(
                start,
                format!(
                    "invalid expression for caveat `{caveat_name}`: caveat expression must result in a boolean value: found `{}`",
                    cel_types::type_name(&result)
                ),
            ));
        }
    }
    if errors.is_empty() {
        for param in params {
            if !used.contains(&param.name) {
                errors.push(SchemaError::at(
                    param.pos,
                    format!(
                        "parameter `{}` for caveat `{caveat_name}` is unused",
                        param.name
                    ),
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

/// What parsing and checking one expression found.
struct Outcome {
    /// Syntax or type errors, at 1-based positions inside the expression.
    findings: Vec<Finding>,
    /// The expression's type, when it parsed.
    result: Option<CelType>,
    /// The parameters the expression refers to.
    used: HashSet<String>,
}

/// Parses `text` and type-checks it against `params`.
fn parse_and_check(text: &str, params: &[(String, CelType)]) -> Outcome {
    match cel::parser::Parser::new().parse_with_source_info(text) {
        Err(errors) => Outcome {
            findings: errors
                .errors
                .into_iter()
                .map(|error| {
                    let line = usize::try_from(error.pos.0).unwrap_or(1);
                    let column = usize::try_from(error.pos.1).unwrap_or(1);
                    (line, column, lowercase_first(&error.msg))
                })
                .collect(),
            result: None,
            used: HashSet::new(),
        },
        Ok((expr, info)) => {
            let checked = cel_types::check(&expr, params);
            let findings = checked
                .errors
                .into_iter()
                .map(|(id, message)| {
                    let (line, column) = info
                        .offset_for(id)
                        .map(|(start, _)| line_column(text, start as usize))
                        .unwrap_or((1, 1));
                    (line, column, message)
                })
                .collect();
            Outcome {
                findings,
                result: Some(checked.result),
                used: checked.used,
            }
        }
    }
}

fn lowercase_first(message: &str) -> String {
    let mut chars = message.chars();
    match chars.next() {
        Some(first) => first.to_lowercase().chain(chars).collect(),
        None => String::new(),
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
