//! The rest of SpiceDB's HTTP gateway on a live server: the reflection and diff endpoints (and
//! their experimental paths), error `details` with SpiceDB's `ErrorReason`, protojson on
//! input (proto field names, enum numbers, nulls), and imports with TOUCH by header.

use serde_json::{json, Value};

use crate::server_support::{object, relationship, subject, touch, TestServer};

const SCHEMA: &str = "definition user {}
definition group {
    relation member: user | group#member
}
definition doc {
    relation viewer: user | group#member | user:*
    relation banned: user
    permission view = viewer - banned
}";

fn started() -> TestServer {
    let server = TestServer::start();
    server.ok("/v1/schema/write", &json!({ "schema": SCHEMA }));
    server
}

#[test]
fn reflection_and_diff_answer_on_the_stable_and_the_experimental_paths() {
    let server = started();
    for prefix in ["/v1/schema", "/v1/experimental"] {
        let reflected = server.ok(&format!("{prefix}/reflectschema"), &json!({}));
        let names: Vec<&str> = reflected["definitions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d["name"].as_str().unwrap())
            .collect();
        assert_eq!(names, ["doc", "group", "user"], "{reflected}");
        let doc = &reflected["definitions"][0];
        let viewer = &doc["relations"][0];
        assert_eq!(viewer["name"], "viewer");
        assert_eq!(viewer["parentDefinitionName"], "doc");
        assert_eq!(viewer["subjectTypes"][0]["subjectDefinitionName"], "user");
        assert_eq!(viewer["subjectTypes"][0]["isTerminalSubject"], true);
        assert_eq!(viewer["subjectTypes"][1]["optionalRelationName"], "member");
        assert_eq!(viewer["subjectTypes"][2]["isPublicWildcard"], true);
        assert_eq!(doc["permissions"][0]["name"], "view");
        assert!(reflected["readAt"]["token"].is_string());
        let filtered = server.ok(
            &format!("{prefix}/reflectschema"),
            &json!({"optionalFilters": [{"optionalDefinitionNameFilter": "gr"}]}),
        );
        assert_eq!(filtered["definitions"].as_array().unwrap().len(), 1);

        let (computable, dependent) = if prefix == "/v1/schema" {
            (
                "/v1/schema/permissions/computable",
                "/v1/schema/permissions/dependent",
            )
        } else {
            (
                "/v1/experimental/permissions/computable",
                "/v1/experimental/permissions/dependent",
            )
        };
        let answer = server.ok(
            computable,
            &json!({"definitionName": "doc", "relationName": "banned"}),
        );
        assert_eq!(
            answer["permissions"],
            json!([{"definitionName": "doc", "relationName": "view", "isPermission": true}])
        );
        let answer = server.ok(
            dependent,
            &json!({"definitionName": "doc", "permissionName": "view"}),
        );
        let mut relations: Vec<String> = answer["relations"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| {
                format!(
                    "{}#{}",
                    r["definitionName"].as_str().unwrap(),
                    r["relationName"].as_str().unwrap()
                )
            })
            .collect();
        relations.sort();
        assert_eq!(relations, ["doc#banned", "doc#viewer", "group#member"]);

        let diff = server.ok(
            &format!("{prefix}/diffschema"),
            &json!({"comparisonSchema": format!("{SCHEMA}\ndefinition folder {{}}")}),
        );
        assert_eq!(
            diff["diffs"][0]["definitionAdded"]["name"], "folder",
            "{diff}"
        );
    }
    let (status, answer) = server.post(
        "/v1/schema/permissions/computable",
        &json!({"definitionName": "doc", "relationName": "nope"}),
    );
    assert_eq!(status, 400, "{answer}");
    // The experimental bulk paths are the stable handlers.
    let answer = server.ok(
        "/v1/experimental/permissions/bulkcheckpermission",
        &json!({"items": [{"resource": object("doc:1"), "permission": "view", "subject": subject("user:ann")}]}),
    );
    assert_eq!(
        answer["pairs"][0]["item"]["permissionship"],
        "PERMISSIONSHIP_NO_PERMISSION"
    );
}

fn reason(answer: &Value) -> (&str, &Value) {
    let detail = &answer["details"][0];
    assert_eq!(
        detail["@type"], "type.googleapis.com/google.rpc.ErrorInfo",
        "{answer}"
    );
    assert_eq!(detail["domain"], "authzed.com", "{answer}");
    (
        detail["reason"].as_str().unwrap_or_default(),
        &detail["metadata"],
    )
}

#[test]
fn errors_carry_spicedbs_reason_in_their_details() {
    let server = started();
    server.ok(
        "/v1/relationships/write",
        &touch(&["doc:1#viewer@user:ann"]),
    );

    let (status, answer) = server.post(
        "/v1/permissions/check",
        &json!({"resource": object("doc:1"), "permission": "edit", "subject": subject("user:ann")}),
    );
    assert_eq!(status, 400);
    let (why, metadata) = reason(&answer);
    assert_eq!(why, "ERROR_REASON_UNKNOWN_RELATION_OR_PERMISSION");
    assert_eq!(metadata["definition_name"], "doc");
    assert_eq!(metadata["relation_or_permission_name"], "edit");

    let (status, answer) = server.post(
        "/v1/permissions/check",
        &json!({"resource": object("folder:1"), "permission": "view", "subject": subject("user:ann")}),
    );
    assert_eq!(status, 400);
    assert_eq!(reason(&answer).0, "ERROR_REASON_UNKNOWN_DEFINITION");

    let create = json!({"updates": [{"operation": "OPERATION_CREATE", "relationship": relationship("doc:1#viewer@user:ann")}]});
    let (status, answer) = server.post("/v1/relationships/write", &create);
    assert_eq!(status, 409);
    let (why, metadata) = reason(&answer);
    assert_eq!(why, "ERROR_REASON_ATTEMPT_TO_RECREATE_RELATIONSHIP");
    assert_eq!(metadata["relationship"], "doc:1#viewer@user:ann");

    let (status, answer) = server.post(
        "/v1/relationships/write",
        &touch(&["doc:1#banned@group:eng#member"]),
    );
    assert_eq!(status, 400);
    let (why, metadata) = reason(&answer);
    assert_eq!(why, "ERROR_REASON_INVALID_SUBJECT_TYPE");
    assert_eq!(metadata["relation_name"], "banned");

    let (status, answer) = server.post("/v1/relationships/write", &touch(&["doc:1#view@user:ann"]));
    assert_eq!(status, 400);
    assert_eq!(reason(&answer).0, "ERROR_REASON_CANNOT_UPDATE_PERMISSION");

    let (status, answer) = server.post(
        "/v1/schema/write",
        &json!({"schema": "definition doc {\n  relation viewer: usr\n}"}),
    );
    assert_eq!(status, 400);
    let (why, metadata) = reason(&answer);
    assert_eq!(why, "ERROR_REASON_SCHEMA_TYPE_ERROR");
    assert_eq!(metadata["start_line_number"], "1");

    let too_many: Vec<Value> = (0..1001)
        .map(|i| json!({"operation": "OPERATION_TOUCH", "relationship": relationship(&format!("doc:{i}#viewer@user:ann"))}))
        .collect();
    let (status, answer) = server.post("/v1/relationships/write", &json!({ "updates": too_many }));
    assert_eq!(status, 400);
    let (why, metadata) = reason(&answer);
    assert_eq!(why, "ERROR_REASON_TOO_MANY_UPDATES_IN_REQUEST");
    assert_eq!(metadata["update_count"], "1001");
    assert_eq!(metadata["maximum_updates_allowed"], "1000");

    let precondition = json!({
        "updates": [{"operation": "OPERATION_TOUCH", "relationship": relationship("doc:2#viewer@user:ann")}],
        "optionalPreconditions": [{"operation": "OPERATION_MUST_MATCH", "filter": {"resourceType": "doc", "optionalResourceId": "nope"}}],
    });
    let (status, answer) = server.post("/v1/relationships/write", &precondition);
    assert_eq!(status, 400);
    assert_eq!(
        reason(&answer).0,
        "ERROR_REASON_WRITE_OR_DELETE_PRECONDITION_FAILURE"
    );

    // An error without a reason keeps empty details.
    let (status, answer) = server.post("/v1/permissions/check", &json!({"permission": "view"}));
    assert_eq!(status, 400);
    assert_eq!(answer["details"], json!([]));
}

#[test]
fn requests_are_read_as_protojson() {
    let server = started();
    // Enum numbers and proto field names in a write (2 is OPERATION_TOUCH).
    let answer = server.ok(
        "/v1/relationships/write",
        &json!({"updates": [
            {"operation": 2, "relationship": {"resource": {"object_type": "doc", "object_id": "1"}, "relation": "viewer",
                "subject": {"object": {"object_type": "user", "object_id": "*"}}}},
            {"operation": "OPERATION_TOUCH", "relationship": {"resource": {"objectType": "doc", "objectId": "1"}, "relation": "banned",
                "subject": {"object": {"objectType": "user", "objectId": "tom"}, "optional_relation": null}}},
        ], "optional_preconditions": null}),
    );
    assert!(answer["writtenAt"]["token"].is_string());
    // Proto names in a streaming lookup.
    let found = server.stream(
        "/v1/permissions/resources",
        &json!({"resource_object_type": "doc", "permission": "view",
                "subject": {"object": {"object_type": "user", "object_id": "ann"}},
                "consistency": {"fully_consistent": true}}),
    );
    assert_eq!(found.len(), 1);
    assert_eq!(found[0]["resourceObjectId"], "1");
    // Enum numbers: 2 is WILDCARD_OPTION_EXCLUDE_WILDCARDS.
    let by_name = server.stream(
        "/v1/permissions/subjects",
        &json!({"resource": object("doc:1"), "permission": "view", "subjectObjectType": "user",
                "wildcardOption": "WILDCARD_OPTION_EXCLUDE_WILDCARDS"}),
    );
    let by_number = server.stream(
        "/v1/permissions/subjects",
        &json!({"resource": object("doc:1"), "permission": "view", "subject_object_type": "user",
                "wildcard_option": 2}),
    );
    assert_eq!(by_name, by_number);
    assert!(by_name.is_empty(), "{by_name:?}");
    // A check with every field in proto form answers in SpiceDB's JSON form.
    let (status, answer) = server.post(
        "/v1/permissions/check",
        &json!({"resource": {"object_type": "doc", "object_id": "1"}, "permission": "view",
                "subject": {"object": {"object_type": "user", "object_id": "tom"}}}),
    );
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["permissionship"], "PERMISSIONSHIP_NO_PERMISSION");
    assert!(answer["checkedAt"]["token"].is_string());
    // Unknown fields are still refused, by name.
    let (status, answer) = server.post(
        "/v1/permissions/check",
        &json!({"resource_object": {"object_type": "doc"}, "permission": "view"}),
    );
    assert_eq!(status, 400);
    assert!(
        answer["message"]
            .as_str()
            .unwrap()
            .contains("resource_object"),
        "{answer}"
    );
    // An import body in proto form.
    let body = json!({"relationships": [{"resource": {"object_type": "doc", "object_id": "7"},
        "relation": "viewer", "subject": {"object": {"object_type": "user", "object_id": "ann"}}}]});
    let (status, text) = server.post_raw(
        "/v1/relationships/importbulk",
        &body.to_string(),
        Some(&server.key),
    );
    assert_eq!(status, 200, "{text}");
}

fn import(server: &TestServer, lines: &[&str], mode: Option<&str>) -> (u16, Value) {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into();
    let body: Vec<Value> = lines.iter().map(|l| relationship(l)).collect();
    let mut request = agent
        .post(&server.url("/v1/relationships/importbulk"))
        .header("Authorization", &format!("Bearer {}", server.key));
    if let Some(mode) = mode {
        request = request.header("zanzi-import-mode", mode);
    }
    let mut response = request
        .send(json!({ "relationships": body }).to_string())
        .unwrap();
    let status = response.status().as_u16();
    let text = response.body_mut().read_to_string().unwrap();
    (status, serde_json::from_str(&text).unwrap())
}

#[test]
fn imports_touch_by_header_and_name_the_item_at_fault() {
    let server = started();
    let lines = [
        "doc:a#viewer@user:ann",
        "doc:b#viewer@user:ann",
        "doc:c#viewer@user:ann",
    ];
    let (status, answer) = import(&server, &lines, None);
    assert_eq!((status, &answer["numLoaded"]), (200, &json!("3")));
    let (status, answer) = import(&server, &["doc:z#viewer@user:ann", lines[1]], None);
    assert_eq!(status, 409, "{answer}");
    assert_eq!(reason(&answer).1["import_item"], "1");
    assert!(
        answer["message"]
            .as_str()
            .unwrap()
            .contains("nothing was imported"),
        "{answer}"
    );
    let export = server.stream("/v1/relationships/exportbulk", &json!({}));
    assert_eq!(export[0]["relationships"].as_array().unwrap().len(), 3);
    let (status, answer) = import(&server, &["doc:z#viewer@user:ann", lines[1]], Some("touch"));
    assert_eq!(
        (status, &answer["numLoaded"]),
        (200, &json!("2")),
        "{answer}"
    );
    let (status, answer) = import(&server, &lines, Some("upsert"));
    assert_eq!(status, 400);
    assert!(
        answer["message"].as_str().unwrap().contains("upsert"),
        "{answer}"
    );
}

#[test]
fn relationship_counters_register_count_and_unregister() {
    let server = started();
    server.ok(
        "/v1/relationships/write",
        &touch(&[
            "doc:1#viewer@user:ann",
            "doc:2#viewer@user:ann",
            "doc:2#banned@user:tom",
        ]),
    );
    let filter = json!({"resourceType": "doc", "optionalRelation": "viewer"});
    server.ok(
        "/v1/experimental/registerrelationshipcounter",
        &json!({"name": "doc_viewers", "relationshipFilter": filter}),
    );
    let (status, answer) = server.post(
        "/v1/experimental/registerrelationshipcounter",
        &json!({"name": "doc_viewers", "relationshipFilter": filter}),
    );
    assert_eq!(status, 409);
    assert_eq!(reason(&answer).0, "ERROR_REASON_COUNTER_ALREADY_REGISTERED");
    let counted = server.ok(
        "/v1/experimental/countrelationships",
        &json!({"name": "doc_viewers"}),
    );
    assert_eq!(
        counted["readCounterValue"]["relationshipCount"], "2",
        "{counted}"
    );
    assert!(counted["readCounterValue"]["readAt"]["token"].is_string());
    server.ok(
        "/v1/relationships/write",
        &touch(&["doc:3#viewer@user:bob"]),
    );
    let counted = server.ok(
        "/v1/experimental/countrelationships",
        &json!({"name": "doc_viewers"}),
    );
    assert_eq!(counted["readCounterValue"]["relationshipCount"], "3");
    server.ok(
        "/v1/experimental/unregisterrelationshipcounter",
        &json!({"name": "doc_viewers"}),
    );
    let (status, answer) = server.post(
        "/v1/experimental/countrelationships",
        &json!({"name": "doc_viewers"}),
    );
    assert_eq!(status, 404);
    assert_eq!(reason(&answer).0, "ERROR_REASON_COUNTER_NOT_REGISTERED");
}

#[test]
fn watch_sends_an_import_in_parts() {
    let server = started();
    let before = server.ok("/v1/schema/read", &json!({}))["readAt"]["token"].clone();
    let lines: Vec<String> = (0..10_000)
        .map(|i| format!("doc:w{i}#viewer@user:u{}", i % 10))
        .collect();
    let refs: Vec<&str> = lines.iter().map(String::as_str).collect();
    let (status, answer) = import(&server, &refs, None);
    assert_eq!(status, 200, "{answer}");
    let after = server.ok("/v1/schema/read", &json!({}))["readAt"]["token"].clone();
    let mut messages = server.open_stream(
        "/v1/watch",
        &json!({"optionalStartCursor": {"token": before}}),
    );
    let mut updates = 0;
    let mut throughs = Vec::new();
    while updates < 10_000 {
        let message = messages.next().expect("the watch stream ended");
        if message["isCheckpoint"] == json!(true) {
            continue;
        }
        updates += message["updates"].as_array().unwrap().len();
        throughs.push(message["changesThrough"]["token"].clone());
    }
    assert_eq!(updates, 10_000);
    assert!(throughs.len() > 1, "one message for the whole import");
    let (last, partial) = throughs.split_last().unwrap();
    assert_eq!(last, &after);
    assert!(partial.iter().all(|t| *t == before), "{throughs:?}");
}
