//! Host conditions: normalising the request's host and comparing it in place.
//!
//! The request side is never copied or lower-cased. [`normalize`] only
//! narrows the borrowed bytes (drops the port, the IPv6 brackets and one
//! trailing dot) and the comparisons use `eq_ignore_ascii_case`, so a host
//! check costs a couple of byte scans and no allocation.

use meshgate_config::HostMatch;

/// A compiled host condition for one route entry.
///
/// A route with several hosts is compiled into one entry per host, so each
/// entry carries at most one pattern and can be ranked by that pattern alone.
#[derive(Debug, Clone)]
pub(crate) enum HostPattern {
    /// The route has no host condition.
    Any,
    /// The normalised host must equal these lower-case bytes.
    Exact(Box<[u8]>),
    /// The normalised host must end with these lower-case bytes, which always
    /// start with `.`, and be strictly longer than them.
    Wildcard(Box<[u8]>),
}

/// How specific a host condition is; a larger value wins.
///
/// The derived order follows declaration order: `Any < Wildcard < Exact`, and
/// wildcards compare by suffix length, so `.a.example.com` beats `.example.com`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum HostRank {
    /// No host condition.
    Any,
    /// A wildcard with a suffix of this many bytes.
    Wildcard(usize),
    /// An exact host.
    Exact,
}

/// Narrows a `Host` header or `:authority` value to the bare host name.
///
/// - `example.com:8080` → `example.com`
/// - `[::1]:80` and `[::1]` → `::1` (brackets dropped, so patterns may be
///   written with or without them)
/// - a bare IPv6 address such as `::1` (more than one `:`) is left whole
/// - `example.com.` → `example.com` (one trailing dot, the DNS root)
///
/// Malformed input is never rejected here: it simply fails to equal any
/// pattern. The result borrows from `host`; nothing is allocated.
pub(crate) fn normalize(host: &str) -> &[u8] {
    let bytes = host.as_bytes();
    let name = if let Some(rest) = bytes.strip_prefix(b"[") {
        match rest.iter().position(|&b| b == b']') {
            Some(end) => &rest[..end],
            // An unclosed bracket: keep what is there; no pattern will match.
            None => rest,
        }
    } else {
        match bytes.iter().position(|&b| b == b':') {
            // Exactly one colon separates a port; more means bare IPv6.
            Some(colon) if !bytes[colon + 1..].contains(&b':') => &bytes[..colon],
            _ => bytes,
        }
    };
    name.strip_suffix(b".").unwrap_or(name)
}

// === impl HostPattern ===

impl HostPattern {
    /// Compiles a configured pattern.
    ///
    /// The config already stores patterns lower-case and wildcards as a
    /// `.suffix`; this also accepts hand-built values such as `*.example.com`,
    /// `example.com` as a wildcard, `[::1]` or mixed case, so that the
    /// comparisons in [`HostPattern::matches`] can rely on one canonical form.
    pub(crate) fn compile(pattern: &HostMatch) -> Self {
        match pattern {
            HostMatch::Exact(host) => Self::Exact(normalize(host).to_ascii_lowercase().into()),
            HostMatch::Wildcard(suffix) => {
                let suffix = suffix.strip_prefix('*').unwrap_or(suffix);
                let suffix = suffix.strip_suffix('.').unwrap_or(suffix);
                let mut bytes = Vec::with_capacity(suffix.len() + 1);
                if !suffix.starts_with('.') {
                    bytes.push(b'.');
                }
                bytes.extend(suffix.bytes().map(|b| b.to_ascii_lowercase()));
                Self::Wildcard(bytes.into())
            }
        }
    }

    /// The rank used for precedence.
    pub(crate) fn rank(&self) -> HostRank {
        match self {
            Self::Any => HostRank::Any,
            Self::Wildcard(suffix) => HostRank::Wildcard(suffix.len()),
            Self::Exact(_) => HostRank::Exact,
        }
    }

    /// Whether `host`, already passed through [`normalize`], satisfies this
    /// pattern. A request without a host only satisfies [`HostPattern::Any`].
    #[inline]
    pub(crate) fn matches(&self, host: Option<&[u8]>) -> bool {
        match (self, host) {
            (Self::Any, _) => true,
            (_, None) => false,
            (Self::Exact(want), Some(host)) => host.eq_ignore_ascii_case(want),
            (Self::Wildcard(suffix), Some(host)) => {
                host.len() > suffix.len()
                    && host[host.len() - suffix.len()..].eq_ignore_ascii_case(suffix)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalize_strips_port_brackets_and_root_dot() {
        let cases: &[(&str, &str)] = &[
            ("example.com", "example.com"),
            ("Example.COM:8080", "Example.COM"),
            ("example.com.", "example.com"),
            ("example.com.:443", "example.com"),
            ("[::1]:80", "::1"),
            ("[::1]", "::1"),
            ("::1", "::1"),
            ("fe80::1:2", "fe80::1:2"),
            ("[::1", "::1"),
            ("", ""),
            (":80", ""),
            (".", ""),
            ("é.example:1", "é.example"),
        ];
        for (input, want) in cases {
            assert_eq!(normalize(input), want.as_bytes(), "normalize({input:?})");
        }
    }

    #[test]
    fn wildcard_needs_at_least_one_more_label_byte() {
        let p = HostPattern::compile(&HostMatch::Wildcard(".example.com".into()));
        assert!(p.matches(Some(b"a.example.com")));
        assert!(p.matches(Some(b"a.b.EXAMPLE.com")));
        assert!(!p.matches(Some(b"example.com")));
        assert!(!p.matches(Some(b".example.com")));
        assert!(!p.matches(Some(b"aexample.com")));
        assert!(!p.matches(None));
    }

    #[test]
    fn hand_built_patterns_are_canonicalised() {
        let star = HostPattern::compile(&HostMatch::Wildcard("*.Example.com.".into()));
        let bare = HostPattern::compile(&HostMatch::Wildcard("example.com".into()));
        assert_eq!(star.rank(), HostRank::Wildcard(".example.com".len()));
        assert_eq!(bare.rank(), star.rank());
        let v6 = HostPattern::compile(&HostMatch::Exact("[::1]".into()));
        assert!(v6.matches(Some(normalize("[::1]:8080"))));
    }

    #[test]
    fn ranks_order_exact_over_longer_wildcard_over_any() {
        assert!(HostRank::Exact > HostRank::Wildcard(100));
        assert!(HostRank::Wildcard(14) > HostRank::Wildcard(12));
        assert!(HostRank::Wildcard(0) > HostRank::Any);
    }
}
