//! Unit tests for the PROXY protocol: one per rule of the spec that the
//! parsers enforce, and the exact bytes the encoders write.

use std::net::SocketAddr;

use super::*;

fn addr(text: &str) -> SocketAddr {
    text.parse().unwrap()
}

fn complete(buf: &[u8]) -> (Header, usize) {
    match parse(buf) {
        Ok(Parsed::Complete { header, consumed }) => (header, consumed),
        other => panic!("expected a complete header, got {other:?}"),
    }
}

fn proxied(source: &str, destination: &str, transport: Transport) -> Option<Addresses> {
    Some(Addresses {
        source: addr(source),
        destination: addr(destination),
        transport,
    })
}

/// A v2 header with the given version/command and family bytes and body.
fn v2(ver_cmd: u8, family: u8, body: &[u8]) -> Vec<u8> {
    let mut out = V2_SIGNATURE.to_vec();
    out.push(ver_cmd);
    out.push(family);
    out.extend_from_slice(&u16::try_from(body.len()).unwrap().to_be_bytes());
    out.extend_from_slice(body);
    out
}

const INET_BODY: [u8; 12] = [10, 0, 0, 1, 192, 168, 1, 2, 0x30, 0x39, 0x01, 0xbb];

#[test]
fn detect_waits_on_a_strict_prefix_of_either_start() {
    assert_eq!(detect(b""), Detect::NeedMore);
    assert_eq!(detect(b"PROX"), Detect::NeedMore);
    assert_eq!(detect(b"PROXY"), Detect::NeedMore);
    assert_eq!(detect(b"\r\n\r\n\0\r\nQUI"), Detect::NeedMore);
    assert_eq!(detect(b"PROXY "), Detect::V1);
    assert_eq!(detect(&V2_SIGNATURE), Detect::V2);
    assert_eq!(detect(b"GET / HTTP/1.1\r\n"), Detect::Absent);
    assert_eq!(detect(b"PROXY\r\n"), Detect::Absent);
    assert_eq!(detect(b"\r\n\r\nX"), Detect::Absent);
    assert_eq!(parse(b"GET /"), Err(Error::Absent));
}

#[test]
fn v1_tcp4_gives_addresses_and_leaves_the_payload() {
    let buf = b"PROXY TCP4 192.0.2.1 198.51.100.7 56324 443\r\nGET / HTTP/1.1\r\n";
    let (header, consumed) = complete(buf);
    assert_eq!(
        header,
        Header {
            version: 1,
            command: Command::Proxy,
            addresses: proxied("192.0.2.1:56324", "198.51.100.7:443", Transport::Stream),
        }
    );
    assert_eq!(&buf[consumed..], b"GET / HTTP/1.1\r\n");
}

#[test]
fn v1_tcp6_gives_addresses() {
    let (header, consumed) = complete(b"PROXY TCP6 2001:db8::1 ::ffff:10.0.0.1 0 65535\r\n");
    assert_eq!(
        header.addresses,
        proxied(
            "[2001:db8::1]:0",
            "[::ffff:10.0.0.1]:65535",
            Transport::Stream
        )
    );
    assert_eq!(consumed, 48);
}

#[test]
fn v1_unknown_means_proxy_without_addresses_whatever_follows() {
    for line in [
        &b"PROXY UNKNOWN\r\n"[..],
        b"PROXY UNKNOWN ffff:f...f:ffff ffff:f...f:ffff 65535 65535\r\n",
    ] {
        let (header, consumed) = complete(line);
        assert_eq!(header.command, Command::Proxy);
        assert_eq!(header.addresses, None);
        assert_eq!(consumed, line.len());
    }
    assert_eq!(parse(b"PROXY UNKNOWNX\r\n"), Err(Error::V1Protocol));
}

#[test]
fn v1_refuses_other_protocols() {
    for line in [
        &b"PROXY TCP5 1.2.3.4 1.2.3.4 1 2\r\n"[..],
        b"PROXY tcp4 1.2.3.4 1.2.3.4 1 2\r\n",
        b"PROXY UDP4 1.2.3.4 1.2.3.4 1 2\r\n",
        b"PROXY \r\n",
    ] {
        assert_eq!(parse(line), Err(Error::V1Protocol), "{line:?}");
    }
}

#[test]
fn v1_needs_single_spaces_and_exactly_four_fields_after_the_protocol() {
    for line in [
        &b"PROXY TCP4  1.2.3.4 1.2.3.4 1 2\r\n"[..],
        b"PROXY TCP4 1.2.3.4 1.2.3.4 1 2 \r\n",
        b"PROXY TCP4 1.2.3.4 1.2.3.4 1\r\n",
        b"PROXY TCP4 1.2.3.4 1.2.3.4 1 2 3\r\n",
        b"PROXY TCP4 1.2.3.4\t1.2.3.4 1 2\r\n",
    ] {
        assert!(
            matches!(
                parse(line),
                Err(Error::V1Syntax(_) | Error::V1Address { .. })
            ),
            "{line:?}: {:?}",
            parse(line)
        );
    }
}

#[test]
fn v1_line_must_end_in_crlf() {
    assert_eq!(
        parse(b"PROXY TCP4 1.2.3.4 1.2.3.4 1 2\n"),
        Err(Error::V1BareLf)
    );
    // A CR alone is not an end: the line goes on until the cap.
    assert_eq!(
        parse(b"PROXY TCP4 1.2.3.4 1.2.3.4 1 2\r"),
        Ok(Parsed::Incomplete)
    );
    assert!(parse(b"PROXY TCP4 1.2.3.4 1.2.3.4 1 2\rX\r\n").is_err());
}

#[test]
fn v1_is_refused_once_107_bytes_pass_without_a_crlf() {
    let mut line = b"PROXY UNKNOWN ".to_vec();
    line.resize(MAX_V1_LEN - 2, b'x');
    line.extend_from_slice(b"\r\n");
    assert_eq!(complete(&line).1, MAX_V1_LEN, "107 bytes with CRLF fit");

    // The same 105 bytes, but with no CRLF yet: 106 are still a line that
    // may end, 107 without an LF cannot.
    let mut long = line[..MAX_V1_LEN - 2].to_vec();
    long.push(b'x');
    assert_eq!(parse(&long), Ok(Parsed::Incomplete));
    long.push(b'x');
    assert_eq!(parse(&long), Err(Error::V1TooLong));
    long.extend_from_slice(b"\r\n");
    assert_eq!(parse(&long), Err(Error::V1TooLong));
    assert_eq!(
        Error::V1TooLong.to_string(),
        "PROXY v1 header longer than 107 bytes"
    );
}

#[test]
fn v1_addresses_must_be_of_the_named_family() {
    let cases: [(&[u8], &str); 6] = [
        (b"PROXY TCP4 ::1 1.2.3.4 1 2\r\n", "source"),
        (b"PROXY TCP4 1.2.3.4 ::1 1 2\r\n", "destination"),
        (b"PROXY TCP6 1.2.3.4 ::1 1 2\r\n", "source"),
        (b"PROXY TCP4 01.2.3.4 1.2.3.4 1 2\r\n", "source"),
        (b"PROXY TCP6 fe80::1%eth0 ::1 1 2\r\n", "source"),
        (b"PROXY TCP6 ::1 [::1] 1 2\r\n", "destination"),
    ];
    for (line, field) in cases {
        assert!(
            matches!(parse(line), Err(Error::V1Address { field: f, .. }) if f == field),
            "{line:?}: {:?}",
            parse(line)
        );
    }
    assert_eq!(
        parse(b"PROXY TCP4 \xff.2.3.4 1.2.3.4 1 2\r\n"),
        Err(Error::V1Address {
            field: "source",
            family: "TCP4"
        })
    );
}

#[test]
fn v1_ports_are_plain_decimal_up_to_65535() {
    let line = |sport: &str| format!("PROXY TCP4 1.2.3.4 5.6.7.8 {sport} 80\r\n").into_bytes();
    for ok in ["0", "1", "80", "65535"] {
        assert!(complete(&line(ok)).0.addresses.is_some(), "{ok}");
    }
    for bad in [
        "+80", "080", "00", "65536", "99999", "123456", "-1", "8O", "0x50",
    ] {
        assert_eq!(parse(&line(bad)), Err(Error::V1Port("source")), "{bad}");
    }
}

#[test]
fn v2_inet_stream_gives_addresses_and_leaves_the_payload() {
    let mut buf = v2(0x21, 0x11, &INET_BODY);
    buf.extend_from_slice(b"payload");
    let (header, consumed) = complete(&buf);
    assert_eq!(
        header,
        Header {
            version: 2,
            command: Command::Proxy,
            addresses: proxied("10.0.0.1:12345", "192.168.1.2:443", Transport::Stream),
        }
    );
    assert_eq!(&buf[consumed..], b"payload");
}

#[test]
fn v2_inet6_datagram_gives_addresses() {
    let mut body = [0u8; 36];
    body[15] = 1; // ::1
    body[16..18].copy_from_slice(&[0x20, 0x01]); // 2001::
    body[32..36].copy_from_slice(&[0, 53, 0x13, 0x88]);
    let (header, _) = complete(&v2(0x21, 0x22, &body));
    assert_eq!(
        header.addresses,
        proxied("[::1]:53", "[2001::]:5000", Transport::Datagram)
    );
}

#[test]
fn v2_local_has_no_addresses_whatever_the_family() {
    for family in [0x00, 0x11, 0x21, 0x31, 0xff] {
        let (header, consumed) = complete(&v2(0x20, family, &INET_BODY));
        assert_eq!(header.command, Command::Local);
        assert_eq!(header.addresses, None);
        assert_eq!(consumed, 16 + 12);
    }
    assert_eq!(complete(&v2(0x20, 0x00, &[])).1, 16);
}

#[test]
fn v2_unspec_and_unix_have_no_addresses() {
    assert_eq!(complete(&v2(0x21, 0x00, b"anything")).0.addresses, None);
    assert_eq!(complete(&v2(0x21, 0x00, &[])).0.addresses, None);
    for family in [0x31, 0x32] {
        let (header, consumed) = complete(&v2(0x21, family, &[b'/'; 216]));
        assert_eq!((header.command, header.addresses), (Command::Proxy, None));
        assert_eq!(consumed, 16 + 216);
    }
}

#[test]
fn v2_checks_version_and_command_nibbles() {
    assert_eq!(parse(&v2(0x11, 0x11, &INET_BODY)), Err(Error::V2Version(1)));
    assert_eq!(parse(&v2(0x31, 0x11, &INET_BODY)), Err(Error::V2Version(3)));
    assert_eq!(parse(&v2(0x23, 0x11, &INET_BODY)), Err(Error::V2Command(3)));
    assert_eq!(
        Error::V2Command(3).to_string(),
        "PROXY v2: unknown command 0x3"
    );
}

#[test]
fn v2_refuses_families_outside_the_table() {
    for family in [0x01, 0x10, 0x13, 0x20, 0x30, 0x41, 0xf1] {
        assert_eq!(
            parse(&v2(0x21, family, &[0; 216])),
            Err(Error::V2Family(family)),
            "{family:#04x}"
        );
    }
}

#[test]
fn v2_address_block_must_fit_the_family() {
    for (family, needed, name) in [
        (0x11, 12, "AF_INET"),
        (0x21, 36, "AF_INET6"),
        (0x31, 216, "AF_UNIX"),
    ] {
        assert_eq!(
            parse(&v2(0x21, family, &vec![0; needed - 1])),
            Err(Error::V2ShortAddresses {
                family: name,
                needed,
                got: needed - 1
            })
        );
    }
}

#[test]
fn v2_tlvs_are_skipped_but_must_fit() {
    let mut body = INET_BODY.to_vec();
    body.extend_from_slice(&[0x01, 0x00, 0x02, b'h', b'2']); // PP2_TYPE_ALPN
    body.extend_from_slice(&[0x04, 0x00, 0x00]); // PP2_TYPE_NOOP, empty
    let (header, consumed) = complete(&v2(0x21, 0x11, &body));
    assert!(header.addresses.is_some());
    assert_eq!(consumed, 16 + body.len());

    for tail in [&[0x01, 0x00, 0x03, b'h', b'2'][..], &[0x01], &[0x01, 0x00]] {
        let mut body = INET_BODY.to_vec();
        body.extend_from_slice(tail);
        assert_eq!(parse(&v2(0x21, 0x11, &body)), Err(Error::V2Tlv), "{tail:?}");
    }
}

#[test]
fn v2_length_is_capped_before_the_body_arrives() {
    let mut fixed = V2_SIGNATURE.to_vec();
    fixed.extend_from_slice(&[0x21, 0x11, 0x10, 0x01]); // 4097 bytes to follow
    assert_eq!(parse(&fixed), Err(Error::V2TooLong(MAX_V2_LEN + 1)));

    // Exactly at the cap is fine: addresses and one big NOOP TLV.
    let mut body = INET_BODY.to_vec();
    let value = MAX_V2_LEN - 16 - 12 - 3;
    body.extend_from_slice(&[0x04]);
    body.extend_from_slice(&u16::try_from(value).unwrap().to_be_bytes());
    body.resize(MAX_V2_LEN - 16, 0);
    assert_eq!(complete(&v2(0x21, 0x11, &body)).1, MAX_V2_LEN);
}

#[test]
fn v2_waits_for_the_fixed_part_and_the_declared_body() {
    let whole = v2(0x21, 0x11, &INET_BODY);
    for cut in 0..whole.len() {
        assert_eq!(parse(&whole[..cut]), Ok(Parsed::Incomplete), "cut at {cut}");
    }
}

#[test]
fn encode_v1_writes_the_spec_line() {
    assert_eq!(
        encode_v1(addr("192.0.2.1:56324"), addr("198.51.100.7:443")),
        b"PROXY TCP4 192.0.2.1 198.51.100.7 56324 443\r\n"
    );
    assert_eq!(
        encode_v1(addr("[2001:db8::1]:1"), addr("[::1]:2")),
        b"PROXY TCP6 2001:db8::1 ::1 1 2\r\n"
    );
    // Mixed families: both sides in IPv6 form.
    assert_eq!(
        encode_v1(addr("192.0.2.1:1"), addr("[::1]:2")),
        b"PROXY TCP6 ::ffff:192.0.2.1 ::1 1 2\r\n"
    );
    let longest = encode_v1(
        addr("[ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff]:65535"),
        addr("[ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff]:65535"),
    );
    assert_eq!(longest.len(), 104);
}

#[test]
fn encode_v2_writes_the_spec_bytes() {
    let bytes = encode_v2(
        addr("10.0.0.1:12345"),
        addr("192.168.1.2:443"),
        Transport::Stream,
    );
    assert_eq!(bytes, v2(0x21, 0x11, &INET_BODY));

    let mixed = encode_v2(addr("10.0.0.1:1"), addr("[::1]:2"), Transport::Datagram);
    assert_eq!(mixed.len(), 16 + 36);
    assert_eq!(
        complete(&mixed).0.addresses,
        proxied("[::ffff:10.0.0.1]:1", "[::1]:2", Transport::Datagram)
    );
}
