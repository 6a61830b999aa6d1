//! Termination signals.

use std::future::Future;

/// Registers SIGTERM and SIGINT handlers *now* (call it first thing in the runtime, so a
/// signal that arrives during startup is not lost to the default action) and returns a future
/// that completes on the first of them.
pub fn termination() -> impl Future<Output = ()> {
    use tokio::signal::unix::{signal, SignalKind};
    let term = signal(SignalKind::terminate());
    let int = signal(SignalKind::interrupt());
    async move {
        match (term, int) {
            (Ok(mut term), Ok(mut int)) => {
                tokio::select! {
                    _ = term.recv() => tracing::info!("SIGTERM received"),
                    _ = int.recv() => tracing::info!("SIGINT received"),
                }
            }
            (term, int) => {
                tracing::warn!(
                    term = term.is_ok(),
                    int = int.is_ok(),
                    "cannot listen for termination signals; waiting for Ctrl-C"
                );
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
}
