//! Python tools for the tests (SpiceDB's client, schemathesis): a virtualenv per pinned
//! requirements file, created on first use under the target folder.

use std::path::{Path, PathBuf};
use std::process::Command;

fn run(command: &mut Command) -> Result<(), String> {
    let output = command
        .output()
        .map_err(|e| format!("cannot run {command:?}: {e}"))?;
    if output.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{command:?} failed:\n{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        ))
    }
}

/// The python of a virtualenv holding the pinned `requirements`, creating the virtualenv if
/// it is missing (`{name}-{hash}` under the target folder). It is built in a folder of its
/// own and renamed into place, so parallel test runs never see a half-built one; its name
/// carries the requirements' hash, so changing a pin builds a new one. Its scripts name the
/// folder they were built in, so run tools as `python -m tool`.
pub fn venv_python(requirements: &Path, name: &str) -> PathBuf {
    let pins = std::fs::read_to_string(requirements).unwrap();
    let tag = pins.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
    });
    let root = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
    let venv = root.join(format!("{name}-{tag:016x}"));
    let python = venv.join("bin/python");
    if python.exists() {
        return python;
    }
    let building = root.join(format!("{name}-{tag:016x}.building-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&building);
    let interpreter = std::env::var("PYTHON").unwrap_or_else(|_| "python3".into());
    run(Command::new(&interpreter)
        .args(["-m", "venv"])
        .arg(&building))
    .unwrap();
    run(Command::new(building.join("bin/python"))
        .args([
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            "-r",
        ])
        .arg(requirements))
    .unwrap();
    // A venv's scripts name their folder, so the interpreter is called by its path inside the
    // final folder only; `python -m` works from either.
    if std::fs::rename(&building, &venv).is_err() {
        // Another test run finished first: use theirs.
        let _ = std::fs::remove_dir_all(&building);
    }
    assert!(python.exists(), "no virtualenv at {}", venv.display());
    python
}
