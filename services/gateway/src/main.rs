//! `yws-gateway`: loads configuration, sets up logging and metrics, picks the backend
//! (memory, or Redis when configured), serves until SIGTERM/SIGINT.

use anyhow::Context;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use yws_core::{MemoryBackend, RoomBackend};
use yws_gateway::config::GatewayConfig;
use yws_gateway::server::{self, bind};
use yws_gateway::state::Gateway;
use yws_objects::{ObjectStorage, StorageEnv, StorageMetrics};
use yws_redis::{RedisBackend, RedisMetrics};
use yws_store::{StoreBackend, StoreMetrics};
use yws_telemetry::Health;

fn main() {
    yws_telemetry::process::main(
        "yws-gateway",
        GatewayConfig::load,
        |c: &GatewayConfig| &c.log,
        run,
    );
}

async fn run(config: GatewayConfig) -> anyhow::Result<()> {
    let shutdown = yws_telemetry::signals::termination();
    yws_redis::install_tls_provider();
    tracing::info!(config = ?config, "starting yws-gateway {}", env!("CARGO_PKG_VERSION"));
    // Reads the JWT key file: a key that cannot be used is invalid configuration (exit 64).
    let authorizer = yws_auth::Authorizer::new(&config.auth)
        .map_err(|e| yws_config::ConfigError::Invalid(e.to_string()))?;
    let registry = yws_telemetry::metrics::registry();
    let health = Health::new();
    let addr = config.listen_addr()?;
    let metrics_port = config.server.metrics_port;
    let backlog = config.server.listen_backlog;
    let background = TaskTracker::new();
    let background_cancel = CancellationToken::new();

    let mut store: Option<Arc<StoreBackend>> = None;
    let (backend, mode): (Arc<dyn RoomBackend>, &str) = if config.redis.enabled() {
        let metrics = RedisMetrics::new(&registry)?;
        let timeout = Duration::from_millis(config.rooms.awareness_timeout_ms);
        let storage = if config.storage.enabled() {
            let storage = ObjectStorage::open(
                &config.storage,
                &StorageEnv::from_process(),
                StorageMetrics::new(&registry)?,
            )?;
            tracing::info!(
                url = storage.url(),
                "rooms not in redis load from object storage"
            );
            Some(storage)
        } else {
            None
        };
        let backend = RedisBackend::connect(
            config.redis.clone(),
            metrics,
            storage,
            timeout,
            &background,
            background_cancel.clone(),
        )
        .await
        .context("cannot connect to redis")?;
        (backend, "cluster: rooms shared through redis")
    } else if config.persistence.enabled() {
        let metrics = StoreMetrics::new(&registry)?;
        let backend = Arc::new(
            StoreBackend::start(config.persistence.clone(), metrics)
                .await
                .context("cannot open the document store (YPERSISTENCE)")?,
        );
        tracing::info!(path = %backend.path().display(), "documents persisted");
        store = Some(backend.clone());
        (backend, "standalone: documents persisted on disk")
    } else {
        (Arc::new(MemoryBackend), "standalone: documents in memory")
    };
    let gateway = Gateway::new(
        &config,
        backend.clone(),
        authorizer,
        registry.clone(),
        health.clone(),
    )?;
    if let Some(availability) = backend.availability() {
        background.spawn(server::watch_backend(
            gateway.clone(),
            availability,
            background_cancel.clone(),
        ));
    }
    let listener = bind(addr, backlog)
        .await
        .with_context(|| format!("cannot listen on {addr}"))?;
    tracing::info!(mode, "serving");

    if metrics_port != 0 {
        let admin_addr = std::net::SocketAddr::new(addr.ip(), metrics_port);
        let admin = yws_telemetry::admin::bind(admin_addr)
            .await
            .with_context(|| format!("cannot listen on {admin_addr}"))?;
        tracing::info!(metrics_addr = %admin_addr, "metrics, probes and the admin console");
        background.spawn(server::serve_metrics_port(
            gateway.clone(),
            admin,
            background_cancel.clone(),
            background.clone(),
        ));
    }
    server::serve(gateway, listener, shutdown).await;
    if let Some(store) = store {
        // Rooms are closed (their updates queued); commit everything before exiting.
        if let Err(e) = store.shutdown().await {
            tracing::error!(error = %e, "document store did not shut down cleanly");
        }
    }
    background_cancel.cancel();
    background.close();
    background.wait().await;
    Ok(())
}
