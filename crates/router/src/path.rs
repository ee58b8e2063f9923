//! Path conditions: exact, segment-boundary prefix, `{param}` template, regex.
//!
//! Paths are compared byte for byte as they arrived, without the query and
//! without percent-decoding or dot-segment removal; normalising the path is
//! the proxy's job and happens, if at all, before routing.

use std::sync::Arc;

use meshgate_config::{PathMatch, PathTemplate, TemplateSegment};
use regex::Regex;

use crate::Params;

/// A compiled path condition.
#[derive(Debug, Clone)]
pub(crate) enum PathMatcher {
    /// No path condition.
    Any,
    /// The path must equal this string.
    Exact(Box<str>),
    /// The path must start with `prefix` at a segment boundary; see
    /// [`PathMatcher::matches`] for the two flavours.
    Prefix {
        /// The configured prefix.
        prefix: Box<str>,
        /// `prefix` ends in `/`: plain `starts_with`, and the prefix without
        /// its slash (`/demo` for `/demo/`) matches too.
        dir: bool,
    },
    /// A `{param}` template.
    Template(Template),
    /// The whole path must match; the config anchors it with `^(?:...)$`.
    Regex(Regex),
}

/// A compiled [`PathTemplate`].
#[derive(Debug, Clone)]
pub(crate) struct Template {
    /// The segments that follow the leading `/`, in order.
    segments: Box<[Segment]>,
    /// How many of them are parameters; sizes the capture vector exactly.
    params: usize,
}

/// One compiled template segment.
#[derive(Debug, Clone)]
enum Segment {
    /// Must equal this text.
    Literal(Box<str>),
    /// Any non-empty segment, captured under this name. The name is shared
    /// with every [`Params`] produced, so capturing clones a pointer, not text.
    Param(Arc<str>),
}

/// How specific a path condition is; a larger value wins.
///
/// The derived order follows declaration order, then the fields:
/// `Any < Regex < Prefix(len) < Template { literals, segments } < Exact`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum PathRank {
    /// No path condition.
    Any,
    /// A regex: opaque, so it ranks below every structured condition.
    Regex,
    /// A prefix of this many bytes.
    Prefix(usize),
    /// A template: more literal segments first, then more segments.
    Template {
        /// Number of literal segments.
        literals: usize,
        /// Number of segments in all.
        segments: usize,
    },
    /// An exact path.
    Exact,
}

// === impl PathMatcher ===

impl PathMatcher {
    /// Compiles a configured path condition.
    pub(crate) fn compile(path: Option<&PathMatch>) -> Self {
        match path {
            None => Self::Any,
            Some(PathMatch::Exact(p)) => Self::Exact(p.as_str().into()),
            Some(PathMatch::Prefix(p)) => Self::Prefix {
                prefix: p.as_str().into(),
                // The empty prefix behaves like `/`-terminated ones: it is a
                // plain `starts_with`, which always holds.
                dir: p.is_empty() || p.ends_with('/'),
            },
            Some(PathMatch::Template(t)) => Self::Template(Template::compile(t)),
            Some(PathMatch::Regex(re)) => Self::Regex(re.clone()),
        }
    }

    /// The rank used for precedence.
    pub(crate) fn rank(&self) -> PathRank {
        match self {
            Self::Any => PathRank::Any,
            Self::Exact(_) => PathRank::Exact,
            Self::Prefix { prefix, .. } => PathRank::Prefix(prefix.len()),
            Self::Template(t) => PathRank::Template {
                literals: t.segments.len() - t.params,
                segments: t.segments.len(),
            },
            Self::Regex(_) => PathRank::Regex,
        }
    }

    /// Whether `path` satisfies the condition. Never allocates (a regex may
    /// fill its per-thread scratch cache on first use).
    ///
    /// Prefixes: `/api` matches `/api`, `/api/` and `/api/x` but not `/apix`;
    /// `/demo/` matches everything starting with `/demo/`, and `/demo` itself.
    #[inline]
    pub(crate) fn matches(&self, path: &str) -> bool {
        match self {
            Self::Any => true,
            Self::Exact(want) => path == &**want,
            Self::Prefix { prefix, dir: true } => {
                path.starts_with(&**prefix)
                    || (path.len() + 1 == prefix.len() && prefix.starts_with(path))
            }
            Self::Prefix { prefix, dir: false } => {
                path.starts_with(&**prefix)
                    && matches!(path.as_bytes().get(prefix.len()), None | Some(b'/'))
            }
            Self::Template(t) => t.walk(path, |_, _| ()),
            Self::Regex(re) => re.is_match(path),
        }
    }

    /// The template parameters for a `path` that [`PathMatcher::matches`]
    /// accepted. Empty, and allocation-free, for every non-template matcher.
    pub(crate) fn params(&self, path: &str) -> Params {
        match self {
            Self::Template(t) if t.params > 0 => {
                let mut captured = Vec::with_capacity(t.params);
                t.walk(path, |name, value| {
                    captured.push((Arc::clone(name), value.into()))
                });
                Params(captured)
            }
            _ => Params::default(),
        }
    }
}

// === impl Template ===

impl Template {
    fn compile(template: &PathTemplate) -> Self {
        let segments: Box<[Segment]> = template
            .segments
            .iter()
            .map(|s| match s {
                TemplateSegment::Literal(text) => Segment::Literal(text.as_str().into()),
                TemplateSegment::Param(name) => Segment::Param(name.as_str().into()),
            })
            .collect();
        let params = segments
            .iter()
            .filter(|s| matches!(s, Segment::Param(_)))
            .count();
        Self { segments, params }
    }

    /// Matches `path` segment by segment, calling `capture(name, value)` for
    /// each parameter as it goes; returns whether the whole path matched.
    ///
    /// The path must start with `/` and have exactly as many `/`-separated
    /// segments as the template, so `/users/{id}` rejects `/users/`,
    /// `/users/42/` and `/users/42/x`. A template with no segments matches `/`.
    fn walk<'p>(&self, path: &'p str, mut capture: impl FnMut(&Arc<str>, &'p str)) -> bool {
        let Some(rest) = path.strip_prefix('/') else {
            return false;
        };
        if self.segments.is_empty() {
            return rest.is_empty();
        }
        let mut parts = rest.split('/');
        for segment in &self.segments {
            let Some(part) = parts.next() else {
                return false;
            };
            match segment {
                Segment::Literal(text) if part == &**text => {}
                Segment::Param(name) if !part.is_empty() => capture(name, part),
                _ => return false,
            }
        }
        parts.next().is_none()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn prefix(p: &str) -> PathMatcher {
        PathMatcher::compile(Some(&PathMatch::Prefix(p.into())))
    }

    fn template(segments: &[&str]) -> PathMatcher {
        let segments = segments
            .iter()
            .map(
                |s| match s.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
                    Some(name) => TemplateSegment::Param(name.into()),
                    None => TemplateSegment::Literal((*s).into()),
                },
            )
            .collect();
        PathMatcher::compile(Some(&PathMatch::Template(PathTemplate {
            raw: String::new(),
            segments,
        })))
    }

    #[test]
    fn prefix_without_slash_stops_at_segment_boundary() {
        let p = prefix("/api");
        for ok in ["/api", "/api/", "/api/x", "/api/x/y"] {
            assert!(p.matches(ok), "{ok}");
        }
        for no in ["/apix", "/ap", "/", "", "/API", "api"] {
            assert!(!p.matches(no), "{no}");
        }
    }

    #[test]
    fn prefix_with_slash_also_matches_itself_without_it() {
        let p = prefix("/demo/");
        for ok in ["/demo", "/demo/", "/demo/x"] {
            assert!(p.matches(ok), "{ok}");
        }
        for no in ["/demox", "/dem", "/", ""] {
            assert!(!p.matches(no), "{no}");
        }
        assert!(prefix("/").matches("/anything"));
        assert!(prefix("").matches("*"));
    }

    #[test]
    fn template_needs_same_segment_count_and_non_empty_params() {
        let t = template(&["users", "{id}"]);
        assert!(t.matches("/users/42"));
        for no in [
            "/users/",
            "/users",
            "/users/42/",
            "/users/42/x",
            "users/42",
            "/Users/42",
        ] {
            assert!(!t.matches(no), "{no}");
        }
        let params = t.params("/users/42");
        assert_eq!(params.get("id"), Some("42"));
        assert_eq!(params.len(), 1);
    }

    #[test]
    fn trailing_slash_template_needs_the_slash() {
        let t = template(&["users", "{id}", ""]);
        assert!(t.matches("/users/42/"));
        assert!(!t.matches("/users/42"));
        assert_eq!(t.params("/users/42/").get("id"), Some("42"));
    }

    #[test]
    fn root_template_matches_only_root() {
        for root in [template(&[]), template(&[""])] {
            assert!(root.matches("/"));
            assert!(!root.matches("/x"));
            assert!(!root.matches(""));
            assert!(root.params("/").is_empty());
        }
    }

    #[test]
    fn ranks_follow_documented_precedence() {
        let exact = PathMatcher::compile(Some(&PathMatch::Exact("/a".into())));
        let t_lit = template(&["a", "b", "{c}"]).rank();
        let t_more = template(&["a", "{b}", "{c}"]).rank();
        let t_less = template(&["a", "{b}"]).rank();
        assert!(exact.rank() > t_lit && t_lit > t_more && t_more > t_less);
        assert!(t_less > prefix("/a/b/c/d/e/f").rank());
        assert!(prefix("/ab").rank() > prefix("/a").rank());
        assert!(prefix("").rank() > PathRank::Regex && PathRank::Regex > PathRank::Any);
    }
}
