//! The HTTP listener's connection budgets: at most `--max-http-connections` connections are
//! served at once, and of them at most `--max-unauthenticated-connections` that have not yet
//! presented a valid credential; the next connection stays in the kernel's accept queue until
//! one closes or proves itself.
//!
//! A flood of one-request connections (junk keys, `Connection: close`) then costs the server
//! at most the unauthenticated budget's worth of connections in flight, so a client on a
//! connection it already holds (SDK clients keep theirs alive) shares the server with a few of
//! them, not with hundreds. A connection proves itself when a request on it passes a
//! credential check ([`prove_connection`], called by each check); one that has not within
//! [`UNPROVEN_LIFETIME`] of opening is closed at its next read, so idle unauthenticated
//! connections cannot hold the small budget.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::extract::connect_info::Connected;
use axum::serve::IncomingStream;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::Sleep;

/// How long a connection may stay open without a request that passes a credential check.
pub const UNPROVEN_LIFETIME: Duration = Duration::from_secs(10);

/// Whether a connection has passed a credential check; holds its place in the unauthenticated
/// budget until then. Cloned into every request of the connection (as `ConnectInfo`).
#[derive(Clone)]
pub struct Trust(Arc<TrustState>);

struct TrustState {
    proven: AtomicBool,
    unproven_place: Mutex<Option<OwnedSemaphorePermit>>,
}

impl Trust {
    fn new(unproven_place: OwnedSemaphorePermit) -> Self {
        Self(Arc::new(TrustState {
            proven: AtomicBool::new(false),
            unproven_place: Mutex::new(Some(unproven_place)),
        }))
    }

    /// Marks the connection proven and gives its unauthenticated place back.
    pub fn prove(&self) {
        if !self.0.proven.swap(true, Ordering::AcqRel) {
            if let Ok(mut place) = self.0.unproven_place.lock() {
                place.take();
            }
        }
    }

    fn is_proven(&self) -> bool {
        self.0.proven.load(Ordering::Acquire)
    }
}

impl<L: axum::serve::Listener> Connected<IncomingStream<'_, Budgeted<L>>> for Trust {
    fn connect_info(stream: IncomingStream<'_, Budgeted<L>>) -> Self {
        stream.io().trust.clone()
    }
}

tokio::task_local! {
    /// The connection of the request being served (set by [`scope`]).
    static CONNECTION: Trust;
}

/// Runs `served` (a request's handling) with its connection's [`Trust`] at hand, so the
/// credential checks deep in the API and the facades can call [`prove_connection`].
pub fn scope<F: Future>(trust: Trust, served: F) -> impl Future<Output = F::Output> {
    CONNECTION.scope(trust, served)
}

/// Called by a credential check that passed: the request's connection leaves the
/// unauthenticated budget. Does nothing outside a request served by [`Budgeted`].
pub fn prove_connection() {
    let _ = CONNECTION.try_with(Trust::prove);
}

/// A listener that accepts only while fewer than its budgets of connections are open.
pub struct Budgeted<L> {
    inner: L,
    open: Arc<Semaphore>,
    unproven: Arc<Semaphore>,
}

impl<L> Budgeted<L> {
    /// `inner`, serving at most `max_connections` connections at once, and of them at most
    /// `max_unauthenticated` not yet proven (each at least one).
    pub fn new(inner: L, max_connections: usize, max_unauthenticated: usize) -> Self {
        Self {
            inner,
            open: Arc::new(Semaphore::new(max_connections.max(1))),
            unproven: Arc::new(Semaphore::new(max_unauthenticated.max(1))),
        }
    }
}

impl<L: axum::serve::Listener> axum::serve::Listener for Budgeted<L> {
    type Io = Counted<L::Io>;
    type Addr = L::Addr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        // The semaphores are never closed, so these wait until a connection ends or proves
        // itself.
        let Ok(place) = Arc::clone(&self.open).acquire_owned().await else {
            return std::future::pending().await;
        };
        let Ok(unproven_place) = Arc::clone(&self.unproven).acquire_owned().await else {
            return std::future::pending().await;
        };
        let (io, addr) = self.inner.accept().await;
        (
            Counted {
                io,
                _place: place,
                trust: Trust::new(unproven_place),
                unproven_until: Box::pin(tokio::time::sleep(UNPROVEN_LIFETIME)),
            },
            addr,
        )
    }

    fn local_addr(&self) -> io::Result<Self::Addr> {
        self.inner.local_addr()
    }
}

/// A connection that gives its places in the budgets back when it is dropped, and reads as
/// closed once [`UNPROVEN_LIFETIME`] has passed without a proven request.
pub struct Counted<Io> {
    io: Io,
    _place: OwnedSemaphorePermit,
    trust: Trust,
    unproven_until: Pin<Box<Sleep>>,
}

impl<Io: AsyncRead + Unpin> AsyncRead for Counted<Io> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        // Polling the timer registers this task to wake at the lifetime's end, so an idle
        // unproven connection is closed then rather than at its next byte.
        if !self.trust.is_proven() && self.unproven_until.as_mut().poll(cx).is_ready() {
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut self.io).poll_read(cx, buf)
    }
}

impl<Io: AsyncWrite + Unpin> AsyncWrite for Counted<Io> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}
