//! Check latency and throughput over gRPC on loopback: loads the same data set as
//! `scripts/http-load` into a running zanzi through `authzed.api.v1`, then keeps CONCURRENCY
//! CheckPermission calls in flight over CONNECTIONS HTTP/2 connections for SECONDS, and prints
//! one Markdown table row (requests/s, p50, p99). See `scripts/grpc-load`.
//!
//! usage: grpc_load ADDR KEY [SECONDS=10] [CONCURRENCY=32] [CONNECTIONS=4]
//!
//! `GRPC_LOAD_SKIP_DATA=1` skips loading the data (for `examples/grpc_ceiling.rs`, which
//! answers every check without data); `GRPC_LOAD_LABEL` names the table row.

use std::time::{Duration, Instant};

use tonic::metadata::{Ascii, MetadataValue};
use tonic::service::interceptor::InterceptedService;
use tonic::service::Interceptor;
use tonic::transport::Channel;
use tonic::{Request, Status};
use zanzi::proto::v1;
use zanzi::proto::v1::permissions_service_client::PermissionsServiceClient;
use zanzi::proto::v1::schema_service_client::SchemaServiceClient;

#[derive(Clone)]
struct Bearer(MetadataValue<Ascii>);

impl Interceptor for Bearer {
    fn call(&mut self, mut request: Request<()>) -> Result<Request<()>, Status> {
        request
            .metadata_mut()
            .insert("authorization", self.0.clone());
        Ok(request)
    }
}

type Client = PermissionsServiceClient<InterceptedService<Channel, Bearer>>;

const SCHEMA: &str = "definition user {}
definition group {
  relation member: user | group#member
}
definition doc {
  relation viewer: user | group#member
  permission view = viewer
}";

fn object(object_type: &str, object_id: &str) -> Option<v1::ObjectReference> {
    Some(v1::ObjectReference {
        object_type: object_type.into(),
        object_id: object_id.into(),
    })
}

fn relationship(doc: &str, group: &str, relation: &str) -> v1::Relationship {
    v1::Relationship {
        resource: object("doc", doc),
        relation: "viewer".into(),
        subject: Some(v1::SubjectReference {
            object: object("group", group),
            optional_relation: relation.into(),
        }),
        ..Default::default()
    }
}

async fn load_data(channel: Channel, bearer: Bearer) -> Result<(), Status> {
    SchemaServiceClient::with_interceptor(channel.clone(), bearer.clone())
        .write_schema(v1::WriteSchemaRequest {
            schema: SCHEMA.into(),
        })
        .await?;
    let mut client = PermissionsServiceClient::with_interceptor(channel, bearer);
    let docs: Vec<v1::Relationship> = (0..1000)
        .map(|i| relationship(&format!("d{i}"), &format!("g{}", i % 10), "member"))
        .collect();
    client
        .import_bulk_relationships(futures_util::stream::iter(vec![
            v1::ImportBulkRelationshipsRequest {
                relationships: docs,
            },
        ]))
        .await?;
    let ann = v1::Relationship {
        resource: object("group", "g3"),
        relation: "member".into(),
        subject: Some(v1::SubjectReference {
            object: object("user", "ann"),
            optional_relation: String::new(),
        }),
        ..Default::default()
    };
    client
        .import_bulk_relationships(futures_util::stream::iter(vec![
            v1::ImportBulkRelationshipsRequest {
                relationships: vec![ann],
            },
        ]))
        .await?;
    Ok(())
}

async fn run(mut client: Client, task: usize, until: Instant) -> Result<Vec<Duration>, Status> {
    let mut latencies = Vec::new();
    let mut n = task;
    while Instant::now() < until {
        n = (n + 7) % 1000;
        let request = v1::CheckPermissionRequest {
            resource: object("doc", &format!("d{n}")),
            permission: "view".into(),
            subject: Some(v1::SubjectReference {
                object: object("user", "ann"),
                optional_relation: String::new(),
            }),
            ..Default::default()
        };
        let started = Instant::now();
        client.check_permission(request).await?;
        latencies.push(started.elapsed());
    }
    Ok(latencies)
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let at = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[at.min(sorted.len() - 1)]
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let (Some(addr), Some(key)) = (args.get(1), args.get(2)) else {
        eprintln!("usage: grpc_load ADDR KEY [SECONDS] [CONCURRENCY] [CONNECTIONS]");
        std::process::exit(2);
    };
    let number = |i: usize, default: u64| -> u64 {
        args.get(i).and_then(|a| a.parse().ok()).unwrap_or(default)
    };
    let (seconds, concurrency, connections) = (number(3, 10), number(4, 32), number(5, 4));
    let bearer = Bearer(format!("Bearer {key}").parse()?);
    let mut channels = Vec::new();
    for _ in 0..connections.max(1) {
        channels.push(
            Channel::from_shared(format!("http://{addr}"))?
                .connect()
                .await?,
        );
    }
    if std::env::var_os("GRPC_LOAD_SKIP_DATA").is_none() {
        load_data(channels[0].clone(), bearer.clone()).await?;
    }
    let until = Instant::now() + Duration::from_secs(seconds);
    let started = Instant::now();
    let tasks: Vec<_> = (0..concurrency as usize)
        .map(|task| {
            let channel = channels[task % channels.len()].clone();
            let client = PermissionsServiceClient::with_interceptor(channel, bearer.clone());
            tokio::spawn(run(client, task, until))
        })
        .collect();
    let mut latencies = Vec::new();
    for task in tasks {
        latencies.extend(task.await??);
    }
    let elapsed = started.elapsed().as_secs_f64();
    latencies.sort();
    let label = std::env::var("GRPC_LOAD_LABEL")
        .unwrap_or_else(|_| "zanzi check over gRPC (nested group)".to_string());
    println!(
        "| {label}, {concurrency} in flight, {connections} connections | {:.0} | {:.2}ms | {:.2}ms |",
        latencies.len() as f64 / elapsed,
        percentile(&latencies, 0.50).as_secs_f64() * 1e3,
        percentile(&latencies, 0.99).as_secs_f64() * 1e3,
    );
    Ok(())
}
