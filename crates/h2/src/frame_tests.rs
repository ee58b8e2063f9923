#![allow(clippy::unwrap_used)]

use super::*;

fn frame(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> BytesMut {
    let mut out = Vec::new();
    put_header(payload.len(), kind, flags, stream, &mut out);
    out.extend_from_slice(payload);
    BytesMut::from(&out[..])
}

fn one(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Result<Frame, FrameError> {
    let mut buf = frame(kind, flags, stream, payload);
    let f = decode(&mut buf, DEFAULT_MAX_FRAME).map(|f| f.unwrap());
    if f.is_ok() {
        assert!(buf.is_empty(), "a decoded frame is consumed whole");
    }
    f
}

#[test]
fn partial_frames_wait_for_more() {
    let whole = frame(0x0, END_STREAM, 1, b"hello");
    for cut in 0..whole.len() {
        let mut part = BytesMut::from(&whole[..cut]);
        assert_eq!(
            decode(&mut part, DEFAULT_MAX_FRAME),
            Ok(None),
            "cut at {cut}"
        );
        assert_eq!(part.len(), cut, "nothing consumed");
    }
}

#[test]
fn data_with_padding_counts_the_padding_for_flow_control() {
    let f = one(0x0, PADDED | END_STREAM, 3, b"\x02hi\0\0").unwrap();
    assert_eq!(
        f,
        Frame::Data {
            stream: 3,
            data: Bytes::from_static(b"hi"),
            end_stream: true,
            flow_len: 5
        }
    );
    assert_eq!(
        one(0x0, PADDED, 3, b"\x05hi"),
        Err(FrameError::Connection(
            Reason::ProtocolError,
            "padding exceeds the payload"
        ))
    );
}

#[test]
fn headers_skip_priority_and_padding() {
    // Padded (1), priority fields (5), block "abc", padding (2).
    let payload = b"\x02\x00\x00\x00\x01\x10abc\0\0";
    let f = one(0x1, PADDED | PRIORITY | END_HEADERS, 5, payload).unwrap();
    assert_eq!(
        f,
        Frame::Headers {
            stream: 5,
            block: Bytes::from_static(b"abc"),
            end_stream: false,
            end_headers: true
        }
    );
    let self_dep = b"\x00\x00\x00\x05\x10abc";
    assert!(matches!(
        one(0x1, PRIORITY, 5, self_dep),
        Err(FrameError::Stream(5, Reason::ProtocolError, _))
    ));
}

#[test]
fn stream_and_connection_frames_must_be_where_they_belong() {
    for (kind, payload) in [
        (0x0, &b"x"[..]),
        (0x1, b"x"),
        (0x3, b"\0\0\0\0"),
        (0x9, b"x"),
    ] {
        assert!(
            matches!(
                one(kind, 0, 0, payload),
                Err(FrameError::Connection(Reason::ProtocolError, _))
            ),
            "kind {kind} on stream 0"
        );
    }
    assert!(matches!(
        one(0x4, 0, 1, b""),
        Err(FrameError::Connection(Reason::ProtocolError, _))
    ));
    assert!(matches!(
        one(0x6, 0, 1, &[0; 8]),
        Err(FrameError::Connection(Reason::ProtocolError, _))
    ));
}

#[test]
fn sizes_are_checked() {
    assert!(matches!(
        one(0x4, 0, 0, &[0; 5]),
        Err(FrameError::Connection(Reason::FrameSizeError, _))
    ));
    assert!(matches!(
        one(0x4, ACK, 0, &[0; 6]),
        Err(FrameError::Connection(Reason::FrameSizeError, _))
    ));
    assert!(matches!(
        one(0x6, 0, 0, &[0; 7]),
        Err(FrameError::Connection(Reason::FrameSizeError, _))
    ));
    assert!(matches!(
        one(0x2, 0, 1, &[0; 4]),
        Err(FrameError::Stream(1, Reason::FrameSizeError, _))
    ));
    let mut big = frame(0x0, 0, 1, &vec![0; DEFAULT_MAX_FRAME as usize + 1]);
    assert!(matches!(
        decode(&mut big, DEFAULT_MAX_FRAME),
        Err(FrameError::Connection(Reason::FrameSizeError, _))
    ));
}

#[test]
fn window_updates_of_zero_are_errors_of_the_right_scope() {
    assert!(matches!(
        one(0x8, 0, 0, &[0; 4]),
        Err(FrameError::Connection(Reason::ProtocolError, _))
    ));
    assert!(matches!(
        one(0x8, 0, 7, &[0; 4]),
        Err(FrameError::Stream(7, Reason::ProtocolError, _))
    ));
    assert_eq!(
        one(0x8, 0, 7, &[0x80, 0, 1, 0]).unwrap(),
        Frame::WindowUpdate {
            stream: 7,
            increment: 256
        },
        "the reserved bit is ignored"
    );
}

#[test]
fn settings_ping_goaway_and_unknown() {
    let mut params = Vec::new();
    settings(&[(0x3, 100), (0x4, 65_535)], &mut params);
    let mut buf = BytesMut::from(&params[..]);
    assert_eq!(
        decode(&mut buf, DEFAULT_MAX_FRAME).unwrap().unwrap(),
        Frame::Settings {
            ack: false,
            params: vec![(0x3, 100), (0x4, 65_535)]
        }
    );
    assert_eq!(
        one(0x6, 0, 0, b"12345678").unwrap(),
        Frame::Ping {
            ack: false,
            data: *b"12345678"
        }
    );
    assert_eq!(
        one(0x7, 0, 0, b"\0\0\0\x09\0\0\0\x0bdebug").unwrap(),
        Frame::GoAway {
            last_stream: 9,
            code: 0xb
        }
    );
    assert_eq!(one(0xfa, 0xff, 3, b"whatever").unwrap(), Frame::Unknown);
}

#[test]
fn header_blocks_are_split_at_the_peer_frame_size() {
    let block: Vec<u8> = (0..=255).cycle().take(40_000).collect();
    let mut out = Vec::new();
    headers(1, &block, true, DEFAULT_MAX_FRAME, &mut out);
    let mut buf = BytesMut::from(&out[..]);
    let mut joined = Vec::new();
    let mut frames = Vec::new();
    while let Some(f) = decode(&mut buf, DEFAULT_MAX_FRAME).unwrap() {
        frames.push(f);
    }
    assert_eq!(frames.len(), 3);
    for (i, f) in frames.iter().enumerate() {
        match f {
            Frame::Headers {
                block,
                end_stream,
                end_headers,
                ..
            } => {
                assert_eq!(i, 0);
                assert!(*end_stream && !*end_headers);
                joined.extend_from_slice(block);
            }
            Frame::Continuation {
                block, end_headers, ..
            } => {
                assert_eq!(*end_headers, i == 2);
                joined.extend_from_slice(block);
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(joined, block);
}

#[test]
fn control_frames_encode_as_the_rfc_says() {
    let mut out = Vec::new();
    settings_ack(&mut out);
    ping_ack(*b"abcdefgh", &mut out);
    window_update(0, 1 << 20, &mut out);
    rst_stream(3, Reason::Cancel, &mut out);
    goaway(7, Reason::NoError, &mut out);
    data_head(9, 2, true, &mut out);
    let mut buf = BytesMut::from(&out[..]);
    buf.extend_from_slice(b"ok");
    let mut got = Vec::new();
    while let Some(f) = decode(&mut buf, DEFAULT_MAX_FRAME).unwrap() {
        got.push(f);
    }
    assert_eq!(
        got,
        vec![
            Frame::Settings {
                ack: true,
                params: vec![]
            },
            Frame::Ping {
                ack: true,
                data: *b"abcdefgh"
            },
            Frame::WindowUpdate {
                stream: 0,
                increment: 1 << 20
            },
            Frame::RstStream { stream: 3, code: 8 },
            Frame::GoAway {
                last_stream: 7,
                code: 0
            },
            Frame::Data {
                stream: 9,
                data: Bytes::from_static(b"ok"),
                end_stream: true,
                flow_len: 2
            },
        ]
    );
}
