//! zanzi's integration tests: one binary, one module per area.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod abuse;
mod accel;
mod architecture;
mod bulk_conformance;
mod caveats;
mod cli;
mod conformance;
mod crash;
mod cursors;
mod differential;
mod engine;
mod explain;
mod facade;
mod facade_permissions;
mod facade_props;
mod facade_races;
mod facade_support;
mod gateway;
mod grpc;
mod grpc_conformance;
mod http;
mod http_tls;
mod import;
mod node_client;
mod openapi;
mod openapi_fuzz;
mod pg_support;
mod playground;
mod process;
mod proto;
mod python_client;
mod python_venv;
mod retention;
mod reverse_arrows;
mod scale_out;
mod schema_races;
mod server_support;
#[allow(
    unsafe_code,
    dead_code,
    reason = "SpiceDB's C library needs FFI; the benchmark uses calls this test does not"
)]
mod spicedb;
mod store_conformance;
mod support;
mod vault;
mod webdriver;
mod world;
