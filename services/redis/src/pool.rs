//! Pooled connections recycled without a round trip.
//!
//! deadpool-redis's managers check every connection on every checkout with `PING` (and
//! `UNWATCH`): a round trip to Redis before each call, which cost as much as the call itself.
//! [`Lean`] wraps those managers (it still uses them to open connections) and recycles a
//! connection without asking Redis: a [`Tracked`] connection records, as calls on it fail,
//! whether it can be trusted, and a connection that is not is dropped at its next checkout.
//!
//! A connection is distrusted after an error of the connection itself (I/O, dropped,
//! unrecoverable) or a call abandoned mid-way (a timeout: the reply may still arrive, or the
//! server may hang). Errors Redis answers with (a script error, `READONLY`, `NOSCRIPT`) leave
//! the connection in use. The node's health loop pings Redis anyway, and drops every idle
//! connection when a ping fails ([`crate::Redis::drop_idle`]), so after a Redis restart the
//! pool does not hand out connections to the old process one by one.

use deadpool::managed::{self, Metrics, RecycleError, RecycleResult};
use redis::aio::ConnectionLike;
use redis::{Cmd, Pipeline, RedisError, RedisFuture, Value};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// A connection with a record of whether it can be trusted.
#[allow(
    missing_debug_implementations,
    reason = "wraps redis connections, which are not Debug"
)]
pub struct Tracked<C> {
    conn: C,
    broken: Arc<AtomicBool>,
}

impl<C> Tracked<C> {
    fn new(conn: C) -> Self {
        Tracked {
            conn,
            broken: Arc::new(AtomicBool::new(false)),
        }
    }

    /// The connection itself, for calls outside [`ConnectionLike`] (they are not tracked).
    pub fn inner(&mut self) -> &mut C {
        &mut self.conn
    }

    /// Whether a call on it failed in a way that makes the connection unusable.
    pub fn is_broken(&self) -> bool {
        self.broken.load(Ordering::Relaxed)
    }
}

/// Whether an error means the connection (not the command) failed.
pub(crate) fn breaks_connection(e: &RedisError) -> bool {
    e.is_io_error() || e.is_connection_dropped() || e.is_unrecoverable_error() || e.is_timeout()
}

/// Marks the connection broken unless disarmed: a call dropped before its reply (a timeout)
/// leaves the connection in an unknown state.
struct Abandoned(Arc<AtomicBool>, bool);

impl Drop for Abandoned {
    fn drop(&mut self) {
        if self.1 {
            self.0.store(true, Ordering::Relaxed);
        }
    }
}

async fn tracked<T>(broken: Arc<AtomicBool>, call: RedisFuture<'_, T>) -> Result<T, RedisError> {
    let mut guard = Abandoned(broken, true);
    let result = call.await;
    guard.1 = false;
    if let Err(e) = &result {
        if breaks_connection(e) {
            guard.0.store(true, Ordering::Relaxed);
        }
    }
    result
}

impl<C: ConnectionLike + Send> ConnectionLike for Tracked<C> {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        let broken = self.broken.clone();
        Box::pin(tracked(broken, self.conn.req_packed_command(cmd)))
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        cmd: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        let broken = self.broken.clone();
        Box::pin(tracked(
            broken,
            self.conn.req_packed_commands(cmd, offset, count),
        ))
    }

    fn get_db(&self) -> i64 {
        self.conn.get_db()
    }
}

/// A deadpool-redis manager whose connections are recycled without a round trip.
pub struct Lean<M>(pub M);

impl<M> std::fmt::Debug for Lean<M> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Lean")
    }
}

impl<M> managed::Manager for Lean<M>
where
    M: managed::Manager,
{
    type Type = Tracked<M::Type>;
    type Error = M::Error;

    async fn create(&self) -> Result<Tracked<M::Type>, M::Error> {
        self.0.create().await.map(Tracked::new)
    }

    async fn recycle(&self, conn: &mut Tracked<M::Type>, _: &Metrics) -> RecycleResult<M::Error> {
        if conn.is_broken() {
            Err(RecycleError::message("a call on the connection failed"))
        } else {
            Ok(())
        }
    }
}

/// A pool of connections made by `M`, recycled by [`Lean`].
pub type LeanPool<M> = managed::Pool<Lean<M>>;

/// The pooled connection of a [`LeanPool`].
pub type LeanConn<M> = managed::Object<Lean<M>>;

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    /// A connection whose calls answer with a given result, or never.
    struct Fake(Option<Result<Value, RedisError>>);

    impl ConnectionLike for Fake {
        fn req_packed_command<'a>(&'a mut self, _: &'a Cmd) -> RedisFuture<'a, Value> {
            let reply = self.0.clone();
            Box::pin(async move {
                match reply {
                    Some(r) => r,
                    None => std::future::pending().await,
                }
            })
        }

        fn req_packed_commands<'a>(
            &'a mut self,
            _: &'a Pipeline,
            _: usize,
            _: usize,
        ) -> RedisFuture<'a, Vec<Value>> {
            Box::pin(async { Ok(Vec::new()) })
        }

        fn get_db(&self) -> i64 {
            0
        }
    }

    async fn after_one_call(reply: Option<Result<Value, RedisError>>) -> bool {
        let mut conn = Tracked::new(Fake(reply));
        let _ = tokio::time::timeout(
            Duration::from_millis(20),
            redis::cmd("GET").arg("k").query_async::<Value>(&mut conn),
        )
        .await;
        conn.is_broken()
    }

    #[tokio::test]
    async fn replies_and_command_errors_keep_the_connection() {
        assert!(!after_one_call(Some(Ok(Value::Okay))).await);
        let script_error = RedisError::from((
            redis::ErrorKind::Server(redis::ServerErrorKind::ResponseError),
            "script failed",
        ));
        assert!(!breaks_connection(&script_error));
        assert!(!after_one_call(Some(Err(script_error))).await);
    }

    #[tokio::test]
    async fn connection_errors_and_abandoned_calls_break_it() {
        let io = RedisError::from(std::io::Error::from(std::io::ErrorKind::ConnectionReset));
        assert!(breaks_connection(&io));
        assert!(after_one_call(Some(Err(io))).await);
        assert!(after_one_call(None).await, "a call that timed out");
    }
}
