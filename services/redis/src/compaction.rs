//! The compactor's side of the data model (filled in next).
