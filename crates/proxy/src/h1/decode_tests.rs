use super::*;

/// Feeds `wire` to a decoder in pieces split at `cuts`, collecting the body.
fn run(framing: Framing, wire: &[u8], cuts: &[usize]) -> Result<(Vec<u8>, bool), BodyError> {
    let mut d = Decoder::new(framing);
    let mut buf = BytesMut::new();
    let mut out = Vec::new();
    let mut last = 0;
    for &cut in cuts.iter().chain(std::iter::once(&wire.len())) {
        buf.extend_from_slice(&wire[last..cut]);
        last = cut;
        loop {
            match d.decode(&mut buf)? {
                Step::Data(b) => out.extend_from_slice(&b),
                Step::NeedMore => break,
                Step::Done => return Ok((out, true)),
            }
        }
    }
    Ok((out, d.is_done()))
}

const CHUNKED: &[u8] = b"5;name=val\r\nhello\r\n6\r\n world\r\n0\r\nx-trailer: 1\r\n\r\n";

#[test]
fn chunked_with_extensions_and_trailers_decodes_at_every_split() {
    for cut in 0..=CHUNKED.len() {
        let (body, done) = run(Framing::Chunked, CHUNKED, &[cut]).unwrap();
        assert_eq!(body, b"hello world", "split at {cut}");
        assert!(done, "split at {cut}");
    }
}

#[test]
fn chunked_byte_by_byte() {
    let cuts: Vec<usize> = (1..CHUNKED.len()).collect();
    assert_eq!(
        run(Framing::Chunked, CHUNKED, &cuts).unwrap(),
        (b"hello world".to_vec(), true)
    );
}

#[test]
fn bytes_after_the_body_stay_in_the_buffer() {
    let mut d = Decoder::new(Framing::Length(3));
    let mut buf = BytesMut::from(&b"abcHTTP/1.1"[..]);
    assert_eq!(
        d.decode(&mut buf).unwrap(),
        Step::Data(Bytes::from_static(b"abc"))
    );
    assert_eq!(d.decode(&mut buf).unwrap(), Step::Done);
    assert_eq!(&buf[..], b"HTTP/1.1");
}

#[test]
fn strict_chunk_sizes() {
    for bad in [
        &b"+5\r\nhello\r\n0\r\n\r\n"[..],
        b"\r\n",
        b"-1\r\n",
        b"0x5\r\n",
        b"12345678901234567\r\n",
        b"g\r\n",
    ] {
        assert!(
            run(Framing::Chunked, bad, &[]).is_err(),
            "{:?}",
            String::from_utf8_lossy(bad)
        );
    }
    assert!(
        run(Framing::Chunked, b"5\r\nhelloXX", &[]).is_err(),
        "missing CRLF after data"
    );
    let long = [b"5;".as_slice(), &[b'x'; MAX_LINE + 10], b"\r\n"].concat();
    assert!(run(Framing::Chunked, &long, &[]).is_err());
}

#[test]
fn eof_ends_only_close_delimited_bodies() {
    let mut d = Decoder::new(Framing::UntilClose);
    let mut buf = BytesMut::from(&b"all of it"[..]);
    assert_eq!(
        d.decode(&mut buf).unwrap(),
        Step::Data(Bytes::from_static(b"all of it"))
    );
    assert_eq!(d.decode(&mut buf).unwrap(), Step::NeedMore);
    assert!(d.eof().is_ok());
    assert!(d.is_done());
    assert!(Decoder::new(Framing::Length(5)).eof().is_err());
    assert!(Decoder::new(Framing::Chunked).eof().is_err());
}

#[test]
fn empty_and_zero_length_bodies_are_done_at_once() {
    for f in [Framing::Empty, Framing::Length(0)] {
        let mut d = Decoder::new(f);
        assert!(d.is_done());
        assert_eq!(d.decode(&mut BytesMut::new()).unwrap(), Step::Done);
    }
}
