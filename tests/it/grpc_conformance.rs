//! The conformance suite through gRPC: every validation file of `../shared/conformance`
//! (SpiceDB's integration files, the SpiceDB-oracle files and the worked examples) is loaded
//! into a live server with WriteSchema and WriteRelationships, and every assertion is checked
//! with CheckPermission (caveat context passed through). Each file must also pass
//! `zanzi validate`, so both give the same answers. The server's clock is pinned to the
//! instant the validate tests use, so expiring relationships answer the same way.

use std::path::PathBuf;
use std::sync::Arc;

use serde_json::{Map, Value};
use zanzi::clock::FixedClock;
use zanzi::proto::v1;
use zanzi::validate::{self, ValidateOptions};

use crate::grpc::{check_request, to_struct, update, Clients};
use crate::server_support::TestServer;
use crate::support::{conformance_dir, yaml_files};

const NOW: &str = "2025-06-01T00:00:00Z";

fn files() -> Vec<PathBuf> {
    let root = conformance_dir();
    let mut files = yaml_files(&root.join("spicedb"));
    files.extend(yaml_files(&root.join("spicedb-oracle")));
    let mut examples: Vec<PathBuf> = std::fs::read_dir(root.join("examples"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_dir())
        .collect();
    examples.sort();
    for dir in examples {
        for sub in [dir.clone(), dir.join("validations")] {
            if sub.is_dir() {
                files.extend(yaml_files(&sub));
            }
        }
    }
    files
}

/// `resource#permission@subject [with {json}]` → (the check, its context).
fn assertion(text: &str) -> (String, Map<String, Value>) {
    match text.split_once(" with ") {
        Some((rel, json)) => (
            rel.trim().to_string(),
            serde_json::from_str(json.trim()).unwrap(),
        ),
        None => (text.trim().to_string(), Map::new()),
    }
}

fn expected_label(permissionship: i32) -> &'static str {
    use v1::check_permission_response::Permissionship as P;
    match P::try_from(permissionship) {
        Ok(P::HasPermission) => "true",
        Ok(P::NoPermission) => "false",
        Ok(P::ConditionalPermission) => "caveated",
        _ => "unspecified",
    }
}

#[test]
fn conformance_files_answer_the_same_over_grpc() {
    let now = zanzi::tuple::parse_expiration(NOW).unwrap();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let mut files_run = 0;
    let mut checked = 0;
    let mut failures = Vec::new();
    for path in files() {
        let file = validate::load(&path).unwrap();
        let report = validate::validate_files(
            &[path.as_path()],
            &ValidateOptions {
                now: Some(now),
                skip_consistency: true,
                ..ValidateOptions::default()
            },
        )
        .unwrap();
        assert!(
            report.passed(),
            "{} fails `zanzi validate`: {:?}",
            path.display(),
            report.failures
        );
        let server = TestServer::start_with(|config| {
            config.clock = Some(Arc::new(FixedClock::new(now)));
        });
        files_run += 1;
        runtime.block_on(async {
            let mut c = Clients::connect(&server, &server.key).await;
            c.schema
                .write_schema(v1::WriteSchemaRequest {
                    schema: file.schema.clone().unwrap_or_default(),
                })
                .await
                .unwrap_or_else(|e| panic!("{}: schema refused: {e:?}", path.display()));
            for chunk in file.relationships.chunks(500) {
                c.permissions
                    .write_relationships(v1::WriteRelationshipsRequest {
                        updates: chunk
                            .iter()
                            .map(|r| {
                                update(v1::relationship_update::Operation::Touch, &r.to_string())
                            })
                            .collect(),
                        ..Default::default()
                    })
                    .await
                    .unwrap_or_else(|e| panic!("{}: write refused: {e:?}", path.display()));
            }
            let groups = [
                (&file.assert_true, "true"),
                (&file.assert_false, "false"),
                (&file.assert_caveated, "caveated"),
            ];
            for (assertions, wanted) in groups {
                for text in assertions {
                    let (check, context) = assertion(text);
                    let rel = zanzi::tuple::Relationship::parse(&check).unwrap();
                    let mut request = check_request(
                        &rel.resource.to_string(),
                        &rel.relation,
                        &rel.subject.to_string(),
                        None,
                    );
                    if !context.is_empty() {
                        request.context = Some(to_struct(&context));
                    }
                    checked += 1;
                    match c.permissions.check_permission(request).await {
                        Ok(answer) => {
                            let got = expected_label(answer.into_inner().permissionship);
                            if got != wanted {
                                failures.push(format!(
                                    "{}: `{text}` is {got} over gRPC, {wanted} in validate",
                                    path.display()
                                ));
                            }
                        }
                        Err(err) => failures.push(format!(
                            "{}: `{text}` failed over gRPC: {err:?}",
                            path.display()
                        )),
                    }
                }
            }
        });
    }
    println!("{files_run} files, {checked} assertions checked over gRPC");
    assert!(files_run >= 80, "only {files_run} files ran");
    assert!(checked >= 4_000, "only {checked} assertions checked");
    assert!(
        failures.is_empty(),
        "{} of {checked} assertions disagree:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
