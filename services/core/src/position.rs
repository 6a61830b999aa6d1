//! [`LogPosition`]: how far into a shared log a room's document reaches.

use std::fmt;

/// A position in a room's shared log, set by the backend as it applies entries: totally
/// ordered, and only ever advanced (see [`Room::advance_position`](crate::Room::advance_position)).
///
/// Core does not interpret it; the backend defines the two parts (Redis: a stream id,
/// `major` = milliseconds, `minor` = sequence). It travels from the room to the backend again
/// when a cluster-wide decision depends on how much of the log a state covers (HTTP callbacks,
/// [`RoomBackend::claim_callback`](crate::RoomBackend::claim_callback)).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct LogPosition {
    /// The more significant part.
    pub major: u64,
    /// The less significant part.
    pub minor: u64,
}

impl LogPosition {
    /// Before every entry.
    pub const START: LogPosition = LogPosition { major: 0, minor: 0 };

    /// The position `major`.`minor`.
    pub const fn new(major: u64, minor: u64) -> Self {
        LogPosition { major, minor }
    }
}

impl fmt::Display for LogPosition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.major, self.minor)
    }
}

#[cfg(test)]
mod tests {
    use super::LogPosition;

    #[test]
    fn ordered_by_major_then_minor() {
        assert!(LogPosition::new(1, 9) < LogPosition::new(2, 0));
        assert!(LogPosition::new(2, 0) < LogPosition::new(2, 1));
        assert_eq!(LogPosition::default(), LogPosition::START);
        assert_eq!(LogPosition::new(17, 3).to_string(), "17-3");
    }
}
