//! The JWT `rooms` claim: room names and prefix patterns.
//!
//! # Grammar
//!
//! A pattern is read left to right:
//!
//! - `\*` stands for a literal `*`, `\\` for a literal `\`; a `\` before any other character
//!   (or at the end) is itself;
//! - an unescaped `*` that is the **last** character makes the pattern a *prefix pattern*:
//!   it covers every room whose name starts with what precedes it (`team-a/*` covers
//!   `team-a/notes` and `team-a/`, not `team-a`); `*` alone covers every room;
//! - an unescaped `*` anywhere else is a literal `*` (`a*b` is the room `a*b`);
//! - every other pattern names one room exactly.
//!
//! So only a single trailing `*` is a wildcard: `**` covers the rooms whose names start with
//! `*`, `a\*` is exactly the room `a*`, and `a\\*` covers the rooms starting with `a\`.
//! No pattern grants deployment-wide operations such as listing rooms: those need the
//! `admin` claim.

/// One parsed entry of the `rooms` claim.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum RoomPattern {
    /// Exactly this room.
    Exact(String),
    /// Every room whose name starts with this.
    Prefix(String),
}

impl RoomPattern {
    /// Parses `pattern` by the [grammar](self); every string is a valid pattern.
    pub(crate) fn parse(pattern: &str) -> Self {
        let mut literal = String::with_capacity(pattern.len());
        let mut chars = pattern.chars().peekable();
        while let Some(c) = chars.next() {
            match c {
                '\\' => match chars.peek() {
                    Some(&next @ ('*' | '\\')) => {
                        literal.push(next);
                        chars.next();
                    }
                    _ => literal.push('\\'),
                },
                '*' if chars.peek().is_none() => return RoomPattern::Prefix(literal),
                c => literal.push(c),
            }
        }
        RoomPattern::Exact(literal)
    }

    /// Whether this pattern covers `room`.
    pub(crate) fn matches(&self, room: &str) -> bool {
        match self {
            RoomPattern::Exact(name) => name == room,
            RoomPattern::Prefix(prefix) => room.starts_with(prefix.as_str()),
        }
    }
}

/// Whether any pattern covers `room`.
pub(crate) fn room_allowed(patterns: &[String], room: &str) -> bool {
    patterns
        .iter()
        .any(|pattern| RoomPattern::parse(pattern).matches(room))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn allowed(patterns: &[&str], room: &str) -> bool {
        let patterns: Vec<String> = patterns.iter().map(|p| (*p).to_owned()).collect();
        room_allowed(&patterns, room)
    }

    fn exact(s: &str) -> RoomPattern {
        RoomPattern::Exact(s.to_owned())
    }

    fn prefix(s: &str) -> RoomPattern {
        RoomPattern::Prefix(s.to_owned())
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
        assert_eq!(RoomPattern::parse("*a"), exact("*a"));
    }

    #[test]
    fn only_the_last_star_is_a_wildcard() {
        assert_eq!(RoomPattern::parse("**"), prefix("*"));
        assert!(allowed(&["**"], "*"));
        assert!(allowed(&["**"], "*anything"));
        assert!(!allowed(&["**"], "anything"), "`**` is not `*`");
        assert_eq!(RoomPattern::parse("a**"), prefix("a*"));
        assert!(!allowed(&["a**"], "ab"));
        assert!(allowed(&["a**"], "a*b"));
    }

    #[test]
    fn escaped_trailing_star_is_literal() {
        assert_eq!(RoomPattern::parse(r"a\*"), exact("a*"));
        assert!(allowed(&[r"a\*"], "a*"));
        assert!(!allowed(&[r"a\*"], "ab"));
        assert!(!allowed(&[r"a\*"], "a*b"));
        assert_eq!(RoomPattern::parse(r"\*"), exact("*"));
        assert!(allowed(&[r"\*"], "*"));
        assert!(!allowed(&[r"\*"], "x"));
        // An escaped star followed by a wildcard: rooms starting with `*`.
        assert_eq!(RoomPattern::parse(r"\**"), prefix("*"));
    }

    #[test]
    fn backslashes() {
        assert_eq!(RoomPattern::parse(r"a\\*"), prefix(r"a\"));
        assert!(allowed(&[r"a\\*"], r"a\b"));
        assert!(!allowed(&[r"a\\*"], "ab"));
        assert_eq!(RoomPattern::parse(r"a\\\*"), exact(r"a\*"));
        // A backslash before anything else, or at the end, is itself.
        assert_eq!(RoomPattern::parse(r"a\b"), exact(r"a\b"));
        assert_eq!(RoomPattern::parse(r"a\"), exact(r"a\"));
        assert!(allowed(&[r"dir\name"], r"dir\name"));
    }

    #[test]
    fn empty_pattern_covers_only_the_empty_name() {
        assert_eq!(RoomPattern::parse(""), exact(""));
        assert!(!allowed(&[""], "a"));
    }
}
