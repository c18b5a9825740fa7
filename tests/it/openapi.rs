//! The OpenAPI document (`src/api/openapi.yaml`, served at `/openapi.json`) against the
//! routers of a real server with the facades on: every route the routers are built from is
//! documented with exactly the methods it answers, and every documented operation is served.
//! The router's paths come from `zanzi::server::http_paths` (the lists the routers are built
//! from) and each path's methods from the server itself (axum answers a method a path does
//! not take with 405 and an `Allow` header), so a route added without documentation fails
//! here.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;
use zanzi::facade::FacadeConfig;

use crate::server_support::TestServer;

/// An HS256 secret of the 32 bytes the server requires at least.
pub const SECRET: &str = "openapi-test-secret-0123456789abcdef";

/// The methods an OpenAPI path item may hold.
const METHODS: &[&str] = &[
    "get", "put", "post", "delete", "options", "head", "patch", "trace",
];

/// A server with the facades on.
pub fn facade_server() -> TestServer {
    TestServer::start_with(|config| {
        config.facade = Some(FacadeConfig {
            superusers: vec!["root".to_string()],
            ..FacadeConfig::with_secret(SECRET)
        });
    })
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into()
}

/// `GET /openapi.json`, without a key.
pub fn fetch_document(server: &TestServer) -> Value {
    let mut response = agent().get(&server.url("/openapi.json")).call().unwrap();
    assert_eq!(response.status().as_u16(), 200);
    assert_eq!(
        response.headers()["content-type"].to_str().unwrap(),
        "application/json"
    );
    response.body_mut().read_json().unwrap()
}

/// The documented operations: path → methods (upper case).
fn documented(document: &Value) -> BTreeMap<String, BTreeSet<String>> {
    document["paths"]
        .as_object()
        .expect("the document has paths")
        .iter()
        .map(|(path, item)| {
            let methods = item
                .as_object()
                .unwrap()
                .keys()
                .filter(|k| METHODS.contains(&k.as_str()))
                .map(|k| k.to_uppercase())
                .collect();
            (path.clone(), methods)
        })
        .collect()
}

/// A concrete request path for a templated one (`{org_id}` → `org_id-1`).
fn concrete(path: &str) -> String {
    let mut out = String::new();
    let mut rest = path;
    while let Some(open) = rest.find('{') {
        let close = rest[open..].find('}').unwrap() + open;
        out.push_str(&rest[..open]);
        out.push_str(&rest[open + 1..close]);
        out.push_str("-1");
        rest = &rest[close + 1..];
    }
    out.push_str(rest);
    out
}

/// The methods the server routes for `path`: an `OPTIONS` request (no route takes it) is
/// answered 405 with the path's `Allow` header, or 404 when no route has the path.
fn served_methods(server: &TestServer, path: &str) -> Option<BTreeSet<String>> {
    let response = agent()
        .options(&server.url(&concrete(path)))
        .header("Authorization", &format!("Bearer {}", server.key))
        .call()
        .unwrap();
    match response.status().as_u16() {
        404 => None,
        405 => {
            let allow = response
                .headers()
                .get("allow")
                .unwrap_or_else(|| panic!("OPTIONS {path}: 405 without an Allow header"))
                .to_str()
                .unwrap();
            Some(
                allow
                    .split(',')
                    .map(|m| m.trim().to_string())
                    // axum serves HEAD wherever it serves GET; the document leaves it implied.
                    .filter(|m| !m.is_empty() && m != "HEAD")
                    .collect(),
            )
        }
        other => panic!("OPTIONS {path}: expected 405 or 404, got {other}"),
    }
}

#[test]
fn every_route_is_documented_and_every_documented_route_is_served() {
    let server = facade_server();
    let document = fetch_document(&server);
    let documented = documented(&document);
    let routed: BTreeSet<String> = zanzi::server::http_paths().into_iter().collect();
    let undocumented: Vec<_> = routed
        .iter()
        .filter(|p| !documented.contains_key(*p))
        .collect();
    assert!(
        undocumented.is_empty(),
        "routes without documentation: {undocumented:?}"
    );
    let unrouted: Vec<_> = documented.keys().filter(|p| !routed.contains(*p)).collect();
    assert!(
        unrouted.is_empty(),
        "documented paths no router has: {unrouted:?}"
    );
    for (path, methods) in &documented {
        let served = served_methods(&server, path)
            .unwrap_or_else(|| panic!("{path} is documented but the server answers 404"));
        assert_eq!(
            &served, methods,
            "{path}: the server routes {served:?}, the document has {methods:?}"
        );
    }
}

#[test]
fn the_document_declares_every_security_scheme_it_uses() {
    let server = facade_server();
    let document = fetch_document(&server);
    let schemes = document["components"]["securitySchemes"]
        .as_object()
        .unwrap();
    for (path, item) in document["paths"].as_object().unwrap() {
        for (method, operation) in item.as_object().unwrap() {
            if !METHODS.contains(&method.as_str()) {
                continue;
            }
            assert!(
                operation["operationId"].is_string(),
                "{method} {path}: no operationId"
            );
            assert!(
                operation["responses"]
                    .as_object()
                    .is_some_and(|r| !r.is_empty()),
                "{method} {path}: no responses"
            );
            let security = operation
                .get("security")
                .or_else(|| document.get("security"))
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            for requirement in security {
                for scheme in requirement.as_object().unwrap().keys() {
                    assert!(
                        schemes.contains_key(scheme),
                        "{method} {path}: unknown scheme {scheme}"
                    );
                }
            }
        }
    }
}
