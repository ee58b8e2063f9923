//! Method, header and query-parameter conditions.
//!
//! Everything is tested against the request's borrowed bytes. Header values
//! are compared as raw bytes; query strings are split on `&` and `=` in place,
//! without percent-decoding, so no condition allocates.

use http::{HeaderMap, HeaderName, Method};
use meshgate_config::{HeaderMatch, QueryMatch, RouteMatch, ValueMatch};
use regex::Regex;

/// The non-host, non-path conditions of one route; all must hold.
#[derive(Debug, Clone)]
pub(crate) struct Conditions {
    /// Allowed methods; empty allows every method.
    methods: Box<[Method]>,
    /// Header conditions.
    headers: Box<[HeaderCondition]>,
    /// Query-parameter conditions.
    query: Box<[QueryCondition]>,
}

/// One header condition: some value of `name` must pass `test`.
#[derive(Debug, Clone)]
struct HeaderCondition {
    name: HeaderName,
    test: ValueTest,
}

/// One query condition: some `name=value` pair must pass `test`.
#[derive(Debug, Clone)]
struct QueryCondition {
    name: Box<str>,
    test: ValueTest,
}

/// A compiled [`ValueMatch`].
#[derive(Debug, Clone)]
enum ValueTest {
    /// The value's bytes equal these.
    Exact(Box<[u8]>),
    /// Any value, including an empty one.
    Present,
    /// The value is UTF-8 and the (anchored) regex matches it.
    Regex(Regex),
}

// === impl Conditions ===

impl Conditions {
    /// Compiles the method, header and query conditions of `m`.
    pub(crate) fn compile(m: &RouteMatch) -> Self {
        Self {
            methods: m.methods.iter().cloned().collect(),
            headers: m.headers.iter().map(HeaderCondition::compile).collect(),
            query: m.query.iter().map(QueryCondition::compile).collect(),
        }
    }

    /// The precedence count: the method list counts as one condition, each
    /// header and query condition as one more.
    pub(crate) fn count(&self) -> usize {
        usize::from(!self.methods.is_empty()) + self.headers.len() + self.query.len()
    }

    /// Whether every condition holds, cheapest first.
    #[inline]
    pub(crate) fn matches(
        &self,
        method: &Method,
        headers: &HeaderMap,
        query: Option<&str>,
    ) -> bool {
        (self.methods.is_empty() || self.methods.contains(method))
            && self.headers.iter().all(|c| c.matches(headers))
            && self.query.iter().all(|c| c.matches(query))
    }
}

// === impl HeaderCondition ===

impl HeaderCondition {
    fn compile(h: &HeaderMatch) -> Self {
        Self {
            name: h.name.clone(),
            test: ValueTest::compile(&h.value),
        }
    }

    /// Any of the header's values (one per header line) may satisfy the test.
    /// A comma-separated list on one line is a single value: it is not split.
    fn matches(&self, headers: &HeaderMap) -> bool {
        headers
            .get_all(&self.name)
            .iter()
            .any(|v| self.test.matches(v.as_bytes()))
    }
}

// === impl QueryCondition ===

impl QueryCondition {
    fn compile(q: &QueryMatch) -> Self {
        Self {
            name: q.name.as_str().into(),
            test: ValueTest::compile(&q.value),
        }
    }

    /// Any pair with this exact name may satisfy the test; a request without
    /// a query string has no parameters.
    fn matches(&self, query: Option<&str>) -> bool {
        query.is_some_and(|q| {
            pairs(q).any(|(name, value)| name == &*self.name && self.test.matches(value.as_bytes()))
        })
    }
}

/// Splits a raw query string into `(name, value)` pairs, borrowing from it.
///
/// Pairs are separated by `&`; empty pairs (`a=1&&b=2`) are skipped. The name
/// ends at the first `=`; a pair without `=` (`?debug`) has the value `""`.
/// Nothing is percent-decoded and `+` stays `+`: conditions compare the bytes
/// as the client sent them.
pub(crate) fn pairs(query: &str) -> impl Iterator<Item = (&str, &str)> {
    query
        .split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| pair.split_once('=').unwrap_or((pair, "")))
}

// === impl ValueTest ===

impl ValueTest {
    fn compile(v: &ValueMatch) -> Self {
        match v {
            ValueMatch::Exact(s) => Self::Exact(s.as_bytes().into()),
            ValueMatch::Present => Self::Present,
            ValueMatch::Regex(re) => Self::Regex(re.clone()),
        }
    }

    #[inline]
    fn matches(&self, value: &[u8]) -> bool {
        match self {
            Self::Exact(want) => value == &**want,
            Self::Present => true,
            Self::Regex(re) => std::str::from_utf8(value).is_ok_and(|v| re.is_match(v)),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "tests: a panic is the failure report")]
mod tests {
    use http::HeaderValue;

    use super::*;

    #[test]
    fn query_pairs_split_in_place() {
        let got: Vec<_> = pairs("a=1&&b=&c&d=x=y&=v").collect();
        assert_eq!(
            got,
            [("a", "1"), ("b", ""), ("c", ""), ("d", "x=y"), ("", "v")]
        );
        assert_eq!(pairs("").count(), 0);
    }

    #[test]
    fn repeated_query_names_match_if_any_value_does() {
        let m = RouteMatch {
            query: vec![QueryMatch {
                name: "v".into(),
                value: ValueMatch::Exact("2".into()),
            }],
            ..RouteMatch::default()
        };
        let c = Conditions::compile(&m);
        let h = HeaderMap::new();
        assert!(c.matches(&Method::GET, &h, Some("v=1&v=2")));
        assert!(!c.matches(&Method::GET, &h, Some("v=1&w=2")));
        assert!(!c.matches(&Method::GET, &h, None));
    }

    #[test]
    fn header_regex_skips_non_utf8_values_and_tries_each_line() {
        let m = RouteMatch {
            headers: vec![HeaderMatch {
                name: HeaderName::from_static("x-v"),
                value: ValueMatch::Regex(Regex::new("^(?:v[0-9]+)$").unwrap()),
            }],
            ..RouteMatch::default()
        };
        let c = Conditions::compile(&m);
        let mut h = HeaderMap::new();
        h.append("x-v", HeaderValue::from_bytes(b"\xffv1").unwrap());
        assert!(!c.matches(&Method::GET, &h, None));
        h.append("x-v", HeaderValue::from_static("v2"));
        assert!(c.matches(&Method::GET, &h, None));
    }

    #[test]
    fn count_treats_the_method_list_as_one() {
        let m = RouteMatch {
            methods: vec![Method::GET, Method::HEAD, Method::POST],
            query: vec![QueryMatch {
                name: "a".into(),
                value: ValueMatch::Present,
            }],
            ..RouteMatch::default()
        };
        assert_eq!(Conditions::compile(&m).count(), 2);
        assert_eq!(Conditions::compile(&RouteMatch::default()).count(), 0);
    }
}
