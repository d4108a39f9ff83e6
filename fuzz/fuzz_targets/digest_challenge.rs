//! HTTP Digest challenges (`WWW-Authenticate`) as a hostile or broken upstream could send
//! them: `digest_auth::parse` via `Lease::accept_challenge`, then answering it
//! with `authorization` (which runs the crate's hashing and header formatting).
//!
//! Input: the challenge, then optionally `\n` and the request URI.
#![no_main]
use atlas_grpc_gateway::{atlas::auth::digest::DigestSession, secret::Secret};
use libfuzzer_sys::fuzz_target;

const PRIVATE: &str = "00000000-fuzz-0000-0000-000000000000";

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let (challenge, uri) = text
        .split_once('\n')
        .unwrap_or((text, "/api/atlas/v2/orgs/x"));
    let session = DigestSession::new("fuzzpub", Secret::new(PRIVATE));
    let mut session = session.lease();
    if session.accept_challenge(challenge) {
        for method in ["POST", "DELETE"] {
            if let Some(h) = session.authorization(method, uri) {
                assert!(
                    !h.contains(PRIVATE),
                    "private key in the Authorization header"
                );
            }
        }
        // The same challenge again is not new (unless it says stale=true).
        let _ = session.accept_challenge(challenge);
        let _ = session.authorization("POST", uri);
    }
});
