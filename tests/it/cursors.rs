//! Cursors of read-relationships, export, lookup-resources and lookup-subjects are bound to
//! their store, their request and their revision (HTTP and gRPC): a cursor resumes only the
//! request that returned it; anything else is refused with a clear INVALID_ARGUMENT, and a
//! cursor whose revision is no longer retained says so.

use serde_json::{json, Value};
use tonic::Code;
use zanzi::proto::v1;

use crate::grpc::{subject, Clients};
use crate::server_support::{touch, TestServer};

const SCHEMA: &str = "definition user {}
definition doc {
    relation viewer: user
    relation editor: user
    permission view = viewer + editor
}";

fn world(server: &TestServer) {
    server.ok("/v1/schema/write", &json!({"schema": SCHEMA}));
    let rels: Vec<String> = (0..6)
        .flat_map(|n| {
            [
                format!("doc:{n}#viewer@user:tom"),
                format!("doc:{n}#editor@user:ann"),
            ]
        })
        .collect();
    let refs: Vec<&str> = rels.iter().map(String::as_str).collect();
    server.ok("/v1/relationships/write", &touch(&refs));
}

fn lookup(who: &str, limit: u32, cursor: Option<&str>) -> Value {
    let mut body = json!({
        "resourceObjectType": "doc",
        "permission": "view",
        "subject": {"object": {"objectType": "user", "objectId": who}},
        "optionalLimit": limit,
    });
    if let Some(cursor) = cursor {
        body["optionalCursor"] = json!({"token": cursor});
    }
    body
}

/// The cursor of the last line of a streamed answer.
fn last_cursor(server: &TestServer, path: &str, body: &Value) -> String {
    let (status, text) = server.post_raw(path, &body.to_string(), Some(&server.key));
    assert_eq!(status, 200, "{text}");
    let last: Value = serde_json::from_str(text.lines().last().unwrap()).unwrap();
    last["result"]["afterResultCursor"]["token"]
        .as_str()
        .unwrap()
        .to_string()
}

fn refused(server: &TestServer, path: &str, body: &Value) -> (u16, String) {
    let (status, text) = server.post_raw(path, &body.to_string(), Some(&server.key));
    let answer: Value = serde_json::from_str(text.lines().next().unwrap()).unwrap();
    let answer = if answer.get("error").is_some() {
        answer["error"].clone()
    } else {
        answer
    };
    (
        if status == 200 { 0 } else { status },
        answer["message"].as_str().unwrap_or_default().to_string(),
    )
}

#[test]
fn a_cursor_resumes_its_own_request_and_is_refused_by_any_other() {
    let server = TestServer::start();
    world(&server);
    let cursor = last_cursor(
        &server,
        "/v1/permissions/resources",
        &lookup("tom", 2, None),
    );
    let rest = server.stream(
        "/v1/permissions/resources",
        &lookup("tom", 10, Some(&cursor)),
    );
    let ids: Vec<&str> = rest
        .iter()
        .map(|r| r["resourceObjectId"].as_str().unwrap())
        .collect();
    assert_eq!(
        ids,
        ["2", "3", "4", "5"],
        "the limit is not part of the request"
    );

    // Another subject, another endpoint, another store: refused, naming why.
    let (status, message) = refused(
        &server,
        "/v1/permissions/resources",
        &lookup("ann", 2, Some(&cursor)),
    );
    assert_eq!(status, 400);
    assert!(
        message.contains("cursor was issued for a different request"),
        "{message}"
    );
    let read =
        json!({"relationshipFilter": {"resourceType": "doc"}, "optionalCursor": {"token": cursor}});
    let (status, message) = refused(&server, "/v1/relationships/read", &read);
    assert_eq!(status, 400);
    assert!(message.contains("different request"), "{message}");
    let other = TestServer::start();
    world(&other);
    let (status, message) = refused(
        &other,
        "/v1/permissions/resources",
        &lookup("tom", 2, Some(&cursor)),
    );
    assert_eq!(status, 400);
    assert!(message.contains("another store"), "{message}");

    // Lookup subjects and read relationships bind theirs the same way.
    let subjects = |relation: &str, cursor: Option<&str>| {
        let mut body = json!({
            "resource": {"objectType": "doc", "objectId": "1"},
            "permission": relation,
            "subjectObjectType": "user",
            "optionalConcreteLimit": 1,
        });
        if let Some(cursor) = cursor {
            body["optionalCursor"] = json!({"token": cursor});
        }
        body
    };
    let cursor = last_cursor(&server, "/v1/permissions/subjects", &subjects("view", None));
    let next = server.stream("/v1/permissions/subjects", &subjects("view", Some(&cursor)));
    assert_eq!(next.len(), 1);
    let (status, message) = refused(
        &server,
        "/v1/permissions/subjects",
        &subjects("viewer", Some(&cursor)),
    );
    assert_eq!(status, 400, "{message}");
    assert!(message.contains("different request"), "{message}");

    let read = |relation: &str, cursor: Option<&str>| {
        let mut body = json!({"relationshipFilter": {"resourceType": "doc", "optionalRelation": relation}, "optionalLimit": 2});
        if let Some(cursor) = cursor {
            body["optionalCursor"] = json!({"token": cursor});
        }
        body
    };
    let cursor = last_cursor(&server, "/v1/relationships/read", &read("viewer", None));
    assert_eq!(
        server
            .stream("/v1/relationships/read", &read("viewer", Some(&cursor)))
            .len(),
        2
    );
    let (status, message) = refused(
        &server,
        "/v1/relationships/read",
        &read("editor", Some(&cursor)),
    );
    assert_eq!(status, 400, "{message}");
    assert!(message.contains("different request"), "{message}");

    // A cursor of the earlier format is refused with what to do.
    use base64::Engine as _;
    let old = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode("3\ndoc:1#viewer@user:tom");
    let (status, message) = refused(
        &server,
        "/v1/relationships/read",
        &read("viewer", Some(&old)),
    );
    assert_eq!(status, 400);
    assert!(message.contains("earlier version"), "{message}");
}

#[test]
fn a_cursor_whose_revision_is_no_longer_retained_says_so() {
    let server = TestServer::start_with(|config| config.snapshot_window = 2);
    world(&server);
    let cursor = last_cursor(
        &server,
        "/v1/permissions/resources",
        &lookup("tom", 2, None),
    );
    for n in 0..5 {
        server.ok(
            "/v1/relationships/write",
            &touch(&[&format!("doc:x{n}#viewer@user:bob")]),
        );
    }
    let (status, message) = refused(
        &server,
        "/v1/permissions/resources",
        &lookup("tom", 2, Some(&cursor)),
    );
    assert_eq!(status, 400, "{message}");
    assert!(message.contains("cursor's revision"), "{message}");
    assert!(
        message.contains("start the read again without a cursor"),
        "{message}"
    );
}

#[test]
fn grpc_cursors_are_bound_to_their_request() {
    let server = TestServer::start();
    world(&server);
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let mut clients = Clients::connect(&server, &server.key).await;
        let request = |who: &str, cursor: Option<v1::Cursor>| v1::LookupResourcesRequest {
            resource_object_type: "doc".into(),
            permission: "view".into(),
            subject: subject(&format!("user:{who}")),
            optional_limit: 2,
            optional_cursor: cursor,
            ..Default::default()
        };
        let mut stream = clients
            .permissions
            .lookup_resources(request("tom", None))
            .await
            .unwrap()
            .into_inner();
        let mut cursor = None;
        while let Some(answer) = stream.message().await.unwrap() {
            cursor = answer.after_result_cursor;
        }
        let mut next = clients
            .permissions
            .lookup_resources(request("tom", cursor.clone()))
            .await
            .unwrap()
            .into_inner();
        let first = next.message().await.unwrap().unwrap();
        assert_eq!(first.resource_object_id, "2");
        let status = match clients
            .permissions
            .lookup_resources(request("ann", cursor))
            .await
        {
            Err(status) => status,
            Ok(stream) => stream.into_inner().message().await.unwrap_err(),
        };
        assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
        assert!(status.message().contains("different request"), "{status:?}");
    });
}
