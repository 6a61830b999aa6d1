//! Room names: the percent-decoded URL path of the WebSocket request.

use std::fmt;
use std::sync::Arc;
use thiserror::Error;

/// Why a room name was rejected (answered with HTTP 400 before the upgrade).
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum NameError {
    /// The name is empty.
    #[error("room name is empty")]
    Empty,
    /// The name is longer than allowed.
    #[error("room name is longer than {max} bytes")]
    TooLong {
        /// The configured maximum.
        max: usize,
    },
    /// The name contains a control character.
    #[error("room name contains a control character")]
    ControlCharacter,
    /// The percent-decoded name is not UTF-8.
    #[error("room name is not valid UTF-8")]
    NotUtf8,
}

/// A validated room name. Cheap to clone.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RoomName(Arc<str>);

impl RoomName {
    /// Validates `name`: non-empty, at most `max_bytes` long, no control characters.
    pub fn new(name: &str, max_bytes: usize) -> Result<Self, NameError> {
        if name.is_empty() {
            return Err(NameError::Empty);
        }
        if name.len() > max_bytes {
            return Err(NameError::TooLong { max: max_bytes });
        }
        if name.chars().any(char::is_control) {
            return Err(NameError::ControlCharacter);
        }
        Ok(RoomName(name.into()))
    }

    /// The name as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for RoomName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for RoomName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&*self.0, f)
    }
}

impl AsRef<str> for RoomName {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validates() {
        assert!(RoomName::new("my-room/doc 1", 64).is_ok());
        assert!(RoomName::new("ünïcødé", 64).is_ok());
        assert_eq!(RoomName::new("", 64), Err(NameError::Empty));
        assert_eq!(
            RoomName::new(&"x".repeat(65), 64),
            Err(NameError::TooLong { max: 64 })
        );
        assert_eq!(RoomName::new("a\nb", 64), Err(NameError::ControlCharacter));
        assert_eq!(
            RoomName::new("a\u{7f}b", 64),
            Err(NameError::ControlCharacter)
        );
    }
}
