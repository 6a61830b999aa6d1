//! # yws-protocol
//!
//! The y-websocket wire format, as spoken by the `y-websocket` client and the reference
//! `@y/websocket-server`: a pure codec with no IO and no async, so it can be unit-tested,
//! property-tested, fuzzed (`fuzz/`) and benchmarked (`benches/`) on its own.
//!
//! ## Layout
//!
//! - [`varint`]: lib0 variable-length integers, byte arrays and strings.
//! - [`mod@decode`]: one incoming WebSocket frame → the [`Message`]s it carries, decoded one at
//!   a time as the caller asks for the next ([`Messages`]), so a frame of millions of tiny
//!   messages costs no memory per message. Trailing lone sync headers (sent by the 4.x client)
//!   are ignored.
//! - [`encode`]: outgoing messages, exactly one message per frame (3.x clients decode only the
//!   first message of a frame).
//! - [`awareness`]: the awareness update format (client id, clock, JSON state), validated
//!   whole and read entry by entry.
//! - [`structs`]: a walk over an update's structs that refuses items referring to their own
//!   client's future (which yrs does not survive).
//! - [`validate`]: turning raw update / state-vector bytes into yrs values, with errors that
//!   name what was wrong.
//!
//! Message types on the wire: `0` sync (sub-types `0` step 1, `1` step 2, `2` update),
//! `1` awareness, `2` auth, `3` query awareness.

pub mod awareness;
pub mod decode;
pub mod encode;
pub mod structs;
pub mod validate;
pub mod varint;

mod error;

pub use awareness::{AwarenessEntry, AwarenessUpdate};
pub use decode::{decode, Message, Messages};
pub use error::DecodeError;

/// Top-level message type: sync (step 1, step 2, update).
pub const MSG_SYNC: u64 = 0;
/// Top-level message type: awareness update.
pub const MSG_AWARENESS: u64 = 1;
/// Top-level message type: auth (server → client permission message).
pub const MSG_AUTH: u64 = 2;
/// Top-level message type: query awareness (ask the peer for all awareness states).
pub const MSG_QUERY_AWARENESS: u64 = 3;

/// Sync sub-type: the sender's state vector.
pub const SYNC_STEP_1: u64 = 0;
/// Sync sub-type: the update that brings the receiver up to date.
pub const SYNC_STEP_2: u64 = 1;
/// Sync sub-type: an incremental update.
pub const SYNC_UPDATE: u64 = 2;
