//! Unit tests for the ClientHello body and its extensions (`message.rs`):
//! hand-built hellos that each break one rule of RFC 8446 §4.1.2, RFC 6066
//! §3 or RFC 7301.

use super::super::*;
use super::{Build, h2_and_http11, sni_entries};

fn sni(name: &[u8]) -> Result<Peek, Error> {
    Build::with(&[(0, sni_entries(&[(0, name)]))]).peek()
}

#[test]
fn fixed_fields_are_length_checked() {
    let malformed = |b: Build| matches!(b.peek(), Err(Error::Malformed(_)));
    let base = || Build::with(&[]);
    assert!(malformed(Build {
        session_id: vec![0; 33],
        ..base()
    }));
    assert!(malformed(Build {
        suites: vec![],
        ..base()
    }));
    assert!(malformed(Build {
        suites: vec![0x13, 0x01, 0x13],
        ..base()
    }));
    assert!(malformed(Build {
        compression: vec![],
        ..base()
    }));
    // A legal session id of 0 and the longest legal one.
    assert!(base().peek().is_ok());
    assert!(
        Build {
            session_id: vec![],
            ..base()
        }
        .peek()
        .is_ok()
    );
}

#[test]
fn a_hello_without_extensions_is_fine_before_tls13() {
    let b = Build {
        extensions: None,
        ..Build::with(&[])
    };
    assert_eq!(b.peek(), Ok(Peek::Hello(ClientHello::default())));
}

#[test]
fn the_extensions_block_must_be_exact() {
    let mut message = Build::with(&[(0, sni_entries(&[(0, b"a.example")]))]).message();
    // One byte more in the message than the extensions block declares.
    message.push(0);
    message[3] += 1;
    let mut buf = vec![0x16, 0x03, 0x01];
    buf.extend_from_slice(&u16::try_from(message.len()).unwrap().to_be_bytes());
    buf.extend_from_slice(&message);
    assert_eq!(
        peek(&buf),
        Err(Error::Malformed("bytes after the extensions"))
    );

    // An extension whose length runs past the block.
    let mut b = Build::with(&[]);
    b.extensions = Some(vec![0x00, 0x0a, 0x00, 0x05, 0x00]);
    assert!(matches!(b.peek(), Err(Error::Malformed(_))));
}

#[test]
fn duplicate_extensions_are_refused() {
    let twice = Build::with(&[
        (10, vec![0, 2, 0, 29]),
        (13, vec![]),
        (10, vec![0, 2, 0, 23]),
    ]);
    assert_eq!(twice.peek(), Err(Error::DuplicateExtension(10)));
    let name = sni_entries(&[(0, b"a.example")]);
    let two_names = Build::with(&[(0, name.clone()), (0, name)]);
    assert_eq!(two_names.peek(), Err(Error::DuplicateExtension(0)));
}

#[test]
fn server_names_are_lower_cased() {
    let Ok(Peek::Hello(h)) = sni(b"API.Example.COM") else {
        panic!()
    };
    assert_eq!(h.server_name.as_deref(), Some("api.example.com"));
    let Ok(Peek::Hello(h)) = sni(b"_grpc-lb._tcp.svc-1.example") else {
        panic!()
    };
    assert_eq!(
        h.server_name.as_deref(),
        Some("_grpc-lb._tcp.svc-1.example")
    );
}

#[test]
fn ip_literals_mean_no_server_name() {
    for ip in [
        &b"192.0.2.1"[..],
        b"::1",
        b"2001:db8::1",
        b"::ffff:10.0.0.1",
        b"2130706433",
        b"10.0.0.01",
    ] {
        assert_eq!(sni(ip), Ok(Peek::Hello(ClientHello::default())), "{ip:?}");
    }
    // Digits elsewhere are fine.
    assert!(matches!(
        sni(b"1.2.3.4a"),
        Ok(Peek::Hello(ClientHello {
            server_name: Some(_),
            ..
        }))
    ));
}

#[test]
fn server_names_outside_the_dns_shape_are_refused() {
    let long_label = [b'a'; 64];
    let long_name = [b"a.".repeat(126), b"ab".to_vec()].concat(); // 254 bytes
    assert_eq!(long_name.len(), 254);
    for name in [
        &b""[..],
        b"example.com.",
        b".example.com",
        b"a..example",
        &long_label,
        &long_name,
        b"exa mple.com",
        b"example.com\0.evil",
        b"ex%41mple.com",
        b"b\xc3\xbccher.example",
        b"[::1]",
        b"host:443",
    ] {
        assert!(
            matches!(sni(name), Err(Error::BadServerName(_))),
            "{name:?}: {:?}",
            sni(name)
        );
    }
    assert!(sni(&[b'a'; 63]).is_ok());
    assert!(
        sni(&[b"a.".repeat(126), b"a".to_vec()].concat()).is_ok(),
        "253 bytes"
    );
}

#[test]
fn server_name_list_shape_is_checked() {
    let ext = |data: Vec<u8>| Build::with(&[(0, data)]).peek();
    let bad = |r: Result<Peek, Error>| matches!(r, Err(Error::BadServerName(_)));
    assert!(bad(ext(vec![])), "no list at all");
    assert!(bad(ext(vec![0, 0])), "empty list");
    assert!(
        bad(ext([sni_entries(&[(0, b"a.example")]), vec![0]].concat())),
        "trailing byte"
    );
    assert!(
        bad(ext(vec![0, 4, 0, 0, 9, b'a'])),
        "entry runs past the list"
    );
    assert!(
        bad(ext(sni_entries(&[(0, b"a.example"), (0, b"b.example")]))),
        "two host_names"
    );
    // Unknown name types are skipped.
    let Ok(Peek::Hello(h)) = ext(sni_entries(&[(7, b"\xff\x00"), (0, b"a.example")])) else {
        panic!()
    };
    assert_eq!(h.server_name.as_deref(), Some("a.example"));
    assert_eq!(
        ext(sni_entries(&[(7, b"x")])),
        Ok(Peek::Hello(ClientHello::default()))
    );
}

#[test]
fn alpn_list_shape_is_checked() {
    let ext = |data: &[u8]| Build::with(&[(16, data.to_vec())]).peek();
    let Ok(Peek::Hello(h)) = ext(b"\x00\x0c\x02h2\x08http/1.1") else {
        panic!()
    };
    assert_eq!(h.alpn, h2_and_http11());
    for (data, why) in [
        (&b""[..], "no list"),
        (b"\x00\x00", "empty list"),
        (b"\x00\x01\x00", "empty name"),
        (b"\x00\x03\x05h2", "name runs past the list"),
        (b"\x00\x03\x02h2x", "trailing byte"),
    ] {
        assert!(matches!(ext(data), Err(Error::BadAlpn(_))), "{why}");
    }
}
