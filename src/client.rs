//! A blocking client for a running zanzi's HTTP API, used by the CLI (`--endpoint`).

use std::io::{BufRead, BufReader};

use serde_json::{json, Value};

use crate::api::service::IMPORT_MODE_HEADER;
use crate::api::trace::{self, WireDebugInformation};
use crate::api::wire::WireRelationship;
use crate::engine::CheckTrace;
use crate::filter::RelationshipFilter;
use crate::transaction::{ImportMode, Update, UpdateOp};
use crate::tuple::{Relationship, SubjectRef};

/// Why a call failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The endpoint is not an address this client can use.
    #[error("invalid endpoint `{endpoint}`: {reason}")]
    Endpoint {
        /// What was given.
        endpoint: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The server could not be reached or the connection broke.
    #[error("cannot reach {endpoint}: {reason}")]
    Transport {
        /// The server.
        endpoint: String,
        /// The failure, as the transport said it.
        reason: String,
    },
    /// An import stored nothing; `item` is the position (from 0) of the relationship at
    /// fault, when the server named one.
    #[error("{message}")]
    Import {
        /// The relationship's position in the import.
        item: Option<u64>,
        /// The server's message.
        message: String,
    },
    /// The caller stopped a streamed read.
    #[error("stopped")]
    Stopped,
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

/// The base URL of an endpoint given as `host:port`, `host` (port 8443) or an `http://` URL.
pub fn endpoint_url(endpoint: &str) -> Result<String, ClientError> {
    let invalid = |reason: &str| ClientError::Endpoint {
        endpoint: endpoint.to_string(),
        reason: reason.to_string(),
    };
    let text = endpoint.trim().trim_end_matches('/');
    let (scheme, rest) = match text.split_once("://") {
        Some((scheme, rest)) => (scheme.to_ascii_lowercase(), rest),
        None => ("http".to_string(), text),
    };
    match scheme.as_str() {
        "http" => {}
        "https" => {
            return Err(invalid(
                "this client speaks plain HTTP only; give the server's HTTP address (`host:port`)",
            ))
        }
        other => {
            return Err(invalid(&format!(
                "unknown scheme `{other}`: give `host:port` or an `http://` URL"
            )))
        }
    }
    let authority = rest.split('/').next().unwrap_or_default();
    if authority.is_empty() || authority.contains(char::is_whitespace) {
        return Err(invalid("expected `host:port`, e.g. `127.0.0.1:8443`"));
    }
    let (host, port) = if authority.starts_with('[') {
        match authority.find(']') {
            Some(end) => (&authority[..=end], authority[end + 1..].strip_prefix(':')),
            None => return Err(invalid("an IPv6 address needs its closing `]`")),
        }
    } else {
        match authority.rsplit_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (authority, None),
        }
    };
    if host.is_empty() {
        return Err(invalid("expected `host:port`, e.g. `127.0.0.1:8443`"));
    }
    let port = match port {
        Some(port) => port
            .parse::<u16>()
            .map_err(|_| invalid("the port must be a number from 0 to 65535"))?,
        None => 8443,
    };
    let path = &rest[authority.len()..];
    Ok(format!("http://{host}:{port}{path}"))
}

impl Client {
    /// A client for `endpoint` (`host:port`, or an `http://` URL) presenting `key`.
    pub fn connect(endpoint: &str, key: &str) -> Result<Self, ClientError> {
        Ok(Self::new(&endpoint_url(endpoint)?, key))
    }

    /// A client for the base URL `endpoint` (e.g. `http://127.0.0.1:8443`) presenting `key`.
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
            .map_err(|source| self.unreachable(&source))?;
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

    fn unreachable(&self, error: &ureq::Error) -> ClientError {
        let reason = match error {
            ureq::Error::Io(io) if io.kind() == std::io::ErrorKind::ConnectionRefused => {
                "connection refused (is a zanzi server listening there? `zanzi serve` prints its HTTP address)".to_string()
            }
            other => other.to_string(),
        };
        ClientError::Transport {
            endpoint: self.endpoint.clone(),
            reason,
        }
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
        context: &serde_json::Map<String, Value>,
    ) -> Result<Vec<(String, String)>, ClientError> {
        let mut out = Vec::new();
        self.stream(
            "/v1/permissions/resources",
            &json!({"resourceObjectType": resource_type, "permission": permission, "subject": subject(who), "context": context}),
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
        context: &serde_json::Map<String, Value>,
    ) -> Result<Vec<(String, String)>, ClientError> {
        let mut out = Vec::new();
        self.stream(
            "/v1/permissions/subjects",
            &json!({
                "resource": {"objectType": resource.object_type, "objectId": resource.object_id},
                "permission": permission,
                "subjectObjectType": subject_type,
                "context": context,
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

    /// Stores relationships as one atomic import (CREATE or TOUCH); returns how many were
    /// loaded. A refused import is [`ClientError::Import`], naming the relationship at fault.
    pub fn import(
        &self,
        relationships: &[Relationship],
        mode: ImportMode,
    ) -> Result<u64, ClientError> {
        let wire: Vec<WireRelationship> = relationships
            .iter()
            .map(WireRelationship::from_domain)
            .collect();
        let mode = match mode {
            ImportMode::Create => "create",
            ImportMode::Touch => "touch",
        };
        let response = self
            .agent
            .post(&format!("{}/v1/relationships/importbulk", self.endpoint))
            .header("Authorization", &format!("Bearer {}", self.key))
            .header(IMPORT_MODE_HEADER, mode)
            .send_json(json!({ "relationships": wire }))
            .map_err(|source| self.unreachable(&source))?;
        let status = response.status().as_u16();
        let mut response = response;
        let answer: Value = response
            .body_mut()
            .read_json()
            .map_err(|e| ClientError::Decode(e.to_string()))?;
        if status >= 400 {
            let message = answer["message"].as_str().unwrap_or_default().to_string();
            let item = error_metadata(&answer, "import_item").and_then(|i| i.parse().ok());
            if status == 413 {
                return Err(ClientError::Api {
                    status,
                    message: format!("{message} (import in batches with --batch N)"),
                });
            }
            return Err(ClientError::Import { item, message });
        }
        Ok(answer["numLoaded"]
            .as_str()
            .and_then(|s| s.parse().ok())
            .unwrap_or(0))
    }

    /// The expand tree of `resource#permission`, in its wire form (`treeRoot`).
    pub fn expand(
        &self,
        resource: &crate::tuple::ObjectRef,
        permission: &str,
    ) -> Result<Value, ClientError> {
        let mut answer = self.call(
            "/v1/permissions/expand",
            &json!({
                "resource": {"objectType": resource.object_type, "objectId": resource.object_id},
                "permission": permission,
            }),
        )?;
        Ok(answer["treeRoot"].take())
    }

    /// Follows the server's watch stream from `since` (a ZedToken; none: from now), for
    /// resources of `types` (none: all), handing each message to `each` until it answers
    /// `false` or the server ends the stream.
    pub fn watch(
        &self,
        since: Option<&str>,
        types: &[String],
        mut each: impl FnMut(WatchMessage) -> bool,
    ) -> Result<(), ClientError> {
        let mut body = json!({ "optionalObjectTypes": types });
        if let Some(token) = since {
            body["optionalStartCursor"] = json!({ "token": token });
        }
        let outcome = self.stream("/v1/watch", &body, |result| {
            let through = result["changesThrough"]["token"]
                .as_str()
                .unwrap_or_default()
                .to_string();
            let message = if result["isCheckpoint"].as_bool() == Some(true) {
                WatchMessage::Checkpoint { through }
            } else {
                let changes = result["updates"]
                    .as_array()
                    .cloned()
                    .unwrap_or_default()
                    .into_iter()
                    .map(|mut update| {
                        let op = match update["operation"].as_str() {
                            Some("OPERATION_DELETE") => "DELETE",
                            Some("OPERATION_CREATE") => "CREATE",
                            _ => "TOUCH",
                        };
                        Ok((op, decode_relationship(update["relationship"].take())?))
                    })
                    .collect::<Result<Vec<_>, ClientError>>()?;
                WatchMessage::Changes { changes, through }
            };
            if each(message) {
                Ok(())
            } else {
                Err(ClientError::Stopped)
            }
        });
        match outcome {
            Err(ClientError::Stopped) => Ok(()),
            other => other,
        }
    }

    /// Every relationship, page by page. An export that runs past the server's request
    /// deadline resumes from the cursor of the last page it got (all at the first page's
    /// revision, which the cursor carries).
    pub fn export(
        &self,
        mut each: impl FnMut(Vec<Relationship>) -> Result<(), ClientError>,
    ) -> Result<(), ClientError> {
        let mut cursor: Option<Value> = None;
        loop {
            let body = match &cursor {
                Some(cursor) => json!({ "optionalCursor": cursor }),
                None => json!({}),
            };
            let mut progressed = false;
            let outcome = self.stream("/v1/relationships/exportbulk", &body, |mut result| {
                let page = result["relationships"]
                    .as_array()
                    .cloned()
                    .unwrap_or_default()
                    .into_iter()
                    .map(decode_relationship)
                    .collect::<Result<Vec<_>, _>>()?;
                each(page)?;
                if let Some(next) = result.get_mut("afterResultCursor").map(Value::take) {
                    if !next.is_null() {
                        cursor = Some(next);
                        progressed = true;
                    }
                }
                Ok(())
            });
            match outcome {
                // The stream's last line says the deadline stopped it: go on from the last
                // page (a stream that stopped before its first page fails as it is).
                Err(ClientError::Api {
                    status: 200,
                    message,
                }) if progressed && message.contains("deadline") => {}
                other => return other,
            }
        }
    }
}

/// One message of a watch stream.
#[derive(Debug, Clone)]
pub enum WatchMessage {
    /// Changes (operation name and relationship), and the ZedToken they bring the stream to.
    Changes {
        /// `TOUCH`, `CREATE` or `DELETE`, with the relationship.
        changes: Vec<(&'static str, Relationship)>,
        /// The token to resume after.
        through: String,
    },
    /// Nothing new through this token.
    Checkpoint {
        /// The token to resume after.
        through: String,
    },
}

/// A metadata value of the `google.rpc.ErrorInfo` in an error answer's `details`.
fn error_metadata(answer: &Value, key: &str) -> Option<String> {
    answer["details"]
        .as_array()?
        .iter()
        .find_map(|detail| detail["metadata"][key].as_str().map(str::to_string))
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
