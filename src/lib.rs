//! zanzi: a Zanzibar-style authorization engine that speaks SpiceDB's schema language.
//!
//! The library is organised as `tuple` (names and relationships), `filter` and
//! `transaction` (the vocabulary of reads and writes), `schema` (text → checked
//! model), `store` (the `TupleStore` trait and its RocksDB implementation), `engine` (check,
//! expand, lookups, writes, check traces), `explain` (traces printed as trees), `validate`
//! (SpiceDB validation files), `proto` (SpiceDB's `authzed.api.v1` wire types and gRPC
//! services), `playground` (the web page at `/ui`) and `facade` (the Frontier-style
//! `/v1beta1` and Bitwarden-style `/api`, `/public`, SCIM APIs over the engine, on one core).
//! See `ARCHITECTURE.md`.

#![forbid(unsafe_code)]

pub mod api;
pub mod client;
pub mod clock;
pub mod engine;
pub mod explain;
pub mod facade;
pub mod filter;
pub mod playground;
pub mod proto;
pub mod revision;
pub mod schema;
pub mod server;
pub mod store;
pub mod transaction;
pub mod tuple;
pub mod validate;
