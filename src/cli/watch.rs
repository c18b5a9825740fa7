//! `zanzi watch`: relationship changes as they commit, one per line (`TOUCH doc:1#viewer@user:tom`),
//! each revision followed by its ZedToken, so a later `--since` resumes there.

use std::process::ExitCode;

use anyhow::{bail, Result};

use super::output::line;
use crate::{Backend, Target};
use zanzi::client::WatchMessage;

/// Runs `zanzi watch`.
pub fn run(target: &Target, since: Option<&str>, types: &[String]) -> Result<ExitCode> {
    let Backend::Remote(client) = Backend::open(target)? else {
        bail!("watch follows a running server: give --endpoint (the data folder is not shared while a server uses it)");
    };
    let mut failed: Option<std::io::Error> = None;
    let watched = client.watch(since, types, |message| {
        let printed = match message {
            WatchMessage::Changes { changes, through } => changes
                .iter()
                .try_for_each(|(op, rel)| line(&format!("{op} {rel}")))
                .and_then(|()| line(&format!("# changes through {through}"))),
            WatchMessage::Checkpoint { .. } => Ok(()),
        };
        match printed {
            Ok(()) => true,
            Err(err) => {
                failed = Some(err);
                false
            }
        }
    });
    if let Some(err) = failed {
        return Err(err.into());
    }
    watched?;
    Ok(ExitCode::SUCCESS)
}
