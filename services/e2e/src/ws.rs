//! A raw y-websocket client for byte-level checks.

use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use std::time::Duration;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// A connected raw client.
pub type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// Connects to `url` (e.g. `ws://127.0.0.1:1234/room`).
pub async fn connect(url: &str) -> Result<Socket, tokio_tungstenite::tungstenite::Error> {
    let (socket, _) = tokio_tungstenite::connect_async(url).await?;
    Ok(socket)
}

/// Sends one binary frame.
pub async fn send(socket: &mut Socket, frame: Vec<u8>) {
    socket
        .send(Message::Binary(Bytes::from(frame)))
        .await
        .expect("send frame");
}

/// The next binary frame, within 10 s.
pub async fn next_binary(socket: &mut Socket) -> Option<Vec<u8>> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let msg = tokio::time::timeout_at(deadline, socket.next())
            .await
            .ok()??;
        match msg {
            Ok(Message::Binary(b)) => return Some(b.to_vec()),
            Ok(Message::Close(_)) | Err(_) => return None,
            Ok(_) => continue,
        }
    }
}

/// Waits for the close frame and returns its code, within 10 s.
pub async fn close_code(socket: &mut Socket) -> Option<u16> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        match tokio::time::timeout_at(deadline, socket.next())
            .await
            .ok()??
        {
            Ok(Message::Close(Some(frame))) => return Some(frame.code.into()),
            Ok(Message::Close(None)) | Err(_) => return None,
            Ok(_) => continue,
        }
    }
}

/// A raw client that keeps its own copy of the room's document: on connect it asks for the
/// whole state (sync step 1 with an empty state vector); it applies every sync step 2 and
/// update it reads. Lets a test wait until a node has *delivered* something to its clients.
#[derive(Debug)]
pub struct Follower {
    /// The connection.
    pub socket: Socket,
    doc: yrs::Doc,
}

impl Follower {
    /// Connects to `url` and asks for the room's state.
    pub async fn connect(url: &str) -> Result<Self, tokio_tungstenite::tungstenite::Error> {
        let mut socket = connect(url).await?;
        send(
            &mut socket,
            yws_protocol::encode::sync_step1(&yrs::StateVector::default()),
        )
        .await;
        Ok(Follower {
            socket,
            doc: yrs::Doc::new(),
        })
    }

    /// The `Y.Text` named `text` (what the interop scenarios write) as received so far.
    pub fn text(&self) -> String {
        use yrs::{GetString, Transact};
        self.doc
            .get_or_insert_text("text")
            .get_string(&self.doc.transact())
    }

    /// An update, written by a new client, that appends `text` to the text received so far
    /// (the follower's own copy stays as it is: it sees the change only once delivered).
    pub fn append_update(&self, text: &str) -> Vec<u8> {
        use yrs::updates::decoder::Decode;
        use yrs::{ReadTxn, StateVector, Text, Transact, Update};
        let writer = yrs::Doc::new();
        let state = self
            .doc
            .transact()
            .encode_state_as_update_v1(&StateVector::default());
        let shared = writer.get_or_insert_text("text");
        let mut txn = writer.transact_mut();
        txn.apply_update(Update::decode_v1(&state).expect("a document's own state decodes"))
            .expect("apply the follower's state");
        let before = txn.state_vector();
        let end = shared.len(&txn);
        shared.insert(&mut txn, end, text);
        txn.encode_state_as_update_v1(&before)
    }

    /// Reads and applies frames until `done(text)` holds; false if the connection ends or
    /// `timeout` passes first.
    pub async fn wait_text(&mut self, timeout: Duration, done: impl Fn(&str) -> bool) -> bool {
        use yrs::updates::decoder::Decode;
        use yrs::{Transact, Update};
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            if done(&self.text()) {
                return true;
            }
            let frame = match tokio::time::timeout_at(deadline, self.socket.next()).await {
                Ok(Some(Ok(Message::Binary(b)))) => b,
                Ok(Some(Ok(Message::Close(_)) | Err(_)) | None) | Err(_) => return false,
                Ok(Some(Ok(_))) => continue,
            };
            for message in yws_protocol::decode(&frame).map_while(Result::ok) {
                if let yws_protocol::Message::SyncStep2(u) | yws_protocol::Message::Update(u) =
                    message
                {
                    let update = Update::decode_v1(u).expect("the server sends valid updates");
                    self.doc
                        .transact_mut()
                        .apply_update(update)
                        .expect("apply update");
                }
            }
        }
    }
}
