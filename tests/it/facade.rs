//! The `/v1beta1` facade against a real server on a loopback port: the Frontier groups
//! guide's flow end to end, each endpoint's 401 and 403, and the guards (idempotent
//! add-member, last owner, cascades, duplicate names, foreign groups, bad input).

use std::time::Duration;

use serde_json::{json, Value};
use zanzi::facade::auth::{issue_token, SigningKey};
use zanzi::facade::FacadeConfig;

use crate::server_support::{check_body, TestServer};

const SECRET: &str = "facade-test-secret-of-at-least-32-bytes";
const ROOT: &str = "root";

/// A server with the facade on, and HTTP helpers that present user tokens.
struct Frontier {
    server: TestServer,
}

/// One answer: status, JSON body, and the `X-ZedToken` header.
struct Reply {
    status: u16,
    body: Value,
    token: Option<String>,
}

fn token_for(user: &str) -> String {
    issue_token(
        &SigningKey::Secret(SECRET.to_string()),
        user,
        Duration::from_secs(600),
        Some(format!("{user}@example.com")),
        None,
    )
    .unwrap()
}

impl Frontier {
    fn start() -> Self {
        let server = TestServer::start_with(|config| {
            config.facade = Some(FacadeConfig {
                superusers: vec![ROOT.to_string()],
                ..FacadeConfig::with_secret(SECRET)
            });
        });
        Self { server }
    }

    /// Calls `method path` as `user` (no `Authorization` header when `None`).
    fn call(&self, user: Option<&str>, method: &str, path: &str, body: Option<&str>) -> Reply {
        let auth = user.map(|u| format!("Bearer {}", token_for(u)));
        self.call_with(auth.as_deref(), &[], method, path, body)
    }

    /// Calls with a raw `Authorization` value and extra headers.
    fn call_with(
        &self,
        auth: Option<&str>,
        headers: &[(&str, &str)],
        method: &str,
        path: &str,
        body: Option<&str>,
    ) -> Reply {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .build()
            .into();
        let url = self.server.url(path);
        let mut all: Vec<(&str, &str)> = headers.to_vec();
        if let Some(auth) = auth {
            all.push(("Authorization", auth));
        }
        let result = match method {
            "GET" | "DELETE" => {
                let mut request = if method == "GET" {
                    agent.get(&url)
                } else {
                    agent.delete(&url)
                };
                for (name, value) in &all {
                    request = request.header(*name, *value);
                }
                request.call()
            }
            _ => {
                let mut request = match method {
                    "POST" => agent.post(&url),
                    "PUT" => agent.put(&url),
                    other => panic!("method {other}"),
                };
                request = request.header("Content-Type", "application/json");
                for (name, value) in &all {
                    request = request.header(*name, *value);
                }
                request.send(body.unwrap_or(""))
            }
        };
        let mut response = result.unwrap();
        let status = response.status().as_u16();
        let token = response
            .headers()
            .get("x-zedtoken")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let text = response.body_mut().read_to_string().unwrap();
        let body = serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("{method} {path}: not JSON ({e}): {text}"));
        Reply {
            status,
            body,
            token,
        }
    }

    /// Calls and expects 200; returns the body and the token.
    fn ok(&self, user: &str, method: &str, path: &str, body: Value) -> (Value, String) {
        let text = body.to_string();
        let reply = self.call(Some(user), method, path, Some(&text));
        assert_eq!(reply.status, 200, "{method} {path}: {}", reply.body);
        (
            reply.body,
            reply.token.expect("every answer carries a token"),
        )
    }

    fn status(&self, user: &str, method: &str, path: &str, body: Value) -> (u16, Value) {
        let text = body.to_string();
        let reply = self.call(Some(user), method, path, Some(&text));
        (reply.status, reply.body)
    }

    /// Makes `users` known to the facade (first sight of a valid token).
    fn sign_in(&self, users: &[&str]) {
        for user in users {
            let (body, _) = self.ok(user, "GET", "/v1beta1/users/self", Value::Null);
            assert_eq!(body["user"]["id"], *user);
        }
    }

    /// Does `user` have `permission` on `resource`, asked through `/v1/permissions/check`
    /// (preshared key) at least as fresh as `token`?
    fn can(&self, user: &str, permission: &str, resource: &str, token: &str) -> bool {
        let body = check_body(
            resource,
            permission,
            &format!("app/user:{user}"),
            json!({"atLeastAsFresh": {"token": token}}),
        );
        let answer = self.server.ok("/v1/permissions/check", &body);
        answer["permissionship"] == "PERMISSIONSHIP_HAS_PERMISSION"
    }

    /// Relationships matching a `/v1/relationships/read` filter.
    fn tuples(&self, filter: Value) -> Vec<Value> {
        self.server.stream(
            "/v1/relationships/read",
            &json!({ "relationshipFilter": filter }),
        )
    }

    /// An org owned by `owner` with `members` added; returns its id.
    fn org(&self, owner: &str, name: &str, members: &[&str]) -> String {
        let (body, _) = self.ok(
            owner,
            "POST",
            "/v1beta1/organizations",
            json!({"name": name}),
        );
        let id = body["organization"]["id"].as_str().unwrap().to_string();
        if !members.is_empty() {
            self.ok(
                owner,
                "POST",
                &format!("/v1beta1/organizations/{id}/users"),
                json!({ "userIds": members }),
            );
        }
        id
    }

    fn group(&self, owner: &str, org: &str, name: &str) -> String {
        let (body, _) = self.ok(
            owner,
            "POST",
            &format!("/v1beta1/organizations/{org}/groups"),
            json!({"name": name, "title": format!("{name} team"), "metadata": {"description": "d"}}),
        );
        assert_eq!(body["group"]["orgId"], org);
        assert_eq!(body["group"]["state"], "enabled");
        body["group"]["id"].as_str().unwrap().to_string()
    }

    fn project(&self, owner: &str, org: &str, name: &str) -> String {
        let (body, _) = self.ok(
            owner,
            "POST",
            "/v1beta1/projects",
            json!({"name": name, "title": name, "orgId": org}),
        );
        body["project"]["id"].as_str().unwrap().to_string()
    }

    fn policy(&self, owner: &str, role: &str, resource: &str, principal: &str) -> (String, String) {
        let (body, token) = self.ok(
            owner,
            "POST",
            "/v1beta1/policies",
            json!({"roleId": role, "resource": resource, "principal": principal}),
        );
        (body["policy"]["id"].as_str().unwrap().to_string(), token)
    }
}

fn ids(list: &Value, field: &str) -> Vec<String> {
    let mut ids: Vec<String> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|item| item[field].as_str().unwrap().to_string())
        .collect();
    ids.sort();
    ids
}

#[test]
fn the_groups_guide_flow_end_to_end() {
    let f = Frontier::start();
    f.sign_in(&["alice", "bob", "carol"]);
    let schema = f.server.ok("/v1/schema/read", &json!({}));
    assert!(schema["schemaText"]
        .as_str()
        .unwrap()
        .contains("permission active_member = (member - suspended) - org->suspended"));

    // An organization with two users added.
    let org = f.org("alice", "acme", &["bob", "carol"]);
    let (users, _) = f.ok(
        "alice",
        "GET",
        &format!("/v1beta1/organizations/{org}/users"),
        Value::Null,
    );
    assert_eq!(ids(&users["users"], "id"), ["alice", "bob", "carol"]);

    // A group; its creator is the owner.
    let group = f.group("alice", &org, "eng");
    let members = format!("/v1beta1/organizations/{org}/groups/{group}/users");

    // Adding a member twice leaves one membership.
    for _ in 0..2 {
        f.ok("alice", "POST", &members, json!({"userIds": ["bob"]}));
    }
    let (listed, _) = f.ok("alice", "GET", &members, Value::Null);
    assert_eq!(ids(&listed["users"], "id"), ["alice", "bob"]);
    let memberships = f.tuples(json!({
        "resourceType": "app/group", "optionalResourceId": group, "optionalRelation": "member",
        "optionalSubjectFilter": {"subjectType": "app/user", "optionalSubjectId": "bob"}
    }));
    assert_eq!(memberships.len(), 1);
    let (policies, _) = f.ok(
        "alice",
        "GET",
        &format!("/v1beta1/policies?groupId={group}&userId=bob"),
        Value::Null,
    );
    assert_eq!(policies["policies"].as_array().unwrap().len(), 1);
    let (got, _) = f.ok(
        "alice",
        "GET",
        &format!("/v1beta1/organizations/{org}/groups/{group}"),
        Value::Null,
    );
    assert_eq!(got["group"]["memberCount"], 2);

    // The role filter: owners are the creator only, members the member only.
    let relations = format!("/v1beta1/organizations/{org}/groups/{group}/relations");
    let (owners, _) = f.ok(
        "alice",
        "GET",
        &format!("{relations}?subjectType=user&role=owner"),
        Value::Null,
    );
    let owners = owners["relations"].as_array().unwrap().clone();
    assert_eq!(owners.len(), 1);
    assert_eq!(owners[0]["user"]["id"], "alice");
    assert_eq!(owners[0]["role"], "owner");
    assert_eq!(owners[0]["subjectType"], "app/user");
    let (plain, _) = f.ok(
        "alice",
        "GET",
        &format!("{relations}?subjectType=user&role=member"),
        Value::Null,
    );
    let plain = plain["relations"].as_array().unwrap().clone();
    assert_eq!(plain.len(), 1);
    assert_eq!(plain[0]["user"]["id"], "bob");

    // A project, and the group as its viewer.
    let project = f.project("alice", &org, "web");
    let resource = format!("app/project:{project}");
    let (_, token) = f.policy(
        "alice",
        "app_project_viewer",
        &resource,
        &format!("app/group:{group}"),
    );
    assert!(f.can("bob", "get", &resource, &token));
    assert!(!f.can("carol", "get", &resource, &token));
    // The member also reads it through the facade.
    assert_eq!(
        f.ok(
            "bob",
            "GET",
            &format!("/v1beta1/projects/{project}"),
            Value::Null
        )
        .0["project"]["id"],
        project
    );
    assert_eq!(
        f.status(
            "carol",
            "GET",
            &format!("/v1beta1/projects/{project}"),
            Value::Null
        )
        .0,
        403
    );

    // Disable: the member loses access at once; enable: it comes back.
    let group_path = format!("/v1beta1/organizations/{org}/groups/{group}");
    let (_, token) = f.ok("alice", "POST", &format!("{group_path}/disable"), json!({}));
    assert!(!f.can("bob", "get", &resource, &token));
    let (disabled, _) = f.ok(
        "alice",
        "GET",
        &format!("/v1beta1/organizations/{org}/groups?state=disabled"),
        Value::Null,
    );
    assert_eq!(ids(&disabled["groups"], "id"), std::slice::from_ref(&group));
    let (enabled, _) = f.ok(
        "alice",
        "GET",
        &format!("/v1beta1/organizations/{org}/groups"),
        Value::Null,
    );
    assert!(enabled["groups"].as_array().unwrap().is_empty());
    let (_, token) = f.ok(
        "alice",
        "POST",
        &format!("{group_path}/enable"),
        Value::Null,
    );
    assert!(f.can("bob", "get", &resource, &token));

    // Delete: the member cannot, and no policy with the group as principal is left.
    let (_, token) = f.ok("alice", "DELETE", &group_path, Value::Null);
    assert!(!f.can("bob", "get", &resource, &token));
    let reply = f.call(Some("alice"), "GET", &group_path, None);
    assert_eq!(reply.status, 404);
    let (left, _) = f.ok(
        "alice",
        "GET",
        &format!("/v1beta1/policies?principal=app/group:{group}"),
        Value::Null,
    );
    assert!(left["policies"].as_array().unwrap().is_empty(), "{left}");
    let bindings = f.tuples(json!({
        "resourceType": "app/rolebinding", "optionalRelation": "bearer",
        "optionalSubjectFilter": {"subjectType": "app/group", "optionalSubjectId": group}
    }));
    assert!(bindings.is_empty(), "{bindings:?}");
    assert!(f
        .tuples(json!({"resourceType": "app/group", "optionalResourceId": group}))
        .is_empty());
    // The project itself is untouched.
    assert!(f.can("alice", "get", &resource, &token));
}

#[test]
fn a_user_in_two_groups_gets_the_higher_role() {
    let f = Frontier::start();
    f.sign_in(&["alice", "bob", "dave"]);
    let org = f.org("alice", "acme", &["bob", "dave"]);
    let viewers = f.group("alice", &org, "viewers");
    let managers = f.group("alice", &org, "managers");
    let add = |group: &str, user: &str| {
        f.ok(
            "alice",
            "POST",
            &format!("/v1beta1/organizations/{org}/groups/{group}/users"),
            json!({"user_ids": [user]}),
        );
    };
    add(&viewers, "bob");
    add(&managers, "bob");
    add(&viewers, "dave");
    let project = f.project("alice", &org, "web");
    let resource = format!("app/project:{project}");
    f.policy(
        "alice",
        "app_project_viewer",
        &resource,
        &format!("app/group:{viewers}"),
    );
    let (_, token) = f.policy(
        "alice",
        "app_project_manager",
        &resource,
        &format!("group:{managers}"),
    );
    assert!(f.can("bob", "update", &resource, &token));
    assert!(f.can("bob", "get", &resource, &token));
    assert!(f.can("dave", "get", &resource, &token));
    assert!(!f.can("dave", "update", &resource, &token));
}

#[test]
fn every_endpoint_answers_401_without_a_token_and_403_without_the_permission() {
    let f = Frontier::start();
    f.sign_in(&["alice", "bob", "mallory"]);
    let org = f.org("alice", "acme", &["bob"]);
    let group = f.group("alice", &org, "eng");
    let project = f.project("alice", &org, "web");
    let (resource, _) = f.ok(
        "alice",
        "POST",
        &format!("/v1beta1/projects/{project}/resources"),
        json!({"name": "vm-1", "namespace": "compute/instance"}),
    );
    let resource = resource["resource"]["id"].as_str().unwrap().to_string();
    let (policy, _) = f.policy(
        "alice",
        "app_project_viewer",
        &format!("app/project:{project}"),
        "app/user:bob",
    );
    let g = format!("/v1beta1/organizations/{org}/groups/{group}");
    let users = json!({"userIds": ["bob"]}).to_string();
    let named = json!({"name": "other"}).to_string();
    let grant =
        json!({"roleId": "app_project_viewer", "principal": "app/user:mallory"}).to_string();
    let full_grant = json!({"roleId": "app_project_viewer", "resource": format!("app/project:{project}"), "principal": "app/user:mallory"}).to_string();
    let project_body = json!({"name": "p2", "orgId": org}).to_string();
    let resource_body = json!({"name": "vm-2", "namespace": "compute/instance"}).to_string();
    // (method, path, body, whether a caller without the permission gets 403)
    let endpoints: Vec<(&str, String, Option<String>, bool)> = vec![
        ("GET", "/v1beta1/users/self".into(), None, false),
        ("GET", "/v1beta1/roles".into(), None, false),
        (
            "POST",
            "/v1beta1/organizations".into(),
            Some(json!({"name": "mine"}).to_string()),
            false,
        ),
        ("GET", "/v1beta1/organizations".into(), None, false),
        ("GET", format!("/v1beta1/organizations/{org}"), None, true),
        (
            "PUT",
            format!("/v1beta1/organizations/{org}"),
            Some(json!({"title": "t"}).to_string()),
            true,
        ),
        (
            "POST",
            format!("/v1beta1/organizations/{org}/users"),
            Some(users.clone()),
            true,
        ),
        (
            "GET",
            format!("/v1beta1/organizations/{org}/users"),
            None,
            true,
        ),
        (
            "DELETE",
            format!("/v1beta1/organizations/{org}/users/bob"),
            None,
            true,
        ),
        (
            "GET",
            format!("/v1beta1/organizations/{org}/projects"),
            None,
            true,
        ),
        (
            "POST",
            format!("/v1beta1/organizations/{org}/groups"),
            Some(named.clone()),
            true,
        ),
        (
            "GET",
            format!("/v1beta1/organizations/{org}/groups"),
            None,
            true,
        ),
        ("GET", "/v1beta1/admin/groups".into(), None, true),
        ("GET", g.clone(), None, true),
        ("PUT", g.clone(), Some(named.clone()), true),
        ("POST", format!("{g}/users"), Some(users.clone()), true),
        ("GET", format!("{g}/users"), None, true),
        ("DELETE", format!("{g}/users/alice"), None, true),
        ("GET", format!("{g}/relations?role=owner"), None, true),
        ("POST", format!("{g}/disable"), None, true),
        ("POST", format!("{g}/enable"), None, true),
        ("POST", "/v1beta1/projects".into(), Some(project_body), true),
        ("GET", format!("/v1beta1/projects/{project}"), None, true),
        (
            "POST",
            format!("/v1beta1/projects/{project}/resources"),
            Some(resource_body),
            true,
        ),
        (
            "GET",
            format!("/v1beta1/projects/{project}/resources"),
            None,
            true,
        ),
        (
            "POST",
            format!("/v1beta1/projects/{project}/policies"),
            Some(grant.clone()),
            true,
        ),
        (
            "POST",
            format!("/v1beta1/resources/{resource}/policies"),
            Some(grant.clone()),
            true,
        ),
        ("POST", "/v1beta1/policies".into(), Some(full_grant), true),
        ("GET", "/v1beta1/policies".into(), None, false),
        (
            "GET",
            format!("/v1beta1/policies?projectId={project}"),
            None,
            true,
        ),
        ("GET", format!("/v1beta1/policies/{}", policy), None, true),
        (
            "DELETE",
            format!("/v1beta1/policies/{}", policy),
            None,
            true,
        ),
        ("DELETE", format!("/v1beta1/projects/{project}"), None, true),
        ("DELETE", g.clone(), None, true),
        (
            "DELETE",
            format!("/v1beta1/organizations/{org}"),
            None,
            true,
        ),
    ];
    for (method, path, body, forbidden) in &endpoints {
        let reply = f.call(None, method, path, body.as_deref());
        assert_eq!(
            reply.status, 401,
            "{method} {path} without a token: {}",
            reply.body
        );
        assert_eq!(reply.body["code"], 16, "{method} {path}");
        let reply = f.call_with(Some("Bearer not-a-jwt"), &[], method, path, body.as_deref());
        assert_eq!(reply.status, 401, "{method} {path} with a malformed token");
        if *forbidden {
            let reply = f.call(Some("mallory"), method, path, body.as_deref());
            assert_eq!(
                reply.status, 403,
                "{method} {path} as mallory: {}",
                reply.body
            );
            assert_eq!(reply.body["code"], 7);
            assert_eq!(reply.body["message"], "not authorized");
        }
    }
    // Nothing was changed by the refused calls.
    let (still, _) = f.ok("alice", "GET", &g, Value::Null);
    assert_eq!(still["group"]["name"], "eng");
    // A superuser passes the platform check.
    let (all, _) = f.ok(ROOT, "GET", "/v1beta1/admin/groups", Value::Null);
    assert_eq!(ids(&all["groups"], "id"), [group]);
}

#[test]
fn the_last_owner_stays_and_owners_can_be_added() {
    let f = Frontier::start();
    f.sign_in(&["alice", "bob"]);
    let org = f.org("alice", "acme", &["bob"]);
    let group = f.group("alice", &org, "eng");
    let me = format!("/v1beta1/organizations/{org}/groups/{group}/users/alice");
    let (status, body) = f.status("alice", "DELETE", &me, Value::Null);
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["code"], 9);
    assert!(body["message"]
        .as_str()
        .unwrap()
        .contains("at least one owner"));
    // The org's last owner is protected the same way.
    let (status, _) = f.status(
        "alice",
        "DELETE",
        &format!("/v1beta1/organizations/{org}/users/alice"),
        Value::Null,
    );
    assert_eq!(status, 400);
    // With a second owner, the first may leave.
    f.policy(
        "alice",
        "app_group_owner",
        &format!("app/group:{group}"),
        "app/user:bob",
    );
    f.ok("alice", "DELETE", &me, Value::Null);
    let relations = format!("/v1beta1/organizations/{org}/groups/{group}/relations?role=owner");
    let (owners, _) = f.ok("bob", "GET", &relations, Value::Null);
    let owners = owners["relations"].as_array().unwrap().clone();
    assert_eq!(owners.len(), 1);
    assert_eq!(owners[0]["user"]["id"], "bob");
    // Removing a non-member is a no-op.
    f.ok("bob", "DELETE", &me, Value::Null);
}

#[test]
fn deleting_an_organization_cascades_to_everything_in_it() {
    let f = Frontier::start();
    f.sign_in(&["alice", "bob"]);
    let org = f.org("alice", "acme", &["bob"]);
    let group = f.group("alice", &org, "eng");
    f.ok(
        "alice",
        "POST",
        &format!("/v1beta1/organizations/{org}/groups/{group}/users"),
        json!({"userIds": ["bob"]}),
    );
    let project = f.project("alice", &org, "web");
    f.policy(
        "alice",
        "app_project_viewer",
        &format!("app/project:{project}"),
        &format!("app/group:{group}"),
    );
    let (_, token) = f.ok(
        "alice",
        "DELETE",
        &format!("/v1beta1/organizations/{org}"),
        Value::Null,
    );
    assert!(!f.can("bob", "get", &format!("app/project:{project}"), &token));
    for resource_type in [
        "app/organization",
        "app/group",
        "app/project",
        "app/rolebinding",
    ] {
        let left = f.tuples(json!({"resourceType": resource_type}));
        assert!(left.is_empty(), "{resource_type}: {left:?}");
    }
    let (policies, _) = f.ok(ROOT, "GET", "/v1beta1/policies", Value::Null);
    assert!(
        policies["policies"].as_array().unwrap().is_empty(),
        "{policies}"
    );
    assert_eq!(
        f.call(
            Some("alice"),
            "GET",
            &format!("/v1beta1/organizations/{org}"),
            None
        )
        .status,
        404
    );
    assert_eq!(
        f.call(
            Some("alice"),
            "GET",
            &format!("/v1beta1/projects/{project}"),
            None
        )
        .status,
        404
    );
    // The name is free again.
    f.org("alice", "acme", &[]);
}

#[test]
fn names_are_unique_per_organization_and_groups_live_in_their_own() {
    let f = Frontier::start();
    f.sign_in(&["alice"]);
    let acme = f.org("alice", "acme", &[]);
    let other = f.org("alice", "other", &[]);
    let group = f.group("alice", &acme, "eng");
    let (status, body) = f.status(
        "alice",
        "POST",
        &format!("/v1beta1/organizations/{acme}/groups"),
        json!({"name": "eng"}),
    );
    assert_eq!((status, body["code"].clone()), (409, json!(6)), "{body}");
    assert_eq!(
        f.status(
            "alice",
            "POST",
            "/v1beta1/organizations",
            json!({"name": "acme"})
        )
        .0,
        409
    );
    // The same name in another organization is fine.
    f.group("alice", &other, "eng");
    // A group asked for under another organization is not found, whoever asks.
    for path in [
        format!("/v1beta1/organizations/{other}/groups/{group}"),
        format!("/v1beta1/organizations/{other}/groups/{group}/users"),
    ] {
        assert_eq!(
            f.call(Some("alice"), "GET", &path, None).status,
            404,
            "{path}"
        );
        assert_eq!(f.call(Some(ROOT), "GET", &path, None).status, 404, "{path}");
    }
    // Renaming onto a taken name is refused too.
    let second = f.group("alice", &acme, "ops");
    let (status, _) = f.status(
        "alice",
        "PUT",
        &format!("/v1beta1/organizations/{acme}/groups/{second}"),
        json!({"name": "eng"}),
    );
    assert_eq!(status, 409);
}

#[test]
fn bad_input_is_a_clear_error_and_changes_nothing() {
    let f = Frontier::start();
    f.sign_in(&["alice", "bob", "erin"]);
    let org = f.org("alice", "acme", &["bob"]);
    let groups = format!("/v1beta1/organizations/{org}/groups");
    for body in ["{not json", "[1, 2]", "{\"name\": 5}"] {
        let reply = f.call(Some("alice"), "POST", &groups, Some(body));
        assert_eq!(reply.status, 400, "{body}: {}", reply.body);
        assert_eq!(reply.body["code"], 3);
    }
    let (status, body) = f.status(
        "alice",
        "POST",
        &groups,
        json!({"name": "eng", "metadata": ["x"]}),
    );
    assert_eq!(status, 400);
    assert!(
        body["message"].as_str().unwrap().contains("metadata"),
        "{body}"
    );
    assert_eq!(
        f.status("alice", "POST", &groups, json!({"name": "bad name"}))
            .0,
        400
    );
    let group = f.group("alice", &org, "eng");
    let members = format!("{groups}/{group}/users");
    // Unknown users are 404, users outside the organization 400; nothing is half-added.
    let (status, body) = f.status(
        "alice",
        "POST",
        &members,
        json!({"userIds": ["bob", "nobody"]}),
    );
    assert_eq!(status, 404, "{body}");
    assert_eq!(
        f.status("alice", "POST", &members, json!({"userIds": ["erin"]}))
            .0,
        400
    );
    let (listed, _) = f.ok("alice", "GET", &members, Value::Null);
    assert_eq!(ids(&listed["users"], "id"), ["alice"]);
    assert_eq!(
        f.status(
            "alice",
            "POST",
            &format!("/v1beta1/organizations/{org}/users"),
            json!({"userIds": ["nobody"]})
        )
        .0,
        404
    );
    // Unknown roles and out-of-scope roles.
    let project = f.project("alice", &org, "web");
    let bad_role = json!({"roleId": "app_nope", "resource": format!("app/project:{project}"), "principal": "app/user:bob"});
    assert_eq!(
        f.status("alice", "POST", "/v1beta1/policies", bad_role).0,
        404
    );
    let wrong_scope = json!({"roleId": "app_group_owner", "resource": format!("app/project:{project}"), "principal": "app/user:bob"});
    assert_eq!(
        f.status("alice", "POST", "/v1beta1/policies", wrong_scope)
            .0,
        400
    );
    // A disabled group takes no new members.
    f.ok(
        "alice",
        "POST",
        &format!("{groups}/{group}/disable"),
        Value::Null,
    );
    assert_eq!(
        f.status("alice", "POST", &members, json!({"userIds": ["bob"]}))
            .0,
        400
    );
    // Tokens: one signed with another secret is 401, a malformed ZedToken 400.
    let forged = issue_token(
        &SigningKey::Secret("another-secret-of-at-least-32-bytes".into()),
        "alice",
        Duration::from_secs(60),
        None,
        None,
    )
    .unwrap();
    let reply = f.call_with(
        Some(&format!("Bearer {forged}")),
        &[],
        "GET",
        "/v1beta1/users/self",
        None,
    );
    assert_eq!(reply.status, 401);
    let alice = format!("Bearer {}", token_for("alice"));
    let reply = f.call_with(
        Some(&alice),
        &[("X-ZedToken", "garbage")],
        "GET",
        "/v1beta1/users/self",
        None,
    );
    assert_eq!(reply.status, 400, "{}", reply.body);
    let fresh = f
        .call(Some("alice"), "GET", "/v1beta1/users/self", None)
        .token
        .unwrap();
    let reply = f.call_with(
        Some(&alice),
        &[("X-ZedToken", &fresh)],
        "GET",
        "/v1beta1/users/self",
        None,
    );
    assert_eq!(reply.status, 200);
}

#[test]
fn custom_resources_take_policies_and_inherit_from_their_project() {
    let f = Frontier::start();
    f.sign_in(&["alice", "bob", "carol"]);
    let org = f.org("alice", "acme", &["bob", "carol"]);
    let project = f.project("alice", &org, "web");
    let (created, _) = f.ok(
        "alice",
        "POST",
        &format!("/v1beta1/projects/{project}/resources"),
        json!({"name": "vm-1", "namespace": "compute/instance"}),
    );
    let id = created["resource"]["id"].as_str().unwrap().to_string();
    let (_, token) = f.ok(
        "alice",
        "POST",
        &format!("/v1beta1/resources/{id}/policies"),
        json!({"roleId": "app_project_viewer", "principal": "app/user:bob"}),
    );
    let instance = format!("compute/instance:{id}");
    assert!(f.can("bob", "get", &instance, &token));
    assert!(!f.can("bob", "update", &instance, &token));
    assert!(!f.can("carol", "get", &instance, &token));
    let (_, token) = f.ok(
        "alice",
        "POST",
        &format!("/v1beta1/projects/{project}/policies"),
        json!({"roleId": "app_project_manager", "principal": "app/user:carol"}),
    );
    assert!(f.can("carol", "update", &instance, &token));
    assert_eq!(
        f.status(
            "alice",
            "POST",
            &format!("/v1beta1/projects/{project}/resources"),
            json!({"name": "x1", "namespace": "app/group"})
        )
        .0,
        400
    );
}

#[test]
fn zanzi_token_prints_a_token_the_server_accepts() {
    let f = Frontier::start();
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_zanzi"))
        .args([
            "token",
            "--user",
            "zed",
            "--jwt-secret",
            SECRET,
            "--ttl",
            "5m",
        ])
        .env("RUST_LOG", "warn")
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let token = String::from_utf8(output.stdout).unwrap().trim().to_string();
    let reply = f.call_with(
        Some(&format!("Bearer {token}")),
        &[],
        "GET",
        "/v1beta1/users/self",
        None,
    );
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(reply.body["user"]["id"], "zed");
}

/// An engine over a fresh store in `dir`, with `schema` written when given.
fn engine_with(
    dir: &tempfile::TempDir,
    schema: Option<&str>,
) -> std::sync::Arc<zanzi::engine::Engine> {
    let store =
        zanzi::store::RocksStore::open(dir.path(), zanzi::store::StoreOptions::default()).unwrap();
    let engine = zanzi::engine::Engine::new(
        std::sync::Arc::new(store),
        zanzi::engine::EngineConfig::default(),
    )
    .unwrap();
    if let Some(text) = schema {
        engine.write_schema(text).unwrap();
    }
    std::sync::Arc::new(engine)
}

fn start_facade(
    engine: std::sync::Arc<zanzi::engine::Engine>,
) -> Result<zanzi::facade::SchemaOutcome, zanzi::facade::StartError> {
    let config = FacadeConfig {
        superusers: vec![ROOT.to_string()],
        ..FacadeConfig::with_secret(SECRET)
    };
    zanzi::facade::start(engine, &config, Box::new(|_| {})).map(|(_, outcome)| outcome)
}

#[test]
fn the_facade_loads_its_schema_keeps_supersets_and_refuses_other_schemas() {
    use zanzi::facade::{SchemaOutcome, BUILTIN_SCHEMA};
    let dir = tempfile::tempdir().unwrap();
    let engine = engine_with(&dir, None);
    assert_eq!(
        start_facade(std::sync::Arc::clone(&engine)).unwrap(),
        SchemaOutcome::Written
    );
    assert_eq!(engine.schema().unwrap().source, BUILTIN_SCHEMA);
    // A restart finds it unchanged and writes no bootstrap tuples again.
    let head = engine.head_revision();
    assert_eq!(
        start_facade(std::sync::Arc::clone(&engine)).unwrap(),
        SchemaOutcome::Unchanged
    );
    assert_eq!(engine.head_revision(), head);

    let dir = tempfile::tempdir().unwrap();
    let extended = format!(
        "{BUILTIN_SCHEMA}\ndefinition storage/bucket {{\n    relation project: app/project\n}}\n"
    );
    let engine = engine_with(&dir, Some(&extended));
    assert_eq!(
        start_facade(std::sync::Arc::clone(&engine)).unwrap(),
        SchemaOutcome::Superset
    );
    assert_eq!(engine.schema().unwrap().source, extended);

    let dir = tempfile::tempdir().unwrap();
    let engine = engine_with(
        &dir,
        Some("definition user {}\ndefinition doc {\n    relation viewer: user\n}\n"),
    );
    let err = start_facade(std::sync::Arc::clone(&engine))
        .unwrap_err()
        .to_string();
    // The first built-in type the store lacks is named (the stored schema has none of them).
    assert!(
        err.contains("type `app/") && err.contains("` is missing"),
        "{err}"
    );
    assert!(err.contains("zanzi schema write"), "{err}");
    // Nothing was written to the refused store.
    assert!(engine.schema().unwrap().definition("app/group").is_none());
}

#[test]
fn a_store_with_the_previous_built_in_schema_is_upgraded_at_start() {
    use zanzi::facade::{SchemaOutcome, BUILTIN_SCHEMA, PREVIOUS_SCHEMAS};
    let dir = tempfile::tempdir().unwrap();
    let engine = engine_with(&dir, Some(PREVIOUS_SCHEMAS[0]));
    assert_eq!(
        start_facade(std::sync::Arc::clone(&engine)).unwrap(),
        SchemaOutcome::Upgraded
    );
    assert_eq!(engine.schema().unwrap().source, BUILTIN_SCHEMA);
}

#[test]
fn disabling_an_organization_suspends_every_member_until_a_superuser_enables_it() {
    let f = Frontier::start();
    f.sign_in(&["alice", "bob"]);
    let org = f.org("alice", "acme", &["bob"]);
    let group = f.group("alice", &org, "eng");
    let group_path = format!("/v1beta1/organizations/{org}/groups/{group}");
    f.ok(
        "alice",
        "POST",
        &format!("{group_path}/users"),
        json!({"userIds": ["bob"]}),
    );
    let project = f.project("alice", &org, "web");
    let resource = format!("app/project:{project}");
    let (_, token) = f.policy(
        "alice",
        "app_project_viewer",
        &resource,
        &format!("app/group:{group}"),
    );
    assert!(f.can("bob", "get", &resource, &token));
    let org_path = format!("/v1beta1/organizations/{org}");
    // Only superusers disable and enable.
    let (status, _) = f.status("alice", "POST", &format!("{org_path}/disable"), json!({}));
    assert_eq!(status, 403);
    let (_, token) = f.ok(ROOT, "POST", &format!("{org_path}/disable"), json!({}));
    for (user, permission, object) in [
        ("bob", "get", resource.clone()),
        ("alice", "get", resource.clone()),
        ("alice", "delete", format!("app/organization:{org}")),
        ("alice", "update", format!("app/group:{group}")),
        ("bob", "active_member", format!("app/group:{group}")),
    ] {
        assert!(
            !f.can(user, permission, &object, &token),
            "{user} {permission} {object}"
        );
    }
    assert_eq!(f.status("alice", "GET", &org_path, Value::Null).0, 403);
    assert_eq!(
        f.status(
            "alice",
            "POST",
            &format!("{org_path}/groups"),
            json!({"name": "ops"})
        )
        .0,
        403
    );
    // The superuser still reads it (and its state), and enables it again.
    let (seen, _) = f.ok(ROOT, "GET", &org_path, Value::Null);
    assert_eq!(seen["organization"]["state"], "disabled");
    f.ok(ROOT, "GET", &group_path, Value::Null);
    let (_, token) = f.ok(ROOT, "POST", &format!("{org_path}/enable"), Value::Null);
    assert!(f.can("bob", "get", &resource, &token));
    assert!(f.can(
        "alice",
        "delete",
        &format!("app/organization:{org}"),
        &token
    ));
    let (seen, _) = f.ok("alice", "GET", &org_path, Value::Null);
    assert_eq!(seen["organization"]["state"], "enabled");
}

#[test]
fn the_facade_refuses_what_it_would_ignore() {
    let f = Frontier::start();
    f.sign_in(&["alice", "bob"]);
    let org = f.org("alice", "acme", &["bob"]);
    let groups = format!("/v1beta1/organizations/{org}/groups");
    // Unknown top-level fields are named; a body wrapped in `body` says so.
    let (status, body) = f.status(
        "alice",
        "POST",
        &groups,
        json!({"name": "eng", "orgId": org}),
    );
    assert_eq!(status, 400);
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("unknown field `orgId`"),
        "{body}"
    );
    let (status, body) = f.status("alice", "POST", &groups, json!({"body": {"name": "eng"}}));
    assert_eq!(status, 400);
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("not wrapped in `body`"),
        "{body}"
    );
    let (status, body) = f.status(
        "alice",
        "POST",
        "/v1beta1/organizations",
        json!({"name": "other", "colour": "red"}),
    );
    assert_eq!(status, 400);
    assert!(
        body["message"].as_str().unwrap().contains("`colour`"),
        "{body}"
    );
    // Group create and update answer the real member count (the creator is a member).
    let (created, _) = f.ok("alice", "POST", &groups, json!({"name": "eng"}));
    assert_eq!(created["group"]["memberCount"], 1);
    let group = created["group"]["id"].as_str().unwrap().to_string();
    let (updated, _) = f.ok(
        "alice",
        "PUT",
        &format!("{groups}/{group}"),
        json!({"name": "eng", "title": "Engineering"}),
    );
    assert_eq!(updated["group"]["memberCount"], 1);
    // A policy whose resource disagrees with the path is refused; one that agrees is fine.
    let project = f.project("alice", &org, "web");
    let other = f.project("alice", &org, "api");
    let path = format!("/v1beta1/projects/{project}/policies");
    let (status, body) = f.status(
        "alice",
        "POST",
        &path,
        json!({"roleId": "app_project_viewer", "resource": format!("app/project:{other}"), "principal": "app/user:bob"}),
    );
    assert_eq!(status, 400, "{body}");
    let (policies, _) = f.ok(
        "alice",
        "GET",
        &format!("/v1beta1/policies?projectId={other}&userId=bob"),
        Value::Null,
    );
    assert!(policies["policies"].as_array().unwrap().is_empty());
    f.ok(
        "alice",
        "POST",
        &path,
        json!({"roleId": "app_project_viewer", "resource": format!("project:{project}"), "principal": "app/user:bob"}),
    );
    // Metadata and titles are bounded; a disable body must be empty.
    let (status, body) = f.status(
        "alice",
        "POST",
        &groups,
        json!({"name": "big", "metadata": {"blob": "x".repeat(20_000)}}),
    );
    assert_eq!(status, 400);
    assert!(
        body["message"].as_str().unwrap().contains("bytes"),
        "{body}"
    );
    assert_eq!(
        f.status(
            "alice",
            "POST",
            &groups,
            json!({"name": "long", "title": "t".repeat(2000)})
        )
        .0,
        400
    );
    assert_eq!(
        f.status(
            "alice",
            "POST",
            &format!("{groups}/{group}/disable"),
            json!({"now": true})
        )
        .0,
        400
    );
}

#[test]
fn lists_page_and_reads_show_members_and_roles() {
    let f = Frontier::start();
    let people = ["alice", "bob", "carol", "dave", "erin"];
    f.sign_in(&people);
    let org = f.org("alice", "acme", &people[1..]);
    let users = format!("/v1beta1/organizations/{org}/users");
    let mut seen = Vec::new();
    for page in 1..=3 {
        let (body, _) = f.ok(
            "alice",
            "GET",
            &format!("{users}?pageSize=2&pageNum={page}"),
            Value::Null,
        );
        assert_eq!(body["count"], 5);
        let listed = ids(&body["users"], "id");
        assert_eq!(listed.len(), if page < 3 { 2 } else { 1 });
        seen.extend(listed);
    }
    seen.sort();
    assert_eq!(seen, people);
    for bad in ["pageSize=0", "page_size=1001", "pageNum=0", "pageSize=x"] {
        assert_eq!(
            f.status("alice", "GET", &format!("{users}?{bad}"), Value::Null)
                .0,
            400,
            "{bad}"
        );
    }
    let (with_roles, _) = f.ok(
        "alice",
        "GET",
        &format!("{users}?withRoles=true"),
        Value::Null,
    );
    let pairs = with_roles["rolePairs"].as_array().unwrap();
    let alice = pairs.iter().find(|p| p["userId"] == "alice").unwrap();
    assert_eq!(alice["roles"][0]["name"], "app_organization_owner");
    let (with_members, _) = f.ok(
        "alice",
        "GET",
        &format!("/v1beta1/organizations/{org}?with_members=true"),
        Value::Null,
    );
    assert_eq!(ids(&with_members["organization"]["users"], "id"), people);
    let (plain, _) = f.ok(
        "alice",
        "GET",
        &format!("/v1beta1/organizations/{org}"),
        Value::Null,
    );
    assert!(plain["organization"].get("users").is_none());

    let group = f.group("alice", &org, "eng");
    let group_path = format!("/v1beta1/organizations/{org}/groups/{group}");
    f.ok(
        "alice",
        "POST",
        &format!("{group_path}/users"),
        json!({"userIds": ["bob", "carol"]}),
    );
    let (got, _) = f.ok(
        "alice",
        "GET",
        &format!("{group_path}?withMembers=true"),
        Value::Null,
    );
    assert_eq!(got["group"]["memberCount"], 3);
    assert_eq!(ids(&got["group"]["users"], "id"), ["alice", "bob", "carol"]);
    let (members, _) = f.ok(
        "alice",
        "GET",
        &format!("{group_path}/users?withRoles=true&pageSize=10"),
        Value::Null,
    );
    let pairs = members["rolePairs"].as_array().unwrap();
    let roles_of = |user: &str| -> String {
        pairs.iter().find(|p| p["userId"] == user).unwrap()["roles"][0]["name"]
            .as_str()
            .unwrap()
            .to_string()
    };
    assert_eq!(roles_of("alice"), "app_group_owner");
    assert_eq!(roles_of("bob"), "app_group_member");
    let (listed, _) = f.ok(
        "alice",
        "GET",
        &format!("/v1beta1/organizations/{org}/groups?withMembers=true&pageSize=1"),
        Value::Null,
    );
    assert_eq!(listed["count"], 1);
    assert_eq!(listed["groups"][0]["users"].as_array().unwrap().len(), 3);
}

#[test]
fn a_user_creates_a_bounded_number_of_organizations() {
    let server = TestServer::start_with(|config| {
        config.facade = Some(FacadeConfig {
            superusers: vec![ROOT.to_string()],
            max_orgs_per_user: 2,
            ..FacadeConfig::with_secret(SECRET)
        });
    });
    let f = Frontier { server };
    f.sign_in(&["alice"]);
    let first = f.org("alice", "one", &[]);
    f.org("alice", "two", &[]);
    let (status, body) = f.status(
        "alice",
        "POST",
        "/v1beta1/organizations",
        json!({"name": "three"}),
    );
    assert_eq!(status, 400, "{body}");
    assert!(
        body["message"].as_str().unwrap().contains("most allowed"),
        "{body}"
    );
    f.ok(
        "alice",
        "DELETE",
        &format!("/v1beta1/organizations/{first}"),
        Value::Null,
    );
    f.org("alice", "three", &[]);
    for name in ["r1", "r2", "r3"] {
        f.org(ROOT, name, &[]);
    }
}

#[test]
fn listing_policies_without_a_filter_shows_only_what_the_caller_bears_or_manages() {
    let f = Frontier::start();
    f.sign_in(&["alice", "bob", "carol"]);
    let acme = f.org("alice", "acme", &["bob"]);
    let globex = f.org("carol", "globex", &[]);
    let project = f.project("alice", &acme, "web");
    let (viewer, _) = f.policy(
        "alice",
        "app_project_viewer",
        &format!("app/project:{project}"),
        "app/user:bob",
    );
    // Bob bears two bindings (his membership and the viewer role) and manages none.
    let (bob_sees, _) = f.ok("bob", "GET", "/v1beta1/policies", Value::Null);
    let listed = bob_sees["policies"].as_array().unwrap();
    assert_eq!(listed.len(), 2, "{bob_sees}");
    assert!(
        listed.iter().all(|p| p["principal"] == "app/user:bob"),
        "{bob_sees}"
    );
    assert!(ids(&bob_sees["policies"], "id").contains(&viewer));
    let (carol_sees, _) = f.ok("carol", "GET", "/v1beta1/policies", Value::Null);
    for policy in carol_sees["policies"].as_array().unwrap() {
        assert_eq!(
            policy["resource"],
            format!("app/organization:{globex}"),
            "{policy}"
        );
    }
    let (alice_sees, _) = f.ok("alice", "GET", "/v1beta1/policies", Value::Null);
    let mine = ids(&alice_sees["policies"], "id");
    assert!(mine.contains(&viewer), "{alice_sees}");
    assert!(alice_sees["policies"]
        .as_array()
        .unwrap()
        .iter()
        .all(|p| p["resource"] != format!("app/organization:{globex}")));
}

#[test]
fn a_short_jwt_secret_is_refused_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_zanzi"))
        .args([
            "serve",
            "--http-addr",
            "127.0.0.1:0",
            "--grpc-addr",
            "127.0.0.1:0",
            "--jwt-secret",
            "too-short",
        ])
        .arg("--data-dir")
        .arg(dir.path())
        .env("RUST_LOG", "warn")
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("at least 32 bytes"), "{stderr}");
}

#[test]
fn suspension_validation_file_passes_in_every_engine_configuration() {
    use zanzi::validate::{self, ValidateOptions};
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("builtin.zed"),
        zanzi::facade::BUILTIN_SCHEMA,
    )
    .unwrap();
    let file = dir.path().join("suspension.validation.yaml");
    let source = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/schema/suspension.validation.yaml"
    );
    std::fs::copy(source, &file).unwrap();
    for (name, engine) in crate::support::configs() {
        let options = ValidateOptions {
            engine,
            ..ValidateOptions::default()
        };
        let report = validate::validate_files(&[file.as_path()], &options).unwrap();
        assert!(report.passed(), "{name}: {}", report.failures.join("\n"));
    }
}
