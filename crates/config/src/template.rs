//! Path templates such as `/users/{id}/posts/{post}`, and path checks
//! shared by every path-like field.
//!
//! A template is `/`-separated segments, each either literal text or a
//! `{name}` parameter that fills the whole segment. `/` alone has no
//! segments; a trailing `/` makes a final empty literal segment, so
//! `/users/` matches only with the slash, as the router's segment-by-segment
//! comparison expects. Parameter names are identifiers and must be unique,
//! because they are how a matched value is looked up.

use crate::types::{PathTemplate, TemplateSegment};

/// Checks what every configured path (`path`, `path_prefix`,
/// `path_template`, `prefix_rewrite`, a redirect's `path`) must satisfy:
/// it starts with `/` and holds no query, fragment, space or control
/// character, none of which can appear in a request path being matched.
pub(crate) fn check_path(path: &str) -> Result<(), String> {
    if !path.starts_with('/') {
        return Err(format!("path {path:?} must start with \"/\""));
    }
    if let Some(c) = path
        .chars()
        .find(|&c| c == '?' || c == '#' || c.is_whitespace() || c.is_control())
    {
        let what = match c {
            '?' => "a query (\"?\"); use match.query for query parameters".to_owned(),
            '#' => "a fragment (\"#\")".to_owned(),
            other => format!("the character {other:?}"),
        };
        return Err(format!("path {path:?} must not contain {what}"));
    }
    Ok(())
}

/// Parses a path template; the error says what is wrong with it.
pub(crate) fn parse_template(raw: &str) -> Result<PathTemplate, String> {
    check_path(raw)?;
    let rest = &raw[1..]; // `check_path` guarantees the leading '/' (one byte).
    let mut segments = Vec::new();
    if !rest.is_empty() {
        let parts: Vec<&str> = rest.split('/').collect();
        for (i, part) in parts.iter().enumerate() {
            if part.is_empty() && i + 1 < parts.len() {
                return Err(format!("template {raw:?} has an empty segment (\"//\")"));
            }
            segments.push(segment(raw, part)?);
        }
    }
    let mut seen: Vec<&str> = Vec::new();
    for segment in &segments {
        if let TemplateSegment::Param(name) = segment {
            if seen.contains(&name.as_str()) {
                return Err(format!(
                    "template {raw:?} uses the parameter name {name:?} twice"
                ));
            }
            seen.push(name);
        }
    }
    Ok(PathTemplate {
        raw: raw.to_owned(),
        segments,
    })
}

/// One segment: `{name}` or literal text without braces.
fn segment(raw: &str, part: &str) -> Result<TemplateSegment, String> {
    match part.strip_prefix('{').and_then(|p| p.strip_suffix('}')) {
        Some(name) if is_identifier(name) => Ok(TemplateSegment::Param(name.to_owned())),
        Some(name) => Err(format!(
            "template {raw:?} has an invalid parameter name {name:?}: use letters, digits and \"_\", not starting with a digit"
        )),
        None if part.contains(['{', '}']) => Err(format!(
            "template {raw:?} has a parameter that is not a whole segment ({part:?}); write segments like \"/users/{{id}}\""
        )),
        None => Ok(TemplateSegment::Literal(part.to_owned())),
    }
}

/// `[A-Za-z_][A-Za-z0-9_]*`.
fn is_identifier(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

#[cfg(test)]
mod tests {
    use super::*;
    use TemplateSegment::{Literal, Param};

    fn segments(raw: &str) -> Result<Vec<TemplateSegment>, String> {
        parse_template(raw).map(|t| t.segments)
    }

    #[test]
    fn templates_split_into_literals_and_params() {
        assert_eq!(
            segments("/users/{id}/posts/{post_id}"),
            Ok(vec![
                Literal("users".into()),
                Param("id".into()),
                Literal("posts".into()),
                Param("post_id".into())
            ])
        );
        assert_eq!(segments("/"), Ok(vec![]));
        assert_eq!(
            segments("/users/"),
            Ok(vec![Literal("users".into()), Literal(String::new())])
        );
        assert_eq!(parse_template("/a/{b}").map(|t| t.raw), Ok("/a/{b}".into()));
    }

    #[test]
    fn bad_templates_say_why() {
        let err = |raw: &str| segments(raw).err().unwrap_or_default();
        assert!(err("users/{id}").contains("must start with"));
        assert!(err("/users/{id}/{id}").contains("twice"));
        assert!(err("/users/user{id}").contains("not a whole segment"));
        assert!(err("/users/{id").contains("not a whole segment"));
        assert!(err("/users/{}").contains("invalid parameter name"));
        assert!(err("/users/{1d}").contains("invalid parameter name"));
        assert!(err("/a//b").contains("empty segment"));
        assert!(err("/a?b").contains("query"));
    }

    #[test]
    fn paths_must_be_plain_absolute_paths() {
        assert!(check_path("/api/users").is_ok());
        assert!(check_path("api").is_err());
        assert!(check_path("").is_err());
        assert!(check_path("/a b").is_err());
        assert!(check_path("/a#b").is_err());
    }
}
