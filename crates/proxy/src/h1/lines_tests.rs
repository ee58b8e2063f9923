#![allow(clippy::unwrap_used)]

use std::mem::MaybeUninit;

use super::*;
use crate::h1::{STACK_SPANS, spans};

/// Parses a response head the way `h1_client::codec` does: its bytes and
/// the spans of its lines.
pub(crate) fn parse(raw: &str) -> (Bytes, Vec<Span>) {
    let mut slots = [const { MaybeUninit::uninit() }; 64];
    let mut resp = httparse::Response::new(&mut []);
    httparse::ParserConfig::default()
        .parse_response_with_uninit_headers(&mut resp, raw.as_bytes(), &mut slots)
        .unwrap();
    let mut stack = [Span::default(); STACK_SPANS];
    let mut heap = Vec::new();
    let spans = spans(raw.as_bytes(), resp.headers, &mut stack, &mut heap).to_vec();
    (Bytes::copy_from_slice(raw.as_bytes()), spans)
}

fn lines_of(raw: &str) -> (Facts, Box<Lines>) {
    let (head, spans) = parse(raw);
    let facts = facts(&head, &spans).unwrap();
    let lines = Lines::new(head, &spans, &facts).unwrap();
    (facts, lines)
}

#[test]
fn roles_are_read_in_any_case_and_nothing_else_is_hop_by_hop() {
    for (name, want) in [
        ("Date", Role::Date),
        ("content-LENGTH", Role::ContentLength),
        ("Transfer-Encoding", Role::TransferEncoding),
        ("CONNECTION", Role::Connection),
        ("Keep-Alive", Role::HopByHop),
        ("TE", Role::HopByHop),
        ("Upgrade", Role::HopByHop),
        ("Proxy-Connection", Role::HopByHop),
        ("Proxy-Authenticate", Role::HopByHop),
        ("Proxy-Authorization", Role::HopByHop),
        ("Content-Type", Role::Forward),
        ("Dates", Role::Forward),
        ("Connectio", Role::Forward),
        ("content_length", Role::Forward),
        ("x-upgrade", Role::Forward),
        ("Trailer", Role::Forward),
    ] {
        assert_eq!(role(name.as_bytes()), want, "{name}");
    }
}

#[test]
fn kept_lines_leave_out_every_name_a_map_is_stripped_of() {
    // The same list, read two ways: `crate::headers` strips maps of these,
    // and `role` must leave each out of kept lines, in any case.
    for name in crate::headers::hop_by_hop() {
        let upper = name.as_str().to_ascii_uppercase();
        for n in [name.as_str(), upper.as_str()] {
            assert!(role(n.as_bytes()).is_hop_by_hop(), "{n}");
        }
    }
}

#[test]
fn facts_read_framing_as_a_map_would() {
    let (f, _) = lines_of(
        "HTTP/1.1 200 OK\r\nServer: x\r\nContent-Length: 12\r\ncontent-length: 12\r\nConnection: keep-alive\r\n\r\n",
    );
    assert_eq!(f.length, Ok(Some(12)));
    assert!(f.seen.content_length && f.seen.keep_alive && !f.seen.connection);
    assert_eq!(f.chunked, None);

    let (head, spans) = parse("HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n");
    assert_eq!(
        facts(&head, &spans).unwrap().length,
        Err(HeadError::ConflictingLength)
    );
    let (head, spans) = parse("HTTP/1.1 200 OK\r\nContent-Length: +1\r\n\r\n");
    assert_eq!(
        facts(&head, &spans).unwrap().length,
        Err(HeadError::InvalidLength)
    );

    // The last coding of the last line decides.
    let (head, spans) = parse(
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\ntransfer-encoding: gzip, Chunked \r\n\r\n",
    );
    let f = facts(&head, &spans).unwrap();
    assert_eq!(f.chunked, Some(true));
    assert!(f.seen.transfer_encoding);
    let (head, spans) = parse("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, gzip\r\n\r\n");
    assert_eq!(facts(&head, &spans).unwrap().chunked, Some(false));

    let (head, spans) = parse("HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n");
    assert!(facts(&head, &spans).unwrap().seen.close);
    let (head, spans) = parse("HTTP/1.1 200 OK\r\nConnection: x-secret\r\n\r\n");
    assert!(facts(&head, &spans).unwrap().seen.connection);
}

#[test]
fn facts_agree_with_the_map_readers_the_server_uses() {
    // Framing read from lines (responses) and from a map (requests) are two
    // readings of one rule; a difference would be a smuggling gap.
    for lines in [
        "",
        "Content-Length: 5\r\n",
        "Content-Length: 5\r\ncontent-length:  5 \r\n",
        "Content-Length: 5\r\nContent-Length: 6\r\n",
        "Content-Length: 5,5\r\n",
        "Content-Length: -1\r\n",
        "Content-Length: 99999999999999999999\r\n",
        "Transfer-Encoding: chunked\r\n",
        "Transfer-Encoding: gzip\r\nTransfer-Encoding: CHUNKED\r\n",
        "Transfer-Encoding: chunked, gzip\r\nContent-Length: 3\r\n",
        "Transfer-Encoding: chunked\r\nContent-Length: x\r\n",
        "Connection: close\r\n",
        "Connection: Keep-Alive\r\n",
        "Connection: close, x-a\r\nX-A: 1\r\n",
        "Keep-Alive: timeout=5\r\nTE: trailers\r\n",
    ] {
        let (head, spans) = parse(&format!("HTTP/1.1 200 OK\r\n{lines}\r\n"));
        let f = facts(&head, &spans).unwrap();
        let (map, seen) = crate::h1::header_map(&head, &spans, 0).unwrap();
        assert_eq!(f.seen, seen, "{lines:?}");
        assert_eq!(f.length, crate::h1::content_length(&map), "{lines:?}");
        assert_eq!(
            f.chunked,
            crate::h1::chunked(&map).filter(|_| seen.transfer_encoding),
            "{lines:?}"
        );
    }
}

#[test]
fn lines_keep_their_order_case_and_roles() {
    let (_, lines) = lines_of(
        "HTTP/1.1 200 OK\r\nServer: nginx\r\nDate: then\r\nX-Trace: a\r\nKeep-Alive: timeout=5\r\nx-trace: b\r\n\r\n",
    );
    let seen: Vec<(String, String, Role)> = lines
        .iter()
        .map(|(n, v, r)| {
            (
                String::from_utf8(n.to_vec()).unwrap(),
                String::from_utf8(v.to_vec()).unwrap(),
                r,
            )
        })
        .collect();
    let want = [
        ("Server", "nginx", Role::Forward),
        ("Date", "then", Role::Date),
        ("X-Trace", "a", Role::Forward),
        ("Keep-Alive", "timeout=5", Role::HopByHop),
        ("x-trace", "b", Role::Forward),
    ];
    assert_eq!(seen.len(), want.len());
    for ((n, v, r), (wn, wv, wr)) in seen.iter().zip(want) {
        assert_eq!((n.as_str(), v.as_str(), *r), (wn, wv, wr));
    }
    assert_eq!(lines.get("x-trace"), Some(&b"a"[..]), "the first, any case");
    assert_eq!(lines.get("retry-after"), None);
}

#[test]
fn a_head_with_more_lines_than_the_box_holds_is_not_kept() {
    let mut raw = String::from("HTTP/1.1 200 OK\r\n");
    for i in 0..=MAX_LINES {
        raw.push_str(&format!("x-{i}: {i}\r\n"));
    }
    raw.push_str("\r\n");
    let (head, spans) = parse(&raw);
    let f = facts(&head, &spans).unwrap();
    assert!(Lines::new(head, &spans, &f).is_none());
}

#[test]
fn into_map_keeps_what_a_hop_forwards() {
    let (_, lines) = lines_of(
        "HTTP/1.1 200 OK\r\nSet-Cookie: a=1\r\nSet-Cookie: b=2\r\nContent-Length: 3\r\nConnection: keep-alive\r\nTransfer-Encoding: chunked\r\nUpgrade: x\r\nDate: d\r\n\r\n",
    );
    let mut map = HeaderMap::new();
    map.insert("x-ours", HeaderValue::from_static("1"));
    into_map(&lines, &mut map);
    let cookies: Vec<_> = map.get_all("set-cookie").iter().collect();
    assert_eq!(cookies, ["a=1", "b=2"]);
    assert_eq!(map["content-length"], "3");
    assert_eq!(map["date"], "d");
    assert_eq!(map["x-ours"], "1");
    assert_eq!(map.len(), 5, "{map:?}");
}
