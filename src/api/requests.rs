//! The one layer in front of every HTTP route: request ids, the preshared key (on the `/v1/`
//! routes), the connection's trust, tracing and the per-endpoint metrics, in one service
//! and one boxed future per request instead of a stack of boxed layers.
//!
//! - **Request ids:** a request's `x-request-id` is kept; a request without one gets a new
//!   id, and the response carries it back. New ids are UUIDs in the usual 36-character form,
//!   version 8 (RFC 9562's custom layout): a random per-process prefix and a counter, so
//!   making one costs no system call.
//! - **Key:** on the `/v1/` routes a request without `Authorization: Bearer <key>` or with
//!   the wrong key is answered 401 before its handler runs; one that presents it takes its
//!   connection out of the unauthenticated budget ([`connections`]).
//! - **Tracing:** with `debug` enabled for this module, each request runs in a `request`
//!   span (method, uri, request id) with "started" and "finished" events; at any level a
//!   5xx answer is logged as an error with its request id. Nothing is formatted when the
//!   span's level is off.
//! - **Metrics:** `zanzi_requests_total` and `zanzi_request_duration_seconds` per matched
//!   path, through handles each route resolves once ([`Metrics::endpoint`]).

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll};
use std::time::Instant;

use axum::extract::{ConnectInfo, MatchedPath, Request};
use axum::http::{header, HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use tower::{Layer, Service};
use tracing::Instrument;

use super::auth;
use super::connections::{self, Trust};
use super::error::{ApiError, Code};
use super::metrics::{EndpointMetrics, Metrics};

/// The header that carries a request's id, both ways.
pub const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// The endpoint label of requests no route matched.
const UNMATCHED: &str = "unmatched";

/// Makes request ids: a random 64-bit prefix drawn once per process and a counter.
#[derive(Debug)]
pub struct RequestIds {
    prefix: u64,
    next: AtomicU64,
}

impl RequestIds {
    /// A generator with a fresh random prefix (a fixed one if the system has no randomness:
    /// ids then stay unique within the process).
    pub fn new() -> Self {
        let mut bytes = [0u8; 8];
        let prefix = match getrandom::fill(&mut bytes) {
            Ok(()) => u64::from_le_bytes(bytes),
            Err(_) => 0x7a61_6e7a_6900_0000,
        };
        Self {
            prefix,
            next: AtomicU64::new(0),
        }
    }

    /// The next id, as a lowercase hyphenated version-8 UUID.
    pub fn next_id(&self) -> HeaderValue {
        let count = self.next.fetch_add(1, Ordering::Relaxed);
        let mut bytes = [0u8; 16];
        bytes[..8].copy_from_slice(&self.prefix.to_be_bytes());
        bytes[8..].copy_from_slice(&count.to_be_bytes());
        // Version 8 in the high nibble of byte 6, variant `10` in the top bits of byte 8
        // (the counter's top bits: it does not reach 2^62).
        bytes[6] = (bytes[6] & 0x0f) | 0x80;
        bytes[8] = (bytes[8] & 0x3f) | 0x80;
        let mut text = [0u8; uuid::fmt::Hyphenated::LENGTH];
        let text = uuid::Uuid::from_bytes(bytes)
            .hyphenated()
            .encode_lower(&mut text);
        // The text is 36 ASCII hex digits and hyphens, always a valid header value.
        HeaderValue::from_str(text).unwrap_or(HeaderValue::from_static("-"))
    }
}

impl Default for RequestIds {
    fn default() -> Self {
        Self::new()
    }
}

/// What every [`RequestService`] shares.
#[derive(Debug)]
struct Shared {
    metrics: Arc<Metrics>,
    ids: RequestIds,
}

/// The layer; [`RequestLayer::keyed`] makes the variant for the routes behind the key.
#[derive(Debug, Clone)]
pub struct RequestLayer {
    shared: Arc<Shared>,
    key: Option<Arc<str>>,
}

impl RequestLayer {
    /// A layer recording into `metrics`, for routes open without a key.
    pub fn new(metrics: Arc<Metrics>) -> Self {
        Self {
            shared: Arc::new(Shared {
                metrics,
                ids: RequestIds::new(),
            }),
            key: None,
        }
    }

    /// The same layer (same ids and metrics) for routes that require the preshared `key`.
    pub fn keyed(&self, key: &str) -> Self {
        Self {
            shared: Arc::clone(&self.shared),
            key: Some(Arc::from(key)),
        }
    }
}

impl<S> Layer<S> for RequestLayer {
    type Service = RequestService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        // Axum applies a layer to each route (and method) on its own, so each service here
        // sees one matched path and can keep that endpoint's metric handles.
        RequestService {
            inner,
            shared: Arc::clone(&self.shared),
            key: self.key.clone(),
            endpoint: Arc::new(OnceLock::new()),
        }
    }
}

/// A route's service behind the [`RequestLayer`].
#[derive(Debug, Clone)]
pub struct RequestService<S> {
    inner: S,
    shared: Arc<Shared>,
    key: Option<Arc<str>>,
    endpoint: Arc<OnceLock<(Box<str>, EndpointMetrics)>>,
}

impl<S> RequestService<S> {
    /// The 401 answer when this route requires the key and the request does not present it;
    /// a request that presents it proves its connection.
    fn refused(&self, request: &Request, trust: Option<&Trust>) -> Option<Response> {
        let key = self.key.as_deref()?;
        let header = request
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok());
        let message = match header {
            None => "missing `Authorization: Bearer <key>` header",
            Some(_) if !auth::authorized(header, key) => "invalid preshared key",
            Some(_) => {
                if let Some(trust) = trust {
                    trust.prove();
                }
                return None;
            }
        };
        Some(ApiError::new(Code::Unauthenticated, message).into_response())
    }

    /// Counts a finished request against its endpoint.
    fn record(&self, path: Option<&MatchedPath>, status: StatusCode, seconds: f64) {
        let Some(path) = path else {
            self.shared
                .metrics
                .request(UNMATCHED, status.as_str(), seconds);
            return;
        };
        let (cached_path, handles) = self.endpoint.get_or_init(|| {
            (
                Box::from(path.as_str()),
                self.shared.metrics.endpoint(path.as_str()),
            )
        });
        if **cached_path == *path.as_str() {
            handles.record(status.as_u16(), status.as_str(), seconds);
        } else {
            self.shared
                .metrics
                .request(path.as_str(), status.as_str(), seconds);
        }
    }
}

impl<S> Service<Request> for RequestService<S>
where
    S: Service<Request, Response = Response, Error = Infallible> + Clone + Send + Sync + 'static,
    S::Future: Send + 'static,
{
    type Response = Response;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Response, Infallible>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request) -> Self::Future {
        let started = Instant::now();
        let id = match request.headers().get(REQUEST_ID) {
            Some(given) => given.clone(),
            None => self.shared.ids.next_id(),
        };
        let trust = request
            .extensions()
            .get::<ConnectInfo<Trust>>()
            .map(|ConnectInfo(trust)| trust.clone());
        let path = request.extensions().get::<MatchedPath>().cloned();
        let method = request.method().clone();
        let uri = request.uri().clone();
        let span = tracing::debug_span!("request", %method, %uri, request_id = ?id);
        // `self` was polled ready for this call, so the inner service is ready too.
        let answer = match self.refused(&request, trust.as_ref()) {
            Some(refused) => Answer::Refused(refused),
            None => Answer::Inner(self.inner.call(request)),
        };
        let this = self.clone_without_inner();
        let served = async move {
            tracing::debug!("started processing request");
            let mut response = match answer {
                Answer::Refused(response) => response,
                Answer::Inner(future) => match future.await {
                    Ok(response) => response,
                    Err(never) => match never {},
                },
            };
            let elapsed = started.elapsed();
            let status = response.status();
            this.record(path.as_ref(), status, elapsed.as_secs_f64());
            tracing::debug!(status = status.as_u16(), latency = ?elapsed, "finished processing request");
            if status.is_server_error() {
                tracing::error!(
                    %method, %uri, request_id = ?id, status = status.as_u16(), latency = ?elapsed,
                    "response failed"
                );
            }
            response.headers_mut().insert(REQUEST_ID, id);
            Ok(response)
        };
        let served = async move {
            if span.is_disabled() {
                served.await
            } else {
                served.instrument(span).await
            }
        };
        match trust {
            Some(trust) => Box::pin(connections::scope(trust, served)),
            None => Box::pin(served),
        }
    }
}

impl<S> RequestService<S> {
    /// What the response future needs of this service (not the inner service).
    fn clone_without_inner(&self) -> RequestService<()> {
        RequestService {
            inner: (),
            shared: Arc::clone(&self.shared),
            key: None,
            endpoint: Arc::clone(&self.endpoint),
        }
    }
}

/// The inner service's answer, or the key check's refusal.
enum Answer<F> {
    Refused(Response),
    Inner(F),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_ids_are_distinct_version_8_uuids() {
        let ids = RequestIds::new();
        let first = ids.next_id();
        let second = ids.next_id();
        assert_ne!(first, second);
        for id in [first, second] {
            let parsed = uuid::Uuid::parse_str(id.to_str().unwrap()).unwrap();
            assert_eq!(parsed.get_version_num(), 8);
            assert_eq!(parsed.get_variant(), uuid::Variant::RFC4122);
        }
    }

    #[test]
    fn two_processes_do_not_share_a_prefix() {
        let (a, b) = (RequestIds::new(), RequestIds::new());
        assert_ne!(a.next_id(), b.next_id());
    }
}
