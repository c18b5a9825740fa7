//! zanzi's integration tests: one binary, one module per area.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod accel;
mod architecture;
mod caveats;
mod cli;
mod conformance;
mod engine;
mod facade;
mod gateway;
mod grpc;
mod grpc_conformance;
mod http;
mod import;
mod node_client;
mod process;
mod proto;
mod python_client;
mod reverse_arrows;
mod server_support;
mod support;
mod vault;
