//! `DigestSession`: HTTP Digest (RFC 7616; MD5 or SHA-256, qop=auth) with an Atlas
//! programmatic API key pair, via the `digest_auth` crate.
//!
//! The session keeps the last challenge and answers every later request with the same
//! nonce and an incrementing nonce count, so a steady-state call is one round trip. A
//! 401 with a new challenge (or `stale=true`) replaces it; the client then redoes the
//! request once. The private key is only used to compute hashes, never stored elsewhere.
use std::sync::Mutex;

use digest_auth::{AuthContext, HttpMethod, WwwAuthenticateHeader};

use crate::secret::Secret;

/// Digest state for one API key.
pub struct DigestSession {
    public_key: String,
    private_key: Secret,
    challenge: Mutex<Option<WwwAuthenticateHeader>>,
}

impl DigestSession {
    pub fn new(public_key: &str, private_key: Secret) -> Self {
        Self {
            public_key: public_key.to_string(),
            private_key,
            challenge: Mutex::new(None),
        }
    }

    /// `Authorization` value for a request, or `None` before the first challenge.
    pub fn authorization(&self, method: &str, uri: &str) -> Option<String> {
        let mut guard = self.challenge.lock().expect("not poisoned");
        let challenge = guard.as_mut()?;
        let context = AuthContext::new_with_method(
            self.public_key.as_str(),
            self.private_key.expose(),
            uri,
            None::<&[u8]>,
            HttpMethod(method.to_string().into()),
        );
        challenge
            .respond(&context)
            .ok()
            .map(|h| h.to_header_string())
    }

    /// Stores the challenge of a 401 (`WWW-Authenticate: Digest ...`). Returns whether it
    /// differs from the one in use (a new nonce is worth one more try; the same nonce
    /// refused again means the key itself was refused).
    pub fn accept_challenge(&self, www_authenticate: &str) -> bool {
        // digest_auth 0.3.1's parser slices by char index as if it were a byte index and
        // panics on non-ASCII input; a valid challenge is ASCII anyway (RFC 7616).
        if !www_authenticate.is_ascii() {
            return false;
        }
        let Ok(parsed) = digest_auth::parse(www_authenticate) else {
            return false;
        };
        let mut guard = self.challenge.lock().expect("not poisoned");
        let is_new = guard
            .as_ref()
            .is_none_or(|old| old.nonce != parsed.nonce || parsed.stale);
        if is_new {
            *guard = Some(parsed);
        }
        is_new
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CHALLENGE: &str = r#"Digest realm="MMS Public API", domain="", nonce="abc123", algorithm=MD5, qop="auth", stale=false"#;

    #[test]
    fn reuses_the_nonce_with_increasing_count() {
        let s = DigestSession::new("pubkey01", Secret::new("private"));
        assert_eq!(s.authorization("POST", "/x"), None);
        assert!(s.accept_challenge(CHALLENGE));
        let a = s.authorization("POST", "/x").unwrap();
        let b = s.authorization("POST", "/x").unwrap();
        assert!(
            a.contains("nc=00000001") && b.contains("nc=00000002"),
            "{a} {b}"
        );
        assert!(a.contains("username=\"pubkey01\"") && !a.contains("private"));
        assert!(!s.accept_challenge(CHALLENGE), "same nonce is not new");
        assert!(s.accept_challenge(&CHALLENGE.replace("stale=false", "stale=true")));
        assert!(s
            .authorization("GET", "/x")
            .unwrap()
            .contains("nc=00000001"));
        assert!(!s.accept_challenge("Basic realm=\"x\""));
    }

    #[test]
    fn sha256_challenges_are_answered() {
        let s = DigestSession::new("pubkey01", Secret::new("private"));
        assert!(s.accept_challenge(&CHALLENGE.replace("MD5", "SHA-256")));
        assert!(s
            .authorization("DELETE", "/y")
            .unwrap()
            .contains("algorithm=SHA-256"));
    }
}
