//! The receive path of a client: every frame the server sends, accounted for. Updates of
//! other clients are identified by their header alone and kept as keys into the room.

use super::{Client, Session, Ws};
use crate::header;
use crate::replica::{hash_bytes, EMPTY_UPDATE};
use crate::room::Seen;
use anyhow::bail;
use bytes::Bytes;
use tokio::time::Instant;
use yws_protocol::{encode, Message};

impl Client {
    pub(super) async fn on_frame(
        &mut self,
        ws: &mut Ws,
        s: &mut Session,
        frame: Bytes,
    ) -> anyhow::Result<()> {
        if let Some(range) = header::sync_update_payload(&frame) {
            let len = frame.len();
            let latency = self.on_update(frame.slice(range));
            self.shared.metrics.frame(self.spec.id, len, latency);
            return Ok(());
        }
        self.shared.metrics.frame(self.spec.id, frame.len(), None);
        for message in yws_protocol::decode(&frame) {
            let message = match message {
                Ok(m) => m,
                Err(e) => {
                    self.shared.metrics.add(|c| &c.protocol_errors, 1);
                    tracing::debug!(client = self.spec.id, error = %e, "undecodable frame");
                    return Ok(());
                }
            };
            match message {
                Message::SyncStep1(sv) => {
                    let diff = self.replica.diff(&self.spec.room, &sv);
                    let answered = diff[..] != EMPTY_UPDATE;
                    self.send(ws, encode::sync_step2(&diff)).await?;
                    if self.seed.is_some() {
                        // Seeder of a split seed: start writing it (see `seed_next`).
                        s.seeding = true;
                    } else if answered && self.spec.ready.is_some() && !s.confirm_sent {
                        // Seeder: a second step 1 whose answer proves the seed was applied.
                        s.confirm_sent = true;
                        let sv = self.replica.state_vector(&self.spec.room);
                        self.send(ws, encode::sync_step1(&sv)).await?;
                    }
                }
                Message::SyncStep2(payload) => self.on_step2(s, frame.slice_ref(payload)),
                Message::Update(payload) => {
                    if let Some(latency) = self.on_update(frame.slice_ref(payload)) {
                        self.shared.metrics.delivery(self.spec.id, latency);
                    }
                }
                Message::Awareness(_) => self.shared.metrics.add(|c| &c.awareness_received, 1),
                Message::QueryAwareness => {
                    if self.shared.settings.awareness_rate > 0.0 {
                        self.send_awareness(ws).await?;
                    }
                }
                Message::Auth { denied } => {
                    bail!("permission denied: {}", denied.unwrap_or("no reason given"))
                }
            }
        }
        Ok(())
    }

    fn on_step2(&mut self, s: &mut Session, payload: Bytes) {
        let metrics = &self.shared.metrics;
        s.step2s += 1;
        if !s.synced {
            s.synced = true;
            s.permit = None;
            let us = u64::try_from(s.started.elapsed().as_micros()).unwrap_or(u64::MAX);
            metrics.synced(self.spec.id, us, !self.ever_synced);
            self.ever_synced = true;
            self.last.synced_at = Some(tokio::time::Instant::now());
        }
        metrics.step2_bytes(payload.len() as u64);
        tracing::trace!(client = self.spec.id, bytes = payload.len(), "sync step 2");
        if payload[..] != EMPTY_UPDATE {
            let hash = hash_bytes(&payload);
            self.spec.room.store_initial(hash, &payload);
            self.replica.push_initial(hash);
        }
        if s.confirm_sent && s.step2s >= 2 {
            if let Some(ready) = self.spec.ready.take() {
                let _ = ready.send(());
            }
        }
    }

    /// Accounts for a received update; returns its fan-out latency when it is a delivery of
    /// another client's update (the caller records it).
    fn on_update(&mut self, payload: Bytes) -> Option<u64> {
        let metrics = &self.shared.metrics;
        let room = &self.spec.room;
        let Some(id) = header::update_id(&payload) else {
            metrics.add(|c| &c.unmatched, 1);
            self.replica.push_owned(payload, room);
            return None;
        };
        if id.client == self.spec.id {
            // An echo (the reference server sends updates back to their author). Content
            // written by this client alone is in its document already.
            if room.is_sent_copy(id, &payload) || header::client_count(&payload) == Some(1) {
                metrics.add(|c| &c.echoes, 1);
            } else {
                self.replica.push_owned(payload, room);
            }
            return None;
        }
        match room.seen(id, &payload, Instant::now()) {
            Seen::Sent { latency_us } => {
                self.replica.push_key(id, false);
                Some(latency_us)
            }
            Seen::Relayed { latency_us } => {
                self.count_merged(&payload, Some(id));
                self.replica.push_key(id, true);
                Some(latency_us)
            }
            Seen::Different { latency_us } => {
                self.count_merged(&payload, Some(id));
                self.replica.push_owned(payload, room);
                Some(latency_us)
            }
            Seen::Unknown => {
                if self.count_merged(&payload, None) == 0 {
                    metrics.add(|c| &c.unmatched, 1);
                }
                self.replica.push_owned(payload, room);
                None
            }
        }
    }

    /// Bytes that are not what a writer sent may be several updates merged by the server:
    /// records a delivery for each further update they carry; returns how many.
    fn count_merged(&self, payload: &[u8], counted: Option<header::UpdateId>) -> usize {
        let latencies =
            self.spec
                .room
                .merged_deliveries(payload, self.spec.id, counted, Instant::now());
        for latency in &latencies {
            self.shared.metrics.delivery(self.spec.id, *latency);
        }
        latencies.len()
    }
}
