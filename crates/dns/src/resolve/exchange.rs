//! One question to the nameservers, over UDP and, when the answer comes
//! truncated, over TCP (RFC 7766). Each nameserver is tried in order with
//! its own timeout; the first that answers (NOERROR or NXDOMAIN) decides.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use hickory_proto::rr::{Name, RecordType};
use ring::rand::{SecureRandom, SystemRandom};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};
use tokio::time::{Instant, timeout, timeout_at};

use super::wire::{self, Reply};

/// Asks `name`/`qtype` of each nameserver in turn. `Ok` holds a
/// [`Reply::Found`] or [`Reply::NoName`]; `Err` says why every nameserver
/// failed.
pub(crate) async fn ask(
    nameservers: &[SocketAddr],
    name: &Name,
    qtype: RecordType,
    limit: Duration,
) -> Result<Reply, String> {
    let mut why = String::from("no nameserver configured");
    for &ns in nameservers {
        match once(ns, name, qtype, limit).await {
            Ok(reply @ (Reply::Found(_) | Reply::NoName { .. })) => return Ok(reply),
            Ok(other) => why = format!("{ns}: {other:?}"),
            Err(e) => why = format!("{ns}: {e}"),
        }
    }
    Err(why)
}

/// An unpredictable query ID, so that an off-path host cannot forge the
/// reply by guessing it (together with the random source port).
fn random_id() -> Result<u16, String> {
    let mut b = [0u8; 2];
    SystemRandom::new()
        .fill(&mut b)
        .map_err(|_| "no randomness for a query ID".to_owned())?;
    Ok(u16::from_be_bytes(b))
}

async fn once(
    ns: SocketAddr,
    name: &Name,
    qtype: RecordType,
    limit: Duration,
) -> Result<Reply, String> {
    let id = random_id()?;
    let query = wire::query(id, name, qtype).ok_or("cannot encode the query")?;
    let local = match ns.ip() {
        IpAddr::V4(_) => SocketAddr::new(Ipv4Addr::UNSPECIFIED.into(), 0),
        IpAddr::V6(_) => SocketAddr::new(Ipv6Addr::UNSPECIFIED.into(), 0),
    };
    let socket = UdpSocket::bind(local).await.map_err(|e| e.to_string())?;
    // Connected: the kernel drops datagrams from any other address.
    socket.connect(ns).await.map_err(|e| e.to_string())?;
    socket.send(&query).await.map_err(|e| e.to_string())?;
    let deadline = Instant::now() + limit;
    let mut buf = vec![0u8; 65_535];
    loop {
        let n = match timeout_at(deadline, socket.recv(&mut buf)).await {
            Err(_) => return Err("timed out".into()),
            Ok(Err(e)) => return Err(e.to_string()),
            Ok(Ok(n)) => n,
        };
        match wire::read(buf.get(..n).unwrap_or_default(), id, name, qtype) {
            Reply::Ignore => continue,
            Reply::Truncated => break,
            reply => return Ok(reply),
        }
    }
    match timeout(limit, over_tcp(ns, &query, id, name, qtype)).await {
        Ok(result) => result,
        Err(_) => Err("timed out over tcp".into()),
    }
}

async fn over_tcp(
    ns: SocketAddr,
    query: &[u8],
    id: u16,
    name: &Name,
    qtype: RecordType,
) -> Result<Reply, String> {
    let mut stream = TcpStream::connect(ns).await.map_err(|e| e.to_string())?;
    let len = u16::try_from(query.len()).map_err(|_| "query too long")?;
    let mut framed = len.to_be_bytes().to_vec();
    framed.extend_from_slice(query);
    stream.write_all(&framed).await.map_err(|e| e.to_string())?;
    let mut len = [0u8; 2];
    stream
        .read_exact(&mut len)
        .await
        .map_err(|e| e.to_string())?;
    let mut reply = vec![0u8; usize::from(u16::from_be_bytes(len))];
    stream
        .read_exact(&mut reply)
        .await
        .map_err(|e| e.to_string())?;
    match wire::read(&reply, id, name, qtype) {
        Reply::Ignore => Err("a tcp reply that does not answer the query".into()),
        Reply::Truncated => Err("a truncated tcp reply".into()),
        reply => Ok(reply),
    }
}
