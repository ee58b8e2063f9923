//! One end of an upgrade connection: frames of [`codec`] over a Unix
//! stream socket, with listening sockets passed alongside as `SCM_RIGHTS`.
//!
//! File descriptors are sent with the first `sendmsg` of their frame. On a
//! stream socket the kernel may hand the frame's bytes over in several
//! `recvmsg` calls, so the receiver collects every descriptor that arrives
//! while a frame is being read and returns them with it. Descriptors are
//! received with `MSG_CMSG_CLOEXEC`, so none leaks into a child process, and
//! any that are not claimed are closed when dropped.

use std::io::{self, IoSlice, IoSliceMut};
use std::mem::MaybeUninit;
use std::os::fd::{BorrowedFd, OwnedFd};

use rustix::net::{
    RecvAncillaryBuffer, RecvAncillaryMessage, RecvFlags, ReturnFlags, SendAncillaryBuffer,
    SendAncillaryMessage, SendFlags,
};
use tokio::io::Interest;
use tokio::net::UnixStream;

use super::codec::{self, DecodeError, EncodeError, MAX_LISTENERS, Message};

/// Why a frame could not be sent or received. Any of them ends the
/// exchange: the connection is dropped.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ChannelError {
    /// The socket failed.
    #[error("{0}")]
    Io(#[from] io::Error),
    /// The peer sent bytes that are not a frame.
    #[error(transparent)]
    Decode(#[from] DecodeError),
    /// Our own message could not be encoded.
    #[error(transparent)]
    Encode(#[from] EncodeError),
    /// The peer closed the connection (`partial`: in the middle of a frame).
    #[error("the other process closed the connection{}", if *partial { " in the middle of a message" } else { "" })]
    Closed {
        /// Whether some bytes of a frame had arrived.
        partial: bool,
    },
    /// The peer sent more descriptors than a message may carry.
    #[error("received more than {MAX_LISTENERS} file descriptors")]
    TooManyFds,
    /// Descriptors were lost in transit (`MSG_CTRUNC`).
    #[error("file descriptors were truncated in transit")]
    Truncated,
}

/// A framed, fd-passing connection.
pub(crate) struct Channel {
    stream: UnixStream,
    /// Bytes received and not yet decoded.
    buf: Vec<u8>,
    /// Descriptors received while the frame in `buf` arrived.
    fds: Vec<OwnedFd>,
}

// === impl Channel ===

impl Channel {
    pub(crate) fn new(stream: UnixStream) -> Self {
        Self {
            stream,
            buf: Vec::new(),
            fds: Vec::new(),
        }
    }

    /// The connected process's user id, from the kernel (`SO_PEERCRED`).
    pub(crate) fn peer_uid(&self) -> io::Result<u32> {
        Ok(self.stream.peer_cred()?.uid())
    }

    /// Sends `msg`, with `fds` riding along (at most [`MAX_LISTENERS`]).
    pub(crate) async fn send(
        &self,
        msg: &Message,
        fds: &[BorrowedFd<'_>],
    ) -> Result<(), ChannelError> {
        if fds.len() > MAX_LISTENERS {
            return Err(ChannelError::TooManyFds);
        }
        let frame = codec::encode(msg)?;
        let mut space =
            vec![MaybeUninit::<u8>::uninit(); rustix::cmsg_space!(ScmRights(fds.len()))];
        let mut control = SendAncillaryBuffer::new(&mut space);
        if !fds.is_empty() && !control.push(SendAncillaryMessage::ScmRights(fds)) {
            // Not reached: the buffer was sized for exactly these.
            return Err(ChannelError::Truncated);
        }
        let mut sent = 0;
        while sent < frame.len() {
            let n = self
                .stream
                .async_io(Interest::WRITABLE, || {
                    rustix::net::sendmsg(
                        &self.stream,
                        &[IoSlice::new(&frame[sent..])],
                        &mut control,
                        SendFlags::NOSIGNAL,
                    )
                    .map_err(io::Error::from)
                })
                .await?;
            // The descriptors went with the first bytes; the rest of the
            // frame must not carry them again.
            control.clear();
            sent += n;
        }
        Ok(())
    }

    /// Receives the next frame and the descriptors that came with it.
    pub(crate) async fn recv(&mut self) -> Result<(Message, Vec<OwnedFd>), ChannelError> {
        loop {
            if let Some((msg, used)) = codec::decode(&self.buf)? {
                self.buf.drain(..used);
                return Ok((msg, std::mem::take(&mut self.fds)));
            }
            let mut chunk = [0u8; 4096];
            let mut space =
                [MaybeUninit::<u8>::uninit(); rustix::cmsg_space!(ScmRights(MAX_LISTENERS))];
            let fds = &mut self.fds;
            let (n, truncated) = self
                .stream
                .async_io(Interest::READABLE, || {
                    let mut control = RecvAncillaryBuffer::new(&mut space);
                    let got = rustix::net::recvmsg(
                        &self.stream,
                        &mut [IoSliceMut::new(&mut chunk)],
                        &mut control,
                        RecvFlags::CMSG_CLOEXEC,
                    )
                    .map_err(io::Error::from)?;
                    // Claim the descriptors now: the buffer closes whatever
                    // is left in it when dropped.
                    for msg in control.drain() {
                        if let RecvAncillaryMessage::ScmRights(received) = msg {
                            fds.extend(received);
                        }
                    }
                    Ok((got.bytes, got.flags.contains(ReturnFlags::CTRUNC)))
                })
                .await?;
            if truncated {
                return Err(ChannelError::Truncated);
            }
            if self.fds.len() > MAX_LISTENERS {
                return Err(ChannelError::TooManyFds);
            }
            if n == 0 {
                return Err(ChannelError::Closed {
                    partial: !self.buf.is_empty(),
                });
            }
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::upgrade::codec::{Kind, Offered};
    use std::os::fd::AsFd as _;

    #[tokio::test]
    async fn listening_sockets_cross_with_their_frame() {
        let (a, b) = UnixStream::pair().unwrap();
        let (a, mut b) = (Channel::new(a), Channel::new(b));
        let sockets = [
            std::net::TcpListener::bind("127.0.0.1:0").unwrap(),
            std::net::TcpListener::bind("127.0.0.1:0").unwrap(),
        ];
        let listeners: Vec<Offered> = sockets
            .iter()
            .enumerate()
            .map(|(i, s)| Offered {
                kind: Kind::Http,
                name: format!("l{i}"),
                configured: "127.0.0.1:0".parse().unwrap(),
                bound: s.local_addr().unwrap(),
            })
            .collect();
        let msg = Message::Listeners { pid: 1, listeners };
        let fds: Vec<BorrowedFd<'_>> = sockets.iter().map(|s| s.as_fd()).collect();
        a.send(&msg, &fds).await.unwrap();
        a.send(&Message::Released { pid: 1 }, &[]).await.unwrap();

        let (got, fds) = b.recv().await.unwrap();
        assert_eq!(got, msg);
        assert_eq!(fds.len(), 2);
        for (fd, original) in fds.into_iter().zip(&sockets) {
            let received = std::net::TcpListener::from(fd);
            assert_eq!(
                received.local_addr().unwrap(),
                original.local_addr().unwrap()
            );
        }
        let (next, fds) = b.recv().await.unwrap();
        assert_eq!(next, Message::Released { pid: 1 });
        assert!(fds.is_empty(), "descriptors belong to their own frame only");
        assert_eq!(a.peer_uid().unwrap(), b.peer_uid().unwrap());
    }

    #[tokio::test]
    async fn garbage_and_a_hang_up_are_errors() {
        let (a, b) = UnixStream::pair().unwrap();
        let mut b = Channel::new(b);
        a.try_write(b"MGU\x01\x00\x00").unwrap();
        drop(a);
        assert!(matches!(
            b.recv().await,
            Err(ChannelError::Closed { partial: true })
        ));

        let (a, b) = UnixStream::pair().unwrap();
        let mut b = Channel::new(b);
        a.try_write(b"hello?\n").unwrap();
        assert!(matches!(
            b.recv().await,
            Err(ChannelError::Decode(DecodeError::BadMagic(_)))
        ));
    }
}
