//! The ceiling of the gRPC stack on this machine: a tonic server of `authzed.api.v1`'s
//! PermissionsService whose CheckPermission answers a fixed message without looking at the
//! request (every other call is UNIMPLEMENTED), measured with the same load tool as zanzi
//! (`examples/grpc_load.rs`, see `scripts/grpc-load`).
//!
//! usage: grpc_ceiling [ADDR=127.0.0.1:8501]

use futures_util::stream::Empty;
use tonic::transport::Server;
use tonic::{Request, Response, Status, Streaming};
use zanzi::proto::v1;
use zanzi::proto::v1::permissions_service_server::{PermissionsService, PermissionsServiceServer};

struct Ceiling;

type Answer<T> = Result<Response<T>, Status>;

fn unimplemented() -> Status {
    Status::unimplemented("the ceiling server answers CheckPermission only")
}

#[tonic::async_trait]
impl PermissionsService for Ceiling {
    type ReadRelationshipsStream = Empty<Result<v1::ReadRelationshipsResponse, Status>>;
    type LookupResourcesStream = Empty<Result<v1::LookupResourcesResponse, Status>>;
    type LookupSubjectsStream = Empty<Result<v1::LookupSubjectsResponse, Status>>;
    type ExportBulkRelationshipsStream = Empty<Result<v1::ExportBulkRelationshipsResponse, Status>>;

    async fn check_permission(
        &self,
        _request: Request<v1::CheckPermissionRequest>,
    ) -> Answer<v1::CheckPermissionResponse> {
        Ok(Response::new(v1::CheckPermissionResponse {
            checked_at: Some(v1::ZedToken {
                token: "GgYKBENBRT0=".into(),
            }),
            permissionship: v1::check_permission_response::Permissionship::HasPermission as i32,
            ..Default::default()
        }))
    }

    async fn read_relationships(
        &self,
        _request: Request<v1::ReadRelationshipsRequest>,
    ) -> Answer<Self::ReadRelationshipsStream> {
        Err(unimplemented())
    }

    async fn write_relationships(
        &self,
        _request: Request<v1::WriteRelationshipsRequest>,
    ) -> Answer<v1::WriteRelationshipsResponse> {
        Err(unimplemented())
    }

    async fn delete_relationships(
        &self,
        _request: Request<v1::DeleteRelationshipsRequest>,
    ) -> Answer<v1::DeleteRelationshipsResponse> {
        Err(unimplemented())
    }

    async fn check_bulk_permissions(
        &self,
        _request: Request<v1::CheckBulkPermissionsRequest>,
    ) -> Answer<v1::CheckBulkPermissionsResponse> {
        Err(unimplemented())
    }

    async fn expand_permission_tree(
        &self,
        _request: Request<v1::ExpandPermissionTreeRequest>,
    ) -> Answer<v1::ExpandPermissionTreeResponse> {
        Err(unimplemented())
    }

    async fn lookup_resources(
        &self,
        _request: Request<v1::LookupResourcesRequest>,
    ) -> Answer<Self::LookupResourcesStream> {
        Err(unimplemented())
    }

    async fn lookup_subjects(
        &self,
        _request: Request<v1::LookupSubjectsRequest>,
    ) -> Answer<Self::LookupSubjectsStream> {
        Err(unimplemented())
    }

    async fn import_bulk_relationships(
        &self,
        _request: Request<Streaming<v1::ImportBulkRelationshipsRequest>>,
    ) -> Answer<v1::ImportBulkRelationshipsResponse> {
        Err(unimplemented())
    }

    async fn export_bulk_relationships(
        &self,
        _request: Request<v1::ExportBulkRelationshipsRequest>,
    ) -> Answer<Self::ExportBulkRelationshipsStream> {
        Err(unimplemented())
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:8501".to_string())
        .parse()?;
    println!("gRPC ceiling server on {addr}");
    Server::builder()
        .add_service(PermissionsServiceServer::new(Ceiling))
        .serve(addr)
        .await?;
    Ok(())
}
