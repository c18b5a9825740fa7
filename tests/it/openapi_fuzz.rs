//! Schemathesis (PyPI, pinned in `tests/python/fuzz-requirements.txt`) fuzzes every operation
//! of the served OpenAPI document against a real server with the facades on: a bounded number
//! of examples per operation, valid and invalid, with a credential for each security scheme
//! (the preshared key, a user's JWT, an organization's API and SCIM keys) and that
//! organization's id in every `{org_id}`. It fails on any 5xx answer (`not_a_server_error`)
//! and on any request that does not finish within the per-request timeout.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use zanzi::facade::auth::{issue_token, SigningKey};

use crate::openapi::{facade_server, SECRET};
use crate::python_venv::venv_python;
use crate::server_support::TestServer;

/// Generated test cases per operation and phase.
const EXAMPLES: &str = "10";

/// Seconds any one request may take before the run fails as a hang.
const REQUEST_TIMEOUT: &str = "20";

/// The operations that would end the run's fixture (its organization, its keys): fuzzed in a
/// second run, after every other operation. `/v1/watch` is left out: it is a stream that
/// stays open by design.
const FIXTURE_ENDING: &[&str] = &[
    "deleteOrganization",
    "vaultCreateApiKey",
    "vaultCreateScimKey",
];

fn requirements() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/python/fuzz-requirements.txt")
}

/// `POST path` with a bearer credential, expecting 200; the JSON answer.
fn post(server: &TestServer, bearer: &str, path: &str, body: &Value) -> Value {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into();
    let mut response = agent
        .post(&server.url(path))
        .header("Authorization", &format!("Bearer {bearer}"))
        .header("Content-Type", "application/json")
        .send(body.to_string())
        .unwrap();
    let status = response.status().as_u16();
    let text = response.body_mut().read_to_string().unwrap();
    assert_eq!(status, 200, "POST {path}: {text}");
    serde_json::from_str(&text).unwrap()
}

/// Objects the run's operations address by id, so their calls reach past "not found".
struct Fixture {
    org: String,
    api_key: String,
    scim_key: String,
    /// A Bitwarden-style group (also a SCIM group).
    vault_group: String,
    collection: String,
    /// A `/v1beta1` group.
    group: String,
    project: String,
}

impl Fixture {
    /// An organization of `user` with its keys, a group of each product, a collection and a
    /// project.
    fn create(server: &TestServer, user: &str) -> Self {
        let id = |answer: Value, pointer: &str| {
            answer
                .pointer(pointer)
                .and_then(Value::as_str)
                .unwrap_or_else(|| panic!("no {pointer} in {answer}"))
                .to_string()
        };
        let org = id(
            post(
                server,
                user,
                "/v1beta1/organizations",
                &json!({"name": "acme"}),
            ),
            "/organization/id",
        );
        let api = format!("/api/organizations/{org}");
        Self {
            api_key: id(
                post(server, user, &format!("{api}/api-key"), &json!({})),
                "/apiKey",
            ),
            scim_key: id(
                post(server, user, &format!("{api}/scim-key"), &json!({})),
                "/apiKey",
            ),
            vault_group: id(
                post(
                    server,
                    user,
                    &format!("{api}/groups"),
                    &json!({"name": "Eng"}),
                ),
                "/id",
            ),
            collection: id(
                post(
                    server,
                    user,
                    &format!("{api}/collections"),
                    &json!({"name": "Docs"}),
                ),
                "/id",
            ),
            group: id(
                post(
                    server,
                    user,
                    &format!("/v1beta1/organizations/{org}/groups"),
                    &json!({"name": "eng"}),
                ),
                "/group/id",
            ),
            project: id(
                post(
                    server,
                    user,
                    "/v1beta1/projects",
                    &json!({"name": "web", "orgId": org}),
                ),
                "/project/id",
            ),
            org,
        }
    }

    /// The run's configuration: a credential per security scheme of the document, the
    /// fixture's ids in the paths that take them.
    fn config(&self, key: &str, user: &str) -> String {
        let Self {
            org,
            api_key,
            scim_key,
            vault_group,
            collection,
            group,
            project,
        } = self;
        format!(
            r#"request-timeout = {REQUEST_TIMEOUT}

[parameters]
"path.org_id" = "{org}"
"path.group_id" = "{group}"
"path.project_id" = "{project}"

[[operations]]
include-path-regex = "/groups/\\{{id\\}}|/Groups/\\{{id\\}}"
parameters = {{ "path.id" = "{vault_group}" }}

[[operations]]
include-path-regex = "/collections/\\{{id\\}}"
parameters = {{ "path.id" = "{collection}" }}

[auth.openapi.PresharedKey]
bearer = "{key}"

[auth.openapi.UserJwt]
bearer = "{user}"

[auth.openapi.OrgApiKey]
bearer = "{api_key}"

[auth.openapi.ScimKey]
bearer = "{scim_key}"
"#
        )
    }
}

/// Runs schemathesis over the document's operations selected by `filter`; the summary.
fn schemathesis(python: &Path, dir: &Path, server: &TestServer, filter: &[&str]) -> String {
    let output = Command::new(python)
        .current_dir(dir)
        .args([
            "-m",
            "schemathesis.cli",
            "--config-file",
            "schemathesis.toml",
        ])
        .arg("run")
        .arg(server.url("/openapi.json"))
        .args([
            "--checks",
            "not_a_server_error",
            "--max-examples",
            EXAMPLES,
            "--request-timeout",
            REQUEST_TIMEOUT,
            // One worker: hypothesis parses lambdas' source with `ast.parse`, which CPython
            // 3.11 does not make safe across threads ("AST constructor recursion depth
            // mismatch" errors with two workers).
            "--workers",
            "1",
            "--seed",
            "1",
            "--generation-database",
            "none",
            "--no-color",
        ])
        .args(filter)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "schemathesis found failures:\n{stdout}\n{stderr}"
    );
    stdout.into_owned()
}

#[test]
fn schemathesis_finds_no_server_error_and_no_hang() {
    let python = venv_python(&requirements(), "schemathesis-venv");
    let server = facade_server();
    let user = issue_token(
        &SigningKey::Secret(SECRET.to_string()),
        "alice",
        Duration::from_secs(3600),
        Some("alice@example.com".into()),
        None,
    )
    .unwrap();
    let fixture = Fixture::create(&server, &user);
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("schemathesis.toml"),
        fixture.config(&server.key, &user),
    )
    .unwrap();

    let started = Instant::now();
    let mut rest = vec!["--exclude-path", "/v1/watch"];
    for id in FIXTURE_ENDING {
        rest.extend(["--exclude-operation-id", id]);
    }
    let first = schemathesis(&python, dir.path(), &server, &rest);
    let mut last = Vec::new();
    for id in FIXTURE_ENDING {
        last.extend(["--include-operation-id", id]);
    }
    let second = schemathesis(&python, dir.path(), &server, &last);
    // The figures, for `cargo test -- --nocapture`.
    for summary in [&first, &second] {
        for line in summary
            .lines()
            .filter(|l| l.contains("selected /") || l.contains("generated") || l.contains(" in "))
        {
            println!("{}", line.trim());
        }
    }
    println!("schemathesis runs took {:.0?}", started.elapsed());
}
