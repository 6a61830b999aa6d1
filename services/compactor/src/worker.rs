//! The polling loop: queue metrics, due tasks one at a time (memory stays bounded by one
//! document), the periodic sweep for logs without a task (and, with object storage, for
//! snapshots only Redis holds: the migration, in batches). Stops between tasks on shutdown.

use crate::task::{run_task, Context, Outcome};
use std::time::Duration;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use yws_redis::entry::now_ms;
use yws_redis::queue::{sweep, Queue};
use yws_redis::stored::{sweep_unstored, MIGRATION_BATCH};

/// Runs until `cancel` fires; the task in progress is finished first.
pub async fn run(ctx: Context, seeds: Vec<String>, cancel: CancellationToken) {
    let s = ctx.settings.clone();
    let poll = Duration::from_millis(s.poll_interval_ms);
    let sweep_every = (s.sweep_interval_ms > 0).then(|| Duration::from_millis(s.sweep_interval_ms));
    let mut next_sweep = Instant::now() + Duration::from_secs(5);
    loop {
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = tokio::time::sleep(poll) => {}
        }
        let queue = Queue::new(&ctx.redis);
        let now = now_ms();
        match queue.depth(now).await {
            Ok(depth) => {
                ctx.metrics.queue_depth.set(depth.queued as i64);
                ctx.metrics.queue_due.set(depth.due as i64);
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot read the compaction queue");
                continue;
            }
        }
        let tasks = match queue.due(now, s.batch).await {
            Ok(tasks) => tasks,
            Err(e) => {
                tracing::warn!(error = %e, "cannot read due tasks");
                continue;
            }
        };
        for task in tasks {
            if cancel.is_cancelled() {
                return;
            }
            let result = run_task(&ctx, &task).await;
            let label = match &result {
                Ok(Outcome::Compacted { .. }) => "ok",
                Ok(Outcome::Nothing { .. }) => "nothing",
                Ok(Outcome::Stale) => "stale",
                Ok(Outcome::LeaseLost) => "lease_lost",
                Ok(Outcome::Busy) => continue,
                Err(_) => "failed",
            };
            ctx.metrics.compactions.with_label_values(&[label]).inc();
            match result {
                Ok(outcome) => tracing::debug!(room = %task.room, ?outcome, "task done"),
                Err(e) => {
                    tracing::warn!(room = %task.room, error = %e, "compaction failed; will retry")
                }
            }
        }
        if let Some(every) = sweep_every {
            if Instant::now() >= next_sweep {
                next_sweep = Instant::now() + every;
                match sweep(&ctx.redis, &seeds, now_ms() + s.compact_after_ms).await {
                    Ok(found) => tracing::debug!(found, "sweep done"),
                    Err(e) => tracing::warn!(error = %e, "sweep failed"),
                }
                if ctx.storage.is_some() {
                    let due = now_ms() + s.compact_after_ms;
                    match sweep_unstored(&ctx.redis, &seeds, due, MIGRATION_BATCH).await {
                        Ok(0) => {}
                        Ok(found) => tracing::info!(
                            found,
                            "rooms queued to move their snapshot to object storage"
                        ),
                        Err(e) => tracing::warn!(error = %e, "migration sweep failed"),
                    }
                }
            }
        }
    }
}
