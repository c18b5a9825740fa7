//! A blocking client for a running zanzi's HTTP API, used by the CLI (`--endpoint`).

use std::io::{BufRead, BufReader};

use serde_json::{json, Value};

use crate::api::trace::{self, WireDebugInformation};
use crate::api::wire::WireRelationship;
use crate::engine::CheckTrace;
use crate::filter::RelationshipFilter;
use crate::transaction::{Update, UpdateOp};
use crate::tuple::{Relationship, SubjectRef};

/// Why a call failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The server could not be reached or the connection broke.
    #[error("cannot reach {endpoint}: {source}")]
    Transport {
        /// The server.
        endpoint: String,
        /// The failure.
        source: Box<ureq::Error>,
    },
    /// The server answered with an error.
    #[error("server answered {status}: {message}")]
    Api {
        /// HTTP status.
        status: u16,
        /// The error message.
        message: String,
    },
    /// The answer could not be understood.
    #[error("unexpected answer: {0}")]
    Decode(String),
}

/// A connection to one server with one preshared key.
#[derive(Debug, Clone)]
pub struct Client {
    endpoint: String,
    key: String,
    agent: ureq::Agent,
}

fn wire_filter(filter: &RelationshipFilter) -> Value {
    let subject = filter.subject.as_ref().map(|s| {
        let mut value = json!({
            "subjectType": s.subject_type,
            "optionalSubjectId": s.subject_id.clone().unwrap_or_default(),
        });
        if let Some(relation) = &s.relation {
            value["optionalRelation"] = json!({"relation": relation.clone().unwrap_or_default()});
        }
        value
    });
    let mut value = json!({
        "resourceType": filter.resource_type.clone().unwrap_or_default(),
        "optionalResourceId": filter.resource_id.clone().unwrap_or_default(),
        "optionalResourceIdPrefix": filter.resource_id_prefix.clone().unwrap_or_default(),
        "optionalRelation": filter.relation.clone().unwrap_or_default(),
    });
    if let Some(subject) = subject {
        value["optionalSubjectFilter"] = subject;
    }
    value
}

impl Client {
    /// A client for `endpoint` (e.g. `http://127.0.0.1:8443`) presenting `key`.
    pub fn new(endpoint: &str, key: &str) -> Self {
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .build()
            .into();
        Self {
            endpoint: endpoint.trim_end_matches('/').to_string(),
            key: key.to_string(),
            agent,
        }
    }

    fn post(
        &self,
        path: &str,
        body: &Value,
    ) -> Result<ureq::http::Response<ureq::Body>, ClientError> {
        let response = self
            .agent
            .post(&format!("{}{path}", self.endpoint))
            .header("Authorization", &format!("Bearer {}", self.key))
            .send_json(body)
            .map_err(|source| ClientError::Transport {
                endpoint: self.endpoint.clone(),
                source: Box::new(source),
            })?;
        let status = response.status().as_u16();
        if status >= 400 {
            let mut response = response;
            let text = response.body_mut().read_to_string().unwrap_or_default();
            let message = serde_json::from_str::<Value>(&text)
                .ok()
                .and_then(|v| v["message"].as_str().map(str::to_string))
                .unwrap_or(text);
            return Err(ClientError::Api { status, message });
        }
        Ok(response)
    }

    fn call(&self, path: &str, body: &Value) -> Result<Value, ClientError> {
        let mut response = self.post(path, body)?;
        response
            .body_mut()
            .with_config()
            .limit(1 << 30)
            .read_json()
            .map_err(|e| ClientError::Decode(e.to_string()))
    }

    /// Calls a streaming endpoint, handing each `result` object to `each`.
    fn stream(
        &self,
        path: &str,
        body: &Value,
        mut each: impl FnMut(Value) -> Result<(), ClientError>,
    ) -> Result<(), ClientError> {
        let response = self.post(path, body)?;
        let reader = BufReader::new(response.into_body().into_reader());
        for line in reader.lines() {
            let line = line.map_err(|e| ClientError::Decode(e.to_string()))?;
            if line.trim().is_empty() {
                continue;
            }
            let mut value: Value =
                serde_json::from_str(&line).map_err(|e| ClientError::Decode(e.to_string()))?;
            if let Some(error) = value.get("error") {
                return Err(ClientError::Api {
                    status: 200,
                    message: error["message"]
                        .as_str()
                        .unwrap_or("stream error")
                        .to_string(),
                });
            }
            each(value["result"].take())?;
        }
        Ok(())
    }

    /// The schema text.
    pub fn read_schema(&self) -> Result<String, ClientError> {
        let answer = self.call("/v1/schema/read", &json!({}))?;
        answer["schemaText"]
            .as_str()
            .map(str::to_string)
            .ok_or_else(|| ClientError::Decode("no schemaText".into()))
    }

    /// Writes a schema; returns the ZedToken.
    pub fn write_schema(&self, text: &str) -> Result<String, ClientError> {
        let answer = self.call("/v1/schema/write", &json!({ "schema": text }))?;
        Ok(answer["writtenAt"]["token"]
            .as_str()
            .unwrap_or_default()
            .to_string())
    }

    /// Applies updates atomically; returns the ZedToken.
    pub fn write(&self, updates: &[Update]) -> Result<String, ClientError> {
        let updates: Vec<Value> = updates
            .iter()
            .map(|u| {
                let operation = match u.op {
                    UpdateOp::Create => "OPERATION_CREATE",
                    UpdateOp::Touch => "OPERATION_TOUCH",
                    UpdateOp::Delete => "OPERATION_DELETE",
                };
                json!({"operation": operation, "relationship": WireRelationship::from_domain(&u.relationship)})
            })
            .collect();
        let answer = self.call("/v1/relationships/write", &json!({ "updates": updates }))?;
        Ok(answer["writtenAt"]["token"]
            .as_str()
            .unwrap_or_default()
            .to_string())
    }

    /// Deletes by filter; returns how many were deleted.
    pub fn delete(&self, filter: &RelationshipFilter) -> Result<u64, ClientError> {
        let answer = self.call(
            "/v1/relationships/delete",
            &json!({ "relationshipFilter": wire_filter(filter) }),
        )?;
        Ok(answer["relationshipsDeletedCount"]
            .as_str()
            .and_then(|s| s.parse().ok())
            .unwrap_or(0))
    }

    /// Relationships matching `filter`.
    pub fn read(&self, filter: &RelationshipFilter) -> Result<Vec<Relationship>, ClientError> {
        let mut out = Vec::new();
        self.stream(
            "/v1/relationships/read",
            &json!({ "relationshipFilter": wire_filter(filter) }),
            |result| {
                out.push(decode_relationship(result["relationship"].clone())?);
                Ok(())
            },
        )?;
        Ok(out)
    }

    /// A check: the `PERMISSIONSHIP_...` string and, for a conditional answer, what is missing.
    pub fn check(
        &self,
        relationship: &Relationship,
        context: &serde_json::Map<String, Value>,
    ) -> Result<(String, Vec<String>), ClientError> {
        let answer = self.call_check(relationship, context, false)?;
        Ok(check_answer(&answer))
    }

    /// A traced check: the `PERMISSIONSHIP_...` string, what a conditional answer misses, and
    /// the trace of the server's walk (read back from SpiceDB's `debugTrace` message).
    pub fn check_traced(
        &self,
        relationship: &Relationship,
        context: &serde_json::Map<String, Value>,
    ) -> Result<(String, Vec<String>, CheckTrace), ClientError> {
        let mut answer = self.call_check(relationship, context, true)?;
        let info: WireDebugInformation = serde_json::from_value(answer["debugTrace"].take())
            .map_err(|e| ClientError::Decode(format!("debugTrace: {e}")))?;
        let trace = trace::from_json(&info).map_err(|e| ClientError::Decode(e.message))?;
        let (permissionship, missing) = check_answer(&answer);
        Ok((permissionship, missing, trace))
    }

    fn call_check(
        &self,
        relationship: &Relationship,
        context: &serde_json::Map<String, Value>,
        with_tracing: bool,
    ) -> Result<Value, ClientError> {
        self.call(
            "/v1/permissions/check",
            &json!({
                "resource": {"objectType": relationship.resource.object_type, "objectId": relationship.resource.object_id},
                "permission": relationship.relation,
                "subject": subject(&relationship.subject),
                "context": context,
                "withTracing": with_tracing,
            }),
        )
    }

    /// Resource ids of `resource_type` the subject has `permission` on (with conditional ones
    /// marked by their permissionship string).
    pub fn lookup_resources(
        &self,
        resource_type: &str,
        permission: &str,
        who: &SubjectRef,
    ) -> Result<Vec<(String, String)>, ClientError> {
        let mut out = Vec::new();
        self.stream(
            "/v1/permissions/resources",
            &json!({"resourceObjectType": resource_type, "permission": permission, "subject": subject(who)}),
            |result| {
                out.push((
                    result["resourceObjectId"].as_str().unwrap_or_default().to_string(),
                    result["permissionship"].as_str().unwrap_or_default().to_string(),
                ));
                Ok(())
            },
        )?;
        Ok(out)
    }

    /// Subject ids of `subject_type` with `permission` on `resource`.
    pub fn lookup_subjects(
        &self,
        resource: &crate::tuple::ObjectRef,
        permission: &str,
        subject_type: &str,
    ) -> Result<Vec<(String, String)>, ClientError> {
        let mut out = Vec::new();
        self.stream(
            "/v1/permissions/subjects",
            &json!({
                "resource": {"objectType": resource.object_type, "objectId": resource.object_id},
                "permission": permission,
                "subjectObjectType": subject_type,
            }),
            |result| {
                out.push((
                    result["subject"]["subjectObjectId"]
                        .as_str()
                        .unwrap_or_default()
                        .to_string(),
                    result["subject"]["permissionship"]
                        .as_str()
                        .unwrap_or_default()
                        .to_string(),
                ));
                Ok(())
            },
        )?;
        Ok(out)
    }

    /// Creates relationships in one atomic import; returns how many were loaded.
    pub fn import(&self, relationships: &[Relationship]) -> Result<u64, ClientError> {
        let wire: Vec<WireRelationship> = relationships
            .iter()
            .map(WireRelationship::from_domain)
            .collect();
        let answer = self.call(
            "/v1/relationships/importbulk",
            &json!({ "relationships": wire }),
        )?;
        Ok(answer["numLoaded"]
            .as_str()
            .and_then(|s| s.parse().ok())
            .unwrap_or(0))
    }

    /// Every relationship, page by page.
    pub fn export(
        &self,
        mut each: impl FnMut(Vec<Relationship>) -> Result<(), ClientError>,
    ) -> Result<(), ClientError> {
        self.stream("/v1/relationships/exportbulk", &json!({}), |result| {
            let page = result["relationships"]
                .as_array()
                .cloned()
                .unwrap_or_default()
                .into_iter()
                .map(decode_relationship)
                .collect::<Result<Vec<_>, _>>()?;
            each(page)
        })
    }
}

fn subject(who: &SubjectRef) -> Value {
    json!({
        "object": {"objectType": who.object.object_type, "objectId": who.object.object_id},
        "optionalRelation": who.relation.clone().unwrap_or_default(),
    })
}

fn decode_relationship(value: Value) -> Result<Relationship, ClientError> {
    let wire: WireRelationship =
        serde_json::from_value(value).map_err(|e| ClientError::Decode(e.to_string()))?;
    wire.to_domain().map_err(|e| ClientError::Decode(e.message))
}

/// A filter on the wire (for callers composing requests by hand).
pub fn filter_json(filter: &RelationshipFilter) -> Value {
    wire_filter(filter)
}

/// A check answer's `PERMISSIONSHIP_...` string and, when conditional, the missing parameters.
fn check_answer(answer: &Value) -> (String, Vec<String>) {
    let missing = answer["partialCaveatInfo"]["missingRequiredContext"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    let permissionship = answer["permissionship"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    (permissionship, missing)
}
