//! Per-profile key material for the shared store: key names that reveal nothing, AEAD
//! sealing of values, and MACs on the plain messages replicas exchange (cool-downs, the
//! token-endpoint pause). All come from one HKDF-SHA256 of the profile's own secret,
//! so a Redis reader without the service-account secret (or API private key) can
//! neither read a value, tell which account, org or request a key belongs to, nor
//! forge a message another replica accepts.
//!
//! It must never put a secret, token, org id or request id in a key name, and never
//! return a value or accept a message that fails authentication.
use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine as _};
use chacha20poly1305::{
    aead::{Aead, AeadCore, KeyInit, OsRng, Payload},
    XChaCha20Poly1305, XNonce,
};
use hkdf::Hkdf;
use hmac::{Hmac, Mac};
use sha2::Sha256;

const NONCE_LEN: usize = 24;

/// Names and seals one profile's entries.
pub struct Sealer {
    cipher: XChaCha20Poly1305,
    names: [u8; 32],
    messages: [u8; 32],
    /// `{prefix:profile-hash}`: the Redis Cluster hash tag shared by the profile's keys.
    tag: String,
}

impl Sealer {
    /// `identity` names the account (e.g. token URL and client id); `secret` is its
    /// secret. The same pair on every replica gives the same keys.
    pub fn new(prefix: &str, identity: &str, secret: &str) -> Self {
        let hk = Hkdf::<Sha256>::new(Some(identity.as_bytes()), secret.as_bytes());
        let mut seal = [0u8; 32];
        let mut names = [0u8; 32];
        let mut messages = [0u8; 32];
        for (info, out) in [
            (&b"atlas-gw v1 seal"[..], &mut seal),
            (b"atlas-gw v1 names", &mut names),
            (b"atlas-gw v1 messages", &mut messages),
        ] {
            hk.expand(info, out)
                .expect("32 bytes is a valid HKDF-SHA256 length");
        }
        let profile = hex(&mac(&names, &[b"profile"])[..12]);
        Self {
            cipher: XChaCha20Poly1305::new(&seal.into()),
            names,
            messages,
            tag: format!("{{{prefix}:{profile}}}"),
        }
    }

    /// `{prefix:profile}`: how every key of this profile starts.
    pub fn tag(&self) -> &str {
        &self.tag
    }

    /// The MAC of a message made of `parts` (base64url): proof that a replica holding
    /// this profile's secret sent it.
    pub fn sign(&self, parts: &[&[u8]]) -> String {
        URL_SAFE_NO_PAD.encode(mac(&self.messages, parts))
    }

    /// Whether `signature` is [`Self::sign`] of `parts` (compared in constant time).
    pub fn verify(&self, parts: &[&[u8]], signature: &str) -> bool {
        let Ok(signature) = URL_SAFE_NO_PAD.decode(signature) else {
            return false;
        };
        let mut m = <Hmac<Sha256> as Mac>::new_from_slice(&self.messages)
            .expect("HMAC takes any key length");
        update(&mut m, parts);
        m.verify_slice(&signature).is_ok()
    }

    /// `{prefix:profile}:<kind>` (one per profile, e.g. the token).
    pub fn key(&self, kind: &str) -> String {
        format!("{}:{kind}", self.tag)
    }

    /// `{prefix:profile}:<kind>:<keyed hash of parts>`: parts (org ids, request ids,
    /// caller names) never appear in the name.
    pub fn hashed_key(&self, kind: &str, parts: &[&[u8]]) -> String {
        format!(
            "{}:{kind}:{}",
            self.tag,
            hex(&mac(&self.names, parts)[..16])
        )
    }

    /// Encrypts `plaintext`, bound to `key` (a value copied under another key fails to open).
    pub fn seal(&self, key: &str, plaintext: &[u8]) -> Vec<u8> {
        let nonce = XChaCha20Poly1305::generate_nonce(&mut OsRng);
        let sealed = self
            .cipher
            .encrypt(
                &nonce,
                Payload {
                    msg: plaintext,
                    aad: key.as_bytes(),
                },
            )
            .expect("XChaCha20-Poly1305 encryption of an in-memory buffer cannot fail");
        let mut out = Vec::with_capacity(NONCE_LEN + sealed.len());
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&sealed);
        out
    }

    /// The plaintext of a value sealed for `key`, or `None` if it was tampered with,
    /// sealed with another secret, or is not a sealed value at all.
    pub fn open(&self, key: &str, sealed: &[u8]) -> Option<Vec<u8>> {
        if sealed.len() < NONCE_LEN {
            return None;
        }
        let (nonce, body) = sealed.split_at(NONCE_LEN);
        self.cipher
            .decrypt(
                XNonce::from_slice(nonce),
                Payload {
                    msg: body,
                    aad: key.as_bytes(),
                },
            )
            .ok()
    }
}

fn mac(key: &[u8; 32], parts: &[&[u8]]) -> [u8; 32] {
    let mut m = <Hmac<Sha256> as Mac>::new_from_slice(key).expect("HMAC takes any key length");
    update(&mut m, parts);
    m.finalize().into_bytes().into()
}

/// Feeds `parts` to `m`, each after its length (so no two part lists collide).
fn update(m: &mut Hmac<Sha256>, parts: &[&[u8]]) {
    for p in parts {
        m.update(&(p.len() as u64).to_be_bytes());
        m.update(p);
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_hide_their_parts_and_values_open_only_under_their_key() {
        let s = Sealer::new("atlas-gw", "https://x/api/oauth/token\0client-1", "s3cret");
        let key = s.hashed_key("idem", &[b"5f1a0c2b3d4e5f6a7b8c9d0e", b"req-42"]);
        assert!(key.starts_with("{atlas-gw:"), "{key}");
        assert!(!key.contains("5f1a0c2b") && !key.contains("req-42") && !key.contains("client-1"));
        let sealed = s.seal(&key, b"private-key-value");
        assert!(!sealed.windows(7).any(|w| w == b"private"));
        assert_eq!(
            s.open(&key, &sealed).as_deref(),
            Some(&b"private-key-value"[..])
        );
        assert_eq!(s.open("other", &sealed), None);
        let other = Sealer::new("atlas-gw", "https://x/api/oauth/token\0client-1", "rotated");
        assert_eq!(other.open(&key, &sealed), None);
        assert_ne!(other.key("token"), s.key("token"));
        let signature = s.sign(&[b"cooldown", b"k", b"123"]);
        assert!(s.verify(&[b"cooldown", b"k", b"123"], &signature));
        assert!(!s.verify(&[b"cooldown", b"k", b"124"], &signature));
        assert!(!other.verify(&[b"cooldown", b"k", b"123"], &signature));
        assert!(!s.verify(&[b"cooldown", b"k", b"123"], "not base64 !"));
        assert_eq!(
            Sealer::new("atlas-gw", "https://x/api/oauth/token\0client-1", "s3cret").key("token"),
            s.key("token")
        );
    }
}
