//! `zanzi serve` (embedded store) killed with SIGKILL at a random moment of a mixed write load
//! (relationship writes, schema changes, facade writes), 20 rounds on one data folder: after
//! each restart the store opens, every acknowledged write is there, the stored schema is the
//! last acknowledged one (or the one in flight), and no relationship violates it. Also: a
//! revision older than the retention window is refused with "revision has expired".

use std::collections::HashSet;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{json, Value};
use zanzi::facade::auth::{issue_token, SigningKey};

use crate::process::{call, serve_with, Served, KEY};
use crate::support::Lcg;

const SECRET: &str = "crash-test-facade-secret-0123456789abcdef";
const ROUNDS: u64 = 20;
/// The test's own definitions, after the facade's built-in schema; `extra` comes and goes.
const DEFINITIONS: &str =
    "\ndefinition kuser {}\n\ndefinition kdoc {\n    relation viewer: kuser\n";

fn api(url: &str, path: &str, body: &Value) -> Result<(u16, Value), String> {
    call(url, "POST", path, &format!("Bearer {KEY}"), Some(body))
}

fn user_auth(user: &str) -> String {
    let token = issue_token(
        &SigningKey::Secret(SECRET.to_string()),
        user,
        Duration::from_secs(3600),
        None,
        None,
    )
    .unwrap();
    format!("Bearer {token}")
}

fn serve(dir: &Path) -> Served {
    serve_with(&["--data-dir", dir.to_str().unwrap(), "--jwt-secret", SECRET])
}

fn schema_with(base: &str, extra: bool) -> String {
    let mut text = format!("{base}{DEFINITIONS}");
    if extra {
        text.push_str("    relation extra: kuser\n");
    }
    text.push_str("}\n");
    text
}

fn write_body(operation: &str, relation: &str, doc: &str, user: &str) -> Value {
    json!({"updates": [{"operation": operation, "relationship": {
        "resource": {"objectType": "kdoc", "objectId": doc},
        "relation": relation,
        "subject": {"object": {"objectType": "kuser", "objectId": user}},
    }}]})
}

/// What the load had acknowledged when the server died.
#[derive(Default)]
struct Acknowledged {
    viewers: Vec<String>,
    /// Organizations created, with the user who created them.
    orgs: Vec<(String, String)>,
    /// The last schema write acknowledged, and the one sent after it (if any).
    schema: Option<String>,
    schema_in_flight: Option<String>,
}

/// Checks the restarted server against what was acknowledged.
fn verify(url: &str, acked: &Acknowledged, round: u64) {
    let (status, schema) = api(url, "/v1/schema/read", &json!({})).unwrap();
    assert_eq!(status, 200, "round {round}: {schema}");
    let stored = schema["schemaText"].as_str().unwrap().to_string();
    if let Some(last) = &acked.schema {
        assert!(
            stored == *last || acked.schema_in_flight.as_deref() == Some(stored.as_str()),
            "round {round}: the stored schema is neither the last acknowledged one nor the one in flight"
        );
    }
    let compiled = zanzi::schema::compile(&stored).unwrap();
    let kdoc = compiled.definition("kdoc").unwrap();
    let (status, found) = api(
        url,
        "/v1/relationships/read",
        &json!({"relationshipFilter": {"resourceType": "kdoc"}}),
    )
    .unwrap();
    assert_eq!(status, 200, "round {round}: {found}");
    let mut viewers = HashSet::new();
    for item in found.as_array().unwrap() {
        let r = &item["result"]["relationship"];
        let relation = r["relation"].as_str().unwrap();
        assert!(
            kdoc.relations.contains_key(relation),
            "round {round}: a `kdoc#{relation}` relationship is stored but the stored schema has no such relation"
        );
        if relation == "viewer" {
            viewers.insert(format!(
                "{}@{}",
                r["resource"]["objectId"].as_str().unwrap(),
                r["subject"]["object"]["objectId"].as_str().unwrap()
            ));
        }
    }
    let lost: Vec<&String> = acked
        .viewers
        .iter()
        .filter(|v| !viewers.contains(*v))
        .collect();
    assert!(
        lost.is_empty(),
        "round {round}: acknowledged writes lost: {lost:?}"
    );
    for (user, org) in &acked.orgs {
        let (status, body) = call(
            url,
            "GET",
            &format!("/v1beta1/organizations/{org}"),
            &user_auth(user),
            None,
        )
        .unwrap();
        assert_eq!(
            status, 200,
            "round {round}: acknowledged organization {org} lost: {body}"
        );
    }
}

#[test]
fn sigkill_under_mixed_writes_loses_nothing_acknowledged_and_breaks_no_schema_rule() {
    let dir = tempfile::tempdir().unwrap();
    let mut served = serve(dir.path());
    // The facade wrote its built-in schema; the test's definitions go after it.
    let (_, read) = api(&served.url, "/v1/schema/read", &json!({})).unwrap();
    let base = read["schemaText"].as_str().unwrap().to_string();
    let (status, body) = api(
        &served.url,
        "/v1/schema/write",
        &json!({"schema": schema_with(&base, true)}),
    )
    .unwrap();
    assert_eq!(status, 200, "{body}");
    let mut all_acked = Acknowledged {
        schema: Some(schema_with(&base, true)),
        ..Acknowledged::default()
    };
    let mut random = Lcg(2024);
    for round in 0..ROUNDS {
        let acked = Arc::new(Mutex::new(Acknowledged::default()));
        let stop = Arc::new(AtomicBool::new(false));
        let mut load = Vec::new();
        for w in 0..2 {
            let (url, acked, stop) = (served.url.clone(), Arc::clone(&acked), Arc::clone(&stop));
            load.push(std::thread::spawn(move || {
                let mut n = 0;
                while !stop.load(Ordering::Relaxed) {
                    let doc = format!("r{round}w{w}n{n}");
                    let user = format!("u{}", n % 7);
                    // Every third write also touches `extra`, which may not be in the schema.
                    let relation = if n % 3 == 0 { "extra" } else { "viewer" };
                    match api(
                        &url,
                        "/v1/relationships/write",
                        &write_body("OPERATION_TOUCH", relation, &doc, &user),
                    ) {
                        Ok((200, _)) if relation == "viewer" => {
                            acked.lock().unwrap().viewers.push(format!("{doc}@{user}"));
                        }
                        Ok(_) => {}
                        Err(_) => return, // the server is gone
                    }
                    n += 1;
                }
            }));
        }
        {
            let (url, acked, stop, base) = (
                served.url.clone(),
                Arc::clone(&acked),
                Arc::clone(&stop),
                base.clone(),
            );
            load.push(std::thread::spawn(move || {
                let mut extra = true;
                while !stop.load(Ordering::Relaxed) {
                    extra = !extra;
                    if !extra {
                        let clear = json!({"relationshipFilter": {"resourceType": "kdoc", "optionalRelation": "extra"}});
                        if api(&url, "/v1/relationships/delete", &clear).is_err() {
                            return;
                        }
                    }
                    let text = schema_with(&base, extra);
                    acked.lock().unwrap().schema_in_flight = Some(text.clone());
                    match api(&url, "/v1/schema/write", &json!({ "schema": text })) {
                        Ok((200, _)) => {
                            let mut acked = acked.lock().unwrap();
                            acked.schema = Some(text);
                            acked.schema_in_flight = None;
                        }
                        Ok(_) => {
                            acked.lock().unwrap().schema_in_flight = None;
                        }
                        Err(_) => return,
                    }
                }
            }));
        }
        {
            let (url, acked, stop) = (served.url.clone(), Arc::clone(&acked), Arc::clone(&stop));
            load.push(std::thread::spawn(move || {
                // A user per round: one user may create at most 100 organizations.
                let user = format!("alice{round}");
                let auth = user_auth(&user);
                let mut n = 0;
                while !stop.load(Ordering::Relaxed) && n < 90 {
                    let body = json!({"name": format!("org-{round}-{n}")});
                    match call(&url, "POST", "/v1beta1/organizations", &auth, Some(&body)) {
                        Ok((200, created)) => {
                            let id = created["organization"]["id"].as_str().unwrap().to_string();
                            acked.lock().unwrap().orgs.push((user.clone(), id));
                        }
                        Ok((status, body)) => {
                            panic!("round {round}: creating an organization: {status} {body}")
                        }
                        Err(_) => return,
                    }
                    n += 1;
                }
            }));
        }
        std::thread::sleep(Duration::from_millis(200 + random.below(800)));
        served.child.kill().unwrap(); // SIGKILL
        served.child.wait().unwrap();
        stop.store(true, Ordering::Relaxed);
        for thread in load {
            thread.join().unwrap();
        }
        let mut acked = std::mem::take(&mut *acked.lock().unwrap());
        all_acked.viewers.append(&mut acked.viewers);
        all_acked.orgs.append(&mut acked.orgs);
        if acked.schema.is_some() {
            all_acked.schema = acked.schema;
        }
        all_acked.schema_in_flight = acked.schema_in_flight;
        served = serve(dir.path());
        verify(&served.url, &all_acked, round);
        // The next round's in-flight schema is judged against what is stored now.
        let (_, schema) = api(&served.url, "/v1/schema/read", &json!({})).unwrap();
        all_acked.schema = schema["schemaText"].as_str().map(str::to_string);
        all_acked.schema_in_flight = None;
    }
    assert!(all_acked.viewers.len() > 100, "the load wrote too little");
    assert!(!all_acked.orgs.is_empty(), "the facade wrote nothing");
}

#[test]
fn a_revision_older_than_the_retention_window_is_refused_as_expired() {
    let dir = tempfile::tempdir().unwrap();
    let args = |dir: &Path| {
        serve_with(&[
            "--data-dir",
            dir.to_str().unwrap(),
            "--history-retention",
            "1s",
        ])
    };
    let served = args(dir.path());
    let schema = "definition user {}\ndefinition doc {\n    relation viewer: user\n}\n";
    assert_eq!(
        api(&served.url, "/v1/schema/write", &json!({"schema": schema}))
            .unwrap()
            .0,
        200
    );
    let (_, written) = api(
        &served.url,
        "/v1/relationships/write",
        &json!({"updates": [{"operation": "OPERATION_TOUCH", "relationship": {
            "resource": {"objectType": "doc", "objectId": "1"},
            "relation": "viewer",
            "subject": {"object": {"objectType": "user", "objectId": "tom"}},
        }}]}),
    )
    .unwrap();
    let token = written["writtenAt"]["token"].as_str().unwrap().to_string();
    // A later revision, so the token's is history rather than the head (always kept).
    let later = json!({"updates": [{"operation": "OPERATION_TOUCH", "relationship": {
        "resource": {"objectType": "doc", "objectId": "2"},
        "relation": "viewer",
        "subject": {"object": {"objectType": "user", "objectId": "ann"}},
    }}]});
    assert_eq!(
        api(&served.url, "/v1/relationships/write", &later)
            .unwrap()
            .0,
        200
    );
    drop(served);
    // More than the window later, the restarted server (which prunes when it starts) no
    // longer has that revision's history.
    std::thread::sleep(Duration::from_millis(1_500));
    let served = args(dir.path());
    let check = |consistency: Value| {
        json!({
            "consistency": consistency,
            "resource": {"objectType": "doc", "objectId": "1"},
            "permission": "viewer",
            "subject": {"object": {"objectType": "user", "objectId": "tom"}},
        })
    };
    let exact = check(json!({"atExactSnapshot": {"token": token}}));
    let (status, body) = api(&served.url, "/v1/permissions/check", &exact).unwrap();
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["code"], 11, "OUT_OF_RANGE, as SpiceDB answers: {body}");
    assert!(body.to_string().contains("has expired"), "{body}");
    // A stream says so in its body.
    let read = json!({
        "consistency": {"atExactSnapshot": {"token": token}},
        "relationshipFilter": {"resourceType": "doc"},
    });
    let (_, body) = api(&served.url, "/v1/relationships/read", &read).unwrap();
    assert!(body.to_string().contains("has expired"), "{body}");
    let (status, body) = api(
        &served.url,
        "/v1/watch",
        &json!({"optionalStartCursor": {"token": token}}),
    )
    .unwrap();
    assert_eq!(status, 400, "{body}");
    assert!(body.to_string().contains("has expired"), "{body}");
    // At least as fresh as the old token: the head is, so it answers (the same answer).
    let fresh = check(json!({"atLeastAsFresh": {"token": token}}));
    let (status, body) = api(&served.url, "/v1/permissions/check", &fresh).unwrap();
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["permissionship"], "PERMISSIONSHIP_HAS_PERMISSION");
}
