//! A connection as plain TCP or TLS, on either side: a client connection
//! (TLS terminated here, [`crate::downstream`]) or an upstream one (TLS
//! originated here, [`crate::upstream_tls`]). An enum rather than a type
//! parameter of everything that carries a connection, so the pipeline's
//! types (request bodies hold the read half) stay concrete; the plaintext
//! path pays one branch per read or write.
//!
//! Plain TCP keeps its fast path (readiness straight from the socket's
//! reader waker). TLS reads through rustls, and its writes must be
//! flushed: rustls may keep encrypted bytes when the socket is full, so
//! every place that stops writing calls `flush`.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::BytesMut;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};

/// A connection; `T` is the TLS stream type of its side.
pub(crate) enum Stream<T> {
    Tcp(TcpStream),
    Tls(Box<T>),
}

/// The read side of a [`Stream`].
pub(crate) enum ReadHalf<T> {
    Tcp(OwnedReadHalf),
    Tls(tokio::io::ReadHalf<T>),
}

/// The write side of a [`Stream`].
pub(crate) enum WriteHalf<T> {
    Tcp(OwnedWriteHalf),
    Tls(tokio::io::WriteHalf<T>),
}

impl<T: AsyncRead + AsyncWrite + Unpin> Stream<T> {
    /// Whether this is TLS (its writes need a flush to leave rustls).
    pub(crate) fn is_tls(&self) -> bool {
        matches!(self, Self::Tls(_))
    }

    pub(crate) fn into_split(self) -> (ReadHalf<T>, WriteHalf<T>) {
        match self {
            Self::Tcp(s) => {
                let (r, w) = s.into_split();
                (ReadHalf::Tcp(r), WriteHalf::Tcp(w))
            }
            Self::Tls(s) => {
                let (r, w) = tokio::io::split(*s);
                (ReadHalf::Tls(r), WriteHalf::Tls(w))
            }
        }
    }

    /// Reads what is there into `buf` (reserving room first), waiting if
    /// nothing is.
    pub(crate) fn poll_read_buf(
        &mut self,
        cx: &mut Context<'_>,
        buf: &mut BytesMut,
        chunk: usize,
    ) -> Poll<io::Result<usize>> {
        buf.reserve(chunk);
        // tokio's `poll_read` (not `try_read_buf`): a read that leaves room
        // in the buffer drained the socket, so it clears the readiness and
        // the next call waits instead of trying a `recvfrom` that would
        // answer `EAGAIN` (one in ten h2c requests paid one, strace).
        tokio_util::io::poll_read_buf(Pin::new(self), cx, buf)
    }

    /// Writes some of `data`; `Ready(Ok(0))` means the peer is gone.
    pub(crate) fn poll_write_some(
        &mut self,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self {
            Self::Tcp(s) => loop {
                std::task::ready!(s.poll_write_ready(cx))?;
                match s.try_write(data) {
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                    written => return Poll::Ready(written),
                }
            },
            Self::Tls(s) => Pin::new(s).poll_write(cx, data),
        }
    }
}

impl<T: AsyncRead + AsyncWrite + Unpin> ReadHalf<T> {
    /// The two halves as one stream again (a protocol upgrade, a pooled
    /// connection going back); `None` if they are not halves of one
    /// connection.
    pub(crate) fn reunite(self, w: WriteHalf<T>) -> Option<Stream<T>> {
        match (self, w) {
            (Self::Tcp(r), WriteHalf::Tcp(w)) => r.reunite(w).ok().map(Stream::Tcp),
            (Self::Tls(r), WriteHalf::Tls(w)) if r.is_pair_of(&w) => {
                Some(Stream::Tls(Box::new(r.unsplit(w))))
            }
            _ => None,
        }
    }
}

macro_rules! delegate_read {
    ($ty:ident) => {
        impl<T: AsyncRead + AsyncWrite + Unpin> AsyncRead for $ty<T> {
            fn poll_read(
                self: Pin<&mut Self>,
                cx: &mut Context<'_>,
                buf: &mut ReadBuf<'_>,
            ) -> Poll<io::Result<()>> {
                match self.get_mut() {
                    $ty::Tcp(s) => Pin::new(s).poll_read(cx, buf),
                    $ty::Tls(s) => Pin::new(s).poll_read(cx, buf),
                }
            }
        }
    };
}

macro_rules! delegate_write {
    ($ty:ident) => {
        impl<T: AsyncRead + AsyncWrite + Unpin> AsyncWrite for $ty<T> {
            fn poll_write(
                self: Pin<&mut Self>,
                cx: &mut Context<'_>,
                data: &[u8],
            ) -> Poll<io::Result<usize>> {
                match self.get_mut() {
                    $ty::Tcp(s) => Pin::new(s).poll_write(cx, data),
                    $ty::Tls(s) => Pin::new(s).poll_write(cx, data),
                }
            }

            fn poll_write_vectored(
                self: Pin<&mut Self>,
                cx: &mut Context<'_>,
                bufs: &[io::IoSlice<'_>],
            ) -> Poll<io::Result<usize>> {
                match self.get_mut() {
                    $ty::Tcp(s) => Pin::new(s).poll_write_vectored(cx, bufs),
                    $ty::Tls(s) => Pin::new(s).poll_write_vectored(cx, bufs),
                }
            }

            fn is_write_vectored(&self) -> bool {
                match self {
                    $ty::Tcp(s) => s.is_write_vectored(),
                    $ty::Tls(s) => s.is_write_vectored(),
                }
            }

            fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
                match self.get_mut() {
                    $ty::Tcp(s) => Pin::new(s).poll_flush(cx),
                    $ty::Tls(s) => Pin::new(s).poll_flush(cx),
                }
            }

            fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
                match self.get_mut() {
                    $ty::Tcp(s) => Pin::new(s).poll_shutdown(cx),
                    $ty::Tls(s) => Pin::new(s).poll_shutdown(cx),
                }
            }
        }
    };
}

delegate_read!(Stream);
delegate_write!(Stream);
delegate_read!(ReadHalf);
delegate_write!(WriteHalf);
