//! Zero-copy byte moving on Linux: socket → pipe → socket with `splice(2)`,
//! so a TCP proxy's payload never enters user space (HAProxy's
//! `option splice-auto`, nginx has no equivalent).
//!
//! rustix wraps `pipe2` and `splice` behind safe signatures (owned and
//! borrowed file descriptors), so this module needs no `unsafe`. Readiness
//! comes from tokio: each syscall runs inside [`TcpStream::try_io`], which
//! clears the socket's readiness when the kernel says `EAGAIN`.

use std::io;
use std::os::fd::OwnedFd;

use rustix::pipe::{PipeFlags, SpliceFlags, fcntl_setpipe_size, pipe_with, splice};
use tokio::io::Interest;
use tokio::net::TcpStream;

/// How much one pipe holds. Bigger than the 64 KiB default so a fast
/// sender fills fewer, larger batches; the kernel only pins pages while
/// bytes are in flight, so an idle pipe costs no payload memory.
const PIPE_SIZE: usize = 256 * 1024;

/// A kernel pipe that carries one direction's bytes between two sockets.
pub(crate) struct Pipe {
    read: OwnedFd,
    write: OwnedFd,
    /// Bytes in the pipe not yet moved to the destination.
    held: usize,
    /// What the kernel granted (the default where resizing was refused).
    capacity: usize,
}

impl Pipe {
    /// A non-blocking pipe; fails when the process is out of descriptors,
    /// and the caller copies through user space instead.
    pub(crate) fn new() -> io::Result<Self> {
        let (read, write) = pipe_with(PipeFlags::NONBLOCK | PipeFlags::CLOEXEC)?;
        // An unprivileged process may be refused a bigger pipe
        // (`pipe-user-pages-soft`); the default 64 KiB still works.
        let capacity = fcntl_setpipe_size(&write, PIPE_SIZE).unwrap_or(64 * 1024);
        Ok(Self {
            read,
            write,
            held: 0,
            capacity,
        })
    }

    /// Moves bytes from `from` to `to` until `from` reports end of stream;
    /// calls `moved` with every batch that entered the pipe. Returns the
    /// total moved. An error on either socket ends it.
    pub(crate) async fn pump(
        &mut self,
        from: &TcpStream,
        to: &TcpStream,
        mut moved: impl FnMut(usize),
    ) -> io::Result<u64> {
        let mut total = 0u64;
        loop {
            // The pipe is empty here, so EAGAIN below always means the
            // socket has nothing to read, never that the pipe is full.
            let n = loop {
                from.readable().await?;
                let spliced = from.try_io(Interest::READABLE, || {
                    splice(
                        from,
                        None,
                        &self.write,
                        None,
                        self.capacity,
                        SpliceFlags::MOVE | SpliceFlags::NONBLOCK,
                    )
                    .map_err(io::Error::from)
                });
                match spliced {
                    Ok(n) => break n,
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                    Err(e) => return Err(e),
                }
            };
            if n == 0 {
                return Ok(total);
            }
            self.held = n;
            moved(n);
            total += n as u64;
            self.drain(to).await?;
        }
    }

    /// Moves everything held in the pipe into `to`.
    async fn drain(&mut self, to: &TcpStream) -> io::Result<()> {
        while self.held > 0 {
            to.writable().await?;
            let spliced = to.try_io(Interest::WRITABLE, || {
                splice(
                    &self.read,
                    None,
                    to,
                    None,
                    self.held,
                    SpliceFlags::MOVE | SpliceFlags::NONBLOCK,
                )
                .map_err(io::Error::from)
            });
            match spliced {
                // The pipe held bytes, so 0 would mean the socket took
                // none without saying why: treat it as a broken peer.
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(m) => self.held = self.held.saturating_sub(m),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }
}
