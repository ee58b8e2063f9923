//! The `nameserver` lines of resolv.conf(5), pure. Only those: a DNS
//! endpoint source's name is absolute, so `search`, `domain` and `ndots`
//! do not apply.

use std::net::{IpAddr, SocketAddr};

/// The nameservers of a resolv.conf text, in order, on port 53. Addresses
/// with a zone (`fe80::1%eth0`) and unreadable lines are skipped.
pub(crate) fn nameservers(text: &str) -> Vec<SocketAddr> {
    text.lines()
        .filter_map(|line| {
            let mut words = line.split_whitespace();
            if words.next()? != "nameserver" {
                return None;
            }
            let ip: IpAddr = words.next()?.parse().ok()?;
            Some(SocketAddr::new(ip, 53))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nameserver_lines_in_order() {
        let text = "# generated\nsearch example.org\nnameserver 10.0.0.53\n\
                    nameserver  ::1 \nnameserver fe80::1%eth0\nnameserver bogus\n;nameserver 1.1.1.1\n";
        assert_eq!(
            nameservers(text),
            [
                "10.0.0.53:53".parse().unwrap(),
                "[::1]:53".parse::<SocketAddr>().unwrap()
            ]
        );
        assert!(nameservers("").is_empty());
    }
}
