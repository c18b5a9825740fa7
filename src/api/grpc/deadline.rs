//! The client's deadline (`grpc-timeout`, as the gRPC over HTTP/2 protocol encodes it) handed
//! to the shared [`Service`](crate::api::service::Service), so an engine walk stops at the
//! earlier of it and the server's request timeout and the call ends with DEADLINE_EXCEEDED.
//!
//! The client's own timer (and tonic's on the server) end the call when the deadline passes;
//! ours is set a little before it ([`MARGIN`]), so the server's DEADLINE_EXCEEDED, with its
//! message, reaches the client while it still waits.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::http::{HeaderMap, Request};

use crate::api::service::with_client_deadline;

const GRPC_TIMEOUT: &str = "grpc-timeout";

/// How much earlier than the client's deadline our own fires (at most a tenth of it): the
/// time the answer needs to travel back.
const MARGIN: Duration = Duration::from_millis(50);

/// Runs every call with the deadline its `grpc-timeout` header asks for.
#[derive(Debug, Clone, Copy, Default)]
pub struct ClientDeadlineLayer;

impl<S> tower::Layer<S> for ClientDeadlineLayer {
    type Service = ClientDeadline<S>;

    fn layer(&self, inner: S) -> Self::Service {
        ClientDeadline { inner }
    }
}

/// The service [`ClientDeadlineLayer`] wraps.
#[derive(Debug, Clone)]
pub struct ClientDeadline<S> {
    inner: S,
}

impl<S, RequestBody> tower::Service<Request<RequestBody>> for ClientDeadline<S>
where
    S: tower::Service<Request<RequestBody>>,
    S::Future: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<S::Response, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<RequestBody>) -> Self::Future {
        let timeout =
            client_timeout(request.headers()).map(|t| t.saturating_sub(MARGIN.min(t / 10)));
        let answer = self.inner.call(request);
        Box::pin(with_client_deadline(timeout, answer))
    }
}

/// The `grpc-timeout` header's duration: at most 8 digits and a unit (`H`, `M`, `S`, `m`,
/// `u`, `n`); none when absent or malformed (then only the server's timeout applies).
fn client_timeout(headers: &HeaderMap) -> Option<Duration> {
    let text = headers.get(GRPC_TIMEOUT)?.to_str().ok()?;
    if text.len() < 2 || !text.is_ascii() {
        return None;
    }
    let (digits, unit) = text.split_at(text.len() - 1);
    if digits.len() > 8 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let value: u64 = digits.parse().ok()?;
    Some(match unit {
        "H" => Duration::from_secs(value * 3600),
        "M" => Duration::from_secs(value * 60),
        "S" => Duration::from_secs(value),
        "m" => Duration::from_millis(value),
        "u" => Duration::from_micros(value),
        "n" => Duration::from_nanos(value),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parsed(value: &str) -> Option<Duration> {
        let mut headers = HeaderMap::new();
        headers.insert(GRPC_TIMEOUT, value.parse().unwrap());
        client_timeout(&headers)
    }

    #[test]
    fn reads_every_unit_of_the_protocol() {
        assert_eq!(parsed("2H"), Some(Duration::from_secs(7200)));
        assert_eq!(parsed("3M"), Some(Duration::from_secs(180)));
        assert_eq!(parsed("1S"), Some(Duration::from_secs(1)));
        assert_eq!(parsed("250m"), Some(Duration::from_millis(250)));
        assert_eq!(parsed("99999999u"), Some(Duration::from_micros(99_999_999)));
        assert_eq!(parsed("7n"), Some(Duration::from_nanos(7)));
    }

    #[test]
    fn refuses_malformed_values() {
        for bad in ["", "S", "123456789S", "12x", "-1S", "1.5S"] {
            assert_eq!(parsed(bad), None, "{bad}");
        }
        assert_eq!(client_timeout(&HeaderMap::new()), None);
    }
}
