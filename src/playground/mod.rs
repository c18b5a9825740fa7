//! The web playground at `/ui`: a page for writing a schema, managing relationships, running
//! checks with their explain tree and a drawing of the path, lookups, SpiceDB validation files
//! and a live feed of changes.
//!
//! The page is three static files written by hand (`assets/`), compiled into the binary: no
//! network at run time, no build step. They hold no data and are served to anyone; the page
//! asks for the preshared key, keeps it in the browser's session storage, and calls the HTTP
//! API with it. The one endpoint of its own, `POST /ui/api/validate`, runs a pasted validation
//! file against a scratch store in a temporary folder (never the live one), behind the same
//! key.
//!
//! **Invariant:** nothing here reads or writes the live store; the page reaches it only through
//! the `/v1/` API.

use axum::body::Bytes;
use axum::http::{header, HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, MethodRouter};
use axum::Router;
use serde::{Deserialize, Serialize};

use crate::api::auth;
use crate::api::error::{ApiError, Code};
use crate::validate::{self, ValidateOptions};

const INDEX: &str = include_str!("assets/index.html");
const APP: &str = include_str!("assets/app.js");
const STYLE: &str = include_str!("assets/style.css");

/// Bytes of a pasted validation file.
const MAX_VALIDATION_BYTES: usize = 1 << 20;

/// Scripts, styles and requests only from the server itself: the page loads nothing else.
const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; \
    style-src 'self'; img-src 'self' data:; connect-src 'self'; base-uri 'none'; \
    form-action 'none'; frame-ancestors 'none'";

/// The playground's routes: the page and its assets, and the validation runner (behind
/// `preshared_key`).
pub fn router(preshared_key: String) -> Router {
    routes(preshared_key)
        .into_iter()
        .fold(Router::new(), |router, (path, handlers)| {
            router.route(path, handlers)
        })
}

/// The path of every route [`router`] serves (for the OpenAPI check), from the same list.
pub fn paths() -> Vec<String> {
    routes(String::new())
        .into_iter()
        .map(|(path, _)| path.to_string())
        .collect()
}

/// Each path with its handlers, the one list [`router`] is built from.
fn routes(preshared_key: String) -> Vec<(&'static str, MethodRouter)> {
    vec![
        (
            "/ui",
            get(|| async { page("text/html; charset=utf-8", INDEX) }),
        ),
        (
            "/ui/",
            get(|| async { page("text/html; charset=utf-8", INDEX) }),
        ),
        (
            "/ui/app.js",
            get(|| async { page("text/javascript; charset=utf-8", APP) }),
        ),
        (
            "/ui/style.css",
            get(|| async { page("text/css; charset=utf-8", STYLE) }),
        ),
        (
            "/ui/api/validate",
            post(move |headers: HeaderMap, body: Bytes| {
                let key = preshared_key.clone();
                async move { run_validation(&key, &headers, &body).await }
            }),
        ),
    ]
}

fn page(content_type: &'static str, body: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, HeaderValue::from_static(content_type)),
            (
                header::CONTENT_SECURITY_POLICY,
                HeaderValue::from_static(CONTENT_SECURITY_POLICY),
            ),
            (
                header::X_CONTENT_TYPE_OPTIONS,
                HeaderValue::from_static("nosniff"),
            ),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-cache")),
        ],
        body,
    )
        .into_response()
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct ValidateRequest {
    /// The validation file's YAML text.
    #[serde(default)]
    yaml: String,
    /// Also run the check / lookup agreement pass.
    #[serde(default)]
    consistency: bool,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ValidateAnswer {
    passed: bool,
    relationships: usize,
    assertions: usize,
    validations: usize,
    consistency_checks: usize,
    results: Vec<ValidateResult>,
    failures: Vec<String>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ValidateResult {
    kind: &'static str,
    item: String,
    passed: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    failure: Option<String>,
}

async fn run_validation(key: &str, headers: &HeaderMap, body: &[u8]) -> Response {
    match validation(key, headers, body).await {
        Ok(answer) => (
            [(header::CONTENT_TYPE, "application/json")],
            serde_json::to_vec(&answer).unwrap_or_default(),
        )
            .into_response(),
        Err(err) => err.into_response(),
    }
}

async fn validation(
    key: &str,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<ValidateAnswer, ApiError> {
    let presented = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    if !auth::authorized(presented, key) {
        return Err(ApiError::new(
            Code::Unauthenticated,
            "missing or invalid preshared key",
        ));
    }
    crate::api::connections::prove_connection();
    if body.len() > MAX_VALIDATION_BYTES {
        return Err(ApiError {
            http_status: Some(413),
            ..ApiError::new(
                Code::ResourceExhausted,
                format!("validation file is larger than the limit of {MAX_VALIDATION_BYTES} bytes"),
            )
        });
    }
    let request: ValidateRequest = serde_json::from_slice(body)
        .map_err(|e| ApiError::invalid(format!("invalid request body: {e}")))?;
    if request.yaml.trim().is_empty() {
        return Err(ApiError::invalid("the validation file is empty"));
    }
    let report = tokio::task::spawn_blocking(move || {
        let file = validate::parse_inline(&request.yaml)?;
        let options = ValidateOptions {
            skip_consistency: !request.consistency,
            ..ValidateOptions::default()
        };
        validate::validate_parsed(&[file], &options)
    })
    .await
    .map_err(|e| ApiError::internal(&e))?
    .map_err(|e| match e {
        validate::ValidateError::TempStore(_) | validate::ValidateError::Io { .. } => {
            ApiError::internal(&e)
        }
        other => ApiError::invalid(other.to_string()),
    })?;
    Ok(ValidateAnswer {
        passed: report.passed(),
        relationships: report.relationships,
        assertions: report.assertions,
        validations: report.validations,
        consistency_checks: report.consistency_checks,
        results: report
            .outcomes
            .iter()
            .map(|o| ValidateResult {
                kind: o.kind,
                item: o.item.clone(),
                passed: o.failure.is_none(),
                failure: o.failure.clone(),
            })
            .collect(),
        failures: report.failures,
    })
}
