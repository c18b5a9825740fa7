//! Compiles our `authzed.api.v1` protobuf files (under `proto/`) into Rust with `tonic-build`,
//! parsing them with `protox` so the build needs no system `protoc`.
//!
//! Well-known types (`google.protobuf.Struct`, `Timestamp`, `Duration`, `Any`) come from
//! protox's bundled copies and map to `prost-types`; `google.rpc.Status` is ours, in
//! `proto/google/rpc/status.proto`. The encoded descriptor set is written to
//! `OUT_DIR/descriptors.bin` for server reflection.

use std::error::Error;
use std::path::PathBuf;

use prost::Message as _;

/// The service files; everything they import is compiled with them.
const PROTOS: &[&str] = &[
    "proto/authzed/api/v1/permission_service.proto",
    "proto/authzed/api/v1/schema_service.proto",
    "proto/authzed/api/v1/watch_service.proto",
    "proto/google/rpc/error_details.proto",
];

fn main() -> Result<(), Box<dyn Error>> {
    println!("cargo:rerun-if-changed=proto");
    let descriptors = protox::compile(PROTOS, ["proto"])?;
    // The encoded descriptors, served by gRPC server reflection.
    let out = PathBuf::from(std::env::var("OUT_DIR")?);
    std::fs::write(out.join("descriptors.bin"), descriptors.encode_to_vec())?;
    tonic_build::configure()
        .build_server(true)
        .build_client(true)
        .compile_fds(descriptors)?;
    Ok(())
}
