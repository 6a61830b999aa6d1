//! A deadline for slow readers: while a connection speaks HTTP, a write (a response, or the
//! 101 of an upgrade) that makes no progress for `server.handshake_timeout_ms` fails with
//! [`io::ErrorKind::TimedOut`], which ends the connection. A client that pipelines requests
//! and never reads the answers cannot hold its connection (and the task serving it) forever.
//!
//! Once the connection is upgraded the deadline is disarmed ([`StallGuard::disarm`]): a
//! WebSocket session has its own policy for clients that do not keep up (the bounded outbox,
//! close 1013, and the ping deadline).

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::Sleep;

/// An IO object whose writes may stall for at most `limit` while armed.
#[derive(Debug)]
pub struct StallIo<T> {
    io: T,
    limit: Duration,
    armed: Arc<AtomicBool>,
    /// Started when a write first returns `Pending`; reset by any progress. Boxed and only
    /// allocated while stalled.
    stalled: Option<Pin<Box<Sleep>>>,
}

/// Disarms the deadline of one [`StallIo`] from outside (after the upgrade).
#[derive(Debug, Clone)]
pub struct StallGuard(Arc<AtomicBool>);

impl StallGuard {
    /// Writes may stall without limit from now on.
    pub fn disarm(&self) {
        self.0.store(false, Ordering::Relaxed);
    }
}

impl<T> StallIo<T> {
    /// Wraps `io` with an armed deadline of `limit`, and the guard that disarms it.
    pub fn new(io: T, limit: Duration) -> (Self, StallGuard) {
        let armed = Arc::new(AtomicBool::new(true));
        let io = StallIo {
            io,
            limit,
            armed: armed.clone(),
            stalled: None,
        };
        (io, StallGuard(armed))
    }

    /// After a write returned `Pending`: `Ready(error)` once the stall has lasted `limit`.
    fn stall<R>(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<R>> {
        if !self.armed.load(Ordering::Relaxed) {
            self.stalled = None;
            return Poll::Pending;
        }
        let limit = self.limit;
        let sleep = self
            .stalled
            .get_or_insert_with(|| Box::pin(tokio::time::sleep(limit)));
        match sleep.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "client read nothing within the write deadline",
            ))),
            Poll::Pending => Poll::Pending,
        }
    }

    fn progress<R>(
        &mut self,
        result: Poll<io::Result<R>>,
        cx: &mut Context<'_>,
    ) -> Poll<io::Result<R>> {
        match result {
            Poll::Pending => self.stall(cx),
            ready => {
                self.stalled = None;
                ready
            }
        }
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for StallIo<T> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_read(cx, buf)
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for StallIo<T> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let result = Pin::new(&mut this.io).poll_write(cx, buf);
        this.progress(result, cx)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let result = Pin::new(&mut this.io).poll_write_vectored(cx, bufs);
        this.progress(result, cx)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let result = Pin::new(&mut this.io).poll_flush(cx);
        this.progress(result, cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let result = Pin::new(&mut this.io).poll_shutdown(cx);
        this.progress(result, cx)
    }
}

/// Whether `error` (a hyper connection error) is a [`StallIo`] deadline.
pub fn is_stall(error: &(dyn std::error::Error + 'static)) -> bool {
    let mut source = Some(error);
    while let Some(e) = source {
        if e.downcast_ref::<io::Error>()
            .is_some_and(|e| e.kind() == io::ErrorKind::TimedOut)
        {
            return true;
        }
        source = e.source();
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[tokio::test(start_paused = true)]
    async fn a_stalled_write_fails_at_the_deadline_unless_disarmed() {
        let (_client, server) = tokio::io::duplex(64);
        let (mut io, guard) = StallIo::new(server, Duration::from_secs(2));
        let start = tokio::time::Instant::now();
        // Nobody reads `client`: the pipe fills, then the write stalls.
        let err = io.write_all(&[0u8; 1024]).await.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::TimedOut);
        assert!(is_stall(&err));
        assert_eq!(start.elapsed(), Duration::from_secs(2));

        // Progress resets the deadline; disarmed, a stall is waited out.
        let (mut client, server) = tokio::io::duplex(64);
        let (mut io, guard2) = StallIo::new(server, Duration::from_secs(2));
        guard2.disarm();
        let writer = async { io.write_all(&[0u8; 1024]).await };
        let reader = async {
            tokio::time::sleep(Duration::from_secs(60)).await;
            let mut buf = vec![0u8; 1024];
            client.read_exact(&mut buf).await
        };
        let (written, read) = tokio::join!(writer, reader);
        written.unwrap();
        read.unwrap();
        drop(guard);
    }

    #[tokio::test(start_paused = true)]
    async fn a_slow_but_steady_reader_is_not_cut_off() {
        let (mut client, server) = tokio::io::duplex(64);
        let (mut io, _guard) = StallIo::new(server, Duration::from_secs(2));
        let writer = async { io.write_all(&[0u8; 640]).await };
        let reader = async {
            let mut buf = [0u8; 64];
            for _ in 0..10 {
                tokio::time::sleep(Duration::from_secs(1)).await;
                client.read_exact(&mut buf).await?;
            }
            Ok::<_, io::Error>(())
        };
        let (written, read) = tokio::join!(writer, reader);
        written.unwrap();
        read.unwrap();
    }
}
