//! SpiceDB's official Python client (`authzed` from PyPI, pinned in
//! `tests/python/requirements.txt`) against a live zanzi over gRPC: the script
//! `tests/python/spicedb_client_check.py` walks every call the gRPC issue asks for and asserts
//! each answer. The virtualenv is created on first use under the target folder.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::server_support::TestServer;

fn python_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/python")
}

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

/// The virtualenv's python, creating the virtualenv if it is missing. It is built in a
/// folder of its own and renamed into place, so parallel test runs never see a half-built one;
/// its name carries the requirements' hash, so changing the pin builds a new one.
fn venv_python() -> PathBuf {
    let requirements = python_dir().join("requirements.txt");
    let pins = std::fs::read_to_string(&requirements).unwrap();
    let tag = pins.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
    });
    let root = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
    let venv = root.join(format!("authzed-venv-{tag:016x}"));
    let python = venv.join("bin/python");
    if python.exists() {
        return python;
    }
    let building = root.join(format!(
        "authzed-venv-{tag:016x}.building-{}",
        std::process::id()
    ));
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
        .arg(&requirements))
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

#[test]
fn official_python_client_drives_every_call() {
    let python = venv_python();
    let server = TestServer::start();
    let output = Command::new(&python)
        .arg(python_dir().join("spicedb_client_check.py"))
        .env("ZANZI_GRPC_ADDR", server.grpc_addr.to_string())
        .env("ZANZI_KEY", &server.key)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success() && stdout.contains("all steps passed"),
        "the Python client failed:\n{stdout}\n{stderr}"
    );
}
