use super::*;

const LIMITS: HeadLimits = HeadLimits {
    max_bytes: 1024,
    max_headers: 8,
};

fn parse(bytes: &[u8]) -> Result<Option<RequestHead>, Error> {
    let mut buf = BytesMut::from(bytes);
    parse_request(&mut buf, LIMITS)
}

fn kind(bytes: &[u8]) -> ErrorKind {
    parse(bytes).expect_err("should be refused").kind()
}

#[test]
fn a_simple_get_is_parsed_and_consumed_leaving_the_next_request() {
    let mut buf = BytesMut::from(&b"GET /a?b=1 HTTP/1.1\r\nHost: x\r\nX-A: 1\r\n\r\nGET /next"[..]);
    let head = parse_request(&mut buf, LIMITS).unwrap().unwrap();
    assert_eq!(head.parts.method, Method::GET);
    assert_eq!(head.parts.uri, "/a?b=1");
    assert_eq!(head.parts.version, Version::HTTP_11);
    assert_eq!(head.parts.headers["host"], "x");
    assert_eq!(head.parts.headers["x-a"], "1");
    assert_eq!(head.framing, Framing::Empty);
    assert!(head.keep_alive);
    assert!(!head.expect_continue);
    assert_eq!(&buf[..], b"GET /next");
}

#[test]
fn partial_heads_ask_for_more() {
    assert!(parse(b"GET / HTTP/1.1\r\nHost: x\r\n").unwrap().is_none());
    assert!(parse(b"GE").unwrap().is_none());
}

#[test]
fn limits_give_431() {
    let long = format!("GET / HTTP/1.1\r\nX: {}\r\n\r\n", "a".repeat(2000));
    assert_eq!(
        kind(long.as_bytes()),
        ErrorKind::RequestHeadersTooLarge,
        "complete but too big"
    );
    assert_eq!(
        kind(&long.as_bytes()[..1500]),
        ErrorKind::RequestHeadersTooLarge,
        "still partial and already too big"
    );
    let mut many = String::from("GET / HTTP/1.1\r\n");
    for i in 0..9 {
        many.push_str(&format!("X-{i}: 1\r\n"));
    }
    many.push_str("\r\n");
    assert_eq!(kind(many.as_bytes()), ErrorKind::RequestHeadersTooLarge);
}

#[test]
fn body_framing_and_smuggling_vectors() {
    let head = parse(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\n")
        .unwrap()
        .unwrap();
    assert_eq!(head.framing, Framing::Length(5));
    let head = parse(b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n")
        .unwrap()
        .unwrap();
    assert_eq!(head.framing, Framing::Chunked);
    for bad in [
        &b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n"[..],
        b"POST / HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n",
        b"POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n",
        b"POST / HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n",
        b"POST / HTTP/1.1\r\nContent-Length: -5\r\n\r\n",
        b"POST / HTTP/1.1\r\nContent-Length: 0x5\r\n\r\n",
    ] {
        assert_eq!(
            kind(bad),
            ErrorKind::BadRequest,
            "{}",
            String::from_utf8_lossy(bad)
        );
    }
}

#[test]
fn malformed_heads_give_400() {
    for bad in [
        &b"GET / HTTP/1.1\r\nBad Header: x\r\n\r\n"[..],
        b"GET / HTTP/2.0\r\n\r\n",
        b"G\x01T / HTTP/1.1\r\n\r\n",
        b"GET / HTTP/1.1\r\nX: a\x00b\r\n\r\n",
        b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03",
    ] {
        assert_eq!(
            kind(bad),
            ErrorKind::BadRequest,
            "{}",
            String::from_utf8_lossy(bad)
        );
    }
}

#[test]
fn keep_alive_and_expect_continue() {
    let head = parse(b"GET / HTTP/1.0\r\n\r\n").unwrap().unwrap();
    assert!(!head.keep_alive);
    let head = parse(b"GET / HTTP/1.1\r\nConnection: close\r\n\r\n")
        .unwrap()
        .unwrap();
    assert!(!head.keep_alive);
    let head = parse(b"PUT / HTTP/1.1\r\nExpect: 100-Continue\r\nContent-Length: 3\r\n\r\n")
        .unwrap()
        .unwrap();
    assert!(head.expect_continue);
    // Nothing to continue without a body.
    let head = parse(b"GET / HTTP/1.1\r\nExpect: 100-continue\r\n\r\n")
        .unwrap()
        .unwrap();
    assert!(!head.expect_continue);
}

#[test]
fn response_heads_carry_exactly_our_framing() {
    let mut headers = HeaderMap::new();
    headers.insert(header::CONTENT_LENGTH, "99".parse().unwrap());
    headers.insert(header::TRANSFER_ENCODING, "chunked".parse().unwrap());
    headers.insert(header::CONTENT_TYPE, "text/plain".parse().unwrap());
    let date = b"Sat, 21 Nov 2026 08:00:00 GMT";
    let mut out = Vec::new();
    encode_response_head(
        StatusCode::OK,
        &headers,
        None,
        Delimit::Length(2),
        Some(b"close"),
        date,
        &mut out,
    );
    assert_eq!(
        String::from_utf8(out).unwrap(),
        "HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ndate: Sat, 21 Nov 2026 08:00:00 GMT\r\n\
         content-length: 2\r\nconnection: close\r\n\r\n"
    );
    headers.insert(header::DATE, "then".parse().unwrap());
    let mut out = Vec::new();
    encode_response_head(
        StatusCode::NOT_FOUND,
        &headers,
        None,
        Delimit::Chunked,
        None,
        date,
        &mut out,
    );
    let text = String::from_utf8(out).unwrap();
    assert!(text.starts_with("HTTP/1.1 404 Not Found\r\n"), "{text}");
    assert!(
        text.contains("date: then\r\n") && !text.contains("2026"),
        "{text}"
    );
    assert!(
        text.ends_with("transfer-encoding: chunked\r\n\r\n"),
        "{text}"
    );
}

#[test]
fn an_upstream_heads_lines_pass_through_without_hop_by_hop_ones() {
    let mut raw = BytesMut::from(
        &b"HTTP/1.1 200 OK\r\nServer: nginx\r\nContent-Type: text/plain\r\n\
           Content-Length: 2\r\nConnection: keep-alive\r\nKeep-Alive: timeout=5\r\n\
           X-Trace: a\r\n\r\nok"[..],
    );
    let head = crate::h1_client::codec::parse_head(&mut raw, &Method::GET)
        .unwrap()
        .unwrap();
    assert!(head.headers.is_empty(), "a 200 keeps its lines, not a map");
    let lines = head.lines.expect("lines kept");
    let mut ours = HeaderMap::new();
    ours.insert("x-ours", "1".parse().unwrap());
    let date = b"Sat, 21 Nov 2026 08:00:00 GMT";
    let mut out = Vec::new();
    encode_response_head(
        StatusCode::OK,
        &ours,
        Some(&lines),
        Delimit::Length(2),
        None,
        date,
        &mut out,
    );
    assert_eq!(
        String::from_utf8(out).unwrap(),
        "HTTP/1.1 200 OK\r\nx-ours: 1\r\nServer: nginx\r\nContent-Type: text/plain\r\n\
         X-Trace: a\r\ndate: Sat, 21 Nov 2026 08:00:00 GMT\r\ncontent-length: 2\r\n\r\n"
    );

    // The upstream's Date is kept, and ours is not added.
    let mut raw = BytesMut::from(&b"HTTP/1.1 204 No Content\r\ndate: then\r\n\r\n"[..]);
    let head = crate::h1_client::codec::parse_head(&mut raw, &Method::GET)
        .unwrap()
        .unwrap();
    let mut out = Vec::new();
    encode_response_head(
        StatusCode::NO_CONTENT,
        &HeaderMap::new(),
        head.lines.as_deref(),
        Delimit::None,
        None,
        date,
        &mut out,
    );
    assert_eq!(
        String::from_utf8(out).unwrap(),
        "HTTP/1.1 204 No Content\r\ndate: then\r\n\r\n"
    );
}

#[test]
fn heads_the_pipeline_reads_get_a_map() {
    for (method, raw) in [
        (Method::HEAD, "HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\n"),
        (
            Method::GET,
            "HTTP/1.1 503 Unavailable\r\nRetry-After: 1\r\nContent-Length: 0\r\n\r\n",
        ),
        (
            Method::GET,
            "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n",
        ),
        (
            Method::GET,
            "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n",
        ),
        (
            Method::GET,
            "HTTP/1.1 200 OK\r\nConnection: x-secret\r\nX-Secret: 1\r\nContent-Length: 0\r\n\r\n",
        ),
    ] {
        let mut buf = BytesMut::from(raw.as_bytes());
        let head = crate::h1_client::codec::parse_head(&mut buf, &method)
            .unwrap()
            .unwrap();
        assert!(head.lines.is_none() && !head.headers.is_empty(), "{raw:?}");
    }
}

#[test]
fn chunk_sizes_are_lowercase_hex() {
    for (len, want) in [
        (0, "0\r\n"),
        (10, "a\r\n"),
        (4096, "1000\r\n"),
        (usize::MAX, "ffffffffffffffff\r\n"),
    ] {
        let mut out = Vec::new();
        encode_chunk_size(len, &mut out);
        assert_eq!(String::from_utf8(out).unwrap(), want);
    }
}

#[test]
fn many_headers_take_the_heap_path_intact() {
    let mut req = String::from("GET / HTTP/1.1\r\n");
    for i in 0..50 {
        req.push_str(&format!("x-h{i}: v{i}\r\n"));
    }
    req.push_str("\r\n");
    let limits = HeadLimits {
        max_bytes: 64 * 1024,
        max_headers: 200,
    };
    let mut buf = BytesMut::from(req.as_bytes());
    let head = parse_request(&mut buf, limits).unwrap().unwrap();
    assert_eq!(head.parts.headers.len(), 50);
    for i in 0..50 {
        assert_eq!(
            head.parts.headers[format!("x-h{i}").as_str()],
            format!("v{i}")
        );
    }
}
