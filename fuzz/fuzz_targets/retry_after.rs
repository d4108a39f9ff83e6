//! `Retry-After` header values (delay-seconds or HTTP date): never a panic, never more
//! than one hour, whatever the clock says.
#![no_main]
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use atlas_grpc_gateway::atlas::retry::parse_retry_after;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(value) = std::str::from_utf8(data) else {
        return;
    };
    for now in [
        UNIX_EPOCH,
        UNIX_EPOCH + Duration::from_secs(784_111_777),
        SystemTime::now(),
        UNIX_EPOCH + Duration::from_secs(253_402_300_799),
    ] {
        if let Some(d) = parse_retry_after(value, now) {
            assert!(d <= Duration::from_secs(3600), "{value:?} -> {d:?}");
        }
    }
});
