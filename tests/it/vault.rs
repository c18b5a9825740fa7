//! The Bitwarden-style facade (`/api`, `/public`, `/scim/v2`) against a real server on a
//! loopback port: the schema's access algebra (a validation file, then the same rules through
//! the endpoints), all-or-nothing bulk delete, a SCIM client's sequence, and the 401, 403,
//! 404 and 400 answers of each endpoint family. Effective access is asked through
//! `/v1/permissions/check` and tuples through `/v1/relationships/read`.

use std::time::Duration;

use serde_json::{json, Value};
use zanzi::facade::auth::{issue_token, SigningKey};
use zanzi::facade::FacadeConfig;
use zanzi::validate::{self, ValidateOptions};

use crate::server_support::{check_body, TestServer};
use crate::support::configs;

const SECRET: &str = "vault-test-secret-of-at-least-32-bytes";

/// One answer.
struct Reply {
    status: u16,
    body: Value,
    content_type: String,
    location: Option<String>,
    token: Option<String>,
}

struct Vault {
    server: TestServer,
}

fn bearer_for(user: &str) -> String {
    let token = issue_token(
        &SigningKey::Secret(SECRET.to_string()),
        user,
        Duration::from_secs(600),
        None,
        None,
    )
    .unwrap();
    format!("Bearer {token}")
}

impl Vault {
    fn start() -> Self {
        let server = TestServer::start_with(|config| {
            config.facade = Some(FacadeConfig {
                superusers: Vec::new(),
                ..FacadeConfig::with_secret(SECRET)
            });
        });
        Self { server }
    }

    /// `method path` with a raw `Authorization` value (none when `None`) and a JSON body.
    fn call(&self, auth: Option<&str>, method: &str, path: &str, body: Option<Value>) -> Reply {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .build()
            .into();
        let url = self.server.url(path);
        let text = body.map(|b| b.to_string()).unwrap_or_default();
        let result = match method {
            "GET" => {
                let mut request = agent.get(&url);
                if let Some(auth) = auth {
                    request = request.header("Authorization", auth);
                }
                request.call()
            }
            _ => {
                let mut request = match method {
                    "POST" => agent.post(&url),
                    "PUT" => agent.put(&url),
                    "PATCH" => agent.patch(&url),
                    "DELETE" => agent.delete(&url).force_send_body(),
                    other => panic!("method {other}"),
                };
                request = request.header("Content-Type", "application/json");
                if let Some(auth) = auth {
                    request = request.header("Authorization", auth);
                }
                request.send(text.as_str())
            }
        };
        let mut response = result.unwrap();
        let header = |name: &str| {
            response
                .headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string)
        };
        let content_type = header("content-type").unwrap_or_default();
        let location = header("location");
        let token = header("x-zedtoken");
        let status = response.status().as_u16();
        let raw = response.body_mut().read_to_string().unwrap();
        let body = if raw.trim().is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&raw)
                .unwrap_or_else(|e| panic!("{method} {path}: not JSON ({e}): {raw}"))
        };
        Reply {
            status,
            body,
            content_type,
            location,
            token,
        }
    }

    /// As `user`, expecting `status`.
    fn user(&self, user: &str, method: &str, path: &str, body: Value, status: u16) -> Reply {
        let reply = self.call(Some(&bearer_for(user)), method, path, Some(body));
        assert_eq!(reply.status, status, "{method} {path}: {}", reply.body);
        reply
    }

    /// As a key, expecting `status`.
    fn key(&self, key: &str, method: &str, path: &str, body: Value, status: u16) -> Reply {
        let reply = self.call(Some(&format!("Bearer {key}")), method, path, Some(body));
        assert_eq!(reply.status, status, "{method} {path}: {}", reply.body);
        reply
    }

    /// An organization owned by `owner` with `members` (viewers); returns its id.
    fn org(&self, owner: &str, name: &str, members: &[&str]) -> String {
        for user in members {
            self.user(user, "GET", "/v1beta1/users/self", Value::Null, 200);
        }
        let body = self
            .user(
                owner,
                "POST",
                "/v1beta1/organizations",
                json!({ "name": name }),
                200,
            )
            .body;
        let id = body["organization"]["id"].as_str().unwrap().to_string();
        if !members.is_empty() {
            self.user(
                owner,
                "POST",
                &format!("/v1beta1/organizations/{id}/users"),
                json!({ "userIds": members }),
                200,
            );
        }
        id
    }

    fn collection(&self, owner: &str, org: &str, name: &str) -> String {
        let body = self
            .user(
                owner,
                "POST",
                &format!("/api/organizations/{org}/collections"),
                json!({ "name": name }),
                200,
            )
            .body;
        assert_eq!(body["object"], "collection");
        body["id"].as_str().unwrap().to_string()
    }

    fn group(&self, owner: &str, org: &str, body: Value) -> String {
        let reply = self.user(
            owner,
            "POST",
            &format!("/api/organizations/{org}/groups"),
            body,
            200,
        );
        assert_eq!(reply.body["organizationId"], org);
        reply.body["id"].as_str().unwrap().to_string()
    }

    /// `user`'s `permission` on `resource`, fully consistent.
    fn can(&self, user: &str, permission: &str, resource: &str) -> bool {
        let body = check_body(
            resource,
            permission,
            &format!("app/user:{user}"),
            json!({"fullyConsistent": true}),
        );
        let answer = self.server.ok("/v1/permissions/check", &body);
        answer["permissionship"] == "PERMISSIONSHIP_HAS_PERMISSION"
    }

    /// `(resource id, relation, subject)` of the relationships matching `filter`.
    fn tuples(&self, filter: Value) -> Vec<(String, String, String)> {
        let mut out: Vec<(String, String, String)> = self
            .server
            .stream(
                "/v1/relationships/read",
                &json!({ "relationshipFilter": filter }),
            )
            .iter()
            .map(|r| {
                let rel = &r["relationship"];
                let subject = &rel["subject"];
                let mut who = format!(
                    "{}:{}",
                    subject["object"]["objectType"].as_str().unwrap(),
                    subject["object"]["objectId"].as_str().unwrap()
                );
                if let Some(relation) = subject["optionalRelation"].as_str() {
                    if !relation.is_empty() {
                        who = format!("{who}#{relation}");
                    }
                }
                (
                    rel["resource"]["objectId"].as_str().unwrap().to_string(),
                    rel["relation"].as_str().unwrap().to_string(),
                    who,
                )
            })
            .collect();
        out.sort();
        out
    }

    /// Every tuple on any collection whose subject is group `group`'s members.
    fn grants_of(&self, group: &str) -> Vec<(String, String, String)> {
        self.tuples(json!({
            "resourceType": "app/collection",
            "optionalSubjectFilter": {"subjectType": "app/group", "optionalSubjectId": group}
        }))
    }

    fn members_of(&self, group: &str) -> Vec<String> {
        self.tuples(json!({
            "resourceType": "app/group", "optionalResourceId": group, "optionalRelation": "member"
        }))
        .into_iter()
        .map(|(_, _, who)| who.trim_start_matches("app/user:").to_string())
        .collect()
    }

    fn new_key(&self, owner: &str, org: &str, kind: &str) -> String {
        let body = self
            .user(
                owner,
                "POST",
                &format!("/api/organizations/{org}/{kind}"),
                Value::Null,
                200,
            )
            .body;
        body["apiKey"].as_str().unwrap().to_string()
    }
}

#[test]
fn vault_schema_validation_file_passes_in_every_engine_configuration() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("builtin.zed"),
        zanzi::facade::BUILTIN_SCHEMA,
    )
    .unwrap();
    let file = dir.path().join("vault.validation.yaml");
    let source = concat!(env!("CARGO_MANIFEST_DIR"), "/schema/vault.validation.yaml");
    std::fs::copy(source, &file).unwrap();
    for (name, engine) in configs() {
        let options = ValidateOptions {
            engine,
            ..ValidateOptions::default()
        };
        let report = validate::validate_files(&[file.as_path()], &options).unwrap();
        assert!(report.passed(), "{name}: {}", report.failures.join("\n"));
    }
}

#[test]
fn highest_access_wins_a_direct_assignment_overrides_and_access_all_reaches_new_collections() {
    let v = Vault::start();
    let org = v.org("olga", "acme", &["alice", "bob"]);
    let c1 = v.collection("olga", &org, "Shared");
    let col = format!("app/collection:{c1}");
    let view_nopw = v.group(
        "olga",
        &org,
        json!({"name": "Viewers", "users": ["alice"],
               "collections": [{"id": c1, "readOnly": true, "hidePasswords": true}]}),
    );
    let edit = v.group(
        "olga",
        &org,
        json!({"name": "Editors", "users": ["alice"],
               "collections": [{"id": c1, "readOnly": false, "hidePasswords": false}]}),
    );
    // Two groups: "can view, except passwords" and "can edit": the highest wins.
    assert!(v.can("alice", "read", &col));
    assert!(v.can("alice", "edit", &col));
    assert!(v.can("alice", "view_password", &col));
    assert!(!v.can("alice", "manage", &col));
    let details = v
        .user(
            "olga",
            "GET",
            &format!("/api/organizations/{org}/groups/{view_nopw}/details"),
            Value::Null,
            200,
        )
        .body;
    assert_eq!(details["object"], "groupDetails");
    assert_eq!(
        details["collections"],
        json!([{"id": c1, "readOnly": true, "hidePasswords": true, "manage": false}])
    );

    // Removing alice from "Editors" takes away exactly what it gave.
    v.user(
        "olga",
        "DELETE",
        &format!("/api/organizations/{org}/groups/{edit}/user/alice"),
        Value::Null,
        200,
    );
    assert!(v.can("alice", "read", &col));
    assert!(!v.can("alice", "edit", &col));
    assert!(!v.can("alice", "view_password", &col));
    let users = v
        .user(
            "olga",
            "GET",
            &format!("/api/organizations/{org}/groups/{view_nopw}/users"),
            Value::Null,
            200,
        )
        .body;
    assert_eq!(users, json!(["alice"]));

    // Back in "Editors" (a full update), then a direct "can view" on the collection wins over
    // both groups: no edit, but passwords shown (the direct entry does not hide them).
    v.user(
        "olga",
        "PUT",
        &format!("/api/organizations/{org}/groups/{edit}"),
        json!({"name": "Editors", "users": ["alice"], "collections": [{"id": c1}]}),
        200,
    );
    assert!(v.can("alice", "edit", &col));
    v.user(
        "olga",
        "PUT",
        &format!("/api/organizations/{org}/collections/{c1}"),
        json!({"name": "Shared",
               "groups": [{"id": view_nopw, "readOnly": true, "hidePasswords": true}, {"id": edit}],
               "users": [{"id": "alice", "readOnly": true}]}),
        200,
    );
    assert!(v.can("alice", "read", &col));
    assert!(!v.can("alice", "edit", &col));
    assert!(v.can("alice", "view_password", &col));

    // accessAll reaches a collection created afterwards.
    v.group(
        "olga",
        &org,
        json!({"name": "Everything", "accessAll": true, "users": ["bob"]}),
    );
    let later = v.collection("olga", &org, "Later");
    assert!(v.can("bob", "read", &format!("app/collection:{later}")));
    assert!(v.can("bob", "edit", &format!("app/collection:{later}")));
    assert!(!v.can("bob", "manage", &format!("app/collection:{later}")));
    assert!(!v.can("alice", "read", &format!("app/collection:{later}")));

    // manage with readOnly is a 400 naming the field.
    let bad = v.user(
        "olga",
        "POST",
        &format!("/api/organizations/{org}/groups"),
        json!({"name": "Bad", "collections": [{"id": c1, "readOnly": true, "manage": true}]}),
        400,
    );
    assert_eq!(bad.body["object"], "error");
    assert!(
        bad.body["validationErrors"]["Collections"].is_array(),
        "{}",
        bad.body
    );
}

#[test]
fn bulk_delete_with_a_foreign_id_deletes_nothing_and_otherwise_everything_at_once() {
    let v = Vault::start();
    let org = v.org("olga", "acme", &["alice", "bob"]);
    let other = v.org("oscar", "globex", &[]);
    let c1 = v.collection("olga", &org, "Shared");
    let g1 = v.group(
        "olga",
        &org,
        json!({"name": "One", "users": ["alice"], "collections": [{"id": c1}]}),
    );
    let g2 = v.group(
        "olga",
        &org,
        json!({"name": "Two", "users": ["bob"], "accessAll": true,
        "collections": [{"id": c1, "readOnly": true}]}),
    );
    let foreign = v.group("oscar", &other, json!({"name": "Theirs"}));
    let path = format!("/api/organizations/{org}/groups");

    let before = (
        v.grants_of(&g1),
        v.grants_of(&g2),
        v.members_of(&g1),
        v.members_of(&g2),
    );
    assert_eq!(before.0.len(), 3);
    let refused = v.user("olga", "DELETE", &path, json!({"ids": [g1, foreign]}), 404);
    assert_eq!(refused.body["object"], "error");
    assert_eq!(
        (
            v.grants_of(&g1),
            v.grants_of(&g2),
            v.members_of(&g1),
            v.members_of(&g2)
        ),
        before
    );
    assert_eq!(
        v.user("olga", "GET", &path, Value::Null, 200).body["data"]
            .as_array()
            .unwrap()
            .len(),
        2
    );

    v.user("olga", "DELETE", &path, json!({"ids": [g1, g2]}), 200);
    for group in [&g1, &g2] {
        assert!(v.grants_of(group).is_empty());
        assert!(v
            .tuples(json!({"resourceType": "app/group", "optionalResourceId": group}))
            .is_empty());
    }
    assert!(v
        .tuples(json!({"resourceType": "app/vault", "optionalRelation": "access_all"}))
        .is_empty());
    assert!(!v.can("alice", "read", &format!("app/collection:{c1}")));
    let list = v.user("olga", "GET", &path, Value::Null, 200).body;
    assert_eq!(
        list,
        json!({"object": "list", "data": [], "continuationToken": null})
    );
    // The other organization's group is untouched.
    v.user(
        "oscar",
        "GET",
        &format!("/api/organizations/{other}/groups/{foreign}"),
        Value::Null,
        200,
    );
}

#[test]
fn a_scim_clients_sequence_leaves_exactly_the_expected_memberships() {
    let v = Vault::start();
    let org = v.org("olga", "acme", &["u1", "u2", "u3", "u4"]);
    let key = v.new_key("olga", &org, "scim-key");
    let groups = format!("/scim/v2/{org}/Groups");

    let created = v.key(
        &key,
        "POST",
        &groups,
        json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
               "displayName": "Sales", "externalId": "sales-1",
               "members": [{"value": "u1"}, {"value": "u2"}]}),
        201,
    );
    assert!(created.content_type.starts_with("application/scim+json"));
    let id = created.body["id"].as_str().unwrap().to_string();
    assert_eq!(
        created.location.as_deref(),
        Some(format!("{groups}/{id}").as_str())
    );
    assert!(created.token.is_some());
    assert_eq!(v.members_of(&id), ["u1", "u2"]);

    // The same externalId (any case) is a 409 in SCIM's error schema.
    let duplicate = v.key(
        &key,
        "POST",
        &groups,
        json!({"displayName": "Other", "externalId": "SALES-1"}),
        409,
    );
    assert_eq!(
        duplicate.body["schemas"],
        json!(["urn:ietf:params:scim:api:messages:2.0:Error"])
    );
    assert_eq!(duplicate.body["status"], "409");

    let patch = |ops: Value| {
        v.key(
            &key,
            "PATCH",
            &format!("{groups}/{id}"),
            json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], "Operations": ops}),
            204,
        )
    };
    patch(json!([{"op": "Add", "path": "members", "value": [{"value": "u3"}, {"value": "u2"}]}]));
    assert_eq!(v.members_of(&id), ["u1", "u2", "u3"]);
    patch(json!([{"op": "Remove", "path": "members[value eq \"u1\"]"}]));
    assert_eq!(v.members_of(&id), ["u2", "u3"]);
    // Azure AD's path-less value object.
    patch(json!([{"op": "Replace", "value": {"id": id, "displayName": "Sales EU"}}]));

    let found = v.key(
        &key,
        "GET",
        &format!("{groups}?filter=displayName%20eq%20%22Sales%20EU%22"),
        Value::Null,
        200,
    );
    assert_eq!(found.body["totalResults"], 1);
    assert_eq!(found.body["Resources"][0]["id"], id);
    let by_external = v.key(
        &key,
        "GET",
        &format!("{groups}?filter=externalId%20eq%20%22sales-1%22"),
        Value::Null,
        200,
    );
    assert_eq!(by_external.body["totalResults"], 1);

    let replaced = v.key(
        &key,
        "PUT",
        &format!("{groups}/{id}"),
        json!({"displayName": "Sales EU", "members": [{"value": "u2"}, {"value": "u4"}]}),
        200,
    );
    assert_eq!(replaced.body["displayName"], "Sales EU");
    assert_eq!(replaced.body["externalId"], "sales-1");
    assert_eq!(v.members_of(&id), ["u2", "u4"]);
    assert!(v.can("u4", "active_member", &format!("app/group:{id}")));
    assert!(!v.can("u3", "active_member", &format!("app/group:{id}")));

    v.key(&key, "DELETE", &format!("{groups}/{id}"), Value::Null, 204);
    assert!(v.members_of(&id).is_empty());
    assert!(v
        .tuples(json!({"resourceType": "app/group", "optionalResourceId": id}))
        .is_empty());
    v.key(&key, "GET", &format!("{groups}/{id}"), Value::Null, 404);

    // Users: the organization's members, and provisioning a new one.
    let users = v.key(
        &key,
        "GET",
        &format!("/scim/v2/{org}/Users?filter=userName%20eq%20%22u2%22"),
        Value::Null,
        200,
    );
    assert_eq!(users.body["totalResults"], 1);
    v.key(
        &key,
        "POST",
        &format!("/scim/v2/{org}/Users"),
        json!({"userName": "u5"}),
        201,
    );
    v.key(
        &key,
        "POST",
        &format!("/scim/v2/{org}/Users"),
        json!({"userName": "u5"}),
        409,
    );
    v.key(
        &key,
        "POST",
        &groups,
        json!({"displayName": "New", "members": [{"value": "u5"}]}),
        201,
    );
}

#[test]
fn each_endpoint_family_answers_401_403_404_and_400() {
    let v = Vault::start();
    let org = v.org("olga", "acme", &["victor"]);
    let other = v.org("oscar", "globex", &[]);
    let c1 = v.collection("olga", &org, "Shared");
    let theirs = v.group("oscar", &other, json!({"name": "Theirs"}));
    let api = format!("/api/organizations/{org}/groups");

    // /api: the caller's JWT and an org role that manages groups.
    assert_eq!(v.call(None, "GET", &api, None).status, 401);
    assert_eq!(
        v.call(Some("Bearer nonsense"), "GET", &api, None).status,
        401
    );
    let denied = v.user("victor", "POST", &api, json!({"name": "Mine"}), 403);
    assert_eq!(denied.body["object"], "error");
    v.user("victor", "GET", &api, Value::Null, 403);
    v.user(
        "victor",
        "POST",
        &format!("/api/organizations/{org}/api-key"),
        Value::Null,
        403,
    );
    v.user("olga", "GET", &format!("{api}/{theirs}"), Value::Null, 404);
    v.user(
        "olga",
        "PUT",
        &format!("{api}/{theirs}"),
        json!({"name": "x"}),
        404,
    );
    v.user(
        "olga",
        "DELETE",
        &format!("{api}/{theirs}"),
        Value::Null,
        404,
    );
    v.user(
        "olga",
        "POST",
        &api,
        json!({"name": "x", "collections": [{"id": "missing"}]}),
        404,
    );
    let empty = v.user("olga", "POST", &api, json!({"name": " "}), 400);
    assert!(empty.body["validationErrors"]["Name"].is_array());
    v.user("olga", "POST", &api, json!({"name": "n".repeat(101)}), 400);
    v.user(
        "olga",
        "POST",
        &api,
        json!({"name": "x", "externalId": "e".repeat(301)}),
        400,
    );
    v.user(
        "olga",
        "POST",
        &api,
        json!({"name": "x", "users": ["stranger"]}),
        400,
    );
    v.user(
        "olga",
        "POST",
        &api,
        json!({"name": "x", "collections": [{"id": c1, "hidePasswords": true, "manage": true}]}),
        400,
    );
    v.user("olga", "DELETE", &api, json!({"ids": []}), 400);
    assert!(v.user("olga", "GET", &api, Value::Null, 200).body["data"]
        .as_array()
        .unwrap()
        .is_empty());

    // /public: the organization API key, rotated by the owner.
    let key = v.new_key("olga", &org, "api-key");
    assert_eq!(v.call(None, "GET", "/public/groups", None).status, 401);
    let wrong = format!("{org}.{}", "0".repeat(64));
    v.key(&wrong, "GET", "/public/groups", Value::Null, 401);
    let created = v.key(
        &key,
        "POST",
        "/public/groups",
        json!({"name": "Public", "externalId": "p-1",
        "collections": [{"id": c1, "readOnly": true}]}),
        200,
    );
    let id = created.body["id"].as_str().unwrap().to_string();
    v.key(
        &key,
        "PUT",
        &format!("/public/groups/{id}/member-ids"),
        json!({"memberIds": ["victor", "stranger"]}),
        200,
    );
    let members = v.key(
        &key,
        "GET",
        &format!("/public/groups/{id}/member-ids"),
        Value::Null,
        200,
    );
    assert_eq!(members.body, json!(["victor"]));
    assert!(v.can("victor", "read", &format!("app/collection:{c1}")));
    assert!(!v.can("victor", "edit", &format!("app/collection:{c1}")));
    let got = v.key(
        &key,
        "GET",
        &format!("/public/groups/{id}"),
        Value::Null,
        200,
    );
    assert_eq!(got.body["collections"][0]["readOnly"], true);
    v.key(
        &key,
        "GET",
        &format!("/public/groups/{theirs}"),
        Value::Null,
        404,
    );
    v.key(
        &key,
        "DELETE",
        &format!("/public/groups/{theirs}"),
        Value::Null,
        404,
    );
    v.key(&key, "POST", "/public/groups", json!({"name": ""}), 400);
    v.key(
        &key,
        "PUT",
        &format!("/public/groups/{id}"),
        json!({"name": "x", "collections": [{"id": c1, "readOnly": true, "manage": true}]}),
        400,
    );
    // The org API key is not a SCIM key, and rotation retires the old key.
    v.key(
        &key,
        "GET",
        &format!("/scim/v2/{org}/Groups"),
        Value::Null,
        401,
    );
    let rotated = v.new_key("olga", &org, "api-key");
    v.key(&key, "GET", "/public/groups", Value::Null, 401);
    v.key(
        &rotated,
        "DELETE",
        &format!("/public/groups/{id}"),
        Value::Null,
        200,
    );
    assert!(!v.can("victor", "read", &format!("app/collection:{c1}")));

    // /scim/v2: the SCIM key of the path's organization.
    let scim = v.new_key("olga", &org, "scim-key");
    let groups = format!("/scim/v2/{org}/Groups");
    let missing = v.call(None, "GET", &groups, None);
    assert_eq!(missing.status, 401);
    assert_eq!(
        missing.body["schemas"],
        json!(["urn:ietf:params:scim:api:messages:2.0:Error"])
    );
    v.key(&format!("{org}.bad"), "GET", &groups, Value::Null, 401);
    v.key(
        &scim,
        "GET",
        &format!("/scim/v2/{other}/Groups"),
        Value::Null,
        404,
    );
    v.key(
        &scim,
        "GET",
        &format!("{groups}/{theirs}"),
        Value::Null,
        404,
    );
    v.key(
        &scim,
        "PATCH",
        &format!("{groups}/{theirs}"),
        json!({"Operations": []}),
        404,
    );
    let filter = v.key(
        &scim,
        "GET",
        &format!("{groups}?filter=displayName%20co%20%22x%22"),
        Value::Null,
        400,
    );
    assert_eq!(filter.body["scimType"], "invalidFilter");
    v.key(
        &scim,
        "POST",
        &groups,
        json!({"externalId": "no-name"}),
        400,
    );
    v.key(
        &scim,
        "POST",
        &groups,
        json!({"displayName": "x", "members": [{"value": "stranger"}]}),
        400,
    );
    // A viewer cannot create keys; an owner of another organization cannot either.
    v.user(
        "oscar",
        "POST",
        &format!("/api/organizations/{org}/scim-key"),
        Value::Null,
        403,
    );
}

#[test]
fn deleting_the_organization_removes_its_groups_collections_and_keys() {
    let v = Vault::start();
    let org = v.org("olga", "acme", &["alice"]);
    let c1 = v.collection("olga", &org, "Shared");
    let g1 = v.group(
        "olga",
        &org,
        json!({"name": "One", "users": ["alice"], "accessAll": true,
        "collections": [{"id": c1}]}),
    );
    let key = v.new_key("olga", &org, "api-key");
    v.key(&key, "GET", "/public/groups", Value::Null, 200);
    v.user(
        "olga",
        "DELETE",
        &format!("/v1beta1/organizations/{org}"),
        Value::Null,
        200,
    );
    v.key(&key, "GET", "/public/groups", Value::Null, 401);
    assert!(v
        .tuples(json!({"resourceType": "app/collection", "optionalResourceId": c1}))
        .is_empty());
    assert!(v
        .tuples(json!({"resourceType": "app/group", "optionalResourceId": g1}))
        .is_empty());
    assert!(v.tuples(json!({"resourceType": "app/vault"})).is_empty());
    assert!(v
        .tuples(json!({"resourceType": "app/serviceuser"}))
        .is_empty());
    assert!(v
        .tuples(
            json!({"resourceType": "app/rolebinding", "optionalRelation": "bearer",
        "optionalSubjectFilter": {"subjectType": "app/serviceuser"}})
        )
        .is_empty());
}

#[test]
fn an_identity_providers_scim_sequence_provisions_suspends_restores_and_deprovisions() {
    let v = Vault::start();
    // Dana belongs to two organizations; only acme's directory manages her there.
    let acme = v.org("olga", "acme", &[]);
    let globex = v.org("oscar", "globex", &["dana"]);
    let theirs = v.collection("oscar", &globex, "Globex vault");
    v.group(
        "oscar",
        &globex,
        json!({"name": "All", "users": ["dana"], "collections": [{"id": theirs}]}),
    );
    let globex_collection = format!("app/collection:{theirs}");
    assert!(v.can("dana", "read", &globex_collection));
    let own_record = v
        .user("dana", "GET", "/v1beta1/users/self", Value::Null, 200)
        .body;

    let key = v.new_key("olga", &acme, "scim-key");
    let users = format!("/scim/v2/{acme}/Users");
    let created = v.key(
        &key,
        "POST",
        &users,
        json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
               "userName": "dana", "externalId": "ext-dana", "displayName": "Dana A.",
               "name": {"givenName": "Dana"}, "emails": [{"value": "dana@acme.example", "primary": true}],
               "active": true}),
        201,
    );
    assert_eq!(created.body["active"], true);
    assert_eq!(
        created.location.as_deref(),
        Some(format!("{users}/dana").as_str())
    );
    let dana = format!("{users}/dana");
    // Add her to a group that can read a collection.
    let shared = v.collection("olga", &acme, "Shared");
    let collection = format!("app/collection:{shared}");
    let group = v
        .key(
            &key,
            "POST",
            &format!("/scim/v2/{acme}/Groups"),
            json!({"displayName": "Sales", "members": [{"value": "dana"}]}),
            201,
        )
        .body["id"]
        .as_str()
        .unwrap()
        .to_string();
    v.user(
        "olga",
        "PUT",
        &format!("/api/organizations/{acme}/groups/{group}"),
        json!({"name": "Sales", "users": ["dana"], "collections": [{"id": shared}]}),
        200,
    );
    assert!(v.can("dana", "read", &collection));
    assert!(v.can("dana", "get", &format!("app/organization:{acme}")));

    let patch = |ops: Value| {
        v.key(
            &key,
            "PATCH",
            &dana,
            json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], "Operations": ops}),
            204,
        );
    };
    // Deactivated (the path form): no access in acme, memberships kept, globex untouched.
    patch(json!([{"op": "replace", "path": "active", "value": false}]));
    assert!(!v.can("dana", "read", &collection));
    assert!(!v.can("dana", "get", &format!("app/organization:{acme}")));
    assert!(!v.can("dana", "active_member", &format!("app/group:{group}")));
    assert_eq!(v.members_of(&group), ["dana"]);
    assert_eq!(
        v.key(&key, "GET", &dana, Value::Null, 200).body["active"],
        false
    );
    assert!(v.can("dana", "read", &globex_collection));
    // Reactivated (Azure AD's path-less form, with a string boolean): access is back.
    patch(json!([{"op": "Replace", "value": {"active": "True"}}]));
    assert!(v.can("dana", "read", &collection));
    assert_eq!(
        v.key(&key, "GET", &dana, Value::Null, 200).body["active"],
        true
    );
    // PUT carries `active` too.
    let put = json!({"userName": "dana", "externalId": "ext-dana", "active": false,
                     "emails": [{"value": "dana@acme.example"}]});
    assert_eq!(v.key(&key, "PUT", &dana, put, 200).body["active"], false);
    assert!(!v.can("dana", "read", &collection));
    let put = json!({"userName": "dana", "externalId": "ext-dana", "active": true});
    v.key(&key, "PUT", &dana, put, 200);
    assert!(v.can("dana", "read", &collection));
    v.key(&key, "PUT", &dana, json!({"userName": "other"}), 400);
    let filtered = v.key(
        &key,
        "GET",
        &format!("{users}?filter=externalId%20eq%20%22ext-dana%22"),
        Value::Null,
        200,
    );
    assert_eq!(filtered.body["totalResults"], 1);

    // Deprovisioned: gone from acme, every grant there ended, globex unchanged.
    v.key(&key, "DELETE", &dana, Value::Null, 204);
    assert!(!v.can("dana", "read", &collection));
    assert!(!v.can("dana", "get", &format!("app/organization:{acme}")));
    assert!(v.members_of(&group).is_empty());
    v.key(&key, "GET", &dana, Value::Null, 404);
    v.key(&key, "DELETE", &dana, Value::Null, 404);
    assert!(v.can("dana", "read", &globex_collection));
    assert!(v.can("dana", "get", &format!("app/organization:{globex}")));
    // What acme's directory said never reached dana's own record or globex.
    let record = v
        .user("dana", "GET", "/v1beta1/users/self", Value::Null, 200)
        .body;
    assert_eq!(record, own_record);
    let globex_key = v.new_key("oscar", &globex, "scim-key");
    let seen = v.key(
        &globex_key,
        "GET",
        &format!("/scim/v2/{globex}/Users/dana"),
        Value::Null,
        200,
    );
    assert_eq!(seen.body["externalId"], Value::Null);
    assert_eq!(seen.body["emails"], json!([]));
    // A SCIM key never reaches a user of another organization.
    v.key(
        &key,
        "GET",
        &format!("/scim/v2/{globex}/Users/dana"),
        Value::Null,
        404,
    );
}

#[test]
fn public_members_are_listed_updated_and_removed_with_everything_they_had() {
    let v = Vault::start();
    let org = v.org("olga", "acme", &["mia", "noah"]);
    let c1 = v.collection("olga", &org, "Shared");
    let g1 = v.group("olga", &org, json!({"name": "One", "users": ["mia"]}));
    let key = v.new_key("olga", &org, "api-key");
    let list = v.key(&key, "GET", "/public/members", Value::Null, 200).body;
    assert_eq!(list["object"], "list");
    let types: Vec<(String, i64)> = list["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["id"].as_str().unwrap().to_string(),
                m["type"].as_i64().unwrap(),
            )
        })
        .collect();
    assert!(types.contains(&("olga".to_string(), 0)), "{list}");
    assert!(types.contains(&("mia".to_string(), 2)), "{list}");
    // Mia becomes an admin with a direct "can edit" on the collection, and joins no group.
    let updated = v.key(
        &key,
        "PUT",
        "/public/members/mia",
        json!({"type": 1, "externalId": "m-1", "collections": [{"id": c1, "readOnly": false}], "groups": []}),
        200,
    );
    assert_eq!(updated.body["type"], 1);
    assert_eq!(updated.body["collections"][0]["id"], c1);
    assert!(v.can("mia", "edit", &format!("app/collection:{c1}")));
    assert!(v.can("mia", "groupcreate", &format!("app/organization:{org}")));
    assert_eq!(
        v.key(
            &key,
            "GET",
            "/public/members/mia/group-ids",
            Value::Null,
            200
        )
        .body,
        json!([])
    );
    v.key(
        &key,
        "PUT",
        "/public/members/mia/group-ids",
        json!({"groupIds": [g1]}),
        200,
    );
    assert_eq!(v.members_of(&g1), ["mia"]);
    v.key(&key, "PUT", "/public/members/mia", json!({"type": 7}), 400);
    v.key(
        &key,
        "PUT",
        "/public/members/mia/group-ids",
        json!({"groupIds": ["nope"]}),
        404,
    );
    v.key(&key, "GET", "/public/members/stranger", Value::Null, 404);
    // The last owner stays.
    v.key(&key, "PUT", "/public/members/olga", json!({"type": 2}), 400);
    // Removing mia ends everything she had in the organization.
    v.key(&key, "DELETE", "/public/members/mia", Value::Null, 200);
    assert!(!v.can("mia", "read", &format!("app/collection:{c1}")));
    assert!(!v.can("mia", "groupcreate", &format!("app/organization:{org}")));
    assert!(v.members_of(&g1).is_empty());
    v.key(&key, "GET", "/public/members/mia", Value::Null, 404);
}

#[test]
fn a_manager_cannot_grant_through_a_group_a_collection_they_cannot_manage() {
    let v = Vault::start();
    let org = v.org("olga", "acme", &["max", "ann"]);
    v.user(
        "olga",
        "POST",
        "/v1beta1/policies",
        json!({"roleId": "app_organization_manager", "resource": format!("app/organization:{org}"), "principal": "app/user:max"}),
        200,
    );
    let managed = v.collection("olga", &org, "Managed");
    let secret = v.collection("olga", &org, "Secret");
    // Max manages "Managed" directly, not "Secret".
    v.user(
        "olga",
        "PUT",
        &format!("/api/organizations/{org}/collections/{managed}"),
        json!({"name": "Managed", "users": [{"id": "max", "manage": true}]}),
        200,
    );
    let api = format!("/api/organizations/{org}/groups");
    // Creating a group that grants "Secret" is a 404, as Bitwarden answers; "Managed" is fine.
    v.user(
        "max",
        "POST",
        &api,
        json!({"name": "Sneaky", "users": ["ann"], "collections": [{"id": secret}]}),
        404,
    );
    assert!(!v.can("ann", "read", &format!("app/collection:{secret}")));
    let group = v.group(
        "max",
        &org,
        json!({"name": "Team", "users": ["ann"], "collections": [{"id": managed}]}),
    );
    assert!(v.can("ann", "read", &format!("app/collection:{managed}")));
    // The owner grants "Secret" read-only through the group; max's update cannot change that
    // entry (it stays as it was) but may change "Managed".
    v.user(
        "olga",
        "PUT",
        &format!("{api}/{group}"),
        json!({"name": "Team", "users": ["ann"],
               "collections": [{"id": managed}, {"id": secret, "readOnly": true}]}),
        200,
    );
    v.user(
        "max",
        "PUT",
        &format!("{api}/{group}"),
        json!({"name": "Team", "users": ["ann"],
               "collections": [{"id": managed, "readOnly": true}, {"id": secret, "manage": true}]}),
        200,
    );
    assert!(!v.can("ann", "manage", &format!("app/collection:{secret}")));
    assert!(!v.can("ann", "edit", &format!("app/collection:{secret}")));
    assert!(v.can("ann", "read", &format!("app/collection:{secret}")));
    assert!(!v.can("ann", "edit", &format!("app/collection:{managed}")));
    // Max cannot edit "Secret"'s own access either.
    v.user(
        "max",
        "PUT",
        &format!("/api/organizations/{org}/collections/{secret}"),
        json!({"name": "Secret", "users": [{"id": "max", "manage": true}]}),
        403,
    );
}
