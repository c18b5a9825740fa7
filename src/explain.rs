//! `zanzi check --explain`: a check trace printed as a tree, one line per step, the way
//! `zed permission check --explain` prints SpiceDB's traces.
//!
//! Each step reads `✓ doc:readme view [union] (41.2µs)`: a mark (`✓` has, `⨉` no, `?`
//! conditional), the resource, the relation or permission, the permission's operation, where
//! the answer came from when it was not walked (`(cached)`, `(group index)`, `(cycle)`) and
//! the time spent. A caveat evaluated at a step is a line beneath it, with the values it saw
//! or the parameters it missed; a step whose subject was found directly has the subject
//! beneath it. Following the `✓` marks from the root gives the path that granted access.
//! Colours (green yes, red no, names by kind) only when asked for, i.e. on a terminal.

use std::fmt::Write as _;
use std::time::Duration;

use crate::engine::{
    CaveatResult, CaveatTrace, CheckTrace, MemberKind, Permissionship, StepSource, TraceStep,
};

/// How a tree is printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Style {
    /// ANSI colours (for a terminal).
    pub colour: bool,
    /// The time spent on each step.
    pub timings: bool,
}

impl Style {
    /// No colours, with timings: what goes to a pipe or a file.
    pub const PLAIN: Style = Style {
        colour: false,
        timings: true,
    };
}

const RESET: &str = "\x1b[0m";
const GREEN: &str = "\x1b[32m";
const RED: &str = "\x1b[31m";
const MAGENTA: &str = "\x1b[35m";
const CYAN: &str = "\x1b[36m";
const FAINT: &str = "\x1b[90m";
const RELATION: &str = "\x1b[38;5;166m";
const PERMISSION: &str = "\x1b[38;5;35m";
const CAVEAT: &str = "\x1b[38;5;198m";
const SUBJECT: &str = "\x1b[38;5;99m";

/// The tree of `trace`, one line per step, each line ending in a newline.
pub fn render(trace: &CheckTrace, style: Style) -> String {
    let mut out = String::new();
    let subject = trace.subject.to_string();
    write_step(&mut out, &trace.root, &subject, style, "", None);
    out
}

/// Writes `step` and everything beneath it. `branch` is `Some(last)` for a child line (with
/// its connector) and `None` for the root.
fn write_step(
    out: &mut String,
    step: &TraceStep,
    subject: &str,
    style: Style,
    indent: &str,
    branch: Option<bool>,
) {
    let paint = Paint(style.colour);
    let (connector, inner) = connectors(indent, branch);
    let (mark, muted) = match &step.result {
        Permissionship::Has => (paint.with(GREEN, "✓"), false),
        Permissionship::No => (paint.with(RED, "⨉"), true),
        Permissionship::Conditional { .. } => (paint.with(MAGENTA, "?"), true),
    };
    let name_colour = match (muted, step.kind) {
        (true, _) => FAINT,
        (false, MemberKind::Relation) => RELATION,
        (false, MemberKind::Permission) => PERMISSION,
    };
    let resource = if muted {
        paint.with(FAINT, &step.resource.to_string())
    } else {
        step.resource.to_string()
    };
    let _ = write!(
        out,
        "{connector}{mark} {resource} {}",
        paint.with(name_colour, &step.member)
    );
    if let (MemberKind::Permission, Some(operation)) = (step.kind, step.operation) {
        let _ = write!(
            out,
            " {}",
            paint.with(FAINT, &format!("[{}]", operation.name()))
        );
    }
    let source = match step.source {
        StepSource::Walk => None,
        StepSource::Cache => Some("(cached)"),
        StepSource::GroupIndex => Some("(group index)"),
        StepSource::Cycle => Some("(cycle)"),
    };
    if let Some(source) = source {
        let _ = write!(out, " {}", paint.with(CYAN, source));
    }
    if style.timings {
        let _ = write!(out, " ({})", duration_text(step.duration));
    }
    out.push('\n');

    let mut children: Vec<Child<'_>> = Vec::new();
    if let Some(caveat) = &step.caveat {
        children.push(Child::Caveat(caveat));
    }
    children.extend(step.steps.iter().map(Child::Step));
    if step.steps.is_empty() && step.result.is_has() {
        children.push(Child::Subject);
    }
    let count = children.len();
    for (i, child) in children.into_iter().enumerate() {
        let last = i + 1 == count;
        match child {
            Child::Step(inner_step) => {
                write_step(out, inner_step, subject, style, &inner, Some(last));
            }
            Child::Caveat(caveat) => write_caveat(out, caveat, style, &inner, last),
            Child::Subject => {
                let (connector, _) = connectors(&inner, Some(last));
                let _ = writeln!(out, "{connector}{}", paint.with(SUBJECT, subject));
            }
        }
    }
}

enum Child<'a> {
    Caveat(&'a CaveatTrace),
    Step(&'a TraceStep),
    Subject,
}

/// The connector of a line and the indent of the lines beneath it.
fn connectors(indent: &str, branch: Option<bool>) -> (String, String) {
    match branch {
        None => (String::new(), String::new()),
        Some(false) => (format!("{indent}├── "), format!("{indent}│   ")),
        Some(true) => (format!("{indent}└── "), format!("{indent}    ")),
    }
}

fn write_caveat(out: &mut String, caveat: &CaveatTrace, style: Style, indent: &str, last: bool) {
    let paint = Paint(style.colour);
    let (connector, inner) = connectors(indent, Some(last));
    let (mark, expression) = match caveat.result {
        CaveatResult::True => (paint.with(GREEN, "✓"), caveat.expression.clone()),
        CaveatResult::False => (paint.with(RED, "⨉"), paint.with(FAINT, &caveat.expression)),
        CaveatResult::MissingContext => (paint.with(MAGENTA, "?"), caveat.expression.clone()),
    };
    let _ = writeln!(
        out,
        "{connector}{mark} {} {}",
        one_line(&expression),
        paint.with(CAVEAT, &caveat.name)
    );
    let mut details = Vec::new();
    if !caveat.context.is_empty() {
        details.push(serde_json::Value::Object(caveat.context.clone()).to_string());
    } else if caveat.result != CaveatResult::MissingContext {
        details.push(paint.with(FAINT, "(no matching context found)"));
    }
    if caveat.result == CaveatResult::MissingContext {
        details.push(format!("missing context: {}", caveat.missing.join(", ")));
    }
    let count = details.len();
    for (i, detail) in details.into_iter().enumerate() {
        let (connector, _) = connectors(&inner, Some(i + 1 == count));
        let _ = writeln!(out, "{connector}{detail}");
    }
}

/// A caveat expression on one line (its whitespace runs collapsed).
fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Colours text when colours are on.
#[derive(Clone, Copy)]
struct Paint(bool);

impl Paint {
    fn with(self, colour: &str, text: &str) -> String {
        if self.0 {
            format!("{colour}{text}{RESET}")
        } else {
            text.to_string()
        }
    }
}

/// A duration as Go prints one (`850ns`, `41.25µs`, `1.5ms`, `2.1s`), as zed's trees show.
pub fn duration_text(duration: Duration) -> String {
    let nanos = duration.as_nanos();
    let (unit, scale, decimals) = if nanos < 1_000 {
        return format!("{nanos}ns");
    } else if nanos < 1_000_000 {
        ("µs", 1_000u128, 3)
    } else if nanos < 1_000_000_000 {
        ("ms", 1_000_000, 6)
    } else {
        ("s", 1_000_000_000, 9)
    };
    let whole = nanos / scale;
    let fraction = nanos % scale;
    let mut text = format!("{whole}");
    if fraction > 0 {
        let digits = format!("{fraction:0width$}", width = decimals);
        text.push('.');
        text.push_str(digits.trim_end_matches('0'));
    }
    text.push_str(unit);
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_print_like_go() {
        assert_eq!(duration_text(Duration::from_nanos(850)), "850ns");
        assert_eq!(duration_text(Duration::from_nanos(41_250)), "41.25µs");
        assert_eq!(duration_text(Duration::from_micros(1_500)), "1.5ms");
        assert_eq!(duration_text(Duration::from_millis(2_100)), "2.1s");
        assert_eq!(duration_text(Duration::from_secs(3)), "3s");
    }
}
