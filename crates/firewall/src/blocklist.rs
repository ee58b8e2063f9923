//! The dynamic block list: client IPs refused until a deadline, added and
//! removed at run time (the admin API's `POST /firewall/block`), and kept
//! in a state file so a restart does not forgive them.
//!
//! Deadlines are wall-clock milliseconds since the Unix epoch, because they
//! must mean the same thing after a restart; the caller passes `now`. The
//! state file is one entry per line, `<ip> <expires-ms>`, written whole
//! and read back with every malformed line reported and skipped (the file
//! is ours, but a disk or an editor may have mangled it). The number of
//! entries is capped so a stream of blocks cannot grow memory without
//! bound.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::net::IpAddr;

use meshgate_core::cidr::canonical;

/// Blocked IPs and when each block ends.
#[derive(Debug, Clone)]
pub struct BlockList {
    entries: HashMap<IpAddr, u64>,
    max: usize,
}

/// The list already holds `max` live entries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Full {
    /// The cap.
    pub max: usize,
}

impl BlockList {
    /// An empty list holding at most `max` entries.
    pub fn new(max: usize) -> Self {
        Self {
            entries: HashMap::new(),
            max,
        }
    }

    /// Blocks `ip` until `now_ms + ttl_ms` (a later block of the same IP
    /// replaces the earlier one). Returns the deadline.
    pub fn block(&mut self, ip: IpAddr, ttl_ms: u64, now_ms: u64) -> Result<u64, Full> {
        let ip = canonical(ip);
        let until = now_ms.saturating_add(ttl_ms);
        if !self.entries.contains_key(&ip) && self.entries.len() >= self.max {
            self.purge(now_ms);
            if self.entries.len() >= self.max {
                return Err(Full { max: self.max });
            }
        }
        self.entries.insert(ip, until);
        Ok(until)
    }

    /// Lifts the block of `ip`; `false` when it was not blocked.
    pub fn unblock(&mut self, ip: IpAddr) -> bool {
        self.entries.remove(&canonical(ip)).is_some()
    }

    /// Whether `ip` is blocked at `now_ms`.
    pub fn is_blocked(&self, ip: IpAddr, now_ms: u64) -> bool {
        self.entries
            .get(&canonical(ip))
            .is_some_and(|until| *until > now_ms)
    }

    /// Drops expired entries.
    pub fn purge(&mut self, now_ms: u64) {
        self.entries.retain(|_, until| *until > now_ms);
    }

    /// Live entries, sorted by IP.
    pub fn entries(&self, now_ms: u64) -> Vec<(IpAddr, u64)> {
        let mut live: Vec<_> = self
            .entries
            .iter()
            .filter(|(_, until)| **until > now_ms)
            .map(|(ip, until)| (*ip, *until))
            .collect();
        live.sort();
        live
    }

    /// Whether no entry is live at `now_ms`.
    pub fn is_empty(&self, now_ms: u64) -> bool {
        self.entries.values().all(|until| *until <= now_ms)
    }

    /// The state file's text: live entries, one per line.
    pub fn encode(&self, now_ms: u64) -> String {
        let mut text = String::from(
            "# meshgate firewall block list: <ip> <expires, ms since the Unix epoch>\n",
        );
        for (ip, until) in self.entries(now_ms) {
            let _ = writeln!(text, "{ip} {until}");
        }
        text
    }

    /// Reads a state file's text into a list of at most `max` entries,
    /// dropping expired ones. Malformed lines are skipped and described
    /// (1-based line numbers), never fatal.
    pub fn decode(text: &str, max: usize, now_ms: u64) -> (Self, Vec<String>) {
        let mut list = Self::new(max);
        let mut problems = Vec::new();
        for (n, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let mut parts = line.split_ascii_whitespace();
            let parsed = match (parts.next(), parts.next(), parts.next()) {
                (Some(ip), Some(until), None) => {
                    ip.parse::<IpAddr>().ok().zip(until.parse::<u64>().ok())
                }
                _ => None,
            };
            let Some((ip, until)) = parsed else {
                problems.push(format!(
                    "line {}: expected \"<ip> <expires-ms>\", found {line:?}",
                    n + 1
                ));
                continue;
            };
            if until <= now_ms {
                continue;
            }
            if list.block(ip, until - now_ms, now_ms).is_err() {
                problems.push(format!(
                    "line {}: more than {max} entries; the rest are dropped",
                    n + 1
                ));
                break;
            }
        }
        (list, problems)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn blocks_expire_and_can_be_lifted() {
        let mut list = BlockList::new(10);
        assert_eq!(list.block(ip("10.0.0.1"), 1_000, 5_000), Ok(6_000));
        assert!(list.is_blocked(ip("10.0.0.1"), 5_999));
        assert!(
            list.is_blocked(ip("::ffff:10.0.0.1"), 5_999),
            "mapped is the same client"
        );
        assert!(!list.is_blocked(ip("10.0.0.1"), 6_000));
        assert!(!list.is_blocked(ip("10.0.0.2"), 5_000));
        assert!(list.is_empty(6_000));
        list.block(ip("::1"), 10, 0).unwrap();
        assert!(list.unblock(ip("::1")));
        assert!(!list.unblock(ip("::1")));
    }

    #[test]
    fn the_cap_counts_live_entries_only() {
        let mut list = BlockList::new(2);
        list.block(ip("10.0.0.1"), 10, 0).unwrap();
        list.block(ip("10.0.0.2"), 100, 0).unwrap();
        assert_eq!(list.block(ip("10.0.0.3"), 100, 5), Err(Full { max: 2 }));
        assert!(
            list.block(ip("10.0.0.2"), 500, 5).is_ok(),
            "renewing is not growing"
        );
        assert!(
            list.block(ip("10.0.0.3"), 100, 20).is_ok(),
            "10.0.0.1 expired at 10"
        );
    }

    #[test]
    fn the_state_file_round_trips_and_survives_damage() {
        let mut list = BlockList::new(10);
        list.block(ip("192.0.2.7"), 60_000, 1_000).unwrap();
        list.block(ip("2001:db8::1"), 60_000, 1_000).unwrap();
        list.block(ip("198.51.100.1"), 10, 1_000).unwrap();
        let text = list.encode(1_000);
        let (back, problems) = BlockList::decode(&text, 10, 2_000);
        assert!(problems.is_empty(), "{problems:?}");
        assert_eq!(
            back.entries(2_000),
            vec![(ip("192.0.2.7"), 61_000), (ip("2001:db8::1"), 61_000)]
        );

        let damaged = "192.0.2.7 99999\nnot-an-ip 5\n192.0.2.8\n192.0.2.9 12 extra\n\n# comment\n";
        let (back, problems) = BlockList::decode(damaged, 10, 0);
        assert_eq!(back.entries(0), vec![(ip("192.0.2.7"), 99_999)]);
        assert_eq!(problems.len(), 3);
        assert!(problems[0].starts_with("line 2: "), "{problems:?}");

        let (back, problems) = BlockList::decode("10.0.0.1 9\n10.0.0.2 9\n10.0.0.3 9\n", 2, 0);
        assert_eq!(back.entries(0).len(), 2);
        assert_eq!(
            problems,
            vec!["line 3: more than 2 entries; the rest are dropped"]
        );
    }
}
