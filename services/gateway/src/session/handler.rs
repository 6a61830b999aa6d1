//! The messages of one incoming frame, handled as they are decoded: sync requests answered
//! (repeats of one frame once), updates written to the backend before they are applied and
//! broadcast, awareness checked against the room's limits before it is applied and relayed
//! once per frame.

use super::SessionContext;
use bytes::Bytes;
use tokio::time::Instant;
use yws_core::{
    Access, AwarenessBatch, AwarenessViolation, BackendError, CloseReason, ConnId, FrameReplies,
    Outbox, Room,
};
use yws_protocol::{decode, validate, DecodeError, Message};

/// Handles the messages of incoming frames for one connection.
pub(super) struct Handler<'a> {
    pub(super) room: &'a Room,
    pub(super) conn: ConnId,
    pub(super) access: Access,
    pub(super) outbox: &'a Outbox,
    pub(super) ctx: &'a SessionContext,
}

impl Handler<'_> {
    /// Handles the messages of one frame as they are decoded. Repeated requests of the frame
    /// are answered once ([`FrameReplies`]), and the awareness it changed is relayed once,
    /// when the frame is done — also when a later message of it ends the connection. Returns
    /// how many messages it held (what it costs under the rate limits).
    pub(super) async fn frame(&mut self, data: &[u8]) -> Result<usize, CloseReason> {
        let mut replies = FrameReplies::default();
        let mut awareness = AwarenessBatch::default();
        let handled = self.messages(data, &mut replies, &mut awareness).await;
        if let Some(payload) = self.room.flush_awareness(self.conn, &mut awareness) {
            if let Err(e) = self
                .ctx
                .backend
                .publish_awareness(self.room, &payload)
                .await
            {
                conn_event!(warn, self.room, self.conn, error = %e, "awareness not shared with other nodes");
            }
        }
        let messages = handled?;
        if let Some(sv) = replies.finish() {
            self.reply(self.room.sync_step2(&sv))?;
        }
        Ok(messages)
    }

    async fn messages(
        &mut self,
        data: &[u8],
        replies: &mut FrameReplies,
        awareness: &mut AwarenessBatch,
    ) -> Result<usize, CloseReason> {
        let metrics = &self.ctx.metrics;
        let mut count = 0;
        let mut first = true;
        for message in decode(data) {
            let message = message.map_err(|e| self.malformed(e))?;
            if std::mem::take(&mut first) {
                metrics.received.frame_bytes(message.kind(), data.len());
            }
            metrics.received.message(message.kind());
            count += 1;
            match message {
                Message::SyncStep1(sv) => {
                    if let Some(sv) = replies.step1(sv) {
                        self.reply(self.room.sync_step2(sv))?;
                    }
                }
                Message::SyncStep2(update) | Message::Update(update) => self.update(update).await?,
                Message::Awareness(update) => self
                    .room
                    .apply_awareness(self.conn, &update, awareness)
                    .map_err(|violation| self.refused(violation))?,
                Message::QueryAwareness => {
                    if replies.query_awareness() {
                        self.reply(self.room.awareness_frame())?;
                    }
                }
                Message::Auth { .. } => {} // server-to-client only; ignored like the reference
            }
        }
        Ok(count)
    }

    fn refused(&self, violation: AwarenessViolation) -> CloseReason {
        let limits = self.room.settings().awareness;
        match violation {
            AwarenessViolation::MessageTooLarge { bytes } => conn_event!(
                info,
                self.room,
                self.conn,
                bytes,
                max = limits.max_message_bytes,
                "awareness message too large; closing this connection"
            ),
            AwarenessViolation::StateTooLarge { bytes } => conn_event!(
                info,
                self.room,
                self.conn,
                bytes,
                max = limits.max_state_bytes,
                "awareness state too large; closing this connection"
            ),
            AwarenessViolation::TooManyClients => conn_event!(
                info,
                self.room,
                self.conn,
                max = limits.max_clients_per_conn,
                "connection would own too many awareness client ids; closing it"
            ),
        }
        self.ctx
            .metrics
            .awareness_rejected
            .with_label_values(&[violation.label()])
            .inc();
        CloseReason::PolicyViolation
    }

    async fn update(&mut self, raw: &[u8]) -> Result<(), CloseReason> {
        if self.access == Access::ReadOnly {
            self.ctx.metrics.readonly_updates_dropped.inc();
            return Ok(());
        }
        let update = validate::update(raw).map_err(|e| self.malformed(e))?;
        if update.is_empty() {
            return Ok(());
        }
        let started = Instant::now();
        match self.ctx.backend.append(self.room, raw).await {
            Ok(()) => {}
            Err(BackendError::Deleted) => {
                // This copy is stale: every connection of it leaves (4404), the next loads anew.
                conn_event!(
                    info,
                    self.room,
                    self.conn,
                    "update refused: the room was deleted; closing its connections"
                );
                self.room.retire();
                return Err(CloseReason::RoomDeleted);
            }
            Err(e) => {
                conn_event!(warn, self.room, self.conn, error = %e, "update not written; closing so the client retries");
                return Err(CloseReason::BackendUnavailable);
            }
        }
        self.ctx
            .metrics
            .append_seconds
            .observe(started.elapsed().as_secs_f64());
        self.room.apply_update(update, raw).map_err(|e| {
            conn_event!(warn, self.room, self.conn, error = %e, "update decoded but could not be applied");
            CloseReason::InvalidPayload
        })
    }

    fn reply(&self, frame: Bytes) -> Result<(), CloseReason> {
        self.outbox.push(frame).map_err(|_| CloseReason::TooSlow)
    }

    fn malformed(&self, e: DecodeError) -> CloseReason {
        conn_event!(info, self.room, self.conn, error = %e, "malformed message; closing this connection");
        self.ctx
            .metrics
            .malformed_messages
            .with_label_values(&[e.kind()])
            .inc();
        match e {
            DecodeError::InvalidUpdate(_)
            | DecodeError::InvalidStateVector(_)
            | DecodeError::InvalidAwareness(_) => CloseReason::InvalidPayload,
            _ => CloseReason::ProtocolError,
        }
    }
}
