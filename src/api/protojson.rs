//! Protobuf's JSON mapping (protojson), as SpiceDB's HTTP gateway reads and writes it.
//!
//! On input the gateway is lenient: a field may be named as in the `.proto` file
//! (`resource_object_type`) or in JSON (`resourceObjectType`), an enum given by name or by
//! number, a 64-bit integer as a number or a string, and `null` stands for the default. Our
//! typed request bodies read the canonical form; [`canonical`] turns any accepted form of a
//! request message into it (the HTTP layer uses it only when the typed read fails, so a
//! canonical body costs nothing extra). [`decode`] and [`encode`] carry a generated message
//! to and from JSON for the endpoints served straight from protobuf types (reflection).
//!
//! The message descriptors are the ones compiled into [`crate::proto::FILE_DESCRIPTOR_SET`].

use std::sync::LazyLock;

use prost_reflect::{
    DescriptorPool, DeserializeOptions, DynamicMessage, MessageDescriptor, SerializeOptions,
};
use serde_json::Value;

use super::error::ApiError;

static POOL: LazyLock<Option<DescriptorPool>> =
    LazyLock::new(|| DescriptorPool::decode(crate::proto::FILE_DESCRIPTOR_SET).ok());

/// The descriptor of `authzed.api.v1.{name}`.
fn descriptor(name: &str) -> Result<MessageDescriptor, ApiError> {
    POOL.as_ref()
        .and_then(|pool| pool.get_message_by_name(&format!("authzed.api.v1.{name}")))
        .ok_or_else(|| {
            ApiError::internal(&format!(
                "no protobuf descriptor for `authzed.api.v1.{name}`"
            ))
        })
}

/// Reads `body` as the message `name` in any form protojson accepts.
fn read(name: &str, body: &[u8]) -> Result<DynamicMessage, ApiError> {
    let descriptor = descriptor(name)?;
    let body: &[u8] = if body.iter().all(u8::is_ascii_whitespace) {
        b"{}"
    } else {
        body
    };
    let mut json = serde_json::Deserializer::from_slice(body);
    let message = DynamicMessage::deserialize_with_options(
        descriptor,
        &mut json,
        &DeserializeOptions::new().deny_unknown_fields(true),
    )
    .and_then(|message| json.end().map(|()| message))
    .map_err(|err| ApiError::invalid(format!("invalid request body: {err}")))?;
    Ok(message)
}

/// The canonical JSON (JSON field names, enum names, defaults left out) of `body` read as the
/// request message `name` (e.g. `CheckPermissionRequest`) in any form protojson accepts.
pub fn canonical(name: &str, body: &[u8]) -> Result<Vec<u8>, ApiError> {
    let message = read(name, body)?;
    serde_json::to_vec(&message).map_err(|err| ApiError::internal(&err))
}

/// Reads `body` as the request message `name` into its generated type.
pub fn decode<M: prost::Message + Default>(name: &str, body: &[u8]) -> Result<M, ApiError> {
    read(name, body)?
        .transcode_to::<M>()
        .map_err(|err| ApiError::internal(&err))
}

/// The JSON of `message`, the generated type of `authzed.api.v1.{name}`, as the gateway
/// writes it: JSON field names, enum names, 64-bit integers as strings, and every field
/// (empty lists, `false` and `""` included).
pub fn encode<M: prost::Message>(name: &str, message: &M) -> Result<Value, ApiError> {
    let dynamic = DynamicMessage::decode(descriptor(name)?, message.encode_to_vec().as_slice())
        .map_err(|err| ApiError::internal(&err))?;
    dynamic
        .serialize_with_options(
            serde_json::value::Serializer,
            &SerializeOptions::new().skip_default_fields(false),
        )
        .map_err(|err| ApiError::internal(&err))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn canonical_json(name: &str, body: &str) -> Value {
        serde_json::from_slice(&canonical(name, body.as_bytes()).unwrap()).unwrap()
    }

    #[test]
    fn proto_names_enum_numbers_and_nulls_read_as_the_canonical_form() {
        let lenient = canonical_json(
            "LookupSubjectsRequest",
            r#"{"resource": {"object_type": "doc", "object_id": "1"}, "permission": "view",
                "subject_object_type": "user", "wildcard_option": 2, "optional_cursor": null}"#,
        );
        assert_eq!(
            lenient,
            serde_json::json!({
                "resource": {"objectType": "doc", "objectId": "1"},
                "permission": "view",
                "subjectObjectType": "user",
                "wildcardOption": "WILDCARD_OPTION_EXCLUDE_WILDCARDS",
            })
        );
    }

    #[test]
    fn unknown_fields_are_refused_by_name() {
        let err = canonical("CheckPermissionRequest", br#"{"permision": "view"}"#).unwrap_err();
        assert!(err.message.contains("permision"), "{}", err.message);
    }

    #[test]
    fn generated_messages_encode_with_every_field() {
        let response = crate::proto::v1::ReadSchemaResponse {
            schema_text: String::new(),
            read_at: Some(crate::proto::v1::ZedToken { token: "t".into() }),
        };
        let json = encode("ReadSchemaResponse", &response).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"schemaText": "", "readAt": {"token": "t"}})
        );
    }
}
