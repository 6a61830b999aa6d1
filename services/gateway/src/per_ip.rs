//! The optional limit on concurrent connections per client address
//! (`server.max_connections_per_ip`, off by default), for deployments without a proxy in
//! front. A TCP connection holds one [`IpSlot`] from its accept to its end — through the
//! upgrade, for the life of a WebSocket.

use parking_lot::Mutex;
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;

/// Connection counts per client address; an address appears only while it has connections,
/// so the map is bounded by the open connections.
#[derive(Debug)]
pub struct PerIpLimit {
    max: usize,
    counts: Mutex<HashMap<IpAddr, usize>>,
}

/// One connection's share of its address's limit; released when dropped.
#[derive(Debug)]
pub struct IpSlot {
    limit: Arc<PerIpLimit>,
    ip: IpAddr,
}

impl PerIpLimit {
    /// A limit of `max` connections per address; `None` when `max` is 0 (off).
    pub fn new(max: usize) -> Option<Arc<Self>> {
        (max > 0).then(|| {
            Arc::new(PerIpLimit {
                max,
                counts: Mutex::new(HashMap::new()),
            })
        })
    }

    /// A slot for one more connection from `ip`, or `None` when it holds `max` already. IPv4
    /// addresses mapped into IPv6 count as the IPv4 address.
    pub fn try_acquire(self: &Arc<Self>, ip: IpAddr) -> Option<IpSlot> {
        let ip = ip.to_canonical();
        let mut counts = self.counts.lock();
        let count = counts.entry(ip).or_insert(0);
        if *count >= self.max {
            return None;
        }
        *count += 1;
        Some(IpSlot {
            limit: self.clone(),
            ip,
        })
    }

    /// Open connections from `ip`.
    pub fn count(&self, ip: IpAddr) -> usize {
        self.counts
            .lock()
            .get(&ip.to_canonical())
            .copied()
            .unwrap_or(0)
    }
}

impl Drop for IpSlot {
    fn drop(&mut self) {
        let mut counts = self.limit.counts.lock();
        if let Some(count) = counts.get_mut(&self.ip) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                counts.remove(&self.ip);
            }
        }
    }
}

/// What a connection over the limit is told before it is closed (the request is not read).
pub const REFUSAL: &[u8] = b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: 44\r\nConnection: close\r\n\r\ntoo many connections from your address (IP)\n";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_per_address_and_releases_on_drop() {
        assert!(PerIpLimit::new(0).is_none(), "0 turns the limit off");
        let limit = PerIpLimit::new(2).unwrap();
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        let mapped: IpAddr = "::ffff:10.0.0.1".parse().unwrap();
        let b: IpAddr = "10.0.0.2".parse().unwrap();
        let first = limit.try_acquire(a).unwrap();
        let second = limit.try_acquire(mapped).unwrap();
        assert!(
            limit.try_acquire(a).is_none(),
            "a mapped address is the same client"
        );
        let other = limit.try_acquire(b).unwrap();
        assert_eq!(limit.count(a), 2);
        drop(first);
        let third = limit.try_acquire(a).unwrap();
        drop((second, third, other));
        assert_eq!(limit.count(a), 0);
        assert!(
            limit.counts.lock().is_empty(),
            "no entry outlives its connections"
        );
    }

    #[test]
    fn refusal_is_a_complete_response() {
        let text = std::str::from_utf8(REFUSAL).unwrap();
        let (head, body) = text.split_once("\r\n\r\n").unwrap();
        assert!(head.contains(&format!("Content-Length: {}", body.len())));
    }
}
