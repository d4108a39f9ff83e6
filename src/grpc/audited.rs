//! What an audited RPC writes to the audit trail: the `begin` fields from the call, the
//! `end` outcome from the answer (code, `ErrorInfo.reason`, Atlas's request id, the
//! object's ids; never the response's secrets). The trail itself is `crate::audit`.
use std::net::SocketAddr;

use tonic::{Code, Response, Status};
use tonic_types::StatusExt;

use super::call::Call;
use crate::audit::{Entry, ObjectIds, Outcome};

/// The `begin` (and `end`) fields of `call`; `request_id` is the caller's idempotency key.
pub fn entry(call: &Call, peer: Option<SocketAddr>, request_id: &str) -> Entry {
    Entry {
        caller: call.caller.name().to_string(),
        peer: peer.map(|p| p.to_string()).unwrap_or_default(),
        profile: call.profile.clone(),
        rpc: call.method,
        org_id: call.org_id.clone(),
        request_id: request_id.to_string(),
        gateway_request_id: call.request_id.clone(),
        trace_id: (call.trace.trace_id())
            .map(|t| t.to_string())
            .unwrap_or_default(),
    }
}

/// The `end` outcome of an answer.
pub fn outcome<T>(answer: &Result<Response<T>, Status>, object: ObjectIds) -> Outcome {
    let Err(status) = answer else {
        return Outcome {
            code: canonical(Code::Ok),
            object,
            ..Outcome::default()
        };
    };
    Outcome {
        code: canonical(status.code()),
        reason: (status.get_details_error_info())
            .map(|i| i.reason)
            .unwrap_or_default(),
        atlas_request_id: (status.get_details_request_info())
            .map(|r| r.serving_data)
            .unwrap_or_default(),
        object,
    }
}

/// The code's canonical name (`OK`, `INVALID_ARGUMENT`), as google.rpc.Code spells it.
pub fn canonical(code: Code) -> &'static str {
    match code {
        Code::Ok => "OK",
        Code::Cancelled => "CANCELLED",
        Code::Unknown => "UNKNOWN",
        Code::InvalidArgument => "INVALID_ARGUMENT",
        Code::DeadlineExceeded => "DEADLINE_EXCEEDED",
        Code::NotFound => "NOT_FOUND",
        Code::AlreadyExists => "ALREADY_EXISTS",
        Code::PermissionDenied => "PERMISSION_DENIED",
        Code::ResourceExhausted => "RESOURCE_EXHAUSTED",
        Code::FailedPrecondition => "FAILED_PRECONDITION",
        Code::Aborted => "ABORTED",
        Code::OutOfRange => "OUT_OF_RANGE",
        Code::Unimplemented => "UNIMPLEMENTED",
        Code::Internal => "INTERNAL",
        Code::Unavailable => "UNAVAILABLE",
        Code::DataLoss => "DATA_LOSS",
        Code::Unauthenticated => "UNAUTHENTICATED",
    }
}
