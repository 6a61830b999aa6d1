//! `yws-compactor`: merges room logs into snapshots until SIGTERM/SIGINT.

use anyhow::Context as _;
use std::sync::Arc;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use yws_compactor::config::CompactorConfig;
use yws_compactor::metrics::CompactorMetrics;
use yws_compactor::task::Context;
use yws_objects::{ObjectStorage, StorageEnv, StorageMetrics};
use yws_redis::config::Topology;
use yws_redis::{Redis, RedisMetrics};
use yws_telemetry::Health;

fn main() {
    yws_telemetry::process::main(
        "yws-compactor",
        CompactorConfig::load,
        |c: &CompactorConfig| &c.log,
        run,
    );
}

async fn run(config: CompactorConfig) -> anyhow::Result<()> {
    let shutdown = yws_telemetry::signals::termination();
    yws_redis::install_tls_provider();
    tracing::info!(config = ?config, "starting yws-compactor {}", env!("CARGO_PKG_VERSION"));
    let registry = yws_telemetry::metrics::registry();
    let health = Health::new();
    let redis_metrics = RedisMetrics::new(&registry)?;
    let metrics = CompactorMetrics::new(&registry)?;
    let redis = Arc::new(Redis::new(&config.redis, redis_metrics)?);
    let storage = if config.storage.enabled() {
        let storage = ObjectStorage::open(
            &config.storage,
            &StorageEnv::from_process(),
            StorageMetrics::new(&registry)?,
        )?;
        tracing::info!(
            url = storage.url(),
            "snapshots are written to object storage"
        );
        Some(storage)
    } else {
        None
    };
    let seeds = match config.redis.topology()? {
        Topology::Single(url) => vec![url],
        Topology::Cluster(urls) => urls,
        Topology::Sentinel(_) => Vec::new(), // the sweep asks the Sentinels each time
    };
    let admin_addr = config.admin_addr()?;
    let listener = yws_telemetry::admin::bind(admin_addr)
        .await
        .with_context(|| format!("cannot listen on {admin_addr}"))?;
    let local_addr = listener.local_addr()?;

    let cancel = CancellationToken::new();
    let tracker = TaskTracker::new();
    tracker.spawn(yws_telemetry::admin::serve(
        listener,
        health.clone(),
        registry,
        cancel.clone(),
        tracker.clone(),
    ));
    let ctx = Context {
        redis: redis.clone(),
        settings: config.compactor.clone(),
        metrics,
        storage: storage.clone(),
        evict_after_ms: config.storage.evict_after_ms,
    };
    #[expect(
        clippy::disallowed_methods,
        reason = "main owns the worker: its handle is awaited, and its unexpected end stops the process"
    )]
    let worker = tokio::spawn(yws_compactor::worker::run(ctx, seeds, cancel.clone()));
    tracker.spawn(readiness(redis, storage, health.clone(), cancel.clone()));
    health.set_started();
    tracing::info!(addr = %local_addr, "listening (/healthz /readyz /metrics)");

    shutdown.await;
    tracing::info!("shutting down: finishing the current task");
    health.set_draining();
    cancel.cancel();
    if let Err(e) = worker.await {
        tracing::error!(error = %e, "worker ended abnormally");
    }
    tracker.close();
    tracker.wait().await;
    tracing::info!("shutdown complete");
    Ok(())
}

/// Keeps `/readyz` in step with the reachability of Redis and (when configured) of object
/// storage: a compactor that cannot store snapshots is not ready.
async fn readiness(
    redis: Arc<Redis>,
    storage: Option<ObjectStorage>,
    health: Health,
    cancel: CancellationToken,
) {
    let mut storage_was_up = true;
    let mut tick = tokio::time::interval(std::time::Duration::from_secs(1));
    loop {
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = tick.tick() => {}
        }
        let up = redis.ping().await.is_ok();
        redis.metrics.up.set(i64::from(up));
        let storage_up = match &storage {
            Some(storage) => match storage.probe().await {
                Ok(()) => true,
                Err(e) => {
                    if storage_was_up {
                        tracing::warn!(error = %e, "object storage unreachable: not ready");
                    }
                    false
                }
            },
            None => true,
        };
        if storage_up && !storage_was_up {
            tracing::info!("object storage reachable again");
        }
        storage_was_up = storage_up;
        health.set_dependency_down(!up || !storage_up);
    }
}
