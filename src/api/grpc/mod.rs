//! The gRPC API: SpiceDB's `authzed.api.v1` services (permissions, schema, watch) over the
//! shared [`Service`], plus `grpc.health.v1` and server reflection.
//!
//! Every call except health and reflection must present the preshared key as
//! `authorization: Bearer <key>` metadata (UNAUTHENTICATED otherwise). Errors are the
//! [`ApiError`]s of the shared implementation with their gRPC code, so both wire formats refuse
//! the same requests the same way.

mod convert;
mod deadline;
mod message;
mod permissions;
mod schema;
pub mod trace;
mod watch;

pub use convert::{json_to_struct, to_tree};

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tonic::service::interceptor::InterceptedService;
use tonic::service::Interceptor;
use tonic::transport::server::{Router, TcpIncoming};
use tonic::transport::{Identity, Server, ServerTlsConfig};
use tonic::{Request, Status};

use super::auth;
use super::error::ApiError;
use super::service::Service;
use crate::proto::v1::permissions_service_server::PermissionsServiceServer;
use crate::proto::v1::schema_service_server::SchemaServiceServer;
use crate::proto::v1::watch_service_server::WatchServiceServer;

pub use permissions::Permissions;
pub use schema::SchemaApi;
pub use watch::WatchApi;

/// The certificate chain and private key (PEM files) the gRPC listener serves TLS with.
#[derive(Debug, Clone)]
pub struct TlsFiles {
    /// PEM certificate chain.
    pub cert: PathBuf,
    /// PEM private key.
    pub key: PathBuf,
}

/// How the gRPC API behaves.
#[derive(Debug, Clone)]
pub struct GrpcOptions {
    /// The preshared key every authzed call must present.
    pub preshared_key: String,
    /// How often an idle watch stream that asked for checkpoints gets one.
    pub watch_checkpoint: Duration,
    /// Becomes `true` when the server starts shutting down (ends watch streams).
    pub shutdown: tokio::sync::watch::Receiver<bool>,
    /// Serve TLS with these files; plaintext without.
    pub tls: Option<TlsFiles>,
}

/// Why the gRPC listener could not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum GrpcError {
    /// The TLS files could not be read or used.
    #[error("gRPC TLS: {0}")]
    Tls(String),
    /// The reflection service could not be built from our descriptors.
    #[error("gRPC reflection: {0}")]
    Reflection(String),
    /// The transport failed.
    #[error("gRPC server: {0}")]
    Transport(#[from] tonic::transport::Error),
}

/// The status of an API error; one with a reason carries SpiceDB's `google.rpc.ErrorInfo`
/// in the status details (`grpc-status-details-bin`), as SpiceDB sends it.
impl From<ApiError> for Status {
    fn from(err: ApiError) -> Self {
        let code = tonic::Code::from(i32::from(err.code.number()));
        let Some(info) = &err.info else {
            return Status::new(code, err.message);
        };
        let detail = crate::proto::google::rpc::ErrorInfo {
            reason: info.reason.to_string(),
            domain: crate::api::error::ERROR_DOMAIN.to_string(),
            metadata: info.metadata.clone().into_iter().collect(),
        };
        let status = crate::proto::google::rpc::Status {
            code: i32::from(err.code.number()),
            message: err.message.clone(),
            details: vec![prost_types::Any {
                type_url: crate::api::error::ERROR_INFO_TYPE.to_string(),
                value: prost::Message::encode_to_vec(&detail),
            }],
        };
        Status::with_details(
            code,
            err.message,
            prost::Message::encode_to_vec(&status).into(),
        )
    }
}

/// Checks the preshared key in the `authorization` metadata.
#[derive(Clone)]
struct RequireKey {
    key: Arc<str>,
}

impl Interceptor for RequireKey {
    fn call(&mut self, request: Request<()>) -> Result<Request<()>, Status> {
        let Some(value) = request.metadata().get("authorization") else {
            return Err(Status::unauthenticated(
                "missing `authorization: Bearer <key>` metadata",
            ));
        };
        let header = value.to_str().ok();
        if auth::authorized(header, &self.key) {
            Ok(request)
        } else {
            Err(Status::unauthenticated("invalid preshared key"))
        }
    }
}

/// The gRPC server with every service added (TLS files are read and checked here, so a bad
/// certificate stops the server before it listens).
pub async fn router(service: Arc<Service>, options: GrpcOptions) -> Result<GrpcRouter, GrpcError> {
    let mut builder = Server::builder();
    if let Some(tls) = &options.tls {
        let read = |path: &PathBuf| {
            std::fs::read(path).map_err(|e| GrpcError::Tls(format!("{}: {e}", path.display())))
        };
        let identity = Identity::from_pem(read(&tls.cert)?, read(&tls.key)?);
        builder = builder
            .tls_config(ServerTlsConfig::new().identity(identity))
            .map_err(|e| GrpcError::Tls(e.to_string()))?;
    }
    let require_key = RequireKey {
        key: Arc::from(options.preshared_key.as_str()),
    };
    let max_message = service.limits().max_body_bytes;
    let permissions = PermissionsServiceServer::new(Permissions::new(Arc::clone(&service)))
        .max_decoding_message_size(max_message);
    let schema = SchemaServiceServer::new(SchemaApi::new(Arc::clone(&service)))
        .max_decoding_message_size(max_message);
    let watch = WatchServiceServer::new(WatchApi::new(
        Arc::clone(&service),
        options.watch_checkpoint,
        options.shutdown.clone(),
    ))
    .max_decoding_message_size(max_message);

    let (health_reporter, health) = tonic_health::server::health_reporter();
    health_reporter
        .set_serving::<PermissionsServiceServer<Permissions>>()
        .await;
    health_reporter
        .set_serving::<SchemaServiceServer<SchemaApi>>()
        .await;
    health_reporter
        .set_serving::<WatchServiceServer<WatchApi>>()
        .await;
    let reflection = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(crate::proto::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1()
        .map_err(|e| GrpcError::Reflection(e.to_string()))?;

    Ok(builder
        .layer(GrpcLayers::new(
            deadline::ClientDeadlineLayer,
            message::PlainMessageLayer,
        ))
        .add_service(health)
        .add_service(reflection)
        .add_service(InterceptedService::new(permissions, require_key.clone()))
        .add_service(InterceptedService::new(schema, require_key.clone()))
        .add_service(InterceptedService::new(watch, require_key)))
}

/// The layers around every gRPC service: the client's deadline (inner) and the
/// `grpc-message` re-encoding (outer).
type GrpcLayers =
    tower::layer::util::Stack<deadline::ClientDeadlineLayer, message::PlainMessageLayer>;

/// The gRPC server's router: every service behind [`GrpcLayers`].
pub type GrpcRouter = Router<tower::layer::util::Stack<GrpcLayers, tower::layer::util::Identity>>;

/// Serves `router` on `listener` until `shutdown` resolves; in-flight calls finish.
pub async fn serve(
    router: GrpcRouter,
    listener: TcpListener,
    shutdown: impl std::future::Future<Output = ()> + Send,
) -> Result<(), GrpcError> {
    let incoming = TcpIncoming::from(listener).with_nodelay(Some(true));
    router
        .serve_with_incoming_shutdown(incoming, shutdown)
        .await?;
    Ok(())
}

/// `value` unless it is empty, which is an INVALID_ARGUMENT naming `what`.
fn required(value: String, what: &str) -> Result<String, ApiError> {
    if value.is_empty() {
        Err(ApiError::invalid(format!("{what} is required")))
    } else {
        Ok(value)
    }
}

/// A positive limit, or none.
fn limit(value: u32) -> Option<usize> {
    (value > 0).then_some(value as usize)
}
