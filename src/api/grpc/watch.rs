//! `authzed.api.v1.WatchService`: the write log after a ZedToken, as SpiceDB streams it
//! (relationship updates per revision; checkpoints only when asked for).

use std::sync::Arc;
use std::time::Duration;

use futures_util::stream;
use tonic::{Request, Response, Status};

use super::convert;
use super::permissions::AnswerStream;
use crate::api::error::ApiError;
use crate::api::service::{changes_through, Service, WatchEvent};
use crate::proto::v1;
use crate::proto::v1::watch_service_server::WatchService;
use crate::transaction::UpdateOp;
use crate::tuple::Relationship;

/// The WatchService implementation.
#[derive(Debug, Clone)]
pub struct WatchApi {
    service: Arc<Service>,
    checkpoint: Duration,
    shutdown: tokio::sync::watch::Receiver<bool>,
}

impl WatchApi {
    /// The service over the shared implementation.
    pub fn new(
        service: Arc<Service>,
        checkpoint: Duration,
        shutdown: tokio::sync::watch::Receiver<bool>,
    ) -> Self {
        Self {
            service,
            checkpoint,
            shutdown,
        }
    }
}

fn operation(op: UpdateOp) -> v1::relationship_update::Operation {
    use v1::relationship_update::Operation;
    match op {
        UpdateOp::Create => Operation::Create,
        UpdateOp::Touch => Operation::Touch,
        UpdateOp::Delete => Operation::Delete,
    }
}

#[tonic::async_trait]
impl WatchService for WatchApi {
    type WatchStream = AnswerStream<v1::WatchResponse>;

    async fn watch(
        &self,
        request: Request<v1::WatchRequest>,
    ) -> Result<Response<Self::WatchStream>, Status> {
        let request = request.into_inner();
        let mut checkpoints = false;
        for (i, kind) in request.optional_update_kinds.iter().enumerate() {
            match v1::WatchKind::try_from(*kind) {
                Ok(v1::WatchKind::IncludeCheckpoints) => checkpoints = true,
                Ok(
                    v1::WatchKind::Unspecified
                    | v1::WatchKind::IncludeRelationshipUpdates
                    | v1::WatchKind::IncludeSchemaUpdates,
                ) => {}
                Err(_) => {
                    return Err(ApiError::invalid(format!(
                        "optionalUpdateKinds[{i}]: unknown watch kind `{kind}`"
                    ))
                    .into())
                }
            }
        }
        let filters = request
            .optional_relationship_filters
            .iter()
            .map(|f| convert::filter(Some(f), false))
            .collect::<Result<Vec<_>, _>>()?;
        let start = self.service.watch_start(
            request
                .optional_start_cursor
                .as_ref()
                .map(|t| t.token.as_str()),
        )?;
        let types = request.optional_object_types;
        let keep = move |rel: &Relationship| {
            (types.is_empty() || types.contains(&rel.resource.object_type))
                && (filters.is_empty() || filters.iter().any(|f| f.matches(rel)))
        };
        let events = self
            .service
            .watch(start, self.checkpoint, self.shutdown.clone());
        let service = Arc::clone(&self.service);
        let answers = stream::unfold(
            (events, service, keep),
            move |(mut events, service, keep)| async move {
                loop {
                    let answer = match events.recv().await? {
                        Err(err) => Err(Status::from(err)),
                        Ok(WatchEvent::Checkpoint(revision)) => {
                            if !checkpoints {
                                continue;
                            }
                            Ok(v1::WatchResponse {
                                changes_through: Some(v1::ZedToken {
                                    token: service.token(revision),
                                }),
                                is_checkpoint: true,
                                ..v1::WatchResponse::default()
                            })
                        }
                        Ok(WatchEvent::Changes {
                            revision,
                            changes,
                            partial,
                        }) => {
                            let updates: Vec<v1::RelationshipUpdate> = changes
                                .iter()
                                .filter(|c| keep(&c.relationship))
                                .map(|c| v1::RelationshipUpdate {
                                    operation: operation(c.op) as i32,
                                    relationship: Some(convert::to_relationship(&c.relationship)),
                                })
                                .collect();
                            if updates.is_empty() {
                                continue;
                            }
                            Ok(v1::WatchResponse {
                                updates,
                                changes_through: Some(v1::ZedToken {
                                    token: service.token(changes_through(revision, partial)),
                                }),
                                ..v1::WatchResponse::default()
                            })
                        }
                    };
                    return Some((answer, (events, service, keep)));
                }
            },
        );
        Ok(Response::new(Box::pin(answers)))
    }
}
