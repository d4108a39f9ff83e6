//! The lease sweeper's state: the orgs each profile has created leased keys in, and,
//! with a shared store, the lock that lets one replica of a fleet sweep per interval.
//!
//! In process, the orgs are a set per profile. In the store they are one hash per
//! profile: each field a keyed hash of the org, each value the org sealed under that
//! profile's secret, so key names and values show no org id. The lock is `SET NX PX` on
//! one key per profile; it is never released early: it expires, and the fleet sweeps
//! at most once per hold. A store that does not answer never stops a sweep: the replica
//! sweeps with what it knows (a duplicate DELETE answers 404, which the sweeper accepts).
use std::{
    collections::{BTreeSet, HashMap},
    sync::Mutex,
    time::Duration,
};

use redis::AsyncCommands;

use super::{ProfileStore, StoreDown};

/// The orgs each profile created leased keys in, here and in the shared store.
#[derive(Default)]
pub struct LeaseOrgs {
    created: Mutex<HashMap<String, BTreeSet<String>>>,
}

impl LeaseOrgs {
    /// Remembers that `profile` creates a leased key in `org` (before the key exists, so
    /// that a crash right after leaves the org known to the fleet).
    pub async fn remember(&self, profile: &str, shared: Option<&ProfileStore>, org: &str) {
        let known = self
            .created
            .lock()
            .expect("not poisoned")
            .entry(profile.to_string())
            .or_default()
            .insert(org.to_string());
        if let (true, Some(s)) = (known, shared) {
            let _ = s.remember_org(org).await;
        }
    }

    /// Every org `profile` created leased keys in: here, and in the store when it answers.
    pub async fn created(&self, profile: &str, shared: Option<&ProfileStore>) -> BTreeSet<String> {
        let mut orgs = (self.created.lock().expect("not poisoned"))
            .get(profile)
            .cloned()
            .unwrap_or_default();
        if let Some(s) = shared {
            orgs.extend(s.orgs().await.unwrap_or_default());
        }
        orgs
    }
}

impl ProfileStore {
    fn orgs_key(&self) -> String {
        self.sealer.key("lease-orgs")
    }

    async fn remember_org(&self, org: &str) -> Result<(), StoreDown> {
        let key = self.orgs_key();
        let field = self.sealer.hashed_key("lease-org", &[org.as_bytes()]);
        let value = self.sealer.seal(&field, org.as_bytes());
        let mut c = self.store.conn.clone();
        self.store
            .run("hset", async move {
                c.hset::<_, _, _, ()>(key, field, value).await
            })
            .await
    }

    async fn orgs(&self) -> Result<Vec<String>, StoreDown> {
        let key = self.orgs_key();
        let mut c = self.store.conn.clone();
        let sealed: HashMap<String, Vec<u8>> = self
            .store
            .run("hgetall", async move { c.hgetall(key).await })
            .await?;
        Ok(sealed
            .iter()
            .filter_map(|(field, value)| self.sealer.open(field, value))
            .filter_map(|org| String::from_utf8(org).ok())
            .collect())
    }

    /// True when this replica may sweep `profile` now: it took the fleet's lock for
    /// `hold`, or the store did not answer (every replica sweeps then).
    pub async fn may_sweep(&self, hold: Duration) -> bool {
        let key = self.sealer.key("lease-sweep");
        self.store.set_nx(&key, b"1", hold).await.unwrap_or(true)
    }
}
