//! The `zanzi` binary as users run it: `zanzi serve` killed with SIGKILL under write load keeps
//! every acknowledged write, and the CLI works against a running server.

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{json, Value};

/// The preshared key every served process gets.
pub const KEY: &str = "process-test-key";
/// A schema with users and documents they view.
pub const SCHEMA: &str = "definition user {}\ndefinition doc {\n    relation viewer: user\n    permission view = viewer\n}\n";

/// A `zanzi serve` process, killed when dropped.
pub struct Served {
    pub child: Child,
    pub url: String,
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn serve(data_dir: &Path) -> Served {
    serve_with(&["--data-dir", data_dir.to_str().unwrap()])
}

/// The environment variable naming the CPUs (`taskset -c` syntax, e.g. `0`) served processes
/// run on; unset, they run wherever the system puts them. Load measurements (the junk-key
/// flood of `abuse.rs`) set it, with [`CLIENT_CPUS`], to keep the server and its load apart.
pub const SERVER_CPUS: &str = "ZANZI_TEST_SERVER_CPUS";
/// The environment variable naming the CPUs a load-generating test moves its load threads to
/// (see [`pin_this_thread`]).
pub const CLIENT_CPUS: &str = "ZANZI_TEST_CLIENT_CPUS";

/// Moves the calling thread to the CPUs named by the environment variable `var` (`taskset -c`
/// syntax); the CPUs, or `None` when it is unset.
pub fn pin_this_thread(var: &str) -> Option<String> {
    let cpus = std::env::var(var).ok().filter(|c| !c.is_empty())?;
    // `/proc/thread-self` links to `PID/task/TID`.
    let link = std::fs::read_link("/proc/thread-self").unwrap();
    let tid = link.file_name().unwrap().to_str().unwrap().to_string();
    let status = Command::new("taskset")
        .args(["-p", "-c", &cpus, &tid])
        .stdout(Stdio::null())
        .status()
        .unwrap();
    assert!(status.success(), "taskset -p -c {cpus} {tid} failed");
    Some(cpus)
}

/// The command that starts the `zanzi` binary: under `taskset -c CPUS` when [`SERVER_CPUS`] is
/// set (the server's runtime then sizes its worker pool to those CPUs).
fn zanzi_command() -> Command {
    match std::env::var(SERVER_CPUS) {
        Ok(cpus) if !cpus.is_empty() => {
            let mut command = Command::new("taskset");
            command.args(["-c", &cpus, env!("CARGO_BIN_EXE_zanzi")]);
            command
        }
        _ => Command::new(env!("CARGO_BIN_EXE_zanzi")),
    }
}

/// Starts `zanzi serve` with `args` on a free loopback port and waits until it listens.
pub fn serve_with(args: &[&str]) -> Served {
    let port = free_port();
    let mut child = zanzi_command()
        .arg("serve")
        .args(args)
        .args([
            "--http-addr",
            &format!("127.0.0.1:{port}"),
            "--grpc-addr",
            "127.0.0.1:0",
            "--preshared-key",
            KEY,
        ])
        .env("RUST_LOG", "warn")
        .env_remove("ZANZI_DATASTORE")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut lines = BufReader::new(stdout).lines();
    let listening = lines
        .by_ref()
        .map(Result::unwrap)
        .find(|l| l.starts_with("zanzi listening on"));
    assert!(listening.is_some(), "server did not start");
    std::thread::spawn(move || for _ in lines {});
    Served {
        child,
        url: format!("http://127.0.0.1:{port}"),
    }
}

/// POSTs `body` with the key; the JSON answer, or the status and text of any other.
pub fn post(url: &str, path: &str, body: &serde_json::Value) -> Result<serde_json::Value, String> {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(10)))
        .build()
        .into();
    let mut response = agent
        .post(&format!("{url}{path}"))
        .header("Authorization", &format!("Bearer {KEY}"))
        .send_json(body)
        .map_err(|e| e.to_string())?;
    let status = response.status().as_u16();
    let text = response
        .body_mut()
        .read_to_string()
        .map_err(|e| e.to_string())?;
    if status != 200 {
        return Err(format!("{status}: {text}"));
    }
    serde_json::from_str(&text).map_err(|e| e.to_string())
}

/// A write request touching `rel` (`doc:1#viewer@user:tom`).
pub fn touch(rel: &str) -> serde_json::Value {
    let (resource, rest) = rel.split_once('#').unwrap();
    let (relation, who) = rest.split_once('@').unwrap();
    let (rt, rid) = resource.split_once(':').unwrap();
    let (st, sid) = who.split_once(':').unwrap();
    json!({"updates": [{"operation": "OPERATION_TOUCH", "relationship": {
        "resource": {"objectType": rt, "objectId": rid},
        "relation": relation,
        "subject": {"object": {"objectType": st, "objectId": sid}},
    }}]})
}

#[test]
fn acknowledged_writes_survive_sigkill() {
    let dir = tempfile::tempdir().unwrap();
    let mut served = serve(dir.path());
    post(
        &served.url,
        "/v1/schema/write",
        &json!({ "schema": SCHEMA }),
    )
    .unwrap();

    let acknowledged = Arc::new(Mutex::new(Vec::new()));
    let stop = Arc::new(AtomicBool::new(false));
    let writers: Vec<_> = (0..4)
        .map(|w| {
            let url = served.url.clone();
            let acknowledged = Arc::clone(&acknowledged);
            let stop = Arc::clone(&stop);
            std::thread::spawn(move || {
                let mut n = 0;
                while !stop.load(Ordering::Relaxed) {
                    let rel = format!("doc:w{w}n{n}#viewer@user:u{n}");
                    match post(&url, "/v1/relationships/write", &touch(&rel)) {
                        Ok(_) => acknowledged.lock().unwrap().push(rel),
                        Err(_) => break, // the server is gone
                    }
                    n += 1;
                }
            })
        })
        .collect();
    while acknowledged.lock().unwrap().len() < 200 {
        std::thread::sleep(Duration::from_millis(10));
    }
    served.child.kill().unwrap(); // SIGKILL while writes are streaming in
    served.child.wait().unwrap();
    stop.store(true, Ordering::Relaxed);
    for writer in writers {
        writer.join().unwrap();
    }
    let acknowledged = acknowledged.lock().unwrap().clone();

    let restarted = serve(dir.path());
    let text = {
        let agent: ureq::Agent = ureq::Agent::config_builder().build().into();
        agent
            .post(&format!("{}/v1/relationships/read", restarted.url))
            .header("Authorization", &format!("Bearer {KEY}"))
            .send_json(json!({"relationshipFilter": {"resourceType": "doc"}}))
            .unwrap()
            .body_mut()
            .read_to_string()
            .unwrap()
    };
    let stored: std::collections::HashSet<String> = text
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            let r = &v["result"]["relationship"];
            format!(
                "doc:{}#viewer@user:{}",
                r["resource"]["objectId"].as_str().unwrap(),
                r["subject"]["object"]["objectId"].as_str().unwrap()
            )
        })
        .collect();
    let missing: Vec<&String> = acknowledged
        .iter()
        .filter(|r| !stored.contains(*r))
        .collect();
    assert!(acknowledged.len() >= 200);
    assert!(
        missing.is_empty(),
        "{} acknowledged writes lost: {:?}",
        missing.len(),
        &missing[..missing.len().min(5)]
    );
}

/// Runs the `zanzi` binary; its exit code and its stdout and stderr.
pub fn zanzi(args: &[&str]) -> (i32, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_zanzi"))
        .args(args)
        .env_remove("ZANZI_DATA_DIR")
        .env_remove("ZANZI_DATASTORE")
        .output()
        .unwrap();
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stdout).into_owned()
            + &String::from_utf8_lossy(&output.stderr),
    )
}

#[test]
fn cli_talks_to_a_running_server() {
    let dir = tempfile::tempdir().unwrap();
    let served = serve(&dir.path().join("data"));
    let schema_file = dir.path().join("schema.zed");
    std::fs::write(&schema_file, SCHEMA).unwrap();
    let remote = ["--endpoint", served.url.as_str(), "--key", KEY];
    let with = |args: &[&str]| {
        let mut all: Vec<&str> = args.to_vec();
        all.extend_from_slice(&remote);
        zanzi(&all)
    };

    let (code, out) = with(&["schema", "write", schema_file.to_str().unwrap()]);
    assert_eq!(code, 0, "{out}");
    let (code, out) = with(&["schema", "read"]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("relation viewer: user"));
    let (code, out) = with(&["relationship", "write", "doc:1#viewer@user:tom"]);
    assert_eq!(code, 0, "{out}");
    assert_eq!(with(&["check", "doc:1#view@user:tom"]).0, 0);
    assert_eq!(with(&["check", "doc:1#view@user:ann"]).0, 1);

    let import_file = dir.path().join("rels.txt");
    let lines: Vec<String> = (0..2_500)
        .map(|i| format!("doc:d{i}#viewer@user:ann"))
        .collect();
    std::fs::write(&import_file, lines.join("\n")).unwrap();
    let (code, out) = with(&["import", import_file.to_str().unwrap()]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("imported 2,500 relationships"), "{out}");
    let (code, out) = with(&["lookup-resources", "doc", "view", "user:ann"]);
    assert_eq!(code, 0, "{out}");
    assert_eq!(out.lines().count(), 2_500);
    let (code, out) = with(&["lookup-subjects", "doc:1", "view", "user"]);
    assert_eq!((code, out.trim()), (0, "tom"));
    let (code, out) = with(&["export"]);
    assert_eq!(code, 0);
    assert_eq!(out.lines().count(), 2_501);
    let (code, out) = with(&["relationship", "read", "doc", "--id", "1"]);
    assert_eq!((code, out.trim()), (0, "doc:1#viewer@user:tom"));
    let (code, _) = with(&["relationship", "delete", "doc:1#viewer@user:tom"]);
    assert_eq!(code, 0);
    assert_eq!(with(&["check", "doc:1#view@user:tom"]).0, 1);
    let (code, out) = zanzi(&[
        "schema",
        "read",
        "--endpoint",
        &served.url,
        "--key",
        "wrong",
    ]);
    assert_ne!(code, 0);
    assert!(out.contains("401"), "{out}");
}

#[test]
fn serve_refuses_a_public_address_without_a_key() {
    let dir = tempfile::tempdir().unwrap();
    let (code, out) = zanzi(&[
        "serve",
        "--data-dir",
        dir.path().to_str().unwrap(),
        "--http-addr",
        "0.0.0.0:0",
    ]);
    assert_ne!(code, 0);
    assert!(out.contains("non-loopback"), "{out}");
    let (code, out) = zanzi(&[
        "serve",
        "--data-dir",
        dir.path().to_str().unwrap(),
        "--http-addr",
        "127.0.0.1:0",
        "--grpc-addr",
        "0.0.0.0:0",
    ]);
    assert_ne!(code, 0);
    assert!(out.contains("non-loopback"), "{out}");
}

/// One HTTP call with `auth` as its Authorization header: the status and the JSON answer (an
/// NDJSON stream as an array of its values), whatever the status; `Err` when the server is gone.
pub fn call(
    url: &str,
    method: &str,
    path: &str,
    auth: &str,
    body: Option<&Value>,
) -> Result<(u16, Value), String> {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(20)))
        .build()
        .into();
    let target = format!("{url}{path}");
    let response = match (method, body) {
        ("GET", _) => agent.get(&target).header("Authorization", auth).call(),
        (_, Some(body)) => agent
            .post(&target)
            .header("Authorization", auth)
            .send_json(body),
        (_, None) => agent
            .post(&target)
            .header("Authorization", auth)
            .send_empty(),
    };
    let mut response = response.map_err(|e| e.to_string())?;
    let status = response.status().as_u16();
    let text = response
        .body_mut()
        .read_to_string()
        .map_err(|e| e.to_string())?;
    let value = serde_json::from_str(&text).unwrap_or_else(|_| {
        // NDJSON streams: one value per line.
        Value::Array(
            text.lines()
                .filter_map(|line| serde_json::from_str(line).ok())
                .collect(),
        )
    });
    Ok((status, value))
}
