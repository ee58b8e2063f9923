use super::*;

fn parse(bytes: &[u8], method: &Method) -> Result<Option<Head>, Error> {
    let mut buf = BytesMut::from(bytes);
    parse_head(&mut buf, method)
}

#[test]
fn a_partial_head_asks_for_more() {
    assert!(
        parse(b"HTTP/1.1 200 OK\r\ncontent-le", &Method::GET)
            .unwrap()
            .is_none()
    );
}

#[test]
fn length_chunked_close_and_empty_framing() {
    let h = parse(
        b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\nhello",
        &Method::GET,
    )
    .unwrap()
    .unwrap();
    assert_eq!(h.framing, Framing::Length(5));
    assert!(h.keep_alive);
    let h = parse(
        b"HTTP/1.1 200 OK\r\ntransfer-encoding: gzip, chunked\r\n\r\n",
        &Method::GET,
    )
    .unwrap()
    .unwrap();
    assert_eq!(h.framing, Framing::Chunked);
    let h = parse(b"HTTP/1.1 200 OK\r\n\r\n", &Method::GET)
        .unwrap()
        .unwrap();
    assert_eq!(h.framing, Framing::UntilClose);
    assert!(
        !h.keep_alive,
        "a close-delimited body cannot be followed by another response"
    );
    let h = parse(
        b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\n",
        &Method::HEAD,
    )
    .unwrap()
    .unwrap();
    assert_eq!(h.framing, Framing::Empty);
    for status in ["204 No Content", "304 Not Modified"] {
        let raw = format!("HTTP/1.1 {status}\r\ncontent-length: 9\r\n\r\n");
        assert_eq!(
            parse(raw.as_bytes(), &Method::GET)
                .unwrap()
                .unwrap()
                .framing,
            Framing::Empty
        );
    }
}

#[test]
fn the_head_is_consumed_and_the_body_left_in_the_buffer() {
    let mut buf =
        BytesMut::from(&b"HTTP/1.1 200 OK\r\nx-a: 1\r\nx-a: 2\r\ncontent-length: 2\r\n\r\nok"[..]);
    let h = parse_head(&mut buf, &Method::GET).unwrap().unwrap();
    assert_eq!(&buf[..], b"ok");
    let lines = h.lines.expect("a 200's lines are kept as they came");
    let values: Vec<_> = lines
        .iter()
        .filter(|(n, _, _)| *n == b"x-a")
        .map(|(_, v, _)| v)
        .collect();
    assert_eq!(values, [b"1", b"2"]);
    // A status the pipeline reads headers of gets them in a map.
    let mut buf = BytesMut::from(
        &b"HTTP/1.1 500 Oops\r\nx-a: 1\r\nx-a: 2\r\ncontent-length: 2\r\n\r\nok"[..],
    );
    let h = parse_head(&mut buf, &Method::GET).unwrap().unwrap();
    assert_eq!(&buf[..], b"ok");
    let values: Vec<_> = h.headers.get_all("x-a").iter().collect();
    assert_eq!(values, ["1", "2"]);
}

#[test]
fn connection_close_and_http10_keep_alive_rules() {
    let h = parse(
        b"HTTP/1.1 200 OK\r\nconnection: close\r\ncontent-length: 0\r\n\r\n",
        &Method::GET,
    )
    .unwrap()
    .unwrap();
    assert!(!h.keep_alive);
    let h = parse(
        b"HTTP/1.0 200 OK\r\ncontent-length: 0\r\n\r\n",
        &Method::GET,
    )
    .unwrap()
    .unwrap();
    assert!(!h.keep_alive);
    let h = parse(
        b"HTTP/1.0 200 OK\r\nconnection: keep-alive\r\ncontent-length: 0\r\n\r\n",
        &Method::GET,
    )
    .unwrap()
    .unwrap();
    assert!(h.keep_alive);
}

#[test]
fn malformed_heads_are_protocol_errors() {
    for raw in [
        &b"garbage\r\n\r\n"[..],
        b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\ncontent-length: 6\r\n\r\n",
        b"HTTP/1.1 200 OK\r\ncontent-length: -1\r\n\r\n",
        b"HTTP/1.1 200 OK\r\ncontent-length: 99999999999999999999999\r\n\r\n",
    ] {
        let err = parse(raw, &Method::GET)
            .err()
            .unwrap_or_else(|| panic!("{raw:?} parsed"));
        assert_eq!(err.kind(), ErrorKind::UpstreamProtocol, "{raw:?}");
    }
    let huge = [b"HTTP/1.1 200 OK\r\nx: ".as_slice(), &[b'a'; MAX_HEAD + 1]].concat();
    assert!(parse(&huge, &Method::GET).is_err());
}

#[test]
fn encodes_origin_form_with_headers_and_chunked_framing() {
    let req = http::Request::post("http://x/a/b?c=1")
        .header("host", "x")
        .body(())
        .unwrap();
    let ip = http::HeaderValue::from_static("10.0.0.9");
    let origin = crate::headers::Origin {
        client_ip: &ip,
        proto: "https",
        request_id: http::HeaderValue::from_static("r-1"),
    };
    let added = crate::headers::for_upstream(&mut HeaderMap::new(), origin);
    let mut out = Vec::new();
    assert!(!encode_head(&req, &added, true, &mut out), "no upgrade");
    assert_eq!(
        String::from_utf8(out).unwrap(),
        "POST /a/b?c=1 HTTP/1.1\r\nhost: x\r\n\
         x-forwarded-for: 10.0.0.9\r\nx-forwarded-proto: https\r\nx-request-id: r-1\r\n\
         transfer-encoding: chunked\r\n\r\n"
    );
    let ws = http::Request::get("/chat")
        .header("connection", "upgrade")
        .header("upgrade", "websocket")
        .body(())
        .unwrap();
    assert!(
        encode_head(&ws, &added, false, &mut Vec::new()),
        "an upgrade"
    );
}
