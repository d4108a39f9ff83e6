//! `Call`: what every RPC shares from arrival to answer. It reads the per-call metadata
//! (`x-request-id`, `x-atlas-profile`, `grpc-timeout`; the time budget is the caller's
//! deadline, else the default timeout, never above `max_call_duration`), carries the
//! tracing span, and at
//! the end writes the one log line and the metrics, turns a `Failure` into a `Status`,
//! and returns the request id in response metadata. A call dropped before it finished
//! (the caller cancelled: the handler future is dropped) is accounted for by `Drop`
//! as `CANCELLED`, so the in-flight gauge, the call counter and the log never miss one.
//! The log line's fields are distinct names (`error` holds the answer's message; the
//! event's own `message` is "call finished"): `correlation_id` is the `x-request-id`,
//! `request_id` the caller's idempotency key when given; its level is `outcome`'s.
mod outcome;

use std::{
    sync::atomic::{AtomicU64, Ordering},
    time::{Duration, Instant},
};

use tonic::{metadata::MetadataMap, Response, Status};
use tracing::{
    field::{Empty, Value},
    Span,
};

use super::status::{ErrorContext, Failure};
use crate::{atlas::Operation, callers::CallerIdentity, telemetry::metrics as m, validate::echo};
use outcome::Severity;

/// Correlation id metadata key (echoed back).
pub const REQUEST_ID_HEADER: &str = "x-request-id";
/// Profile selection metadata key.
pub const PROFILE_HEADER: &str = "x-atlas-profile";

/// Answer a little before the caller's deadline (a tenth of it, at most this), so the
/// caller gets our DEADLINE_EXCEEDED with details rather than a bare transport timeout,
/// even when the answer is slow to travel back on a loaded machine.
const DEADLINE_MARGIN: Duration = Duration::from_millis(250);

/// What a call uses when its metadata says nothing.
pub struct CallDefaults {
    /// The profile of a call that names none, when its caller has no default.
    pub profile: String,
    /// The time budget of a call without a deadline.
    pub request_timeout: Duration,
    /// The ceiling on any call's time budget.
    pub max_call_duration: Duration,
}

/// One RPC in progress.
pub struct Call {
    /// The Atlas operation.
    pub operation: Operation,
    /// The RPC name.
    pub method: &'static str,
    /// The caller's `x-request-id`, or a generated UUID.
    pub request_id: String,
    /// The profile (`x-atlas-profile` or the default).
    pub profile: String,
    /// When the call must be answered.
    pub deadline: Instant,
    /// The org the call acts on.
    pub org_id: String,
    /// Who the caller is (`crate::callers`; anonymous without caller authentication).
    pub caller: CallerIdentity,
    /// The call's tracing span (the per-call log line's fields).
    pub span: Span,
    /// The OpenTelemetry trace this call continues (see `crate::otel`).
    pub trace: crate::otel::CallTrace,
    /// How long the Atlas part took (µs; [`NOT_MEASURED`] before): written to the span
    /// with the call's code, in one record instead of two.
    upstream_us: AtomicU64,
    started: Instant,
    finished: bool,
}

/// `upstream_us` before the Atlas part ended (or when it never ran).
const NOT_MEASURED: u64 = u64::MAX;

impl Call {
    /// Starts a call: reads its metadata, opens its span, counts it.
    pub fn begin(
        operation: Operation,
        method: &'static str,
        metadata: &MetadataMap,
        org_id: &str,
        caller: CallerIdentity,
        defaults: &CallDefaults,
    ) -> Self {
        let started = Instant::now();
        let request_id = metadata
            .get(REQUEST_ID_HEADER)
            .and_then(|v| v.to_str().ok())
            .filter(|v| !v.is_empty() && v.len() <= 128 && v.bytes().all(|b| b.is_ascii_graphic()))
            .map_or_else(new_request_id, str::to_string);
        // Caller values are bounded before they reach the span, logs or error details
        // (an over-long one cannot name a profile nor pass validation anyway).
        let profile = metadata
            .get(PROFILE_HEADER)
            .and_then(|v| v.to_str().ok())
            .filter(|v| !v.is_empty())
            .map_or_else(
                || {
                    let own = caller.caller().default_profile.as_deref();
                    own.unwrap_or(&defaults.profile).to_string()
                },
                echo,
            );
        let org_id = echo(org_id);
        let timeout = metadata
            .get("grpc-timeout")
            .and_then(|v| v.to_str().ok())
            .and_then(parse_grpc_timeout)
            .map(|t| t.saturating_sub(DEADLINE_MARGIN.min(t / 10)))
            .unwrap_or(defaults.request_timeout)
            .min(defaults.max_call_duration);
        let span = tracing::info_span!("rpc", method, caller = caller.name(), org_id = %org_id, profile = %profile, correlation_id = %request_id,
            request_id = Empty, trace_id = Empty, code = Empty, reason = Empty, error_code = Empty, upstream_status = Empty,
            upstream_ms = Empty, replayed = Empty);
        let trace = crate::otel::CallTrace::start(metadata, method, caller.name());
        if let Some(id) = trace.trace_id() {
            span.record("trace_id", tracing::field::display(id));
        }
        m::call_started(method);
        Self {
            operation,
            method,
            request_id,
            profile,
            deadline: started + timeout,
            org_id,
            caller,
            span,
            trace,
            upstream_us: AtomicU64::new(NOT_MEASURED),
            started,
            finished: false,
        }
    }

    /// The caller's idempotency key (the request's `request_id`, already validated) goes
    /// to the log line as `request_id`.
    pub fn record_idempotency_key(&self, key: &str) {
        self.span.record("request_id", key);
    }

    /// The Atlas part took `d` (the span's `upstream_ms`, written by `flush_upstream`
    /// or with the code).
    pub fn upstream_took(&self, d: Duration) {
        let us = u64::try_from(d.as_micros()).unwrap_or(NOT_MEASURED - 1);
        self.upstream_us.store(us, Ordering::Relaxed);
    }

    /// Writes a measured `upstream_ms` to the span now (before other fields that follow
    /// it in the line).
    pub fn flush_upstream(&self) {
        if let Some(ms) = self.take_upstream_ms() {
            self.span.record("upstream_ms", ms);
        }
    }

    fn take_upstream_ms(&self) -> Option<f64> {
        match self.upstream_us.swap(NOT_MEASURED, Ordering::Relaxed) {
            NOT_MEASURED => None,
            us => Some(crate::telemetry::log_millis(Duration::from_micros(us))),
        }
    }

    /// Writes the code (and a measured `upstream_ms` first) to the span: one record.
    fn record_code(&self, code: &'static str) {
        let Some(fields) = self.span.metadata().map(tracing::Metadata::fields) else {
            return; // the span is disabled (RUST_LOG above INFO)
        };
        let upstream = self.take_upstream_ms();
        let (Some(code_field), Some(upstream_field)) =
            (fields.field("code"), fields.field("upstream_ms"))
        else {
            return;
        };
        let upstream = upstream.as_ref().map(|ms| ms as &dyn Value);
        self.span.record_all(&fields.value_set(&[
            (&upstream_field, upstream),
            (&code_field, Some(&code as &dyn Value)),
        ]));
    }

    /// Ends the call: logs, counts, and builds the gRPC answer. `atlas_domain` names the
    /// Atlas host of a profile (asked only when the call failed).
    pub fn finish<'d, T>(
        mut self,
        result: Result<T, Failure>,
        atlas_domain: impl FnOnce(&str) -> &'d str,
    ) -> Result<Response<T>, Status> {
        self.finished = true;
        let elapsed = self.started.elapsed();
        let (code, answer) = match result {
            Ok(v) => {
                let mut r = Response::new(v);
                insert_request_id(r.metadata_mut(), &self.request_id);
                (tonic::Code::Ok, Ok(r))
            }
            Err(f) => {
                self.flush_upstream();
                if let Some(e) = f.atlas_error() {
                    if let Some(c) = e.error_code() {
                        self.span.record("error_code", c);
                    }
                    if let Some(s) = e.http_status() {
                        self.span.record("upstream_status", s);
                    }
                    if matches!(e, crate::atlas::error::AtlasError::BadResponse { .. })
                        && self.operation.creates()
                    {
                        tracing::error!(parent: &self.span, "Atlas answered 2xx with an unreadable body: the resource may have been created in Atlas without the caller learning of it");
                    }
                }
                let ctx = ErrorContext {
                    operation: self.operation,
                    request_id: &self.request_id,
                    org_id: &self.org_id,
                    profile: &self.profile,
                    atlas_domain: atlas_domain(&self.profile),
                };
                let mut status = f.into_status(&ctx);
                insert_request_id(status.metadata_mut(), &self.request_id);
                (status.code(), Err(status))
            }
        };
        let code_name = code_name(code);
        self.record_code(code_name);
        let reason = answer.as_ref().err().and_then(outcome::reason);
        if let Some(r) = &reason {
            self.span.record("reason", r.as_str());
        }
        let error = answer.as_ref().err().map(Status::message);
        let latency_ms = crate::telemetry::log_millis(elapsed);
        let span = &self.span;
        match outcome::severity(code, reason.as_deref()) {
            Severity::Info => tracing::info!(parent: span, latency_ms, error, "call finished"),
            Severity::Warn => tracing::warn!(parent: span, latency_ms, error, "call finished"),
            Severity::Error => tracing::error!(parent: span, latency_ms, error, "call finished"),
        }
        m::call_finished(
            self.method,
            code_name,
            &self.profile,
            reason.as_deref(),
            elapsed,
        );
        self.trace.finish(code);
        answer
    }
}

impl Drop for Call {
    fn drop(&mut self) {
        if self.finished {
            return;
        }
        let elapsed = self.started.elapsed();
        let code_name = code_name(tonic::Code::Cancelled);
        self.record_code(code_name);
        tracing::info!(parent: &self.span, latency_ms = crate::telemetry::log_millis(elapsed),
            "call cancelled by the caller before it finished");
        m::call_finished(self.method, code_name, &self.profile, None, elapsed);
        self.trace.finish(tonic::Code::Cancelled);
    }
}

/// A fresh request id: a random UUID, hyphenated, lower case.
fn new_request_id() -> String {
    let mut buf = uuid::Uuid::encode_buffer();
    uuid::Uuid::new_v4()
        .hyphenated()
        .encode_lower(&mut buf)
        .to_string()
}

/// The code's name as its `Debug` prints it (`Ok`, `NotFound`, ...), without formatting.
fn code_name(code: tonic::Code) -> &'static str {
    use tonic::Code as C;
    match code {
        C::Ok => "Ok",
        C::Cancelled => "Cancelled",
        C::Unknown => "Unknown",
        C::InvalidArgument => "InvalidArgument",
        C::DeadlineExceeded => "DeadlineExceeded",
        C::NotFound => "NotFound",
        C::AlreadyExists => "AlreadyExists",
        C::PermissionDenied => "PermissionDenied",
        C::ResourceExhausted => "ResourceExhausted",
        C::FailedPrecondition => "FailedPrecondition",
        C::Aborted => "Aborted",
        C::OutOfRange => "OutOfRange",
        C::Unimplemented => "Unimplemented",
        C::Internal => "Internal",
        C::Unavailable => "Unavailable",
        C::DataLoss => "DataLoss",
        C::Unauthenticated => "Unauthenticated",
    }
}

fn insert_request_id(md: &mut MetadataMap, id: &str) {
    if let Ok(v) = id.parse() {
        md.insert(REQUEST_ID_HEADER, v);
    }
}

/// Parses the `grpc-timeout` header: 1 to 8 digits and a unit (H, M, S, m, u, n).
pub fn parse_grpc_timeout(v: &str) -> Option<Duration> {
    if !v.is_ascii() {
        return None;
    }
    let (digits, unit) = v.split_at(v.len().checked_sub(1)?);
    if digits.is_empty() || digits.len() > 8 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let n: u64 = digits.parse().ok()?;
    Some(match unit {
        "H" => Duration::from_secs(n * 3600),
        "M" => Duration::from_secs(n * 60),
        "S" => Duration::from_secs(n),
        "m" => Duration::from_millis(n),
        "u" => Duration::from_micros(n),
        "n" => Duration::from_nanos(n),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grpc_timeout_units() {
        assert_eq!(parse_grpc_timeout("5S"), Some(Duration::from_secs(5)));
        assert_eq!(parse_grpc_timeout("250m"), Some(Duration::from_millis(250)));
        assert_eq!(parse_grpc_timeout("2H"), Some(Duration::from_secs(7200)));
        assert_eq!(
            parse_grpc_timeout("99999999n"),
            Some(Duration::from_nanos(99_999_999))
        );
        for bad in ["", "S", "123456789S", "5s", "-5S", "5", "é"] {
            assert_eq!(parse_grpc_timeout(bad), None, "{bad}");
        }
    }

    #[test]
    fn code_names_are_what_debug_prints() {
        for n in 0..=16 {
            let code = tonic::Code::from_i32(n);
            assert_eq!(code_name(code), format!("{code:?}"));
        }
        let id = new_request_id();
        assert_eq!(uuid::Uuid::parse_str(&id).unwrap().to_string(), id);
    }

    #[test]
    fn metadata_defaults_and_overrides() {
        let defaults = CallDefaults {
            profile: "default".into(),
            request_timeout: Duration::from_secs(30),
            max_call_duration: Duration::from_secs(300),
        };
        let begin = |md: &MetadataMap| {
            let (op, anonymous) = (Operation::DeleteLinkToken, CallerIdentity::anonymous());
            Call::begin(op, "DeleteLinkToken", md, "o", anonymous, &defaults)
        };
        let mut md = MetadataMap::new();
        let c = begin(&md);
        assert_eq!(c.profile, "default");
        assert_eq!(c.request_id.len(), 36, "a UUID is generated");
        md.insert(REQUEST_ID_HEADER, "abc-123".parse().unwrap());
        md.insert(PROFILE_HEADER, "billing".parse().unwrap());
        md.insert("grpc-timeout", "1S".parse().unwrap());
        let c = begin(&md);
        assert_eq!(
            (c.request_id.as_str(), c.profile.as_str()),
            ("abc-123", "billing")
        );
        let left = c.deadline - Instant::now();
        assert!(left <= Duration::from_millis(980), "{left:?}");
        md.insert("grpc-timeout", "1H".parse().unwrap());
        let left = begin(&md).deadline - Instant::now();
        assert!(left <= Duration::from_secs(300), "capped: {left:?}");
    }
}
