//! [`Operation`]: what a request asks to do — use one room, or act on the whole deployment.

/// What a request asks to do. The JWT and the webhook tell the two kinds apart: a room's
/// operations are covered by the `rooms` claim; deployment-wide ones need an explicit `admin`
/// grant and are never implied by any room pattern.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation<'a> {
    /// Use one room (the name as given, percent-decoded): a WebSocket join, or a document API
    /// request on it (read, update, delete).
    Room(&'a str),
    /// List the rooms of the deployment (`GET /api/rooms`): deployment-wide.
    ListRooms,
}

impl Operation<'_> {
    /// The wire spelling sent to the webhook as `operation`: `"room"` or `"list_rooms"`.
    pub fn as_str(&self) -> &'static str {
        match self {
            Operation::Room(_) => "room",
            Operation::ListRooms => "list_rooms",
        }
    }

    /// The room this operation is about; `None` for deployment-wide operations.
    pub fn room(&self) -> Option<&str> {
        match self {
            Operation::Room(room) => Some(room),
            Operation::ListRooms => None,
        }
    }

    /// Whether the operation concerns the whole deployment (and so needs `admin`).
    pub fn is_deployment_wide(&self) -> bool {
        self.room().is_none()
    }
}
