//! A listener's socket: a TCP listening socket for `http` and `tcp`
//! listeners, a UDP socket for `udp` ones.

use std::net::SocketAddr;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use meshgate_config::ListenerProtocol;
use tokio::net::{TcpListener, UdpSocket};

/// A bound listener socket, of the transport its protocol needs.
#[derive(Debug)]
pub enum Socket {
    /// Accepts connections (`http` and `tcp` listeners).
    Tcp(TcpListener),
    /// Receives datagrams (`udp` listeners).
    Udp(UdpSocket),
}

// === impl Socket ===

impl Socket {
    /// Binds `addr` for a `protocol` listener.
    pub fn bind(addr: SocketAddr, protocol: ListenerProtocol) -> std::io::Result<Self> {
        if protocol.is_datagram() {
            crate::l4::udp::bind_udp(addr).map(Self::Udp)
        } else {
            crate::server::bind_tcp(addr).map(Self::Tcp)
        }
    }

    /// A socket of the transport `protocol` needs on `fd`, a descriptor of
    /// an already bound socket (a copy of a running listener's, or one
    /// received in a binary upgrade). The caller vouches for its type.
    pub fn from_fd(fd: OwnedFd, protocol: ListenerProtocol) -> std::io::Result<Self> {
        if protocol.is_datagram() {
            let socket = std::net::UdpSocket::from(fd);
            socket.set_nonblocking(true)?;
            UdpSocket::from_std(socket).map(Self::Udp)
        } else {
            let listener = std::net::TcpListener::from(fd);
            listener.set_nonblocking(true)?;
            TcpListener::from_std(listener).map(Self::Tcp)
        }
    }

    /// The address it is bound to (differs from the configured one for
    /// port 0).
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        match self {
            Self::Tcp(l) => l.local_addr(),
            Self::Udp(s) => s.local_addr(),
        }
    }

    /// Whether it is a UDP socket.
    pub fn is_datagram(&self) -> bool {
        matches!(self, Self::Udp(_))
    }
}

impl AsFd for Socket {
    fn as_fd(&self) -> BorrowedFd<'_> {
        match self {
            Self::Tcp(l) => l.as_fd(),
            Self::Udp(s) => s.as_fd(),
        }
    }
}
