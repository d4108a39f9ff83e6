//! Telemetry: tracing (human text on a terminal, JSON when asked, `RUST_LOG` filter; lines
//! formatted by [`log_format`] (text) and [`log_json`] (JSON) and batched off the call path
//! by [`log_writer`]) and
//! Prometheus metrics on their own loopback port. The filter (`filter.rs`) is `EnvFilter`
//! only when `RUST_LOG` names spans or fields; plain `level`/`target=level` lists (and the
//! default, `info`) use the static `Targets`, same decisions without per-span locking.
//!
//! Metric names and labels live here and only here (HELP text in `describe.rs`). Labels
//! are method, gRPC code, operation, HTTP status, profile name, outcome and TLS refusal
//! reason (the fixed set of `crate::tls::Reason`): never an org id, a request id,
//! certificate data or anything secret.
mod describe;
mod filter;
pub mod log_format;
pub mod log_json;
pub mod log_writer;
mod metrics_http;

use std::{io::IsTerminal, net::SocketAddr};

use tracing_subscriber::{layer::SubscriberExt, util::SubscriberInitExt, Layer, Registry};

use crate::config::LogFormat;
pub use log_writer::LogGuard;

/// A duration for a log field: milliseconds with three decimals (whole microseconds), so
/// lines read `latency_ms=0.037` rather than `latency_ms=0.036634999999999994`, in text
/// and JSON alike.
pub fn log_millis(d: std::time::Duration) -> f64 {
    // u128 → f64 is exact below 2^53 µs (285 years); the division rounds correctly, so
    // the shortest representation has at most three decimals.
    d.as_micros() as f64 / 1000.0
}

/// Installs the global tracing subscriber (a second call is a no-op, for tests). Keep the
/// guard until the process ends: dropping it writes out the buffered lines.
#[must_use = "dropping the guard stops batching and writes out the buffered lines"]
pub fn init_tracing(format: LogFormat) -> LogGuard {
    let (writer, guard) = log_writer::LogWriter::stderr();
    // What `tracing_subscriber::fmt()` starts from, with its filter chosen apart.
    let layer = tracing_subscriber::fmt::layer()
        .log_internal_errors(true)
        .with_writer(writer)
        .with_timer(log_format::FastTime);
    match format {
        // What `json().flatten_event(true).with_current_span(true)` prints, faster.
        LogFormat::Json => filtered(
            layer
                .with_ansi(false)
                .fmt_fields(log_json::FastJsonFields)
                .event_format(log_json::FastJsonEvent::default()),
        ),
        LogFormat::Text => filtered(
            layer
                .fmt_fields(log_format::FastFields)
                .with_ansi(std::io::stderr().is_terminal())
                .event_format(log_format::FastEvent::default()),
        ),
    }
    guard
}

/// Installs `fmt` under the `RUST_LOG` filter, as `fmt().with_env_filter()` layers them.
fn filtered<L: Layer<Registry> + Send + Sync + 'static>(fmt: L) {
    let fmt = tracing_subscriber::registry().with(fmt);
    let _ = match filter::LogFilter::from_env() {
        filter::LogFilter::Static(targets) => fmt.with(targets).try_init(),
        filter::LogFilter::Dynamic(env) => fmt.with(env).try_init(),
    };
}

/// Installs the Prometheus recorder and serves `GET /metrics` on `addr` (port 0: any
/// free port). Returns the bound address, which the caller logs.
pub async fn init_metrics(addr: SocketAddr) -> Result<SocketAddr, String> {
    use metrics_exporter_prometheus::{Matcher, PrometheusBuilder};
    const LATENCY_BUCKETS: &[f64] = &[
        0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
    ];
    let cannot =
        |e: &dyn std::fmt::Display| format!("cannot start the metrics listener on {addr}: {e}");
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| cannot(&e))?;
    let bound = listener.local_addr().map_err(|e| cannot(&e))?;
    let handle = PrometheusBuilder::new()
        .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), LATENCY_BUCKETS)
        .and_then(|b| b.install_recorder())
        .map_err(|e| cannot(&e))?;
    // Histograms are drained by upkeep; the exporter's own listener used to do it.
    let upkeep = handle.clone();
    tokio::spawn(async move {
        let mut every = tokio::time::interval(std::time::Duration::from_secs(5));
        loop {
            every.tick().await;
            upkeep.run_upkeep();
        }
    });
    metrics::enable();
    tokio::spawn(metrics_http::serve(listener, handle));
    describe::describe_metrics();
    Ok(bound)
}

/// Recording functions (no-ops until the exporter is installed).
pub mod metrics {
    use std::{
        sync::{
            atomic::{AtomicBool, Ordering},
            Arc,
        },
        time::Duration,
    };

    /// Set once the exporter is installed. Until then every function returns at once:
    /// even the no-op recorder would cost a metric key (labels, hashing) per call.
    static ON: AtomicBool = AtomicBool::new(false);

    pub(super) fn enable() {
        ON.store(true, Ordering::Relaxed);
    }

    fn off() -> bool {
        !ON.load(Ordering::Relaxed)
    }

    /// A call started.
    pub fn call_started(method: &'static str) {
        if off() {
            return;
        }
        ::metrics::gauge!("atlas_gateway_in_flight_calls", "method" => method).increment(1.0);
    }

    /// `code` is the gRPC code's name (`Ok`, `NotFound`, ...).
    pub fn call_finished(method: &'static str, code: &'static str, elapsed: Duration) {
        if off() {
            return;
        }
        ::metrics::gauge!("atlas_gateway_in_flight_calls", "method" => method).decrement(1.0);
        ::metrics::counter!("atlas_gateway_calls_total", "method" => method, "code" => code)
            .increment(1);
        ::metrics::histogram!("atlas_gateway_call_duration_seconds", "method" => method)
            .record(elapsed.as_secs_f64());
    }

    /// One Atlas HTTP attempt ended with `status`.
    pub fn upstream_attempt(operation: &'static str, status: &'static str, elapsed: Duration) {
        if off() {
            return;
        }
        ::metrics::histogram!("atlas_gateway_upstream_duration_seconds", "operation" => operation, "status" => status)
            .record(elapsed.as_secs_f64());
    }

    /// An Atlas call is retried for `reason`.
    pub fn upstream_retry(operation: &'static str, reason: &'static str) {
        if off() {
            return;
        }
        ::metrics::counter!("atlas_gateway_upstream_retries_total", "operation" => operation, "reason" => reason).increment(1);
    }

    /// A token request ended with `outcome`.
    pub fn token_fetch(profile: &str, outcome: &'static str, elapsed: Duration) {
        if off() {
            return;
        }
        ::metrics::counter!("atlas_gateway_token_fetches_total", "profile" => profile.to_string(), "outcome" => outcome).increment(1);
        ::metrics::histogram!("atlas_gateway_token_fetch_duration_seconds", "profile" => profile.to_string())
            .record(elapsed.as_secs_f64());
    }

    /// On every call with a cached token: the label shares `profile`, it is not copied.
    pub fn token_cache_hit(profile: &Arc<str>) {
        if off() {
            return;
        }
        let label = ::metrics::SharedString::from_shared(Arc::clone(profile));
        ::metrics::counter!("atlas_gateway_token_cache_hits_total", "profile" => label)
            .increment(1);
    }

    /// A shared-store operation failed (Redis down, slow or refusing).
    pub fn shared_store_error(operation: &'static str) {
        ::metrics::counter!("atlas_gateway_shared_store_errors_total", "operation" => operation)
            .increment(1);
    }

    /// A Digest challenge was answered.
    pub fn digest_challenge(profile: &str) {
        if off() {
            return;
        }
        ::metrics::counter!("atlas_gateway_digest_challenges_total", "profile" => profile.to_string()).increment(1);
    }

    /// The TLS listener refused (or lost) a handshake; `reason` is one of a fixed set.
    pub fn tls_handshake_failure(reason: &'static str) {
        if off() {
            return;
        }
        ::metrics::counter!("atlas_gateway_tls_handshake_failures_total", "reason" => reason)
            .increment(1);
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    #[test]
    fn log_millis_has_three_decimals_at_most() {
        let ms = super::log_millis(Duration::from_nanos(36_634));
        assert_eq!(ms.to_string(), "0.036");
        assert_eq!(serde_json::json!(ms).to_string(), "0.036");
        let cases = [(1_234_567_891, "1234.567"), (1_500_000, "1.5"), (999, "0")];
        for (nanos, text) in cases {
            assert_eq!(
                super::log_millis(Duration::from_nanos(nanos)).to_string(),
                text
            );
        }
    }
}
