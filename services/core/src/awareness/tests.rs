//! The registry against y-protocols semantics, and the limits of local connections.

use super::*;

/// An awareness payload; decode it with [`update`].
fn payload(entries: &[(u64, u64, &str)]) -> Vec<u8> {
    yws_protocol::awareness::encode_entries(entries.iter().map(|&(client_id, clock, state)| {
        AwarenessEntry {
            client_id,
            clock,
            state,
        }
    }))
}

fn update(payload: &[u8]) -> AwarenessUpdate<'_> {
    AwarenessUpdate::decode(payload).unwrap()
}

const A: Owner = Owner::Local(ConnId(1));

#[test]
fn add_renew_change_remove() {
    let now = Instant::now();
    let mut reg = AwarenessRegistry::default();
    let c = reg.apply(&update(&payload(&[(7, 1, r#"{"a":1}"#)])), A, now);
    assert_eq!(c.added, vec![7]);
    // Renewal with the same state and a higher clock is an `updated` (relayed).
    let c = reg.apply(&update(&payload(&[(7, 2, r#"{"a":1}"#)])), A, now);
    assert_eq!(c.updated, vec![7]);
    // Same clock, non-null: ignored.
    assert!(reg
        .apply(&update(&payload(&[(7, 2, r#"{"a":2}"#)])), A, now)
        .is_empty());
    // Older clock: ignored.
    assert!(reg
        .apply(&update(&payload(&[(7, 1, "null")])), A, now)
        .is_empty());
    // Same clock with null removes a present state.
    let c = reg.apply(&update(&payload(&[(7, 2, "null")])), A, now);
    assert_eq!(c.removed, vec![7]);
    assert!(reg.is_empty());
    // ... but only once.
    assert!(reg
        .apply(&update(&payload(&[(7, 2, "null")])), A, now)
        .is_empty());
    assert_eq!(
        reg.encode([7]),
        yws_protocol::awareness::encode_entries([AwarenessEntry {
            client_id: 7,
            clock: 2,
            state: "null"
        }])
    );
}

#[test]
fn ownership_and_removal_keep_clock() {
    let now = Instant::now();
    let mut reg = AwarenessRegistry::default();
    reg.apply(&update(&payload(&[(1, 5, "{}"), (2, 1, "{}")])), A, now);
    reg.apply(&update(&payload(&[(3, 1, "{}")])), Owner::Remote, now);
    let mut mine = reg.owned_by(ConnId(1));
    mine.sort_unstable();
    assert_eq!(mine, vec![1, 2]);
    assert_eq!(reg.remove(mine, now), vec![1, 2]);
    assert_eq!(reg.len(), 1);
    // A stale update with the old clock cannot resurrect client 1.
    assert!(reg
        .apply(&update(&payload(&[(1, 5, "{}")])), A, now)
        .is_empty());
    assert!(!reg
        .apply(&update(&payload(&[(1, 6, "{}")])), A, now)
        .is_empty());
}

#[test]
fn expiry_removes_then_forgets() {
    let t0 = Instant::now();
    let timeout = Duration::from_secs(30);
    let mut reg = AwarenessRegistry::default();
    reg.apply(&update(&payload(&[(1, 1, "{}")])), Owner::Remote, t0);
    reg.apply(
        &update(&payload(&[(2, 1, "{}")])),
        A,
        t0 + Duration::from_secs(20),
    );
    assert_eq!(reg.expire(t0 + timeout, timeout), vec![1]);
    assert_eq!(reg.len(), 1);
    assert!(reg.encode_all().is_some());
    // Removed clocks are forgotten after twice the timeout.
    assert_eq!(reg.expire(t0 + timeout * 2, timeout), vec![2]);
    assert_eq!(
        reg.clients.len(),
        2,
        "removed clocks are remembered for a while"
    );
    reg.expire(t0 + timeout * 5, timeout);
    assert!(reg.clients.is_empty());
    assert_eq!(
        reg.owned_count(ConnId(1)),
        0,
        "a forgotten id is no longer owned"
    );
}

const LIMITS: AwarenessLimits = AwarenessLimits {
    max_clients_per_conn: 2,
    max_state_bytes: 16,
    max_message_bytes: 256,
};

#[test]
fn removing_a_client_never_seen_leaves_nothing() {
    let now = Instant::now();
    let mut reg = AwarenessRegistry::default();
    let nulls: Vec<(u64, u64, &str)> = (1..=1000).map(|id| (id, 1, "null")).collect();
    let flood = payload(&nulls);
    assert_eq!(
        reg.check(&update(&flood), ConnId(1), &AwarenessLimits::default()),
        Ok(())
    );
    assert!(reg.apply(&update(&flood), A, now).is_empty());
    assert!(reg.clients.is_empty(), "no tombstones");
    assert_eq!(reg.owned_count(ConnId(1)), 0);
}

#[test]
fn tombstones_count_towards_the_limit() {
    let now = Instant::now();
    let mut reg = AwarenessRegistry::default();
    let conn = ConnId(1);
    for step in [
        payload(&[(1, 1, "{}")]),
        payload(&[(1, 2, "null")]),
        payload(&[(2, 1, "{}")]),
    ] {
        assert_eq!(reg.check(&update(&step), conn, &LIMITS), Ok(()));
        reg.apply(&update(&step), A, now);
    }
    assert_eq!(reg.len(), 1, "one state and one tombstone");
    assert_eq!(reg.owned_count(conn), 2);
    let third = payload(&[(3, 1, "{}")]);
    assert_eq!(
        reg.check(&update(&third), conn, &LIMITS),
        Err(AwarenessViolation::TooManyClients)
    );
    // Renewing what it owns is fine.
    assert_eq!(
        reg.check(&update(&payload(&[(2, 2, "{}")])), conn, &LIMITS),
        Ok(())
    );
    // Once the connection is gone its count goes; its tombstones expire with time.
    assert_eq!(reg.remove_conn(conn, now), vec![2]);
    assert_eq!(reg.owned_count(conn), 0);
}

#[test]
fn the_limit_counts_distinct_ids_that_would_be_taken() {
    let now = Instant::now();
    let mut reg = AwarenessRegistry::default();
    reg.apply(&update(&payload(&[(9, 5, "{}")])), Owner::Remote, now);
    let conn = ConnId(1);
    // Echoes of states it does not own (same clock) are ignored, however many.
    let echo = payload(&[(9, 5, "{}"), (9, 5, "{}"), (9, 5, "{}")]);
    assert_eq!(reg.check(&update(&echo), conn, &LIMITS), Ok(()));
    // The same id many times with rising clocks is one id.
    let rising: Vec<(u64, u64, &str)> = (1..=20).map(|clock| (4, clock, "{}")).collect();
    let rising = payload(&rising);
    let big = AwarenessLimits {
        max_message_bytes: 4096,
        ..LIMITS
    };
    assert_eq!(reg.check(&update(&rising), conn, &big), Ok(()));
    let change = reg.apply(&update(&rising), A, now);
    assert_eq!(change.all().collect::<Vec<_>>(), vec![4], "each id once");
    // Taking over a remote state counts; two new ids are one too many.
    let take = payload(&[(9, 6, "{}"), (5, 1, "{}")]);
    assert_eq!(
        reg.check(&update(&take), conn, &LIMITS),
        Err(AwarenessViolation::TooManyClients)
    );
}

#[test]
fn sizes_are_checked() {
    let reg = AwarenessRegistry::default();
    let big_state = format!(r#"{{"n":"{}"}}"#, "x".repeat(20));
    let p = payload(&[(1, 1, &big_state)]);
    assert_eq!(
        reg.check(&update(&p), ConnId(1), &LIMITS),
        Err(AwarenessViolation::StateTooLarge {
            bytes: big_state.len()
        })
    );
    let many: Vec<(u64, u64, &str)> = (0..100).map(|id| (id, 0, "{}")).collect();
    let p = payload(&many);
    assert_eq!(
        reg.check(&update(&p), ConnId(1), &LIMITS),
        Err(AwarenessViolation::MessageTooLarge { bytes: p.len() })
    );
}
