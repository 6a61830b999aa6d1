//! Compactor metrics.

use prometheus::{Histogram, HistogramOpts, IntCounter, IntCounterVec, IntGauge, Opts, Registry};

/// Results of a compaction task, as labelled.
pub const RESULTS: [&str; 5] = ["ok", "nothing", "failed", "stale", "lease_lost"];

/// The compactor's metrics.
#[derive(Debug, Clone)]
pub struct CompactorMetrics {
    /// Tasks by result.
    pub compactions: IntCounterVec,
    /// Duration of a task that merged something.
    pub duration_seconds: Histogram,
    /// Size of written snapshots.
    pub snapshot_bytes: Histogram,
    /// Log entries merged into snapshots.
    pub entries_merged: IntCounter,
    /// Bytes of log entries merged.
    pub log_bytes_merged: IntCounter,
    /// Tasks in the queue.
    pub queue_depth: IntGauge,
    /// Tasks due now.
    pub queue_due: IntGauge,
    /// Tasks taken over from a replica that died mid-task.
    pub lease_takeovers: IntCounter,
    /// Empty, fully compacted logs deleted.
    pub logs_deleted: IntCounter,
    /// Idle rooms evicted from Redis (object storage holds them).
    pub rooms_evicted: IntCounter,
    /// Snapshots only Redis held, stored by the migration to object storage.
    pub snapshots_migrated: IntCounter,
    /// Log entries left out of snapshots because yrs panicked integrating them.
    pub entries_quarantined: IntCounter,
}

impl CompactorMetrics {
    /// Creates and registers the metrics.
    pub fn new(registry: &Registry) -> Result<Self, prometheus::Error> {
        let m = CompactorMetrics {
            compactions: IntCounterVec::new(
                Opts::new(
                    "yws_compactor_compactions_total",
                    "Compaction tasks by result",
                ),
                &["result"],
            )?,
            duration_seconds: Histogram::with_opts(
                HistogramOpts::new(
                    "yws_compactor_compaction_duration_seconds",
                    "Duration of compactions that merged log entries",
                )
                .buckets(vec![
                    0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
                    60.0,
                ]),
            )?,
            snapshot_bytes: Histogram::with_opts(
                HistogramOpts::new("yws_compactor_snapshot_bytes", "Size of written snapshots")
                    .buckets(prometheus::exponential_buckets(256.0, 4.0, 10)?),
            )?,
            entries_merged: IntCounter::new(
                "yws_compactor_entries_merged_total",
                "Log entries merged into snapshots",
            )?,
            log_bytes_merged: IntCounter::new(
                "yws_compactor_log_bytes_merged_total",
                "Bytes of log entries merged into snapshots",
            )?,
            queue_depth: IntGauge::new(
                "yws_compactor_queue_depth",
                "Rooms in the compaction queue",
            )?,
            queue_due: IntGauge::new("yws_compactor_queue_due", "Rooms due for compaction now")?,
            lease_takeovers: IntCounter::new(
                "yws_compactor_lease_takeovers_total",
                "Tasks taken over from a replica that died mid-task",
            )?,
            logs_deleted: IntCounter::new(
                "yws_compactor_logs_deleted_total",
                "Empty, fully compacted logs deleted",
            )?,
            rooms_evicted: IntCounter::new(
                "yws_compactor_rooms_evicted_total",
                "Idle rooms whose keys were removed from Redis because their snapshot is in object storage",
            )?,
            snapshots_migrated: IntCounter::new(
                "yws_compactor_snapshots_migrated_total",
                "Snapshots only Redis held (written before object storage was on) stored by the migration sweep",
            )?,
            entries_quarantined: IntCounter::new(
                "yws_compactor_entries_quarantined_total",
                "Log entries left out of snapshots because the CRDT library panicked on them",
            )?,
        };
        registry.register(Box::new(m.compactions.clone()))?;
        registry.register(Box::new(m.duration_seconds.clone()))?;
        registry.register(Box::new(m.snapshot_bytes.clone()))?;
        registry.register(Box::new(m.entries_merged.clone()))?;
        registry.register(Box::new(m.log_bytes_merged.clone()))?;
        registry.register(Box::new(m.queue_depth.clone()))?;
        registry.register(Box::new(m.queue_due.clone()))?;
        registry.register(Box::new(m.lease_takeovers.clone()))?;
        registry.register(Box::new(m.logs_deleted.clone()))?;
        registry.register(Box::new(m.rooms_evicted.clone()))?;
        registry.register(Box::new(m.snapshots_migrated.clone()))?;
        registry.register(Box::new(m.entries_quarantined.clone()))?;
        for r in RESULTS {
            m.compactions.with_label_values(&[r]);
        }
        Ok(m)
    }
}
