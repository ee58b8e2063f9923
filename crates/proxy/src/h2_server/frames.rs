//! Incoming frames: the connection rules (preface, SETTINGS first,
//! CONTINUATION sequencing, stream ids, flow control) and what each frame
//! does to the streams.

use bytes::{Buf as _, Bytes, BytesMut};
use meshgate_core::ErrorKind;
use meshgate_h2::frame::{self, Frame, MAX_WINDOW, Reason};
use meshgate_h2::hpack;

use super::recv::{H2Body, Shared};
use super::{
    CONN_WINDOW, Conn, Fatal, MAX_STREAMS, RESET_BUDGET, STREAM_WINDOW, Sending, Stream,
    local_error, request, split, stream_future,
};
use crate::body::ClientBody;

impl Conn {
    /// Handles every whole frame buffered; returns whether any was.
    pub(super) fn read_frames(&mut self) -> Result<bool, Fatal> {
        if !self.preface {
            let have = self.rbuf.len().min(frame::PREFACE.len());
            if self.rbuf[..have] != frame::PREFACE[..have] {
                return Err(Fatal(Reason::ProtocolError, "invalid connection preface"));
            }
            if have < frame::PREFACE.len() {
                return Ok(false);
            }
            self.rbuf.advance(frame::PREFACE.len());
            self.preface = true;
        }
        let mut any = false;
        loop {
            let f = match frame::decode(&mut self.rbuf, frame::DEFAULT_MAX_FRAME) {
                Ok(Some(f)) => f,
                Ok(None) => return Ok(any),
                Err(e) => {
                    let (id, reason) = split(e)?;
                    self.reset(id, reason);
                    any = true;
                    continue;
                }
            };
            any = true;
            self.on_frame(f)?;
        }
    }

    fn on_frame(&mut self, f: Frame) -> Result<(), Fatal> {
        if let Some((pending, _, _)) = &self.partial
            && !matches!(&f, Frame::Continuation { stream, .. } if stream == pending)
        {
            return Err(Fatal(Reason::ProtocolError, "expected CONTINUATION"));
        }
        if !self.settings && !matches!(f, Frame::Settings { ack: false, .. }) {
            return Err(Fatal(Reason::ProtocolError, "first frame is not SETTINGS"));
        }
        match f {
            Frame::Settings { ack: true, .. } | Frame::Priority { .. } | Frame::Unknown => {}
            Frame::Settings { ack: false, params } => {
                self.on_settings(&params)?;
                frame::settings_ack(&mut self.wbuf);
                self.settings = true;
            }
            Frame::Ping { ack, data } => {
                if !ack {
                    frame::ping_ack(data, &mut self.wbuf);
                }
            }
            Frame::WindowUpdate {
                stream: 0,
                increment,
            } => {
                self.conn_send += i64::from(increment);
                if self.conn_send > i64::from(MAX_WINDOW) {
                    return Err(Fatal(
                        Reason::FlowControlError,
                        "connection window overflow",
                    ));
                }
            }
            Frame::WindowUpdate { stream, increment } => {
                let over = self.streams.get_mut(&stream).is_some_and(|s| {
                    s.send_window += i64::from(increment);
                    s.send_window > i64::from(MAX_WINDOW)
                });
                if over {
                    self.reset(stream, Reason::FlowControlError);
                }
            }
            Frame::Headers {
                stream,
                block,
                end_stream,
                end_headers,
            } => {
                if end_headers {
                    self.on_headers(stream, &block, end_stream)?;
                } else {
                    self.partial = Some((stream, BytesMut::from(&block[..]), end_stream));
                }
            }
            Frame::Continuation {
                block, end_headers, ..
            } => {
                let Some((id, mut buf, end_stream)) = self.partial.take() else {
                    return Err(Fatal(Reason::ProtocolError, "CONTINUATION without HEADERS"));
                };
                buf.extend_from_slice(&block);
                if buf.len() > 2 * self.max_list.max(16 * 1024) {
                    return Err(Fatal(Reason::EnhanceYourCalm, "header block too large"));
                }
                if end_headers {
                    self.on_headers(id, &buf, end_stream)?;
                } else {
                    self.partial = Some((id, buf, end_stream));
                }
            }
            Frame::Data {
                stream,
                data,
                end_stream,
                flow_len,
            } => self.on_data(stream, data, end_stream, flow_len)?,
            Frame::RstStream { stream, .. } => {
                if stream > self.last_id {
                    return Err(Fatal(Reason::ProtocolError, "RST_STREAM on an idle stream"));
                }
                if let Some(s) = self.streams.remove(&stream) {
                    if let Some(a) = s.abort {
                        a.abort();
                    }
                    if let Some(r) = s.recv {
                        r.finish(Some("client reset the stream"));
                    }
                    self.resets += 1;
                    if self.resets > RESET_BUDGET && self.resets > self.completed / 2 {
                        return Err(Fatal(Reason::EnhanceYourCalm, "too many stream resets"));
                    }
                }
            }
            Frame::GoAway { .. } => self.peer_goaway = true,
            Frame::PushPromise { .. } => {
                return Err(Fatal(Reason::ProtocolError, "PUSH_PROMISE from a client"));
            }
        }
        Ok(())
    }

    fn on_settings(&mut self, params: &[(u16, u32)]) -> Result<(), Fatal> {
        for &(id, value) in params {
            match id {
                0x2 if value > 1 => {
                    return Err(Fatal(Reason::ProtocolError, "invalid ENABLE_PUSH"));
                }
                0x4 => {
                    if value > MAX_WINDOW {
                        return Err(Fatal(Reason::FlowControlError, "initial window too large"));
                    }
                    let delta = i64::from(value) - i64::from(self.peer_window);
                    for s in self.streams.values_mut() {
                        s.send_window += delta;
                        if s.send_window > i64::from(MAX_WINDOW) {
                            return Err(Fatal(Reason::FlowControlError, "stream window overflow"));
                        }
                    }
                    self.peer_window = value;
                }
                0x5 => {
                    if !(frame::DEFAULT_MAX_FRAME..=16_777_215).contains(&value) {
                        return Err(Fatal(Reason::ProtocolError, "invalid MAX_FRAME_SIZE"));
                    }
                    self.peer_max_frame = value;
                }
                _ => {}
            }
        }
        Ok(())
    }

    fn on_headers(&mut self, id: u32, block: &[u8], end_stream: bool) -> Result<(), Fatal> {
        // Always decode: the HPACK table must stay in step with the client's.
        let fields = &mut self.fields;
        fields.clear();
        let too_large = match self
            .decoder
            .decode(block, self.max_list, |n, v| fields.push((n, v)))
        {
            Ok(()) => false,
            Err(hpack::DecodeError::ListTooLarge) => true,
            Err(_) => return Err(Fatal(Reason::CompressionError, "invalid header block")),
        };
        if let Some(s) = self.streams.get_mut(&id) {
            // Trailers: they end the body; their fields are dropped.
            let Some(recv) = s.recv.take() else {
                self.reset(id, Reason::StreamClosed);
                return Ok(());
            };
            if !end_stream || s.expect_len.is_some_and(|n| n != s.received) {
                recv.finish(Some("malformed request trailers"));
                self.reset(id, Reason::ProtocolError);
                return Ok(());
            }
            recv.finish(None);
            self.maybe_close(id);
            return Ok(());
        }
        if id.is_multiple_of(2) || id <= self.last_id {
            return Err(Fatal(Reason::ProtocolError, "invalid stream id"));
        }
        self.last_id = id;
        if self.goaway || self.streams.len() >= MAX_STREAMS {
            frame::rst_stream(id, Reason::RefusedStream, &mut self.wbuf);
            return Ok(());
        }
        let (fut, abort, head, length, body) = if too_large {
            let (fut, abort) = local_error(
                id,
                ErrorKind::RequestHeadersTooLarge,
                "request headers over max_header_bytes",
            );
            (fut, abort, false, None, None)
        } else {
            let head = match request::build(&mut self.fields) {
                Ok(head) => head,
                Err(why) => {
                    tracing::debug!(stream = id, why, "malformed h2 request");
                    frame::rst_stream(id, Reason::ProtocolError, &mut self.wbuf);
                    return Ok(());
                }
            };
            if end_stream && head.content_length.is_some_and(|n| n > 0) {
                frame::rst_stream(id, Reason::ProtocolError, &mut self.wbuf);
                return Ok(());
            }
            let is_head = head.parts.method == http::Method::HEAD;
            let length = head.content_length;
            let (recv, body) = if end_stream {
                (None, ClientBody::Empty)
            } else {
                let shared = Shared::new(id, self.signal.clone());
                (
                    Some(shared.clone()),
                    ClientBody::H2(H2Body::new(shared, length)),
                )
            };
            let (fut, abort) = stream_future(id, self.service.clone(), head.parts, body);
            (fut, abort, is_head, length, recv)
        };
        self.futures.push(fut);
        let recv = if too_large && !end_stream {
            // Its body has no reader: the credit comes straight back.
            let shared = Shared::new(id, self.signal.clone());
            shared.abandon();
            Some(shared)
        } else {
            body
        };
        self.streams.insert(
            id,
            Stream {
                recv,
                recv_window: i64::from(STREAM_WINDOW),
                expect_len: length,
                received: 0,
                send_window: i64::from(self.peer_window),
                send: Sending::Waiting,
                abort: Some(abort),
                head,
            },
        );
        Ok(())
    }

    fn on_data(
        &mut self,
        id: u32,
        data: Bytes,
        end_stream: bool,
        flow_len: u32,
    ) -> Result<(), Fatal> {
        self.conn_recv -= i64::from(flow_len);
        if self.conn_recv < 0 {
            return Err(Fatal(
                Reason::FlowControlError,
                "connection window exceeded",
            ));
        }
        let open = self.streams.get(&id).is_some_and(|s| s.recv.is_some());
        if !open {
            // Closed or unknown: the bytes still count for the connection.
            self.conn_release += flow_len;
            if id > self.last_id {
                return Err(Fatal(Reason::ProtocolError, "DATA on an idle stream"));
            }
            if self.streams.contains_key(&id) {
                self.reset(id, Reason::StreamClosed);
            } else {
                frame::rst_stream(id, Reason::StreamClosed, &mut self.wbuf);
            }
            return Ok(());
        }
        let Some(s) = self.streams.get_mut(&id) else {
            return Ok(());
        };
        s.recv_window -= i64::from(flow_len);
        if s.recv_window < 0 {
            self.reset(id, Reason::FlowControlError);
            return Ok(());
        }
        s.received += data.len() as u64;
        let padding = flow_len.saturating_sub(u32::try_from(data.len()).unwrap_or(u32::MAX));
        let over = s.expect_len.is_some_and(|n| s.received > n)
            || (end_stream && s.expect_len.is_some_and(|n| n != s.received));
        if over {
            if let Some(r) = &s.recv {
                r.finish(Some("body length differs from content-length"));
            }
            self.reset(id, Reason::ProtocolError);
            return Ok(());
        }
        let len = u32::try_from(data.len()).unwrap_or(u32::MAX);
        let taken = match &s.recv {
            Some(r) if !data.is_empty() => r.push(data),
            _ => true,
        };
        // Padding, and data nobody will read, is credit right away.
        let back = padding + if taken { 0 } else { len };
        if back > 0 {
            self.conn_release += back;
            *self.stream_release.entry(id).or_default() += back;
        }
        if end_stream {
            if let Some(r) = s.recv.take() {
                r.finish(None);
            }
            self.maybe_close(id);
        }
        Ok(())
    }

    /// Turns credit released by bodies into WINDOW_UPDATE frames, in
    /// batches of half a window so small reads do not cost a frame each.
    pub(super) fn grant_credit(&mut self) {
        for (id, n) in self.signal.take() {
            self.conn_release += n;
            *self.stream_release.entry(id).or_default() += n;
        }
        let streams = &mut self.streams;
        let wbuf = &mut self.wbuf;
        self.stream_release.retain(|id, n| {
            let Some(s) = streams.get_mut(id) else {
                return false; // gone: nothing to grant
            };
            if s.recv.is_none() {
                return false; // the client sends no more
            }
            if *n < STREAM_WINDOW / 2 {
                return true;
            }
            frame::window_update(*id, *n, wbuf);
            s.recv_window += i64::from(*n);
            false
        });
        if self.conn_release >= CONN_WINDOW / 2 {
            frame::window_update(0, self.conn_release, &mut self.wbuf);
            self.conn_recv += i64::from(self.conn_release);
            self.conn_release = 0;
        }
    }
}
