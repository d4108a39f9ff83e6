//! The series every scrape has from the first one: each family with zero-valued series
//! for its fixed label sets (so a dashboard or an alert never sees a family appear only
//! after its first event), `atlas_gateway_build_info` and `atlas_gateway_profile_ready`.
//! The label values here are the complete sets docs/operations.md lists; must never name
//! a label value that the recording functions of [`super`] cannot produce.
use std::sync::Arc;

/// The RPCs (`method` label).
pub const METHODS: [&str; 5] = [
    "CreateLinkToken",
    "DeleteLinkToken",
    "CreateApiKey",
    "DeleteApiKey",
    "ListApiKeys",
];
/// Atlas operations (`operation` label): `crate::atlas::Operation::id`.
const OPERATIONS: [&str; 7] = [
    "getSystemStatus",
    "createOrgLiveMigrationLinkToken",
    "deleteOrgLiveMigrationLinkTokens",
    "createOrgApiKey",
    "createOrgApiKeyAccessListEntry",
    "deleteOrgApiKey",
    "listOrgApiKeys",
];
/// Why an Atlas call is retried (`reason` of `upstream_retries_total`).
const RETRY_REASONS: [&str; 5] = ["429", "502", "503", "504", "unreachable"];
/// Token request outcomes (`outcome` of `token_fetches_total`).
const TOKEN_OUTCOMES: [&str; 5] = [
    "ok",
    "rejected",
    "token_limit",
    "rate_limited",
    "unavailable",
];
/// Shared-store operations (`operation` of `shared_store_errors_total`).
const STORE_OPERATIONS: [&str; 5] = ["get", "set", "set_nx", "delete_if_equal", "publish"];
/// Refused TLS handshakes (`reason` of `tls_handshake_failures_total`): `tls::Reason::label`.
const TLS_REASONS: [&str; 9] = [
    "no_client_certificate",
    "unknown_ca",
    "expired_certificate",
    "bad_certificate",
    "client_alert",
    "incompatible",
    "protocol_error",
    "timeout",
    "closed",
];

/// A configured profile and how it authenticates.
pub struct ProfileLabel {
    /// The profile's name.
    pub name: Arc<str>,
    /// True for a service account (OAuth), false for an API key pair (Digest).
    pub oauth: bool,
}

/// Registers every family with zero-valued series (call after the exporter is
/// installed). `features` is the build's cargo features, comma-separated.
pub fn export_from_start(profiles: &[ProfileLabel], features: &str) {
    use ::metrics::{counter, gauge, histogram};
    gauge!("atlas_gateway_build_info", "version" => env!("CARGO_PKG_VERSION"), "features" => features.to_string()).set(1.0);
    for method in METHODS {
        gauge!("atlas_gateway_in_flight_calls", "method" => method).set(0.0);
        for p in profiles {
            let profile = p.name.to_string();
            counter!("atlas_gateway_calls_total", "method" => method, "code" => "Ok",
                "profile" => profile.clone(), "reason" => "")
            .absolute(0);
            let _ = histogram!("atlas_gateway_call_duration_seconds", "method" => method,
                "profile" => profile, "reason" => "");
        }
    }
    for operation in OPERATIONS {
        let _ = histogram!("atlas_gateway_upstream_duration_seconds", "operation" => operation, "status" => "200");
        for reason in RETRY_REASONS {
            counter!("atlas_gateway_upstream_retries_total", "operation" => operation, "reason" => reason).absolute(0);
        }
    }
    for p in profiles {
        let name = p.name.to_string();
        gauge!("atlas_gateway_profile_ready", "profile" => name.clone()).set(0.0);
        if p.oauth {
            for outcome in TOKEN_OUTCOMES {
                counter!("atlas_gateway_token_fetches_total", "profile" => name.clone(), "outcome" => outcome).absolute(0);
            }
            let _ =
                histogram!("atlas_gateway_token_fetch_duration_seconds", "profile" => name.clone());
            counter!("atlas_gateway_token_cache_hits_total", "profile" => name.clone()).absolute(0);
        } else {
            counter!("atlas_gateway_digest_challenges_total", "profile" => name.clone())
                .absolute(0);
        }
    }
    for operation in STORE_OPERATIONS {
        counter!("atlas_gateway_shared_store_errors_total", "operation" => operation).absolute(0);
    }
    counter!("atlas_gateway_connections_refused_total").absolute(0);
    for reason in TLS_REASONS {
        counter!("atlas_gateway_tls_handshake_failures_total", "reason" => reason).absolute(0);
    }
}
