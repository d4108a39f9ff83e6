//! HELP text and units for every metric the gateway records, registered once when the
//! Prometheus exporter is installed (`promtool check metrics` wants HELP on each family).
//! Only descriptions: names and labels are recorded in [`super::metrics`], never here.
use metrics::{describe_counter, describe_gauge, describe_histogram, Unit};

/// Describes every metric of [`super::metrics`]. A new metric gets its line here too:
/// the interop `promtool` suite fails on a family without HELP.
pub(super) fn describe_metrics() {
    describe_counter!(
        "atlas_gateway_calls_total",
        "gRPC calls finished, by method, gRPC code, profile and ErrorInfo reason (empty on success)"
    );
    describe_histogram!(
        "atlas_gateway_call_duration_seconds",
        Unit::Seconds,
        "gRPC call latency, by method, profile and ErrorInfo reason (empty on success)"
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
        "atlas_gateway_shared_store_rejected_total",
        "Shared store cool-down messages and token-endpoint pauses ignored: unverified (bad MAC) or full (1,024 cool-downs held)"
    );
    describe_gauge!(
        "atlas_gateway_shared_store_up",
        "1 when the shared store answered its last PING or operation, 0 when that failed"
    );
    describe_counter!(
        "atlas_gateway_digest_challenges_total",
        "HTTP Digest challenges answered, by profile (the protocol's normal first round trip, not counted as an upstream 401)"
    );
    describe_gauge!(
        "atlas_gateway_build_info",
        "Always 1; the version and cargo features of this build in its labels"
    );
    describe_gauge!(
        "atlas_gateway_profile_ready",
        "1 once the profile's credentials were accepted by Atlas (getSystemStatus answered 200), else 0"
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
    describe_counter!(
        "atlas_gateway_policy_denied_total",
        "Calls refused by policy, by caller and field (x-atlas-profile, rpc, org_id, roles)"
    );
    describe_counter!(
        "atlas_gateway_audit_errors_total",
        "Audit records that could not be written, by event (begin: the call was refused; end: the answer was returned)"
    );
    describe_counter!(
        "atlas_gateway_audit_syncs_total",
        "Audit writes (one fdatasync each for a file), each a batch of records"
    );
    describe_counter!("atlas_gateway_audit_records_total", "Audit records written");
}
