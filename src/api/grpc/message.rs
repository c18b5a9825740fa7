//! The `grpc-message` header as the gRPC spec encodes it: only bytes outside printable ASCII,
//! and `%` itself, are percent-encoded. tonic also encodes ` `, `"`, `#`, `<`, `>`, `` ` ``,
//! `?`, `{` and `}`; a client that decodes with JavaScript's `decodeURI` (grpc-js, under the
//! official Node.js client) then shows `doc:d1%23viewer` for `doc:d1#viewer`. This layer
//! re-encodes the header in the headers of a trailers-only answer and in the trailers of a
//! streamed one.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use axum::http::{HeaderMap, HeaderValue, Request, Response};
use http_body::{Body, Frame, SizeHint};

const GRPC_MESSAGE: &str = "grpc-message";

/// Re-encodes `grpc-message` in every answer of the service it wraps.
#[derive(Debug, Clone, Copy, Default)]
pub struct PlainMessageLayer;

impl<S> tower::Layer<S> for PlainMessageLayer {
    type Service = PlainMessage<S>;

    fn layer(&self, inner: S) -> Self::Service {
        PlainMessage { inner }
    }
}

/// The service [`PlainMessageLayer`] wraps.
#[derive(Debug, Clone)]
pub struct PlainMessage<S> {
    inner: S,
}

impl<S, RequestBody, ResponseBody> tower::Service<Request<RequestBody>> for PlainMessage<S>
where
    S: tower::Service<Request<RequestBody>, Response = Response<ResponseBody>>,
    S::Future: Send + 'static,
{
    type Response = Response<PlainBody<ResponseBody>>;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<RequestBody>) -> Self::Future {
        let answer = self.inner.call(request);
        Box::pin(async move {
            let mut response = answer.await?;
            reencode(response.headers_mut());
            Ok(response.map(|inner| PlainBody { inner }))
        })
    }
}

/// A response body whose trailers get `grpc-message` re-encoded.
#[derive(Debug)]
pub struct PlainBody<B> {
    inner: B,
}

impl<B: Body + Unpin> Body for PlainBody<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let this = self.get_mut();
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => Poll::Ready(Some(Ok(match frame.into_trailers() {
                Ok(mut trailers) => {
                    reencode(&mut trailers);
                    Frame::trailers(trailers)
                }
                Err(frame) => frame,
            }))),
            other => other,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

fn reencode(headers: &mut HeaderMap) {
    let Some(value) = headers.get(GRPC_MESSAGE) else {
        return;
    };
    let plain = encode(&decode(value.as_bytes()));
    if let Ok(value) = HeaderValue::from_str(&plain) {
        headers.insert(GRPC_MESSAGE, value);
    }
}

fn hex(digit: u8) -> Option<u8> {
    (digit as char)
        .to_digit(16)
        .and_then(|d| u8::try_from(d).ok())
}

/// Undoes percent-encoding (a `%` not followed by two hex digits stays as it is).
fn decode(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            if let (Some(high), Some(low)) = (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                out.push(high << 4 | low);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    out
}

/// The gRPC spec's percent-encoding: bytes outside 0x20..=0x7E, and `%`.
fn encode(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len());
    for &byte in bytes {
        if (0x20..=0x7e).contains(&byte) && byte != b'%' {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_what_the_spec_requires_stays_encoded() {
        let tonic = "relationship%20%60doc:d1%23viewer@user:bob%60%20already%20exists%3F%20100%25";
        let plain = encode(&decode(tonic.as_bytes()));
        assert_eq!(
            plain,
            "relationship `doc:d1#viewer@user:bob` already exists? 100%25"
        );
        assert_eq!(encode("é\n".as_bytes()), "%C3%A9%0A");
        assert_eq!(decode(b"50%"), b"50%");
        assert_eq!(decode(b"%zz"), b"%zz");
    }
}
