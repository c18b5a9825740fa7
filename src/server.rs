//! `zanzi serve`: opens the datastore (the embedded store, or a shared database), starts the
//! expiry sweeper and the history pruner (and, on a database, the log follower) and serves the
//! HTTP API and the gRPC API (one shared service), the web playground at `/ui`, and, when
//! configured, the facades beside them, until a shutdown signal, letting in-flight requests
//! (writes included) finish.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use crate::api::auth::{self, KeySource};
use crate::api::connections::{self, Budgeted};
use crate::api::grpc::{self, GrpcOptions, TlsFiles};
use crate::api::http::{self, HttpOptions};
use crate::api::metrics::Metrics;
use crate::api::service::{stopped, Limits, Service};
use crate::api::tls;
use crate::clock::Clock;
use crate::engine::{Engine, EngineConfig};
use crate::facade::{self, FacadeConfig};
use crate::playground;
use crate::store::{self, Datastore, OpenOptions, Opened, PRUNE_EVERY};

/// How long in-flight gRPC calls and connections may take to finish after shutdown starts.
const GRPC_SHUTDOWN_GRACE: Duration = Duration::from_secs(30);

/// On a shared database: how often a node looks for revisions committed by other nodes (for
/// its cache, group index and watch streams; reads never wait for it).
const FOLLOW_EVERY: Duration = Duration::from_millis(100);

/// Everything `zanzi serve` needs, resolved from flags, environment and config file.
#[derive(Debug, Clone)]
pub struct ServeConfig {
    /// Data folder of the embedded store (and of a generated preshared key).
    pub data_dir: PathBuf,
    /// A shared database instead of the embedded store in `data_dir`.
    pub datastore: Option<Datastore>,
    /// HTTP listen address.
    pub http_addr: SocketAddr,
    /// Serve HTTP over TLS with these PEM files (plaintext without).
    pub http_tls: Option<TlsFiles>,
    /// gRPC listen address; `None` serves no gRPC.
    pub grpc_addr: Option<SocketAddr>,
    /// Serve gRPC over TLS with these PEM files (plaintext without).
    pub grpc_tls: Option<TlsFiles>,
    /// The time source for expiration; `None` is the system clock (tests pin it).
    pub clock: Option<Arc<dyn Clock>>,
    /// The preshared key; `None` means "use the stored one, or generate it".
    pub preshared_key: Option<String>,
    /// Request limits.
    pub limits: Limits,
    /// Engine tunables.
    pub engine: EngineConfig,
    /// Recent revisions readable with `atExactSnapshot`.
    pub snapshot_window: usize,
    /// The history retention window: how long a revision stays readable with
    /// `atExactSnapshot`, by watch resumption and by cursors; older history is pruned.
    pub history_retention: Duration,
    /// How often an idle watch stream gets a checkpoint.
    pub watch_checkpoint: Duration,
    /// How often expired relationships are removed from disk.
    pub expiry_sweep: Duration,
    /// The `/v1beta1` facade, served when configured (it needs a JWT key).
    pub facade: Option<FacadeConfig>,
}

/// Why the server could not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// A non-loopback address without an explicit key.
    #[error("refusing to listen on non-loopback address {0} without --preshared-key")]
    NoKeyOnPublicAddress(SocketAddr),
    /// The preshared key could not be set up.
    #[error(transparent)]
    Key(#[from] auth::KeyError),
    /// The store or engine could not be opened.
    #[error("opening the datastore: {0}")]
    Open(String),
    /// Binding or serving failed.
    #[error("HTTP server: {0}")]
    Io(#[from] std::io::Error),
    /// The HTTP listener's TLS files could not be used.
    #[error("HTTP TLS: {0}")]
    HttpTls(#[from] crate::api::tls::TlsError),
    /// Metrics registry setup failed.
    #[error(transparent)]
    Metrics(#[from] crate::api::metrics::MetricsError),
    /// The facade could not start.
    #[error("starting the /v1beta1 facade: {0}")]
    Facade(#[from] facade::StartError),
    /// The gRPC listener failed.
    #[error(transparent)]
    Grpc(#[from] grpc::GrpcError),
}

/// A running server's facts, reported once it listens.
#[derive(Debug, Clone)]
pub struct Started {
    /// The bound address (useful with port 0).
    pub http_addr: SocketAddr,
    /// Whether HTTP is served over TLS (`https://`).
    pub http_tls: bool,
    /// The bound gRPC address, if gRPC is served.
    pub grpc_addr: Option<SocketAddr>,
    /// Where the key came from.
    pub key_source: KeySource,
    /// The key itself (printed only when generated).
    pub key: String,
}

/// Serves until `shutdown` resolves; `on_start` is called once the listener is bound.
pub async fn serve(
    config: ServeConfig,
    on_start: impl FnOnce(&Started),
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<(), ServeError> {
    if config.preshared_key.is_none() {
        for addr in std::iter::once(config.http_addr).chain(config.grpc_addr) {
            if !addr.ip().is_loopback() {
                return Err(ServeError::NoKeyOnPublicAddress(addr));
            }
        }
    }
    std::fs::create_dir_all(&config.data_dir)?;
    let (key, key_source) = auth::resolve_key(config.preshared_key.as_deref(), &config.data_dir)?;
    let datastore = config
        .datastore
        .clone()
        .unwrap_or_else(|| Datastore::Embedded(config.data_dir.join("store")));
    let opened = Opened::open(
        &datastore,
        &OpenOptions {
            snapshot_window: config.snapshot_window,
            history_retention: config.history_retention,
            clock: config
                .clock
                .clone()
                .unwrap_or_else(|| OpenOptions::default().clock),
            ..OpenOptions::default()
        },
    )
    .map_err(|e| ServeError::Open(e.to_string()))?;
    let engine = Arc::new(
        Engine::new(opened.store(), config.engine.clone())
            .map_err(|e| ServeError::Open(e.to_string()))?,
    );
    let _sweeper = engine.start_expiry_sweeper(config.expiry_sweep)?;
    let service = Arc::new(Service::new(
        Arc::clone(&engine),
        config.limits.clone(),
        Arc::new(Metrics::new()?),
    ));
    // History older than the retention window is pruned on either backend: once now (a
    // restarted server does not keep what expired while it was down), then every minute.
    if let Err(err) = opened.store().prune_older_than(config.history_retention) {
        tracing::warn!(error = %err, "pruning history failed");
    }
    let _pruner = store::start_pruner(opened.store(), PRUNE_EVERY, config.history_retention)?;
    // Several nodes may share a database: follow what the others commit.
    let _follower = match &opened {
        Opened::Postgres(_) => {
            let notify = Arc::clone(&service);
            Some(Engine::start_follower(
                &engine,
                FOLLOW_EVERY,
                move |head| notify.publish(head),
            )?)
        }
        Opened::Embedded(_) => None,
    };
    let extra = match &config.facade {
        Some(facade_config) => {
            let notify = Arc::clone(&service);
            let (facade, outcome) = facade::start(
                Arc::clone(&engine),
                facade_config,
                Box::new(move |revision| notify.publish(revision)),
            )?;
            tracing::info!(schema = ?outcome, "serving the facades (/v1beta1, /api, /public, /scim/v2)");
            facade::router(Arc::new(facade.bounded_by(service.admission())))
        }
        None => axum::Router::new(),
    };
    let extra = extra.merge(playground::router(key.clone()));
    let (stopping, stopping_rx) = watch::channel(false);
    let router = http::router_with(
        Arc::clone(&service),
        HttpOptions {
            preshared_key: key.clone(),
            watch_checkpoint: config.watch_checkpoint,
            shutdown: stopping_rx.clone(),
        },
        extra,
    );
    // TLS files are read before anything listens, so a bad certificate stops the start.
    let http_tls = config
        .http_tls
        .as_ref()
        .map(|files| tls::server_config(&files.cert, &files.key))
        .transpose()?;
    let listener = tokio::net::TcpListener::bind(config.http_addr).await?;
    let grpc_listener = match config.grpc_addr {
        Some(addr) => Some(tokio::net::TcpListener::bind(addr).await?),
        None => None,
    };
    let started = Started {
        http_addr: listener.local_addr()?,
        http_tls: http_tls.is_some(),
        grpc_addr: grpc_listener.as_ref().map(|l| l.local_addr()).transpose()?,
        key_source,
        key: key.clone(),
    };
    let grpc = match grpc_listener {
        Some(listener) => {
            let options = GrpcOptions {
                preshared_key: key,
                watch_checkpoint: config.watch_checkpoint,
                shutdown: stopping_rx.clone(),
                tls: config.grpc_tls,
            };
            Some((grpc::router(service, options).await?, listener))
        }
        None => None,
    };
    on_start(&started);
    tracing::info!(addr = %started.http_addr, "serving HTTP");
    if let Some(addr) = started.grpc_addr {
        tracing::info!(%addr, "serving gRPC");
    }
    // Both listeners stop when the shutdown future resolves, or when either of them fails.
    // Setting `stopping` also ends watch streams, so in-flight requests can finish.
    let stopping = Arc::new(stopping);
    let mut http_stop = stopping_rx.clone();
    let mut grpc_stop = stopping_rx;
    let signal = Arc::clone(&stopping);
    let http_shutdown = async move {
        tokio::select! {
            () = shutdown => {
                tracing::info!("shutting down: finishing in-flight requests");
                let _ = signal.send(true);
            }
            () = stopped(&mut http_stop) => {}
        }
    };
    // `into_make_service` turns every route into a service once, here; serving the `Router`
    // itself would rebuild all of them (some hundred boxed services) for every connection,
    // which made a flood of one-request connections (junk keys, `Connection: close`) cost
    // the server far more than its 401 answers.
    // Each request runs with its connection's trust at hand (`requests`), so a credential
    // check that passes takes the connection out of the unauthenticated budget.
    let router = router.into_make_service_with_connect_info::<connections::Trust>();
    let max_connections = config.limits.max_http_connections;
    let max_unauthenticated = config.limits.max_unauthenticated_connections;
    let http: std::pin::Pin<Box<dyn std::future::Future<Output = std::io::Result<()>> + Send>> =
        match http_tls {
            Some(tls_config) => {
                let listener = tls::TlsListener::new(listener, tls_config)?;
                let listener = Budgeted::new(listener, max_connections, max_unauthenticated);
                Box::pin(async move {
                    axum::serve(listener, router)
                        .with_graceful_shutdown(http_shutdown)
                        .await
                })
            }
            None => Box::pin(async move {
                let listener = Budgeted::new(listener, max_connections, max_unauthenticated);
                axum::serve(listener, router)
                    .with_graceful_shutdown(http_shutdown)
                    .await
            }),
        };
    let mut grpc_deadline = grpc_stop.clone();
    let grpc = async move {
        let Some((router, listener)) = grpc else {
            return Ok(());
        };
        let stop = async move { stopped(&mut grpc_stop).await };
        // HTTP/2's graceful close waits for every client to acknowledge it; a client that
        // never does must not keep the server alive forever.
        let deadline = async move {
            stopped(&mut grpc_deadline).await;
            tokio::time::sleep(GRPC_SHUTDOWN_GRACE).await;
            tracing::warn!("gRPC clients did not close in time; dropping their connections");
        };
        tokio::select! {
            result = grpc::serve(router, listener, stop) => result,
            () = deadline => Ok(()),
        }
    };
    let (http, grpc) = tokio::join!(
        async {
            let result = http.await;
            let _ = stopping.send(true);
            result
        },
        async {
            let result = grpc.await;
            let _ = stopping.send(true);
            result
        }
    );
    http?;
    grpc?;
    Ok(())
}

/// The path of every HTTP route [`serve`] can serve (the `/v1/` API with health, metrics and
/// `/openapi.json`, the facades, the playground), read from the lists the routers are built
/// from; `tests/it/openapi.rs` checks the OpenAPI document against it.
pub fn http_paths() -> Vec<String> {
    let mut paths = http::paths();
    paths.extend(facade::paths());
    paths.extend(playground::paths());
    paths
}

/// Resolves on SIGINT or SIGTERM.
pub async fn shutdown_signal() {
    let interrupt = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = interrupt => {}
        () = terminate => {}
    }
}
