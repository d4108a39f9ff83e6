//! Accepting TCP connections on the listeners the gateway runs itself (the gRPC
//! listener, the Prometheus /metrics listener). Owns one rule for both: an accept error
//! (out of file descriptors and the like) is logged and retried after a pause, never
//! spun on and never the end of the listener.
//!
//! For the gRPC listener ([`incoming`]) it also owns the connection limits: at most
//! `max_connections` open (past it a new connection is closed at once and counted in
//! `atlas_gateway_connections_refused_total`), TCP keepalive and no-delay on every
//! accepted socket, and one deadline for the handshake (TLS, in `crate::tls`) and the
//! HTTP/2 preface. It reads nothing but the 24-byte preface, which it hands on
//! unchanged, and never writes.
use std::{
    convert::Infallible,
    future::Future,
    io,
    net::SocketAddr,
    pin::Pin,
    sync::Arc,
    task::{Context, Poll},
    time::Duration,
};

use tokio::{
    io::{AsyncRead, AsyncReadExt, AsyncWrite, ReadBuf},
    net::{TcpListener, TcpStream},
    sync::{mpsc, OwnedSemaphorePermit, Semaphore},
    time::Instant,
};
use tokio_stream::wrappers::ReceiverStream;
use tonic::transport::server::Connected;

use crate::{config::TransportLimits, telemetry};

/// How long a listener waits after a failed accept before trying again.
const ACCEPT_RETRY: Duration = Duration::from_millis(100);

/// What every HTTP/2 client sends first (RFC 9113 §3.4).
const PREFACE: &[u8; 24] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// The next connection on `listener`; failed accepts are logged (naming `listener_name`)
/// and retried after `ACCEPT_RETRY`.
pub async fn accept(listener: &TcpListener, listener_name: &str) -> (TcpStream, SocketAddr) {
    loop {
        match listener.accept().await {
            Ok(accepted) => return accepted,
            Err(e) => {
                tracing::warn!(error = %e, listener = listener_name, "cannot accept a connection");
                tokio::time::sleep(ACCEPT_RETRY).await;
            }
        }
    }
}

/// The gRPC connections accepted on `listener`, for tonic's `serve_with_incoming`:
/// each one within `limits`, through `handshake` (which gets the deadline its peer must
/// also send the HTTP/2 preface by, and answers `None` for a refused peer). Dropping the
/// stream stops accepting and closes the listener.
pub fn incoming<IO, H, F>(
    listener: TcpListener,
    limits: &TransportLimits,
    handshake: H,
) -> ReceiverStream<Result<Connection<IO>, Infallible>>
where
    H: Fn(TcpStream, SocketAddr, Instant) -> F + Send + 'static,
    F: Future<Output = Option<IO>> + Send + 'static,
    IO: AsyncRead + Unpin + Send + 'static,
{
    let (tx, rx) = mpsc::channel(64);
    let open = Arc::new(Semaphore::new(limits.max_connections));
    let (keepalive, preface_timeout) = (limits.tcp_keepalive, limits.preface_timeout);
    tokio::spawn(async move {
        loop {
            let (tcp, peer) = tokio::select! {
                () = tx.closed() => return,
                accepted = accept(&listener, "grpc") => accepted,
            };
            let Ok(place) = Arc::clone(&open).try_acquire_owned() else {
                telemetry::metrics::connection_refused();
                tracing::debug!(peer = %peer, "max_connections are open: closed a new connection");
                continue;
            };
            tune(&tcp, keepalive);
            let deadline = Instant::now() + preface_timeout;
            let handshake = handshake(tcp, peer, deadline);
            let tx = tx.clone();
            tokio::spawn(async move {
                let Some(io) = handshake.await else { return };
                match tokio::time::timeout_at(deadline, preface(io)).await {
                    Ok(Some(io)) => {
                        let connection = Connection {
                            io,
                            replayed: 0,
                            _place: place,
                        };
                        let _ = tx.send(Ok(connection)).await;
                    }
                    _ => {
                        tracing::debug!(peer = %peer, "closed a connection that sent no HTTP/2 preface in time")
                    }
                }
            });
        }
    });
    ReceiverStream::new(rx)
}

/// Small gRPC answers must not wait for a delayed ACK; a peer that vanished without a
/// FIN is found by keepalive probes.
fn tune(tcp: &TcpStream, keepalive: Duration) {
    let _ = tcp.set_nodelay(true);
    let keepalive = socket2::TcpKeepalive::new().with_time(keepalive);
    let _ = socket2::SockRef::from(tcp).set_tcp_keepalive(&keepalive);
}

/// `io` once its first 24 bytes are the HTTP/2 preface; `None` for anything else.
async fn preface<IO: AsyncRead + Unpin>(mut io: IO) -> Option<IO> {
    let mut first = [0u8; 24];
    io.read_exact(&mut first).await.ok()?;
    (&first == PREFACE).then_some(io)
}

/// An accepted connection past its preface: reads the preface again first (hyper
/// expects it), and holds its place under `max_connections` until dropped.
pub struct Connection<IO> {
    io: IO,
    /// How much of [`PREFACE`] has been read again.
    replayed: usize,
    _place: OwnedSemaphorePermit,
}

impl<IO: AsyncRead + Unpin> AsyncRead for Connection<IO> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = &mut *self;
        if this.replayed < PREFACE.len() {
            let rest = &PREFACE[this.replayed..];
            let n = rest.len().min(buf.remaining());
            buf.put_slice(&rest[..n]);
            this.replayed += n;
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut this.io).poll_read(cx, buf)
    }
}

impl<IO: AsyncWrite + Unpin> AsyncWrite for Connection<IO> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}

/// The peer's address (and, over TLS, its certificates), as tonic hands them to calls.
impl<IO: Connected> Connected for Connection<IO> {
    type ConnectInfo = IO::ConnectInfo;

    fn connect_info(&self) -> Self::ConnectInfo {
        self.io.connect_info()
    }
}

#[cfg(test)]
mod tests {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::*;

    #[tokio::test]
    async fn the_preface_is_read_again_then_the_rest_of_the_stream() {
        let (mut client, server) = tokio::io::duplex(64);
        client.write_all(PREFACE).await.unwrap();
        client.write_all(b"frames").await.unwrap();
        drop(client);
        let io = preface(server).await.expect("a preface");
        let place = Arc::new(Semaphore::new(1)).try_acquire_owned().unwrap();
        let mut connection = Connection {
            io,
            replayed: 0,
            _place: place,
        };
        let mut all = Vec::new();
        connection.read_to_end(&mut all).await.unwrap();
        assert_eq!(&all[..24], PREFACE);
        assert_eq!(&all[24..], b"frames");
    }

    #[tokio::test]
    async fn anything_but_the_preface_is_refused() {
        let (mut client, server) = tokio::io::duplex(64);
        client
            .write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            .await
            .unwrap();
        assert!(preface(server).await.is_none());
    }
}
