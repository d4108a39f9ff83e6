//! The gRPC server: the gateway service plus `grpc.health.v1.Health` and server
//! reflection (v1 and v1alpha, for grpcurl 1.8), optional TLS/mTLS (handshakes in [`crate::tls`]), caller
//! authentication ([`crate::callers`]), the audit trail ([`crate::audit`]), a global concurrency limit, and graceful shutdown (health NOT_SERVING, stop
//! accepting, let in-flight calls finish within the grace period). [`run_gateway`] is the
//! process around it (tracing, metrics, bind, signals), shared by `serve` and `dev`.
mod closing;
mod limits;
pub mod readiness;
mod routes;

use std::{future::Future, net::SocketAddr, pin::Pin, process::ExitCode, sync::Arc};

use tokio::net::TcpListener;
use tonic::service::interceptor::InterceptedService;
use tonic_health::ServingStatus;

use crate::{
    atlas::client::AtlasClient,
    audit::AuditLog,
    callers::CallerAuth,
    config::Config,
    grpc::service::GatewayService,
    pb::{atlas_gateway_server::AtlasGatewayServer, FILE_DESCRIPTOR_SET},
    store::{redact_url, SharedStore},
    telemetry,
};

/// Exit status for bad configuration or an address that cannot be bound (EX_USAGE).
pub const EX_USAGE: u8 = 64;

/// Full name of the gateway service, as health and reflection report it (the
/// generated constant).
pub use crate::pb::atlas_gateway_server::SERVICE_NAME;

/// Why serving failed.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("cannot build the Atlas HTTP client: {0}")]
    /// The Atlas HTTP client could not be built.
    Client(#[from] reqwest::Error),
    #[error("TLS setup failed: {0}")]
    /// Certificates or keys could not be loaded.
    Tls(String),
    #[error("gRPC server failed: {0}")]
    /// The gRPC transport failed.
    Transport(#[from] tonic::transport::Error),
    #[error("reflection setup failed: {0}")]
    /// Reflection could not be set up.
    Reflection(#[from] tonic_reflection::server::Error),
    /// The shared store could not be set up.
    #[error("shared store setup failed: {0}")]
    Store(String),
    /// The audit log could not be opened or its `open` line written.
    #[error(transparent)]
    Audit(#[from] crate::audit::OpenError),
}

/// Serves until `shutdown` resolves, then drains for at most `config.shutdown_grace`.
pub async fn serve(
    config: Config,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), ServeError> {
    let store = match &config.shared_store {
        Some(c) => Some(SharedStore::new(c).map_err(ServeError::Store)?),
        None => None,
    };
    if let Some(store) = &store {
        store.check_at_start().await;
    }
    let audit = (config.audit_log.as_ref())
        .map(AuditLog::open)
        .transpose()?;
    crate::callers::warn_flat(&config.callers);
    let atlas = AtlasClient::new(&config, store)?;
    let _sweeper = crate::lease::sweeper::start(&config, Arc::clone(&atlas), audit.clone());
    let service = GatewayService::new(&config, Arc::clone(&atlas), audit);
    let (reporter, health) = tonic_health::server::health_reporter();
    let max_request = config.transport.max_request_bytes;
    let health = health.max_decoding_message_size(max_request);
    // Readiness: the gateway service serves once every profile's credentials worked.
    let ready_now = !config.check_credentials_at_start;
    let ready = if ready_now {
        ServingStatus::Serving
    } else {
        ServingStatus::NotServing
    };
    reporter.set_service_status(SERVICE_NAME, ready).await;
    reporter
        .set_service_status("", ServingStatus::Serving)
        .await;
    let stopping = Arc::new(std::sync::atomic::AtomicBool::new(false));
    if !ready_now {
        let profiles = config.profiles.keys().cloned().collect();
        readiness::spawn(
            Arc::clone(&atlas),
            profiles,
            reporter.clone(),
            Arc::clone(&stopping),
        );
    }

    let reflection = || {
        tonic_reflection::server::Builder::configure()
            .register_encoded_file_descriptor_set(FILE_DESCRIPTOR_SET)
            .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
            // google.rpc error details, so grpcurl and reflection clients can decode them.
            .register_encoded_file_descriptor_set(tonic_types::pb::FILE_DESCRIPTOR_SET)
    };
    // No `Server::timeout`: it armed a timer per call (~4,000 instructions, BENCHMARKS.md)
    // as a backstop to deadlines every call already keeps. A call answers by its own
    // deadline (`grpc::call`: the caller's, else `request_timeout`, never above
    // `max_call_duration`); every wait on its way is bounded by it (permit, token, send,
    // body, retry pauses, a duplicate `request_id` waiting for the first) or by the
    // store's 500 ms operation timeout, and a half-made key's rollback runs in its own
    // task. tonic still applies a caller's `grpc-timeout` itself. A request that never
    // finishes arriving ends DEADLINE_EXCEEDED at `request_timeout` (`limits`: its timer
    // is armed only when the body is not all there at once).
    let tls = (config.tls.as_ref())
        .map(crate::tls::server_config)
        .transpose()
        .map_err(ServeError::Tls)?;
    let builder = limits::builder(&config.transport, config.request_timeout);
    let gateway = AtlasGatewayServer::new(service).max_decoding_message_size(max_request);
    // Calls still running when revocation at stop begins end SHUTTING_DOWN.
    let (closing_tx, closing) = tokio::sync::watch::channel(false);
    // Caller authentication runs only when there is something to check or to learn:
    // callers, or a TLS listener whose client certificates scope idempotency records.
    // Without either it would accept every call unchanged, at the cost of taking each
    // request apart and putting it back together.
    let routes = if config.callers.is_empty() && tls.is_none() {
        routes::Routes::new().add(closing::Closing::new(gateway, closing))
    } else {
        let auth = CallerAuth::new(&config.callers);
        let gateway = InterceptedService::new(gateway, auth);
        routes::Routes::new().add(closing::Closing::new(gateway, closing))
    };
    let routes = routes
        .add(health)
        .add(
            reflection()
                .build_v1()?
                .max_decoding_message_size(max_request),
        )
        .add(
            reflection()
                .build_v1alpha()?
                .max_decoding_message_size(max_request),
        );

    let (drain_tx, mut drain_rx) = tokio::sync::watch::channel(false);
    let drained = async move {
        let _ = drain_rx.wait_for(|d| *d).await;
    };
    // The bound address (the configured one, or the port the OS chose for port 0).
    let listen = listener.local_addr().unwrap_or(config.listen);
    let mut server: Pin<Box<dyn Future<Output = Result<(), tonic::transport::Error>> + Send>> =
        match tls {
            // Handshakes in crate::tls, which logs and counts the refused ones; the
            // connection limits (and no-delay, keepalive) in crate::listen.
            Some(tls) => Box::pin(builder.serve_with_incoming_shutdown(
                routes,
                crate::tls::incoming(listener, tls, &config.transport),
                drained,
            )),
            None => Box::pin(builder.serve_with_incoming_shutdown(
                routes,
                crate::listen::incoming(listener, &config.transport, |tcp, _, _| async {
                    Some(tcp)
                }),
                drained,
            )),
        };
    let shared_store = config
        .shared_store
        .as_ref()
        .map(|s| redact_url(s.url.expose()));
    tracing::info!(listen = %listen, profiles = ?config.profiles.keys().collect::<Vec<_>>(), shared_store = shared_store.as_deref().unwrap_or("none"), "serving");
    tokio::select! {
        result = &mut server => return result.map_err(Into::into),
        () = shutdown => {}
    }
    tracing::info!(
        grace_ms = config.shutdown_grace.as_millis() as u64,
        "shutting down: NOT_SERVING, draining in-flight calls"
    );
    stopping.store(true, std::sync::atomic::Ordering::Release);
    reporter
        .set_service_status(SERVICE_NAME, ServingStatus::NotServing)
        .await;
    reporter
        .set_service_status("", ServingStatus::NotServing)
        .await;
    let _ = drain_tx.send(true);
    match tokio::time::timeout(config.shutdown_grace, &mut server).await {
        Ok(result) => result?,
        Err(_) => tracing::warn!("grace period over; abandoning calls still in flight"),
    }
    // Revocation at stop is final: calls still running end SHUTTING_DOWN, no token is
    // fetched from here, and the tokens minted here and not shared with a fleet are
    // revoked (a fetch on its way included), so none is left counting against Atlas's
    // active-token cap.
    let _ = closing_tx.send(true);
    atlas.revoke_minted_tokens().await;
    tracing::info!("stopped");
    Ok(())
}

/// The addresses a gateway bound (port 0 resolved), for whoever announces them.
#[derive(Debug, Clone, Copy)]
pub struct Bound {
    /// The gRPC listener.
    pub grpc: SocketAddr,
    /// The Prometheus /metrics listener, when it is on.
    pub metrics: Option<SocketAddr>,
}

/// Binds, serves until SIGTERM/SIGINT, drains. A second signal exits at once.
pub async fn run_gateway(config: Config) -> ExitCode {
    run_gateway_announced(config, |_| {}).await
}

/// [`run_gateway`], calling `announce` once with the bound addresses, after every
/// listener is bound and before the first call is served (`dev` prints its banner there,
/// so the addresses it prints are the real ones, port 0 included).
pub async fn run_gateway_announced(config: Config, announce: impl FnOnce(Bound)) -> ExitCode {
    let logs = telemetry::init_tracing(config.log_format);
    // Signal handlers first: a signal from the moment the process can be seen is caught,
    // and the second one reaches the same stream as the first.
    let mut signals = match Signals::new() {
        Ok(s) => s,
        Err(e) => {
            eprintln!("atlas-grpc-gateway: cannot install signal handlers: {e}");
            return ExitCode::FAILURE;
        }
    };
    let mut metrics = None;
    if let Some(addr) = config.metrics_listen {
        match telemetry::init_metrics(addr).await {
            Ok(bound) => {
                tracing::info!(metrics_listen = %bound, "serving Prometheus /metrics");
                telemetry::export_metrics_from_start(&config);
                metrics = Some(bound);
            }
            Err(e) => {
                eprintln!("atlas-grpc-gateway: {e}");
                return ExitCode::from(EX_USAGE);
            }
        }
    }
    let traces = match crate::otel::init() {
        Ok(t) => t,
        Err(e) => {
            eprintln!("atlas-grpc-gateway: {e}");
            return ExitCode::from(EX_USAGE);
        }
    };
    let listener = match tokio::net::TcpListener::bind(config.listen).await {
        Ok(l) => l,
        Err(e) => {
            eprintln!(
                "atlas-grpc-gateway: cannot listen on {}: {e}",
                config.listen
            );
            return ExitCode::from(EX_USAGE);
        }
    };
    announce(Bound {
        grpc: listener.local_addr().unwrap_or(config.listen),
        metrics,
    });
    let logs = std::sync::Arc::new(logs);
    let second = std::sync::Arc::clone(&logs);
    let shutdown = async move {
        signals.next().await;
        tokio::spawn(async move {
            signals.next().await;
            second.flush();
            eprintln!("atlas-grpc-gateway: second signal, exiting now");
            std::process::exit(130);
        });
    };
    let served = serve(config, listener, shutdown).await;
    traces.shutdown().await;
    logs.flush();
    match served {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("atlas-grpc-gateway: {e}");
            ExitCode::FAILURE
        }
    }
}

/// SIGTERM and SIGINT as one stream of events, registered once.
pub struct Signals {
    #[cfg(unix)]
    term: tokio::signal::unix::Signal,
    #[cfg(unix)]
    int: tokio::signal::unix::Signal,
}

impl Signals {
    /// Registers the SIGTERM and SIGINT handlers.
    pub fn new() -> std::io::Result<Self> {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{signal, SignalKind};
            Ok(Self {
                term: signal(SignalKind::terminate())?,
                int: signal(SignalKind::interrupt())?,
            })
        }
        #[cfg(not(unix))]
        Ok(Self {})
    }

    /// Resolves on the next SIGTERM or SIGINT.
    pub async fn next(&mut self) {
        #[cfg(unix)]
        tokio::select! {
            _ = self.term.recv() => {}
            _ = self.int.recv() => {}
        }
        #[cfg(not(unix))]
        let _ = tokio::signal::ctrl_c().await;
    }
}
