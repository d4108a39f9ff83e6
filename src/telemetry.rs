//! Telemetry: tracing (human text on a terminal, JSON when asked, `RUST_LOG` filter;
//! lines formatted by [`log_format`] (text) and [`log_json`] (JSON) and batched off the
//! call path by [`log_writer`]) and Prometheus metrics on their own loopback port. The
//! filter (`filter.rs`) is `EnvFilter` only when `RUST_LOG` names spans or fields; plain
//! `level`/`target=level` lists (and the default, `info`) use the static `Targets`, same
//! decisions without per-span locking.
//!
//! Metric names and labels live in [`metrics`] and only there (HELP text in
//! `describe.rs`). Labels are method, gRPC code, operation, HTTP status, profile name,
//! outcome and TLS refusal reason (the fixed set of `crate::tls::Reason`): never an org
//! id, a request id, certificate data or anything secret.
mod describe;
mod filter;
pub mod log_format;
pub mod log_json;
pub mod log_writer;
pub mod metrics;
mod metrics_http;
#[cfg(test)]
mod render;
mod reused;

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

/// Every metric family from the first scrape, for `config`'s profiles (see
/// [`metrics::export_from_start`]).
pub fn export_metrics_from_start(config: &crate::config::Config) {
    let profiles: Vec<metrics::ProfileLabel> = config
        .profiles
        .values()
        .map(|p| metrics::ProfileLabel {
            name: p.name.as_str().into(),
            oauth: matches!(
                p.credentials,
                crate::config::Credentials::ServiceAccount { .. }
            ),
        })
        .collect();
    let features = if cfg!(feature = "emulator") {
        "emulator"
    } else {
        ""
    };
    metrics::export_from_start(&profiles, features);
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
