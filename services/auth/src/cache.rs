//! A bounded TTL cache of webhook grants, keyed by a SHA-256 of the webhook request body (room,
//! forwarded headers, cookie, token), so no credential is kept in memory as a key.
//!
//! Capacity is a hard bound: inserting into a full cache evicts expired entries, then the
//! oldest ones (all entries share one TTL, so insertion order is expiry order).

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, SystemTime};

use parking_lot::Mutex;
use tokio::time::Instant;

use crate::grant::Grant;

pub(crate) type CacheKey = [u8; 32];

#[derive(Debug)]
pub(crate) struct GrantCache {
    ttl: Duration,
    max_entries: usize,
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    entries: HashMap<CacheKey, Entry>,
    /// Insertion order: (key, sequence number of that insertion). Holds at most
    /// `2 * max_entries` items; items whose sequence no longer matches are stale.
    order: VecDeque<(CacheKey, u64)>,
    next_seq: u64,
}

#[derive(Debug)]
struct Entry {
    grant: Grant,
    inserted: Instant,
    seq: u64,
}

impl GrantCache {
    /// `None` when caching is off (`ttl` zero).
    pub(crate) fn new(ttl: Duration, max_entries: usize) -> Option<Self> {
        (!ttl.is_zero() && max_entries > 0).then(|| GrantCache {
            ttl,
            max_entries,
            inner: Mutex::new(Inner::default()),
        })
    }

    /// A fresh grant for `key`: inserted less than `ttl` ago and not past its own expiry.
    pub(crate) fn get(&self, key: &CacheKey) -> Option<Grant> {
        let now = Instant::now();
        let mut inner = self.inner.lock();
        let entry = inner.entries.get(key)?;
        let fresh = now.duration_since(entry.inserted) < self.ttl
            && entry
                .grant
                .expires_at
                .is_none_or(|at| at > SystemTime::now());
        if fresh {
            Some(entry.grant.clone())
        } else {
            inner.entries.remove(key);
            None
        }
    }

    pub(crate) fn insert(&self, key: CacheKey, grant: Grant) {
        let now = Instant::now();
        let mut guard = self.inner.lock();
        let inner = &mut *guard;
        while let Some(&(front, seq)) = inner.order.front() {
            let (live, expired) = match inner.entries.get(&front) {
                Some(entry) if entry.seq == seq => {
                    (true, now.duration_since(entry.inserted) >= self.ttl)
                }
                _ => (false, false),
            };
            let full = inner.entries.len() >= self.max_entries
                || inner.order.len() >= 2 * self.max_entries;
            if live && !expired && !full {
                break;
            }
            inner.order.pop_front();
            if live {
                inner.entries.remove(&front);
            }
        }
        let seq = inner.next_seq;
        inner.next_seq += 1;
        inner.order.push_back((key, seq));
        inner.entries.insert(
            key,
            Entry {
                grant,
                inserted: now,
                seq,
            },
        );
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.inner.lock().entries.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::grant::Access;

    fn grant(subject: &str) -> Grant {
        Grant {
            access: Access::ReadOnly,
            expires_at: None,
            subject: Some(subject.to_owned()),
        }
    }

    fn key(n: u8) -> CacheKey {
        [n; 32]
    }

    #[test]
    fn zero_ttl_disables() {
        assert!(GrantCache::new(Duration::ZERO, 10).is_none());
    }

    #[tokio::test(start_paused = true)]
    async fn entries_expire_after_ttl() {
        let cache = GrantCache::new(Duration::from_secs(5), 10).unwrap();
        cache.insert(key(1), grant("a"));
        assert_eq!(cache.get(&key(1)), Some(grant("a")));
        tokio::time::advance(Duration::from_secs(5)).await;
        assert_eq!(cache.get(&key(1)), None);
        assert_eq!(cache.len(), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn capacity_is_a_hard_bound_oldest_first() {
        let cache = GrantCache::new(Duration::from_secs(60), 2).unwrap();
        cache.insert(key(1), grant("a"));
        cache.insert(key(2), grant("b"));
        cache.insert(key(3), grant("c"));
        assert_eq!(cache.len(), 2);
        assert_eq!(cache.get(&key(1)), None);
        assert_eq!(cache.get(&key(2)), Some(grant("b")));
        assert_eq!(cache.get(&key(3)), Some(grant("c")));
    }

    #[tokio::test(start_paused = true)]
    async fn reinserting_a_key_keeps_the_order_queue_bounded() {
        let cache = GrantCache::new(Duration::from_secs(60), 3).unwrap();
        for _ in 0..100 {
            cache.insert(key(1), grant("a"));
        }
        cache.insert(key(2), grant("b"));
        assert!(cache.inner.lock().order.len() <= 6);
        assert_eq!(cache.get(&key(1)), Some(grant("a")));
        assert_eq!(cache.get(&key(2)), Some(grant("b")));
    }

    #[tokio::test(start_paused = true)]
    async fn expired_grants_are_not_served() {
        let cache = GrantCache::new(Duration::from_secs(60), 3).unwrap();
        let mut expired = grant("a");
        expired.expires_at = Some(SystemTime::now() - Duration::from_secs(1));
        cache.insert(key(1), expired);
        assert_eq!(cache.get(&key(1)), None);
    }
}
