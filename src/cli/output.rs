//! How the CLI prints: answers to standard output (a closed pipe ends the command quietly),
//! errors once each to standard error (schema errors with the offending line and a caret),
//! and progress with readable rates.

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use indicatif::{ProgressBar, ProgressState, ProgressStyle};

/// Prints one line of an answer.
pub fn line(text: &str) -> std::io::Result<()> {
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_bytes())?;
    out.write_all(b"\n")
}

/// A failed schema write, with the text it was about (for pointing at the offending lines).
#[derive(Debug, thiserror::Error)]
#[error("{error}")]
pub struct SchemaFailure {
    error: anyhow::Error,
    file: PathBuf,
    text: String,
}

impl SchemaFailure {
    /// `error` about the schema `text` read from `file`.
    pub fn new(error: anyhow::Error, file: &Path, text: &str) -> Self {
        Self {
            error,
            file: file.to_path_buf(),
            text: text.to_string(),
        }
    }
}

/// Prints `err` and gives the exit code: a closed output pipe is no error.
pub fn report(err: &anyhow::Error) -> ExitCode {
    if is_broken_pipe(err) {
        return ExitCode::SUCCESS;
    }
    let text = match err.downcast_ref::<SchemaFailure>() {
        Some(failure) => describe_schema(failure),
        None => format!("error: {}", describe(err)),
    };
    let _ = writeln!(std::io::stderr().lock(), "{text}");
    ExitCode::FAILURE
}

fn is_broken_pipe(err: &anyhow::Error) -> bool {
    err.chain().any(|cause| {
        cause
            .downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}

/// The error and its causes, each said once (a cause whose text its parent already includes
/// adds nothing).
pub fn describe(err: &anyhow::Error) -> String {
    let mut text = String::new();
    for cause in err.chain() {
        let said = cause.to_string();
        if said.is_empty() || text.contains(&said) {
            continue;
        }
        if !text.is_empty() {
            text.push_str(": ");
        }
        text.push_str(&said);
    }
    text
}

/// One `line L, column C: message` found in an error text.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Located {
    line: usize,
    column: usize,
    message: String,
}

/// Every `line L, column C: message` in `text` (messages end at `; line ` or the end).
fn located(text: &str) -> Vec<Located> {
    let mut found = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find("line ") {
        let after = &rest[start + 5..];
        let parsed = (|| {
            let (line, after) = after.split_once(", column ")?;
            let (column, after) = after.split_once(": ")?;
            let end = after.find("; line ").unwrap_or(after.len());
            Some((
                line.parse().ok()?,
                column.parse().ok()?,
                after[..end].to_string(),
                &after[end..],
            ))
        })();
        match parsed {
            Some((line, column, message, next)) => {
                found.push(Located {
                    line,
                    column,
                    message,
                });
                rest = next;
            }
            None => rest = after,
        }
    }
    found
}

fn describe_schema(failure: &SchemaFailure) -> String {
    let whole = describe(&failure.error);
    let errors = located(&whole);
    if errors.is_empty() {
        return format!("error: {whole}");
    }
    let prefix = whole.find("line ").map_or("", |at| &whole[..at]);
    let prefix = prefix.trim_end_matches([' ', ':']);
    let mut out = format!(
        "error: {}",
        if prefix.is_empty() {
            "invalid schema"
        } else {
            prefix
        }
    );
    let lines: Vec<&str> = failure.text.lines().collect();
    let width = errors
        .iter()
        .map(|e| e.line.to_string().len())
        .max()
        .unwrap_or(1);
    for error in &errors {
        let _ = write!(
            out,
            "\n{:width$}--> {}:{}:{}\n{:width$} |",
            "",
            failure.file.display(),
            error.line,
            error.column,
            ""
        );
        if let Some(source) = error.line.checked_sub(1).and_then(|i| lines.get(i)) {
            let caret_at: usize = source
                .chars()
                .take(error.column.saturating_sub(1))
                .map(|c| if c == '\t' { 4 } else { 1 })
                .sum();
            let shown = source.replace('\t', "    ");
            let _ = write!(
                out,
                "\n{:>width$} | {shown}\n{:width$} | {:caret_at$}^ {}",
                error.line, "", "", error.message
            );
        } else {
            let _ = write!(out, " {}", error.message);
        }
    }
    out
}

/// `1234567` as `1,234,567`.
pub fn group_digits(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn style(template: &str) -> ProgressStyle {
    let counted = |state: &ProgressState, w: &mut dyn std::fmt::Write| {
        let _ = write!(w, "{}", group_digits(state.pos()));
    };
    let rate = |state: &ProgressState, w: &mut dyn std::fmt::Write| {
        let per_sec = state.per_sec();
        let per_sec = if per_sec.is_finite() {
            per_sec.round() as u64
        } else {
            0
        };
        let _ = write!(w, "{}/s", group_digits(per_sec));
    };
    ProgressStyle::with_template(template)
        .unwrap_or_else(|_| ProgressStyle::default_spinner())
        .with_key("count", counted)
        .with_key("rate", rate)
}

/// A spinner counting `what` with its rate (`412,415/s`); drawn only on a terminal.
pub fn spinner(what: &str) -> ProgressBar {
    let progress = ProgressBar::new_spinner();
    progress.set_style(style(&format!(
        "{{spinner}} {{count}} {what} ({{rate}}) {{msg}}"
    )));
    progress
}
