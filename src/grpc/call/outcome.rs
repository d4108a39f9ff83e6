//! How a finished call is reported: the `ErrorInfo` reason of its answer (a log field and
//! a metric label) and the level of its log line. Outcomes an operator must act on
//! (credentials or the access list refused, `INTERNAL`, `UNAVAILABLE`, a created resource
//! left behind) are WARN or ERROR; a caller's own mistakes (`INVALID_ARGUMENT`,
//! `NOT_FOUND`, `POLICY_DENIED`, ...) are INFO, so a WARN filter shows only what needs a
//! person. Sees only the code and the reason, never a message or a secret.
use tonic::{Code, Status};
use tonic_types::StatusExt;

/// The level of a call's log line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Severity {
    /// A success, or the caller's own mistake.
    Info,
    /// Worth a look: Atlas or the network failing, the gateway shedding load.
    Warn,
    /// Needs a person: the gateway's own credentials or setup, or a possible leftover.
    Error,
}

/// Longest reason kept (Atlas `errorCode`s are short upper-case words).
const MAX_REASON: usize = 64;

/// The `ErrorInfo.reason` of an answer, when it has one that looks like a reason
/// (upper-case letters, digits and `_`); anything else is `OTHER`, so a misbehaving
/// upstream cannot grow a metric's label set with text of its own.
pub fn reason(status: &Status) -> Option<String> {
    let reason = status.get_error_details().error_info()?.reason.clone();
    let plain = !reason.is_empty()
        && reason.len() <= MAX_REASON
        && reason
            .bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_');
    Some(if plain { reason } else { "OTHER".to_string() })
}

/// The level of the log line of a call answered with `code` and `reason`.
pub fn severity(code: Code, reason: Option<&str>) -> Severity {
    let reason = reason.unwrap_or_default();
    if reason.starts_with("ORPHANED_")
        || matches!(
            reason,
            "ATLAS_CREDENTIALS_REJECTED" | "ATLAS_TOKEN_LIMIT_REACHED"
        )
    {
        return Severity::Error;
    }
    match code {
        Code::Internal | Code::DataLoss => Severity::Error,
        // Atlas refused the gateway's own credentials (after a fresh token), not the caller's.
        Code::Unauthenticated if reason != "CALLER_UNAUTHENTICATED" => Severity::Error,
        Code::Unavailable | Code::Unknown => Severity::Warn,
        // Atlas's 403: the access list lacks this host's address, or the role is missing.
        Code::PermissionDenied if !matches!(reason, "POLICY_DENIED" | "CALLER_NOT_ALLOWED") => {
            Severity::Warn
        }
        Code::ResourceExhausted
            if matches!(reason, "GATEWAY_OVERLOADED" | "TOKEN_ENDPOINT_RATE_LIMITED") =>
        {
            Severity::Warn
        }
        _ => Severity::Info,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn caller_mistakes_are_info_and_operator_problems_are_not() {
        for (code, reason) in [
            (Code::InvalidArgument, "INVALID_REQUEST"),
            (Code::NotFound, "UNEXPECTED_ERROR"),
            (Code::PermissionDenied, "POLICY_DENIED"),
            (Code::Unauthenticated, "CALLER_UNAUTHENTICATED"),
            (Code::ResourceExhausted, "RATE_LIMITED"),
        ] {
            assert_eq!(
                severity(code, Some(reason)),
                Severity::Info,
                "{code:?} {reason}"
            );
        }
        assert_eq!(severity(Code::Ok, None), Severity::Info);
        for (code, reason, want) in [
            (
                Code::Unauthenticated,
                "ATLAS_CREDENTIALS_REJECTED",
                Severity::Error,
            ),
            (Code::Internal, "ORPHANED_API_KEY", Severity::Error),
            (Code::Internal, "INTERNAL_SERVER_ERROR", Severity::Error),
            (Code::Unavailable, "UPSTREAM_UNREACHABLE", Severity::Warn),
            (
                Code::PermissionDenied,
                "IP_ADDRESS_NOT_ON_ACCESS_LIST",
                Severity::Warn,
            ),
            (
                Code::ResourceExhausted,
                "GATEWAY_OVERLOADED",
                Severity::Warn,
            ),
        ] {
            assert_eq!(severity(code, Some(reason)), want, "{code:?} {reason}");
        }
    }
}
