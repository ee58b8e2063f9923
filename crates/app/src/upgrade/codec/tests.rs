use super::*;

fn offered(name: &str, port: u16) -> Offered {
    Offered {
        kind: Kind::Http,
        name: name.into(),
        configured: "127.0.0.1:0".parse().unwrap(),
        bound: ([127, 0, 0, 1], port).into(),
    }
}

fn every_message() -> Vec<Message> {
    vec![
        Message::Request { pid: 7 },
        Message::Listeners {
            pid: 1,
            listeners: vec![
                offered("public", 8080),
                Offered {
                    kind: Kind::Admin,
                    name: "admin".into(),
                    configured: "[::1]:9901".parse().unwrap(),
                    bound: "[::1]:9901".parse().unwrap(),
                },
                Offered {
                    kind: Kind::Udp,
                    name: "dns".into(),
                    configured: "127.0.0.1:5353".parse().unwrap(),
                    bound: "127.0.0.1:5353".parse().unwrap(),
                },
                Offered {
                    kind: Kind::Gossip,
                    name: "gossip".into(),
                    configured: "0.0.0.0:7946".parse().unwrap(),
                    bound: "0.0.0.0:7946".parse().unwrap(),
                },
                Offered {
                    kind: Kind::DnsUdp,
                    name: "dns".into(),
                    configured: "127.0.0.1:8600".parse().unwrap(),
                    bound: "127.0.0.1:8600".parse().unwrap(),
                },
                Offered {
                    kind: Kind::DnsTcp,
                    name: "dns".into(),
                    configured: "127.0.0.1:8600".parse().unwrap(),
                    bound: "127.0.0.1:8600".parse().unwrap(),
                },
            ],
        },
        Message::Listeners {
            pid: 1,
            listeners: vec![],
        },
        Message::Ready { pid: u32::MAX },
        Message::Released { pid: 1 },
        Message::Error {
            message: "an upgrade is already in progress \u{e9}\n".into(),
        },
    ]
}

/// A frame with this header and body, however wrong.
fn frame(version: u8, body: &[u8]) -> Vec<u8> {
    let mut f = b"MGU".to_vec();
    f.push(version);
    f.extend_from_slice(&(body.len() as u32).to_be_bytes());
    f.extend_from_slice(body);
    f
}

#[test]
fn every_message_round_trips() {
    for msg in every_message() {
        let bytes = encode(&msg).unwrap();
        assert_eq!(decode(&bytes), Ok(Some((msg, bytes.len()))));
    }
}

#[test]
fn a_partial_frame_asks_for_more_at_every_length() {
    let bytes = encode(&every_message()[1]).unwrap();
    for end in 0..bytes.len() {
        assert_eq!(decode(&bytes[..end]), Ok(None), "prefix of {end} bytes");
    }
}

#[test]
fn back_to_back_frames_decode_one_at_a_time() {
    let mut bytes = encode(&Message::Ready { pid: 3 }).unwrap();
    let first = bytes.len();
    bytes.extend(encode(&Message::Released { pid: 4 }).unwrap());
    let (msg, used) = decode(&bytes).unwrap().unwrap();
    assert_eq!((msg, used), (Message::Ready { pid: 3 }, first));
    let (msg, _) = decode(&bytes[used..]).unwrap().unwrap();
    assert_eq!(msg, Message::Released { pid: 4 });
}

#[test]
fn garbage_is_refused_at_its_first_byte() {
    assert!(matches!(decode(b"G"), Err(DecodeError::BadMagic(_))));
    assert!(matches!(
        decode(b"GET / HTTP/1.1\r\n"),
        Err(DecodeError::BadMagic(_))
    ));
    assert!(matches!(decode(b"MGX"), Err(DecodeError::BadMagic(_))));
}

#[test]
fn another_version_is_refused_by_its_header() {
    assert_eq!(
        decode(&frame(2, b"{\"anything\": \"at all\"}")),
        Err(DecodeError::Version(2))
    );
    // Known before the body arrives.
    assert_eq!(decode(&frame(0, b"")[..8]), Err(DecodeError::Version(0)));
}

#[test]
fn an_oversized_length_is_refused_before_buffering_the_body() {
    let mut header = b"MGU\x01".to_vec();
    header.extend_from_slice(&u32::MAX.to_be_bytes());
    assert_eq!(
        decode(&header),
        Err(DecodeError::TooLong(u32::MAX as usize))
    );
}

#[test]
fn malformed_bodies_are_errors_not_panics() {
    for body in [
        &b""[..],
        b"{",
        b"null",
        b"[]",
        b"{\"type\":\"request\"}",
        b"{\"type\":\"request\",\"pid\":-1}",
        b"{\"type\":\"launch\",\"pid\":1}",
        b"{\"type\":\"listeners\",\"pid\":1,\"listeners\":[{\"kind\":\"http\",\"name\":\"a\",\"configured\":\"nowhere\",\"bound\":\"127.0.0.1:1\"}]}",
        b"\xff\xfe",
    ] {
        assert!(
            matches!(decode(&frame(1, body)), Err(DecodeError::Json(_))),
            "{:?}",
            String::from_utf8_lossy(body)
        );
    }
}

#[test]
fn unknown_fields_are_ignored_for_forward_compatibility() {
    let f = frame(1, b"{\"type\":\"ready\",\"pid\":9,\"extra\":true}");
    assert_eq!(decode(&f), Ok(Some((Message::Ready { pid: 9 }, f.len()))));
}

#[test]
fn listener_lists_are_bounded() {
    let too_many = Message::Listeners {
        pid: 1,
        listeners: (0..=MAX_LISTENERS)
            .map(|i| offered("l", i as u16))
            .collect(),
    };
    let bytes = encode(&too_many).unwrap();
    assert!(matches!(decode(&bytes), Err(DecodeError::Invalid(_))));
    for name in [String::new(), "n".repeat(MAX_NAME + 1)] {
        let bad = Message::Listeners {
            pid: 1,
            listeners: vec![offered(&name, 1)],
        };
        let bytes = encode(&bad).unwrap();
        assert!(matches!(decode(&bytes), Err(DecodeError::Invalid(_))));
    }
}

#[test]
fn a_message_over_the_limit_is_not_encoded() {
    let huge = Message::Error {
        message: "x".repeat(MAX_BODY),
    };
    assert!(matches!(encode(&huge), Err(EncodeError::TooLong(_))));
}

#[test]
fn the_fuzz_body_holds_on_samples() {
    for msg in every_message() {
        let bytes = encode(&msg).unwrap();
        fuzz(&bytes);
        fuzz(&bytes[..bytes.len() / 2]);
    }
    fuzz(b"");
    fuzz(b"MGU\x01\x00\x00\x00\x02{}");
}

#[test]
fn a_udp_socket_is_described_as_kind_udp_on_the_wire() {
    let msg = Message::Listeners {
        pid: 1,
        listeners: vec![Offered {
            kind: Kind::Udp,
            ..offered("dns", 5353)
        }],
    };
    let bytes = encode(&msg).unwrap();
    let body = std::str::from_utf8(&bytes[HEADER_LEN..]).unwrap();
    assert!(body.contains(r#""kind":"udp""#), "{body}");
    // A kind this build does not know refuses the message as a whole.
    let unknown = body.replace(r#""kind":"udp""#, r#""kind":"sctp""#);
    assert!(matches!(
        decode(&frame(VERSION, unknown.as_bytes())),
        Err(DecodeError::Json(_))
    ));
}
