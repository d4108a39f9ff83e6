//! AIP-155 idempotency: a call carrying a `request_id` runs at most once per window, in
//! this process and, with a shared store, across the fleet.
//!
//! One [`Record`] type and one set of rules ([`Record::verdict`]) serve both engines:
//! [`local`] keeps one owner per key from first arrival to final answer and runs the
//! owner's work detached, so a caller that leaves does not cancel a create; [`shared`]
//! holds the fleet's record in the store and fails closed when it cannot. How a run
//! ended ([`Finished`]) decides what is kept: an answer is replayed for the window; a
//! failure after which the create may exist is kept as "outcome unknown" and never run
//! again; a failure before anything could be created is forgotten, so the corrected
//! retry runs. Keys are hashes of (profile, caller, method, request_id). This module
//! never logs and never inspects the responses it keeps.
pub mod local;
pub mod shared;

use bytes::Bytes;
use prost::Message;
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

pub use local::IdempotencyCache;

/// A SHA-256 digest.
pub type Digest = [u8; 32];

/// Who is asking and for what: the record key.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Key(Digest);

impl AsRef<[u8]> for Key {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

impl Key {
    /// Hashes the scope of a `request_id`. `caller` is the identity the transport
    /// proved (the caller token's name, the client certificate), "" when there is none.
    pub fn new(profile: &str, caller: &str, method: &str, request_id: &str) -> Key {
        let mut h = Sha256::new();
        for part in [profile, caller, method, request_id] {
            h.update((part.len() as u64).to_be_bytes());
            h.update(part.as_bytes());
        }
        Key(h.finalize().into())
    }
}

/// The SHA-256 of a request message (its `request_id` already cleared).
pub fn request_digest(request: &impl Message) -> Digest {
    Sha256::digest(request.encode_to_vec()).into()
}

/// What is known of one key: the request it was first used with and where its one run
/// stands. No `Debug`: a done record holds a created key.
#[derive(Clone, Serialize, Deserialize)]
pub struct Record {
    /// SHA-256 of the request, to tell a replay from a reuse.
    pub fingerprint: Digest,
    /// Where the run stands.
    #[serde(flatten)]
    pub state: State,
}

/// Where the one run of a key stands.
#[derive(Clone, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum State {
    /// A run holds the key (in the store): `owner` names the gateway instance, which
    /// must have ended it by `until_ms` (Unix ms, grace included).
    Pending {
        /// The claiming instance's random id.
        #[serde(default)]
        owner: u64,
        /// When the run is over for sure.
        until_ms: u64,
    },
    /// The run answered: the encoded response.
    Done {
        /// The protobuf-encoded response.
        result: Vec<u8>,
    },
    /// The run ended without an answer after the create may have reached Atlas.
    Unknown,
}

/// What the rules say about an arrival that finds a record.
pub enum Verdict {
    /// Give the first answer again.
    Replay(Bytes),
    /// The id was first used with another request.
    Reused,
    /// The create may or may not exist: never run it again.
    Unknown,
    /// The run is still going: wait for it.
    Wait,
}

impl Record {
    /// The one set of rules: what an arrival with `fingerprint` gets at `now_ms`.
    pub fn verdict(&self, fingerprint: &Digest, now_ms: u64) -> Verdict {
        if &self.fingerprint != fingerprint {
            return Verdict::Reused;
        }
        match &self.state {
            State::Done { result } => Verdict::Replay(Bytes::copy_from_slice(result)),
            State::Unknown => Verdict::Unknown,
            State::Pending { until_ms, .. } if *until_ms < now_ms => Verdict::Unknown,
            State::Pending { .. } => Verdict::Wait,
        }
    }
}

/// Whether a result was produced now or replayed from an earlier call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Produced by this call.
    Fresh,
    /// Replayed from an earlier call with the same `request_id`.
    Replayed,
}

/// How the one run of a key ended.
pub enum Finished<E> {
    /// An answer: the encoded response, made now or replayed from the fleet's record.
    Answered(Bytes, Outcome),
    /// Failed before anything could be created: forgotten, so a retry runs again.
    Failed(E),
    /// Failed after the create may have reached Atlas: kept as unknown for the window.
    Unknown(E),
}

/// What the engines answer themselves. Callers turn it into their own error type
/// (`E: From<Refused>`), so this module knows none of theirs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refused {
    /// The `request_id` came back with a different request.
    Reused,
    /// The first run ended without an answer: the create may or may not exist.
    OutcomeUnknown,
    /// The caller's own deadline passed while the run was still going.
    TimedOut,
    /// The shared store could not claim or read the record: nothing was run.
    StoreUnavailable,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(state: State) -> Record {
        Record {
            fingerprint: [1; 32],
            state,
        }
    }

    #[test]
    fn keys_separate_profiles_callers_methods_and_ids() {
        let k = Key::new("p", "alice", "M", "id");
        for other in [
            Key::new("q", "alice", "M", "id"),
            Key::new("p", "bob", "M", "id"),
            Key::new("p", "alice", "N", "id"),
            Key::new("p", "alice", "M", "id2"),
            Key::new("pa", "lice", "M", "id"),
        ] {
            assert_ne!(k, other);
        }
    }

    #[test]
    fn the_rules() {
        let done = record(State::Done {
            result: b"r".to_vec(),
        });
        assert!(matches!(done.verdict(&[1; 32], 0), Verdict::Replay(b) if b == "r"));
        assert!(matches!(done.verdict(&[2; 32], 0), Verdict::Reused));
        assert!(matches!(
            record(State::Unknown).verdict(&[1; 32], 0),
            Verdict::Unknown
        ));
        let pending = record(State::Pending {
            owner: 7,
            until_ms: 100,
        });
        assert!(matches!(pending.verdict(&[1; 32], 100), Verdict::Wait));
        assert!(matches!(pending.verdict(&[1; 32], 101), Verdict::Unknown));
    }

    #[test]
    fn records_written_before_owners_still_read() {
        let old = format!(
            r#"{{"state":"pending","fingerprint":{:?},"until_ms":5}}"#,
            [1u8; 32]
        );
        let r: Record = serde_json::from_str(&old).unwrap();
        assert!(matches!(
            r.state,
            State::Pending {
                owner: 0,
                until_ms: 5
            }
        ));
    }
}
