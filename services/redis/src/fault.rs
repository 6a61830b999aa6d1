//! Test-only fault points. With `YWS_REDIS_FAULT=<point>` set, a gateway misbehaves at that
//! point as a failing network or server would make it — how the end-to-end tests reach races
//! that real faults only hit by chance. Unset in production; a value names no other effect.

use std::sync::OnceLock;
use std::time::Duration;

fn configured() -> Option<&'static str> {
    static FAULT: OnceLock<Option<String>> = OnceLock::new();
    FAULT
        .get_or_init(|| {
            std::env::var("YWS_REDIS_FAULT")
                .ok()
                .filter(|v| !v.is_empty())
        })
        .as_deref()
}

/// `append_reply_lost`: an append that Redis ran (its entry logged and published) is reported
/// as timed out, 200 ms after its reply — the outcome of a reply that never arrived. Returns
/// whether to pretend so, after waiting.
pub(crate) async fn append_reply_lost() -> bool {
    if configured() != Some("append_reply_lost") {
        return false;
    }
    tracing::warn!("fault point append_reply_lost: reporting a written append as timed out");
    tokio::time::sleep(Duration::from_millis(200)).await;
    true
}
