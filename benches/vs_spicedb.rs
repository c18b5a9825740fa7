//! zanzi side by side with the real SpiceDB: the same schema, relationships and query list,
//! in the same order, in one process on one machine.
//!
//! SpiceDB runs from its C library (`libspicedb.so`, path in `SPICEDB_LIB`; get it with
//! `../shared/bench/get-spicedb.sh`), called with serialized `authzed.api.v1` requests; its
//! streaming RPCs go over gRPC on the unix socket it opens. zanzi runs in-process through
//! `zanzi::engine::Engine` over a `RocksStore` in a temporary folder.
//!
//! `SPICEDB_DATASTORE_URI` set: SpiceDB on PostgreSQL (a database already migrated for it), at
//! the full Frontier size, and zanzi on PostgreSQL beside zanzi on RocksDB: zanzi's tables live
//! in the database `ZANZI_BENCH_POSTGRES_URI` names (emptied first), by default `zanzi_bench`
//! on the same server (created if missing). Then the run also reports both zanzi stores' size
//! per million relationships and how long a token minted by one node takes to be honoured by
//! another under a steady write load (two engines with their own connection pools). Unset: SpiceDB's memory datastore, which scans every relationship of
//! a (type, relation) pair per lookup, so the Frontier workload is scaled down to about 10k
//! relationships for the comparison and zanzi alone also runs the full size.
//! `ZANZI_BENCH_QUICK=1`: fewer calls per operation (the whole run takes a few minutes).
//!
//! Run: `SPICEDB_LIB=$(../shared/bench/get-spicedb.sh) cargo bench --bench vs_spicedb`.

#![allow(
    unsafe_code,
    reason = "calling SpiceDB's C library needs FFI; the library and binary forbid unsafe"
)]

#[path = "vs_spicedb/measure.rs"]
mod measure;
#[path = "../tests/it/spicedb.rs"]
#[allow(
    dead_code,
    reason = "the differential test uses calls this benchmark does not"
)]
mod spicedb;
#[path = "vs_spicedb/workload.rs"]
mod workload;

use std::hint::black_box;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use measure::{format_duration, format_ratio, time, Samples};
use spicedb::SpiceDb;
use tonic::transport::Channel;
use workload::{thousands, CheckQuery, FrontierSize, ResourcesQuery, SubjectsQuery, Workload};
use zanzi::engine::{Context, Engine, EngineConfig, Permissionship};
use zanzi::proto::v1::{
    self, check_permission_response, consistency::Requirement,
    delete_relationships_response::DeletionProgress,
    permissions_service_client::PermissionsServiceClient, relationship_update::Operation,
};
use zanzi::revision::Consistency;
use zanzi::store::{PgOptions, PgStore, RocksStore, StoreOptions};
use zanzi::transaction::{ImportMode, Update, UpdateOp};
use zanzi::tuple::{ObjectRef, Relationship, SubjectRef};

/// Rows per write request when loading, on both sides.
const BATCH: usize = 1_000;

/// SpiceDB's cell where it does not run (the full size on its memory datastore).
const NOT_RUN: &str = "not run at this size";

fn main() -> ExitCode {
    let Some(lib) = std::env::var_os("SPICEDB_LIB") else {
        println!(
            "vs_spicedb: skipped, SPICEDB_LIB is not set. Get SpiceDB's library with \
             ../shared/bench/get-spicedb.sh (it prints the path of libspicedb.so), then run \
             SPICEDB_LIB=<that path> cargo bench --bench vs_spicedb"
        );
        return ExitCode::SUCCESS;
    };
    match run(&lib.to_string_lossy()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("vs_spicedb: {error}");
            ExitCode::FAILURE
        }
    }
}

/// How many calls each operation gets.
#[derive(Debug, Clone, Copy)]
struct Plan {
    quick: bool,
    check_warmup: usize,
    checks: usize,
    lookup_warmup: usize,
    lookups: usize,
    writes: usize,
    /// Queries drawn per Frontier query list.
    queries: usize,
}

impl Plan {
    fn from_env() -> Self {
        let quick = std::env::var("ZANZI_BENCH_QUICK").is_ok_and(|v| !v.is_empty() && v != "0");
        if quick {
            Plan {
                quick,
                check_warmup: 50,
                checks: 300,
                lookup_warmup: 3,
                lookups: 20,
                writes: 100,
                queries: 100,
            }
        } else {
            Plan {
                quick,
                check_warmup: 300,
                checks: 3_000,
                lookup_warmup: 10,
                lookups: 200,
                writes: 1_000,
                queries: 1_000,
            }
        }
    }
}

/// Where SpiceDB keeps its relationships.
enum Datastore {
    Memory,
    Postgres(String),
}

impl Datastore {
    fn from_env() -> Self {
        match std::env::var("SPICEDB_DATASTORE_URI") {
            Ok(uri) if !uri.is_empty() => Datastore::Postgres(uri),
            _ => Datastore::Memory,
        }
    }

    fn name(&self) -> &'static str {
        match self {
            Datastore::Memory => "memory",
            Datastore::Postgres(_) => "postgres",
        }
    }

    fn options(&self) -> serde_json::Value {
        match self {
            Datastore::Memory => serde_json::json!({ "datastore": "memory" }),
            Datastore::Postgres(uri) => {
                serde_json::json!({ "datastore": "postgres", "datastore_uri": uri })
            }
        }
    }
}

/// One side's figure for an operation, or why there is none.
enum Cell {
    Measured(Samples),
    Skipped(&'static str),
}

impl Cell {
    fn p50(&self) -> String {
        match self {
            Cell::Measured(s) => format_duration(s.p50()),
            Cell::Skipped(why) => why.to_string(),
        }
    }

    fn p99(&self) -> String {
        match self {
            Cell::Measured(s) => format_duration(s.p99()),
            Cell::Skipped(_) => "n/a".to_string(),
        }
    }
}

/// One line of the result table.
struct Row {
    operation: String,
    zanzi: Cell,
    /// zanzi on PostgreSQL, when the run has a database for it.
    postgres: Cell,
    spicedb: Cell,
}

impl Row {
    fn print_progress(&self) {
        eprintln!(
            "  {:<48} zanzi p50 {:>10}   on PostgreSQL {:>10}   SpiceDB p50 {:>10}",
            self.operation,
            self.zanzi.p50(),
            self.postgres.p50(),
            self.spicedb.p50()
        );
    }

    fn markdown(&self) -> String {
        let ratio = |zanzi: &Cell| match (zanzi, &self.spicedb) {
            (Cell::Measured(z), Cell::Measured(s)) => format_ratio(s.p50(), z.p50()),
            _ => "n/a".to_string(),
        };
        format!(
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            self.operation,
            self.zanzi.p50(),
            self.zanzi.p99(),
            self.postgres.p50(),
            self.postgres.p99(),
            self.spicedb.p50(),
            self.spicedb.p99(),
            ratio(&self.zanzi),
            ratio(&self.postgres)
        )
    }
}

/// A normalised answer, to check that both engines agree before timing them.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Answer {
    Check(&'static str),
    Ids(Vec<String>),
}

impl Answer {
    fn sorted(self) -> Self {
        match self {
            Answer::Ids(mut ids) => {
                ids.sort();
                Answer::Ids(ids)
            }
            other => other,
        }
    }
}

// ---------- zanzi ----------

/// Two engines over one store: `check` rows use the first (check cache off, nested-group index
/// on), `check cached` rows the second (cache on as well). Both follow the same write log.
fn zanzi_engine(dir: &std::path::Path, sync_writes: bool) -> Result<(Engine, Engine), String> {
    let store = RocksStore::open(
        dir,
        StoreOptions {
            sync_writes,
            ..StoreOptions::default()
        },
    )
    .map_err(|e| e.to_string())?;
    let store: Arc<RocksStore> = Arc::new(store);
    let uncached = EngineConfig {
        cache_bytes: 0,
        ..EngineConfig::default()
    };
    let engine = Engine::new(store.clone(), uncached).map_err(|e| e.to_string())?;
    engine
        .write_schema(workload::SCHEMA)
        .map_err(|e| e.to_string())?;
    let cached = Engine::new(store, EngineConfig::default()).map_err(|e| e.to_string())?;
    Ok((engine, cached))
}

/// The same two engines over a PostgreSQL database (emptied first).
fn zanzi_pg_engines(url: &str) -> Result<(Engine, Engine), String> {
    let store = PgStore::open(url, PgOptions::default())
        .and_then(PgStore::clear)
        .map_err(|e| e.to_string())?;
    let store = Arc::new(store);
    let uncached = EngineConfig {
        cache_bytes: 0,
        ..EngineConfig::default()
    };
    let engine = Engine::new(store.clone(), uncached).map_err(|e| e.to_string())?;
    engine
        .write_schema(workload::SCHEMA)
        .map_err(|e| e.to_string())?;
    let cached = Engine::new(store, EngineConfig::default()).map_err(|e| e.to_string())?;
    Ok((engine, cached))
}

/// zanzi's database for the PostgreSQL rows: `ZANZI_BENCH_POSTGRES_URI`, or `zanzi_bench` on
/// SpiceDB's server (created if missing), or none.
fn zanzi_database(
    datastore: &Datastore,
    runtime: &tokio::runtime::Runtime,
) -> Result<Option<String>, String> {
    if let Ok(uri) = std::env::var("ZANZI_BENCH_POSTGRES_URI") {
        if !uri.is_empty() {
            return Ok(Some(uri));
        }
    }
    let Datastore::Postgres(spicedb_uri) = datastore else {
        return Ok(None);
    };
    let (base, query) = match spicedb_uri.split_once('?') {
        Some((base, query)) => (base, format!("?{query}")),
        None => (spicedb_uri.as_str(), String::new()),
    };
    let Some((server, _)) = base.rsplit_once('/') else {
        return Err(format!("cannot tell the database in `{spicedb_uri}`"));
    };
    runtime.block_on(async {
        let (client, connection) = tokio_postgres::connect(spicedb_uri, tokio_postgres::NoTls)
            .await
            .map_err(|e| format!("connecting to SpiceDB's server: {e}"))?;
        tokio::spawn(connection);
        let exists = client
            .query(
                "SELECT 1 FROM pg_database WHERE datname = 'zanzi_bench'",
                &[],
            )
            .await
            .map_err(|e| e.to_string())?;
        if exists.is_empty() {
            client
                .batch_execute("CREATE DATABASE zanzi_bench")
                .await
                .map_err(|e| format!("creating database zanzi_bench: {e}"))?;
        }
        Ok::<_, String>(())
    })?;
    Ok(Some(format!("{server}/zanzi_bench{query}")))
}

fn zanzi_check(engine: &Engine, q: &CheckQuery, ctx: &Context) -> Result<Answer, String> {
    let result = engine
        .check(&q.resource, &q.permission, &q.subject, ctx)
        .map_err(|e| e.to_string())?;
    Ok(Answer::Check(match result.permissionship {
        Permissionship::Has => "has",
        Permissionship::No => "no",
        Permissionship::Conditional { .. } => "conditional",
    }))
}

fn zanzi_resources(engine: &Engine, q: &ResourcesQuery, ctx: &Context) -> Result<Answer, String> {
    let (found, _) = engine
        .lookup_resources(&q.resource_type, &q.permission, &q.subject, ctx)
        .map_err(|e| e.to_string())?;
    Ok(Answer::Ids(found.into_iter().map(|(id, _)| id).collect()))
}

/// The timed lookup-resources call: the answer as the engine hands it over, every id read once
/// (its bytes summed), as a caller that reads the whole answer does. [`zanzi_resources`]
/// copies each id into a `String` of its own to compare answers with SpiceDB's; that copy is
/// this harness's work, not the engine's, so it is kept out of the time.
fn zanzi_resources_read(
    engine: &Engine,
    q: &ResourcesQuery,
    ctx: &Context,
) -> Result<usize, String> {
    let (found, _) = engine
        .lookup_resources(&q.resource_type, &q.permission, &q.subject, ctx)
        .map_err(|e| e.to_string())?;
    Ok(found.iter().map(|(id, _)| black_box(id).len()).sum())
}

fn zanzi_subjects(engine: &Engine, q: &SubjectsQuery, ctx: &Context) -> Result<Answer, String> {
    let (found, _) = engine
        .lookup_subjects(&q.resource, &q.permission, &q.subject_type, None, ctx)
        .map_err(|e| e.to_string())?;
    Ok(Answer::Ids(
        found.into_iter().map(|s| s.subject_id).collect(),
    ))
}

fn zanzi_write(engine: &Engine, op: UpdateOp, rels: &[Relationship]) -> Result<(), String> {
    let updates: Vec<Update> = rels
        .iter()
        .map(|r| Update {
            op,
            relationship: r.clone(),
        })
        .collect();
    engine
        .write_relationships(&updates, &[])
        .map(drop)
        .map_err(|e| e.to_string())
}

// ---------- SpiceDB ----------

fn proto_object(o: &ObjectRef) -> v1::ObjectReference {
    v1::ObjectReference {
        object_type: o.object_type.clone(),
        object_id: o.object_id.clone(),
    }
}

fn proto_subject(s: &SubjectRef) -> v1::SubjectReference {
    v1::SubjectReference {
        object: Some(proto_object(&s.object)),
        optional_relation: s.relation.clone().unwrap_or_default(),
    }
}

fn proto_relationship(r: &Relationship) -> v1::Relationship {
    v1::Relationship {
        resource: Some(proto_object(&r.resource)),
        relation: r.relation.clone(),
        subject: Some(proto_subject(&r.subject)),
        optional_caveat: None,
        optional_expires_at: None,
    }
}

/// Every SpiceDB read sees the latest write, as every zanzi read does.
fn fully_consistent() -> Option<v1::Consistency> {
    Some(v1::Consistency {
        requirement: Some(Requirement::FullyConsistent(true)),
    })
}

fn check_request(q: &CheckQuery) -> v1::CheckPermissionRequest {
    v1::CheckPermissionRequest {
        consistency: fully_consistent(),
        resource: Some(proto_object(&q.resource)),
        permission: q.permission.clone(),
        subject: Some(proto_subject(&q.subject)),
        context: None,
        with_tracing: false,
    }
}

fn resources_request(q: &ResourcesQuery) -> v1::LookupResourcesRequest {
    v1::LookupResourcesRequest {
        consistency: fully_consistent(),
        resource_object_type: q.resource_type.clone(),
        permission: q.permission.clone(),
        subject: Some(proto_subject(&q.subject)),
        ..Default::default()
    }
}

fn subjects_request(q: &SubjectsQuery) -> v1::LookupSubjectsRequest {
    v1::LookupSubjectsRequest {
        consistency: fully_consistent(),
        resource: Some(proto_object(&q.resource)),
        permission: q.permission.clone(),
        subject_object_type: q.subject_type.clone(),
        ..Default::default()
    }
}

fn write_request(op: Operation, rels: &[v1::Relationship]) -> v1::WriteRelationshipsRequest {
    v1::WriteRelationshipsRequest {
        updates: rels
            .iter()
            .map(|r| v1::RelationshipUpdate {
                operation: op as i32,
                relationship: Some(r.clone()),
            })
            .collect(),
        ..Default::default()
    }
}

fn spicedb_check(db: &SpiceDb, request: &v1::CheckPermissionRequest) -> Result<Answer, String> {
    use check_permission_response::Permissionship as P;
    let response = db.check_permission(request)?;
    Ok(Answer::Check(match response.permissionship() {
        P::HasPermission => "has",
        P::NoPermission => "no",
        P::ConditionalPermission => "conditional",
        P::Unspecified => "unspecified",
    }))
}

type Client = PermissionsServiceClient<Channel>;

async fn spicedb_resources(
    client: &mut Client,
    request: v1::LookupResourcesRequest,
) -> Result<Answer, String> {
    let mut stream = client
        .lookup_resources(request)
        .await
        .map_err(|e| e.to_string())?
        .into_inner();
    let mut ids = Vec::new();
    while let Some(item) = stream.message().await.map_err(|e| e.to_string())? {
        ids.push(item.resource_object_id);
    }
    Ok(Answer::Ids(ids))
}

async fn spicedb_subjects(
    client: &mut Client,
    request: v1::LookupSubjectsRequest,
) -> Result<Answer, String> {
    let mut stream = client
        .lookup_subjects(request)
        .await
        .map_err(|e| e.to_string())?
        .into_inner();
    let mut ids = Vec::new();
    while let Some(item) = stream.message().await.map_err(|e| e.to_string())? {
        ids.push(match item.subject {
            Some(subject) => subject.subject_object_id,
            None => item.subject_object_id,
        });
    }
    Ok(Answer::Ids(ids))
}

/// Removes every relationship a previous run left in a persistent datastore.
fn spicedb_clear(db: &SpiceDb) -> Result<(), String> {
    for resource_type in ["group", "organization", "project", "resource"] {
        loop {
            let response = db.delete_relationships(&v1::DeleteRelationshipsRequest {
                relationship_filter: Some(v1::RelationshipFilter {
                    resource_type: resource_type.to_string(),
                    ..Default::default()
                }),
                // SpiceDB refuses limits above 1,000.
                optional_limit: 1_000,
                optional_allow_partial_deletions: true,
                ..Default::default()
            })?;
            if response.deletion_progress() != DeletionProgress::Partial {
                break;
            }
        }
    }
    Ok(())
}

// ---------- the comparison ----------

/// Both engines with the same data loaded, and the means to call SpiceDB's streaming RPCs.
struct Sides<'a> {
    engine: &'a Engine,
    cached: &'a Engine,
    /// The same two engines on PostgreSQL, when the run has a database for them.
    postgres: Option<(&'a Engine, &'a Engine)>,
    spicedb: Option<&'a SpiceDb>,
    client: Option<Client>,
    runtime: &'a tokio::runtime::Runtime,
    plan: Plan,
    ctx: Context,
    mismatches: Vec<String>,
}

impl Sides<'_> {
    /// Runs every query once on both sides and records disagreements.
    fn agree(
        &mut self,
        what: &str,
        zanzi: Result<Answer, String>,
        spicedb: Result<Answer, String>,
    ) {
        match (zanzi, spicedb) {
            (Ok(z), Ok(s)) => {
                let (z, s) = (z.sorted(), s.sorted());
                if z != s {
                    self.mismatches
                        .push(format!("{what}: zanzi {z:?}, SpiceDB {s:?}"));
                }
            }
            (z, s) => self
                .mismatches
                .push(format!("{what}: zanzi {z:?}, SpiceDB {s:?}")),
        }
    }

    fn checks(&mut self, name: &str, queries: &[CheckQuery]) -> Result<Row, String> {
        let requests: Vec<_> = queries.iter().map(check_request).collect();
        if let Some(db) = self.spicedb {
            for (q, r) in queries.iter().zip(&requests) {
                let z = zanzi_check(self.engine, q, &self.ctx);
                let s = spicedb_check(db, r);
                self.agree(
                    &format!("{name} {}#{}@{}", q.resource, q.permission, q.subject),
                    z,
                    s,
                );
            }
        }
        if let Some((pg, _)) = self.postgres {
            for q in queries {
                let z = zanzi_check(self.engine, q, &self.ctx);
                let p = zanzi_check(pg, q, &self.ctx);
                self.agree(
                    &format!(
                        "{name} on PostgreSQL {}#{}@{}",
                        q.resource, q.permission, q.subject
                    ),
                    p,
                    z,
                );
            }
        }
        let n = queries.len();
        let (engine, ctx, plan) = (self.engine, &self.ctx, self.plan);
        let zanzi = time(plan.check_warmup, plan.checks, |i| {
            black_box(zanzi_check(engine, &queries[i % n], ctx)?);
            Ok(())
        })?;
        let postgres = match self.postgres {
            Some((pg, _)) => Cell::Measured(time(plan.check_warmup, plan.checks, |i| {
                black_box(zanzi_check(pg, &queries[i % n], ctx)?);
                Ok(())
            })?),
            None => Cell::Skipped(NOT_RUN),
        };
        let spicedb = match self.spicedb {
            Some(db) => Cell::Measured(time(plan.check_warmup, plan.checks, |i| {
                black_box(spicedb_check(db, &requests[i % n])?);
                Ok(())
            })?),
            None => Cell::Skipped(NOT_RUN),
        };
        Ok(self.row(name, Cell::Measured(zanzi), postgres, spicedb))
    }

    /// The same check over and over: what a cache would serve.
    fn cached_check(&mut self, name: &str, query: &CheckQuery) -> Result<Row, String> {
        let plan = self.plan;
        let (cached, ctx) = (self.cached, &self.ctx);
        let zanzi = Cell::Measured(time(plan.check_warmup, plan.checks, |_| {
            black_box(zanzi_check(cached, query, ctx)?);
            Ok(())
        })?);
        let postgres = match self.postgres {
            Some((_, pg_cached)) => Cell::Measured(time(plan.check_warmup, plan.checks, |_| {
                black_box(zanzi_check(pg_cached, query, ctx)?);
                Ok(())
            })?),
            None => Cell::Skipped(NOT_RUN),
        };
        let request = check_request(query);
        let spicedb = match self.spicedb {
            Some(db) => Cell::Measured(time(plan.check_warmup, plan.checks, |_| {
                black_box(spicedb_check(db, &request)?);
                Ok(())
            })?),
            None => Cell::Skipped(NOT_RUN),
        };
        Ok(self.row(name, zanzi, postgres, spicedb))
    }

    fn lookup_resources(&mut self, name: &str, queries: &[ResourcesQuery]) -> Result<Row, String> {
        let requests: Vec<_> = queries.iter().map(resources_request).collect();
        let runtime = self.runtime;
        if let Some(mut client) = self.client.clone() {
            for (q, r) in queries.iter().zip(&requests) {
                let z = zanzi_resources(self.engine, q, &self.ctx);
                let s = runtime.block_on(spicedb_resources(&mut client, r.clone()));
                self.agree(
                    &format!("{name} {}#{}@{}", q.resource_type, q.permission, q.subject),
                    z,
                    s,
                );
            }
        }
        let n = queries.len();
        let (engine, ctx, plan) = (self.engine, &self.ctx, self.plan);
        let zanzi = time(plan.lookup_warmup, plan.lookups, |i| {
            black_box(zanzi_resources_read(engine, &queries[i % n], ctx)?);
            Ok(())
        })?;
        let postgres = match self.postgres {
            Some((pg, _)) => Cell::Measured(time(plan.lookup_warmup, plan.lookups, |i| {
                black_box(zanzi_resources_read(pg, &queries[i % n], ctx)?);
                Ok(())
            })?),
            None => Cell::Skipped(NOT_RUN),
        };
        let spicedb = match self.client.clone() {
            Some(mut client) => Cell::Measured(time(plan.lookup_warmup, plan.lookups, |i| {
                black_box(
                    runtime.block_on(spicedb_resources(&mut client, requests[i % n].clone()))?,
                );
                Ok(())
            })?),
            None => Cell::Skipped(NOT_RUN),
        };
        Ok(self.row(name, Cell::Measured(zanzi), postgres, spicedb))
    }

    fn lookup_subjects(&mut self, name: &str, queries: &[SubjectsQuery]) -> Result<Row, String> {
        let requests: Vec<_> = queries.iter().map(subjects_request).collect();
        let runtime = self.runtime;
        if let Some(mut client) = self.client.clone() {
            for (q, r) in queries.iter().zip(&requests) {
                let z = zanzi_subjects(self.engine, q, &self.ctx);
                let s = runtime.block_on(spicedb_subjects(&mut client, r.clone()));
                self.agree(
                    &format!("{name} {}#{}@{}", q.resource, q.permission, q.subject_type),
                    z,
                    s,
                );
            }
        }
        let n = queries.len();
        let (engine, ctx, plan) = (self.engine, &self.ctx, self.plan);
        let zanzi = time(plan.lookup_warmup, plan.lookups, |i| {
            black_box(zanzi_subjects(engine, &queries[i % n], ctx)?);
            Ok(())
        })?;
        let postgres = match self.postgres {
            Some((pg, _)) => Cell::Measured(time(plan.lookup_warmup, plan.lookups, |i| {
                black_box(zanzi_subjects(pg, &queries[i % n], ctx)?);
                Ok(())
            })?),
            None => Cell::Skipped(NOT_RUN),
        };
        let spicedb = match self.client.clone() {
            Some(mut client) => Cell::Measured(time(plan.lookup_warmup, plan.lookups, |i| {
                black_box(
                    runtime.block_on(spicedb_subjects(&mut client, requests[i % n].clone()))?,
                );
                Ok(())
            })?),
            None => Cell::Skipped(NOT_RUN),
        };
        Ok(self.row(name, Cell::Measured(zanzi), postgres, spicedb))
    }

    /// One new relationship per write request.
    fn writes(&mut self, name: &str) -> Result<Row, String> {
        let plan = self.plan;
        let total = plan.check_warmup.min(50) + plan.writes;
        let rels = parse_all(&workload::writes(total))?;
        let protos: Vec<_> = rels.iter().map(proto_relationship).collect();
        let engine = self.engine;
        let warmup = total - plan.writes;
        let zanzi = time(warmup, plan.writes, |i| {
            zanzi_write(engine, UpdateOp::Touch, &rels[i..=i])
        })?;
        let postgres = match self.postgres {
            Some((pg, _)) => Cell::Measured(time(warmup, plan.writes, |i| {
                zanzi_write(pg, UpdateOp::Touch, &rels[i..=i])
            })?),
            None => Cell::Skipped(NOT_RUN),
        };
        let spicedb = match self.spicedb {
            Some(db) => Cell::Measured(time(warmup, plan.writes, |i| {
                db.write_relationships(&write_request(Operation::Touch, &protos[i..=i]))
                    .map(drop)
            })?),
            None => Cell::Skipped(NOT_RUN),
        };
        Ok(self.row(name, Cell::Measured(zanzi), postgres, spicedb))
    }

    fn row(&self, operation: &str, zanzi: Cell, postgres: Cell, spicedb: Cell) -> Row {
        let row = Row {
            operation: operation.to_string(),
            zanzi,
            postgres,
            spicedb,
        };
        row.print_progress();
        row
    }
}

fn parse_all(texts: &[String]) -> Result<Vec<Relationship>, String> {
    texts
        .iter()
        .map(|t| Relationship::parse(t).map_err(|e| e.to_string()))
        .collect()
}

/// Loads `rels` as one import into zanzi (`Engine::import`: SST ingestion on RocksDB, binary
/// COPY on PostgreSQL) and, if given, SpiceDB (in 1,000-relationship CREATE requests: its
/// library does not serve ImportBulkRelationships), timing the whole load. Returns the row.
fn import(name: &str, sides: &Sides<'_>, rels: &[Relationship]) -> Result<Row, String> {
    let import_into = |engine: &Engine, side: &str| -> Result<Samples, String> {
        let start = Instant::now();
        let outcome = engine
            .import(rels.iter().cloned().map(Ok), ImportMode::Create)
            .map_err(|e| e.to_string())?;
        let took = start.elapsed();
        if outcome.loaded != rels.len() as u64 {
            return Err(format!(
                "zanzi on {side} imported {} of {}",
                outcome.loaded,
                rels.len()
            ));
        }
        eprintln!(
            "  zanzi on {side} imported {} relationships in {:.2} s ({}/s); {} on disk ({} per million relationships)",
            thousands(rels.len()),
            took.as_secs_f64(),
            thousands(rate(rels.len(), took)),
            megabytes(engine.store_size()),
            megabytes(per_million(engine.store_size(), rels.len())),
        );
        Ok(Samples::from_durations(vec![took]))
    };
    let zanzi = import_into(sides.engine, "RocksDB")?;
    let postgres = match sides.postgres {
        Some((pg, _)) => Cell::Measured(import_into(pg, "PostgreSQL")?),
        None => Cell::Skipped(NOT_RUN),
    };
    // SpiceDB's library answers ImportBulkRelationships with UNIMPLEMENTED: it loads in
    // 1,000-relationship CREATE requests, its fastest path there.
    let spicedb = match sides.spicedb {
        Some(db) => {
            let protos: Vec<_> = rels.iter().map(proto_relationship).collect();
            let start = Instant::now();
            for chunk in protos.chunks(BATCH) {
                db.write_relationships(&write_request(Operation::Create, chunk))?;
            }
            let took = start.elapsed();
            eprintln!(
                "  SpiceDB loaded {} relationships in {BATCH}-row requests in {:.2} s ({}/s)",
                thousands(rels.len()),
                took.as_secs_f64(),
                thousands(rate(rels.len(), took))
            );
            Cell::Measured(Samples::from_durations(vec![took]))
        }
        None => Cell::Skipped(NOT_RUN),
    };
    let row = Row {
        operation: name.to_string(),
        zanzi: Cell::Measured(zanzi),
        postgres,
        spicedb,
    };
    row.print_progress();
    Ok(row)
}

/// Writes `batches` new 1,000-relationship CREATE requests on every side, timing each.
/// Returns the row (per request) and prints the rates.
fn batch_writes(name: &str, sides: &Sides<'_>, batches: usize) -> Result<Row, String> {
    let texts: Vec<String> = (0..batches * BATCH)
        .map(|i| format!("resource:batch{i}#viewer@user:batcher{}", i % 97))
        .collect();
    let rels = parse_all(&texts)?;
    let write_into = |engine: &Engine, side: &str| -> Result<Samples, String> {
        let mut durations = Vec::new();
        for chunk in rels.chunks(BATCH) {
            let start = Instant::now();
            zanzi_write(engine, UpdateOp::Create, chunk)?;
            durations.push(start.elapsed());
        }
        let samples = Samples::from_durations(durations);
        eprintln!(
            "  zanzi on {side} wrote {} relationships in {BATCH}-row requests in {:.2} s ({}/s)",
            thousands(rels.len()),
            samples.total().as_secs_f64(),
            thousands(rate(rels.len(), samples.total())),
        );
        Ok(samples)
    };
    let zanzi = write_into(sides.engine, "RocksDB")?;
    let postgres = match sides.postgres {
        Some((pg, _)) => Cell::Measured(write_into(pg, "PostgreSQL")?),
        None => Cell::Skipped(NOT_RUN),
    };
    let spicedb = match sides.spicedb {
        Some(db) => {
            let protos: Vec<_> = rels.iter().map(proto_relationship).collect();
            let mut durations = Vec::new();
            for chunk in protos.chunks(BATCH) {
                let request = write_request(Operation::Create, chunk);
                let start = Instant::now();
                db.write_relationships(&request)?;
                durations.push(start.elapsed());
            }
            let samples = Samples::from_durations(durations);
            eprintln!(
                "  SpiceDB wrote {} relationships in {BATCH}-row requests in {:.2} s ({}/s)",
                thousands(rels.len()),
                samples.total().as_secs_f64(),
                thousands(rate(rels.len(), samples.total()))
            );
            Cell::Measured(samples)
        }
        None => Cell::Skipped(NOT_RUN),
    };
    let row = Row {
        operation: name.to_string(),
        zanzi: Cell::Measured(zanzi),
        postgres,
        spicedb,
    };
    row.print_progress();
    Ok(row)
}

fn megabytes(bytes: u64) -> String {
    format!("{:.1} MB", bytes as f64 / 1e6)
}

fn per_million(bytes: u64, relationships: usize) -> u64 {
    if relationships == 0 {
        return 0;
    }
    (bytes as f64 * 1e6 / relationships as f64) as u64
}

/// How long a token minted by node A takes to be honoured by node B: A writes, B checks at
/// least as fresh as A's revision and must see the write; timed from A's acknowledgement to
/// B's answer, while a third engine keeps writing. Each engine has its own connection pool,
/// as separate processes would.
fn token_latency(url: &str, plan: Plan) -> Result<Samples, String> {
    let node = || -> Result<Engine, String> {
        let store = PgStore::open(url, PgOptions::default()).map_err(|e| e.to_string())?;
        Engine::new(Arc::new(store), EngineConfig::default()).map_err(|e| e.to_string())
    };
    let (a, b, writer) = (node()?, node()?, node()?);
    let stop = std::sync::atomic::AtomicBool::new(false);
    let ctx = Context::new();
    std::thread::scope(|scope| {
        let load = scope.spawn(|| {
            let mut n = 0usize;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let rel = Relationship::parse(&format!("resource:load{n}#viewer@user:load"))
                    .map_err(|e| e.to_string())?;
                zanzi_write(&writer, UpdateOp::Touch, &[rel])?;
                n += 1;
            }
            Ok::<_, String>(n)
        });
        let timed = time(plan.check_warmup.min(50), plan.writes, |i| {
            let rel = Relationship::parse(&format!("resource:token{i}#viewer@user:token"))
                .map_err(|e| e.to_string())?;
            let revision = a
                .write_relationships(
                    &[Update {
                        op: UpdateOp::Touch,
                        relationship: rel.clone(),
                    }],
                    &[],
                )
                .map_err(|e| e.to_string())?;
            let start = Instant::now();
            let answer = b
                .at(Consistency::AtLeastAsFresh(revision))
                .and_then(|view| view.check(&rel.resource, "view", &rel.subject, &ctx))
                .map_err(|e| e.to_string())?;
            let took = start.elapsed();
            if answer.permissionship != Permissionship::Has {
                return Err(format!("node B did not see {rel} at revision {revision}"));
            }
            black_box(took);
            Ok(())
        });
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        let writes = load
            .join()
            .map_err(|_| "the load writer panicked".to_string())??;
        eprintln!("  (the load writer wrote {writes} revisions meanwhile)");
        timed
    })
}

fn rate(count: usize, took: Duration) -> usize {
    let secs = took.as_secs_f64();
    if secs > 0.0 {
        (count as f64 / secs) as usize
    } else {
        0
    }
}

/// Every row for one set of workloads (Frontier at `label`, and, if given, chain and fan-out).
fn run_workloads(
    sides: &mut Sides<'_>,
    label: &str,
    frontier: &Workload,
    others: &[(&str, &Workload)],
    rows: &mut Vec<Row>,
) -> Result<(), String> {
    let mut all: Vec<String> = frontier.relationships.clone();
    for (_, w) in others {
        all.extend(w.relationships.iter().cloned());
    }
    let rels = parse_all(&all)?;
    rows.push(import(
        &format!("{label} bulk import (whole; SpiceDB in {BATCH}-row requests)"),
        sides,
        &rels,
    )?);
    let batches = if sides.plan.quick { 20 } else { 100 };
    rows.push(batch_writes(
        &format!("{label} write ({BATCH}-row CREATE requests, per request)"),
        sides,
        batches,
    )?);
    let q = &frontier.queries;
    rows.push(sides.checks(
        &format!("{label} check view (nested groups)"),
        &q.nested_checks,
    )?);
    rows.push(sides.checks(&format!("{label} check direct (owner)"), &q.direct_checks)?);
    // Repeating one check only says something when there is a SpiceDB figure beside it.
    let compared = sides.spicedb.is_some();
    if let Some(first) = q.nested_checks.first().filter(|_| compared) {
        rows.push(
            sides.cached_check(&format!("{label} check cached (one check repeated)"), first)?,
        );
    }
    rows.push(sides.lookup_resources(&format!("{label} lookup-resources"), &q.resources)?);
    rows.push(sides.lookup_subjects(&format!("{label} lookup-subjects"), &q.subjects)?);
    for (name, w) in others {
        let q = &w.queries;
        rows.push(sides.checks(&format!("{name} check view"), &q.nested_checks)?);
        if name.starts_with("chain") && compared {
            if let Some(first) = q.nested_checks.first() {
                rows.push(
                    sides.cached_check(
                        &format!("{name} check cached (one check repeated)"),
                        first,
                    )?,
                );
            }
        }
        rows.push(sides.lookup_resources(&format!("{name} lookup-resources"), &q.resources)?);
        rows.push(sides.lookup_subjects(&format!("{name} lookup-subjects"), &q.subjects)?);
    }
    rows.push(sides.writes(&format!("{label} write (one relationship per request)"))?);
    Ok(())
}

fn run(lib: &str) -> Result<(), String> {
    let plan = Plan::from_env();
    let datastore = Datastore::from_env();
    let compared = match datastore {
        Datastore::Memory => FrontierSize::SMALL,
        Datastore::Postgres(_) => FrontierSize::FULL,
    };
    // zanzi's WAL sync matches the peer's durability: the memory datastore keeps nothing.
    let sync_writes = matches!(datastore, Datastore::Postgres(_));
    eprintln!(
        "vs_spicedb: SpiceDB from {lib} on the {} datastore{}",
        datastore.name(),
        if plan.quick { ", quick mode" } else { "" }
    );

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    let spicedb = SpiceDb::start(lib, &datastore.options())?;
    eprintln!(
        "  SpiceDB started; streaming RPCs on {}",
        spicedb.streaming_address
    );
    spicedb.write_schema(&v1::WriteSchemaRequest {
        schema: workload::SCHEMA.to_string(),
    })?;
    if let Datastore::Postgres(_) = datastore {
        spicedb_clear(&spicedb)?;
    }
    let client = runtime.block_on(spicedb.streaming_client())?;

    let frontier = workload::frontier(compared, plan.queries);
    let chain = workload::chain();
    let fan_out = workload::fan_out();
    let relationship_count =
        frontier.relationships.len() + chain.relationships.len() + fan_out.relationships.len();

    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let (engine, cached) = zanzi_engine(dir.path(), sync_writes)?;
    let zanzi_db = zanzi_database(&datastore, &runtime)?;
    let pg_engines = match &zanzi_db {
        Some(url) => Some(zanzi_pg_engines(url)?),
        None => None,
    };
    if let Some(url) = &zanzi_db {
        eprintln!(
            "  zanzi on PostgreSQL in {}",
            url.split('@').next_back().unwrap_or(url)
        );
    }
    let mut sides = Sides {
        engine: &engine,
        cached: &cached,
        postgres: pg_engines.as_ref().map(|(e, c)| (e, c)),
        spicedb: Some(&spicedb),
        client: Some(client),
        runtime: &runtime,
        plan,
        ctx: Context::new(),
        mismatches: Vec::new(),
    };
    let mut rows = Vec::new();
    let compared_label = match datastore {
        Datastore::Memory => "frontier (small)",
        Datastore::Postgres(_) => "frontier",
    };
    run_workloads(
        &mut sides,
        compared_label,
        &frontier,
        &[
            ("chain (30 levels)", &chain),
            ("fan-out (1,000 groups)", &fan_out),
        ],
        &mut rows,
    )?;
    let mismatches = std::mem::take(&mut sides.mismatches);
    drop(sides);
    drop(spicedb);

    // On the memory datastore the full Frontier size is out of SpiceDB's reach: zanzi alone.
    let mut full_size = None;
    if let Datastore::Memory = datastore {
        let full = workload::frontier(FrontierSize::FULL, plan.queries);
        let full_dir = tempfile::tempdir().map_err(|e| e.to_string())?;
        let (full_engine, full_cached) = zanzi_engine(full_dir.path(), sync_writes)?;
        let mut zanzi_only = Sides {
            engine: &full_engine,
            cached: &full_cached,
            postgres: None,
            spicedb: None,
            client: None,
            runtime: &runtime,
            plan,
            ctx: Context::new(),
            mismatches: Vec::new(),
        };
        run_workloads(&mut zanzi_only, "frontier (full)", &full, &[], &mut rows)?;
        full_size = Some(full.relationships.len());
    }

    let token = match &zanzi_db {
        Some(url) => {
            drop(pg_engines);
            eprintln!("  a token from node A honoured on node B, under a steady write load:");
            Some(token_latency(url, plan)?)
        }
        None => None,
    };

    if mismatches.is_empty() {
        eprintln!("\nzanzi and SpiceDB agreed on every query.");
    } else {
        println!(
            "\n{} queries where zanzi and SpiceDB disagree:",
            mismatches.len()
        );
        for m in mismatches.iter().take(10) {
            println!("  {m}");
        }
    }

    let mut heading =
        format!(
        "\n### zanzi vs SpiceDB, SpiceDB on the {} datastore: frontier{} = {} ({} relationships \
         with chain and fan-out); chain = 30 nested groups; fan-out = 1 user in 1,000 groups",
        datastore.name(),
        if let Datastore::Memory = datastore { " (small)" } else { "" },
        compared.describe(),
        thousands(relationship_count),
    );
    if let Some(n) = full_size {
        heading.push_str(&format!(
            "; frontier (full, zanzi only) = {} ({} relationships)",
            FrontierSize::FULL.describe(),
            thousands(n)
        ));
    }
    heading.push_str(&format!(
        "; zanzi WAL sync {}; {} calls per check, {} per lookup{}\n",
        if sync_writes { "on" } else { "off" },
        plan.checks,
        plan.lookups,
        if plan.quick { " (quick)" } else { "" }
    ));
    println!("{heading}");
    println!(
        "| operation | zanzi p50 | zanzi p99 | zanzi on PostgreSQL p50 | p99 | SpiceDB p50 | SpiceDB p99 | ratio | ratio on PostgreSQL |"
    );
    println!("| --- | --- | --- | --- | --- | --- | --- | --- | --- |");
    for row in &rows {
        println!("{}", row.markdown());
    }
    if let Some(token) = token {
        println!(
            "\nA token from node A honoured on node B (B's check at least as fresh as A's write, \
             timed from A's acknowledgement, a third engine writing meanwhile): p50 {}, p99 {}",
            format_duration(token.p50()),
            format_duration(token.p99())
        );
    }
    Ok(())
}
