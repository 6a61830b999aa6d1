//! Decoding one incoming WebSocket frame into the messages it carries.

use crate::awareness::AwarenessUpdate;
use crate::varint::Reader;
use crate::{validate, DecodeError};
use crate::{
    MSG_AUTH, MSG_AWARENESS, MSG_QUERY_AWARENESS, MSG_SYNC, SYNC_STEP_1, SYNC_STEP_2, SYNC_UPDATE,
};
use yrs::StateVector;

/// One y-websocket message. Update payloads borrow from the frame; they are validated with
/// [`validate::update`] by whoever applies them, so each update is decoded exactly once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message<'a> {
    /// Sync step 1: the sender's state vector (validated).
    SyncStep1(StateVector),
    /// Sync step 2: a v1 update that brings the receiver up to date.
    SyncStep2(&'a [u8]),
    /// An incremental v1 update.
    Update(&'a [u8]),
    /// An awareness update (structure, UTF-8 and JSON validated).
    Awareness(AwarenessUpdate<'a>),
    /// Query awareness: the sender asks for every awareness state.
    QueryAwareness,
    /// An auth message; servers ignore it when it comes from a client.
    Auth {
        /// The reason given when permission was denied.
        denied: Option<&'a str>,
    },
}

impl Message<'_> {
    /// A short, bounded label for metrics.
    pub fn kind(&self) -> &'static str {
        match self {
            Message::SyncStep1(_) => "sync_step1",
            Message::SyncStep2(_) => "sync_step2",
            Message::Update(_) => "update",
            Message::Awareness(_) => "awareness",
            Message::QueryAwareness => "query_awareness",
            Message::Auth { .. } => "auth",
        }
    }
}

/// The messages of `frame`, decoded one at a time as the iterator is advanced, so a frame
/// costs no memory per message however many it carries (a 32 MiB frame of query-awareness
/// bytes holds 33 million).
///
/// A frame may carry several messages back to back; they come in order. Zero bytes left at a
/// message boundary are ignored: the 4.x client appends a lone sync header after the messages
/// of a frame (or sends a frame of nothing else), and no valid message consists of zero bytes
/// only. The first thing that does not decode is yielded as an error, and ends the iteration;
/// an empty frame is [`DecodeError::Empty`].
pub fn decode(frame: &[u8]) -> Messages<'_> {
    Messages {
        reader: Reader::new(frame),
        // Messages end with the last non-zero byte; what follows is lone sync headers.
        end: frame
            .iter()
            .rposition(|b| *b != 0)
            .map_or(0, |last| last + 1),
        state: if frame.is_empty() {
            State::Empty
        } else {
            State::Reading
        },
    }
}

/// The messages of one frame; see [`decode()`].
#[derive(Debug, Clone)]
pub struct Messages<'a> {
    reader: Reader<'a>,
    end: usize,
    state: State,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Empty,
    Reading,
    Done,
}

impl<'a> Iterator for Messages<'a> {
    type Item = Result<Message<'a>, DecodeError>;

    fn next(&mut self) -> Option<Self::Item> {
        match self.state {
            State::Done => None,
            State::Empty => {
                self.state = State::Done;
                Some(Err(DecodeError::Empty))
            }
            State::Reading if self.reader.position() >= self.end => {
                self.state = State::Done;
                None
            }
            State::Reading => {
                let message = decode_one(&mut self.reader);
                if message.is_err() {
                    self.state = State::Done;
                }
                Some(message)
            }
        }
    }
}

impl std::iter::FusedIterator for Messages<'_> {}

fn decode_one<'a>(reader: &mut Reader<'a>) -> Result<Message<'a>, DecodeError> {
    match reader.read_var_u64("message type")? {
        MSG_SYNC => match reader.read_var_u64("sync message type")? {
            SYNC_STEP_1 => {
                let sv = reader.read_var_bytes("state vector")?;
                Ok(Message::SyncStep1(validate::state_vector(sv)?))
            }
            SYNC_STEP_2 => Ok(Message::SyncStep2(reader.read_var_bytes("sync step 2")?)),
            SYNC_UPDATE => Ok(Message::Update(reader.read_var_bytes("update")?)),
            other => Err(DecodeError::UnknownSyncType(other)),
        },
        MSG_AWARENESS => {
            let payload = reader.read_var_bytes("awareness update")?;
            Ok(Message::Awareness(AwarenessUpdate::decode(payload)?))
        }
        MSG_AUTH => {
            let denied = match reader.read_var_u64("auth type")? {
                0 => {
                    let raw = reader.read_var_bytes("auth reason")?;
                    Some(
                        std::str::from_utf8(raw)
                            .map_err(|_| DecodeError::Truncated("auth reason is not UTF-8"))?,
                    )
                }
                _ => None,
            };
            Ok(Message::Auth { denied })
        }
        MSG_QUERY_AWARENESS => Ok(Message::QueryAwareness),
        other => Err(DecodeError::UnknownMessageType(other)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::awareness::AwarenessEntry;
    use crate::encode;
    use yrs::updates::encoder::Encode;
    use yrs::{Doc, ReadTxn, Text, Transact};

    fn all(frame: &[u8]) -> Result<Vec<Message<'_>>, DecodeError> {
        decode(frame).collect()
    }

    fn sample_update() -> Vec<u8> {
        let doc = Doc::with_client_id(7);
        doc.get_or_insert_text("t")
            .push(&mut doc.transact_mut(), "hi");
        let update = doc
            .transact()
            .encode_state_as_update_v1(&StateVector::default());
        update
    }

    #[test]
    fn decodes_each_message_type() {
        let update = sample_update();
        let sv = StateVector::default();
        assert_eq!(
            all(&encode::sync_step1(&sv)).unwrap(),
            vec![Message::SyncStep1(sv)]
        );
        assert_eq!(
            all(&encode::sync_step2(&update)).unwrap(),
            vec![Message::SyncStep2(&update)]
        );
        assert_eq!(
            all(&encode::update(&update)).unwrap(),
            vec![Message::Update(&update)]
        );
        assert_eq!(
            all(&encode::query_awareness()).unwrap(),
            vec![Message::QueryAwareness]
        );
        let entry = AwarenessEntry {
            client_id: 9,
            clock: 1,
            state: "{}",
        };
        let frame = encode::awareness([entry]);
        let Message::Awareness(aw) = &all(&frame).unwrap()[0] else {
            panic!("not awareness")
        };
        assert_eq!(aw.entries().collect::<Vec<_>>(), vec![entry]);
        assert_eq!(
            all(&encode::auth_denied("no")).unwrap(),
            vec![Message::Auth { denied: Some("no") }]
        );
    }

    #[test]
    fn matches_the_yrs_message_encoding() {
        use yrs::sync::{Message as YMessage, SyncMessage};
        let update = sample_update();
        let y = YMessage::Sync(SyncMessage::Update(update.clone())).encode_v1();
        assert_eq!(y, encode::update(&update));
        let y = YMessage::Sync(SyncMessage::SyncStep2(update.clone())).encode_v1();
        assert_eq!(y, encode::sync_step2(&update));
        let sv = Doc::new().transact().state_vector();
        let y = YMessage::Sync(SyncMessage::SyncStep1(sv.clone())).encode_v1();
        assert_eq!(y, encode::sync_step1(&sv));
    }

    #[test]
    fn several_messages_in_one_frame() {
        let update = sample_update();
        let mut frame = encode::update(&update);
        frame.extend(encode::query_awareness());
        frame.extend(encode::sync_step2(&update));
        let messages = all(&frame).unwrap();
        assert_eq!(messages.len(), 3);
        assert_eq!(messages[1], Message::QueryAwareness);
    }

    #[test]
    fn ignores_trailing_lone_sync_headers() {
        let update = sample_update();
        let mut frame = encode::update(&update);
        frame.push(0);
        assert_eq!(all(&frame).unwrap(), vec![Message::Update(&update)]);
        assert_eq!(all(&[0]).unwrap(), vec![]);
        assert_eq!(all(&[0, 0, 0]).unwrap(), vec![]);
    }

    #[test]
    fn yields_messages_one_at_a_time_and_stops_at_the_first_error() {
        let update = sample_update();
        let mut frame = encode::update(&update);
        frame.extend([3, 9, 3]);
        let mut messages = decode(&frame);
        assert_eq!(messages.next(), Some(Ok(Message::Update(&update))));
        assert_eq!(messages.next(), Some(Ok(Message::QueryAwareness)));
        assert_eq!(
            messages.next(),
            Some(Err(DecodeError::UnknownMessageType(9)))
        );
        assert_eq!(messages.next(), None, "nothing after an error");
        assert_eq!(messages.next(), None);
        // Millions of messages, yielded without being collected anywhere.
        let flood = vec![3u8; 4_000_000];
        assert_eq!(decode(&flood).count(), 4_000_000);
        let mut empty = decode(&[]);
        assert_eq!(empty.next(), Some(Err(DecodeError::Empty)));
        assert_eq!(empty.next(), None);
    }

    #[test]
    fn a_zero_byte_inside_the_last_message_is_not_a_trailing_header() {
        // Awareness with zero entries: `1, len 1, count 0` ends with a zero byte that belongs
        // to the message; the trailing zeros after it are lone sync headers.
        assert_eq!(
            all(&[1, 1, 0, 0, 0]).unwrap(),
            vec![Message::Awareness(AwarenessUpdate::default())]
        );
    }

    #[test]
    fn rejects_malformed_frames() {
        assert_eq!(all(&[]), Err(DecodeError::Empty));
        assert_eq!(all(&[9]), Err(DecodeError::UnknownMessageType(9)));
        assert_eq!(all(&[0, 7]), Err(DecodeError::UnknownSyncType(7)));
        assert!(matches!(
            all(&[0, 2, 10, 1]),
            Err(DecodeError::Truncated(_))
        ));
        assert!(matches!(all(&[0x80]), Err(DecodeError::Truncated(_))));
        assert!(matches!(
            all(&[0, 0, 2, 0xff, 0xff]),
            Err(DecodeError::InvalidStateVector(_))
        ));
        assert!(matches!(
            all(&[1, 4, 1, 1, 1, 0]),
            Err(DecodeError::InvalidAwareness(_))
        ));
    }
}
