//! `zanzi import`: a file of relationships stored as one atomic revision (or, with `--batch`,
//! one revision per batch), with CREATE or TOUCH semantics; an error names the line.

use std::io::Read as _;
use std::path::Path;
use std::process::ExitCode;

use anyhow::{Context as _, Result};

use super::output::{group_digits, spinner};
use crate::{Backend, Target};
use zanzi::client::ClientError;
use zanzi::engine::EngineError;
use zanzi::transaction::ImportMode;
use zanzi::tuple::Relationship;

/// Where the relationships come from, and how an item's position is named in messages.
enum Input {
    /// One relationship per line (blank lines and `//` comments skipped).
    Lines(String),
    /// A validation file's `relationships`.
    Listed(Vec<Relationship>),
}

impl Input {
    fn read(file: &Path) -> Result<Self> {
        let mut text = String::new();
        if file == Path::new("-") {
            std::io::stdin()
                .read_to_string(&mut text)
                .context("reading standard input")?;
            return Ok(Input::Lines(text));
        }
        text =
            std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?;
        let is_yaml = matches!(
            file.extension().and_then(|e| e.to_str()),
            Some("yaml" | "yml")
        );
        if is_yaml {
            Ok(Input::Listed(
                zanzi::validate::parse(file, &text)?.relationships,
            ))
        } else {
            Ok(Input::Lines(text))
        }
    }

    /// Every relationship with the number naming it (the line, or its place in the list).
    fn items(&self) -> Box<dyn Iterator<Item = (usize, Result<Relationship, EngineError>)> + '_> {
        match self {
            Input::Lines(text) => Box::new(
                text.lines()
                    .enumerate()
                    .map(|(n, line)| (n + 1, line.trim()))
                    .filter(|(_, line)| !line.is_empty() && !line.starts_with("//"))
                    .map(|(n, line)| (n, Relationship::parse(line).map_err(EngineError::from))),
            ),
            Input::Listed(list) => Box::new(
                list.iter()
                    .enumerate()
                    .map(|(n, rel)| (n + 1, Ok(rel.clone()))),
            ),
        }
    }

    /// How the item at `position` (from 0) is named: `line 12` or `relationship 12`.
    fn name(&self, position: u64) -> String {
        let number = self
            .items()
            .nth(usize::try_from(position).unwrap_or(usize::MAX))
            .map(|(n, _)| n);
        let what = match self {
            Input::Lines(_) => "line",
            Input::Listed(_) => "relationship",
        };
        match number {
            Some(n) => format!("{what} {}", group_digits(n as u64)),
            None => format!("{what} {}", group_digits(position + 1)),
        }
    }
}

/// Runs `zanzi import`.
pub fn run(target: &Target, file: &Path, touch: bool, batch: Option<usize>) -> Result<ExitCode> {
    if batch == Some(0) {
        anyhow::bail!("--batch must be at least 1");
    }
    let input = Input::read(file)?;
    let mode = if touch {
        ImportMode::Touch
    } else {
        ImportMode::Create
    };
    let backend = Backend::open(target)?;
    let progress = spinner("relationships read");
    let size = batch.unwrap_or(usize::MAX);
    let mut stored = 0u64;
    let mut items = input.items().map(|(_, item)| item).peekable();
    while items.peek().is_some() {
        let chunk = items.by_ref().take(size);
        let started = stored;
        match import_chunk(&backend, chunk, mode, &progress) {
            Ok(loaded) => stored += loaded,
            Err((item, err)) => {
                progress.finish_and_clear();
                let at = item.map(|i| format!("{}: ", input.name(started + i)));
                let outcome = match batch {
                    None => "nothing was imported".to_string(),
                    Some(_) if stored == 0 => {
                        "nothing was imported (no earlier batch was stored)".to_string()
                    }
                    Some(_) => format!(
                        "{} relationships were stored by earlier batches, through {}; nothing after it was",
                        group_digits(stored),
                        input.name(started - 1)
                    ),
                };
                let message = super::output::describe(&err);
                let message = message
                    .strip_suffix("; nothing was imported")
                    .unwrap_or(&message);
                anyhow::bail!("{}{message}; {outcome}", at.unwrap_or_default());
            }
        }
    }
    progress.finish_and_clear();
    eprintln!(
        "imported {} relationships{}",
        group_digits(stored),
        match batch {
            Some(n) => format!(" in batches of {}", group_digits(n as u64)),
            None => " as one revision".to_string(),
        }
    );
    Ok(ExitCode::SUCCESS)
}

/// One import call; an error comes with the position (within the chunk) of the item at fault.
fn import_chunk(
    backend: &Backend,
    chunk: impl Iterator<Item = Result<Relationship, EngineError>>,
    mode: ImportMode,
    progress: &indicatif::ProgressBar,
) -> Result<u64, (Option<u64>, anyhow::Error)> {
    let counted = chunk
        .inspect(|_| progress.inc(1))
        .chain(std::iter::from_fn(|| {
            // Everything is read: the store now sorts, builds and commits.
            progress.set_message("committing");
            None
        }));
    match backend {
        Backend::Local(engine) => engine
            .import(counted, mode)
            .map(|outcome| outcome.loaded)
            .map_err(|failed| (failed.item, failed.error.into())),
        Backend::Remote(client) => {
            let mut relationships = Vec::new();
            for (n, item) in counted.enumerate() {
                relationships.push(item.map_err(|e| (Some(n as u64), e.into()))?);
            }
            client
                .import(&relationships, mode)
                .map_err(|err| match err {
                    ClientError::Import { item, message } => {
                        // The server names the item itself; the line replaces that.
                        let said = item
                            .and_then(|i| message.strip_prefix(&format!("import item {i}: ")))
                            .unwrap_or(&message);
                        (item, anyhow::anyhow!("{said}"))
                    }
                    other => (None, other.into()),
                })
        }
    }
}
