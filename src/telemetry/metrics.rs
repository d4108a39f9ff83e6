//! Recording the gateway's metrics (no-ops until the exporter is installed). The handles
//! of the per-call series are kept by label values, so a call records into them without
//! looking the series up again. The `profile` label only ever names a configured
//! profile (an unknown `x-atlas-profile` counts as ""), and `reason` is the answer's
//! `ErrorInfo.reason` (bounded by `grpc::call::outcome`), so every label set is bounded.
mod start;

pub use start::{ProfileLabel, METHODS};
use std::{
    collections::HashMap,
    hash::Hash,
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc, OnceLock, PoisonError, RwLock,
    },
    time::Duration,
};

use ::metrics::{Counter, Gauge, Histogram};

/// Set once the exporter is installed. Until then every function returns at once:
/// even the no-op recorder would cost a metric key (labels, hashing) per call.
static ON: AtomicBool = AtomicBool::new(false);

pub(super) fn enable() {
    ON.store(true, Ordering::Relaxed);
}

fn off() -> bool {
    !ON.load(Ordering::Relaxed)
}

/// The handles of the per-call metrics, by label values. `counter!` and friends look
/// a metric up by name and labels (a key built and hashed, the registry searched) on
/// every use; a handle kept here is that look-up done once per label set. The label
/// sets are few and fixed (methods × codes, operations × statuses, profiles).
struct Handles<K, H>(OnceLock<RwLock<HashMap<K, H>>>);

impl<K: Hash + Eq, H: Clone> Handles<K, H> {
    const fn new() -> Self {
        Self(OnceLock::new())
    }

    fn get<Q>(&self, key: &Q, make: impl FnOnce() -> (K, H)) -> H
    where
        K: std::borrow::Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let map = self.0.get_or_init(Default::default);
        let known = map.read().unwrap_or_else(PoisonError::into_inner);
        if let Some(handle) = known.get(key) {
            return handle.clone();
        }
        drop(known);
        let (key, handle) = make();
        let mut map = map.write().unwrap_or_else(PoisonError::into_inner);
        map.entry(key).or_insert(handle).clone()
    }
}

/// The configured profiles (the only values of the `profile` label of calls).
static PROFILES: OnceLock<Vec<Arc<str>>> = OnceLock::new();

/// Exports every family from the first scrape (see `metrics::start`); call once, after the
/// exporter is installed, with the configured profiles and the build's features.
pub fn export_from_start(profiles: &[ProfileLabel], features: &str) {
    let _ = PROFILES.set(profiles.iter().map(|p| Arc::clone(&p.name)).collect());
    if off() {
        return;
    }
    start::export_from_start(profiles, features);
}

/// Whether `profile`'s credentials have been accepted (`atlas_gateway_profile_ready`).
pub fn profile_ready(profile: &str, ready: bool) {
    if off() {
        return;
    }
    ::metrics::gauge!("atlas_gateway_profile_ready", "profile" => profile.to_string())
        .set(if ready { 1.0 } else { 0.0 });
}

/// The `profile` label of a call: a configured profile's index, or `None`.
fn profile_index(profile: &str) -> Option<usize> {
    PROFILES.get()?.iter().position(|p| &**p == profile)
}

/// `atlas_gateway_in_flight_calls` by method.
static IN_FLIGHT: Handles<&'static str, Gauge> = Handles::new();
/// The labels of a finished call: method, code, profile (index), reason.
type CallKey = (&'static str, &'static str, Option<usize>, Option<Box<str>>);
/// `atlas_gateway_calls_total` by method, code, profile and reason,
/// `..._call_duration_seconds` by method, profile and reason.
static CALLS: Handles<CallKey, (Counter, Histogram)> = Handles::new();
/// `atlas_gateway_upstream_duration_seconds` by operation and status.
static UPSTREAM: Handles<(&'static str, &'static str), Histogram> = Handles::new();
/// `atlas_gateway_token_cache_hits_total` by profile.
static TOKEN_HITS: Handles<Arc<str>, Counter> = Handles::new();

fn in_flight(method: &'static str) -> Gauge {
    IN_FLIGHT.get(method, || {
        let gauge = ::metrics::gauge!("atlas_gateway_in_flight_calls", "method" => method);
        (method, gauge)
    })
}

/// A call started.
pub fn call_started(method: &'static str) {
    if off() {
        return;
    }
    in_flight(method).increment(1.0);
}

/// `code` is the gRPC code's name (`Ok`, `NotFound`, ...), `reason` the answer's
/// `ErrorInfo.reason` (none on success).
pub fn call_finished(
    method: &'static str,
    code: &'static str,
    profile: &str,
    reason: Option<&str>,
    elapsed: Duration,
) {
    if off() {
        return;
    }
    in_flight(method).decrement(1.0);
    let key: CallKey = (method, code, profile_index(profile), reason.map(Box::from));
    let (calls, duration) = CALLS.get(&key, || {
        let profile = key.2.and_then(|i| PROFILES.get().map(|p| p[i].to_string()));
        let (profile, reason) = (profile.unwrap_or_default(), reason.unwrap_or_default().to_string());
        let calls = ::metrics::counter!("atlas_gateway_calls_total", "method" => method, "code" => code,
            "profile" => profile.clone(), "reason" => reason.clone());
        let duration = ::metrics::histogram!("atlas_gateway_call_duration_seconds", "method" => method,
            "profile" => profile, "reason" => reason);
        (key.clone(), (calls, duration))
    });
    calls.increment(1);
    duration.record(elapsed.as_secs_f64());
}

/// One Atlas HTTP attempt ended with `status`.
pub fn upstream_attempt(operation: &'static str, status: &'static str, elapsed: Duration) {
    if off() {
        return;
    }
    let duration = UPSTREAM.get(&(operation, status), || {
        let duration = ::metrics::histogram!("atlas_gateway_upstream_duration_seconds", "operation" => operation, "status" => status);
        ((operation, status), duration)
    });
    duration.record(elapsed.as_secs_f64());
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

/// On every call with a cached token.
pub fn token_cache_hit(profile: &Arc<str>) {
    if off() {
        return;
    }
    let hits = TOKEN_HITS.get(&**profile, || {
        let label = ::metrics::SharedString::from_shared(Arc::clone(profile));
        let hits = ::metrics::counter!("atlas_gateway_token_cache_hits_total", "profile" => label);
        (Arc::clone(profile), hits)
    });
    hits.increment(1);
}

/// A shared-store operation failed (Redis down, slow or refusing).
pub fn shared_store_error(operation: &'static str) {
    ::metrics::counter!("atlas_gateway_shared_store_errors_total", "operation" => operation)
        .increment(1);
}

/// A shared-store message or value failed authentication, or did not fit its bound, and
/// was ignored. `kind`: `cooldown` or `token_pause`; `reason`: `unverified` or `full`.
pub fn shared_store_rejected(kind: &'static str, reason: &'static str) {
    ::metrics::counter!("atlas_gateway_shared_store_rejected_total", "kind" => kind, "reason" => reason)
        .increment(1);
}

/// Whether the shared store answered its last `PING` (1) or not (0).
pub fn shared_store_up(up: bool) {
    ::metrics::gauge!("atlas_gateway_shared_store_up").set(if up { 1.0 } else { 0.0 });
}

/// A Digest challenge was answered.
pub fn digest_challenge(profile: &str) {
    if off() {
        return;
    }
    ::metrics::counter!("atlas_gateway_digest_challenges_total", "profile" => profile.to_string())
        .increment(1);
}

/// The gRPC listener closed a new connection at once: `max_connections` are open.
pub fn connection_refused() {
    if off() {
        return;
    }
    ::metrics::counter!("atlas_gateway_connections_refused_total").increment(1);
}

/// The TLS listener refused (or lost) a handshake; `reason` is one of a fixed set.
pub fn tls_handshake_failure(reason: &'static str) {
    if off() {
        return;
    }
    ::metrics::counter!("atlas_gateway_tls_handshake_failures_total", "reason" => reason)
        .increment(1);
}

/// The lease sweeper deleted an expired API key of `profile`.
pub fn lease_expired(profile: &str) {
    if off() {
        return;
    }
    ::metrics::counter!("atlas_gateway_leases_expired_total", "profile" => profile.to_string())
        .increment(1);
}

/// An orphaned API key of `profile` was not added to a full (or unreachable) orphan set.
pub fn lease_orphan_dropped(profile: &str) {
    if off() {
        return;
    }
    ::metrics::counter!("atlas_gateway_lease_orphans_dropped_total", "profile" => profile.to_string())
        .increment(1);
}

/// A lease sweep's Atlas `operation` failed (the next sweep tries again).
pub fn lease_sweep_error(operation: &'static str) {
    if off() {
        return;
    }
    ::metrics::counter!("atlas_gateway_lease_sweep_errors_total", "operation" => operation)
        .increment(1);
}

/// Policy refused a call of `caller` (a configured name: a bounded label set) on
/// `field` (`x-atlas-profile`, `rpc`, `org_id`, `roles`).
pub fn policy_denied(caller: &str, field: &'static str) {
    if off() {
        return;
    }
    ::metrics::counter!("atlas_gateway_policy_denied_total", "caller" => caller.to_string(), "field" => field)
        .increment(1);
}

/// An audit record (`event`: `begin` or `end`) could not be written.
pub fn audit_error(event: &'static str) {
    ::metrics::counter!("atlas_gateway_audit_errors_total", "event" => event).increment(1);
}

/// The audit writer wrote a batch of `records` with one write (and one `fdatasync` for
/// a file).
pub fn audit_batch(records: usize) {
    if off() {
        return;
    }
    ::metrics::counter!("atlas_gateway_audit_syncs_total").increment(1);
    ::metrics::counter!("atlas_gateway_audit_records_total").increment(records as u64);
}
