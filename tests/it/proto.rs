//! Guards the `authzed.api.v1` wire format: messages encoded by our generated types must equal
//! bytes built by hand from SpiceDB's published field numbers, and hand-built bytes must decode
//! to the expected values. A wrong field number, wire type or enum value fails here.

use prost::Message;
use prost_types::{value::Kind, Struct, Timestamp, Value};
use zanzi::proto::v1::{
    check_permission_response::Permissionship, consistency::Requirement, precondition,
    relationship_update::Operation, subject_filter::RelationFilter, CheckPermissionRequest,
    CheckPermissionResponse, Consistency, ContextualizedCaveat, ObjectReference, Precondition,
    Relationship, RelationshipFilter, RelationshipUpdate, SubjectFilter, SubjectReference,
    WriteRelationshipsRequest, ZedToken,
};

/// A varint as protobuf writes it.
fn varint(mut value: u64) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let byte = (value & 0x7f) as u8;
        value >>= 7;
        if value == 0 {
            out.push(byte);
            return out;
        }
        out.push(byte | 0x80);
    }
}

/// Field `number` with wire type 0 (varint).
fn int_field(number: u64, value: u64) -> Vec<u8> {
    let mut out = varint(number << 3);
    out.extend(varint(value));
    out
}

/// Field `number` with wire type 2 (length-delimited): strings, bytes, messages.
fn len_field(number: u64, payload: &[u8]) -> Vec<u8> {
    let mut out = varint((number << 3) | 2);
    out.extend(varint(payload.len() as u64));
    out.extend_from_slice(payload);
    out
}

fn cat(parts: &[Vec<u8>]) -> Vec<u8> {
    parts.concat()
}

/// `ObjectReference { object_type = 1, object_id = 2 }`.
fn object_bytes(object_type: &str, object_id: &str) -> Vec<u8> {
    cat(&[
        len_field(1, object_type.as_bytes()),
        len_field(2, object_id.as_bytes()),
    ])
}

fn object(object_type: &str, object_id: &str) -> Option<ObjectReference> {
    Some(ObjectReference {
        object_type: object_type.to_string(),
        object_id: object_id.to_string(),
    })
}

#[test]
fn check_permission_request_uses_spicedbs_field_numbers() {
    let context = Struct {
        fields: [(
            "ip".to_string(),
            Value {
                kind: Some(Kind::StringValue("10.0.0.1".to_string())),
            },
        )]
        .into_iter()
        .collect(),
    };
    let request = CheckPermissionRequest {
        consistency: Some(Consistency {
            requirement: Some(Requirement::FullyConsistent(true)),
        }),
        resource: object("doc", "readme"),
        permission: "view".to_string(),
        subject: Some(SubjectReference {
            object: object("group", "eng"),
            optional_relation: "member".to_string(),
        }),
        context: Some(context),
        with_tracing: true,
    };

    // Consistency.fully_consistent = 4 (bool).
    let consistency = int_field(4, 1);
    // SubjectReference { object = 1, optional_relation = 2 }.
    let subject = cat(&[
        len_field(1, &object_bytes("group", "eng")),
        len_field(2, b"member"),
    ]);
    // Struct { fields = 1 (map entry: key = 1, value = 2) }, Value.string_value = 3.
    let entry = cat(&[
        len_field(1, b"ip"),
        len_field(2, &len_field(3, b"10.0.0.1")),
    ]);
    let context = len_field(1, &entry);
    let expected = cat(&[
        len_field(1, &consistency),                   // consistency
        len_field(2, &object_bytes("doc", "readme")), // resource
        len_field(3, b"view"),                        // permission
        len_field(4, &subject),                       // subject
        len_field(5, &context),                       // context
        int_field(6, 1),                              // with_tracing
    ]);
    assert_eq!(request.encode_to_vec(), expected);
    assert_eq!(
        CheckPermissionRequest::decode(&expected[..]).unwrap(),
        request
    );
}

#[test]
fn write_relationships_request_uses_spicedbs_field_numbers() {
    let request = WriteRelationshipsRequest {
        updates: vec![RelationshipUpdate {
            operation: Operation::Touch as i32,
            relationship: Some(Relationship {
                resource: object("doc", "readme"),
                relation: "viewer".to_string(),
                subject: Some(SubjectReference {
                    object: object("user", "ann"),
                    optional_relation: String::new(),
                }),
                optional_caveat: Some(ContextualizedCaveat {
                    caveat_name: "on_weekdays".to_string(),
                    context: Some(Struct::default()),
                }),
                optional_expires_at: Some(Timestamp {
                    seconds: 1_900_000_000,
                    nanos: 0,
                }),
            }),
        }],
        optional_preconditions: vec![Precondition {
            operation: precondition::Operation::MustMatch as i32,
            filter: Some(RelationshipFilter {
                resource_type: "doc".to_string(),
                optional_resource_id: String::new(),
                optional_relation: "viewer".to_string(),
                optional_subject_filter: Some(SubjectFilter {
                    subject_type: "user".to_string(),
                    optional_subject_id: "ann".to_string(),
                    optional_relation: Some(RelationFilter {
                        relation: String::new(),
                    }),
                }),
                optional_resource_id_prefix: "read".to_string(),
            }),
        }],
        optional_transaction_metadata: None,
    };

    // Relationship { resource = 1, relation = 2, subject = 3, optional_caveat = 4,
    // optional_expires_at = 5 }; an empty optional_relation is not written.
    let relationship = cat(&[
        len_field(1, &object_bytes("doc", "readme")),
        len_field(2, b"viewer"),
        len_field(3, &len_field(1, &object_bytes("user", "ann"))),
        // ContextualizedCaveat { caveat_name = 1, context = 2 } (an empty Struct is present).
        len_field(4, &cat(&[len_field(1, b"on_weekdays"), len_field(2, &[])])),
        // Timestamp { seconds = 1 }.
        len_field(5, &int_field(1, 1_900_000_000)),
    ]);
    // RelationshipUpdate { operation = 1 (OPERATION_TOUCH = 2), relationship = 2 }.
    let update = cat(&[int_field(1, 2), len_field(2, &relationship)]);
    // SubjectFilter { subject_type = 1, optional_subject_id = 2, optional_relation = 3 }.
    let subject_filter = cat(&[
        len_field(1, b"user"),
        len_field(2, b"ann"),
        len_field(3, &[]),
    ]);
    // RelationshipFilter { resource_type = 1, optional_relation = 3,
    // optional_subject_filter = 4, optional_resource_id_prefix = 5 }.
    let filter = cat(&[
        len_field(1, b"doc"),
        len_field(3, b"viewer"),
        len_field(4, &subject_filter),
        len_field(5, b"read"),
    ]);
    // Precondition { operation = 1 (OPERATION_MUST_MATCH = 2), filter = 2 }.
    let precondition = cat(&[int_field(1, 2), len_field(2, &filter)]);
    // WriteRelationshipsRequest { updates = 1, optional_preconditions = 2 }.
    let expected = cat(&[len_field(1, &update), len_field(2, &precondition)]);
    assert_eq!(request.encode_to_vec(), expected);
    assert_eq!(
        WriteRelationshipsRequest::decode(&expected[..]).unwrap(),
        request
    );
}

#[test]
fn check_permission_response_decodes_from_spicedbs_field_numbers() {
    // CheckPermissionResponse { checked_at = 1, permissionship = 2, partial_caveat_info = 3,
    // optional_expires_at = 5 }; PERMISSIONSHIP_CONDITIONAL_PERMISSION = 3.
    let bytes = cat(&[
        len_field(1, &len_field(1, b"GhUKEzE3MDA=")),
        int_field(2, 3),
        len_field(3, &cat(&[len_field(1, b"ip"), len_field(1, b"now")])),
        len_field(5, &int_field(1, 1_700_000_000)),
    ]);
    let response = CheckPermissionResponse::decode(&bytes[..]).unwrap();
    assert_eq!(
        response.checked_at,
        Some(ZedToken {
            token: "GhUKEzE3MDA=".to_string()
        })
    );
    assert_eq!(
        response.permissionship(),
        Permissionship::ConditionalPermission
    );
    assert_eq!(
        response
            .partial_caveat_info
            .unwrap()
            .missing_required_context,
        ["ip", "now"]
    );
    assert_eq!(
        response.optional_expires_at,
        Some(Timestamp {
            seconds: 1_700_000_000,
            nanos: 0
        })
    );
    assert!(response.debug_trace.is_none());

    // PERMISSIONSHIP_HAS_PERMISSION = 2, PERMISSIONSHIP_NO_PERMISSION = 1.
    let has = CheckPermissionResponse::decode(&int_field(2, 2)[..]).unwrap();
    assert_eq!(has.permissionship(), Permissionship::HasPermission);
    let no = CheckPermissionResponse::decode(&int_field(2, 1)[..]).unwrap();
    assert_eq!(no.permissionship(), Permissionship::NoPermission);
}

#[test]
fn services_carry_spicedbs_names() {
    use zanzi::proto::v1::{
        permissions_service_server, schema_service_server, watch_service_server,
    };
    assert_eq!(
        permissions_service_server::SERVICE_NAME,
        "authzed.api.v1.PermissionsService"
    );
    assert_eq!(
        schema_service_server::SERVICE_NAME,
        "authzed.api.v1.SchemaService"
    );
    assert_eq!(
        watch_service_server::SERVICE_NAME,
        "authzed.api.v1.WatchService"
    );
}

#[test]
fn debug_information_uses_spicedbs_field_numbers() {
    use zanzi::proto::v1::{
        caveat_eval_info, check_debug_trace, CaveatEvalInfo, CheckDebugTrace, DebugInformation,
    };
    // DebugInformation { check = 1, schema_used = 2 }; CheckDebugTrace { resource = 1,
    // permission = 2, permission_type = 3, subject = 4, result = 5, oneof resolution
    // { was_cached_result = 6, sub_problems = 7 }, caveat_evaluation_info = 8, duration = 9,
    // optional_expires_at = 10, trace_operation_id = 11, source = 12 }; SubProblems
    // { traces = 1 }; CaveatEvalInfo { expression = 1, result = 2, context = 3,
    // partial_caveat_info = 4, caveat_name = 5 }. PERMISSION_TYPE_RELATION = 1,
    // PERMISSION_TYPE_PERMISSION = 2; PERMISSIONSHIP_HAS_PERMISSION = 2; RESULT_TRUE = 3.
    let subject_bytes = len_field(1, &object_bytes("user", "ann"));
    let leaf = cat(&[
        len_field(1, &object_bytes("doc", "readme")),
        len_field(2, b"viewer"),
        int_field(3, 1),
        len_field(4, &subject_bytes),
        int_field(5, 2),
        int_field(6, 1),
        len_field(12, b"zanzi:cache"),
    ]);
    let caveat = cat(&[len_field(1, b"a"), int_field(2, 3), len_field(5, b"c")]);
    let root = cat(&[
        len_field(1, &object_bytes("doc", "readme")),
        len_field(2, b"view"),
        int_field(3, 2),
        len_field(4, &subject_bytes),
        int_field(5, 2),
        len_field(7, &len_field(1, &leaf)),
        len_field(8, &caveat),
        len_field(9, &int_field(2, 12_000)),
        len_field(10, &int_field(1, 100)),
        len_field(11, b"op"),
        len_field(12, b"zanzi:walk"),
    ]);
    let info_bytes = cat(&[len_field(1, &root), len_field(2, b"definition user {}")]);
    let subject = Some(SubjectReference {
        object: object("user", "ann"),
        optional_relation: String::new(),
    });
    let info = DebugInformation {
        check: Some(CheckDebugTrace {
            resource: object("doc", "readme"),
            permission: "view".to_string(),
            permission_type: check_debug_trace::PermissionType::Permission as i32,
            subject: subject.clone(),
            result: check_debug_trace::Permissionship::HasPermission as i32,
            caveat_evaluation_info: Some(CaveatEvalInfo {
                expression: "a".to_string(),
                result: caveat_eval_info::Result::True as i32,
                context: None,
                partial_caveat_info: None,
                caveat_name: "c".to_string(),
            }),
            duration: Some(prost_types::Duration {
                seconds: 0,
                nanos: 12_000,
            }),
            optional_expires_at: Some(Timestamp {
                seconds: 100,
                nanos: 0,
            }),
            trace_operation_id: "op".to_string(),
            source: "zanzi:walk".to_string(),
            resolution: Some(check_debug_trace::Resolution::SubProblems(
                check_debug_trace::SubProblems {
                    traces: vec![CheckDebugTrace {
                        resource: object("doc", "readme"),
                        permission: "viewer".to_string(),
                        permission_type: check_debug_trace::PermissionType::Relation as i32,
                        subject,
                        result: check_debug_trace::Permissionship::HasPermission as i32,
                        caveat_evaluation_info: None,
                        duration: None,
                        optional_expires_at: None,
                        trace_operation_id: String::new(),
                        source: "zanzi:cache".to_string(),
                        resolution: Some(check_debug_trace::Resolution::WasCachedResult(true)),
                    }],
                },
            )),
        }),
        schema_used: "definition user {}".to_string(),
    };
    assert_eq!(info.encode_to_vec(), info_bytes);
    assert_eq!(DebugInformation::decode(&info_bytes[..]).unwrap(), info);

    // CheckPermissionResponse.debug_trace = 4, CheckBulkPermissionsResponseItem.debug_trace = 3.
    let response = CheckPermissionResponse::decode(&len_field(4, &info_bytes)[..]).unwrap();
    assert_eq!(response.debug_trace, Some(info.clone()));
    let item =
        zanzi::proto::v1::CheckBulkPermissionsResponseItem::decode(&len_field(3, &info_bytes)[..])
            .unwrap();
    assert_eq!(item.debug_trace, Some(info));
    // CheckPermissionRequest.with_tracing = 6 (above), CheckBulkPermissionsRequest.with_tracing = 3.
    let bulk = zanzi::proto::v1::CheckBulkPermissionsRequest::decode(&int_field(3, 1)[..]).unwrap();
    assert!(bulk.with_tracing);
}
