//! Properties of the PROXY protocol code over generated input: what the
//! encoders write parses back to the same endpoints, every prefix of a
//! header asks for more, and no input makes the parser panic.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use proptest::prelude::*;

use super::*;

/// Endpoints as the wire carries them: no flow label or scope id, which
/// neither format has room for.
fn endpoint() -> impl Strategy<Value = SocketAddr> {
    let ip = prop_oneof![
        any::<[u8; 4]>().prop_map(|b| IpAddr::V4(Ipv4Addr::from(b))),
        any::<[u8; 16]>().prop_map(|b| IpAddr::V6(Ipv6Addr::from(b))),
        // Mapped addresses are where text forms get tricky.
        any::<[u8; 4]>().prop_map(|b| IpAddr::V6(Ipv4Addr::from(b).to_ipv6_mapped())),
    ];
    (ip, any::<u16>()).prop_map(|(ip, port)| SocketAddr::new(ip, port))
}

fn transport() -> impl Strategy<Value = Transport> {
    prop_oneof![Just(Transport::Stream), Just(Transport::Datagram)]
}

/// What a header should say for this pair: mixed families come back as
/// IPv6, with the IPv4 side mapped.
fn expected(source: SocketAddr, destination: SocketAddr, transport: Transport) -> Addresses {
    let v6 = |a: SocketAddr| match a {
        SocketAddr::V4(v4) => SocketAddr::new(v4.ip().to_ipv6_mapped().into(), v4.port()),
        SocketAddr::V6(_) => a,
    };
    let (source, destination) = if source.is_ipv4() == destination.is_ipv4() {
        (source, destination)
    } else {
        (v6(source), v6(destination))
    };
    Addresses {
        source,
        destination,
        transport,
    }
}

fn assert_round_trip(
    bytes: &[u8],
    payload: &[u8],
    version: u8,
    want: Addresses,
) -> Result<(), TestCaseError> {
    let mut buf = bytes.to_vec();
    buf.extend_from_slice(payload);
    prop_assert_eq!(
        parse(&buf),
        Ok(Parsed::Complete {
            header: Header {
                version,
                command: Command::Proxy,
                addresses: Some(want),
            },
            consumed: bytes.len(),
        })
    );
    // Every strict prefix is a header still arriving, never an error.
    for cut in 0..bytes.len() {
        prop_assert_eq!(
            parse(&bytes[..cut]),
            Ok(Parsed::Incomplete),
            "cut at {}",
            cut
        );
    }
    Ok(())
}

proptest! {
    #[test]
    fn v1_round_trips(
        source in endpoint(),
        destination in endpoint(),
        payload in proptest::collection::vec(any::<u8>(), 0..16),
    ) {
        let bytes = encode_v1(source, destination);
        prop_assert!(bytes.len() <= MAX_V1_LEN);
        let want = expected(source, destination, Transport::Stream);
        assert_round_trip(&bytes, &payload, 1, want)?;
    }

    #[test]
    fn v2_round_trips(
        source in endpoint(),
        destination in endpoint(),
        transport in transport(),
        payload in proptest::collection::vec(any::<u8>(), 0..16),
    ) {
        let bytes = encode_v2(source, destination, transport);
        let want = expected(source, destination, transport);
        assert_round_trip(&bytes, &payload, 2, want)?;
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
        let _ = detect(&bytes);
        check_consistent(&bytes)?;
    }

    /// Random tails after each start, so the version parsers themselves
    /// see the noise rather than `detect` turning it all away.
    #[test]
    fn arbitrary_bodies_never_panic(
        v2_start in any::<bool>(),
        tail in proptest::collection::vec(any::<u8>(), 0..300),
    ) {
        let mut bytes = if v2_start { V2_SIGNATURE.to_vec() } else { b"PROXY ".to_vec() };
        bytes.extend_from_slice(&tail);
        check_consistent(&bytes)?;
    }

    /// Near-misses of a v1 line: its own alphabet shuffled.
    #[test]
    fn v1_lookalikes_never_panic(tail in "[TCP46UNKOW0-9a-f:. \r\n+]{0,120}") {
        let mut bytes = b"PROXY ".to_vec();
        bytes.extend_from_slice(tail.as_bytes());
        check_consistent(&bytes)?;
    }
}

/// Whatever `parse` says must be self-consistent: a header never claims more
/// bytes than it was given, and a complete header's addresses re-encode to
/// a header that parses to the same thing.
fn check_consistent(bytes: &[u8]) -> Result<(), TestCaseError> {
    if let Ok(Parsed::Complete { header, consumed }) = parse(bytes) {
        prop_assert!(consumed <= bytes.len());
        if let Some(a) = header.addresses {
            let again = match header.version {
                1 => encode_v1(a.source, a.destination),
                _ => encode_v2(a.source, a.destination, a.transport),
            };
            prop_assert_eq!(
                parse(&again),
                Ok(Parsed::Complete {
                    header: header.clone(),
                    consumed: again.len()
                })
            );
        }
    }
    Ok(())
}
