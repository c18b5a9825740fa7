//! SpiceDB's official Node.js client (`@authzed/authzed-node` from the npm registry, pinned in
//! `tests/node/package.json` and its lock file) against a live zanzi over gRPC: the script
//! `tests/node/check.mjs` makes every PermissionsService and SchemaService call and asserts
//! each answer, error codes, messages and reasons included. The packages are installed on
//! first use under the target folder (`scripts/setup` installs Debian's `nodejs` and `npm`).

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::server_support::TestServer;

fn node_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/node")
}

fn run(command: &mut Command) -> Result<String, String> {
    let output = command.output().map_err(|e| {
        format!("cannot run {command:?}: {e} (scripts/setup installs node and npm)")
    })?;
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    if output.status.success() {
        Ok(text)
    } else {
        Err(format!("{command:?} failed:\n{text}"))
    }
}

/// A folder with the pinned packages installed and the check script beside them, built once
/// per lock file (its name carries the lock's hash) in a folder of its own and renamed into
/// place, so parallel runs never see a half-installed one.
fn installed() -> PathBuf {
    let lock = std::fs::read_to_string(node_dir().join("package-lock.json")).unwrap();
    let tag = lock.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
    });
    let root = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
    let ready = root.join(format!("authzed-node-{tag:016x}"));
    if !ready.join("node_modules/@authzed/authzed-node").exists() {
        let building = root.join(format!(
            "authzed-node-{tag:016x}.building-{}",
            std::process::id()
        ));
        let _ = std::fs::remove_dir_all(&building);
        std::fs::create_dir_all(&building).unwrap();
        for file in ["package.json", "package-lock.json"] {
            std::fs::copy(node_dir().join(file), building.join(file)).unwrap();
        }
        run(Command::new("npm")
            .args(["ci", "--no-audit", "--no-fund", "--loglevel=error"])
            .current_dir(&building))
        .unwrap();
        if std::fs::rename(&building, &ready).is_err() {
            let _ = std::fs::remove_dir_all(&building);
        }
    }
    std::fs::copy(node_dir().join("check.mjs"), ready.join("check.mjs")).unwrap();
    ready
}

#[test]
fn official_node_client_drives_every_call() {
    run(Command::new("node").arg("--version")).unwrap();
    let dir = installed();
    let server = TestServer::start();
    let out = run(Command::new("node")
        .arg(dir.join("check.mjs"))
        .current_dir(&dir)
        .env(
            "ZANZI_ENDPOINT",
            format!("localhost:{}", server.grpc_addr.port()),
        )
        .env("ZANZI_KEY", &server.key))
    .unwrap();
    assert!(out.contains("every call answered as expected"), "{out}");
}
