//! The lease rules of `CreateApiKey`: `ttl` at least [`lease::MIN_TTL`] (any profile),
//! at most the profile's `max_key_ttl`, and a `desc` that leaves room for the marker
//! when the key is leased (a `ttl`, or the profile's `default_key_ttl`; an access list
//! alone adds no marker). Never talks to Atlas.
use std::time::Duration;

use super::{Violation, MAX_DESC_CHARS};
use crate::{config::LeasePolicy, lease, pb::CreateApiKeyRequest};

/// Longest `desc` of a leased key: the marker takes the rest of Atlas's 250.
pub const MAX_LEASED_DESC_CHARS: usize = MAX_DESC_CHARS - lease::MARKER_CHARS;

/// The request's `ttl` as a duration; `Err` when it is negative or out of range.
fn requested(req: &CreateApiKeyRequest) -> Option<Result<Duration, ()>> {
    req.ttl.map(|t| Duration::try_from(t).map_err(drop))
}

/// `ttl`, when set, is a duration of at least [`lease::MIN_TTL`].
pub(super) fn check_ttl(req: &CreateApiKeyRequest, out: &mut Vec<Violation>) {
    match requested(req) {
        None => {}
        Some(Ok(ttl)) if ttl >= lease::MIN_TTL => {}
        Some(_) => out.push(Violation::new(
            "ttl",
            format!(
                "ttl must be at least {} (or unset: no lease)",
                humantime::format_duration(lease::MIN_TTL)
            ),
        )),
    }
}

/// The lease the key gets: the call's `ttl`, else the profile's `default_key_ttl`.
pub fn key_ttl(req: &CreateApiKeyRequest, policy: &LeasePolicy) -> Option<Duration> {
    match requested(req) {
        Some(ttl) => ttl.ok(),
        None => policy.default_key_ttl,
    }
}

/// Checks the rules that depend on the profile; the key's lease when they hold.
pub fn key_lease(
    req: &CreateApiKeyRequest,
    policy: &LeasePolicy,
) -> Result<Option<Duration>, Vec<Violation>> {
    let ttl = key_ttl(req, policy);
    let mut v = Vec::new();
    if let (Some(ttl), Some(max)) = (ttl, policy.max_key_ttl) {
        if ttl > max {
            v.push(Violation::new(
                "ttl",
                format!(
                    "ttl must be at most {} (this profile's max_key_ttl)",
                    humantime::format_duration(max)
                ),
            ));
        }
    }
    let chars = req.desc.chars().count();
    if ttl.is_some() && chars > MAX_LEASED_DESC_CHARS {
        v.push(Violation::new(
            "desc",
            format!(
                "desc of a leased key (ttl or default_key_ttl) must be at most {MAX_LEASED_DESC_CHARS} characters: the lease marker takes {} of Atlas's {MAX_DESC_CHARS} (got {chars})",
                lease::MARKER_CHARS
            ),
        ));
    }
    if v.is_empty() {
        Ok(ttl)
    } else {
        Err(v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(ttl_secs: Option<i64>, desc_chars: usize) -> CreateApiKeyRequest {
        CreateApiKeyRequest {
            desc: "d".repeat(desc_chars),
            ttl: ttl_secs.map(|seconds| prost_types::Duration { seconds, nanos: 0 }),
            ..Default::default()
        }
    }

    fn fields(r: &[Violation]) -> Vec<&str> {
        r.iter().map(|v| v.field.as_str()).collect()
    }

    #[test]
    fn ttl_has_a_floor_of_a_minute() {
        for (ttl, ok) in [
            (Some(59), false),
            (Some(-60), false),
            (Some(60), true),
            (None, true),
        ] {
            let mut v = Vec::new();
            check_ttl(&req(ttl, 1), &mut v);
            assert_eq!(v.is_empty(), ok, "{ttl:?}");
        }
    }

    #[test]
    fn the_profile_bounds_the_lease_and_the_marker_bounds_the_desc() {
        let policy = LeasePolicy {
            default_key_ttl: Some(Duration::from_secs(600)),
            max_key_ttl: Some(Duration::from_secs(3600)),
            ..LeasePolicy::default()
        };
        assert_eq!(
            key_lease(&req(None, 210), &policy),
            Ok(Some(Duration::from_secs(600)))
        );
        assert_eq!(
            key_lease(&req(Some(3600), 1), &policy),
            Ok(Some(Duration::from_secs(3600)))
        );
        let refused = key_lease(&req(Some(3601), 211), &policy).unwrap_err();
        assert_eq!(fields(&refused), ["ttl", "desc"]);
        let unleased = LeasePolicy::default();
        assert_eq!(key_lease(&req(None, 250), &unleased), Ok(None));
        let mut fenced = req(None, 250);
        fenced.access_list_ips = vec!["10.0.0.1".into()];
        assert_eq!(key_lease(&fenced, &unleased), Ok(None));
        fenced.ttl = req(Some(60), 0).ttl;
        assert_eq!(
            fields(&key_lease(&fenced, &unleased).unwrap_err()),
            ["desc"]
        );
    }
}
