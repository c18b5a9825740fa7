//! The network API: the only layer that knows HTTP and JSON.
//!
//! `service` is the one implementation every wire format calls (limits, tokens, cursors,
//! engine calls off the async runtime); `http` is SpiceDB's HTTP/JSON shape over it, with
//! `wire` holding the JSON types, `trace` the JSON form of check traces and `openapi` the
//! OpenAPI document of every HTTP route; `grpc` is SpiceDB's `authzed.api.v1` gRPC services over it; `error` maps engine errors to status codes once; `auth`
//! resolves the preshared key; `metrics` is the Prometheus registry; `requests` is the one
//! layer in front of every HTTP route (request ids, the key, tracing, metrics).

pub mod auth;
pub mod connections;
pub mod counters;
pub mod error;
pub mod grpc;
pub mod http;
pub mod metrics;
pub mod openapi;
pub mod protojson;
pub mod requests;
pub mod service;
pub mod tls;
pub mod trace;
pub mod wire;
