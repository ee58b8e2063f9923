//! Vectors come from Python's `hpack` 4.2 encoder (the first block is RFC
//! 7541 C.4.1 byte for byte); our encoder's output is checked by decoding
//! it here and was checked once against Python's decoder.
#![allow(clippy::unwrap_used)]

use super::*;

fn hex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

fn decode(d: &mut Decoder, block: &[u8]) -> Result<Vec<(String, String)>, DecodeError> {
    let mut out = Vec::new();
    d.decode(block, 1 << 20, |n, v| {
        out.push((
            String::from_utf8(n.to_vec()).unwrap(),
            String::from_utf8(v.to_vec()).unwrap(),
        ));
    })?;
    Ok(out)
}

fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
    list.iter()
        .map(|(n, v)| ((*n).to_owned(), (*v).to_owned()))
        .collect()
}

#[test]
fn decodes_a_sequence_sharing_the_dynamic_table() {
    let mut d = Decoder::new(4096);
    let first = decode(&mut d, &hex("828684418cf1e3c2e5f23a6ba0ab90f4ff")).unwrap();
    assert_eq!(
        first,
        pairs(&[
            (":method", "GET"),
            (":scheme", "http"),
            (":path", "/"),
            (":authority", "www.example.com"),
        ])
    );
    // 0xbe is dynamic index 62: the authority inserted by the first block.
    let second = decode(&mut d, &hex("828684be5886a8eb10649cbf")).unwrap();
    assert_eq!(second.len(), 5);
    assert_eq!(second[3], pairs(&[(":authority", "www.example.com")])[0]);
    assert_eq!(second[4], pairs(&[("cache-control", "no-cache")])[0]);
    let third = decode(
        &mut d,
        &hex("828785bf408825a849e95ba97d7f8925a849e95bb8e8b4bf"),
    )
    .unwrap();
    assert_eq!(
        third,
        pairs(&[
            (":method", "GET"),
            (":scheme", "https"),
            (":path", "/index.html"),
            (":authority", "www.example.com"),
            ("custom-key", "custom-value"),
        ])
    );
}

#[test]
fn a_table_size_update_evicts_and_is_bounded_by_our_limit() {
    let mut d = Decoder::new(4096);
    // 0x3fe101: size update to 256, then POST and a 100-byte literal that
    // is indexed (138 bytes of table).
    let block = hex(&format!("3fe101834006782d6c6f6e6764{}", "76".repeat(100)));
    let got = decode(&mut d, &block).unwrap();
    assert_eq!(got[0], pairs(&[(":method", "POST")])[0]);
    assert_eq!(got[1].1.len(), 100);
    assert_eq!(d.max, 256);
    assert_eq!(d.size, 6 + 100 + 32);
    // Above what we advertised: refused.
    let mut small = Decoder::new(128);
    assert_eq!(
        decode(&mut small, &hex("3fe101")),
        Err(DecodeError::BadTableSize)
    );
    // After a field: refused.
    assert_eq!(
        decode(&mut Decoder::new(4096), &hex("8220")),
        Err(DecodeError::BadTableSize)
    );
}

#[test]
fn malformed_blocks_are_errors_not_panics() {
    for (block, want) in [
        ("80", DecodeError::BadIndex),  // index 0
        ("bf", DecodeError::BadIndex),  // 63: past an empty dynamic table
        ("ff", DecodeError::Truncated), // integer continues past the end
        ("ffffffffffffff01", DecodeError::Overflow),
        ("4003", DecodeError::Truncated), // name literal shorter than said
        ("0081ff", DecodeError::Huffman), // 8 bits of padding (EOS prefix)
        ("008100", DecodeError::Huffman), // padding not all ones
        ("0084ffffffff", DecodeError::Huffman), // EOS inside the string
    ] {
        assert_eq!(
            decode(&mut Decoder::new(4096), &hex(block)),
            Err(want),
            "{block}"
        );
    }
}

#[test]
fn an_oversized_list_fails_but_keeps_the_table_in_step() {
    let mut d = Decoder::new(4096);
    let mut emitted = 0;
    // Two indexed literals of ~40 bytes each against a 50-byte cap.
    let mut block = Vec::new();
    for name in ["x-a", "x-b"] {
        block.push(0x40);
        put_string(name.as_bytes(), &mut block);
        put_string(b"12345", &mut block);
    }
    let r = d.decode(&block, 50, |_, _| emitted += 1);
    assert_eq!(r, Err(DecodeError::ListTooLarge));
    assert_eq!(emitted, 1, "fields past the cap are not emitted");
    assert_eq!(d.table.len(), 2, "but both were indexed, as the peer did");
}

#[test]
fn encoder_output_decodes_to_the_same_fields() {
    let fields: &[(&[u8], &[u8])] = &[
        (b":status", b"200"),
        (b"content-type", b"text/plain"),
        (b"content-length", b"2"),
        (b"set-cookie", b"a=b"),
        (b"x-request-id", b"5a5e0d2a-f540-443d-a8b6-87883c4c0c8e"),
        (b"x-long", &[b'v'; 300]),
    ];
    let mut out = Vec::new();
    Encoder::status(200, &mut out);
    for (n, v) in &fields[1..] {
        Encoder::field(n, v, &mut out);
    }
    assert_eq!(out[0], 0x88, ":status 200 is static index 8");
    let mut d = Decoder::new(4096);
    let mut got = Vec::new();
    d.decode(&out, 1 << 20, |n, v| got.push((n, v))).unwrap();
    assert_eq!(got.len(), fields.len());
    for ((n, v), (wn, wv)) in got.iter().zip(fields) {
        assert_eq!((&n[..], &v[..]), (*wn, *wv));
    }
    assert!(d.table.is_empty(), "the encoder never indexes");
    let mut other = Vec::new();
    Encoder::status(503, &mut other);
    assert_eq!(
        other,
        hex("0803353033"),
        "literal, name index 8, not indexed"
    );
}

#[test]
fn huffman_round_trips_every_octet() {
    let all: Vec<u8> = (0..=255).collect();
    let mut enc = Vec::new();
    huffman::encode(&all, &mut enc);
    let mut dec = Vec::new();
    huffman::decode(&enc, &mut dec).unwrap();
    assert_eq!(dec, all);
    let mut enc = Vec::new();
    huffman::encode(b"www.example.com", &mut enc);
    assert_eq!(enc, hex("f1e3c2e5f23a6ba0ab90f4ff"), "RFC 7541 C.4.1");
}

#[test]
fn the_name_lookup_agrees_with_the_static_table() {
    for (i, (name, _)) in STATIC.iter().enumerate() {
        let first = STATIC.iter().position(|(n, _)| n == name).unwrap() + 1;
        assert_eq!(
            static_name(name.as_bytes()),
            Some(first),
            "{name} (index {})",
            i + 1
        );
    }
    assert_eq!(static_name(b"x-unknown"), None);
    // Exact pairs past the first entry of a name are found too.
    for (code, index) in [(200u16, 0x88u8), (304, 0x8b), (500, 0x8e)] {
        let mut out = Vec::new();
        Encoder::status(code, &mut out);
        assert_eq!(out, [index], "{code}");
    }
    let mut out = Vec::new();
    Encoder::field(b":path", b"/index.html", &mut out);
    assert_eq!(out, [0x85]);
}
