//! Compactor leases as seen in a [`crate::monitor`] trace. Redis runs commands one at a time,
//! so the trace orders every claim, snapshot write and release of every replica exactly:
//!
//! - a claim is the claim script's `HSET <meta> claim <token>` (run only once `SET NX`
//!   took the lease);
//! - a release is the release script's `HDEL <meta> claim` (run only by the claim's owner);
//! - a snapshot write is the write script's `HSET <snap> doc … upto … epoch …`, attributed
//!   to the token the script was called with (`MONITOR` in Redis 7 logs a script call before
//!   the commands it runs).
//!
//! Without deaths, each room must alternate claim → release, and every write must come from
//! the current holder.

use crate::monitor::Command;
use std::collections::HashMap;

/// What the trace shows.
#[derive(Debug, Default, Clone)]
pub struct LeaseReport {
    /// Claims, all rooms.
    pub claims: usize,
    /// Releases, all rooms.
    pub releases: usize,
    /// Snapshot writes per room.
    pub writes: HashMap<String, usize>,
    /// Claims that found another holder's claim unreleased (a takeover or an overlap).
    pub claims_over_a_holder: usize,
    /// Everything that breaks "one holder at a time, writes only by the holder".
    pub violations: Vec<String>,
}

impl LeaseReport {
    /// Total snapshot writes.
    pub fn total_writes(&self) -> usize {
        self.writes.values().sum()
    }
}

/// The room of a key `{prefix}:{<room>}:<suffix>` with the given suffix.
fn room_of<'a>(key: &'a str, prefix: &str, suffix: &str) -> Option<&'a str> {
    key.strip_prefix(prefix)?
        .strip_prefix(":{")?
        .strip_suffix(suffix)?
        .strip_suffix('}')
}

/// Checks a trace of the deployment under `prefix`.
pub fn check(trace: &[Command], prefix: &str) -> LeaseReport {
    let mut report = LeaseReport::default();
    let mut holder: HashMap<String, String> = HashMap::new();
    // The script call the following `lua` commands belong to.
    let mut script: Option<&Command> = None;
    for command in trace {
        if command.client != "lua" {
            script = (command.is("EVALSHA") || command.is("EVAL")).then_some(command);
            continue;
        }
        let key = command.arg(1);
        if command.is("HSET") && command.arg(2) == "claim" {
            let Some(room) = room_of(&key, prefix, ":meta") else {
                continue;
            };
            report.claims += 1;
            let token = command.arg(3);
            if let Some(previous) = holder.insert(room.to_string(), token.clone()) {
                report.claims_over_a_holder += 1;
                report.violations.push(format!(
                    "{room}: claimed by {token} while {previous} held it"
                ));
            }
        } else if command.is("HDEL") && command.arg(2) == "claim" {
            let Some(room) = room_of(&key, prefix, ":meta") else {
                continue;
            };
            report.releases += 1;
            if holder.remove(room).is_none() {
                report
                    .violations
                    .push(format!("{room}: released while nobody held it"));
            }
        } else if command.is("HSET") && command.arg(2) == "doc" {
            let Some(room) = room_of(&key, prefix, ":snap") else {
                continue;
            };
            *report.writes.entry(room.to_string()).or_default() += 1;
            // EVALSHA sha 3 snap lease meta token …
            let writer = script.map(|s| s.arg(6)).unwrap_or_default();
            match holder.get(room) {
                Some(h) if *h == writer => {}
                Some(h) => report.violations.push(format!(
                    "{room}: snapshot written by {writer:?} while {h} held it"
                )),
                None => report.violations.push(format!(
                    "{room}: snapshot written by {writer:?} while nobody held it"
                )),
            }
        }
    }
    for (room, token) in holder {
        report
            .violations
            .push(format!("{room}: still held by {token} at the end"));
    }
    report
}
