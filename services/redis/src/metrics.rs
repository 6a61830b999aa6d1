//! Metrics of the Redis client, shared by the gateway and the compactor.

use crate::op::Op;
use prometheus::{
    Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, Opts, Registry,
};
use std::time::Duration;

/// Redis client metrics.
#[derive(Debug, Clone)]
pub struct RedisMetrics {
    /// Latency of Redis calls by operation.
    pub command_seconds: HistogramVec,
    /// Failed Redis calls by operation.
    pub errors: IntCounterVec,
    /// 1 while Redis answers, 0 otherwise.
    pub up: IntGauge,
    /// Time from another node's write of a log entry to its arrival at this node: the live
    /// message received from Redis, or the entry read from the log while catching up.
    pub read_lag_seconds: Histogram,
    /// Cross-node fan-out: another node's write of a log entry → this node's hand-off of the
    /// update to its clients (applied, queued on their connections). The read lag plus the
    /// wait in this node's dispatcher (a room still loading, catch-up) and the apply.
    pub fanout_seconds: Histogram,
    /// Log entries or live messages skipped as unreadable, by reason.
    pub entries_skipped: IntCounterVec,
    /// Appends in flight on this node.
    pub inflight_writes: IntGauge,
    /// Rooms the convergence watchdog found behind their log and caught up: live delivery had
    /// lost something without noticing. Should stay 0.
    pub watchdog_repairs: IntCounter,
    /// Live rooms whose channel subscription is gone (a slot migration, a failover, a lost
    /// connection): their logs are polled every second until it is back.
    pub rooms_without_live_delivery: IntGauge,
    /// Rooms loaded cold from object storage (their snapshot was not in Redis).
    pub cold_loads: IntCounter,
    /// Duration of cold loads: listing, reading the object, writing it into Redis, loading.
    pub cold_load_seconds: Histogram,
}

impl RedisMetrics {
    /// Creates the metrics and registers them.
    pub fn new(registry: &Registry) -> Result<Self, prometheus::Error> {
        let latency_buckets = vec![
            0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0,
            2.5,
        ];
        let m = RedisMetrics {
            command_seconds: HistogramVec::new(
                HistogramOpts::new("yws_redis_command_duration_seconds", "Latency of Redis calls by operation")
                    .buckets(latency_buckets.clone()),
                &["op"],
            )?,
            errors: IntCounterVec::new(
                Opts::new("yws_redis_errors_total", "Failed Redis calls by operation"),
                &["op"],
            )?,
            up: IntGauge::new("yws_redis_up", "1 while Redis answers, 0 otherwise")?,
            read_lag_seconds: Histogram::with_opts(
                HistogramOpts::new("yws_redis_stream_read_lag_seconds", "Time from another node's write of a log entry to its arrival at this node (live message received, or entry read while catching up)")
                    .buckets(latency_buckets.clone()),
            )?,
            fanout_seconds: Histogram::with_opts(
                HistogramOpts::new("yws_gateway_fanout_latency_seconds", "Cross-node fan-out latency: another node's write of an update to its hand-off to this node's clients (applied and queued on their connections)")
                    .buckets(latency_buckets),
            )?,
            entries_skipped: IntCounterVec::new(
                Opts::new("yws_redis_entries_skipped_total", "Log entries or live messages skipped as unreadable, by reason"),
                &["reason"],
            )?,
            inflight_writes: IntGauge::new("yws_redis_inflight_writes", "Appends in flight on this node")?,
            rooms_without_live_delivery: IntGauge::new("yws_redis_rooms_without_live_delivery", "Live rooms without a working channel subscription; their logs are polled every second until it is back")?,
            cold_loads: IntCounter::new("yws_storage_cold_loads_total", "Rooms loaded cold: their snapshot read from object storage because Redis held none")?,
            cold_load_seconds: Histogram::with_opts(
                HistogramOpts::new("yws_storage_cold_load_duration_seconds", "Duration of a cold load: the newest stored snapshot listed, read and written into Redis, then the room loaded")
                    .buckets(vec![0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0]),
            )?,
            watchdog_repairs: IntCounter::new("yws_redis_watchdog_repairs_total", "Rooms the convergence watchdog found behind their log and caught up (live delivery lost something unnoticed; should stay 0)")?,
        };
        registry.register(Box::new(m.command_seconds.clone()))?;
        registry.register(Box::new(m.errors.clone()))?;
        registry.register(Box::new(m.up.clone()))?;
        registry.register(Box::new(m.read_lag_seconds.clone()))?;
        registry.register(Box::new(m.fanout_seconds.clone()))?;
        registry.register(Box::new(m.entries_skipped.clone()))?;
        registry.register(Box::new(m.inflight_writes.clone()))?;
        registry.register(Box::new(m.watchdog_repairs.clone()))?;
        registry.register(Box::new(m.rooms_without_live_delivery.clone()))?;
        registry.register(Box::new(m.cold_loads.clone()))?;
        registry.register(Box::new(m.cold_load_seconds.clone()))?;
        for op in Op::ALL {
            m.errors.with_label_values(&[op.label()]);
        }
        Ok(m)
    }

    /// Records how long a call of `op` took.
    pub fn observe(&self, op: Op, took: Duration) {
        self.command_seconds
            .with_label_values(&[op.label()])
            .observe(took.as_secs_f64());
    }

    /// Counts a failed call of `op`.
    pub fn failed(&self, op: Op) {
        self.errors.with_label_values(&[op.label()]).inc();
    }
}
