//! `DigestSession`: HTTP Digest (RFC 7616; MD5 or SHA-256, qop=auth) with an Atlas
//! programmatic API key pair, via the `digest_auth` crate.
//!
//! The session keeps a small pool of server challenges (nonces). Each request leases
//! one, answers with the next nonce count, and returns it, so a steady-state call is one
//! round trip and every nonce sees strictly increasing counts even under concurrency
//! (servers may refuse counts that arrive out of order). A request that finds the pool
//! empty goes without credentials and brings a new challenge back: the pool grows to the
//! peak concurrency and stays there. A 401 with a new challenge (or `stale=true`)
//! replaces the leased one; the client then redoes the request once. The private key is
//! only used to compute hashes, never stored elsewhere.
use std::sync::Mutex;

use digest_auth::{AuthContext, HttpMethod, WwwAuthenticateHeader};

use crate::secret::Secret;

/// Challenges kept at most (beyond it, returned challenges are dropped).
const MAX_POOLED: usize = 1024;

/// Digest state for one API key.
pub struct DigestSession {
    public_key: String,
    private_key: Secret,
    pool: Mutex<Vec<WwwAuthenticateHeader>>,
}

/// One request's use of a challenge; returns it to the pool when dropped.
pub struct Lease<'a> {
    session: &'a DigestSession,
    challenge: Option<WwwAuthenticateHeader>,
}

impl DigestSession {
    /// A session for one API key pair, with no challenge yet.
    pub fn new(public_key: &str, private_key: Secret) -> Self {
        Self {
            public_key: public_key.to_string(),
            private_key,
            pool: Mutex::new(Vec::new()),
        }
    }

    /// Takes a challenge from the pool (none yet: the first request meets one).
    pub fn lease(&self) -> Lease<'_> {
        let challenge = self.pool.lock().expect("not poisoned").pop();
        Lease {
            session: self,
            challenge,
        }
    }
}

impl Lease<'_> {
    /// `Authorization` value for a request, or `None` without a challenge.
    pub fn authorization(&mut self, method: &str, uri: &str) -> Option<String> {
        let challenge = self.challenge.as_mut()?;
        let context = AuthContext::new_with_method(
            self.session.public_key.as_str(),
            self.session.private_key.expose(),
            uri,
            None::<&[u8]>,
            HttpMethod(method.to_string().into()),
        );
        challenge
            .respond(&context)
            .ok()
            .map(|h| h.to_header_string())
    }

    /// Takes the challenge of a 401 (`WWW-Authenticate: Digest ...`). Returns whether it
    /// differs from the one held (a new nonce is worth one more try; the same nonce
    /// refused again means the key itself was refused).
    pub fn accept_challenge(&mut self, www_authenticate: &str) -> bool {
        // digest_auth 0.3.1's parser slices by char index as if it were a byte index and
        // panics on non-ASCII input; a valid challenge is ASCII anyway (RFC 7616).
        if !www_authenticate.is_ascii() {
            return false;
        }
        let Ok(parsed) = digest_auth::parse(www_authenticate) else {
            return false;
        };
        let is_new = self
            .challenge
            .as_ref()
            .is_none_or(|old| old.nonce != parsed.nonce || parsed.stale);
        if is_new {
            self.challenge = Some(parsed);
        }
        is_new
    }
}

impl Drop for Lease<'_> {
    fn drop(&mut self) {
        if let Some(challenge) = self.challenge.take() {
            let mut pool = self.session.pool.lock().expect("not poisoned");
            if pool.len() < MAX_POOLED {
                pool.push(challenge);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CHALLENGE: &str = r#"Digest realm="MMS Public API", domain="", nonce="abc123", algorithm=MD5, qop="auth", stale=false"#;

    #[test]
    fn reuses_the_nonce_with_increasing_count() {
        let s = DigestSession::new("pubkey01", Secret::new("private"));
        let mut first = s.lease();
        assert_eq!(first.authorization("POST", "/x"), None);
        assert!(first.accept_challenge(CHALLENGE));
        let a = first.authorization("POST", "/x").unwrap();
        drop(first);
        let b = s.lease().authorization("POST", "/x").unwrap();
        assert!(
            a.contains("nc=00000001") && b.contains("nc=00000002"),
            "{a} {b}"
        );
        assert!(a.contains("username=\"pubkey01\"") && !a.contains("private"));
        let mut l = s.lease();
        assert!(!l.accept_challenge(CHALLENGE), "same nonce is not new");
        assert!(l.accept_challenge(&CHALLENGE.replace("stale=false", "stale=true")));
        assert!(l
            .authorization("GET", "/x")
            .unwrap()
            .contains("nc=00000001"));
        assert!(!l.accept_challenge("Basic realm=\"x\""));
    }

    #[test]
    fn concurrent_requests_use_separate_nonces() {
        let s = DigestSession::new("pubkey01", Secret::new("private"));
        let mut a = s.lease();
        a.accept_challenge(CHALLENGE);
        let mut b = s.lease();
        assert_eq!(
            b.authorization("POST", "/x"),
            None,
            "the only nonce is in use"
        );
        b.accept_challenge(&CHALLENGE.replace("abc123", "def456"));
        drop((a, b));
        let (mut c, mut d) = (s.lease(), s.lease());
        let hc = c.authorization("POST", "/x").unwrap();
        let hd = d.authorization("POST", "/x").unwrap();
        assert_ne!(
            hc.contains("abc123"),
            hd.contains("abc123"),
            "one nonce each"
        );
    }

    #[test]
    fn sha256_challenges_are_answered() {
        let s = DigestSession::new("pubkey01", Secret::new("private"));
        let mut l = s.lease();
        assert!(l.accept_challenge(&CHALLENGE.replace("MD5", "SHA-256")));
        assert!(l
            .authorization("DELETE", "/y")
            .unwrap()
            .contains("algorithm=SHA-256"));
    }
}
