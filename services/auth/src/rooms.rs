//! The JWT `rooms` claim: room names, where a trailing `*` makes a prefix pattern.

/// Whether any pattern covers `room`. `"team-a/*"` covers every room starting with `team-a/`;
/// `"*"` covers every room; anything else must equal the room name exactly. A `*` anywhere but
/// at the end is an ordinary character.
pub(crate) fn room_allowed(patterns: &[String], room: &str) -> bool {
    patterns
        .iter()
        .any(|pattern| match pattern.strip_suffix('*') {
            Some(prefix) => room.starts_with(prefix),
            None => pattern == room,
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn allowed(patterns: &[&str], room: &str) -> bool {
        let patterns: Vec<String> = patterns.iter().map(|p| (*p).to_owned()).collect();
        room_allowed(&patterns, room)
    }

    #[test]
    fn exact_names() {
        assert!(allowed(&["doc-1"], "doc-1"));
        assert!(!allowed(&["doc-1"], "doc-10"));
        assert!(!allowed(&["doc-1"], "doc-"));
        assert!(!allowed(&[], "doc-1"));
        assert!(allowed(&["a", "b"], "b"));
    }

    #[test]
    fn prefix_patterns() {
        assert!(allowed(&["team-a/*"], "team-a/notes"));
        assert!(allowed(&["team-a/*"], "team-a/deep/doc"));
        assert!(allowed(&["team-a/*"], "team-a/"));
        assert!(!allowed(&["team-a/*"], "team-a"));
        assert!(!allowed(&["team-a/*"], "team-ab/notes"));
        assert!(allowed(&["*"], "anything"));
        assert!(allowed(&["*"], ""));
    }

    #[test]
    fn inner_star_is_literal() {
        assert!(allowed(&["a*b"], "a*b"));
        assert!(!allowed(&["a*b"], "axb"));
    }
}
