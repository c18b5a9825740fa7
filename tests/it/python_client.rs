//! SpiceDB's official Python client (`authzed` from PyPI, pinned in
//! `tests/python/requirements.txt`) against a live zanzi over gRPC: the script
//! `tests/python/spicedb_client_check.py` walks every call the gRPC issue asks for and asserts
//! each answer. The virtualenv is created on first use under the target folder.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::python_venv::venv_python;
use crate::server_support::TestServer;

fn python_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/python")
}

#[test]
fn official_python_client_drives_every_call() {
    let python = venv_python(&python_dir().join("requirements.txt"), "authzed-venv");
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
