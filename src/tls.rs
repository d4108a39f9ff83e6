//! The TLS listener: builds the rustls server configuration (certificate, key, and the
//! client CA for mTLS) and runs each new connection's handshake (accepting, the
//! connection limits and the deadline shared with the HTTP/2 preface are
//! `crate::listen`'s), handing finished TLS streams to tonic.
//!
//! It owns what a refused handshake leaves behind: a WARN line once per peer IP and
//! [`Reason`] (peer address, reason, rustls error text) and
//! `atlas_gateway_tls_handshake_failures_total{reason}` for every refusal. It never logs,
//! labels or keeps certificate contents.
use std::{
    collections::{HashSet, VecDeque},
    convert::Infallible,
    io,
    net::{IpAddr, SocketAddr},
    path::Path,
    sync::{Arc, Mutex, PoisonError},
};

use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::{
    rustls::{
        pki_types::{pem::PemObject, CertificateDer, PrivateKeyDer},
        server::WebPkiClientVerifier,
        CertificateError, Error as TlsError, RootCertStore, ServerConfig,
    },
    server::TlsStream,
    TlsAcceptor,
};
use tokio_stream::wrappers::ReceiverStream;

use crate::{
    config::{TlsConfig, TransportLimits},
    listen::Connection,
    telemetry,
};

/// How many (peer IP, reason) pairs are remembered as already logged.
const REMEMBERED: usize = 1024;

/// The rustls configuration for `tls`: HTTP/2 (ALPN `h2`) and, with a client CA, a
/// required client certificate chaining to it.
pub fn server_config(tls: &TlsConfig) -> Result<ServerConfig, String> {
    let builder = ServerConfig::builder();
    let builder = match &tls.client_ca {
        None => builder.with_no_client_auth(),
        Some(ca) => {
            let mut roots = RootCertStore::empty();
            let (added, _) = roots.add_parsable_certificates(certificates(ca)?);
            if added == 0 {
                return Err(format!("{}: no usable CA certificate", ca.display()));
            }
            let verifier = WebPkiClientVerifier::builder(roots.into())
                .build()
                .map_err(|e| format!("{}: {e}", ca.display()))?;
            builder.with_client_cert_verifier(verifier)
        }
    };
    let key = PrivateKeyDer::from_pem_file(&tls.key)
        .map_err(|e| format!("cannot read the private key {}: {e}", tls.key.display()))?;
    let mut config = builder
        .with_single_cert(certificates(&tls.cert)?, key)
        .map_err(|e| format!("{}: {e}", tls.cert.display()))?;
    config.alpn_protocols = vec![b"h2".to_vec()];
    Ok(config)
}

fn certificates(path: &Path) -> Result<Vec<CertificateDer<'static>>, String> {
    let cannot = |e: &dyn std::fmt::Display| format!("cannot read {}: {e}", path.display());
    CertificateDer::pem_file_iter(path)
        .map_err(|e| cannot(&e))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| cannot(&e))
}

/// TLS streams of the connections accepted on `listener` (within `limits`, see
/// [`crate::listen::incoming`]), for tonic's `serve_with_incoming`. Dropping the stream
/// stops accepting and closes the listener.
pub fn incoming(
    listener: TcpListener,
    config: ServerConfig,
    limits: &TransportLimits,
) -> ReceiverStream<Result<Connection<TlsStream<TcpStream>>, Infallible>> {
    let acceptor = TlsAcceptor::from(Arc::new(config));
    let refusals = Arc::new(Refusals::new(REMEMBERED));
    crate::listen::incoming(listener, limits, move |tcp, peer, deadline| {
        let (acceptor, refusals) = (acceptor.clone(), Arc::clone(&refusals));
        async move {
            match tokio::time::timeout_at(deadline, acceptor.accept(tcp)).await {
                Ok(Ok(stream)) => Some(stream),
                Ok(Err(e)) => {
                    refusals.record(peer, &e);
                    None
                }
                Err(_) => {
                    refusals.record(peer, &io::ErrorKind::TimedOut.into());
                    None
                }
            }
        }
    })
}

/// Why a handshake failed: the `reason` label, a small fixed set.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Reason {
    /// mTLS: the client sent no certificate.
    NoClientCertificate,
    /// mTLS: the client certificate does not chain to the configured client CA.
    UnknownCa,
    /// The client certificate is expired or not valid yet.
    ExpiredCertificate,
    /// Any other unacceptable client certificate (X.509 v1, bad encoding or signature,
    /// wrong key usage, ...).
    BadCertificate,
    /// The client sent a fatal alert (often: it does not trust the gateway's certificate).
    ClientAlert,
    /// No TLS version, cipher suite or protocol in common.
    Incompatible,
    /// Not TLS (plaintext gRPC on the TLS port) or a malformed TLS exchange.
    ProtocolError,
    /// Not done within `preface_timeout` (the handshake's share of it).
    Timeout,
    /// The peer closed the connection mid-handshake (TCP probes, port scans).
    Closed,
}

impl Reason {
    /// Classifies a failed `TlsAcceptor::accept`.
    pub fn of(e: &io::Error) -> Reason {
        if e.kind() == io::ErrorKind::TimedOut {
            return Reason::Timeout;
        }
        let Some(tls) = e.get_ref().and_then(|i| i.downcast_ref::<TlsError>()) else {
            return Reason::Closed;
        };
        match tls {
            TlsError::NoCertificatesPresented => Reason::NoClientCertificate,
            TlsError::InvalidCertificate(CertificateError::UnknownIssuer) => Reason::UnknownCa,
            TlsError::InvalidCertificate(
                CertificateError::Expired
                | CertificateError::ExpiredContext { .. }
                | CertificateError::NotValidYet
                | CertificateError::NotValidYetContext { .. },
            ) => Reason::ExpiredCertificate,
            TlsError::InvalidCertificate(_) => Reason::BadCertificate,
            TlsError::AlertReceived(_) => Reason::ClientAlert,
            TlsError::PeerIncompatible(_) => Reason::Incompatible,
            _ => Reason::ProtocolError,
        }
    }

    /// The metric label.
    pub fn label(self) -> &'static str {
        match self {
            Reason::NoClientCertificate => "no_client_certificate",
            Reason::UnknownCa => "unknown_ca",
            Reason::ExpiredCertificate => "expired_certificate",
            Reason::BadCertificate => "bad_certificate",
            Reason::ClientAlert => "client_alert",
            Reason::Incompatible => "incompatible",
            Reason::ProtocolError => "protocol_error",
            Reason::Timeout => "timeout",
            Reason::Closed => "closed",
        }
    }
}

/// Counts every refused handshake and logs the first per (peer IP, [`Reason`]).
///
/// At most `cap` pairs are remembered, oldest forgotten first: memory stays bounded
/// whatever the peers do, and a pair that comes back after `cap` newer ones is logged
/// again (so the log carries at most one line per new pair, plus one per pair that
/// returns after being forgotten). `closed` (TCP probes, scans) goes to DEBUG only.
struct Refusals {
    cap: usize,
    logged: Mutex<Logged>,
}

/// The remembered pairs, as a set and in the order they came.
#[derive(Default)]
struct Logged {
    seen: HashSet<(IpAddr, Reason)>,
    order: VecDeque<(IpAddr, Reason)>,
}

impl Refusals {
    fn new(cap: usize) -> Self {
        Self {
            cap,
            logged: Mutex::default(),
        }
    }

    fn record(&self, peer: SocketAddr, e: &io::Error) {
        let reason = Reason::of(e);
        telemetry::metrics::tls_handshake_failure(reason.label());
        if reason == Reason::Closed {
            tracing::debug!(peer = %peer, error = %e, "TLS handshake not finished: the peer closed");
        } else if self.first(peer.ip(), reason) {
            // The rustls error names the failed check (issuer, version, ...); client
            // certificate checks involve no names, so no certificate content is in it.
            tracing::warn!(
                peer = %peer,
                reason = reason.label(),
                error = %e,
                "refused a TLS handshake (logged once per peer IP and reason; atlas_gateway_tls_handshake_failures_total counts them all)"
            );
        }
    }

    /// True the first time `(ip, reason)` is seen since it was last forgotten.
    fn first(&self, ip: IpAddr, reason: Reason) -> bool {
        let mut logged = self.logged.lock().unwrap_or_else(PoisonError::into_inner);
        if !logged.seen.insert((ip, reason)) {
            return false;
        }
        logged.order.push_back((ip, reason));
        if logged.order.len() > self.cap {
            if let Some(oldest) = logged.order.pop_front() {
                logged.seen.remove(&oldest);
            }
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_peer_and_reason_is_logged_once_and_memory_is_capped() {
        let refusals = Refusals::new(2);
        let (a, b, c): (IpAddr, IpAddr, IpAddr) = (
            [192, 0, 2, 1].into(),
            [192, 0, 2, 2].into(),
            [192, 0, 2, 3].into(),
        );
        assert!(refusals.first(a, Reason::UnknownCa));
        assert!(!refusals.first(a, Reason::UnknownCa), "same pair: once");
        assert!(
            refusals.first(a, Reason::NoClientCertificate),
            "another reason"
        );
        assert!(refusals.first(b, Reason::UnknownCa), "another peer");
        assert!(!refusals.first(b, Reason::UnknownCa));
        assert!(refusals.first(c, Reason::UnknownCa));
        assert_eq!(refusals.logged.lock().unwrap().order.len(), 2, "capped");
        assert!(
            refusals.first(a, Reason::UnknownCa),
            "forgotten beyond the cap: logged again"
        );
    }

    #[test]
    fn rustls_errors_map_to_their_reasons() {
        let tls = |e: TlsError| io::Error::new(io::ErrorKind::InvalidData, e);
        let cases = [
            (
                tls(TlsError::NoCertificatesPresented),
                "no_client_certificate",
            ),
            (tls(CertificateError::UnknownIssuer.into()), "unknown_ca"),
            (tls(CertificateError::Expired.into()), "expired_certificate"),
            (tls(CertificateError::BadEncoding.into()), "bad_certificate"),
            (tls(TlsError::DecryptError), "protocol_error"),
            (io::ErrorKind::TimedOut.into(), "timeout"),
            (io::ErrorKind::UnexpectedEof.into(), "closed"),
        ];
        for (error, label) in cases {
            assert_eq!(Reason::of(&error).label(), label, "{error}");
        }
    }
}
