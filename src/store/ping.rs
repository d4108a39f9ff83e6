//! The shared store's start-up check: one `PING` on a connection of its own, so that a
//! failure has a known cause (auth, TLS, refused, timeout) for the one WARN line an
//! operator reads, and `atlas_gateway_shared_store_up` is set from the first moment. It
//! never fails the start and never logs the URL's password.
use std::{sync::atomic::Ordering, time::Duration};

use super::SharedStore;
use crate::telemetry::metrics as m;

/// Bound on the start-up `PING` (connect, TLS, `AUTH` and the answer).
const START_PING_TIMEOUT: Duration = Duration::from_secs(2);

impl SharedStore {
    /// Sends one `PING` at start on a connection of its own, so a failure has a known
    /// cause. Answered: `atlas_gateway_shared_store_up 1`. Not: one WARN line naming
    /// the cause (auth, TLS, refused, timeout), the gauge at 0, and the store marked down
    /// (the first operation probes it again). Never fails the start.
    pub async fn check_at_start(&self) {
        let ping = async {
            let mut c = self.client.get_multiplexed_async_connection().await?;
            redis::cmd("PING").query_async::<String>(&mut c).await
        };
        let info = self.client.get_connection_info();
        let cause = match tokio::time::timeout(START_PING_TIMEOUT, ping).await {
            Ok(Ok(_)) => {
                m::shared_store_up(true);
                return;
            }
            Ok(Err(e)) if !e.is_timeout() => failure_cause(&e, info),
            Ok(Err(_)) | Err(_) => silence_cause(info.addr()).await,
        };
        m::shared_store_up(false);
        m::shared_store_error("ping");
        self.down.store(true, Ordering::Release);
        tracing::warn!(prefix = %self.prefix, cause,
            "shared store did not answer PING at start ({}); going on with in-process state until it answers",
            explain(cause));
    }
}

/// Why a connection or `PING` failed with an error (not a time-out), as one word:
/// `auth`, `tls`, `refused` or `error`.
fn failure_cause(e: &redis::RedisError, info: &redis::ConnectionInfo) -> &'static str {
    let tls_url = matches!(info.addr(), redis::ConnectionAddr::TcpTls { .. });
    let rustls = std::iter::successors(Some(e as &(dyn std::error::Error + 'static)), |e| {
        e.source()
    })
    .filter_map(|e| e.downcast_ref::<std::io::Error>()?.get_ref())
    .any(|inner| inner.is::<tokio_rustls::rustls::Error>());
    if e.kind() == redis::ErrorKind::AuthenticationFailed
        || matches!(e.code(), Some("NOAUTH" | "WRONGPASS"))
    {
        "auth"
    } else if e.is_connection_refusal() {
        "refused"
    } else if rustls || (tls_url && e.is_io_error()) {
        "tls"
    } else {
        "error"
    }
}

/// Why a connection or `PING` got no answer in time: `refused` or `timeout` as a plain
/// TCP connect finds, and `tls` when TCP connects but the `rediss://` handshake never
/// finished (e.g. a TLS client at a plaintext port).
async fn silence_cause(addr: &redis::ConnectionAddr) -> &'static str {
    let (host, port, tls) = match addr {
        redis::ConnectionAddr::Tcp(host, port) => (host, *port, false),
        redis::ConnectionAddr::TcpTls { host, port, .. } => (host, *port, true),
        _ => return "timeout",
    };
    let connect = tokio::net::TcpStream::connect((host.as_str(), port));
    match tokio::time::timeout(START_PING_TIMEOUT, connect).await {
        Ok(Ok(_)) if tls => "tls",
        Ok(Err(e)) if e.kind() == std::io::ErrorKind::ConnectionRefused => "refused",
        _ => "timeout",
    }
}

/// What an operator should check for each cause.
fn explain(cause: &str) -> &'static str {
    match cause {
        "auth" => "authentication refused: check the URL's user and password",
        "tls" => {
            "TLS handshake failed: check rediss:// against a TLS port and the store's certificate"
        }
        "refused" => "connection refused: check the host and port, and that the store runs",
        "timeout" => "no answer in time: check the network path to the store",
        _ => "the store answered PING with an error",
    }
}
