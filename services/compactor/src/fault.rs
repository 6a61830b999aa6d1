//! Test-only fault points. With `YWS_COMPACTOR_FAULT=<point>` set, the process aborts (no
//! cleanup, like SIGKILL) when a compaction reaches that point — how the crash-safety tests
//! stop the real process at each step. With `YWS_COMPACTOR_PAUSE=<point>:<ms>` a compaction
//! stops at that point for that long (a replica stalled past its lease, as a long GC pause or
//! a frozen VM would). Unset in production; a value names no other effect.

use std::sync::OnceLock;

/// Where a compaction can be interrupted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Point {
    /// After merging, before the snapshot is written (with storage: before the object is put).
    BeforeWrite,
    /// With storage: after the snapshot object was put, before Redis recorded it as current.
    AfterPut,
    /// After the snapshot was written (with storage: recorded in Redis), before the log is
    /// trimmed.
    AfterWrite,
    /// After the first part of a multi-part trim.
    DuringTrim,
    /// After the trim, before the lease is released and the task rescheduled.
    AfterTrim,
    /// With storage: an idle room found evictable, before its keys are removed.
    BeforeEvict,
}

impl Point {
    fn name(self) -> &'static str {
        match self {
            Point::BeforeWrite => "before_write",
            Point::AfterPut => "after_put",
            Point::AfterWrite => "after_write",
            Point::DuringTrim => "during_trim",
            Point::AfterTrim => "after_trim",
            Point::BeforeEvict => "before_evict",
        }
    }
}

fn configured() -> Option<&'static str> {
    static FAULT: OnceLock<Option<String>> = OnceLock::new();
    FAULT
        .get_or_init(|| {
            std::env::var("YWS_COMPACTOR_FAULT")
                .ok()
                .filter(|v| !v.is_empty())
        })
        .as_deref()
}

fn pause_ms(point: Point) -> Option<u64> {
    static PAUSE: OnceLock<Option<(String, u64)>> = OnceLock::new();
    let (name, ms) = PAUSE
        .get_or_init(|| {
            let value = std::env::var("YWS_COMPACTOR_PAUSE").ok()?;
            let (name, ms) = value.split_once(':')?;
            Some((name.to_string(), ms.parse().ok()?))
        })
        .as_ref()?;
    (name == point.name()).then_some(*ms)
}

/// Waits if `point` is the configured pause point.
pub async fn pause(point: Point) {
    if let Some(ms) = pause_ms(point) {
        tracing::warn!(
            point = point.name(),
            ms,
            "YWS_COMPACTOR_PAUSE: pausing at fault point"
        );
        tokio::time::sleep(std::time::Duration::from_millis(ms)).await;
    }
}

/// Aborts the process if `point` is the configured fault point.
pub fn hit(point: Point) {
    if configured() == Some(point.name()) {
        tracing::error!(
            point = point.name(),
            "YWS_COMPACTOR_FAULT: aborting at fault point"
        );
        std::process::abort();
    }
}
