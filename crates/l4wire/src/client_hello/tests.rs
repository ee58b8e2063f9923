//! Unit tests for the ClientHello peek's record layer: real hellos captured
//! from OpenSSL (tests/fixtures, which say how), the same hellos re-split
//! into records, and the record and handshake headers' rules. The hello's
//! own fields are tested in `tests/message.rs`, with the builder below.

use super::*;

pub(super) const SNI_ALPN: &str = include_str!("../../tests/fixtures/client_hello_sni_alpn.hex");
pub(super) const NO_SNI: &str = include_str!("../../tests/fixtures/client_hello_no_sni.hex");
pub(super) const TLS12: &str = include_str!("../../tests/fixtures/client_hello_tls12.hex");

/// Decodes a fixture: hex digits, with '#' comment lines and whitespace
/// ignored.
pub(super) fn fixture(text: &str) -> Vec<u8> {
    let hex: Vec<u8> = text
        .lines()
        .filter(|line| !line.starts_with('#'))
        .flat_map(|line| line.bytes().filter(|b| !b.is_ascii_whitespace()))
        .collect();
    hex.chunks(2)
        .map(|pair| u8::from_str_radix(std::str::from_utf8(pair).unwrap(), 16).unwrap())
        .collect()
}

/// The handshake bytes of a single-record fixture, re-sent as records of
/// `size` bytes each (the last one shorter).
pub(super) fn resplit(single_record: &[u8], size: usize) -> Vec<u8> {
    let handshake = &single_record[5..];
    assert_eq!(
        handshake.len(),
        usize::from(u16::from_be_bytes([single_record[3], single_record[4]]))
    );
    let mut out = Vec::new();
    for chunk in handshake.chunks(size) {
        out.extend_from_slice(&[0x16, 0x03, 0x03]);
        out.extend_from_slice(&u16::try_from(chunk.len()).unwrap().to_be_bytes());
        out.extend_from_slice(chunk);
    }
    out
}

fn hello(buf: &[u8]) -> ClientHello {
    match peek(buf) {
        Ok(Peek::Hello(hello)) => hello,
        other => panic!("expected a hello, got {other:?}"),
    }
}

fn h2_and_http11() -> Vec<Vec<u8>> {
    vec![b"h2".to_vec(), b"http/1.1".to_vec()]
}

/// A hand-built hello; each test changes the one field it is about.
struct Build {
    session_id: Vec<u8>,
    suites: Vec<u8>,
    compression: Vec<u8>,
    /// `None`: the hello ends after compression methods.
    extensions: Option<Vec<u8>>,
}

impl Build {
    fn with(extensions: &[(u16, Vec<u8>)]) -> Self {
        let mut block = Vec::new();
        for (kind, data) in extensions {
            block.extend_from_slice(&kind.to_be_bytes());
            block.extend_from_slice(&u16::try_from(data.len()).unwrap().to_be_bytes());
            block.extend_from_slice(data);
        }
        Self {
            session_id: vec![7; 32],
            suites: vec![0x13, 0x01, 0x13, 0x02],
            compression: vec![0],
            extensions: Some(block),
        }
    }

    /// The handshake message: header and body.
    fn message(&self) -> Vec<u8> {
        let mut body = vec![0x03, 0x03];
        body.extend_from_slice(&[0xaa; 32]);
        body.push(u8::try_from(self.session_id.len()).unwrap());
        body.extend_from_slice(&self.session_id);
        body.extend_from_slice(&u16::try_from(self.suites.len()).unwrap().to_be_bytes());
        body.extend_from_slice(&self.suites);
        body.push(u8::try_from(self.compression.len()).unwrap());
        body.extend_from_slice(&self.compression);
        if let Some(block) = &self.extensions {
            body.extend_from_slice(&u16::try_from(block.len()).unwrap().to_be_bytes());
            body.extend_from_slice(block);
        }
        let len = u32::try_from(body.len()).unwrap().to_be_bytes();
        let mut message = vec![HANDSHAKE_CLIENT_HELLO, len[1], len[2], len[3]];
        message.extend_from_slice(&body);
        message
    }

    /// The message in records of at most 2^14 bytes.
    fn bytes(&self) -> Vec<u8> {
        let message = self.message();
        let mut out = Vec::new();
        for chunk in message.chunks(MAX_RECORD_LEN) {
            out.extend_from_slice(&[0x16, 0x03, 0x01]);
            out.extend_from_slice(&u16::try_from(chunk.len()).unwrap().to_be_bytes());
            out.extend_from_slice(chunk);
        }
        out
    }

    fn peek(&self) -> Result<Peek, Error> {
        peek(&self.bytes())
    }
}

/// A server_name extension's data holding these (type, name) entries.
fn sni_entries(entries: &[(u8, &[u8])]) -> Vec<u8> {
    let mut list = Vec::new();
    for (kind, name) in entries {
        list.push(*kind);
        list.extend_from_slice(&u16::try_from(name.len()).unwrap().to_be_bytes());
        list.extend_from_slice(name);
    }
    let mut data = u16::try_from(list.len()).unwrap().to_be_bytes().to_vec();
    data.extend_from_slice(&list);
    data
}

#[test]
fn real_hellos_give_their_server_name_and_alpn() {
    let h = hello(&fixture(SNI_ALPN));
    assert_eq!(h.server_name.as_deref(), Some("api.example.com"));
    assert_eq!(h.alpn, h2_and_http11());

    let h = hello(&fixture(NO_SNI));
    assert_eq!(h.server_name, None);
    assert_eq!(h.alpn, h2_and_http11());

    let h = hello(&fixture(TLS12));
    assert_eq!(h.server_name.as_deref(), Some("api.example.com"));
    assert_eq!(h.alpn, h2_and_http11());
}

#[test]
fn every_prefix_of_a_real_hello_needs_more() {
    for text in [SNI_ALPN, NO_SNI, TLS12] {
        let whole = fixture(text);
        for cut in 0..whole.len() {
            assert_eq!(peek(&whole[..cut]), Ok(Peek::NeedMore), "cut at {cut}");
        }
    }
}

#[test]
fn bytes_after_the_hello_are_not_looked_at() {
    let mut buf = fixture(SNI_ALPN);
    buf.extend_from_slice(&[0x17, 0x03, 0x03, 0xff, 0xff, 0, 0]);
    assert_eq!(hello(&buf).server_name.as_deref(), Some("api.example.com"));
}

#[test]
fn a_hello_split_over_records_is_joined() {
    let whole = fixture(SNI_ALPN);
    // 1 and 3 split the handshake header itself over records.
    for size in [1, 2, 3, 4, 5, 7, 64, 100, 333] {
        let split = resplit(&whole, size);
        assert_eq!(hello(&split), hello(&whole), "records of {size}");
        for cut in 0..split.len() {
            assert_eq!(
                peek(&split[..cut]),
                Ok(Peek::NeedMore),
                "size {size}, cut {cut}"
            );
        }
    }
}

#[test]
fn other_protocols_are_not_tls_from_the_first_wrong_byte() {
    assert_eq!(peek(b""), Ok(Peek::NeedMore));
    assert_eq!(peek(b"GET / HTTP/1.1\r\n"), Err(Error::NotTls));
    assert_eq!(peek(b"G"), Err(Error::NotTls));
    assert_eq!(peek(b"PRI * HTTP/2.0"), Err(Error::NotTls));
    // An SSLv2-compatible hello starts with the high bit of a length.
    assert_eq!(peek(&[0x80, 0x2e, 0x01, 0x03, 0x01]), Err(Error::NotTls));
    assert_eq!(peek(&[0x16]), Ok(Peek::NeedMore));
    assert_eq!(peek(&[0x16, 0x03]), Ok(Peek::NeedMore));
    assert_eq!(peek(&[0x16, 0x02]), Err(Error::NotTls));
    assert_eq!(peek(&[0x16, 0x03, 0x05]), Err(Error::NotTls));
}

#[test]
fn record_versions_from_ssl3_to_tls13_are_accepted() {
    let whole = fixture(SNI_ALPN);
    for minor in 0..=4 {
        let mut buf = whole.clone();
        buf[2] = minor;
        assert!(matches!(peek(&buf), Ok(Peek::Hello(_))), "0x030{minor}");
    }
}

#[test]
fn later_records_must_be_handshake_records_of_a_tls_version() {
    let split = resplit(&fixture(SNI_ALPN), 100);
    let mut alert = split.clone();
    alert[105] = 0x15;
    assert_eq!(peek(&alert), Err(Error::UnexpectedRecord(0x15)));
    let mut version = split.clone();
    version[106] = 0x02;
    assert!(matches!(peek(&version), Err(Error::Malformed(_))));
}

#[test]
fn record_lengths_are_bounded_and_non_zero() {
    assert_eq!(
        peek(&[0x16, 0x03, 0x01, 0x40, 0x01]),
        Err(Error::RecordOverflow(MAX_RECORD_LEN + 1))
    );
    assert_eq!(
        peek(&[0x16, 0x03, 0x01, 0x00, 0x00]),
        Err(Error::EmptyRecord)
    );
}

#[test]
fn the_message_must_be_a_client_hello() {
    assert_eq!(
        peek(&[0x16, 0x03, 0x03, 0x00, 0x01, 0x02]),
        Err(Error::NotClientHello(2))
    );
}

#[test]
fn an_oversized_hello_is_refused_before_it_arrives() {
    assert_eq!(
        peek(&[0x16, 0x03, 0x01, 0x00, 0x04, 0x01, 0x00, 0x40, 0x01]),
        Err(Error::TooLarge(MAX_HELLO_LEN + 1))
    );
    // Exactly at the cap: a hello padded with an unknown extension.
    let mut build = Build::with(&[(0, sni_entries(&[(0, b"a.example")]))]);
    let overhead = build.message().len() - 4 + 4;
    build = Build::with(&[
        (0, sni_entries(&[(0, b"a.example")])),
        (21, vec![0; MAX_HELLO_LEN - overhead]),
    ]);
    assert_eq!(build.message().len(), 4 + MAX_HELLO_LEN);
    assert!(matches!(build.peek(), Ok(Peek::Hello(_))));
    assert_eq!(
        Error::TooLarge(MAX_HELLO_LEN + 1).to_string(),
        "TLS ClientHello of 16385 bytes is longer than the 16384-byte limit"
    );
}

#[test]
fn max_peek_len_is_enough_for_the_worst_split() {
    let mut build = Build::with(&[(21, Vec::new())]);
    let overhead = build.message().len();
    build = Build::with(&[(21, vec![0; 4 + MAX_HELLO_LEN - overhead])]);
    let message = build.message();
    assert_eq!(message.len(), 4 + MAX_HELLO_LEN);
    // One byte per record, then the last byte in a full-size record.
    let mut buf = Vec::new();
    let (last, most) = message.split_last().unwrap();
    for byte in most {
        buf.extend_from_slice(&[0x16, 0x03, 0x03, 0x00, 0x01, *byte]);
    }
    buf.extend_from_slice(&[0x16, 0x03, 0x03, 0x40, 0x00, *last]);
    buf.resize(buf.len() + MAX_RECORD_LEN - 1, 0);
    assert_eq!(buf.len(), MAX_PEEK_LEN);
    assert!(matches!(peek(&buf), Ok(Peek::Hello(_))));
    assert_eq!(peek(&buf[..MAX_PEEK_LEN - 1]), Ok(Peek::NeedMore));
}

mod message;
