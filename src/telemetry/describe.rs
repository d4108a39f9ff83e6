//! HELP text and units for every metric the gateway records, registered once when the
//! Prometheus exporter is installed (`promtool check metrics` wants HELP on each family).
//! Only descriptions: names and labels are recorded in [`super::metrics`], never here.
use metrics::{describe_counter, describe_gauge, describe_histogram, Unit};

/// Describes every metric of [`super::metrics`]. A new metric gets its line here too:
/// the interop `promtool` suite fails on a family without HELP.
pub(super) fn describe_metrics() {
    describe_counter!(
        "atlas_gateway_calls_total",
        "gRPC calls finished, by method and gRPC code"
    );
    describe_histogram!(
        "atlas_gateway_call_duration_seconds",
        Unit::Seconds,
        "gRPC call latency, by method"
    );
    describe_gauge!(
        "atlas_gateway_in_flight_calls",
        "gRPC calls in progress, by method"
    );
    describe_histogram!(
        "atlas_gateway_upstream_duration_seconds",
        Unit::Seconds,
        "Atlas HTTP attempt latency, by operation and HTTP status"
    );
    describe_counter!(
        "atlas_gateway_upstream_retries_total",
        "Atlas calls retried, by operation and reason"
    );
    describe_counter!(
        "atlas_gateway_token_fetches_total",
        "OAuth token requests, by profile and outcome"
    );
    describe_histogram!(
        "atlas_gateway_token_fetch_duration_seconds",
        Unit::Seconds,
        "OAuth token request latency, by profile"
    );
    describe_counter!(
        "atlas_gateway_token_cache_hits_total",
        "Calls served by a cached OAuth token, by profile"
    );
    describe_counter!(
        "atlas_gateway_shared_store_errors_total",
        "Shared store operations that failed or timed out (the call went on in process)"
    );
    describe_counter!(
        "atlas_gateway_digest_challenges_total",
        "HTTP Digest challenges answered, by profile"
    );
    describe_counter!(
        "atlas_gateway_leases_expired_total",
        "Leased API keys the sweeper deleted after their lease ended, by profile"
    );
    describe_counter!(
        "atlas_gateway_lease_orphans_dropped_total",
        "Orphaned API keys (access list and rollback failed) an orphan set could not take (full, or the store down), by profile"
    );
    describe_counter!(
        "atlas_gateway_lease_sweep_errors_total",
        "Lease sweep steps that failed (retried next sweep), by Atlas operation"
    );
    describe_counter!(
        "atlas_gateway_tls_handshake_failures_total",
        "TLS handshakes the gRPC listener refused or lost, by reason"
    );
    describe_counter!(
        "atlas_gateway_connections_refused_total",
        "New gRPC connections closed at once because max_connections were open"
    );
}
