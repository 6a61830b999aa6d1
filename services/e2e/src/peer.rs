//! A y-websocket peer in Rust: a raw socket plus a yrs document that applies what the server
//! sends, for checks of exact state at sync time and for driving edits from tests. Unlike
//! [`crate::ws::connect`] it accepts frames up to 256 MiB (a whole large document arrives
//! as one sync step 2).

use crate::ws::Socket;
use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use std::time::Duration;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::Message as WsMessage;
use yrs::{Doc, ReadTxn, StateVector, Transact};
use yws_protocol::{decode, encode, Message};

const MAX_FRAME: usize = 256 * 1024 * 1024;

/// A connected peer and its document.
#[derive(Debug)]
pub struct Peer {
    socket: Socket,
    /// What the peer has received (and written).
    pub doc: Doc,
    /// Whether a sync step 2 was applied.
    pub synced: bool,
    /// Sync update frames received after connecting.
    pub updates_received: u64,
}

impl Peer {
    /// Connects to `url` (`ws://host:port/room`) with an empty document.
    pub async fn connect(url: &str) -> Result<Peer, tokio_tungstenite::tungstenite::Error> {
        let config = WebSocketConfig::default()
            .max_message_size(Some(MAX_FRAME))
            .max_frame_size(Some(MAX_FRAME));
        let (socket, _) =
            tokio_tungstenite::connect_async_with_config(url, Some(config), false).await?;
        Ok(Peer {
            socket,
            doc: Doc::new(),
            synced: false,
            updates_received: 0,
        })
    }

    /// Connects and syncs (sends step 1 with its empty state vector, applies step 2); returns
    /// the peer and the time from starting to connect until the step 2 was applied. A refused
    /// upgrade (a gateway still starting answers 503) is retried every 50 ms within `limit`.
    pub async fn join(url: &str, limit: Duration) -> (Peer, Duration) {
        let started = Instant::now();
        let deadline = started + limit;
        let mut peer = loop {
            match Peer::connect(url).await {
                Ok(peer) => break peer,
                Err(tokio_tungstenite::tungstenite::Error::Http(r))
                    if Instant::now() < deadline =>
                {
                    assert_eq!(r.status(), 503, "upgrade refused");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                Err(e) => panic!("cannot connect to {url}: {e}"),
            }
        };
        peer.sync(deadline.saturating_duration_since(Instant::now()))
            .await;
        (peer, started.elapsed())
    }

    /// Sends sync step 1 and handles frames until a sync step 2 was applied; panics after
    /// `limit`.
    pub async fn sync(&mut self, limit: Duration) {
        let sv = self.doc.transact().state_vector();
        self.send(encode::sync_step1(&sv)).await;
        let deadline = Instant::now() + limit;
        while !self.synced {
            assert!(self.next(deadline).await, "no sync step 2 within {limit:?}");
        }
    }

    /// Sends one frame.
    pub async fn send(&mut self, frame: Vec<u8>) {
        self.socket
            .send(WsMessage::Binary(Bytes::from(frame)))
            .await
            .expect("send frame");
    }

    /// Sends an update (sync update message) and applies it locally.
    pub async fn send_update(&mut self, update: &[u8]) {
        self.apply(update);
        self.send(encode::update(update)).await;
    }

    /// Handles frames until `done(self)` holds; `false` if `limit` passed or the connection
    /// ended first.
    pub async fn until(&mut self, limit: Duration, mut done: impl FnMut(&Peer) -> bool) -> bool {
        let deadline = Instant::now() + limit;
        while !done(self) {
            if !self.next(deadline).await {
                return done(self);
            }
        }
        true
    }

    /// Handles the next frame; `false` on deadline, close or error.
    pub async fn next(&mut self, deadline: Instant) -> bool {
        loop {
            let msg = match tokio::time::timeout_at(deadline, self.socket.next()).await {
                Ok(Some(Ok(msg))) => msg,
                _ => return false,
            };
            let frame = match msg {
                WsMessage::Binary(b) => b,
                WsMessage::Close(_) => return false,
                _ => continue,
            };
            let mut reply = None;
            for message in decode(&frame) {
                let message = message.expect("the server sends valid frames");
                match message {
                    Message::SyncStep1(sv) => {
                        let update = self.doc.transact().encode_diff_v1(&sv);
                        reply = Some(encode::sync_step2(&update));
                    }
                    Message::SyncStep2(update) => {
                        self.apply(update);
                        self.synced = true;
                    }
                    Message::Update(update) => {
                        self.apply(update);
                        self.updates_received += 1;
                    }
                    _ => {}
                }
            }
            if let Some(reply) = reply {
                self.send(reply).await;
            }
            return true;
        }
    }

    fn apply(&self, update: &[u8]) {
        let update = yws_protocol::validate::update(update).expect("valid update from server");
        self.doc
            .transact_mut()
            .apply_update(update)
            .expect("update applies");
    }

    /// The peer's state vector.
    pub fn state_vector(&self) -> StateVector {
        self.doc.transact().state_vector()
    }

    /// Waits (at most 10 s) for the server to close the connection; its close code. Frames
    /// read meanwhile are not applied.
    pub async fn close_code(&mut self) -> Option<u16> {
        crate::ws::close_code(&mut self.socket).await
    }

    /// Closes the connection (best effort).
    pub async fn close(mut self) {
        let _ = tokio::time::timeout(Duration::from_secs(2), self.socket.close(None)).await;
    }
}
