use super::*;

#[test]
fn strips_fixed_and_connection_named_headers() {
    let mut h = HeaderMap::new();
    h.insert(
        header::CONNECTION,
        HeaderValue::from_static("keep-alive, x-secret"),
    );
    h.insert("x-secret", HeaderValue::from_static("1"));
    h.insert("keep-alive", HeaderValue::from_static("timeout=5"));
    h.insert(
        header::TRANSFER_ENCODING,
        HeaderValue::from_static("chunked"),
    );
    h.insert(header::TE, HeaderValue::from_static("trailers, deflate"));
    h.insert(header::UPGRADE, HeaderValue::from_static("h2c"));
    h.insert("x-keep", HeaderValue::from_static("1"));
    strip_hop_by_hop(&mut h, true);
    let mut names: Vec<_> = h.keys().map(|k| k.as_str()).collect();
    names.sort_unstable();
    assert_eq!(names, vec!["te", "x-keep"]);
    assert_eq!(h[header::TE], "trailers");
}

#[test]
fn te_without_trailers_is_dropped() {
    let mut h = HeaderMap::new();
    h.insert(header::TE, HeaderValue::from_static("gzip"));
    strip_hop_by_hop(&mut h, true);
    assert!(h.is_empty());
}

fn upstream(h: &mut HeaderMap, ip: &HeaderValue, host: Option<&'static str>) -> Added {
    let origin = Origin {
        client_ip: ip,
        proto: "http",
        request_id: HeaderValue::from_static("id-1"),
    };
    let mut added = for_upstream(h, origin);
    added.forwarded_host = host.map(HeaderValue::from_static);
    added
}

/// The head an HTTP/1.1 upstream gets, as (name, value) lines.
fn sent(h: &HeaderMap, added: &Added) -> Vec<(String, String)> {
    let mut out = Vec::new();
    added.write_h1(&mut out);
    let mut lines: Vec<(String, String)> = h
        .iter()
        .map(|(n, v)| (n.to_string(), v.to_str().unwrap().to_string()))
        .collect();
    for line in String::from_utf8(out).unwrap().split_terminator("\r\n") {
        let (n, v) = line.split_once(": ").unwrap();
        lines.push((n.to_string(), v.to_string()));
    }
    lines.sort();
    lines
}

fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
    let mut v: Vec<_> = list
        .iter()
        .map(|(n, v)| (n.to_string(), v.to_string()))
        .collect();
    v.sort();
    v
}

#[test]
fn forwarded_for_appends_to_an_existing_chain() {
    let mut h = HeaderMap::new();
    h.insert("x-forwarded-for", HeaderValue::from_static("10.0.0.1"));
    h.insert("accept", HeaderValue::from_static("*/*"));
    let ip = ip_header("127.0.0.1".parse().unwrap());
    let added = upstream(&mut h, &ip, Some("api.example.com"));
    assert_eq!(
        sent(&h, &added),
        pairs(&[
            ("accept", "*/*"),
            ("x-forwarded-for", "10.0.0.1, 127.0.0.1"),
            ("x-forwarded-proto", "http"),
            ("x-forwarded-host", "api.example.com"),
            ("x-request-id", "id-1"),
        ])
    );
}

#[test]
fn forwarded_for_joins_repeated_lines() {
    let mut h = HeaderMap::new();
    h.append("x-forwarded-for", HeaderValue::from_static("203.0.113.7"));
    h.append("x-forwarded-for", HeaderValue::from_static(""));
    h.append("x-forwarded-for", HeaderValue::from_static("10.1.2.3"));
    let ip = ip_header("127.0.0.1".parse().unwrap());
    let added = upstream(&mut h, &ip, None);
    assert!(h.is_empty(), "the client's lines leave the map: {h:?}");
    assert_eq!(
        sent(&h, &added),
        pairs(&[
            ("x-forwarded-for", "203.0.113.7, 10.1.2.3, 127.0.0.1"),
            ("x-forwarded-proto", "http"),
            ("x-request-id", "id-1"),
        ])
    );
}

#[test]
fn the_clients_own_lines_are_replaced_once_each() {
    let mut h = HeaderMap::new();
    h.insert("x-forwarded-proto", HeaderValue::from_static("https"));
    h.insert("x-forwarded-host", HeaderValue::from_static("evil"));
    h.append("x-request-id", HeaderValue::from_static("client-1"));
    h.append("x-request-id", HeaderValue::from_static("client-2"));
    let ip = ip_header("::1".parse().unwrap());
    let added = upstream(&mut h, &ip, Some("example.com"));
    assert_eq!(
        sent(&h, &added),
        pairs(&[
            ("x-forwarded-for", "::1"),
            ("x-forwarded-proto", "http"),
            ("x-forwarded-host", "example.com"),
            ("x-request-id", "id-1"),
        ])
    );
    // An h2 upstream gets the same lines in its map.
    let mut map = HeaderMap::new();
    map.insert("x-request-id", HeaderValue::from_static("stale"));
    added.insert_into(&mut map);
    let mut lines: Vec<_> = map
        .iter()
        .map(|(n, v)| (n.to_string(), v.to_str().unwrap().to_string()))
        .collect();
    lines.sort();
    assert_eq!(lines, sent(&HeaderMap::new(), &added));
}

#[test]
fn a_forwarded_header_named_in_connection_is_not_chained() {
    let mut h = HeaderMap::new();
    h.insert(
        header::CONNECTION,
        HeaderValue::from_static("x-forwarded-for"),
    );
    h.insert("x-forwarded-for", HeaderValue::from_static("10.9.9.9"));
    let ip = ip_header("127.0.0.1".parse().unwrap());
    let added = upstream(&mut h, &ip, None);
    assert!(h.is_empty(), "{h:?}");
    assert_eq!(added.forwarded_for, "127.0.0.1");
}

#[test]
fn hex16_writes_what_format_writes() {
    let mut rng = FastRng::seeded(11);
    let edges = [0, 1, 9, 10, 15, 16, 0xff, 0x0123_4567_89ab_cdef, u64::MAX];
    for v in edges.into_iter().chain((0..10_000).map(|_| rng.next_u64())) {
        assert_eq!(hex16(v), *format!("{v:016x}").as_bytes(), "{v:#x}");
    }
}

#[test]
fn request_id_is_kept_or_generated_as_uuid_v4() {
    let mut rng = FastRng::seeded(3);
    let mut h = HeaderMap::new();
    let id = request_id(&h, &mut rng);
    let s = id.to_str().unwrap();
    assert_eq!(s.len(), 36);
    assert_eq!(&s[14..15], "4");
    assert!(matches!(&s[19..20], "8" | "9" | "a" | "b"), "{s}");
    assert!(
        s.bytes()
            .enumerate()
            .all(|(i, b)| if matches!(i, 8 | 13 | 18 | 23) {
                b == b'-'
            } else {
                b.is_ascii_hexdigit()
            })
    );
    assert_ne!(request_id(&h, &mut rng), id, "each request its own");
    h.insert(X_REQUEST_ID.clone(), id.clone());
    assert_eq!(request_id(&h, &mut rng), id, "an existing id is kept");
    // Ids cut from one block stay distinct, across a block boundary too.
    let ids: std::collections::HashSet<_> = (0..3 * IDS_PER_BLOCK)
        .map(|_| new_request_id(&mut rng))
        .collect();
    assert_eq!(ids.len(), 3 * IDS_PER_BLOCK);
}
