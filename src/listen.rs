//! Accepting TCP connections on the listeners the gateway runs itself (the TLS gRPC
//! listener, the Prometheus /metrics listener). Owns one rule: an accept error (out of
//! file descriptors and the like) is logged and retried after a pause, never spun on and
//! never the end of the listener. It never reads or writes a connection.
use std::{net::SocketAddr, time::Duration};

use tokio::net::{TcpListener, TcpStream};

/// How long a listener waits after a failed accept before trying again.
const ACCEPT_RETRY: Duration = Duration::from_millis(100);

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
