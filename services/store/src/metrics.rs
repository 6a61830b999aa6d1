//! [`StoreMetrics`]: what the embedded store reports to Prometheus. No label carries a room.

use prometheus::{Histogram, HistogramOpts, IntCounter, IntGauge, Registry};

/// Metrics of the embedded store, registered on the registry built in `main`.
#[derive(Debug, Clone)]
pub struct StoreMetrics {
    /// Duration of one group commit (write transaction and fsync).
    pub commit_seconds: Histogram,
    /// Updates per committed batch.
    pub batch_updates: Histogram,
    /// Commits that failed (they are retried; appends wait meanwhile).
    pub commit_errors: IntCounter,
    /// Duration of loading one room (snapshot and updates applied).
    pub load_seconds: Histogram,
    /// Snapshots written by compaction.
    pub compactions: IntCounter,
    /// Stored entries skipped as unreadable (while loading or compacting).
    pub entries_skipped: IntCounter,
    /// Updates accepted but not yet committed.
    pub pending_updates: IntGauge,
}

impl StoreMetrics {
    /// Creates the metrics and registers them on `registry`.
    pub fn new(registry: &Registry) -> Result<Self, prometheus::Error> {
        let seconds = vec![
            0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
        ];
        let counts = vec![
            1.0, 2.0, 5.0, 10.0, 20.0, 50.0, 100.0, 200.0, 500.0, 1000.0, 2000.0, 5000.0,
        ];
        let m = StoreMetrics {
            commit_seconds: Histogram::with_opts(
                HistogramOpts::new(
                    "yws_store_commit_seconds",
                    "Duration of one group commit (write transaction and fsync)",
                )
                .buckets(seconds.clone()),
            )?,
            batch_updates: Histogram::with_opts(
                HistogramOpts::new("yws_store_batch_updates", "Updates per committed batch")
                    .buckets(counts),
            )?,
            commit_errors: IntCounter::new(
                "yws_store_commit_errors_total",
                "Group commits that failed and were retried",
            )?,
            load_seconds: Histogram::with_opts(
                HistogramOpts::new(
                    "yws_store_load_seconds",
                    "Duration of loading one room from the store",
                )
                .buckets(seconds),
            )?,
            compactions: IntCounter::new(
                "yws_store_compactions_total",
                "Snapshots written by background compaction",
            )?,
            entries_skipped: IntCounter::new(
                "yws_store_entries_skipped_total",
                "Stored entries skipped as unreadable while loading or compacting",
            )?,
            pending_updates: IntGauge::new(
                "yws_store_pending_updates",
                "Updates accepted but not yet committed",
            )?,
        };
        registry.register(Box::new(m.commit_seconds.clone()))?;
        registry.register(Box::new(m.batch_updates.clone()))?;
        registry.register(Box::new(m.commit_errors.clone()))?;
        registry.register(Box::new(m.load_seconds.clone()))?;
        registry.register(Box::new(m.compactions.clone()))?;
        registry.register(Box::new(m.entries_skipped.clone()))?;
        registry.register(Box::new(m.pending_updates.clone()))?;
        Ok(m)
    }
}
