//! The schema language: SpiceDB's `.zed` text → a checked [`Schema`].
//!
//! Pure: no I/O. [`compile`] runs the lexer and parser (every syntax error, each with line
//! and column) and then the compiler (every semantic error: unknown or duplicate names,
//! arrows over permissions or wildcards, permission cycles, caveat problems). The result is
//! the [`model`] the engine walks. No input panics; nesting is bounded and reported.

mod ast;
mod caveat;
mod cel_types;
mod compile;
mod error;
mod lexer;
pub mod model;
mod parser;

#[cfg(test)]
mod tests;

pub use error::{SchemaError, SchemaErrors};
pub use model::*;

/// Compiles schema text into a checked [`Schema`], or every error found in it, in source order.
///
/// Syntax errors are reported alone (semantic checks of a half-read schema would mostly
/// repeat them); when the text parses, every semantic error is reported.
pub fn compile(source: &str) -> Result<Schema, SchemaErrors> {
    let (file, mut errors) = parser::parse(source);
    if errors.is_empty() {
        match compile::compile_file(&file, source) {
            Ok(schema) => return Ok(schema),
            Err(found) => errors = found,
        }
    }
    errors.sort_by_key(|e| (e.line, e.column));
    Err(SchemaErrors(errors))
}
