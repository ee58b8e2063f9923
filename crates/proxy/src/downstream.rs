//! A client connection as the HTTP servers and the tunnel see it: plain
//! TCP, or TLS terminated here ([`crate::stream`] has the mechanics, and
//! why it is an enum).

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

/// A TLS connection terminated here. The socket is wrapped in [`Rewind`]
/// for the bytes read before the handshake (after a PROXY header).
pub(crate) type TlsConn = tokio_rustls::server::TlsStream<Rewind>;

/// A client connection.
pub(crate) type Stream = crate::stream::Stream<TlsConn>;

/// The read side of a [`Stream`].
pub(crate) type ReadHalf = crate::stream::ReadHalf<TlsConn>;

/// The write side of a [`Stream`].
pub(crate) type WriteHalf = crate::stream::WriteHalf<TlsConn>;

/// A socket that first yields bytes already read from it: the start of a
/// ClientHello that arrived with a PROXY header.
pub(crate) struct Rewind {
    prefix: Vec<u8>,
    at: usize,
    io: TcpStream,
}

impl Rewind {
    pub(crate) fn new(prefix: Vec<u8>, io: TcpStream) -> Self {
        Self { prefix, at: 0, io }
    }
}

impl AsyncRead for Rewind {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if let Some(left) = this.prefix.get(this.at..).filter(|l| !l.is_empty()) {
            let n = left.len().min(buf.remaining());
            buf.put_slice(left.get(..n).unwrap_or_default());
            this.at += n;
            if this.at == this.prefix.len() {
                this.prefix = Vec::new(); // let it go
                this.at = 0;
            }
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut this.io).poll_read(cx, buf)
    }
}

impl AsyncWrite for Rewind {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().io).poll_write(cx, data)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        true
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_shutdown(cx)
    }
}
