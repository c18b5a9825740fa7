//! `authzed.api.v1.PermissionsService` over the shared [`Service`]: checks, expand, lookups,
//! relationship reads, writes, deletes, and bulk import and export.

use std::pin::Pin;
use std::sync::Arc;

use futures_util::stream::{self, Stream, StreamExt};
use tonic::{Request, Response, Status, Streaming};

use super::{convert, trace};
use super::{limit, required};
use crate::api::error::ApiError;
use crate::api::service::{
    BulkItem, Cursor, CursorBinding, LookupResources, LookupSubjects, Paged, Service,
};
use crate::proto::google::rpc;
use crate::proto::v1;
use crate::proto::v1::permissions_service_server::PermissionsService;
use crate::revision::{Consistency, Revision};
use crate::tuple::{Relationship, WILDCARD_ID};

/// A streamed answer.
pub type AnswerStream<T> = Pin<Box<dyn Stream<Item = Result<T, Status>> + Send + 'static>>;

/// Relationships read from the store per page of a streamed read.
const READ_PAGE: usize = 1_000;

/// The PermissionsService implementation.
#[derive(Debug, Clone)]
pub struct Permissions {
    service: Arc<Service>,
}

impl Permissions {
    /// The service over the shared implementation.
    pub fn new(service: Arc<Service>) -> Self {
        Self { service }
    }

    fn token(&self, revision: Revision) -> Option<v1::ZedToken> {
        Some(v1::ZedToken {
            token: self.service.token(revision),
        })
    }

    fn consistency(
        &self,
        consistency: Option<&v1::Consistency>,
        cursor: Option<&Cursor>,
    ) -> Result<Consistency, ApiError> {
        self.service
            .consistency(&convert::requested(consistency), cursor)
    }

    /// The consistency of a paged read and the relationship it resumes after.
    fn resume_read(
        &self,
        binding: &CursorBinding,
        consistency: Option<&v1::Consistency>,
        cursor: Option<&v1::Cursor>,
    ) -> Result<(Consistency, Option<Relationship>), ApiError> {
        let cursor = decode_cursor(binding, cursor)?;
        let consistency = self.consistency(consistency, cursor.as_ref())?;
        let after = cursor
            .as_ref()
            .map(|c| Relationship::parse(&c.after))
            .transpose()
            .map_err(|_| ApiError::invalid("malformed cursor"))?;
        Ok((consistency, after))
    }

    /// A streamed relationship read, one item per page of the store read.
    fn read_pages<T: Send + 'static>(
        &self,
        consistency: Consistency,
        filter: crate::filter::RelationshipFilter,
        after: Option<Relationship>,
        limit: Option<usize>,
        answer: impl Fn(&Service, Revision, Vec<Relationship>) -> Vec<T> + Send + 'static,
    ) -> Result<AnswerStream<T>, ApiError> {
        let pages = self
            .service
            .read_stream(consistency, filter, after, limit, READ_PAGE)?;
        let service = Arc::clone(&self.service);
        let pages = stream::unfold(pages, |mut pages| async move {
            pages.recv().await.map(|page| (page, pages))
        });
        Ok(Box::pin(pages.flat_map(move |page| {
            let items: Vec<Result<T, Status>> = match page {
                Ok(page) => answer(&service, page.revision, page.relationships)
                    .into_iter()
                    .map(Ok)
                    .collect(),
                Err(err) => vec![Err(err.into())],
            };
            stream::iter(items)
        })))
    }
}

fn decode_cursor(
    binding: &CursorBinding,
    cursor: Option<&v1::Cursor>,
) -> Result<Option<Cursor>, ApiError> {
    binding.decode(cursor.map(|c| c.token.as_str()))
}

fn encode_cursor(binding: &CursorBinding, revision: Revision, after: &str) -> Option<v1::Cursor> {
    Some(v1::Cursor {
        token: binding.encode(revision, after),
    })
}

/// Prefixes an item's error with its place in the request (`updates[2]: ...`).
fn at(i: usize, what: &'static str) -> impl Fn(ApiError) -> ApiError {
    move |e: ApiError| ApiError {
        message: format!("{what}[{i}]: {}", e.message),
        ..e
    }
}

#[tonic::async_trait]
impl PermissionsService for Permissions {
    type ReadRelationshipsStream = AnswerStream<v1::ReadRelationshipsResponse>;
    type LookupResourcesStream = AnswerStream<v1::LookupResourcesResponse>;
    type LookupSubjectsStream = AnswerStream<v1::LookupSubjectsResponse>;
    type ExportBulkRelationshipsStream = AnswerStream<v1::ExportBulkRelationshipsResponse>;

    async fn read_relationships(
        &self,
        request: Request<v1::ReadRelationshipsRequest>,
    ) -> Result<Response<Self::ReadRelationshipsStream>, Status> {
        let request = request.into_inner();
        let filter = convert::filter(request.relationship_filter.as_ref(), true)?;
        let binding = self.service.cursor_binding(Paged::Read(&filter));
        let (consistency, after) = self.resume_read(
            &binding,
            request.consistency.as_ref(),
            request.optional_cursor.as_ref(),
        )?;
        Ok(Response::new(self.read_pages(
            consistency,
            filter,
            after,
            limit(request.optional_limit),
            move |service, revision, relationships| {
                let read_at = Some(v1::ZedToken {
                    token: service.token(revision),
                });
                relationships
                    .iter()
                    .map(|rel| v1::ReadRelationshipsResponse {
                        read_at: read_at.clone(),
                        relationship: Some(convert::to_relationship(rel)),
                        after_result_cursor: encode_cursor(&binding, revision, &rel.to_string()),
                    })
                    .collect()
            },
        )?))
    }

    async fn write_relationships(
        &self,
        request: Request<v1::WriteRelationshipsRequest>,
    ) -> Result<Response<v1::WriteRelationshipsResponse>, Status> {
        let request = request.into_inner();
        let updates = request
            .updates
            .iter()
            .enumerate()
            .map(|(i, u)| convert::update(u).map_err(at(i, "updates")))
            .collect::<Result<Vec<_>, _>>()?;
        let preconditions = request
            .optional_preconditions
            .iter()
            .enumerate()
            .map(|(i, p)| convert::precondition(p).map_err(at(i, "optionalPreconditions")))
            .collect::<Result<Vec<_>, _>>()?;
        let revision = self.service.write(updates, preconditions).await?;
        Ok(Response::new(v1::WriteRelationshipsResponse {
            written_at: self.token(revision),
        }))
    }

    async fn delete_relationships(
        &self,
        request: Request<v1::DeleteRelationshipsRequest>,
    ) -> Result<Response<v1::DeleteRelationshipsResponse>, Status> {
        use v1::delete_relationships_response::DeletionProgress;
        let request = request.into_inner();
        let filter = convert::filter(request.relationship_filter.as_ref(), true)?;
        let preconditions = request
            .optional_preconditions
            .iter()
            .enumerate()
            .map(|(i, p)| convert::precondition(p).map_err(at(i, "optionalPreconditions")))
            .collect::<Result<Vec<_>, _>>()?;
        let outcome = self
            .service
            .delete(
                filter,
                preconditions,
                limit(request.optional_limit),
                request.optional_allow_partial_deletions,
            )
            .await?;
        let progress = if outcome.partial {
            DeletionProgress::Partial
        } else {
            DeletionProgress::Complete
        };
        Ok(Response::new(v1::DeleteRelationshipsResponse {
            deleted_at: self.token(outcome.revision),
            deletion_progress: progress as i32,
            relationships_deleted_count: outcome.deleted as u64,
        }))
    }

    async fn check_permission(
        &self,
        request: Request<v1::CheckPermissionRequest>,
    ) -> Result<Response<v1::CheckPermissionResponse>, Status> {
        let request = request.into_inner();
        let consistency = self.consistency(request.consistency.as_ref(), None)?;
        let resource = convert::object(request.resource.as_ref(), "resource")?;
        let permission = required(request.permission, "permission")?;
        let subject = convert::subject(request.subject.as_ref(), "subject")?;
        let context = convert::context(request.context.as_ref());
        let (result, debug_trace) = if request.with_tracing {
            let traced = self
                .service
                .check_traced(consistency, resource, permission, subject, context)
                .await?;
            (traced.result, Some(trace::to_proto(&traced.trace)))
        } else {
            let result = self
                .service
                .check(consistency, resource, permission, subject, context)
                .await?;
            (result, None)
        };
        Ok(Response::new(v1::CheckPermissionResponse {
            checked_at: self.token(result.revision),
            permissionship: convert::check_permissionship(&result.permissionship) as i32,
            partial_caveat_info: convert::partial_caveat_info(&result.permissionship),
            debug_trace,
            optional_expires_at: None,
        }))
    }

    async fn check_bulk_permissions(
        &self,
        request: Request<v1::CheckBulkPermissionsRequest>,
    ) -> Result<Response<v1::CheckBulkPermissionsResponse>, Status> {
        let request = request.into_inner();
        let consistency = self.consistency(request.consistency.as_ref(), None)?;
        let items = request
            .items
            .iter()
            .enumerate()
            .map(|(i, item)| {
                let at = at(i, "items");
                Ok(BulkItem {
                    resource: convert::object(item.resource.as_ref(), "resource").map_err(&at)?,
                    permission: required(item.permission.clone(), "permission").map_err(&at)?,
                    subject: convert::subject(item.subject.as_ref(), "subject").map_err(&at)?,
                    context: convert::context(item.context.as_ref()),
                })
            })
            .collect::<Result<Vec<_>, ApiError>>()?;
        let (answers, revision) = self
            .service
            .check_bulk(consistency, items, request.with_tracing)
            .await?;
        let pairs = request
            .items
            .into_iter()
            .zip(answers)
            .map(|(item, answer)| {
                use v1::check_bulk_permissions_pair::Response as Pair;
                let response = match answer {
                    Ok(answer) => Pair::Item(v1::CheckBulkPermissionsResponseItem {
                        permissionship: convert::check_permissionship(&answer.permissionship)
                            as i32,
                        partial_caveat_info: convert::partial_caveat_info(&answer.permissionship),
                        debug_trace: answer.trace.as_ref().map(trace::to_proto),
                    }),
                    Err(err) => Pair::Error(rpc::Status {
                        code: i32::from(err.code.number()),
                        message: err.message,
                        details: Vec::new(),
                    }),
                };
                v1::CheckBulkPermissionsPair {
                    request: Some(item),
                    response: Some(response),
                }
            })
            .collect();
        Ok(Response::new(v1::CheckBulkPermissionsResponse {
            checked_at: self.token(revision),
            pairs,
        }))
    }

    async fn expand_permission_tree(
        &self,
        request: Request<v1::ExpandPermissionTreeRequest>,
    ) -> Result<Response<v1::ExpandPermissionTreeResponse>, Status> {
        let request = request.into_inner();
        let consistency = self.consistency(request.consistency.as_ref(), None)?;
        let resource = convert::object(request.resource.as_ref(), "resource")?;
        let permission = required(request.permission, "permission")?;
        let (tree, revision) = self
            .service
            .expand(consistency, resource, permission)
            .await?;
        Ok(Response::new(v1::ExpandPermissionTreeResponse {
            expanded_at: self.token(revision),
            tree_root: Some(convert::to_tree(&tree)),
        }))
    }

    async fn lookup_resources(
        &self,
        request: Request<v1::LookupResourcesRequest>,
    ) -> Result<Response<Self::LookupResourcesStream>, Status> {
        let request = request.into_inner();
        let query = LookupResources {
            resource_type: required(request.resource_object_type, "resourceObjectType")?,
            permission: required(request.permission, "permission")?,
            subject: convert::subject(request.subject.as_ref(), "subject")?,
            context: convert::context(request.context.as_ref()),
        };
        let binding = self.service.cursor_binding(Paged::Resources(&query));
        let cursor = decode_cursor(&binding, request.optional_cursor.as_ref())?;
        let consistency = self.consistency(request.consistency.as_ref(), cursor.as_ref())?;
        let (found, revision) = self
            .service
            .lookup_resources(
                consistency,
                query,
                cursor.map(|c| c.after),
                limit(request.optional_limit),
            )
            .await?;
        let looked_up_at = self.token(revision);
        let answers: Vec<v1::LookupResourcesResponse> = found
            .into_iter()
            .map(|(id, permissionship)| v1::LookupResourcesResponse {
                looked_up_at: looked_up_at.clone(),
                permissionship: convert::lookup_permissionship(&permissionship) as i32,
                partial_caveat_info: convert::partial_caveat_info(&permissionship),
                after_result_cursor: encode_cursor(&binding, revision, &id),
                resource_object_id: id,
            })
            .collect();
        Ok(Response::new(Box::pin(stream::iter(
            answers.into_iter().map(Ok),
        ))))
    }

    async fn lookup_subjects(
        &self,
        request: Request<v1::LookupSubjectsRequest>,
    ) -> Result<Response<Self::LookupSubjectsStream>, Status> {
        use v1::lookup_subjects_request::WildcardOption;
        let request = request.into_inner();
        let exclude_wildcards = match WildcardOption::try_from(request.wildcard_option) {
            Ok(WildcardOption::Unspecified | WildcardOption::IncludeWildcards) => false,
            Ok(WildcardOption::ExcludeWildcards) => true,
            Err(_) => {
                return Err(ApiError::invalid(format!(
                    "unknown wildcardOption `{}`",
                    request.wildcard_option
                ))
                .into())
            }
        };
        let query = LookupSubjects {
            resource: convert::object(request.resource.as_ref(), "resource")?,
            permission: required(request.permission, "permission")?,
            subject_type: required(request.subject_object_type, "subjectObjectType")?,
            subject_relation: (!request.optional_subject_relation.is_empty())
                .then_some(request.optional_subject_relation),
            context: convert::context(request.context.as_ref()),
        };
        let binding = self.service.cursor_binding(Paged::Subjects(&query));
        let cursor = decode_cursor(&binding, request.optional_cursor.as_ref())?;
        let consistency = self.consistency(request.consistency.as_ref(), cursor.as_ref())?;
        let (found, revision) = self
            .service
            .lookup_subjects(
                consistency,
                query,
                cursor.map(|c| c.after),
                limit(request.optional_concrete_limit),
            )
            .await?;
        let looked_up_at = self.token(revision);
        let answers: Vec<v1::LookupSubjectsResponse> = found
            .into_iter()
            .filter(|s| !(exclude_wildcards && s.subject_id == WILDCARD_ID))
            .map(|s| {
                let permissionship = convert::lookup_permissionship(&s.permissionship) as i32;
                let partial_caveat_info = convert::partial_caveat_info(&s.permissionship);
                let excluded_subjects = s
                    .excluded_ids
                    .iter()
                    .map(|id| v1::ResolvedSubject {
                        subject_object_id: id.clone(),
                        permissionship: v1::LookupPermissionship::HasPermission as i32,
                        partial_caveat_info: None,
                    })
                    .collect();
                v1::LookupSubjectsResponse {
                    looked_up_at: looked_up_at.clone(),
                    subject_object_id: s.subject_id.clone(),
                    excluded_subject_ids: s.excluded_ids.clone(),
                    permissionship,
                    partial_caveat_info: partial_caveat_info.clone(),
                    subject: Some(v1::ResolvedSubject {
                        subject_object_id: s.subject_id.clone(),
                        permissionship,
                        partial_caveat_info,
                    }),
                    excluded_subjects,
                    after_result_cursor: encode_cursor(&binding, revision, &s.subject_id),
                }
            })
            .collect();
        Ok(Response::new(Box::pin(stream::iter(
            answers.into_iter().map(Ok),
        ))))
    }

    async fn import_bulk_relationships(
        &self,
        request: Request<Streaming<v1::ImportBulkRelationshipsRequest>>,
    ) -> Result<Response<v1::ImportBulkRelationshipsResponse>, Status> {
        let mode = crate::api::service::import_mode(
            request
                .metadata()
                .get(crate::api::service::IMPORT_MODE_HEADER)
                .map(|v| v.to_str().unwrap_or("?")),
        )?;
        let mut messages = request.into_inner();
        let max_bytes = self.service.limits().max_import_bytes;
        let mut bytes = 0usize;
        let mut relationships = Vec::new();
        let mut n = 0usize;
        while let Some(message) = messages.message().await? {
            bytes += prost::Message::encoded_len(&message);
            if bytes > max_bytes {
                return Err(ApiError::new(
                    crate::api::error::Code::ResourceExhausted,
                    format!("import is larger than the limit of {max_bytes} bytes"),
                )
                .into());
            }
            for (i, rel) in message.relationships.iter().enumerate() {
                relationships.push(convert::relationship(Some(rel)).map_err(|e| ApiError {
                    message: format!("message {n}, relationships[{i}]: {}", e.message),
                    ..e
                })?);
                self.service.check_import_count(relationships.len())?;
            }
            n += 1;
        }
        let loaded = self.service.import(relationships, mode).await?;
        Ok(Response::new(v1::ImportBulkRelationshipsResponse {
            num_loaded: loaded,
        }))
    }

    async fn export_bulk_relationships(
        &self,
        request: Request<v1::ExportBulkRelationshipsRequest>,
    ) -> Result<Response<Self::ExportBulkRelationshipsStream>, Status> {
        let request = request.into_inner();
        let filter = convert::filter(request.optional_relationship_filter.as_ref(), false)?;
        let binding = self.service.cursor_binding(Paged::Read(&filter));
        let (consistency, after) = self.resume_read(
            &binding,
            request.consistency.as_ref(),
            request.optional_cursor.as_ref(),
        )?;
        Ok(Response::new(self.read_pages(
            consistency,
            filter,
            after,
            limit(request.optional_limit),
            move |_, revision, relationships| {
                let after_result_cursor = relationships
                    .last()
                    .and_then(|last| encode_cursor(&binding, revision, &last.to_string()));
                vec![v1::ExportBulkRelationshipsResponse {
                    after_result_cursor,
                    relationships: relationships.iter().map(convert::to_relationship).collect(),
                }]
            },
        )?))
    }
}
