//! OAuth token endpoint answers, whatever the endpoint (or a proxy) sends: the 200 body
//! (`parse_issued`) and refusals (`parse_refusal`). Never a panic; a lifetime always
//! within [1 s, one hour] (so `Instant + lifetime` cannot overflow); a token always fit
//! for an `Authorization: Bearer` header.
#![no_main]
use std::time::{Duration, Instant};

use atlas_grpc_gateway::atlas::auth::token_response::{
    parse_issued, parse_refusal, MAX_TOKEN_LIFETIME,
};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(issued) = parse_issued(data) {
        assert!(issued.lifetime >= Duration::from_secs(1));
        assert!(issued.lifetime <= MAX_TOKEN_LIFETIME);
        assert!(Instant::now().checked_add(issued.lifetime).is_some());
        assert!(bearer_ok(&issued.access_token), "{:?}", issued.access_token);
    }
    for status in [400, 401, 403] {
        let _ = parse_refusal(status, data);
    }
});

fn bearer_ok(token: &str) -> bool {
    !token.is_empty() && token.bytes().all(|b| b.is_ascii_graphic())
}
