//! `zanzi serve`: opens the embedded store, starts the expiry sweeper and serves the HTTP API
//! (and, when configured, the `/v1beta1` facade beside it) until a shutdown signal, letting
//! in-flight requests (writes included) finish.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use crate::api::auth::{self, KeySource};
use crate::api::http::{self, HttpOptions};
use crate::api::metrics::Metrics;
use crate::api::service::{Limits, Service};
use crate::engine::{Engine, EngineConfig};
use crate::facade::{self, Facade, FacadeConfig};
use crate::store::{RocksStore, StoreOptions};

/// Everything `zanzi serve` needs, resolved from flags, environment and config file.
#[derive(Debug, Clone)]
pub struct ServeConfig {
    /// Data folder of the embedded store.
    pub data_dir: PathBuf,
    /// HTTP listen address.
    pub http_addr: SocketAddr,
    /// The preshared key; `None` means "use the stored one, or generate it".
    pub preshared_key: Option<String>,
    /// Request limits.
    pub limits: Limits,
    /// Engine tunables.
    pub engine: EngineConfig,
    /// Recent revisions readable with `atExactSnapshot`.
    pub snapshot_window: usize,
    /// How long a revision stays readable with `atExactSnapshot`.
    pub snapshot_max_age: Duration,
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
    #[error("opening the data folder: {0}")]
    Open(String),
    /// Binding or serving failed.
    #[error("HTTP server: {0}")]
    Io(#[from] std::io::Error),
    /// Metrics registry setup failed.
    #[error(transparent)]
    Metrics(#[from] crate::api::metrics::MetricsError),
    /// The facade could not start.
    #[error("starting the /v1beta1 facade: {0}")]
    Facade(#[from] facade::StartError),
}

/// A running server's facts, reported once it listens.
#[derive(Debug, Clone)]
pub struct Started {
    /// The bound address (useful with port 0).
    pub http_addr: SocketAddr,
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
    if config.preshared_key.is_none() && !config.http_addr.ip().is_loopback() {
        return Err(ServeError::NoKeyOnPublicAddress(config.http_addr));
    }
    std::fs::create_dir_all(&config.data_dir)?;
    let (key, key_source) = auth::resolve_key(config.preshared_key.as_deref(), &config.data_dir)?;
    let store = RocksStore::open(
        &config.data_dir.join("store"),
        StoreOptions {
            snapshot_window: config.snapshot_window,
            snapshot_max_age: config.snapshot_max_age,
            ..StoreOptions::default()
        },
    )
    .map_err(|e| ServeError::Open(e.to_string()))?;
    let engine = Arc::new(
        Engine::new(Arc::new(store), config.engine.clone())
            .map_err(|e| ServeError::Open(e.to_string()))?,
    );
    let _sweeper = engine.start_expiry_sweeper(config.expiry_sweep)?;
    let service = Arc::new(Service::new(
        Arc::clone(&engine),
        config.limits.clone(),
        Arc::new(Metrics::new()?),
    ));
    let extra = match &config.facade {
        Some(facade_config) => {
            let notify = Arc::clone(&service);
            let (facade, outcome) = Facade::start(
                Arc::clone(&engine),
                facade_config,
                Box::new(move |revision| notify.publish(revision)),
            )?;
            tracing::info!(schema = ?outcome, "serving the /v1beta1 facade");
            let facade = Arc::new(facade);
            facade::router(Arc::clone(&facade)).merge(facade::vault::router(facade))
        }
        None => axum::Router::new(),
    };
    let (stopping, stopping_rx) = watch::channel(false);
    let router = http::router_with(
        service,
        HttpOptions {
            preshared_key: key.clone(),
            watch_checkpoint: config.watch_checkpoint,
            shutdown: stopping_rx,
        },
        extra,
    );
    let listener = tokio::net::TcpListener::bind(config.http_addr).await?;
    let started = Started {
        http_addr: listener.local_addr()?,
        key_source,
        key,
    };
    on_start(&started);
    tracing::info!(addr = %started.http_addr, "serving HTTP");
    axum::serve(listener, router)
        .with_graceful_shutdown(async move {
            shutdown.await;
            tracing::info!("shutting down: finishing in-flight requests");
            let _ = stopping.send(true);
        })
        .await?;
    Ok(())
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
