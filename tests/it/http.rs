//! The HTTP API against a real server on a loopback port: every endpoint's normal path and
//! its error paths, consistency tokens, watch, import/export.

use serde_json::{json, Value};

use crate::server_support::{check_body, object, relationship, subject, touch, TestServer, KEY};

const SCHEMA: &str = "definition user {}
definition group {
    relation member: user | group#member
}
caveat only_ip(user_ip ipaddress, allowed string) {
    user_ip.in_cidr(allowed)
}
definition doc {
    relation viewer: user | user:* | group#member | user with only_ip
    relation banned: user
    permission view = viewer - banned
}";

fn with_schema() -> TestServer {
    let server = TestServer::start();
    server.ok("/v1/schema/write", &json!({ "schema": SCHEMA }));
    server
}

fn token(answer: &Value, field: &str) -> String {
    answer[field]["token"].as_str().unwrap().to_string()
}

fn expect_error(server: &TestServer, path: &str, body: &Value, status: u16, code: u64, says: &str) {
    let (got, answer) = server.post(path, body);
    assert_eq!(got, status, "{path}: {answer}");
    assert_eq!(answer["code"], code, "{path}: {answer}");
    assert!(
        answer["message"].as_str().unwrap().contains(says),
        "{path}: message {:?} should mention {says:?}",
        answer["message"]
    );
    assert!(answer["details"].is_array(), "{path}: {answer}");
}

#[test]
fn every_v1_call_needs_the_key_and_health_does_not() {
    let server = TestServer::start();
    let (status, body) = server.post_raw("/v1/schema/read", "{}", None);
    assert_eq!(status, 401, "{body}");
    assert!(body.contains("\"code\":16"));
    let (status, _) = server.post_raw("/v1/schema/read", "{}", Some("wrong"));
    assert_eq!(status, 401);
    let (status, _) = server.post_raw("/v1/permissions/check", "{}", Some(&format!("{KEY}x")));
    assert_eq!(status, 401);
    let health = ureq::get(&server.url("/healthz")).call().unwrap();
    assert_eq!(health.status().as_u16(), 200);
    let ready = ureq::get(&server.url("/readyz")).call().unwrap();
    assert_eq!(ready.status().as_u16(), 200);
}

#[test]
fn schema_write_read_and_positioned_errors() {
    let server = TestServer::start();
    expect_error(&server, "/v1/schema/read", &json!({}), 404, 5, "no schema");
    let written = server.ok("/v1/schema/write", &json!({ "schema": SCHEMA }));
    assert!(!token(&written, "writtenAt").is_empty());
    let read = server.ok("/v1/schema/read", &json!({}));
    assert_eq!(read["schemaText"], SCHEMA);
    expect_error(
        &server,
        "/v1/schema/write",
        &json!({"schema": "definition user {}\ndefinition doc {\n  relation viewer: usr\n}"}),
        400,
        3,
        "line 3, column 20",
    );
    expect_error(
        &server,
        "/v1/schema/write",
        &json!({"schema": ""}),
        400,
        3,
        "empty",
    );
    // Removing a relation still in use is refused and names it.
    server.ok(
        "/v1/relationships/write",
        &touch(&["doc:1#banned@user:tom"]),
    );
    let without_banned = SCHEMA
        .replace("    relation banned: user\n", "")
        .replace(" - banned", "");
    expect_error(
        &server,
        "/v1/schema/write",
        &json!({"schema": without_banned}),
        400,
        9,
        "banned",
    );
}

#[test]
fn writes_are_checked_atomic_and_limited() {
    let server = TestServer::start_with(|c| {
        c.limits.max_updates_per_write = 3;
        c.limits.max_body_bytes = 2_000;
    });
    server.ok("/v1/schema/write", &json!({ "schema": SCHEMA }));
    let read_all = |s: &TestServer| {
        s.stream(
            "/v1/relationships/read",
            &json!({"relationshipFilter": {"resourceType": "doc"}}),
        )
    };

    let (status, body) = server.post_raw("/v1/relationships/write", "{\"updates\": [", Some(KEY));
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("invalid request body"));
    expect_error(
        &server,
        "/v1/relationships/write",
        &json!({"updates": "nope"}),
        400,
        3,
        "invalid type",
    );
    expect_error(
        &server,
        "/v1/relationships/write",
        &touch(&["folder:1#viewer@user:tom"]),
        400,
        3,
        "folder",
    );
    expect_error(
        &server,
        "/v1/relationships/write",
        &touch(&["doc:1#owner@user:tom"]),
        400,
        3,
        "owner",
    );
    expect_error(
        &server,
        "/v1/relationships/write",
        &touch(&["doc:1#view@user:tom"]),
        400,
        3,
        "permission",
    );
    expect_error(
        &server,
        "/v1/relationships/write",
        &touch(&[
            "doc:1#viewer@user:a",
            "doc:1#viewer@user:b",
            "doc:1#viewer@user:c",
            "doc:1#viewer@user:d",
        ]),
        400,
        3,
        "maximum allowed of 3",
    );
    let big = json!({"updates": [{"operation": "OPERATION_TOUCH", "relationship": relationship(&format!("doc:1#viewer@user:{}", "x".repeat(3000)))}]});
    let (status, body) = server.post_raw("/v1/relationships/write", &big.to_string(), Some(KEY));
    assert_eq!(status, 413, "{body}");
    assert!(body.contains("larger than the limit"));
    // One bad update in a batch: nothing is written.
    expect_error(
        &server,
        "/v1/relationships/write",
        &touch(&["doc:1#viewer@user:tom", "doc:2#viewer@ghost:x"]),
        400,
        3,
        "ghost",
    );
    assert!(read_all(&server).is_empty());

    server.ok(
        "/v1/relationships/write",
        &touch(&["doc:1#viewer@user:tom"]),
    );
    let create_again = json!({"updates": [
        {"operation": "OPERATION_CREATE", "relationship": relationship("doc:1#viewer@user:ann")},
        {"operation": "OPERATION_CREATE", "relationship": relationship("doc:1#viewer@user:tom")},
    ]});
    expect_error(
        &server,
        "/v1/relationships/write",
        &create_again,
        409,
        6,
        "already exists",
    );
    let precondition = json!({
        "updates": [{"operation": "OPERATION_TOUCH", "relationship": relationship("doc:2#viewer@user:ann")}],
        "optionalPreconditions": [{"operation": "OPERATION_MUST_MATCH", "filter": {"resourceType": "doc", "optionalResourceId": "9"}}],
    });
    expect_error(
        &server,
        "/v1/relationships/write",
        &precondition,
        400,
        9,
        "precondition",
    );
    assert_eq!(read_all(&server).len(), 1);
    expect_error(
        &server,
        "/v1/relationships/write",
        &json!({"updates": [{"operation": "OPERATION_UPSERT", "relationship": relationship("doc:1#viewer@user:tom")}]}),
        400,
        3,
        "OPERATION_UPSERT",
    );
}

#[test]
fn tokens_choose_what_a_check_sees() {
    let server = with_schema();
    let first = server.ok(
        "/v1/relationships/write",
        &touch(&["doc:1#viewer@user:tom"]),
    );
    let before = token(&first, "writtenAt");
    let second = server.ok(
        "/v1/relationships/write",
        &touch(&["doc:1#banned@user:tom"]),
    );
    let after = token(&second, "writtenAt");

    let fresh = server.ok(
        "/v1/permissions/check",
        &check_body(
            "doc:1",
            "view",
            "user:tom",
            json!({"atLeastAsFresh": {"token": after}}),
        ),
    );
    assert_eq!(fresh["permissionship"], "PERMISSIONSHIP_NO_PERMISSION");
    assert_eq!(fresh["checkedAt"]["token"], after);
    let exact = server.ok(
        "/v1/permissions/check",
        &check_body(
            "doc:1",
            "view",
            "user:tom",
            json!({"atExactSnapshot": {"token": before}}),
        ),
    );
    assert_eq!(exact["permissionship"], "PERMISSIONSHIP_HAS_PERMISSION");
    assert_eq!(exact["checkedAt"]["token"], before);
    for consistency in [
        json!({"minimizeLatency": true}),
        json!({"fullyConsistent": true}),
        Value::Null,
    ] {
        let answer = server.ok(
            "/v1/permissions/check",
            &check_body("doc:1", "view", "user:tom", consistency),
        );
        assert_eq!(answer["permissionship"], "PERMISSIONSHIP_NO_PERMISSION");
    }

    // A token of another data folder, a malformed one, and one from the future.
    let other = TestServer::start();
    let foreign = token(
        &other.ok("/v1/schema/write", &json!({ "schema": SCHEMA })),
        "writtenAt",
    );
    let check_with = |t: &str| {
        check_body(
            "doc:1",
            "view",
            "user:tom",
            json!({"atLeastAsFresh": {"token": t}}),
        )
    };
    expect_error(
        &server,
        "/v1/permissions/check",
        &check_with(&foreign),
        400,
        3,
        "different zanzi data store",
    );
    expect_error(
        &server,
        "/v1/permissions/check",
        &check_with("garbage!"),
        400,
        3,
        "malformed",
    );
    let both = check_body(
        "doc:1",
        "view",
        "user:tom",
        json!({"minimizeLatency": true, "fullyConsistent": true}),
    );
    expect_error(
        &server,
        "/v1/permissions/check",
        &both,
        400,
        3,
        "exactly one",
    );
}

#[test]
fn a_token_from_the_future_is_refused() {
    let server = with_schema();
    // Tokens are bound to a store, so a future one is this store's newest with a bigger revision.
    let latest = token(
        &server.ok(
            "/v1/relationships/write",
            &touch(&["doc:1#viewer@user:tom"]),
        ),
        "writtenAt",
    );
    let future = bump_token(&latest, 1000);
    expect_error(
        &server,
        "/v1/permissions/check",
        &check_body(
            "doc:1",
            "view",
            "user:tom",
            json!({"atLeastAsFresh": {"token": future}}),
        ),
        400,
        3,
        "future",
    );
}

/// The same token with its revision (the last 8 bytes) increased by `by`.
fn bump_token(token: &str, by: u64) -> String {
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use base64::Engine as _;
    let mut bytes = URL_SAFE_NO_PAD.decode(token).unwrap();
    let n = bytes.len();
    let revision = u64::from_be_bytes(bytes[n - 8..].try_into().unwrap()) + by;
    bytes[n - 8..].copy_from_slice(&revision.to_be_bytes());
    URL_SAFE_NO_PAD.encode(bytes)
}

#[test]
fn a_check_reads_the_same_with_escapes_proto_names_or_plain_text() {
    let server = with_schema();
    server.ok(
        "/v1/relationships/write",
        &touch(&["doc:1#viewer@user:tom"]),
    );
    // Plain text (read borrowing from the body), escaped text and protojson's field names
    // (both read owned) answer alike.
    for body in [
        r#"{"resource":{"objectType":"doc","objectId":"1"},"permission":"view","subject":{"object":{"objectType":"user","objectId":"tom"}}}"#,
        r#"{"resource":{"objectType":"d\u006fc","objectId":"\u0031"},"permission":"vi\u0065w","subject":{"object":{"objectType":"user","objectId":"t\u006fm"}}}"#,
        r#"{"resource":{"object_type":"doc","object_id":"1"},"permission":"view","subject":{"object":{"object_type":"user","object_id":"tom"}}}"#,
    ] {
        let (status, text) = server.post_raw("/v1/permissions/check", body, Some(KEY));
        assert_eq!(status, 200, "{body}: {text}");
        let answer: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(
            answer["permissionship"], "PERMISSIONSHIP_HAS_PERMISSION",
            "{body}"
        );
    }
    // The same refusals either way.
    for body in [
        r#"{"resource":{"objectType":"doc","objectId":"1"},"permission":"","subject":{"object":{"objectType":"user","objectId":"tom"}}}"#,
        r#"{"resource":{"objectType":"doc","objectId":"1"},"permission":"vi\u0065w","subject":{"object":{"objectType":"","objectId":"tom"}}}"#,
        r#"{"resource":{"objectType":"doc","objectId":"1"},"permission":"view","subject":{},"extra":1}"#,
    ] {
        let (status, text) = server.post_raw("/v1/permissions/check", body, Some(KEY));
        assert_eq!(status, 400, "{body}: {text}");
    }
}

#[test]
fn check_errors_and_caveats() {
    let server = with_schema();
    server.ok(
        "/v1/relationships/write",
        &json!({"updates": [{"operation": "OPERATION_TOUCH", "relationship": {
            "resource": object("doc:1"), "relation": "viewer", "subject": subject("user:tom"),
            "optionalCaveat": {"caveatName": "only_ip", "context": {"allowed": "10.0.0.0/8"}}
        }}]}),
    );
    let conditional = server.ok(
        "/v1/permissions/check",
        &check_body("doc:1", "view", "user:tom", Value::Null),
    );
    assert_eq!(
        conditional["permissionship"],
        "PERMISSIONSHIP_CONDITIONAL_PERMISSION"
    );
    assert_eq!(
        conditional["partialCaveatInfo"]["missingRequiredContext"],
        json!(["user_ip"])
    );
    let mut with_context = check_body("doc:1", "view", "user:tom", Value::Null);
    with_context["context"] = json!({"user_ip": "10.1.2.3"});
    let has = server.ok("/v1/permissions/check", &with_context);
    assert_eq!(has["permissionship"], "PERMISSIONSHIP_HAS_PERMISSION");
    assert!(has.get("partialCaveatInfo").is_none());
    with_context["context"] = json!({"user_ip": 12});
    expect_error(
        &server,
        "/v1/permissions/check",
        &with_context,
        400,
        3,
        "user_ip",
    );

    expect_error(
        &server,
        "/v1/permissions/check",
        &check_body("nope:1", "view", "user:tom", Value::Null),
        400,
        3,
        "nope",
    );
    expect_error(
        &server,
        "/v1/permissions/check",
        &check_body("doc:1", "edit", "user:tom", Value::Null),
        400,
        3,
        "edit",
    );
    expect_error(
        &server,
        "/v1/permissions/check",
        &check_body("doc:1", "", "user:tom", Value::Null),
        400,
        3,
        "permission is required",
    );
    expect_error(
        &server,
        "/v1/permissions/check",
        &json!({"resource": object("doc:1"), "permission": "view", "subject": subject("user:tom"), "bogus": 1}),
        400,
        3,
        "bogus",
    );
}

#[test]
fn bulk_checks_answer_per_item_and_are_limited() {
    let server = TestServer::start_with(|c| c.limits.max_bulk_checks = 3);
    server.ok("/v1/schema/write", &json!({ "schema": SCHEMA }));
    server.ok(
        "/v1/relationships/write",
        &touch(&["doc:1#viewer@user:tom"]),
    );
    let item = |r: &str, p: &str, s: &str| json!({"resource": object(r), "permission": p, "subject": subject(s)});
    let answer = server.ok(
        "/v1/permissions/checkbulk",
        &json!({"items": [item("doc:1", "view", "user:tom"), item("doc:1", "view", "user:ann"), item("doc:1", "nope", "user:tom")]}),
    );
    let pairs = answer["pairs"].as_array().unwrap();
    assert_eq!(
        pairs[0]["item"]["permissionship"],
        "PERMISSIONSHIP_HAS_PERMISSION"
    );
    assert_eq!(
        pairs[1]["item"]["permissionship"],
        "PERMISSIONSHIP_NO_PERMISSION"
    );
    assert_eq!(pairs[2]["error"]["code"], 3);
    assert_eq!(pairs[0]["request"]["resource"]["objectId"], "1");
    assert!(!token(&answer, "checkedAt").is_empty());
    let four = json!({"items": vec![item("doc:1", "view", "user:tom"); 4]});
    expect_error(
        &server,
        "/v1/permissions/checkbulk",
        &four,
        400,
        3,
        "maximum allowed of 3",
    );
}

#[test]
fn reads_filter_page_and_delete() {
    let server = with_schema();
    let rels: Vec<String> = (0..7)
        .map(|i| format!("doc:{i}#viewer@user:u{i}"))
        .collect();
    let refs: Vec<&str> = rels.iter().map(String::as_str).collect();
    server.ok("/v1/relationships/write", &touch(&refs));
    server.ok(
        "/v1/relationships/write",
        &touch(&["doc:1#banned@user:u1", "doc:1#viewer@group:eng#member"]),
    );

    let by_subject = server.stream(
        "/v1/relationships/read",
        &json!({"relationshipFilter": {"resourceType": "doc", "optionalSubjectFilter": {"subjectType": "group", "optionalRelation": {"relation": "member"}}}}),
    );
    assert_eq!(by_subject.len(), 1);
    assert_eq!(
        by_subject[0]["relationship"]["subject"]["object"]["objectId"],
        "eng"
    );

    // Page through the viewers three at a time.
    let mut seen = Vec::new();
    let mut cursor = Value::Null;
    loop {
        let page = server.stream(
            "/v1/relationships/read",
            &json!({"relationshipFilter": {"resourceType": "doc", "optionalRelation": "viewer"}, "optionalLimit": 3, "optionalCursor": cursor}),
        );
        assert!(page.len() <= 3);
        if page.is_empty() {
            break;
        }
        for line in &page {
            seen.push(format!(
                "{}:{}",
                line["relationship"]["resource"]["objectId"]
                    .as_str()
                    .unwrap(),
                line["relationship"]["subject"]["object"]["objectId"]
                    .as_str()
                    .unwrap()
            ));
        }
        cursor = page.last().unwrap()["afterResultCursor"].clone();
    }
    assert_eq!(seen.len(), 8, "{seen:?}");
    seen.dedup();
    assert_eq!(seen.len(), 8);
    expect_error(
        &server,
        "/v1/relationships/read",
        &json!({"relationshipFilter": {}}),
        400,
        3,
        "resourceType is required",
    );
    expect_error(
        &server,
        "/v1/relationships/read",
        &json!({"relationshipFilter": {"resourceType": "doc"}, "optionalCursor": {"token": "zzz"}}),
        400,
        3,
        "cursor",
    );

    // Deleting more than the limit without partial deletions is refused, and deletes nothing.
    let viewers = json!({"resourceType": "doc", "optionalRelation": "viewer"});
    expect_error(
        &server,
        "/v1/relationships/delete",
        &json!({"relationshipFilter": viewers, "optionalLimit": 2}),
        400,
        3,
        "limit of 2",
    );
    let partial = server.ok(
        "/v1/relationships/delete",
        &json!({"relationshipFilter": viewers, "optionalLimit": 2, "optionalAllowPartialDeletions": true}),
    );
    assert_eq!(partial["deletionProgress"], "DELETION_PROGRESS_PARTIAL");
    assert_eq!(partial["relationshipsDeletedCount"], "2");
    let failed_precondition = json!({
        "relationshipFilter": viewers,
        "optionalPreconditions": [{"operation": "OPERATION_MUST_NOT_MATCH", "filter": {"resourceType": "doc", "optionalRelation": "banned"}}],
    });
    expect_error(
        &server,
        "/v1/relationships/delete",
        &failed_precondition,
        400,
        9,
        "precondition",
    );
    let rest = server.ok(
        "/v1/relationships/delete",
        &json!({"relationshipFilter": viewers}),
    );
    assert_eq!(rest["deletionProgress"], "DELETION_PROGRESS_COMPLETE");
    assert_eq!(rest["relationshipsDeletedCount"], "6");
    let left = server.stream(
        "/v1/relationships/read",
        &json!({"relationshipFilter": {"resourceType": "doc"}}),
    );
    assert_eq!(left.len(), 1);
}

#[test]
fn expand_and_lookups() {
    let server = with_schema();
    server.ok(
        "/v1/relationships/write",
        &touch(&[
            "group:eng#member@user:ann",
            "doc:1#viewer@group:eng#member",
            "doc:1#viewer@user:tom",
            "doc:2#viewer@user:ann",
            "doc:3#viewer@user:ann",
            "doc:4#viewer@user:*",
            "doc:4#banned@user:bob",
        ]),
    );
    let expanded = server.ok(
        "/v1/permissions/expand",
        &json!({"resource": object("doc:1"), "permission": "view"}),
    );
    let root = &expanded["treeRoot"];
    assert_eq!(root["expandedRelation"], "view");
    assert_eq!(root["intermediate"]["operation"], "OPERATION_EXCLUSION");
    let viewers = &root["intermediate"]["children"][0];
    let subjects = viewers["leaf"]["subjects"].as_array().unwrap();
    assert!(subjects
        .iter()
        .any(|s| s["object"]["objectId"] == "eng" && s["optionalRelation"] == "member"));
    expect_error(
        &server,
        "/v1/permissions/expand",
        &json!({"resource": object("doc:1"), "permission": "nope"}),
        400,
        3,
        "nope",
    );

    let lookup = |cursor: Value, limit: u32| {
        server.stream(
            "/v1/permissions/resources",
            &json!({"resourceObjectType": "doc", "permission": "view", "subject": subject("user:ann"), "optionalLimit": limit, "optionalCursor": cursor}),
        )
    };
    let first = lookup(Value::Null, 2);
    let ids: Vec<&str> = first
        .iter()
        .map(|r| r["resourceObjectId"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["1", "2"]);
    assert_eq!(
        first[0]["permissionship"],
        "LOOKUP_PERMISSIONSHIP_HAS_PERMISSION"
    );
    let rest = lookup(first[1]["afterResultCursor"].clone(), 10);
    let ids: Vec<&str> = rest
        .iter()
        .map(|r| r["resourceObjectId"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["3", "4"]);

    let subjects = server.stream(
        "/v1/permissions/subjects",
        &json!({"resource": object("doc:4"), "permission": "view", "subjectObjectType": "user"}),
    );
    assert_eq!(subjects.len(), 1);
    assert_eq!(subjects[0]["subject"]["subjectObjectId"], "*");
    assert_eq!(subjects[0]["subject"]["excludedSubjectIds"], json!(["bob"]));
    let of_doc1 = server.stream(
        "/v1/permissions/subjects",
        &json!({"resource": object("doc:1"), "permission": "view", "subjectObjectType": "user", "optionalConcreteLimit": 1}),
    );
    assert_eq!(of_doc1.len(), 1);
    let next = server.stream(
        "/v1/permissions/subjects",
        &json!({"resource": object("doc:1"), "permission": "view", "subjectObjectType": "user", "optionalCursor": of_doc1[0]["afterResultCursor"]}),
    );
    let mut all: Vec<&str> = of_doc1
        .iter()
        .chain(&next)
        .map(|s| s["subject"]["subjectObjectId"].as_str().unwrap())
        .collect();
    all.sort_unstable();
    assert_eq!(all, ["ann", "tom"]);
    expect_error(
        &server,
        "/v1/permissions/resources",
        &json!({"resourceObjectType": "", "permission": "view", "subject": subject("user:ann")}),
        400,
        3,
        "resourceObjectType",
    );
}

#[test]
fn import_then_export_round_trips() {
    let server = with_schema();
    let rels: Vec<Value> = (0..2500)
        .map(|i| relationship(&format!("doc:{i}#viewer@user:u{}", i % 10)))
        .collect();
    let body = format!(
        "{}\n{}\n",
        json!({"relationships": rels[..1500]}),
        json!({"relationships": rels[1500..]})
    );
    let (status, answer) = server.post_raw("/v1/relationships/importbulk", &body, Some(KEY));
    assert_eq!(status, 200, "{answer}");
    assert!(answer.contains("\"numLoaded\":\"2500\""));
    // Importing an existing relationship fails as a whole.
    let again = json!({"relationships": [relationship("doc:new#viewer@user:x"), relationship("doc:1#viewer@user:u1")]});
    let (status, _) = server.post_raw(
        "/v1/relationships/importbulk",
        &again.to_string(),
        Some(KEY),
    );
    assert_eq!(status, 409);

    let pages = server.stream("/v1/relationships/exportbulk", &json!({}));
    let exported: usize = pages
        .iter()
        .map(|p| p["relationships"].as_array().unwrap().len())
        .sum();
    assert_eq!(exported, 2500);
    assert!(pages.len() >= 3, "exported in pages of at most 1000");
    // Resume from the first page's cursor.
    let rest = server.stream(
        "/v1/relationships/exportbulk",
        &json!({"optionalCursor": pages[0]["afterResultCursor"]}),
    );
    let resumed: usize = rest
        .iter()
        .map(|p| p["relationships"].as_array().unwrap().len())
        .sum();
    assert_eq!(resumed, 1500);
}

#[test]
fn watch_delivers_writes_and_resumes_from_a_token() {
    let server = with_schema();
    let mut stream = server.open_stream("/v1/watch", &json!({}));
    // An idle stream opens with a checkpoint: from then on the subscription is live.
    assert_eq!(stream.next().unwrap()["isCheckpoint"], true);
    let written = server.ok(
        "/v1/relationships/write",
        &touch(&["doc:1#viewer@user:tom"]),
    );
    let update = stream
        .find(|line| !line["updates"].as_array().unwrap().is_empty())
        .unwrap();
    assert_eq!(update["updates"][0]["operation"], "OPERATION_TOUCH");
    assert_eq!(
        update["updates"][0]["relationship"]["subject"]["object"]["objectId"],
        "tom"
    );
    assert_eq!(
        update["changesThrough"]["token"],
        written["writtenAt"]["token"]
    );
    // Idle streams get checkpoints.
    let checkpoint = stream.next().unwrap();
    assert_eq!(checkpoint["isCheckpoint"], true);
    drop(stream);

    server.ok(
        "/v1/relationships/write",
        &touch(&["doc:2#viewer@user:ann"]),
    );
    server.ok(
        "/v1/relationships/write",
        &touch(&["group:eng#member@user:ann"]),
    );
    let mut resumed = server.open_stream(
        "/v1/watch",
        &json!({"optionalStartCursor": written["writtenAt"], "optionalObjectTypes": ["doc"]}),
    );
    let next = resumed.next().unwrap();
    assert_eq!(
        next["updates"][0]["relationship"]["resource"]["objectId"],
        "2"
    );
    let after = resumed.next().unwrap();
    assert_eq!(
        after["isCheckpoint"], true,
        "the group write is filtered out: {after}"
    );
    drop(resumed);
    let future = bump_token(written["writtenAt"]["token"].as_str().unwrap(), 100);
    expect_error(
        &server,
        "/v1/watch",
        &json!({"optionalStartCursor": {"token": future}}),
        400,
        3,
        "future",
    );
}

#[test]
fn metrics_count_requests_and_checks() {
    let server = with_schema();
    server.ok(
        "/v1/relationships/write",
        &touch(&["doc:1#viewer@user:tom"]),
    );
    server.ok(
        "/v1/permissions/check",
        &check_body("doc:1", "view", "user:tom", Value::Null),
    );
    let text = ureq::get(&server.url("/metrics"))
        .call()
        .unwrap()
        .body_mut()
        .read_to_string()
        .unwrap();
    assert!(
        text.contains("zanzi_requests_total{endpoint=\"/v1/permissions/check\",status=\"200\"} 1"),
        "{text}"
    );
    assert!(text.contains("zanzi_check_results_total{permissionship=\"has_permission\"} 1"));
    assert!(text.contains("zanzi_relationships_written_total 1"));
    assert!(text.contains("zanzi_request_duration_seconds_bucket"));
    assert!(text.contains("zanzi_store_size_bytes"));
    assert!(text.contains("zanzi_check_cache_hits_total"));
    assert!(text.contains("zanzi_check_cache_misses_total"));
}

/// The `x-request-id` of an answer to a POST of `body` to `path`, sending `id` if given.
fn request_id_of(
    server: &TestServer,
    path: &str,
    key: Option<&str>,
    id: Option<&str>,
) -> (u16, String) {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into();
    let mut request = agent.post(&server.url(path));
    if let Some(key) = key {
        request = request.header("Authorization", &format!("Bearer {key}"));
    }
    if let Some(id) = id {
        request = request.header("x-request-id", id);
    }
    let response = request.send("{}").unwrap();
    let header = response
        .headers()
        .get("x-request-id")
        .expect("an x-request-id header");
    (
        response.status().as_u16(),
        header.to_str().unwrap().to_string(),
    )
}

#[test]
fn every_answer_carries_a_request_id_given_or_new() {
    let server = with_schema();
    let mut seen = std::collections::HashSet::new();
    // Answered, refused without the key, unknown path, open route: each gets a new id, a
    // version-8 UUID, never the same twice.
    for (path, key, status) in [
        ("/v1/schema/read", Some(KEY), 200),
        ("/v1/schema/read", Some(KEY), 200),
        ("/v1/schema/read", None, 401),
        ("/v1/nope", Some(KEY), 404),
        ("/healthz", None, 405),
    ] {
        let (got, id) = request_id_of(&server, path, key, None);
        assert_eq!(got, status, "{path}");
        let uuid = uuid::Uuid::parse_str(&id).unwrap_or_else(|e| panic!("{id}: {e}"));
        assert_eq!(uuid.get_version_num(), 8, "{id}");
        assert!(seen.insert(id.clone()), "{id} given twice");
    }
    // A client's own id comes back unchanged, on success and on refusal.
    let (status, id) = request_id_of(&server, "/v1/schema/read", Some(KEY), Some("client-id-7"));
    assert_eq!((status, id.as_str()), (200, "client-id-7"));
    let (status, id) = request_id_of(
        &server,
        "/v1/schema/read",
        Some("wrong"),
        Some("client-id-8"),
    );
    assert_eq!((status, id.as_str()), (401, "client-id-8"));
}

#[test]
fn metrics_count_refusals_and_unknown_paths_by_status() {
    let server = TestServer::start();
    let (status, _) = server.post_raw("/v1/schema/read", "{}", None);
    assert_eq!(status, 401);
    let (status, _) = server.post_raw("/v1/schema/read", "{}", Some(KEY));
    assert_eq!(status, 404, "no schema yet");
    let (status, _) = server.post_raw("/v1/nope", "{}", Some(KEY));
    assert_eq!(status, 404);
    let text = ureq::get(&server.url("/metrics"))
        .call()
        .unwrap()
        .body_mut()
        .read_to_string()
        .unwrap();
    for line in [
        "zanzi_requests_total{endpoint=\"/v1/schema/read\",status=\"401\"} 1",
        "zanzi_requests_total{endpoint=\"/v1/schema/read\",status=\"404\"} 1",
        "zanzi_requests_total{endpoint=\"unmatched\",status=\"404\"} 1",
        "zanzi_request_duration_seconds_count{endpoint=\"/v1/schema/read\"} 2",
    ] {
        assert!(text.contains(line), "{line} missing from:\n{text}");
    }
}

#[test]
fn unknown_paths_answer_json_404() {
    let server = TestServer::start();
    let (status, body) = server.post_raw("/v1/nope", "{}", Some(KEY));
    assert_eq!(status, 404);
    assert!(body.contains("\"code\":5"));
}

#[test]
fn graceful_shutdown_ends_open_watch_streams() {
    let server = with_schema();
    let mut stream = server.open_stream("/v1/watch", &json!({}));
    assert_eq!(stream.next().unwrap()["isCheckpoint"], true);
    // Dropping the server waits for its graceful shutdown, which must not hang on the stream.
    drop(server);
    assert!(stream.all(|line| line["isCheckpoint"] == true));
}
