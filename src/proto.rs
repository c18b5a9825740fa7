//! SpiceDB's wire format: the `authzed.api.v1` protobuf messages and gRPC services, generated
//! at build time from our own files under `proto/` (`build.rs`, tonic-build over protox).
//!
//! Package, message, field, enum and service names and field numbers are SpiceDB's, so the
//! official SpiceDB clients and servers interoperate with these types on the wire. Both the
//! server traits (`*_server`) and the clients (`*_client`) are generated. Well-known types
//! (`Struct`, `Timestamp`, `Duration`) are `prost_types`.
//!
//! **API boundary:** a change to a field number or type here is a wire-format change;
//! `tests/it/proto.rs` pins the encoding byte for byte.

/// The `authzed` protobuf namespace.
pub mod authzed {
    /// The `authzed.api` protobuf namespace.
    pub mod api {
        /// `authzed.api.v1`: SpiceDB's stable API (permissions, schema and watch services).
        #[allow(missing_docs, clippy::all, clippy::pedantic)]
        pub mod v1 {
            include!(concat!(env!("OUT_DIR"), "/authzed.api.v1.rs"));
        }
    }
}

/// The `google` protobuf namespace (types that are not bundled in `prost-types`).
pub mod google {
    /// `google.rpc`: the status message carried by bulk-check errors.
    #[allow(missing_docs, clippy::all, clippy::pedantic)]
    pub mod rpc {
        include!(concat!(env!("OUT_DIR"), "/google.rpc.rs"));
    }
}

pub use authzed::api::v1;

/// The encoded `FileDescriptorSet` of every file under `proto/` (served by gRPC reflection).
pub const FILE_DESCRIPTOR_SET: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/descriptors.bin"));
