//! The OpenAPI 3.0 document of every HTTP route the server serves: the `/v1/` API, health,
//! readiness, metrics, the facades (`/v1beta1`, `/api`, `/public`, `/scim/v2`) and the `/ui`
//! playground. It is kept by hand in `openapi.yaml` beside this file, compiled into the
//! binary, and served as JSON at [`PATH`] without a key; `tests/it/openapi.rs` checks it
//! against the routers (every route documented, every documented route served) and fuzzes
//! the server with it.

use std::sync::LazyLock;

use axum::http::header;
use axum::response::{IntoResponse, Response};
use serde_json::Value;

use super::error::ApiError;

/// Where the document is served.
pub const PATH: &str = "/openapi.json";

/// The document's source (YAML, so it can carry comments).
const SOURCE: &str = include_str!("openapi.yaml");

/// The embedded document did not parse (a build that ships a broken `openapi.yaml`; the unit
/// test below refuses it).
#[derive(Debug, Clone, thiserror::Error)]
#[error("the embedded OpenAPI document does not parse: {0}")]
pub struct DocumentError(String);

/// The document and its JSON bytes, parsed once.
static DOCUMENT: LazyLock<Result<(Value, Vec<u8>), DocumentError>> = LazyLock::new(|| {
    let mut document: Value =
        serde_yaml::from_str(SOURCE).map_err(|e| DocumentError(e.to_string()))?;
    if let Some(info) = document.get_mut("info").and_then(Value::as_object_mut) {
        info.insert(
            "version".into(),
            Value::String(env!("CARGO_PKG_VERSION").into()),
        );
    }
    let bytes = serde_json::to_vec(&document).map_err(|e| DocumentError(e.to_string()))?;
    Ok((document, bytes))
});

/// The OpenAPI document, with `info.version` set to this build's version.
pub fn document() -> Result<&'static Value, DocumentError> {
    DOCUMENT
        .as_ref()
        .map(|(document, _)| document)
        .map_err(Clone::clone)
}

/// `GET /openapi.json`.
pub async fn serve() -> Response {
    match DOCUMENT.as_ref() {
        Ok((_, bytes)) => {
            ([(header::CONTENT_TYPE, "application/json")], bytes.clone()).into_response()
        }
        Err(err) => ApiError::internal(err).into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_document_parses_as_openapi_3() {
        let document = document().unwrap();
        assert_eq!(document["openapi"], "3.0.3");
        assert_eq!(document["info"]["version"], env!("CARGO_PKG_VERSION"));
        assert!(document["paths"].as_object().is_some_and(|p| !p.is_empty()));
    }

    #[test]
    fn every_reference_resolves() {
        let document = document().unwrap();
        let mut pending = vec![document];
        while let Some(value) = pending.pop() {
            match value {
                Value::Object(map) => {
                    if let Some(Value::String(target)) = map.get("$ref") {
                        let pointer = target.strip_prefix('#').unwrap();
                        assert!(
                            document.pointer(pointer).is_some(),
                            "unresolved reference {target}"
                        );
                    }
                    pending.extend(map.values());
                }
                Value::Array(items) => pending.extend(items),
                _ => {}
            }
        }
    }
}
