//! The CLI's commands beyond argument parsing: imports, expand, watch, and how answers and
//! errors are printed.

pub mod expand;
pub mod import;
pub mod output;
pub mod watch;

use anyhow::Context as _;

use zanzi::engine::Context;

/// A `--context` argument: a JSON object (none: empty).
pub fn parse_context(text: Option<&str>) -> anyhow::Result<Context> {
    match text {
        Some(json) => serde_json::from_str(json).context("--context must be a JSON object"),
        None => Ok(Context::new()),
    }
}
