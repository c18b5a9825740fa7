//! Several `zanzi serve` processes on one PostgreSQL database, as an operator runs them: a
//! token minted by one node is honoured by another, a facade invariant holds with two nodes
//! writing at once, a node killed with SIGKILL loses no acknowledged write, and a database that
//! goes away gives clear errors and then recovers by itself. Also: every conformance file
//! through `zanzi validate --datastore`, and `zanzi datastore migrate`.

use std::collections::HashSet;
use std::io::{BufRead, BufReader};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Barrier, Mutex};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use tempfile::TempDir;
use zanzi::facade::auth::{issue_token, SigningKey};

use crate::pg_support::{self, Cluster, TestDb};
use crate::process::{self, post, serve_with, touch, zanzi, Served, KEY, SCHEMA};
use crate::server_support::check_body;
use crate::support::{conformance_dir, yaml_files};

const SECRET: &str = "scale-out-test-secret-of-32-bytes-or-more";

/// A node serving `db` (its data folder holds nothing of note).
struct Node {
    served: Served,
    _dir: TempDir,
}

impl Node {
    fn start(db: &TestDb) -> Self {
        Self::start_with(db, &[])
    }

    /// A node with the `/v1beta1` facade on.
    fn with_facade(db: &TestDb) -> Self {
        Self::start_with(db, &["--jwt-secret", SECRET])
    }

    fn start_with(db: &TestDb, extra: &[&str]) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let mut args = vec![
            "--datastore",
            db.url.as_str(),
            "--data-dir",
            dir.path().to_str().unwrap(),
        ];
        args.extend_from_slice(extra);
        let served = serve_with(&args);
        Self { served, _dir: dir }
    }

    fn url(&self) -> &str {
        &self.served.url
    }

    fn post(&self, path: &str, body: &Value) -> Result<Value, String> {
        post(self.url(), path, body)
    }

    /// `POST path` with the preshared key: status and JSON body, whatever the status.
    fn post_status(&self, path: &str, body: &Value) -> (u16, Value) {
        call(
            self.url(),
            "POST",
            path,
            &format!("Bearer {KEY}"),
            Some(body),
        )
    }

    /// A facade call as `user`.
    fn as_user(&self, user: &str, method: &str, path: &str, body: Option<&Value>) -> (u16, Value) {
        let token = issue_token(
            &SigningKey::Secret(SECRET.to_string()),
            user,
            Duration::from_secs(600),
            None,
            None,
        )
        .unwrap();
        call(self.url(), method, path, &format!("Bearer {token}"), body)
    }

    fn check(&self, resource: &str, who: &str, consistency: Value) -> Result<String, String> {
        let body = check_body(resource, "view", who, consistency);
        self.post("/v1/permissions/check", &body)
            .map(|answer| answer["permissionship"].as_str().unwrap_or("").to_string())
    }
}

/// One HTTP call: status and JSON body.
fn call(url: &str, method: &str, path: &str, auth: &str, body: Option<&Value>) -> (u16, Value) {
    process::call(url, method, path, auth, body).unwrap_or_else(|e| panic!("{method} {path}: {e}"))
}

const HAS: &str = "PERMISSIONSHIP_HAS_PERMISSION";

#[test]
fn a_token_from_one_node_is_honoured_by_another() {
    let db = pg_support::database();
    let a = Node::start(&db);
    let b = Node::start(&db);
    a.post("/v1/schema/write", &json!({ "schema": SCHEMA }))
        .unwrap();
    // B watches before A writes: its stream must show A's write without anyone writing on B.
    let watch = {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .timeout_global(Some(Duration::from_secs(30)))
            .build()
            .into();
        let response = agent
            .post(&format!("{}/v1/watch", b.url()))
            .header("Authorization", &format!("Bearer {KEY}"))
            .send_json(json!({}))
            .unwrap();
        BufReader::new(response.into_body().into_reader()).lines()
    };
    for round in 0..20 {
        let written = a
            .post(
                "/v1/relationships/write",
                &touch(&format!("doc:{round}#viewer@user:tom")),
            )
            .unwrap();
        let token = written["writtenAt"]["token"].as_str().unwrap().to_string();
        let resource = format!("doc:{round}");
        assert_eq!(
            b.check(
                &resource,
                "user:tom",
                json!({"atLeastAsFresh": {"token": token}})
            ),
            Ok(HAS.to_string()),
            "round {round}: B answered from before A's write"
        );
        assert_eq!(
            b.check(
                &resource,
                "user:tom",
                json!({"atExactSnapshot": {"token": token}})
            ),
            Ok(HAS.to_string()),
            "round {round}: B refused or misread A's exact snapshot"
        );
    }
    let seen = watch
        .map(|line| serde_json::from_str::<Value>(&line.unwrap()).unwrap())
        .find(|event| {
            event["result"]["updates"]
                .as_array()
                .is_some_and(|updates| !updates.is_empty())
        })
        .expect("B's watch stream ended");
    assert_eq!(
        seen["result"]["updates"][0]["relationship"]["resource"]["objectId"], "0",
        "{seen}"
    );
    // Both nodes share the store id: B's tokens work on A too.
    let written = b
        .post("/v1/relationships/write", &touch("doc:b#viewer@user:ann"))
        .unwrap();
    let token = written["writtenAt"]["token"].as_str().unwrap().to_string();
    assert_eq!(
        a.check(
            "doc:b",
            "user:ann",
            json!({"atLeastAsFresh": {"token": token}})
        ),
        Ok(HAS.to_string())
    );
}

#[test]
fn two_nodes_creating_one_group_name_at_once_make_exactly_one() {
    let db = pg_support::database();
    let a = Arc::new(Node::with_facade(&db));
    let b = Arc::new(Node::with_facade(&db));
    let (status, body) = a.as_user("alice", "GET", "/v1beta1/users/self", None);
    assert_eq!(status, 200, "{body}");
    let (status, body) = a.as_user(
        "alice",
        "POST",
        "/v1beta1/organizations",
        Some(&json!({"name": "acme"})),
    );
    assert_eq!(status, 200, "{body}");
    let org = body["organization"]["id"].as_str().unwrap().to_string();
    for round in 0..8 {
        let name = format!("eng{round}");
        let barrier = Arc::new(Barrier::new(2));
        let racers: Vec<_> = [Arc::clone(&a), Arc::clone(&b)]
            .into_iter()
            .map(|node| {
                let barrier = Arc::clone(&barrier);
                let path = format!("/v1beta1/organizations/{org}/groups");
                let name = name.clone();
                std::thread::spawn(move || {
                    barrier.wait();
                    node.as_user("alice", "POST", &path, Some(&json!({"name": name})))
                })
            })
            .collect();
        let mut statuses: Vec<u16> = racers
            .into_iter()
            .map(|racer| racer.join().unwrap().0)
            .collect();
        statuses.sort_unstable();
        assert_eq!(
            statuses,
            [200, 409],
            "round {round}: both or neither made `{name}`"
        );
        let (status, listed) = b.as_user(
            "alice",
            "GET",
            &format!("/v1beta1/organizations/{org}/groups"),
            None,
        );
        assert_eq!(status, 200);
        let named = listed["groups"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|g| g["name"] == name)
            .count();
        assert_eq!(named, 1, "round {round}: {listed}");
    }
}

/// Every `doc` relationship the node reads, as `doc:ID#viewer@user:ID`.
fn stored_docs(node: &Node) -> HashSet<String> {
    let agent: ureq::Agent = ureq::Agent::config_builder().build().into();
    let text = agent
        .post(&format!("{}/v1/relationships/read", node.url()))
        .header("Authorization", &format!("Bearer {KEY}"))
        .send_json(json!({"relationshipFilter": {"resourceType": "doc"}}))
        .unwrap()
        .body_mut()
        .read_to_string()
        .unwrap();
    text.lines()
        .map(|l| {
            let v: Value = serde_json::from_str(l).unwrap();
            let r = &v["result"]["relationship"];
            format!(
                "doc:{}#viewer@user:{}",
                r["resource"]["objectId"].as_str().unwrap(),
                r["subject"]["object"]["objectId"].as_str().unwrap()
            )
        })
        .collect()
}

#[test]
fn a_node_killed_during_writes_loses_no_acknowledged_write() {
    let db = pg_support::database();
    let mut a = Node::start(&db);
    let b = Node::start(&db);
    a.post("/v1/schema/write", &json!({ "schema": SCHEMA }))
        .unwrap();
    let acknowledged = Arc::new(Mutex::new(Vec::new()));
    let stop = Arc::new(AtomicBool::new(false));
    let writers: Vec<_> = (0..4)
        .map(|w| {
            let url = a.url().to_string();
            let acknowledged = Arc::clone(&acknowledged);
            let stop = Arc::clone(&stop);
            std::thread::spawn(move || {
                let mut n = 0;
                while !stop.load(Ordering::Relaxed) {
                    let rel = format!("doc:w{w}n{n}#viewer@user:u{n}");
                    match post(&url, "/v1/relationships/write", &touch(&rel)) {
                        Ok(_) => acknowledged.lock().unwrap().push(rel),
                        Err(_) => break, // the node is gone
                    }
                    n += 1;
                }
            })
        })
        .collect();
    while acknowledged.lock().unwrap().len() < 200 {
        std::thread::sleep(Duration::from_millis(10));
    }
    a.served.child.kill().unwrap(); // SIGKILL while writes are streaming in
    a.served.child.wait().unwrap();
    stop.store(true, Ordering::Relaxed);
    for writer in writers {
        writer.join().unwrap();
    }
    let acknowledged = acknowledged.lock().unwrap().clone();
    // The other node has every acknowledged write, and so has a restarted A.
    let restarted = Node::start(&db);
    for node in [&b, &restarted] {
        let stored = stored_docs(node);
        let missing: Vec<&String> = acknowledged
            .iter()
            .filter(|r| !stored.contains(*r))
            .collect();
        assert!(
            missing.is_empty(),
            "{} acknowledged writes lost: {:?}",
            missing.len(),
            &missing[..missing.len().min(5)]
        );
    }
    // Writing goes on through either node.
    restarted
        .post("/v1/relationships/write", &touch("doc:after#viewer@user:x"))
        .unwrap();
    b.post(
        "/v1/relationships/write",
        &touch("doc:after2#viewer@user:x"),
    )
    .unwrap();
}

/// Polls `ready` every 100 ms until it holds or `within` passes.
fn eventually(within: Duration, mut ready: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + within;
    while Instant::now() < deadline {
        if ready() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    false
}

#[test]
fn a_database_that_stops_gives_clear_errors_then_the_node_recovers() {
    let cluster = Cluster::start();
    let db = cluster.database();
    let a = Node::start(&db);
    a.post("/v1/schema/write", &json!({ "schema": SCHEMA }))
        .unwrap();
    a.post("/v1/relationships/write", &touch("doc:1#viewer@user:tom"))
        .unwrap();
    let fully = json!({"fullyConsistent": true});
    assert_eq!(
        a.check("doc:1", "user:tom", fully.clone()),
        Ok(HAS.to_string())
    );

    cluster.stop();
    let name = format!(
        "postgres://postgres@127.0.0.1:{}/{}",
        cluster.port(),
        db.name
    );
    let (status, body) = a.post_status(
        "/v1/permissions/check",
        &check_body("doc:1", "view", "user:tom", fully.clone()),
    );
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["code"], 14, "{body}");
    let message = body["message"].as_str().unwrap();
    assert!(
        message.contains(&name),
        "the message does not name the database: {message}"
    );
    let (status, body) = a.post_status("/v1/relationships/write", &touch("doc:2#viewer@user:tom"));
    assert_eq!(status, 503, "{body}");
    let (status, body) = call(a.url(), "GET", "/readyz", "", None);
    assert_eq!(status, 503, "ready while the database is down: {body}");

    cluster.restart();
    assert!(
        eventually(Duration::from_secs(30), || {
            a.post("/v1/relationships/write", &touch("doc:2#viewer@user:tom"))
                .is_ok()
        }),
        "the node did not recover after the database came back"
    );
    assert_eq!(
        a.check("doc:2", "user:tom", fully.clone()),
        Ok(HAS.to_string())
    );
    assert_eq!(a.check("doc:1", "user:tom", fully), Ok(HAS.to_string()));
    let (status, _) = call(a.url(), "GET", "/readyz", "", None);
    assert_eq!(status, 200);
}

/// The folders of `examples/` that hold validation files (each example, and its
/// `validations/`).
fn example_dirs() -> Vec<std::path::PathBuf> {
    let mut dirs: Vec<std::path::PathBuf> = std::fs::read_dir(conformance_dir().join("examples"))
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|dir| dir.is_dir())
        .flat_map(|dir| [dir.clone(), dir.join("validations")])
        .filter(|dir| dir.is_dir() && !yaml_files(dir).is_empty())
        .collect();
    dirs.sort();
    dirs
}

#[test]
fn every_conformance_file_passes_through_validate_on_the_database() {
    let db = pg_support::database();
    let mut files: Vec<String> = Vec::new();
    for dir in example_dirs()
        .into_iter()
        .chain(["spicedb", "spicedb-oracle"].map(|d| conformance_dir().join(d)))
    {
        files.extend(
            yaml_files(&dir)
                .iter()
                .map(|f| f.to_str().unwrap().to_string()),
        );
    }
    assert!(files.len() >= 80, "only {} conformance files", files.len());
    let mut args = vec![
        "validate",
        "--datastore",
        &db.url,
        "--now",
        "2025-06-01T00:00:00Z",
    ];
    args.extend(files.iter().map(String::as_str));
    let (code, out) = zanzi(&args);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains(&format!("{0} of {0} validated ok", files.len())),
        "{out}"
    );
}

#[test]
fn validate_refuses_a_database_holding_data_unless_told_to_clear_it() {
    let db = pg_support::database();
    let node = Node::start(&db);
    node.post("/v1/schema/write", &json!({ "schema": SCHEMA }))
        .unwrap();
    drop(node);
    let file = yaml_files(&example_dirs()[0]).remove(0);
    let file = file.to_str().unwrap();
    let (code, out) = zanzi(&["validate", "--datastore", &db.url, file]);
    assert_ne!(code, 0, "{out}");
    assert!(
        out.contains("holds data") && out.contains("--clear"),
        "{out}"
    );
    let (code, out) = zanzi(&["validate", "--datastore", &db.url, "--clear", file]);
    assert_eq!(code, 0, "{out}");
    // Validation leaves the database empty: the next run needs no --clear.
    let (code, out) = zanzi(&["validate", "--datastore", &db.url, file]);
    assert_eq!(code, 0, "{out}");
}

#[test]
fn datastore_migrate_creates_the_tables_once_and_refuses_a_newer_layout() {
    let cluster = pg_support::shared();
    let db = cluster.database();
    let (code, out) = zanzi(&["datastore", "migrate", "--datastore", &db.url]);
    assert_eq!(code, 0, "{out}");
    let latest = zanzi::store::PG_LAYOUT_VERSION;
    assert!(
        out.contains(&format!("from layout version 0 to {latest}")),
        "{out}"
    );
    let (code, out) = zanzi(&["datastore", "migrate", "--datastore", &db.url]);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains(&format!("at layout version {latest} already")),
        "{out}"
    );
    cluster
        .psql(
            &db.name,
            "INSERT INTO zanzi_migrations (version, name, applied_us) VALUES (99, 'future', 0)",
        )
        .unwrap();
    let (code, out) = zanzi(&["datastore", "migrate", "--datastore", &db.url]);
    assert_ne!(code, 0, "{out}");
    assert!(
        out.contains("layout version 99") && out.contains("upgrade zanzi"),
        "{out}"
    );
    let dir = tempfile::tempdir().unwrap();
    let (code, out) = zanzi(&[
        "serve",
        "--datastore",
        &db.url,
        "--data-dir",
        dir.path().to_str().unwrap(),
        "--http-addr",
        "127.0.0.1:0",
        "--grpc-addr",
        "127.0.0.1:0",
    ]);
    assert_ne!(code, 0, "{out}");
    assert!(out.contains("upgrade zanzi"), "{out}");
    let (code, out) = zanzi(&[
        "check",
        "--datastore",
        "postgres://postgres@127.0.0.1:1/nothing",
        "doc:1#view@user:tom",
    ]);
    assert_ne!(code, 0, "{out}");
    assert!(
        out.contains("postgres://postgres@127.0.0.1:1/nothing") && out.contains("unavailable"),
        "{out}"
    );
}
